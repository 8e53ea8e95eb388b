//! Hyperparameters of the proxy by k-fold cross-validated R^2 over a small grid.
//!
//! Folds are contiguous blocks of rows, as scikit-learn's `KFold` without shuffling (the rows
//! are uniform random masks already). One fit of `max(n_trees)` trees per (depth, learning
//! rate, fold) serves every tree count of the grid: a shorter ensemble is a prefix of it.
//! The (grid point, fold) fits run in parallel with rayon; results are collected in order.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::binary_matrix::BinaryMatrix;
use super::gbdt::{fit, TreeParams};
use crate::spectrum::r2_score;

/// Most trees a grid may ask for (the reference grid's largest is 1000).
pub const MAX_TREES: usize = 100_000;

/// The proxy's hyperparameter grid and the fixed tree options (LightGBM defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyGrid {
    /// Tree depths tried.
    pub max_depth: Vec<usize>,
    /// Numbers of trees tried.
    pub n_trees: Vec<usize>,
    /// Learning rates tried.
    pub learning_rate: Vec<f64>,
    /// Maximum leaves per tree.
    pub num_leaves: usize,
    /// Minimum rows per leaf.
    pub min_child_samples: usize,
    /// Cross-validation folds.
    pub folds: usize,
}

impl Default for ProxyGrid {
    /// The reference grid: depth {3, 5} x trees {500, 1000} x learning rate {0.01, 0.1}, 5 folds.
    fn default() -> Self {
        ProxyGrid {
            max_depth: vec![3, 5],
            n_trees: vec![500, 1000],
            learning_rate: vec![0.01, 0.1],
            num_leaves: 31,
            min_child_samples: 20,
            folds: 5,
        }
    }
}

impl ProxyGrid {
    /// Checks every list and option; errors name the field (`grid.n_trees`), its value and what
    /// is accepted.
    pub fn validate(&self) -> crate::Result<()> {
        let invalid = |field: &str, reason: String| {
            Err(crate::Error::invalid(format!("grid.{field}"), reason))
        };
        let lists = [
            ("max_depth", self.max_depth.len()),
            ("n_trees", self.n_trees.len()),
            ("learning_rate", self.learning_rate.len()),
        ];
        for (field, len) in lists {
            if len == 0 {
                return invalid(
                    field,
                    "[] is empty: the grid needs at least one value to try".into(),
                );
            }
        }
        if let Some(d) = self.max_depth.iter().find(|&&d| d == 0) {
            return invalid("max_depth", format!("{d}: every depth must be >= 1"));
        }
        if let Some(t) = self
            .n_trees
            .iter()
            .find(|&&t| !(1..=MAX_TREES).contains(&t))
        {
            return invalid(
                "n_trees",
                format!("{t}: every tree count must be between 1 and {}", MAX_TREES),
            );
        }
        if let Some(lr) = self
            .learning_rate
            .iter()
            .find(|lr| !(lr.is_finite() && **lr > 0.0))
        {
            return invalid(
                "learning_rate",
                format!("{lr}: every learning rate must be finite and > 0"),
            );
        }
        if self.num_leaves < 2 {
            return invalid(
                "num_leaves",
                format!(
                    "{} must be >= 2 (LightGBM's default is 31)",
                    self.num_leaves
                ),
            );
        }
        if self.min_child_samples == 0 {
            return invalid(
                "min_child_samples",
                "0 must be >= 1 (LightGBM's default is 20)".into(),
            );
        }
        if self.folds < 2 {
            return invalid(
                "folds",
                format!(
                    "{} cross-validation folds: at least 2 are needed (the reference uses 5)",
                    self.folds
                ),
            );
        }
        Ok(())
    }
}

/// One grid point's mean validation R^2 over the folds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GridScore {
    /// The grid point.
    pub params: TreeParams,
    /// Mean R^2 over the validation folds.
    pub r2: f64,
}

/// The `(start, end)` row ranges of `folds` contiguous folds over `m` rows (first ones larger).
pub fn fold_ranges(m: usize, folds: usize) -> Vec<(usize, usize)> {
    let (base, extra) = (m / folds, m % folds);
    let mut start = 0;
    (0..folds)
        .map(|f| {
            let len = base + usize::from(f < extra);
            let r = (start, start + len);
            start += len;
            r
        })
        .collect()
}

/// Scores every grid point by cross-validation on `(x, y)`; returned in grid order
/// (depth, then learning rate, then tree count). `grid` must have non-empty lists and `folds >= 2`.
pub fn cross_validate(x: &BinaryMatrix, y: &[f64], grid: &ProxyGrid) -> Vec<GridScore> {
    let max_trees = grid.n_trees.iter().copied().max().unwrap_or(0);
    let folds = fold_ranges(y.len(), grid.folds);
    let jobs: Vec<(usize, f64, usize)> = grid
        .max_depth
        .iter()
        .flat_map(|&d| grid.learning_rate.iter().map(move |&lr| (d, lr)))
        .flat_map(|(d, lr)| (0..folds.len()).map(move |f| (d, lr, f)))
        .collect();
    // Per job: R^2 on the held-out fold for each tree count of the grid.
    let scores: Vec<Vec<f64>> = jobs
        .par_iter()
        .map(|&(depth, lr, f)| {
            let (lo, hi) = folds[f];
            let train: Vec<usize> = (0..lo).chain(hi..y.len()).collect();
            let valid: Vec<usize> = (lo..hi).collect();
            let y_train: Vec<f64> = train.iter().map(|&r| y[r]).collect();
            let y_valid: Vec<f64> = valid.iter().map(|&r| y[r]).collect();
            let params = tree_params(grid, depth, lr, max_trees);
            let model = fit(&x.select(&train), &y_train, &params);
            let xv = x.select(&valid);
            model
                .predict_prefixes(&xv, &grid.n_trees)
                .iter()
                .map(|p| r2_score(&y_valid, p))
                .collect()
        })
        .collect();
    let mut out = Vec::new();
    for (c, chunk) in scores.chunks(folds.len()).enumerate() {
        let (depth, lr, _) = jobs[c * folds.len()];
        for (t_idx, &t) in grid.n_trees.iter().enumerate() {
            let mean = chunk.iter().map(|s| s[t_idx]).sum::<f64>() / folds.len() as f64;
            out.push(GridScore {
                params: tree_params(grid, depth, lr, t),
                r2: mean,
            });
        }
    }
    out
}

/// The grid point with the highest mean R^2 (the first one on ties or when all are NaN).
pub fn best_params(scores: &[GridScore]) -> Option<TreeParams> {
    let mut best: Option<&GridScore> = None;
    for s in scores {
        if best.is_none_or(|b| s.r2 > b.r2 || (b.r2.is_nan() && !s.r2.is_nan())) {
            best = Some(s);
        }
    }
    best.map(|b| b.params)
}

fn tree_params(grid: &ProxyGrid, depth: usize, lr: f64, trees: usize) -> TreeParams {
    TreeParams {
        max_depth: depth,
        num_leaves: grid.num_leaves,
        min_child_samples: grid.min_child_samples,
        learning_rate: lr,
        n_trees: trees,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::sampling::distinct_uniform_masks;

    #[test]
    fn folds_cover_the_rows_like_kfold() {
        assert_eq!(
            fold_ranges(12, 5),
            vec![(0, 3), (3, 6), (6, 8), (8, 10), (10, 12)]
        );
    }

    #[test]
    fn cv_prefers_enough_capacity_for_an_interaction() {
        // y needs a depth-2 interaction plus shrinkage: depth 1 cannot fit it.
        let masks = distinct_uniform_masks(10, 400, 11);
        let x = BinaryMatrix::from_masks(&masks);
        let y: Vec<f64> = (0..400)
            .map(|r| f64::from(x.row(r)[1] & x.row(r)[4]) * 2.0 + f64::from(x.row(r)[7]))
            .collect();
        let grid = ProxyGrid {
            max_depth: vec![1, 3],
            n_trees: vec![20, 200],
            learning_rate: vec![0.1],
            ..ProxyGrid::default()
        };
        let scores = cross_validate(&x, &y, &grid);
        assert_eq!(scores.len(), 4);
        let best = best_params(&scores).unwrap();
        assert_eq!((best.max_depth, best.n_trees), (3, 200));
        assert!(scores[3].r2 > 0.99, "{:?}", scores[3]);
        assert!(
            scores[1].r2 < 0.95,
            "depth 1 cannot fit an AND: {:?}",
            scores[1]
        );
        // Deterministic under rayon.
        assert_eq!(scores, cross_validate(&x, &y, &grid));
    }
}
