//! [`Shard`]: `i/N`, the `i`-th of `N` contiguous slices of a plan's masks (a cluster array task's share).

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::evaluate::evaluate_stored;
use super::head_values::HeadValues;
use super::plan_dir::{plan_identity, read_plan, read_plan_masks};
use crate::io::write_values_npy;
use crate::{Error, Result};

/// Slice `index` (from 0) of `count` near-equal contiguous slices of the masks.
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

    /// The mask rows of this shard out of `m`: `[index * m / count, (index + 1) * m / count)`.
    pub fn rows(&self, m: usize) -> Range<usize> {
        (self.index * m / self.count)..((self.index + 1) * m / self.count)
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

/// A shard evaluated: where its values went and which mask rows they are.
pub struct ShardRun {
    /// `PLAN/values-i-of-N.npy` (`values.npy` for the whole plan).
    pub path: PathBuf,
    /// The mask rows evaluated.
    pub rows: Range<usize>,
}

/// Evaluates shard `shard` of the plan in `plan_dir` as head masks through `hv`, resumably
/// (`PLAN/values-i-of-N.log`), and writes its values as `PLAN/values-i-of-N.npy`.
pub fn run_shard(plan_dir: &Path, shard: Shard, hv: &HeadValues) -> Result<ShardRun> {
    let file = read_plan(plan_dir)?;
    let masks = read_plan_masks(plan_dir, &file.plan)?;
    hv.check_players(file.plan.n_players(), &plan_dir.display().to_string())?;
    let rows = shard.rows(masks.len());
    let identity = hv.identity(&[
        ("plan", plan_identity(&file)?),
        ("shard", Value::String(shard.to_string())),
    ]);
    let stem = shard.stem();
    let store = plan_dir.join(format!("{stem}.log"));
    let scorer = hv.scorer()?;
    let mut f = hv.value_function(&scorer);
    let values = evaluate_stored(
        &mut f,
        &masks,
        rows.clone(),
        &store,
        &identity,
        hv.per_batch(),
    )?;
    let path = plan_dir.join(format!("{stem}.npy"));
    write_values_npy(&path, &values)?;
    Ok(ShardRun { path, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_row_once_in_order() {
        for m in [0, 1, 7, 100] {
            for count in 1..6 {
                let rows: Vec<usize> = (0..count)
                    .flat_map(|index| Shard { index, count }.rows(m))
                    .collect();
                assert_eq!(rows, (0..m).collect::<Vec<_>>(), "m {m}, N {count}");
            }
        }
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
}
