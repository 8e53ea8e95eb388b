//! The held-out comparison of a decoded run: on the same unseen masks, the R^2 of the default
//! decoder, the reference ProxySPEX and the regression baselines (first-order least squares, LASSO
//! over single players and over pairs, ridge over pairs), every baseline tuned by the same
//! cross-validation folds of the samples; and, for head players, each spectrum's energy split
//! (single heads / interactions within a layer / across layers).

use super::decode::{Decoded, Refit};
use super::held_out::HeldOut;
use crate::report::comparison::{Comparison, Judged};
use crate::sparse::linear::Baseline;
use crate::sparse::plan::Plan;
use crate::sparse::structure::energy_split;
use crate::sparse::{MaskBatch, Spectrum};
use crate::Result;

/// Cross-validation folds of every baseline (ProxySPEX's own).
pub const FOLDS: usize = 5;

/// Judges `decoded` (from `plan`, `refit`, fitted to `values` on `masks`) against the reference
/// ProxySPEX (same trees, other refit) and the baselines on `held_out`; `group_of` maps a player
/// to its layer for the energy split (`None`: no split, e.g. token players).
pub fn compare(
    plan: &Plan,
    refit: Refit,
    decoded: &Decoded,
    (masks, values): (&MaskBatch, &[f64]),
    held_out: &HeldOut,
    group_of: Option<&dyn Fn(u32) -> usize>,
) -> Result<Comparison> {
    let judge = |method: &str, reported: bool, spectrum: Spectrum| Judged {
        method: method.to_string(),
        reported,
        terms: spectrum.iter().filter(|(_, v)| *v != 0.0).count(),
        r2_held_out: spectrum.r2(&held_out.masks, &held_out.values),
        r2_queried: spectrum.r2(masks, values),
        energy: group_of.map(|g| energy_split(&spectrum, g)),
        spectrum,
    };
    let mut methods = vec![judge(
        &method_name(plan, refit),
        true,
        decoded.spectrum.clone(),
    )];
    if let (Plan::ProxySpex(p), Some(trees)) = (plan, &decoded.trees) {
        for other in [Refit::Cv, Refit::Reference] {
            if other != refit {
                let spectrum = other.applied_to(p).refine_trees(trees, masks, values);
                methods.push(judge(&method_name(plan, other), false, spectrum));
            }
        }
    }
    for baseline in Baseline::ALL {
        match baseline.fit(masks, values, FOLDS) {
            Ok(spectrum) => methods.push(judge(baseline.name(), false, spectrum)),
            Err(e) => tracing::warn!("baseline {} skipped: {e}", baseline.name()),
        }
    }
    Ok(Comparison {
        unseen_masks: held_out.masks.len(),
        samples: masks.len(),
        folds: FOLDS,
        methods,
    })
}

/// How reports name a plan's decoder under `refit`.
pub fn method_name(plan: &Plan, refit: Refit) -> String {
    match (plan, refit) {
        (Plan::Spex(_), _) => "spex".to_string(),
        (Plan::ProxySpex(_), Refit::Cv) => "proxyspex-cv".to_string(),
        (Plan::ProxySpex(_), Refit::Reference) => "proxyspex".to_string(),
        (Plan::ProxySpex(_), Refit::Centred) => "proxyspex-centred".to_string(),
    }
}
