//! An output folder of a one-shot attribution command (`spex heads`, `spex tokens`): its plan,
//! checked against the arguments on a rerun, and its resumable value store.

use std::ops::Range;
use std::path::Path;

use serde_json::Value;

use spex::ablate::{evaluate_resumable, ValueStore};
use spex::io::{read_json, write_json, write_masks_npy};
use spex::sparse::plan::PlanFile;
use spex::sparse::{MaskBatch, ValueFunction};

/// The plan as a run's identity: every field but the writer's version.
pub fn plan_identity(file: &PlanFile) -> anyhow::Result<Value> {
    let mut v = serde_json::to_value(file)?;
    if let Some(map) = v.as_object_mut() {
        map.remove("spex_version");
    }
    Ok(v)
}

/// Writes `plan.json` and `masks.npy` into `out`, or checks that `out` already holds this plan.
pub fn write_or_check_plan(out: &Path, file: &PlanFile, masks: &MaskBatch) -> anyhow::Result<()> {
    let path = out.join("plan.json");
    if !path.exists() {
        write_masks_npy(&out.join("masks.npy"), masks)?;
        write_json(&path, file)?;
        return Ok(());
    }
    let found: Value = read_json(&path)?;
    let mut found_id = found;
    if let Some(map) = found_id.as_object_mut() {
        map.remove("spex_version");
    }
    if found_id != plan_identity(file)? {
        anyhow::bail!(
            "{} holds another plan than these arguments make (method, budget, degree, seed or the number of players differ); use another --out",
            path.display()
        );
    }
    Ok(())
}

/// Values of `masks` rows `rows` through `f`, `per_batch` masks per call, resumed from and
/// appended to the store at `store_path` (header `identity`), with a progress bar over masks.
pub fn evaluate_stored(
    f: &mut impl ValueFunction,
    masks: &MaskBatch,
    rows: Range<usize>,
    store_path: &Path,
    identity: &Value,
    per_batch: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut store = ValueStore::open(store_path, identity, masks.len())?;
    let done = rows.len() - store.missing(rows.clone()).len();
    if done > 0 {
        eprintln!(
            "resuming: {done} of {} masks already in {}",
            rows.len(),
            store_path.display()
        );
    }
    let bar = spex::progress::bar(rows.len() as u64, "masks", true);
    let values = evaluate_resumable(f, masks, rows, &mut store, per_batch, |k| bar.inc(k as u64))?;
    bar.finish_and_clear();
    Ok(values)
}
