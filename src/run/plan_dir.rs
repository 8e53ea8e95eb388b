//! A plan folder: `plan.json` (how to decode) and `masks.npy` (what to evaluate), written by
//! `spex plan` and the one-shot jobs, read back and checked by every later step.

use std::path::Path;

use serde_json::Value;

use crate::io::{read_json, read_masks_npy, write_json, write_masks_npy};
use crate::sparse::plan::{Plan, PlanFile};
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

/// Writes `plan.json` and `masks.npy` into `dir`, or checks that `dir` already holds this plan.
pub fn write_or_check_plan(dir: &Path, file: &PlanFile, masks: &MaskBatch) -> Result<()> {
    let path = dir.join("plan.json");
    if !path.exists() {
        write_masks_npy(&dir.join("masks.npy"), masks)?;
        write_json(&path, file)?;
        return Ok(());
    }
    let found: PlanFile = read_json(&path)?;
    if plan_identity(&found)? != plan_identity(file)? {
        return Err(Error::file(
            &path,
            "holds another plan than these options make (method, budget, degree, seed, keep probability or the number of players differ); use another output folder",
        ));
    }
    Ok(())
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

/// Reads `dir/plan.json` and checks its header.
pub fn read_plan(dir: &Path) -> Result<PlanFile> {
    let path = dir.join("plan.json");
    let file: PlanFile = read_json(&path)?;
    file.validate(&path)?;
    Ok(file)
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
    if masks != plan.masks()? {
        return Err(Error::file(
            &masks_path,
            "the masks differ from the ones plan.json describes; re-run `spex plan` or use the matching folder",
        ));
    }
    Ok(masks)
}
