//! The state of a plan folder's shards ([`plan_status`], behind `spex status`): per shard done
//! (values and identity written), partial (rows in its log) or missing, and the rows still to
//! evaluate; and the values of a finished plan found in its folder ([`plan_values`], behind
//! `spex solve --plan` without `--values`).
//!
//! The shard count is the one recorded with the plan (`shards.json`), else the one the folder's
//! shard files name. Logs are read without their lock, so the state of running shards shows.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::cluster::SLURM_FILE;
use super::decode::read_value_shards;
use super::shard::{plan_id, recorded_shard_count, Shard, ShardIdentity};
use super::store::ValueStore;
use crate::sparse::plan::PlanFile;
use crate::{Error, Result};

/// How far one shard got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardState {
    /// Its values file and identity are written.
    Done,
    /// Its log holds `stored` rows, but its values file is not written (all rows stored: the run
    /// stopped before writing it).
    Partial {
        /// Rows stored in its log.
        stored: usize,
    },
    /// Nothing of it is written.
    Missing,
}

/// One shard of a plan folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardStatus {
    /// Which shard.
    pub shard: Shard,
    /// Its mask rows, when known (from its files, or the batches of another shard's run).
    pub rows: Option<Range<usize>>,
    /// How far it got.
    pub state: ShardState,
    /// Its values file, written or to be written (`PLAN/values-i-of-N.npy`).
    pub values: PathBuf,
}

/// Every shard of a plan folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanStatus {
    /// The plan folder.
    pub plan_dir: PathBuf,
    /// Masks in the plan.
    pub masks: usize,
    /// Whether the shard count comes from `shards.json` (else from the shard files found).
    pub recorded: bool,
    /// The shards, by index.
    pub shards: Vec<ShardStatus>,
    /// Rows of the plan not stored by any shard yet.
    pub to_evaluate: usize,
}

impl PlanStatus {
    /// The shards not done.
    pub fn unfinished(&self) -> impl Iterator<Item = &ShardStatus> {
        self.shards.iter().filter(|s| s.state != ShardState::Done)
    }

    /// How to finish shard `shard`: `spex run` (the run's model and task flags to add), and the
    /// emitted Slurm script when there is one.
    pub fn finish_command(&self, shard: Shard) -> String {
        let dir = self.plan_dir.display();
        let run =
            format!("`spex run --plan {dir} --shard {shard}` with the run's model and task flags");
        if self.plan_dir.join(SLURM_FILE).exists() {
            format!(
                "{run}, or `sbatch --array=0 {} {shard}`",
                self.plan_dir.join(SLURM_FILE).display()
            )
        } else {
            run
        }
    }
}

impl fmt::Display for ShardStatus {
    /// `shard i/N  rows a..b  done|partial (k of r rows)|missing`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.rows.as_ref().map_or("rows ?".to_string(), |r| {
            format!("rows {}..{}", r.start, r.end)
        });
        let of = self
            .rows
            .as_ref()
            .map_or(String::new(), |r| format!(" of {}", r.len()));
        let state = match self.state {
            ShardState::Done => format!("done ({})", self.values.display()),
            ShardState::Partial { stored } => {
                format!("partial ({stored}{of} rows stored, values not written)")
            }
            ShardState::Missing => "missing".to_string(),
        };
        write!(f, "shard {}  {rows}  {state}", self.shard)
    }
}

/// The shards of the plan in `plan_dir` (`plan`, its plan.json) and how far each got.
///
/// Errors name the file: a plan folder holding shards of several splits, a damaged log, a
/// `shards.json` of another plan.
pub fn plan_status(plan_dir: &Path, plan: &PlanFile) -> Result<PlanStatus> {
    let masks = plan.queries;
    let recorded = recorded_shard_count(plan_dir)?;
    let count = match recorded {
        Some(count) => count,
        None => found_count(plan_dir)?,
    };
    let id = plan_id(plan)?;
    let mut grain = None;
    let mut found = Vec::with_capacity(count);
    for index in 0..count {
        let shard = Shard { index, count };
        let stem = shard.stem();
        let values = plan_dir.join(format!("{stem}.npy"));
        let identity = match values.exists() {
            true => ShardIdentity::read_beside(&values)?,
            false => None,
        };
        let state = match identity.filter(|i| i.shard() == shard && i.plan_id == id) {
            Some(identity) => {
                grain = grain.or(Some(identity.grain));
                (ShardState::Done, Some(identity.rows))
            }
            // The whole plan's values without an identity (`spex heads`, another tool).
            None if count == 1 && values.exists() => (ShardState::Done, Some(0..masks)),
            None => match ValueStore::peek(&plan_dir.join(format!("{stem}.log")), masks)? {
                Some((run, stored)) => {
                    let g = run.get("grain").and_then(serde_json::Value::as_u64);
                    let g = g.map(|g| g as usize).filter(|_| count > 1);
                    grain = grain.or(g);
                    let stored = stored.iter().flatten().count();
                    (ShardState::Partial { stored }, None)
                }
                None => (ShardState::Missing, None),
            },
        };
        found.push((shard, values, state));
    }
    // One plan's shards share their batches: rows known for one shard are known for all. A
    // whole plan is one shard whatever its batches.
    let grain = grain.or((count == 1).then_some(1));
    let mut done_or_stored = 0;
    let shards = found
        .into_iter()
        .map(|(shard, values, (state, rows))| {
            let rows = rows.or_else(|| grain.map(|g| shard.rows(masks, g)));
            done_or_stored += match state {
                ShardState::Done => rows.as_ref().map_or(0, Range::len),
                ShardState::Partial { stored } => stored,
                ShardState::Missing => 0,
            };
            ShardStatus {
                shard,
                rows,
                state,
                values,
            }
        })
        .collect();
    Ok(PlanStatus {
        plan_dir: plan_dir.to_path_buf(),
        masks,
        recorded: recorded.is_some(),
        shards,
        to_evaluate: masks.saturating_sub(done_or_stored),
    })
}

/// The shard count the files of `plan_dir` name (`values-i-of-N.*`; `values.*` is one shard), 1
/// when there are none; files of several counts are an error naming one of each.
fn found_count(plan_dir: &Path) -> Result<usize> {
    let entries = std::fs::read_dir(plan_dir).map_err(|e| Error::file(plan_dir, e))?;
    let mut counts: BTreeSet<(usize, String)> = BTreeSet::new();
    for entry in entries {
        let name = entry.map_err(|e| Error::file(plan_dir, e))?.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = [".npy", ".json", ".log"]
            .iter()
            .find_map(|ext| name.strip_suffix(ext))
        else {
            continue;
        };
        let count = match stem {
            "values" => Some(1),
            _ => stem
                .strip_prefix("values-")
                .and_then(|s| s.split_once("-of-"))
                .and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)))
                .filter(|(i, n)| i < n)
                .map(|(_, n)| n),
        };
        if let Some(n) = count.filter(|&n| !counts.iter().any(|(c, _)| *c == n)) {
            counts.insert((n, name.to_string()));
        }
    }
    match counts.len() {
        0 => Ok(1),
        1 => Ok(counts.iter().next().map_or(1, |(n, _)| *n)),
        _ => {
            let each: Vec<String> = counts
                .iter()
                .map(|(n, name)| format!("{name} ({n} shards)"))
                .collect();
            Err(Error::file(
                plan_dir,
                format!(
                    "holds shards of several splits ({}): record the split the plan is run in with `spex plan --shards N`, or move the others aside",
                    each.join(", ")
                ),
            ))
        }
    }
}

/// The values of every mask of the plan in `plan_dir` (`plan`, its plan.json) from the shard
/// files found there: refused while any shard is partial or missing (naming each and the command
/// that finishes it); every `.npy` with a shard identity beside it is joined by
/// [`read_value_shards`], so a shard present twice (a copy of a rerun) is used once when both
/// copies agree and refused when they do not. A one-shard plan's `values.npy` without an identity
/// (`spex heads`, or another tool's values) is read as it is.
pub fn plan_values(plan_dir: &Path, plan: &PlanFile) -> Result<Vec<f64>> {
    let status = plan_status(plan_dir, plan)?;
    let unfinished: Vec<String> = status
        .unfinished()
        .map(|s| format!("{s}: finish it with {}", status.finish_command(s.shard)))
        .collect();
    if !unfinished.is_empty() {
        return Err(Error::file(
            plan_dir,
            format!(
                "{} of the {} shards not done, {} of {} rows to evaluate: {}; then solve again",
                unfinished.len(),
                status.shards.len(),
                status.to_evaluate,
                status.masks,
                unfinished.join("; ")
            ),
        ));
    }
    let mut files = shard_files(plan_dir)?;
    if files.is_empty() {
        // One shard, done, without an identity: the whole plan's plain values file.
        files.extend(status.shards.into_iter().map(|s| s.values));
    }
    read_value_shards(plan_dir, plan, &files, "plan")
}

/// The values files in `plan_dir` with a shard identity beside them (every `X.npy` but masks.npy
/// with an `X.json` identity), sorted by name.
pub fn shard_files(plan_dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(plan_dir).map_err(|e| Error::file(plan_dir, e))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::file(plan_dir, e))?.path();
        let npy = path.extension().is_some_and(|e| e == "npy");
        if npy
            && path.file_name() != Some("masks.npy".as_ref())
            && ShardIdentity::read_beside(&path)?.is_some()
        {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}
