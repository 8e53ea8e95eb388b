//! The cross-validated refit ([`ProxyPlan::cv_refit`]): instead of the reference's 95% energy
//! cut and ridge, a lasso over a wide support, its penalty chosen on the proxy's own folds.
//!
//! The reference cut keeps the fewest tree coefficients holding 95% of the energy; many small
//! pair interactions, a few per cent of the energy together, fall below it and the refit
//! underfits. Here the support is the union of
//!
//! - `∅` and every single player;
//! - every pair, when `1 + n + n(n-1)/2` columns are affordable ([`pairs_affordable`]);
//! - the trees' non-constant Fourier terms, largest `|F(S)|` first, at most `m / 2` of them and
//!   no more than the column caps leave ([`crate::linear::MAX_COLUMNS`],
//!   [`crate::linear::MAX_CELLS`]);
//!
//! and [`lasso_cv`] picks the coefficients on the plan's `grid.folds` contiguous folds. When
//! the pairs hold at most [`RIDGE_MAX_COLUMNS`] columns, a ridge over `∅` + singles + pairs
//! ([`ridge_cv`], same folds) competes with it, and the lower cross-validated mean squared error
//! wins: a dense field of small pairs is better shrunk than selected. Every choice (penalties,
//! lasso or ridge) is made by cross-validation on the samples alone.

use super::ProxyPlan;
use crate::linear::baseline::to_spectrum;
use crate::linear::{
    lasso_cv, low_order_support, ridge_alphas, ridge_cv, LAMBDAS, MAX_CELLS, MAX_COLUMNS,
};
use crate::spectrum::mean_squared_error;
use crate::{MaskBatch, Result, Spectrum, Subset};

/// Most columns (`1 + n + n(n-1)/2`) for which the ridge candidate is fitted: its
/// `folds + 1` eigendecompositions cost `O(k^3)` each (about 0.5 s at 378 columns).
pub const RIDGE_MAX_COLUMNS: usize = 500;

/// The cv refit's result: the spectrum, which candidate won and its cross-validated error.
#[derive(Clone, Debug, PartialEq)]
pub struct CvRefit {
    /// The refitted Fourier spectrum (the intercept on `∅`).
    pub spectrum: Spectrum,
    /// `"lasso"` (over [`cv_support`]), `"lasso-pairs"`, `"lasso-singles"`, `"ridge-pairs"` or
    /// `"reference"`.
    pub chosen: &'static str,
    /// The winner's mean held-out squared error over the folds.
    pub cv_mse: f64,
}

/// Most columns relative to the samples: pairs are added while the support stays within
/// `PAIRS_PER_SAMPLE * m` columns (a lasso selects among more columns than rows, not many more).
pub const PAIRS_PER_SAMPLE: usize = 10;

/// The most columns a support may hold for `m` samples: the caps of [`crate::linear`].
fn column_cap(m: usize) -> usize {
    MAX_COLUMNS.min(MAX_CELLS / m.max(1))
}

/// Whether every pair of `n` players (with `∅` and the singles) fits in the columns that `m`
/// samples afford: at most `PAIRS_PER_SAMPLE * m` and the caps.
pub fn pairs_affordable(n: usize, m: usize) -> bool {
    let columns = 1 + n + n * n.saturating_sub(1) / 2;
    columns <= column_cap(m).min(PAIRS_PER_SAMPLE * m)
}

/// The support of the cv refit for a proxy spectrum `full` over `n` players and `m` samples, in
/// subset order (see the module docs).
pub fn cv_support(full: &Spectrum, m: usize) -> Vec<Subset> {
    let n = full.n_players();
    let order = if pairs_affordable(n, m) { 2 } else { 1 };
    let mut support = low_order_support(n, order);
    let cap = column_cap(m);
    support.truncate(cap.max(1));
    let mut terms: Vec<(&Subset, f64)> = full
        .iter()
        .filter(|(s, v)| s.len() > order && *v != 0.0)
        .collect();
    terms.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(b.0)));
    let room = cap.saturating_sub(support.len()).min(m / 2);
    support.extend(terms.into_iter().take(room).map(|(s, _)| s.clone()));
    support.sort();
    support
}

/// The candidates of the cv refit on the samples (`values[r] = f(masks[r])`), and the one with
/// the lowest cross-validated error. Errors: those of [`lasso_cv`] (fewer rows than folds).
pub fn fit(
    plan: &ProxyPlan,
    full: &Spectrum,
    masks: &MaskBatch,
    values: &[f64],
) -> Result<CvRefit> {
    let folds = plan.grid.folds;
    let support = cv_support(full, values.len());
    let lasso = lasso_cv(masks, &support, values, folds, LAMBDAS)?;
    let mut best = CvRefit {
        spectrum: to_spectrum(plan.n, support, lasso.coefficients),
        chosen: "lasso",
        cv_mse: lasso.cv_mse,
    };
    let pairs = low_order_support(plan.n, 2);
    if pairs_affordable(plan.n, values.len()) && pairs.len() <= RIDGE_MAX_COLUMNS {
        let ridge = ridge_cv(masks, &pairs, values, folds, &ridge_alphas())?;
        if ridge.cv_mse < best.cv_mse {
            best = CvRefit {
                spectrum: to_spectrum(plan.n, pairs, ridge.coefficients),
                chosen: "ridge-pairs",
                cv_mse: ridge.cv_mse,
            };
        }
    }
    Ok(best)
}

/// The cv refit of `full` on the samples: [`fit`]'s spectrum. Falls back to the reference
/// refit when the lasso cannot run (fewer rows than folds, possible only when called directly).
pub fn refit(plan: &ProxyPlan, full: &Spectrum, masks: &MaskBatch, values: &[f64]) -> Spectrum {
    match fit(plan, full, masks, values) {
        Ok(best) => best.spectrum,
        Err(_) => ProxyPlan {
            cv_refit: false,
            ..plan.clone()
        }
        .refine(full, masks, values),
    }
}

/// The rows of `masks` and `values` inside (`inside = true`) or outside `range`.
fn split_rows(
    masks: &MaskBatch,
    values: &[f64],
    range: &std::ops::Range<usize>,
    inside: bool,
) -> (MaskBatch, Vec<f64>) {
    let rows: Vec<usize> = (0..values.len())
        .filter(|r| range.contains(r) == inside)
        .collect();
    let mut part = MaskBatch::with_capacity(masks.n_players(), rows.len());
    for &r in &rows {
        part.push_words(masks.row_words(r));
    }
    (part, rows.iter().map(|&r| values[r]).collect())
}

/// The candidates the honest choice compares, in order (the first wins ties): `lasso` over the
/// trees' support united with the low-order terms ([`fit`]'s lasso), `lasso-pairs` over the
/// low-order terms alone, `lasso-singles` over `∅` and the single players (what a noisy game,
/// such as accuracy over a few dozen questions, supports), `ridge-pairs` (when affordable) and
/// the reference refit.
const CANDIDATES: [&str; 5] = [
    "lasso",
    "lasso-pairs",
    "lasso-singles",
    "ridge-pairs",
    "reference",
];

/// Fits candidate `name` to the samples given the trees' spectrum `full`; `None` when it does
/// not apply (ridge over pairs that are not affordable).
fn fit_candidate(
    plan: &ProxyPlan,
    name: &str,
    full: &Spectrum,
    masks: &MaskBatch,
    values: &[f64],
) -> Result<Option<Spectrum>> {
    let (n, m, folds) = (plan.n, values.len(), plan.grid.folds);
    let order = if pairs_affordable(n, m) { 2 } else { 1 };
    Ok(match name {
        "lasso" => {
            let support = cv_support(full, m);
            let fit = lasso_cv(masks, &support, values, folds, LAMBDAS)?;
            Some(to_spectrum(n, support, fit.coefficients))
        }
        "lasso-pairs" => {
            let support = low_order_support(n, order);
            let fit = lasso_cv(masks, &support, values, folds, LAMBDAS)?;
            Some(to_spectrum(n, support, fit.coefficients))
        }
        "lasso-singles" => {
            let support = low_order_support(n, 1);
            let fit = lasso_cv(masks, &support, values, folds, LAMBDAS)?;
            Some(to_spectrum(n, support, fit.coefficients))
        }
        "ridge-pairs" => {
            let pairs = low_order_support(n, 2);
            if order < 2 || pairs.len() > RIDGE_MAX_COLUMNS {
                return Ok(None);
            }
            let fit = ridge_cv(masks, &pairs, values, folds, &ridge_alphas())?;
            Some(to_spectrum(n, pairs, fit.coefficients))
        }
        _ => Some(
            ProxyPlan {
                cv_refit: false,
                ..plan.clone()
            }
            .refine(full, masks, values),
        ),
    })
}

/// Folds of the honest choice when the samples allow (at least 4 rows per fold): each candidate
/// is fitted to 90 % of the rows, close to the whole set, so a support that needs every sample
/// (pairs at about one column per two rows) is not judged on a smaller set than it gets. With
/// the trees' 5 folds (80 %) the choice leaned towards first-order fits at 200 masks that the
/// full set no longer favours (benches/RESULTS.md, the value-function comparison).
pub const HONEST_FOLDS: usize = 10;

/// The honest choice among [`CANDIDATES`], by cross-validation of the whole refit: for each of
/// [`HONEST_FOLDS`] contiguous folds (the plan's `grid.folds` below 40 samples), the trees are fitted again to the other folds (with
/// the hyperparameters already chosen), every candidate is fitted there, and the fold judges them
/// by squared error; the candidate with the lowest total is fitted again to every sample with the
/// full trees. The trees' support never sees the rows that judge it, so a support that only fits
/// noise loses (choosing by the lasso's own folds over a support the trees picked on every row
/// would favour it). Fewer than `4 * grid.folds` samples: [`fit`]'s choice.
pub fn fit_honest(
    plan: &ProxyPlan,
    trees: &super::Trees,
    masks: &MaskBatch,
    values: &[f64],
) -> Result<CvRefit> {
    let m = values.len();
    let folds = if m >= 4 * HONEST_FOLDS {
        HONEST_FOLDS
    } else {
        plan.grid.folds.max(2)
    };
    if m < 4 * folds {
        return fit(plan, &trees.spectrum, masks, values);
    }
    let mut errors = [0.0f64; CANDIDATES.len()];
    let mut fitted = [true; CANDIDATES.len()];
    for (start, end) in super::cv::fold_ranges(m, folds) {
        let judge = start..end;
        let (train_masks, train_values) = split_rows(masks, values, &judge, false);
        let (judge_masks, judge_values) = split_rows(masks, values, &judge, true);
        let x = super::binary_matrix::BinaryMatrix::from_masks(&train_masks);
        let model = super::gbdt::fit(&x, &train_values, &trees.params);
        let fold_trees = super::tree_fourier::ensemble_to_fourier(&model, plan.n);
        for (i, name) in CANDIDATES.iter().enumerate() {
            match fit_candidate(plan, name, &fold_trees, &train_masks, &train_values)? {
                Some(s) => {
                    errors[i] += mean_squared_error(&judge_values, &s.eval(&judge_masks))
                        * judge_values.len() as f64
                }
                None => fitted[i] = false,
            }
        }
    }
    let best = (0..CANDIDATES.len())
        .filter(|&i| fitted[i])
        .min_by(|&a, &b| errors[a].total_cmp(&errors[b]).then(a.cmp(&b)))
        .unwrap_or(0);
    let spectrum = fit_candidate(plan, CANDIDATES[best], &trees.spectrum, masks, values)?
        .unwrap_or_else(|| Spectrum::new(plan.n, crate::Basis::Fourier));
    Ok(CvRefit {
        spectrum,
        chosen: CANDIDATES[best],
        cv_mse: errors[best] / m as f64,
    })
}

/// [`fit_honest`]'s spectrum, or the reference refit when the lasso cannot run.
pub fn refit_honest(
    plan: &ProxyPlan,
    trees: &super::Trees,
    masks: &MaskBatch,
    values: &[f64],
) -> Spectrum {
    match fit_honest(plan, trees, masks, values) {
        Ok(best) => best.spectrum,
        Err(_) => ProxyPlan {
            cv_refit: false,
            ..plan.clone()
        }
        .refine(&trees.spectrum, masks, values),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::Baseline;
    use crate::proxy::ProxyGrid;
    use crate::synthetic::uniform_masks;
    use crate::Basis;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A game whose pairs the 95% energy cut drops: `singles` strong players (|F| in [0.5, 2]),
    /// `pairs` weak pairs (|F| in [0.08, 0.2]) and `triples` triples (|F| in [0.2, 0.4]), all on
    /// `n` players, seeded; plus Gaussian-ish noise of sd `noise` on the samples.
    fn game(n: usize, singles: usize, pairs: usize, triples: usize, seed: u64) -> Spectrum {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut s = Spectrum::new(n, Basis::Fourier);
        s.set(Subset::empty(), 1.0);
        let mut add = |size: usize, count: usize, lo: f64, hi: f64, s: &mut Spectrum| {
            let start = s.len();
            while s.len() < start + count {
                let set = Subset::from_indices((0..size).map(|_| rng.random_range(0..n as u32)));
                if set.len() == size && s.get(&set) == 0.0 {
                    let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                    s.set(set, sign * rng.random_range(lo..hi));
                }
            }
        };
        add(1, singles, 0.5, 2.0, &mut s);
        add(2, pairs, 0.08, 0.2, &mut s);
        add(3, triples, 0.2, 0.4, &mut s);
        s
    }

    fn samples(truth: &Spectrum, m: usize, noise: f64, seed: u64) -> (MaskBatch, Vec<f64>) {
        let masks = uniform_masks(truth.n_players(), m, seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        let y = truth
            .eval(&masks)
            .into_iter()
            .map(|v| {
                // Sum of 4 uniforms: sd 1 after scaling by sqrt(3).
                let u: f64 = (0..4).map(|_| rng.random_range(-1.0..1.0)).sum::<f64>();
                v + noise * u * 0.5 * 3f64.sqrt()
            })
            .collect();
        (masks, y)
    }

    fn small_grid_plan(n: usize, m: usize) -> ProxyPlan {
        let mut plan = ProxyPlan::new(n, m, 0).unwrap();
        plan.grid = ProxyGrid {
            max_depth: vec![3],
            n_trees: vec![300],
            learning_rate: vec![0.1],
            ..ProxyGrid::default()
        };
        plan
    }

    /// The proxy's full Fourier spectrum (steps 2 and 3 of [`ProxyPlan::decode_masks`]).
    fn tree_spectrum(plan: &ProxyPlan, masks: &MaskBatch, y: &[f64]) -> Spectrum {
        use crate::proxy::{binary_matrix::BinaryMatrix, cv, gbdt, tree_fourier};
        let x = BinaryMatrix::from_masks(masks);
        let params = cv::best_params(&cv::cross_validate(&x, y, &plan.grid)).unwrap();
        tree_fourier::ensemble_to_fourier(&gbdt::fit(&x, y, &params), plan.n)
    }

    #[test]
    fn support_holds_pairs_and_the_largest_tree_terms_within_the_caps() {
        let full = Spectrum::from_terms(
            6,
            Basis::Fourier,
            [
                (Subset::empty(), 1.0),
                (Subset::from_indices([0, 1, 2]), 0.1),
                (Subset::from_indices([1, 2, 3]), -0.3),
                (Subset::from_indices([0, 1, 2, 3]), 0.2),
                (Subset::singleton(0), 2.0),
            ],
        );
        let s = cv_support(&full, 4);
        // 1 + 6 + 15 pairs, then the m / 2 = 2 largest higher-order terms.
        assert_eq!(s.len(), 22 + 2);
        assert!(s.contains(&Subset::from_indices([1, 2, 3])));
        assert!(s.contains(&Subset::from_indices([0, 1, 2, 3])));
        assert!(!s.contains(&Subset::from_indices([0, 1, 2])));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert!(pairs_affordable(27, 100) && !pairs_affordable(400, 100));
        let wide = Spectrum::new(400, Basis::Fourier);
        assert_eq!(cv_support(&wide, 100).len(), 401, "singles only");
    }

    /// The honest choice on `m` noisy samples of `truth` (noise `noise`, masks seeded from
    /// `seed`), with its R^2 on 4,000 fresh masks and the best baseline's there.
    fn honest_against_baselines(
        truth: &Spectrum,
        m: usize,
        noise: f64,
        seed: u64,
    ) -> (CvRefit, f64, f64) {
        let n = truth.n_players();
        let (masks, y) = samples(truth, m, noise, seed);
        let (fresh, _) = samples(truth, 4000, 0.0, seed + 1);
        let want = truth.eval(&fresh);
        let plan = ProxyPlan {
            cv_refit: true,
            ..small_grid_plan(n, m)
        };
        let Ok(crate::proxy::Proxied::Trees(trees)) = plan.proxy_spectrum(&masks, &y) else {
            panic!("the samples do not cover the cube: trees expected");
        };
        let honest = fit_honest(&plan, &trees, &masks, &y).unwrap();
        assert_eq!(fit_honest(&plan, &trees, &masks, &y).unwrap(), honest);
        let r2 = honest.spectrum.r2(&fresh, &want);
        let best = Baseline::ALL
            .iter()
            .map(|b| b.fit(&masks, &y, 5).unwrap().r2(&fresh, &want))
            .fold(f64::NEG_INFINITY, f64::max);
        (honest, r2, best)
    }

    #[test]
    fn the_honest_choice_holds_up_on_noisy_samples() {
        // Few noisy samples: the trees' terms fit noise, and choosing by the lasso's own folds
        // over their support would keep them; cross-validating the whole refit does not.
        let (honest, r2, best) = honest_against_baselines(&game(16, 5, 12, 0, 4), 200, 0.6, 5);
        assert!(CANDIDATES.contains(&honest.chosen));
        assert!(
            r2 >= best - 0.02,
            "honest {r2} ({}) vs best baseline {best}",
            honest.chosen
        );
    }

    #[test]
    fn the_honest_choice_is_first_order_on_a_noisy_first_order_game() {
        // As accuracy over 40 questions: heads act alone and the samples are noisy; every pair
        // column a lasso keeps fits noise, so the first-order lasso must win.
        let (honest, r2, best) = honest_against_baselines(&game(27, 8, 0, 0, 31), 200, 1.5, 32);
        assert_eq!(honest.chosen, "lasso-singles");
        assert!(honest.spectrum.iter().all(|(s, _)| s.len() <= 1));
        assert!(r2 >= best - 0.01, "honest {r2} vs best baseline {best}");
    }

    #[test]
    fn cv_refit_keeps_the_pairs_the_energy_cut_drops() {
        let (n, m) = (20, 500);
        let truth = game(n, 6, 30, 0, 1);
        let (masks, y) = samples(&truth, m, 0.05, 2);
        let (fresh, _) = samples(&truth, 4000, 0.0, 3);
        let want = truth.eval(&fresh);
        let plan = small_grid_plan(n, m);
        let reference = plan.decode_masks(&masks, &y).unwrap();
        let cv_plan = ProxyPlan {
            cv_refit: true,
            ..plan.clone()
        };
        let cv = cv_plan.decode_masks(&masks, &y).unwrap();
        let r2_ref = reference.r2(&fresh, &want);
        let r2_cv = cv.r2(&fresh, &want);
        let best = Baseline::ALL
            .iter()
            .map(|b| b.fit(&masks, &y, 5).unwrap().r2(&fresh, &want))
            .fold(f64::NEG_INFINITY, f64::max);
        assert!(r2_cv >= best - 0.01, "cv {r2_cv} vs best baseline {best}");
        assert!(r2_cv > r2_ref, "cv {r2_cv} vs reference {r2_ref}");
        // The reference path drops pairs; the cv refit keeps most of them.
        let pairs = |s: &Spectrum| s.iter().filter(|(k, _)| k.len() == 2).count();
        assert!(pairs(&cv) >= 20, "{}", pairs(&cv));
        assert!(pairs(&reference) < pairs(&cv));
        // Deterministic.
        assert_eq!(cv, cv_plan.decode_masks(&masks, &y).unwrap());
    }

    #[test]
    fn cross_validation_picks_ridge_for_a_dense_field_of_pairs() {
        // Every one of the 105 pairs of 15 players carries a small weight: shrink, don't select.
        let (n, m) = (15, 300);
        let truth = game(n, 5, 105, 0, 4);
        let (masks, y) = samples(&truth, m, 0.3, 5);
        let (fresh, _) = samples(&truth, 4000, 0.0, 6);
        let want = truth.eval(&fresh);
        let plan = ProxyPlan {
            cv_refit: true,
            ..small_grid_plan(n, m)
        };
        let full = tree_spectrum(&plan, &masks, &y);
        let best = fit(&plan, &full, &masks, &y).unwrap();
        assert_eq!(best.chosen, "ridge-pairs");
        let r2 = best.spectrum.r2(&fresh, &want);
        let baselines: Vec<f64> = Baseline::ALL
            .iter()
            .map(|b| b.fit(&masks, &y, 5).unwrap().r2(&fresh, &want))
            .collect();
        let top = baselines.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert!(r2 >= top - 0.01, "cv {r2} vs baselines {baselines:?}");
    }

    /// Held-out R^2 of the reference, the cv refit and the baselines on synthetic games, with
    /// timings. `cargo test -p spex-sparse --release measure_cv_refit -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn measure_cv_refit() {
        use std::time::Instant;
        let games = [
            (
                "27p: 8 singles + 60 weak pairs",
                27,
                500,
                game(27, 8, 60, 0, 11),
                0.05,
            ),
            (
                "27p: 8 singles + 40 pairs + 10 triples",
                27,
                500,
                game(27, 8, 40, 10, 12),
                0.05,
            ),
            (
                "40p: 10 singles + 80 pairs, noisy",
                40,
                1000,
                game(40, 10, 80, 0, 13),
                0.2,
            ),
            (
                "15p: 5 singles + all 105 pairs, noisy",
                15,
                300,
                game(15, 5, 105, 0, 4),
                0.3,
            ),
        ];
        for (name, n, m, truth, noise) in games {
            let (masks, y) = samples(&truth, m, noise, 21);
            let (fresh, _) = samples(&truth, 5000, 0.0, 22);
            let want = truth.eval(&fresh);
            let plan = ProxyPlan::new(n, m, 0).unwrap();
            let t = Instant::now();
            let full = tree_spectrum(&plan, &masks, &y);
            let t_trees = t.elapsed().as_secs_f64();
            println!("{name} (m = {m}, noise {noise}; trees {t_trees:.2}s)");
            let t = Instant::now();
            let reference = plan.refine(&full, &masks, &y);
            let t_ref = t.elapsed().as_secs_f64();
            let cv_plan = ProxyPlan {
                cv_refit: true,
                ..plan.clone()
            };
            let t = Instant::now();
            let cv = cv_plan.refine(&full, &masks, &y);
            let t_cv = t.elapsed().as_secs_f64();
            let chosen = fit(&cv_plan, &full, &masks, &y).unwrap().chosen;
            println!(
                "  reference  R2 {:.4}  terms {:4}  {t_ref:.3}s",
                reference.r2(&fresh, &want),
                reference.len()
            );
            println!(
                "  cv refit   R2 {:.4}  terms {:4}  {t_cv:.3}s  (support {}, chose {chosen})",
                cv.r2(&fresh, &want),
                cv.len(),
                cv_support(&full, m).len()
            );
            for b in Baseline::ALL {
                let t = Instant::now();
                let s = b.fit(&masks, &y, 5).unwrap();
                println!(
                    "  {:12} R2 {:.4}  terms {:4}  {:.3}s",
                    b.name(),
                    s.r2(&fresh, &want),
                    s.len(),
                    t.elapsed().as_secs_f64()
                );
            }
        }
        // Scale: 96 players, all pairs (4657 columns), 5000 rows.
        let truth = game(96, 12, 100, 0, 14);
        let (masks, y) = samples(&truth, 5000, 0.05, 23);
        let t = Instant::now();
        let fit = lasso_cv(&masks, &low_order_support(96, 2), &y, 5, LAMBDAS).unwrap();
        println!(
            "96p pairs x 5000 rows: lasso_cv {:.2}s, cv R2 {:.4}, {} nonzero",
            t.elapsed().as_secs_f64(),
            fit.cv_r2,
            fit.coefficients.iter().filter(|c| **c != 0.0).count()
        );
    }
}
