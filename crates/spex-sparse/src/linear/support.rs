//! The supports and sizes every Fourier regression shares: the low-order support, the size caps
//! and the checks of a fit's arguments.

use crate::memory::check_fits;
use crate::spectrum::{mean_squared_error, r2_score};
use crate::{Error, MaskBatch, Result, Subset};

/// Most support columns a fit accepts (its Gram matrices: `12 * 6000^2` bytes = 432 MB).
pub const MAX_COLUMNS: usize = 6000;

/// Most columns x rows a fit accepts.
pub const MAX_CELLS: usize = 100_000_000;

/// Penalties on the lasso path of the baselines and of the cv refit (as glmnet, scikit-learn).
pub const LAMBDAS: usize = 100;

/// `∅`, then every set of 1 to `order` players out of `n`, in subset order (size, then indices):
/// `1 + n + n(n-1)/2` subsets for order 2.
pub fn low_order_support(n: usize, order: usize) -> Vec<Subset> {
    let mut out = vec![Subset::empty()];
    let mut level = vec![Vec::<u32>::new()];
    for _ in 0..order.min(n) {
        let mut next = Vec::new();
        for s in &level {
            let start = s.last().map_or(0, |&i| i + 1);
            for i in start..n as u32 {
                let mut t = s.clone();
                t.push(i);
                next.push(t);
            }
        }
        out.extend(next.iter().cloned().map(Subset::from_sorted));
        level = next;
    }
    out
}

/// Refuses a support of `columns` over `rows` rows above the caps or the available memory.
pub fn check_size(columns: usize, rows: usize) -> Result<()> {
    let cells = columns.saturating_mul(rows);
    if columns > MAX_COLUMNS || cells > MAX_CELLS {
        return Err(Error::invalid(
            "support",
            format!(
                "{columns} columns x {rows} rows is too big for a Fourier regression: at most \
                 {MAX_COLUMNS} columns and {MAX_CELLS} columns x rows; use a lower order \
                 (singles only) or fewer players"
            ),
        ));
    }
    // The raw Gram (i32) and one standardised copy (f64), and the bit columns.
    let bytes = 12 * (columns as u128).pow(2) + (cells as u128) / 4;
    check_fits(
        bytes,
        || format!("the Gram matrix of a {columns}-column support"),
        "support",
    )
}

/// Checks lengths and that `folds` contiguous folds of the rows are each non-empty.
pub fn check_folds(masks: &MaskBatch, y: &[f64], folds: usize) -> Result<()> {
    if masks.len() != y.len() {
        return Err(Error::ValuesMismatch(format!(
            "{} masks but {} values",
            masks.len(),
            y.len()
        )));
    }
    if folds < 2 || folds > y.len() {
        return Err(Error::invalid(
            "folds",
            format!(
                "{folds} cross-validation folds over {} rows: between 2 and the row count",
                y.len()
            ),
        ));
    }
    Ok(())
}

/// Validation scores per penalty, averaged over the cross-validation folds: what the lasso and
/// the ridge choose their penalty by.
pub struct FoldScores {
    /// Mean squared error per penalty.
    pub mse: Vec<f64>,
    /// R^2 per penalty.
    pub r2: Vec<f64>,
    folds: usize,
}

impl FoldScores {
    /// Zero scores for `penalties` penalties over `folds` folds.
    pub fn new(penalties: usize, folds: usize) -> FoldScores {
        FoldScores {
            mse: vec![0.0; penalties],
            r2: vec![0.0; penalties],
            folds,
        }
    }

    /// Adds one fold's scores of penalty `i`: `predicted` against the fold's `truth`.
    pub fn add(&mut self, i: usize, truth: &[f64], predicted: &[f64]) {
        let folds = self.folds as f64;
        self.mse[i] += mean_squared_error(truth, predicted) / folds;
        self.r2[i] += r2_score(truth, predicted) / folds;
    }

    /// The penalty with the lowest mean squared error ([`argmin_first`]).
    pub fn best(&self) -> usize {
        argmin_first(&self.mse)
    }
}

/// Index of the smallest finite value (the first on ties; 0 when none is finite).
pub fn argmin_first(values: &[f64]) -> usize {
    let mut best = (f64::INFINITY, 0);
    for (i, &v) in values.iter().enumerate() {
        if v.is_finite() && v < best.0 {
            best = (v, i);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_order_support_lists_every_pair_once_in_order() {
        let s = low_order_support(27, 2);
        assert_eq!(s.len(), 1 + 27 + 27 * 26 / 2);
        assert!(s.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(low_order_support(3, 1).len(), 4);
        assert_eq!(low_order_support(4, 3).len(), 1 + 4 + 6 + 4);
        assert_eq!(low_order_support(96, 2).len(), 4657);
    }

    #[test]
    fn caps_name_the_support() {
        assert!(check_size(4657, 5000).is_ok());
        let err = check_size(80_000, 1000).unwrap_err().to_string();
        assert!(
            err.contains("support") && err.contains("80000 columns"),
            "{err}"
        );
    }
}
