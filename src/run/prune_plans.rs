//! The pruning job's plans, before any is measured: at each level (heads removed), the heads
//! removed under the exact maximisation of the surrogate, its removal orders, the baselines fitted
//! to the attribution's samples (LASSO, ridge over pairs) and Best-of-N.

use std::path::Path;

use super::head_values::HeadValues;
use crate::ablate::TaskScorer;
use crate::io::{read_masks_npy, read_values};
use crate::report::prune::{removal_order, Strategy};
use crate::sparse::linear::Baseline;
use crate::sparse::maximise::{maximise_keep_exactly, SearchLimit};
use crate::sparse::proxy::fixed_size::fixed_size_masks;
use crate::sparse::{Basis, MaskBatch, Spectrum, Subset};
use crate::task::TaskItem;
use crate::{Error, Result};

/// One plan of a level before it is measured: its name, the players it removes, and what the
/// choice itself reports.
pub(super) struct Candidate {
    /// The strategy's name in prune.json.
    pub strategy: String,
    /// Players removed, in removal order.
    pub removed: Vec<usize>,
    /// `maximise`: whether the selection is proven optimal.
    pub optimal: Option<bool>,
    /// `maximise`: the gap when the node limit stopped the search.
    pub gap: Option<f64>,
    /// `best-of-N`: evaluations spent on the attribution's questions.
    pub train_evaluations: Option<usize>,
}

impl Candidate {
    /// A plan that reports nothing beside its removed players.
    pub fn named(strategy: &str, removed: Vec<usize>) -> Candidate {
        Candidate {
            strategy: strategy.to_string(),
            removed,
            optimal: None,
            gap: None,
            train_evaluations: None,
        }
    }
}

/// What the plan choice takes from the pruning job's options.
#[derive(Clone, Copy, Debug)]
pub(super) struct ChoiceSettings {
    /// Seed of the random order and of Best-of-N's draws.
    pub seed: u64,
    /// Best-of-N's N (0: no Best-of-N).
    pub best_of: usize,
    /// Most branch-and-bound nodes of each exact selection.
    pub search_nodes: u64,
}

/// The plans of each level (`counts[i]` heads removed out of `hv`'s players), in the order
/// prune.json lists them, and the baselines that could not run with why. `train` (the
/// attribution's questions) is where Best-of-N chooses.
pub(super) fn choose_plans(
    from: &Path,
    hv: &HeadValues,
    spectrum: &Spectrum,
    counts: &[usize],
    options: ChoiceSettings,
    train: Option<&[TaskItem]>,
) -> Result<(Vec<Vec<Candidate>>, Vec<String>)> {
    let n = hv.n_players();
    let deepest = counts.iter().copied().max().unwrap_or(0);
    let orders: Vec<Vec<usize>> = Strategy::ALL
        .iter()
        .map(|&s| removal_order(spectrum, s, deepest, options.seed))
        .collect();
    let (fitted, mut skipped) = fitted_baselines(from)?;
    let best_of = match train {
        Some(items) if options.best_of > 0 => Some((hv.scorer_of(items)?, items)),
        _ => {
            if options.best_of > 0 {
                skipped.push("best-of: the attribution's questions are not known".into());
            }
            None
        }
    };
    let limit = SearchLimit::nodes(options.search_nodes);
    let mut levels = Vec::with_capacity(counts.len());
    for &removed in counts {
        let k = n - removed;
        let best = maximise_keep_exactly(spectrum, k, limit)?;
        let mut plans = vec![Candidate {
            optimal: Some(best.optimal),
            gap: (!best.optimal).then(|| best.gap()),
            ..Candidate::named("maximise", removed_of(n, &best.kept))
        }];
        for (s, order) in Strategy::ALL.iter().zip(&orders) {
            plans.push(Candidate::named(s.name(), order[..removed].to_vec()));
        }
        for (b, surrogate) in &fitted {
            let (name, kept) = match b {
                Baseline::LassoLinear => ("lasso", top_singles(surrogate, k)),
                _ => (b.name(), maximise_keep_exactly(surrogate, k, limit)?.kept),
            };
            plans.push(Candidate::named(name, removed_of(n, &kept)));
        }
        if let Some((scorer, items)) = &best_of {
            plans.push(best_of_plan(hv, scorer, items, k, options)?);
        }
        levels.push(plans);
    }
    Ok((levels, skipped))
}

/// Baselines fitted to the attribution's samples, each with its surrogate spectrum.
type Surrogates = Vec<(Baseline, Spectrum)>;

/// LASSO over single heads and ridge over heads and pairs, fitted to the samples beside the
/// spectrum in `from` (tuned by the comparison's folds), and the ones that could not be fitted
/// with why.
fn fitted_baselines(from: &Path) -> Result<(Surrogates, Vec<String>)> {
    let mut skipped = Vec::new();
    let Some((masks, values)) = read_samples(from)? else {
        skipped.push("lasso, ridge-pairs: no masks.npy and values.npy beside the spectrum".into());
        return Ok((Vec::new(), skipped));
    };
    let fitted = [Baseline::LassoLinear, Baseline::RidgePairs]
        .into_iter()
        .filter_map(|b| match b.fit(&masks, &values, super::compare::FOLDS) {
            Ok(s) => Some((b, s)),
            Err(e) => {
                skipped.push(format!("{}: {e}", b.name()));
                None
            }
        })
        .collect();
    Ok((fitted, skipped))
}

/// Best-of-N at `k` heads kept: N fresh head sets of exactly `k` heads (seeded by the options'
/// seed and `k`), each evaluated by `scorer` on the attribution's questions `items`; the best one.
fn best_of_plan(
    hv: &HeadValues,
    scorer: &TaskScorer,
    items: &[TaskItem],
    k: usize,
    options: ChoiceSettings,
) -> Result<Candidate> {
    let n = hv.n_players();
    let draws = fixed_size_masks(n, k, options.best_of, options.seed ^ k as u64);
    let rows: Vec<Option<crate::model::HeadScales>> = (0..draws.len())
        .map(|r| Some(hv.players.scales(|p| draws.get(r, p))))
        .collect();
    tracing::info!(
        "best-of-{}: {} head sets of {k} heads on {} attribution question(s)",
        options.best_of,
        draws.len(),
        items.len()
    );
    let logits = scorer.score(&rows, hv.kind.needs_logsumexp())?;
    let golds: Vec<usize> = items.iter().map(|q| q.gold).collect();
    let values = hv.kind.values(&logits, &golds)?;
    let kept = best_of_draws(&draws, &values);
    Ok(Candidate {
        train_evaluations: Some(draws.len()),
        ..Candidate::named(
            &format!("best-of-{}", options.best_of),
            removed_of(n, &kept),
        )
    })
}

/// The attribution's samples beside a `spex heads` folder's spectrum (masks.npy, values.npy), or
/// `None` for a spectrum.json file.
fn read_samples(from: &Path) -> Result<Option<(MaskBatch, Vec<f64>)>> {
    let (masks, values) = (from.join("masks.npy"), from.join("values.npy"));
    if !from.is_dir() || !masks.is_file() || !values.is_file() {
        return Ok(None);
    }
    let (m, v) = (read_masks_npy(&masks)?, read_values(&values)?);
    if m.len() != v.len() {
        return Err(Error::file(
            &values,
            format!("{} values for the {} masks of masks.npy", v.len(), m.len()),
        ));
    }
    Ok(Some((m, v)))
}

/// The players not in `kept` (sorted).
fn removed_of(n: usize, kept: &[u32]) -> Vec<usize> {
    let mut mask = vec![false; n];
    kept.iter().for_each(|&p| mask[p as usize] = true);
    (0..n).filter(|&p| !mask[p]).collect()
}

/// The `k` players with the largest gain from being kept under a first-order `spectrum`
/// (its Moebius singletons), ties to the smaller index.
fn top_singles(spectrum: &Spectrum, k: usize) -> Vec<u32> {
    let n = spectrum.n_players();
    let moebius = spectrum.in_basis(Basis::Moebius);
    let mut players: Vec<u32> = (0..n as u32).collect();
    let gain = |p: u32| moebius.get(&Subset::singleton(p));
    players.sort_by(|&a, &b| gain(b).total_cmp(&gain(a)).then(a.cmp(&b)));
    players.truncate(k);
    players.sort_unstable();
    players
}

/// Best-of-N's choice: the players kept by the draw with the highest value (the first on ties);
/// `values[r]` is the value of `draws` row `r`.
fn best_of_draws(draws: &MaskBatch, values: &[f64]) -> Vec<u32> {
    let winner = (0..values.len().min(draws.len()))
        .max_by(|&a, &b| values[a].total_cmp(&values[b]).then(b.cmp(&a)))
        .unwrap_or(0);
    (0..draws.n_players() as u32)
        .filter(|&p| !draws.is_empty() && draws.get(winner, p as usize))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_of_n_keeps_the_best_draw_of_exactly_the_size() {
        let draws = fixed_size_masks(10, 4, 25, 3);
        // The value of a draw: how many of players 0..3 it keeps, so the best draws keep them all.
        let values: Vec<f64> = (0..draws.len())
            .map(|r| (0..3).filter(|&p| draws.get(r, p)).count() as f64)
            .collect();
        let best = values.iter().copied().fold(f64::MIN, f64::max);
        let first_best = values.iter().position(|&v| v == best).unwrap();
        let kept = best_of_draws(&draws, &values);
        assert_eq!(kept.len(), 4);
        let expected: Vec<u32> = (0..10)
            .filter(|&p| draws.get(first_best, p as usize))
            .collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn lasso_keeps_the_players_worth_most_alone() {
        // f = 3 x0 - x1 + 2 x2 (Moebius); keeping two: players 0 and 2.
        let f = Spectrum::from_terms(
            4,
            Basis::Moebius,
            [
                (Subset::singleton(0), 3.0),
                (Subset::singleton(1), -1.0),
                (Subset::singleton(2), 2.0),
            ],
        )
        .to_fourier();
        assert_eq!(top_singles(&f, 2), [0, 2]);
        assert_eq!(removed_of(4, &top_singles(&f, 2)), [1, 3]);
    }
}
