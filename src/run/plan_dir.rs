//! A plan folder: `plan.json` (how to decode) and `masks.npy` (what to evaluate), written by
//! `spex plan` and the one-shot jobs, read back and checked by every later step.

use std::path::Path;

use serde_json::Value;

use crate::io::{json_from_bytes, read_masks_npy, write_json, write_masks_npy};
use crate::sparse::plan::{Plan, PlanFile};
use crate::sparse::proxy::ProxyPlan;
use crate::sparse::spex::SpexPlan;
use crate::sparse::MaskBatch;
use crate::{Error, Result};

/// Writes `plan.json` and `masks.npy` for `plan` into `dir` (created if missing); returns the masks.
pub fn write_plan(dir: &Path, plan: &Plan) -> Result<MaskBatch> {
    let masks = plan.masks()?;
    create_dir(dir)?;
    write_masks_npy(&dir.join("masks.npy"), &masks)?;
    write_json(&dir.join("plan.json"), &plan.to_file())?;
    Ok(masks)
}

/// Creates the output folder `dir` and its parents, naming it on failure.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create the output folder: {e}")))
}

/// Writes `plan.json` and `masks.npy` into `dir`, or checks that `dir` already holds this plan
/// (the settings in plan.json, and masks.npy against the masks they describe; a missing masks.npy
/// is written again).
pub fn write_or_check_plan(dir: &Path, file: &PlanFile, masks: &MaskBatch) -> Result<()> {
    let path = dir.join("plan.json");
    if !check_existing_plan(dir, file)? {
        write_masks_npy(&dir.join("masks.npy"), masks)?;
        write_json(&path, file)?;
        return Ok(());
    }
    let masks_path = dir.join("masks.npy");
    if !masks_path.exists() {
        return write_masks_npy(&masks_path, masks);
    }
    let found = read_masks_npy(&masks_path)?;
    if &found != masks {
        return Err(Error::file(
            &masks_path,
            format!(
                "holds other masks than plan.json describes ({}): it was replaced or damaged; delete it and run again to have it written anew",
                first_mask_difference(&found, masks)
            ),
        ));
    }
    Ok(())
}

/// Whether `dir` holds a plan.json, checking that it is `file`'s plan: an error naming every
/// setting that differs otherwise.
pub fn check_existing_plan(dir: &Path, file: &PlanFile) -> Result<bool> {
    let path = dir.join("plan.json");
    if !path.exists() {
        return Ok(false);
    }
    let found = read_plan_file(&path)?;
    let theirs = plan_identity(&found)?;
    let ours = plan_identity(file)?;
    let mut diffs = Vec::new();
    differences("", &theirs, &ours, &mut diffs);
    if diffs.is_empty() {
        return Ok(true);
    }
    diffs.sort_by_key(|(field, _, _)| {
        SETTINGS
            .iter()
            .position(|s| s == field)
            .unwrap_or(SETTINGS.len())
    });
    let (field, first, _) = diffs[0].clone();
    let listed: Vec<String> = diffs
        .iter()
        .take(4)
        .map(|(f, a, b)| format!("`{f}` is {a} there, {b} here"))
        .collect();
    Err(Error::PlanMismatch {
        path,
        field,
        theirs: first,
        differences: listed.join("; "),
    })
}

/// The settings a user chooses, most telling first: a mismatch names these before what follows
/// from them (the BCH code, the number of masks).
const SETTINGS: [&str; 7] = [
    "method",
    "n_players",
    "budget",
    "seed",
    "keep_probability",
    "max_degree",
    "decoder",
];

/// Appends `(dotted path, theirs, ours)` for every leaf where `a` and `b` differ.
fn differences(prefix: &str, a: &Value, b: &Value, out: &mut Vec<(String, String, String)>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                let missing = Value::String("(absent)".into());
                differences(
                    &path,
                    x.get(k).unwrap_or(&missing),
                    y.get(k).unwrap_or(&missing),
                    out,
                );
            }
        }
        _ if a != b => out.push((prefix.to_string(), a.to_string(), b.to_string())),
        _ => {}
    }
}

/// `row r (first of k)` for the first row where `a` and `b` differ, or the two sizes.
fn first_mask_difference(a: &MaskBatch, b: &MaskBatch) -> String {
    if (a.len(), a.n_players()) != (b.len(), b.n_players()) {
        return format!(
            "{} masks over {} players, the plan has {} over {}",
            a.len(),
            a.n_players(),
            b.len(),
            b.n_players()
        );
    }
    let mut rows = (0..a.len()).filter(|&r| a.row_words(r) != b.row_words(r));
    match rows.next() {
        Some(r) => format!("row {r} differs, and {} more", rows.count()),
        None => "same rows".to_string(),
    }
}

/// The plan as a run's identity: every field but the writer's version.
pub fn plan_identity(file: &PlanFile) -> Result<Value> {
    let mut v = serde_json::to_value(file)
        .map_err(|e| Error::invalid("plan", format!("cannot serialise: {e}")))?;
    if let Some(map) = v.as_object_mut() {
        map.remove("spex_version");
    }
    Ok(v)
}

/// Reads `dir/plan.json` and checks its header and every field.
pub fn read_plan(dir: &Path) -> Result<PlanFile> {
    let path = dir.join("plan.json");
    let file = read_plan_file(&path)?;
    file.validate(&path)?;
    Ok(file)
}

/// Parses a plan.json, naming the field of a value of the wrong type: the method's fields sit in
/// a flattened, tagged part that the parser reads as a whole, so a failure there is read again
/// through the method's own struct, which names it.
pub fn read_plan_file(path: &Path) -> Result<PlanFile> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    let err = match json_from_bytes::<PlanFile>(path, &bytes) {
        Ok(file) => return Ok(file),
        Err(err) => err,
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(err);
    };
    let named = match value.get("method").and_then(Value::as_str) {
        Some("spex") => serde_path_to_error::deserialize::<_, SpexPlan>(&value).err(),
        Some("proxyspex") => serde_path_to_error::deserialize::<_, ProxyPlan>(&value).err(),
        _ => None,
    };
    match named {
        Some(e) if e.path().to_string() != "." => {
            let field = e.path().to_string();
            Err(Error::file(
                path,
                format!("field `{field}`: {}", e.into_inner()),
            ))
        }
        _ => Err(err),
    }
}

/// Reads `dir/masks.npy` and checks that it holds the masks `plan` describes.
pub fn read_plan_masks(dir: &Path, plan: &Plan) -> Result<MaskBatch> {
    let masks_path = dir.join("masks.npy");
    let masks = read_masks_npy(&masks_path)?;
    if masks.n_players() != plan.n_players() {
        return Err(Error::file(
            &masks_path,
            format!(
                "masks have {} players but plan.json is for n = {}: the two files come from different plans",
                masks.n_players(),
                plan.n_players()
            ),
        ));
    }
    let expected = plan.masks()?;
    if masks != expected {
        return Err(Error::file(
            &masks_path,
            format!(
                "the masks differ from the ones plan.json describes ({}); re-run `spex plan` or use the matching folder",
                first_mask_difference(&masks, &expected)
            ),
        ));
    }
    Ok(masks)
}
