//! The out-of-sample check of a one-shot run: unseen masks drawn from the design's distribution,
//! evaluated (resumably) but never decoded, and the decoded spectrum's R^2 on them. In-sample R^2
//! can be 1 while the spectrum predicts nothing new (a proxy that interpolates its samples), so
//! the one-shot jobs report both.

use std::path::Path;

use serde_json::{json, Value};

use super::decode::{read_value_shards, Lever, LowFaithfulness, LOW_R2};
use super::evaluate::evaluate_stored;
use super::plan_dir::{read_plan, read_plan_masks};
use crate::io::{write_masks_npy, write_values_npy};
use crate::progress::Watch;
use crate::sparse::plan::Plan;
use crate::sparse::proxy::sampling::{cube_size, iid_masks};
use crate::sparse::{MaskBatch, Spectrum, ValueFunction};
use crate::{Error, Result};

/// Mixed into the design's seed for the unseen masks, so they never repeat the plan's draws ("held-out").
const HELD_OUT_SEED: u64 = 0x6865_6c64_2d6f_7574;

/// The unseen masks of a run.
pub struct HeldOut {
    /// The masks `[count, n]`.
    pub masks: MaskBatch,
    /// Their values.
    pub values: Vec<f64>,
    /// Probability that a mask keeps each player.
    pub keep: f64,
}

/// How many unseen masks to check: `requested`, else a tenth of `queries`; none when the plan
/// already evaluated every mask of the cube over `n` players (nothing is unseen).
pub fn held_out_count(requested: Option<usize>, queries: usize, n: usize) -> usize {
    if queries >= cube_size(n) {
        return 0;
    }
    requested.unwrap_or(queries / 10)
}

/// Draws `count` unseen masks over `n` players (each kept with probability `keep`, seed mixed from
/// `seed`), evaluates them through `f` into `out/held_out.log` (header: `identity` plus the draw),
/// and writes `held_out_masks.npy` and `held_out_values.npy`.
pub fn evaluate_held_out(
    out: &Path,
    f: &mut impl ValueFunction,
    (count, keep, seed): (usize, f64, u64),
    identity: &Value,
    per_batch: usize,
    watch: &mut dyn Watch,
) -> Result<HeldOut> {
    let seed = seed ^ HELD_OUT_SEED;
    let masks = iid_masks(f.n_players(), count, keep, seed);
    let mut identity = identity.clone();
    if let Some(map) = identity.as_object_mut() {
        map.insert(
            "held_out".into(),
            json!({"count": count, "keep_probability": keep, "seed": seed}),
        );
    }
    tracing::info!("held-out check: {count} unseen masks");
    let values = evaluate_stored(
        f,
        &masks,
        0..count,
        &out.join("held_out.log"),
        &identity,
        per_batch,
        watch,
    )?;
    write_masks_npy(&out.join("held_out_masks.npy"), &masks)?;
    write_values_npy(&out.join("held_out_values.npy"), &values)?;
    Ok(HeldOut {
        masks,
        values,
        keep,
    })
}

impl HeldOut {
    /// R^2 of `spectrum`'s predictions on the unseen masks, and a [`LowFaithfulness`] naming
    /// the levers when it is under [`LOW_R2`]: `reference_refit` says the spectrum came from
    /// ProxySPEX's reference refit.
    pub fn check(
        &self,
        spectrum: &Spectrum,
        reference_refit: bool,
    ) -> (f64, Option<LowFaithfulness>) {
        let r2 = spectrum.r2(&self.masks, &self.values);
        if r2 >= LOW_R2 {
            return (r2, None);
        }
        let mut levers = vec![Lever::Budget, Lever::MoreQuestions];
        if reference_refit {
            levers.push(Lever::CentredRefit);
        }
        if self.keep <= 0.5 {
            levers.push(Lever::KeepNearFull);
        }
        let low = LowFaithfulness {
            r2,
            unseen: Some(self.masks.len()),
            levers,
        };
        (r2, Some(low))
    }
}

/// The masks of the plan in `dir` and their `values` (read by [`read_value_shards`]), checked to be
/// over `n` players and one value per mask: another plan's evaluations that check a decoded spectrum.
pub fn read_held_out(dir: &Path, values: &[std::path::PathBuf], n: usize) -> Result<HeldOut> {
    let file = read_plan(dir)?;
    if file.plan.n_players() != n {
        return Err(Error::invalid(
            "held_out_plan",
            format!(
                "{}: a plan over {} players, but the decoded plan has {n}",
                dir.display(),
                file.plan.n_players()
            ),
        ));
    }
    let masks = read_plan_masks(dir, &file.plan)?;
    let values = read_value_shards(dir, &file, values, "held_out_values")?;
    if values.len() != masks.len() {
        return Err(Error::invalid(
            "held_out_values",
            format!(
                "{} value(s) for the {} masks of {}",
                values.len(),
                masks.len(),
                dir.display()
            ),
        ));
    }
    let keep = match &file.plan {
        Plan::ProxySpex(p) => p.keep_probability,
        Plan::Spex(_) => 0.5,
    };
    Ok(HeldOut {
        masks,
        values,
        keep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_r2_names_the_levers_that_apply() {
        use crate::sparse::{Basis, Subset};
        // Values that depend on player 0 only; the spectrum knows only a constant.
        let masks = iid_masks(4, 40, 0.5, 3);
        let values: Vec<f64> = (0..masks.len())
            .map(|r| f64::from(u8::from(masks.get(r, 0))))
            .collect();
        let constant = Spectrum::from_terms(4, Basis::Fourier, [(Subset::empty(), 0.5)]);
        let uniform = HeldOut {
            masks: masks.clone(),
            values: values.clone(),
            keep: 0.5,
        };
        let (r2, low) = uniform.check(&constant, true);
        let low = low.expect("R^2 near 0 is low");
        assert_eq!((low.r2, low.unseen), (r2, Some(40)));
        assert_eq!(
            low.levers,
            [
                Lever::Budget,
                Lever::MoreQuestions,
                Lever::CentredRefit,
                Lever::KeepNearFull
            ]
        );
        let near_full = HeldOut {
            keep: 0.9,
            ..uniform
        };
        let (_, low) = near_full.check(&constant, false);
        assert_eq!(low.unwrap().levers, [Lever::Budget, Lever::MoreQuestions]);
        // The exact spectrum passes: 0.5 - 0.5 (-1)^{x_0} is x_0.
        let exact = Spectrum::from_terms(
            4,
            Basis::Fourier,
            [(Subset::empty(), 0.5), (Subset::singleton(0), -0.5)],
        );
        assert_eq!(near_full.check(&exact, false).1, None);
    }

    #[test]
    fn a_tenth_of_the_budget_unless_the_cube_is_covered() {
        assert_eq!(held_out_count(None, 1000, 270), 100);
        assert_eq!(held_out_count(Some(7), 1000, 270), 7);
        assert_eq!(held_out_count(Some(7), 32, 5), 0);
        assert_eq!(held_out_count(None, 31, 5), 3);
    }
}
