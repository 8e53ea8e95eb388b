//! An output folder of a one-shot attribution command (`spex heads`, `spex tokens`): its plan,
//! checked against the arguments on a rerun, its resumable value store, and the decoded run.

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use spex::ablate::{evaluate_resumable, Shard, ValueStore};
use spex::io::{read_json, write_json, write_masks_npy, write_values_npy};
use spex::report::spectrum_file::SpectrumFile;
use spex::sparse::indices::{interaction_values, InteractionValues};
use spex::sparse::plan::{Plan, PlanFile};
use spex::sparse::{MaskBatch, ValueFunction};

use super::held_out::{evaluate_held_out, held_out_count};
use super::plan::DesignArgs;
use super::solve::{decode, Decoded, IndexArgs};

/// The options every one-shot command shares: the design, the index and the output folder.
#[derive(Debug, Args)]
pub struct OneShotArgs {
    /// The query design.
    #[command(flatten)]
    pub design: DesignArgs,
    /// The index reported.
    #[command(flatten)]
    pub index: IndexArgs,
    /// Output folder (created if missing). Rerunning the same command there resumes the run.
    #[arg(long)]
    pub out: PathBuf,
    /// Unseen masks that check the decoded spectrum out of sample (R^2 reported, never decoded):
    /// i.i.d. draws keeping each player with the design's probability (0.5 for SPEX), seeded from
    /// `--seed` [default: a tenth of the budget; none when the plan covers every mask]. 0 skips.
    #[arg(long)]
    pub held_out: Option<usize>,
}

/// A finished one-shot run.
pub struct OneShot {
    /// The plan.
    pub plan: Plan,
    /// Its masks `[m, n]`.
    pub masks: MaskBatch,
    /// The decoded spectrum and the reported index.
    pub decoded: Decoded,
    /// The reported index up to order 2: the pictures' nodes and edges.
    pub pairs: InteractionValues,
}

impl OneShot {
    /// `R^2 on the queried masks X, on N unseen masks Y` (the second part when checked).
    pub fn faithfulness(&self) -> String {
        let report = &self.decoded.report;
        let mut text = format!("R^2 on the queried masks {:.4}", report.r2_queried);
        if let Some(r2) = report.r2_held_out {
            text += &format!(", on {} unseen masks {r2:.4}", report.held_out);
        }
        text
    }
}

/// Plans `args.design` over `f`'s players in `args.out` (or checks the plan there), evaluates
/// every mask through `f`, `per_batch` masks per call, into `out/values.log` (header: `identity`
/// plus the plan), writes `values.npy`, evaluates the unseen masks of the held-out check
/// (`held_out.log`), decodes, and writes `interactions.json` (with both R^2) and `spectrum.json`.
pub fn one_shot(
    args: &OneShotArgs,
    f: &mut impl ValueFunction,
    mut identity: Value,
    per_batch: usize,
) -> anyhow::Result<OneShot> {
    let (out, index) = (args.out.as_path(), &args.index);
    let plan = args.design.build(f.n_players())?;
    let file = plan.to_file();
    let masks = plan.masks()?;
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output folder {}", out.display()))?;
    write_or_check_plan(out, &file, &masks)?;
    eprintln!(
        "{}: {} masks over {} players",
        plan.method(),
        masks.len(),
        f.n_players()
    );
    let shard = Shard::WHOLE;
    let base_identity = identity.clone();
    if let Some(map) = identity.as_object_mut() {
        map.insert("plan".into(), plan_identity(&file)?);
        map.insert("shard".into(), Value::String(shard.to_string()));
    }
    let stem = shard.stem();
    let store = out.join(format!("{stem}.log"));
    let values = evaluate_stored(
        f,
        &masks,
        shard.rows(masks.len()),
        &store,
        &identity,
        per_batch,
    )?;
    write_values_npy(&out.join(format!("{stem}.npy")), &values)?;
    let count = held_out_count(args.held_out, masks.len(), f.n_players());
    let held_out = (count > 0)
        .then(|| {
            let draw = (count, args.design.keep_prob, args.design.seed);
            evaluate_held_out(out, f, draw, &base_identity, per_batch)
        })
        .transpose()?;
    let mut decoded = decode(&plan, &masks, &values, index)?;
    if let Some(h) = &held_out {
        let r2 = h.r2(&decoded.spectrum, index.reference_refit(&plan));
        decoded.report = decoded.report.with_held_out(r2, count);
    }
    write_json(&out.join("interactions.json"), &decoded.report)?;
    write_json(
        &out.join("spectrum.json"),
        &SpectrumFile::new(&decoded.spectrum),
    )?;
    let pairs = interaction_values(&decoded.spectrum, index.index, 2)?;
    Ok(OneShot {
        plan,
        masks,
        decoded,
        pairs,
    })
}

/// Writes `text` to `path`, naming the file on failure.
pub fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

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
    let found: PlanFile = read_json(&path)?;
    if plan_identity(&found)? != plan_identity(file)? {
        anyhow::bail!(
            "{} holds another plan than these arguments make (method, budget, degree, seed, keep probability or the number of players differ); use another --out",
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
