//! [`Shard`]: `i/N`, the `i`-th of `N` contiguous slices of a plan's masks (a cluster array task's
//! share), cut on evaluation-batch boundaries so that shards hand the model the batches a
//! one-machine run would (and give the same bytes); the shard count recorded with the plan
//! (`PLAN/shards.json`, [`record_shard_count`]); and a shard's [`ShardIdentity`]:
//! `values-i-of-N.json`, written beside `values-i-of-N.npy`, names the plan, the slice, its rows,
//! the run and a digest of the values, so that `spex solve` puts shards in order itself and
//! refuses any that do not belong together ([`join_shards`]).
//!
//! The identity is a file of its own because NumPy's `.npy` reader refuses extra header keys:
//! the values stay a plain `.npy` any tool reads.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::evaluate::evaluate_stored;
use super::head_values::HeadValues;
use super::plan_dir::{plan_identity, read_plan, read_plan_masks};
use crate::io::{json_from_bytes, write_json, write_values_npy};
use crate::progress::TerminalBar;
use crate::sparse::plan::PlanFile;
use crate::{Error, Result};

/// Format marker of a shard identity file (`"format"` in `values-i-of-N.json`).
pub const SHARD_FORMAT: &str = "spex-shard-1";

/// The file beside plan.json that records how many shards the plan is cut into.
pub const SHARDS_FILE: &str = "shards.json";

/// Format marker of [`SHARDS_FILE`] (`"format"`).
pub const SHARDS_FORMAT: &str = "spex-shards-1";

/// Most missing shards or differing rows an error lists before it says how many more there are.
const LISTED: usize = 8;

/// Slice `index` (from 0) of `count` near-equal contiguous slices of the masks, cut on multiples of
/// the evaluation batch (the grain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, `0..count`.
    pub index: usize,
    /// How many slices.
    pub count: usize,
}

impl Shard {
    /// The whole plan as one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// The mask rows of this shard out of `m` when masks are evaluated in batches of `grain`
    /// (`[k * grain, (k + 1) * grain)`, as [`evaluate_resumable`](super::evaluate_resumable) does):
    /// the `b = ceil(m / grain)` batches are cut into `count` near-equal runs, shard `i` starting
    /// at row `grain * floor(i * b / count)` (cut to `m`). A grain of 1 cuts rows
    /// `[i * m / count, (i + 1) * m / count)`. Computed without overflow; empty when `count` is 0.
    pub fn rows(&self, m: usize, grain: usize) -> Range<usize> {
        let grain = grain.max(1) as u128;
        let batches = (m as u128).div_ceil(grain);
        let at = |i: usize| {
            let b = (i as u128 * batches)
                .checked_div(self.count as u128)
                .unwrap_or(0);
            usize::try_from((b * grain).min(m as u128)).unwrap_or(m)
        };
        at(self.index)..at(self.index.saturating_add(1))
    }

    /// File stem of this shard's outputs: `values` for the whole plan, else `values-{i}-of-{N}`.
    pub fn stem(&self) -> String {
        if *self == Shard::WHOLE {
            "values".to_string()
        } else {
            format!("values-{}-of-{}", self.index, self.count)
        }
    }
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Shard> {
        let bad = || {
            Error::invalid(
                "shard",
                format!("`{s}` is not `i/N` with 0 <= i < N (e.g. 0/4 for the first of four)"),
            )
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `values-i-of-N.json`: what a shard's values file holds and where they came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardIdentity {
    /// [`SHARD_FORMAT`].
    pub format: String,
    /// The plan the masks came from ([`plan_id`]).
    pub plan_id: String,
    /// Which slice, `0..count`.
    pub index: usize,
    /// How many slices the plan's masks were cut into.
    pub count: usize,
    /// Number of masks in the plan.
    pub masks: usize,
    /// Masks per evaluation batch, on whose multiples the shards are cut ([`Shard::rows`]); 1 in
    /// identities written before shards were cut on batches, whose rows it reproduces.
    #[serde(default = "one")]
    pub grain: usize,
    /// The mask rows whose values the file holds, in order: `{"start": a, "end": b}`, `[a, b)`.
    pub rows: Range<usize>,
    /// [`values_digest`] of the values: ties this identity to its values file.
    pub values_digest: String,
    /// What computed the values: model, dtype, task, questions, value kind, ablation, players.
    pub run: Value,
}

impl ShardIdentity {
    /// The identity of `values`, shard `shard` of a plan of `masks` masks with id `plan_id`
    /// evaluated `grain` masks per batch, computed by the run `run`.
    pub fn new(
        plan_id: &str,
        (shard, grain): (Shard, usize),
        masks: usize,
        values: &[f64],
        run: Value,
    ) -> Self {
        ShardIdentity {
            format: SHARD_FORMAT.to_string(),
            plan_id: plan_id.to_string(),
            index: shard.index,
            count: shard.count,
            masks,
            grain,
            rows: shard.rows(masks, grain),
            values_digest: values_digest(values),
            run,
        }
    }

    /// The slice this identity names.
    pub fn shard(&self) -> Shard {
        Shard {
            index: self.index,
            count: self.count,
        }
    }

    /// The identity beside the values file `values` (`X.json` for `X.npy`), `None` when there is
    /// none: other tools' values and text files carry no identity.
    ///
    /// A `X.json` beside `X.npy` that is not a shard identity is an error naming it, never skipped.
    pub fn read_beside(values: &Path) -> Result<Option<ShardIdentity>> {
        let Some(path) = identity_path(values) else {
            return Ok(None);
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::file(&path, e)),
        };
        let identity: ShardIdentity = serde_json::from_str(&text).map_err(|e| {
            Error::file(
                &path,
                format!(
                    "is not the shard identity `spex run --shard` writes beside {} ({e}); spex reads `X.json` beside `X.npy` as its identity: rename one of them, or rerun the shard",
                    values.display()
                ),
            )
        })?;
        if identity.format != SHARD_FORMAT {
            return Err(Error::file(
                &path,
                format!(
                    "shard identity format `{}`, but this spex reads `{SHARD_FORMAT}`: rerun the shard with this spex",
                    identity.format
                ),
            ));
        }
        Ok(Some(identity))
    }
}

/// The grain of identities that predate it.
fn one() -> usize {
    1
}

/// Where the identity of the values file `values` is: `X.json` beside `X.npy`; `None` for
/// files that are not `.npy` (text values carry no identity).
pub fn identity_path(values: &Path) -> Option<PathBuf> {
    let npy = values.extension().is_some_and(|e| e == "npy");
    npy.then(|| values.with_extension("json"))
}

/// The plan's id: FNV-1a (64-bit, hex) of its identity ([`plan_identity`]: every field of
/// plan.json but the writer's version) as compact JSON. The masks follow from the plan, and
/// `read_plan_masks` checks that masks.npy holds them.
pub fn plan_id(file: &PlanFile) -> Result<String> {
    let identity = plan_identity(file)?;
    let text = serde_json::to_string(&identity)
        .map_err(|e| Error::invalid("plan", format!("cannot serialise: {e}")))?;
    Ok(fnv1a(text.bytes()))
}

/// FNV-1a (64-bit, hex) of the values as little-endian `f64`s.
pub fn values_digest(values: &[f64]) -> String {
    fnv1a(values.iter().flat_map(|v| v.to_le_bytes()))
}

fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `PLAN/shards.json`: the shard count of the plan's shards, for the plan it names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardCount {
    /// [`SHARDS_FORMAT`].
    pub format: String,
    /// The plan's id ([`plan_id`]).
    pub plan_id: String,
    /// How many shards: `spex run --shard i/N` takes N from here.
    pub count: usize,
}

/// Records in `plan_dir/shards.json` that the plan's masks are cut into `count` shards; returns
/// the file. An existing record of another count is an error naming both (shards of two splits
/// cannot be joined).
pub fn record_shard_count(plan_dir: &Path, count: usize) -> Result<PathBuf> {
    if count == 0 {
        return Err(Error::invalid("shards", "0 shards: give 1 or more"));
    }
    check_shard_count(plan_dir, count, &format!("`shards` {count}"))?;
    let path = plan_dir.join(SHARDS_FILE);
    let record = ShardCount {
        format: SHARDS_FORMAT.to_string(),
        plan_id: plan_id(&read_plan(plan_dir)?)?,
        count,
    };
    write_json(&path, &record)?;
    Ok(path)
}

/// The shard count recorded in `plan_dir/shards.json`, `None` when there is no record; a record
/// of another format or of another plan is an error naming the file.
pub fn recorded_shard_count(plan_dir: &Path) -> Result<Option<usize>> {
    let path = plan_dir.join(SHARDS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::file(&path, e)),
    };
    let record: ShardCount = json_from_bytes(&path, &bytes)?;
    if record.format != SHARDS_FORMAT {
        return Err(Error::file(
            &path,
            format!(
                "format `{}`, but this spex reads `{SHARDS_FORMAT}`: record the count again with `spex plan --shards N`",
                record.format
            ),
        ));
    }
    let id = plan_id(&read_plan(plan_dir)?)?;
    if record.plan_id != id || record.count == 0 {
        return Err(Error::file(
            &path,
            format!(
                "records {} shards of plan {}, but plan.json beside it is plan {id}: the file was copied from another plan folder; delete it or record the count again",
                record.count, record.plan_id
            ),
        ));
    }
    Ok(Some(record.count))
}

/// Checks that `count` shards (from `source`, e.g. `SLURM_ARRAY_TASK_COUNT=3`) is the count
/// recorded with the plan in `plan_dir`, if one is: a mismatch names both.
pub fn check_shard_count(plan_dir: &Path, count: usize, source: &str) -> Result<()> {
    match recorded_shard_count(plan_dir)? {
        Some(recorded) if recorded != count => Err(Error::file(
            plan_dir.join(SHARDS_FILE),
            format!(
                "records {recorded} shards, but {source} makes {count}: shards of two splits cannot be joined; run the {recorded} shards the plan was cut into (or plan into another folder for another split)"
            ),
        )),
        _ => Ok(()),
    }
}

/// A shard evaluated: where its values and identity went and which mask rows they are.
pub struct ShardRun {
    /// `PLAN/values-i-of-N.npy` (`values.npy` for the whole plan).
    pub path: PathBuf,
    /// `PLAN/values-i-of-N.json`, its [`ShardIdentity`].
    pub identity: PathBuf,
    /// The mask rows evaluated.
    pub rows: Range<usize>,
}

/// Evaluates shard `shard` of the plan in `plan_dir` as head masks through `hv`, resumably
/// (`PLAN/values-i-of-N.log`, cut on `hv`'s batches), and writes its values as
/// `PLAN/values-i-of-N.npy` and their [`ShardIdentity`] as `PLAN/values-i-of-N.json`.
///
/// A shard count other than the one recorded with the plan ([`check_shard_count`]) is an error.
pub fn run_shard(plan_dir: &Path, shard: Shard, hv: &HeadValues) -> Result<ShardRun> {
    let file = read_plan(plan_dir)?;
    check_shard_count(plan_dir, shard.count, &format!("shard {shard}"))?;
    let masks = read_plan_masks(plan_dir, &file.plan)?;
    hv.check_players(file.plan.n_players(), &plan_dir.display().to_string())?;
    let grain = hv.per_batch();
    let rows = shard.rows(masks.len(), grain);
    let mut extra = vec![
        ("plan", plan_identity(&file)?),
        ("shard", Value::String(shard.to_string())),
    ];
    if shard.count > 1 {
        // Names the batches the slices were cut on, so that `spex status` knows every shard's rows.
        extra.push(("grain", Value::from(grain)));
    }
    let identity = hv.identity(&extra);
    let stem = shard.stem();
    let store = plan_dir.join(format!("{stem}.log"));
    let scorer = hv.value_scorer()?;
    let mut f = hv.value_function(&scorer);
    let values = evaluate_stored(
        &mut f,
        &masks,
        rows.clone(),
        &store,
        &identity,
        hv.per_batch(),
        &mut TerminalBar::default(),
    )?;
    let path = plan_dir.join(format!("{stem}.npy"));
    write_values_npy(&path, &values)?;
    // Written after the values: a crash between the two leaves a stale identity whose digest
    // does not match, which `spex solve` refuses.
    let id = ShardIdentity::new(
        &plan_id(&file)?,
        (shard, grain),
        masks.len(),
        &values,
        hv.identity(&[]),
    );
    let id_path = plan_dir.join(format!("{stem}.json"));
    write_json(&id_path, &id)?;
    Ok(ShardRun {
        path,
        identity: id_path,
        rows,
    })
}

/// A values file read back with the identity found beside it.
pub struct IdentifiedValues {
    /// The values file (`values-i-of-N.npy`).
    pub path: PathBuf,
    /// Its identity (`values-i-of-N.json`).
    pub identity: ShardIdentity,
    /// Its values, as read.
    pub values: Vec<f64>,
}

impl IdentifiedValues {
    /// `PATH (shard i/N, rows a..b)`, how errors name a shard.
    fn label(&self) -> String {
        let rows = &self.identity.rows;
        format!(
            "{} (shard {}, rows {}..{})",
            self.path.display(),
            self.identity.shard(),
            rows.start,
            rows.end
        )
    }

    /// Checks the shard against the plan (id `plan_id`, `masks` masks, plan.json at `plan_json`)
    /// and against its own values; errors name the file at fault.
    fn check(&self, plan_json: &Path, plan_id: &str, masks: usize) -> Result<()> {
        let id = &self.identity;
        let id_path = identity_path(&self.path).unwrap_or_else(|| self.path.clone());
        if id.plan_id != plan_id {
            return Err(Error::file(
                &id_path,
                format!(
                    "shard {}/{} of another plan (plan id {}) than {} (plan id {plan_id}): pass the shards run on this plan, or the plan folder they were run on",
                    id.index,
                    id.count,
                    id.plan_id,
                    plan_json.display()
                ),
            ));
        }
        let damaged = |what: String| {
            Error::file(
                &id_path,
                format!(
                    "{what}: the file was edited or damaged; rerun `spex run --shard` for this slice"
                ),
            )
        };
        if id.count == 0 || id.index >= id.count {
            return Err(damaged(format!(
                "shard {}/{} is not i/N with 0 <= i < N",
                id.index, id.count
            )));
        }
        let rows = id.shard().rows(masks, id.grain);
        if id.masks != masks || id.rows != rows {
            return Err(damaged(format!(
                "says shard {} holds rows {}..{} of {} masks, but shard {} of this plan's {masks} masks is rows {}..{}",
                id.shard(),
                id.rows.start,
                id.rows.end,
                id.masks,
                id.shard(),
                rows.start,
                rows.end
            )));
        }
        let digest = values_digest(&self.values);
        if self.values.len() != rows.len() || digest != id.values_digest {
            return Err(Error::file(
                &self.path,
                format!(
                    "holds {} values (digest {digest}), but its identity {} describes the {} values of shard {} (digest {}): one of the two files was replaced; rerun `spex run --shard {}`",
                    self.values.len(),
                    id_path.display(),
                    rows.len(),
                    id.shard(),
                    id.values_digest,
                    id.shard()
                ),
            ));
        }
        Ok(())
    }
}

/// The values of every mask of the plan in `plan_dir` (`plan` its plan.json) from shards given
/// in any order: each checked against the plan and its own values, ordered by their rows,
/// identical copies of one shard used once (with a warning).
///
/// Errors name the files: a shard of another plan, a mix of splits (`i/N` with several `N`, whose
/// rows would overlap), shards of different runs (naming the fields that differ), two copies of
/// one shard whose values disagree (naming the first rows), and missing shards (their rows and
/// the file `spex run` would write). `field` names the argument the paths came from.
pub fn join_shards(
    plan_dir: &Path,
    plan: &PlanFile,
    mut shards: Vec<IdentifiedValues>,
    field: &str,
) -> Result<Vec<f64>> {
    let id = plan_id(plan)?;
    let masks = plan.queries;
    for s in &shards {
        s.check(&plan_dir.join("plan.json"), &id, masks)?;
    }
    let Some(first) = shards.first() else {
        return Ok(Vec::new());
    };
    let (count, grain) = (first.identity.count, first.identity.grain);
    if shards
        .iter()
        .any(|s| (s.identity.count, s.identity.grain) != (count, grain))
    {
        let each: Vec<String> = shards.iter().map(IdentifiedValues::label).collect();
        return Err(Error::invalid(
            field,
            format!(
                "shards of different splits are mixed, so their rows overlap or leave gaps: {}; pass the N shards of one `--shard i/N` split",
                each.join(", ")
            ),
        ));
    }
    for s in &shards[1..] {
        let diffs = differences(&first.identity.run, &s.identity.run);
        if !diffs.is_empty() {
            return Err(Error::invalid(
                field,
                format!(
                    "{} and {} were computed by different runs ({}): pass the shards of one run",
                    first.path.display(),
                    s.path.display(),
                    diffs.join("; ")
                ),
            ));
        }
    }
    shards.sort_by_key(|s| s.identity.index);
    let mut kept: Vec<IdentifiedValues> = Vec::with_capacity(count.min(shards.len()));
    for s in shards {
        if let Some(prev) = kept.last().filter(|p| p.identity.index == s.identity.index) {
            let rows = disagreeing_rows(prev, &s);
            if !rows.is_empty() {
                return Err(Error::invalid(
                    field,
                    format!(
                        "{} and {} are the same shard but their values disagree at row(s) {}: use one of them (pass it alone, or move the other aside)",
                        prev.label(),
                        s.path.display(),
                        rows
                    ),
                ));
            }
            tracing::warn!(
                "{} and {} are the same shard {} with identical values: using it once",
                prev.path.display(),
                s.path.display(),
                s.identity.shard()
            );
            continue;
        }
        kept.push(s);
    }
    let present: BTreeSet<usize> = kept.iter().map(|s| s.identity.index).collect();
    let missing: Vec<Shard> = (0..count)
        .filter(|i| !present.contains(i))
        .map(|index| Shard { index, count })
        .collect();
    if !missing.is_empty() {
        let named: Vec<String> = missing
            .iter()
            .take(LISTED)
            .map(|s| {
                let rows = s.rows(masks, grain);
                format!(
                    "{s} (rows {}..{}, {})",
                    rows.start,
                    rows.end,
                    plan_dir.join(format!("{}.npy", s.stem())).display()
                )
            })
            .collect();
        let more = missing.len().saturating_sub(LISTED);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let given: Vec<String> = kept.iter().map(|s| s.path.display().to_string()).collect();
        return Err(Error::invalid(
            field,
            format!(
                "{} of the {count} shards missing: {}{more} (given: {}); run `spex run --plan {} --shard i/{count}` for each and pass its values too",
                missing.len(),
                named.join(", "),
                given.join(", "),
                plan_dir.display()
            ),
        ));
    }
    Ok(kept.into_iter().flat_map(|s| s.values).collect())
}

/// The plan rows (comma separated, the first [`LISTED`]) where two copies of a shard differ, bit
/// for bit; empty when they are identical.
fn disagreeing_rows(a: &IdentifiedValues, b: &IdentifiedValues) -> String {
    let start = a.identity.rows.start;
    let rows: Vec<String> = a
        .values
        .iter()
        .zip(&b.values)
        .enumerate()
        .filter(|(_, (x, y))| x.to_bits() != y.to_bits())
        .take(LISTED)
        .map(|(k, (x, y))| format!("{} ({x} vs {y})", start + k))
        .collect();
    rows.join(", ")
}

/// The run identity of the first of `paths` with a [`ShardIdentity`] beside it, and that file;
/// `None` when no file carries one (plain values from another tool).
pub fn first_run(paths: &[PathBuf]) -> Result<Option<(PathBuf, Value)>> {
    for path in paths {
        if let Some(identity) = ShardIdentity::read_beside(path)? {
            return Ok(Some((path.clone(), identity.run)));
        }
    }
    Ok(None)
}

/// Checks that the values in `checked` (argument `field`) were computed by the same run
/// (model, task, questions, value kind, ablation, players) as those in `reference`, where both
/// carry shard identities: an R^2 on another run's values measures nothing.
pub fn check_same_run(reference: &[PathBuf], checked: &[PathBuf], field: &str) -> Result<()> {
    let (Some((a_path, a)), Some((b_path, b))) = (first_run(reference)?, first_run(checked)?)
    else {
        return Ok(());
    };
    let diffs = differences(&a, &b);
    if diffs.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(
        field,
        format!(
            "{} and {} were computed by different runs ({}): evaluate the unseen masks with the same model, task and ablation",
            a_path.display(),
            b_path.display(),
            diffs.join("; ")
        ),
    ))
}

/// `field: A vs B` for each top-level field that differs between two run identities.
fn differences(a: &Value, b: &Value) -> Vec<String> {
    if a == b {
        return Vec::new();
    }
    let empty = serde_json::Map::new();
    let (ma, mb) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    let keys: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
    let show = |v: Option<&Value>| v.map_or("(absent)".to_string(), Value::to_string);
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| ma.get(*k) != mb.get(*k))
        .map(|k| format!("{k}: {} vs {}", show(ma.get(k)), show(mb.get(k))))
        .collect();
    if diffs.is_empty() {
        vec![format!("{a} vs {b}")]
    } else {
        diffs
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::run::Design;
    use serde_json::json;

    #[test]
    fn shards_cover_every_row_once_in_order_cut_on_batches() {
        for m in [0, 1, 7, 100] {
            for count in 1..6 {
                for grain in [0, 1, 3, 21, 200] {
                    let shards = (0..count).map(|index| Shard { index, count }.rows(m, grain));
                    for r in shards.clone() {
                        assert!(r.start % grain.max(1) == 0 || r.start == m, "{r:?}");
                    }
                    let rows: Vec<usize> = shards.flatten().collect();
                    assert_eq!(rows, (0..m).collect::<Vec<_>>(), "m {m}, N {count}");
                }
            }
        }
        // 100 masks in batches of 21: 5 batches, shared 1, 1, 1, 2 by four shards.
        let cuts: Vec<Range<usize>> = (0..4)
            .map(|index| Shard { index, count: 4 }.rows(100, 21))
            .collect();
        assert_eq!(cuts, vec![0..21, 21..42, 42..63, 63..100]);
        assert_eq!(Shard { index: 1, count: 4 }.rows(100, 1), 25..50);
    }

    #[test]
    fn rows_never_overflow_or_divide_by_zero() {
        let huge = Shard {
            index: usize::MAX - 1,
            count: usize::MAX,
        };
        let rows = huge.rows(1000, 7);
        assert!(rows.start <= rows.end && rows.end <= 1000, "{rows:?}");
        assert_eq!(Shard { index: 0, count: 0 }.rows(10, 1), 0..0);
        let rows = huge.rows(usize::MAX, usize::MAX);
        assert!(rows.start <= rows.end, "{rows:?}");
    }

    #[test]
    fn parsing_and_names() {
        let s: Shard = "2/5".parse().unwrap();
        assert_eq!((s.index, s.count, s.to_string()), (2, 5, "2/5".to_string()));
        assert_eq!(s.stem(), "values-2-of-5");
        assert_eq!("0/1".parse::<Shard>().unwrap().stem(), "values");
        for bad in ["5/5", "1/0", "x/2", "3", "-1/2"] {
            let err = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(err.contains("`shard`"), "{bad}: {err}");
        }
    }

    /// 100 masks over 8 players drawn with `seed`.
    fn design_plan(seed: u64) -> crate::sparse::plan::Plan {
        let mut design = Design::proxyspex(100);
        design.seed = seed;
        design.plan(8).unwrap()
    }

    fn plan(seed: u64) -> PlanFile {
        design_plan(seed).to_file()
    }

    /// The values of plan row `r`: distinct, so any reordering shows.
    fn value(r: usize) -> f64 {
        r as f64 * 0.5 - 3.0
    }

    /// Shard `index` of `count` of `plan`, with correct values and identity.
    fn shard(plan: &PlanFile, index: usize, count: usize, run: &Value) -> IdentifiedValues {
        let s = Shard { index, count };
        let values: Vec<f64> = s.rows(plan.queries, 1).map(value).collect();
        IdentifiedValues {
            path: PathBuf::from(format!("{}.npy", s.stem())),
            identity: ShardIdentity::new(
                &plan_id(plan).unwrap(),
                (s, 1),
                plan.queries,
                &values,
                run.clone(),
            ),
            values,
        }
    }

    fn join(plan: &PlanFile, shards: Vec<IdentifiedValues>) -> Result<Vec<f64>> {
        join_shards(Path::new("plan"), plan, shards, "values")
    }

    fn err(plan: &PlanFile, shards: Vec<IdentifiedValues>) -> String {
        join(plan, shards).unwrap_err().to_string()
    }

    #[test]
    fn shards_in_any_order_join_in_row_order() {
        let p = plan(1);
        let run = json!({"value": "logprob"});
        let all: Vec<f64> = (0..p.queries).map(value).collect();
        // 0, 1, 10, 11, 2, ..., 9: the order a shell glob gives.
        let mut glob: Vec<usize> = (0..12).collect();
        glob.sort_by_key(|i| i.to_string());
        for order in [
            (0..12).collect::<Vec<_>>(),
            (0..12).rev().collect(),
            glob,
            vec![5, 0, 11, 3, 8, 1, 10, 6, 2, 9, 4, 7],
        ] {
            let shards = order.iter().map(|&i| shard(&p, i, 12, &run)).collect();
            assert_eq!(join(&p, shards).unwrap(), all, "{order:?}");
        }
    }

    #[test]
    fn identical_copies_are_used_once_and_disagreeing_ones_are_named() {
        let p = plan(1);
        let run = json!({"value": "logprob"});
        let all: Vec<f64> = (0..p.queries).map(value).collect();
        let twice = vec![
            shard(&p, 1, 3, &run),
            shard(&p, 0, 3, &run),
            shard(&p, 2, 3, &run),
            shard(&p, 1, 3, &run),
        ];
        assert_eq!(join(&p, twice).unwrap(), all);

        let mut other = shard(&p, 1, 3, &run);
        other.path = PathBuf::from("elsewhere/values-1-of-3.npy");
        other.values[2] += 1.0;
        other.identity.values_digest = values_digest(&other.values);
        let row = other.identity.rows.start + 2;
        let e = err(
            &p,
            vec![
                shard(&p, 0, 3, &run),
                shard(&p, 1, 3, &run),
                other,
                shard(&p, 2, 3, &run),
            ],
        );
        assert!(
            e.contains("values-1-of-3.npy (shard 1/3")
                && e.contains("elsewhere/values-1-of-3.npy")
                && e.contains(&format!("row(s) {row} ("))
                && e.contains("disagree"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_shard_is_named_with_its_rows_and_file() {
        let p = plan(1);
        let run = json!({});
        let rows = Shard { index: 2, count: 4 }.rows(p.queries, 1);
        let shards: Vec<_> = [3, 0, 1].map(|i| shard(&p, i, 4, &run)).into();
        let e = err(&p, shards);
        let want = format!(
            "1 of the 4 shards missing: 2/4 (rows {}..{}, {})",
            rows.start,
            rows.end,
            Path::new("plan").join("values-2-of-4.npy").display()
        );
        assert!(e.contains(&want) && e.contains("values-3-of-4.npy"), "{e}");
        assert!(e.starts_with("invalid `values`"), "{e}");
    }

    #[test]
    fn another_plan_a_mix_of_splits_and_another_run_are_refused() {
        let (p, q) = (plan(1), plan(2));
        let run = json!({"model": "m", "value": "logprob"});
        let e = err(&p, vec![shard(&p, 0, 2, &run), shard(&q, 1, 2, &run)]);
        assert!(
            e.contains("values-1-of-2.json") && e.contains("another plan"),
            "{e}"
        );

        let e = err(&p, vec![shard(&p, 0, 2, &run), shard(&p, 1, 4, &run)]);
        assert!(
            e.contains("different splits")
                && e.contains("values-0-of-2.npy (shard 0/2, rows 0..50)")
                && e.contains("values-1-of-4.npy (shard 1/4, rows 25..50)"),
            "{e}"
        );

        let margin = json!({"model": "m", "value": "margin"});
        let e = err(&p, vec![shard(&p, 0, 2, &run), shard(&p, 1, 2, &margin)]);
        assert!(
            e.contains("different runs") && e.contains(r#"value: "logprob" vs "margin""#),
            "{e}"
        );
        assert!(!e.contains("model:"), "only the differing fields: {e}");
    }

    #[test]
    fn an_identity_that_does_not_fit_its_values_or_the_plan_is_refused() {
        let p = plan(1);
        let run = json!({});
        let mut replaced = shard(&p, 1, 2, &run);
        replaced.values[0] = 99.0;
        let e = err(&p, vec![shard(&p, 0, 2, &run), replaced]);
        assert!(
            e.starts_with("values-1-of-2.npy: holds 50 values") && e.contains("replaced"),
            "{e}"
        );

        let mut edited = shard(&p, 1, 2, &run);
        edited.identity.rows = 15..40;
        let e = err(&p, vec![shard(&p, 0, 2, &run), edited]);
        assert!(
            e.starts_with("values-1-of-2.json: says shard 1/2 holds rows 15..40")
                && e.contains("damaged"),
            "{e}"
        );

        let mut nonsense = shard(&p, 1, 2, &run);
        nonsense.identity.count = 0;
        let e = err(&p, vec![nonsense]);
        assert!(e.contains("is not i/N"), "{e}");
    }

    #[test]
    fn the_identity_is_read_beside_npy_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let npy = dir.path().join("values-0-of-2.npy");
        assert!(ShardIdentity::read_beside(&npy).unwrap().is_none());
        let p = plan(1);
        let s = shard(&p, 0, 2, &json!({"value": "logprob"}));
        write_json(&dir.path().join("values-0-of-2.json"), &s.identity).unwrap();
        assert_eq!(
            ShardIdentity::read_beside(&npy).unwrap(),
            Some(s.identity.clone())
        );
        // Text values have no identity, whatever lies beside them.
        assert!(
            ShardIdentity::read_beside(&dir.path().join("values-0-of-2.txt"))
                .unwrap()
                .is_none()
        );

        let mut old = serde_json::to_value(&s.identity).unwrap();
        old["format"] = json!("spex-shard-0");
        std::fs::write(dir.path().join("values-0-of-2.json"), old.to_string()).unwrap();
        let e = ShardIdentity::read_beside(&npy).unwrap_err().to_string();
        assert!(
            e.contains("values-0-of-2.json") && e.contains("`spex-shard-0`"),
            "{e}"
        );

        std::fs::write(dir.path().join("values-0-of-2.json"), "{\"rows\": 3}").unwrap();
        let e = ShardIdentity::read_beside(&npy).unwrap_err().to_string();
        assert!(
            e.contains("values-0-of-2.json") && e.contains("is not the shard identity"),
            "{e}"
        );
    }

    /// A plan folder (plan.json, masks.npy) of [`design_plan`]`(seed)`.
    pub(crate) fn plan_folder(seed: u64) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        crate::run::plan_dir::write_plan(dir.path(), &design_plan(seed)).unwrap();
        dir
    }

    #[test]
    fn the_recorded_count_is_checked_naming_both() {
        let dir = plan_folder(1);
        let d = dir.path();
        check_shard_count(d, 3, "anything").unwrap();
        assert_eq!(recorded_shard_count(d).unwrap(), None);
        record_shard_count(d, 4).unwrap();
        assert_eq!(recorded_shard_count(d).unwrap(), Some(4));
        check_shard_count(d, 4, "SLURM_ARRAY_TASK_COUNT=4").unwrap();
        let e = check_shard_count(d, 3, "SLURM_ARRAY_TASK_COUNT=3")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("shards.json: records 4 shards, but SLURM_ARRAY_TASK_COUNT=3 makes 3"),
            "{e}"
        );
        let e = record_shard_count(d, 2).unwrap_err().to_string();
        assert!(
            e.contains("records 4 shards, but `shards` 2 makes 2"),
            "{e}"
        );
        assert!(record_shard_count(d, 0).is_err());
        record_shard_count(d, 4).unwrap();

        let other = plan_folder(2);
        std::fs::copy(d.join(SHARDS_FILE), other.path().join(SHARDS_FILE)).unwrap();
        let e = recorded_shard_count(other.path()).unwrap_err().to_string();
        assert!(e.contains("copied from another plan folder"), "{e}");
    }

    #[test]
    fn plan_ids_differ_between_plans_and_ignore_the_writer_version() {
        let (p, q) = (plan(1), plan(2));
        assert_ne!(plan_id(&p).unwrap(), plan_id(&q).unwrap());
        let mut newer = p.clone();
        newer.spex_version = "9.9.9".into();
        assert_eq!(plan_id(&p).unwrap(), plan_id(&newer).unwrap());
        assert_eq!(plan_id(&p).unwrap().len(), 16);
    }
}
