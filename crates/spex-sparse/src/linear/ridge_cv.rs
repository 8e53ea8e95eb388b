//! Ridge in the Fourier basis with an unpenalised intercept, the penalty chosen by K-fold
//! cross-validation on the same contiguous folds as the lasso, and least squares (a ridge with
//! a negligible penalty).
//!
//! Objective on the centred `±1` columns `X` (not standardised: every Fourier character has the
//! same scale) and centred `y`: `1/(2m) ||y - ybar - X beta||^2 + alpha/2 ||beta||^2`. One
//! symmetric eigendecomposition of `X^T X / m` per fold serves every penalty.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use super::columns::{split_rows, Columns, Moments};
use super::support::{check_folds, check_size, FoldScores};
use crate::proxy::cv::fold_ranges;
use crate::proxy::ridge::log_grid;
use crate::{MaskBatch, Result, Subset};

/// Penalties tried by [`ridge_cv`]: 100 values log-spaced in `[1e-6, 1e3]` (on the scale of the
/// objective above, where a Fourier character's variance is about 1).
pub fn ridge_alphas() -> Vec<f64> {
    log_grid(1e-6, 1e3, 100)
}

/// Penalty of [`least_squares`]: small enough not to bias, large enough to make duplicated or
/// constant columns solvable.
pub const OLS_PENALTY: f64 = 1e-10;

/// A ridge fit over a support.
#[derive(Clone, Debug, PartialEq)]
pub struct RidgeCvFit {
    /// One coefficient per support subset, in the support's order, on the `±1` Fourier columns.
    /// The coefficient of `∅`, when the support holds it, is the intercept.
    pub coefficients: Vec<f64>,
    /// The unpenalised constant: the prediction is
    /// `intercept + sum_{S_j != ∅} coefficients[j] chi_{S_j}(x)`.
    pub intercept: f64,
    /// The penalty chosen.
    pub alpha: f64,
    /// Mean over the folds of the validation R^2 at `alpha` (NaN for [`least_squares`]).
    pub cv_r2: f64,
    /// Mean over the folds of the validation mean squared error at `alpha` (the criterion; NaN
    /// for [`least_squares`]).
    pub cv_mse: f64,
}

/// One row set's centred problem, eigendecomposed.
struct Eigen {
    k: usize,
    mean: Vec<f64>,
    live: Vec<bool>,
    vectors: DMatrix<f64>,
    values: Vec<f64>,
    /// `V^T X^T (y - ybar) / m`.
    z: DVector<f64>,
    y_mean: f64,
}

impl Eigen {
    fn new(mo: Moments) -> Eigen {
        let k = mo.mean.len();
        // Constant columns (∅ among them) are left out: the intercept carries them.
        let live: Vec<bool> = (0..k).map(|j| mo.gram[j * k + j] > 1e-12).collect();
        let idx: Vec<usize> = (0..k).filter(|&j| live[j]).collect();
        let gram = DMatrix::from_fn(idx.len(), idx.len(), |a, b| mo.gram[idx[a] * k + idx[b]]);
        let eig = SymmetricEigen::new(gram);
        let xty = DVector::from_iterator(idx.len(), idx.iter().map(|&j| mo.xty[j]));
        let z = eig.eigenvectors.tr_mul(&xty);
        Eigen {
            k,
            mean: mo.mean,
            live,
            values: eig.eigenvalues.iter().map(|l| l.max(0.0)).collect(),
            vectors: eig.eigenvectors,
            z,
            y_mean: mo.y_mean,
        }
    }

    /// Coefficients on the `±1` columns and the intercept at penalty `alpha`.
    fn solve(&self, alpha: f64) -> (Vec<f64>, f64) {
        let scaled = DVector::from_fn(self.values.len(), |i, _| {
            let d = self.values[i] + alpha;
            if d > 0.0 {
                self.z[i] / d
            } else {
                0.0
            }
        });
        let beta = &self.vectors * scaled;
        let mut it = beta.iter();
        let coef: Vec<f64> = (0..self.k)
            .map(|j| match self.live[j] {
                true => it.next().copied().unwrap_or(0.0),
                false => 0.0,
            })
            .collect();
        let intercept = self.y_mean
            - coef
                .iter()
                .zip(&self.mean)
                .map(|(b, mu)| b * mu)
                .sum::<f64>();
        (coef, intercept)
    }
}

/// Ridge of `y` on the Fourier columns of `support` with an unpenalised intercept; the penalty
/// of `alphas` with the smallest mean held-out squared error over the `folds` contiguous folds
/// of [`fold_ranges`] (the largest penalty on ties), then refitted on all rows.
///
/// Cost: `folds + 1` eigendecompositions of a `k x k` matrix, `O(k^3)` each: fine for a few
/// hundred columns, minutes for several thousand.
///
/// Errors: as [`super::lasso_cv`]; `alphas` empty or not all positive and finite.
pub fn ridge_cv(
    masks: &MaskBatch,
    support: &[Subset],
    y: &[f64],
    folds: usize,
    alphas: &[f64],
) -> Result<RidgeCvFit> {
    check_folds(masks, y, folds)?;
    if alphas.is_empty() || alphas.iter().any(|a| !(a.is_finite() && *a > 0.0)) {
        return Err(crate::Error::invalid(
            "alphas",
            "ridge needs at least one penalty, every one finite and > 0",
        ));
    }
    check_size(support.len(), masks.len())?;
    // Largest penalty first, so that ties keep the strongest shrinkage.
    let mut alphas = alphas.to_vec();
    alphas.sort_by(|a, b| b.total_cmp(a));
    let m = y.len();
    let shift = y.iter().sum::<f64>() / m as f64;
    let y: Vec<f64> = y.iter().map(|v| v - shift).collect();
    let all: Vec<usize> = (0..m).collect();
    let sums = Columns::new(masks, support, &all).sums(&y);
    let ranges = fold_ranges(m, folds);
    let mut scores = FoldScores::new(alphas.len(), ranges.len());
    for &range in &ranges {
        let (_, valid) = split_rows(m, range);
        let y_valid: Vec<f64> = valid.iter().map(|&r| y[r]).collect();
        let valid_cols = Columns::new(masks, support, &valid);
        let eig = Eigen::new(sums.moments_without(&valid_cols, &y_valid));
        for (i, &a) in alphas.iter().enumerate() {
            let (coef, intercept) = eig.solve(a);
            scores.add(i, &y_valid, &valid_cols.predict(intercept, &coef));
        }
    }
    let best = scores.best();
    let eig = Eigen::new(sums.moments());
    let (coefficients, intercept) = eig.solve(alphas[best]);
    Ok(finish(
        support,
        coefficients,
        intercept + shift,
        alphas[best],
        scores.r2[best],
        scores.mse[best],
    ))
}

/// Least squares of `y` on the Fourier columns of `support` plus an intercept (a ridge with
/// [`OLS_PENALTY`]); no cross-validation. Errors: lengths differ; the size caps.
pub fn least_squares(masks: &MaskBatch, support: &[Subset], y: &[f64]) -> Result<RidgeCvFit> {
    if masks.len() != y.len() || y.is_empty() {
        return Err(crate::Error::ValuesMismatch(format!(
            "{} masks but {} values",
            masks.len(),
            y.len()
        )));
    }
    check_size(support.len(), masks.len())?;
    let all: Vec<usize> = (0..y.len()).collect();
    let mo = Columns::new(masks, support, &all).moments(y);
    let k = mo.mean.len();
    let live: Vec<usize> = (0..k).filter(|&j| mo.gram[j * k + j] > 1e-12).collect();
    let gram = DMatrix::from_fn(live.len(), live.len(), |a, b| {
        mo.gram[live[a] * k + live[b]] + if a == b { OLS_PENALTY } else { 0.0 }
    });
    let rhs = DVector::from_iterator(live.len(), live.iter().map(|&j| mo.xty[j]));
    let beta = match gram.clone().cholesky() {
        Some(ch) => ch.solve(&rhs),
        // Numerically singular: the eigen route, which drops null directions.
        None => {
            let eig = SymmetricEigen::new(gram);
            let scaled = DVector::from_fn(live.len(), |i, _| {
                let l = eig.eigenvalues[i];
                let z = eig.eigenvectors.column(i).dot(&rhs);
                if l > 1e-9 {
                    z / l
                } else {
                    0.0
                }
            });
            &eig.eigenvectors * scaled
        }
    };
    let mut coefficients = vec![0.0; k];
    for (&j, b) in live.iter().zip(beta.iter()) {
        coefficients[j] = *b;
    }
    let intercept = mo.y_mean
        - coefficients
            .iter()
            .zip(&mo.mean)
            .map(|(b, mu)| b * mu)
            .sum::<f64>();
    Ok(finish(
        support,
        coefficients,
        intercept,
        OLS_PENALTY,
        f64::NAN,
        f64::NAN,
    ))
}

fn finish(
    support: &[Subset],
    mut coefficients: Vec<f64>,
    intercept: f64,
    alpha: f64,
    cv_r2: f64,
    cv_mse: f64,
) -> RidgeCvFit {
    for (s, c) in support.iter().zip(coefficients.iter_mut()) {
        if s.is_empty() {
            *c = intercept;
        }
    }
    RidgeCvFit {
        coefficients,
        intercept,
        alpha,
        cv_r2,
        cv_mse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::low_order_support;
    use crate::synthetic::uniform_masks;

    /// Ridge with an unpenalised intercept by brute-force normal equations on the dense design.
    fn brute(masks: &MaskBatch, support: &[Subset], y: &[f64], alpha: f64) -> (f64, Vec<f64>) {
        let rest: Vec<Subset> = support.iter().filter(|s| !s.is_empty()).cloned().collect();
        let x = crate::proxy::ridge::fourier_design(masks, &rest);
        let (m, k) = x.shape();
        let d = DMatrix::from_fn(m, k + 1, |r, j| if j == 0 { 1.0 } else { x[(r, j - 1)] });
        let mut p = DMatrix::identity(k + 1, k + 1) * (alpha * m as f64);
        p[(0, 0)] = 0.0;
        let c = (d.tr_mul(&d) + p)
            .lu()
            .solve(&d.tr_mul(&DVector::from_column_slice(y)))
            .unwrap();
        (c[0], c.iter().skip(1).copied().collect())
    }

    #[test]
    fn ridge_and_least_squares_match_the_normal_equations() {
        let masks = uniform_masks(6, 80, 2);
        let support = low_order_support(6, 2);
        let y: Vec<f64> = (0..80)
            .map(|r| ((r * 37) % 11) as f64 - (r % 3) as f64)
            .collect();
        let fit = ridge_cv(&masks, &support, &y, 5, &ridge_alphas()).unwrap();
        let (b0, b) = brute(&masks, &support, &y, fit.alpha);
        assert!((fit.intercept - b0).abs() < 1e-8);
        assert_eq!(fit.coefficients[0], fit.intercept);
        for (a, w) in fit.coefficients[1..].iter().zip(&b) {
            assert!((a - w).abs() < 1e-8, "{a} vs {w}");
        }
        let ols = least_squares(&masks, &support[..7], &y).unwrap();
        let (b0, b) = brute(&masks, &support[..7], &y, 0.0);
        assert!((ols.intercept - b0).abs() < 1e-6);
        for (a, w) in ols.coefficients[1..].iter().zip(&b) {
            assert!((a - w).abs() < 1e-6, "{a} vs {w}");
        }
    }
}
