//! Lasso in the Fourier basis: coordinate descent with covariance updates on a precomputed Gram
//! matrix, active-set cycling and warm starts down a log path of penalties, the penalty chosen by
//! K-fold cross-validated mean squared error (as scikit-learn's `LassoCV` / glmnet's `cv.glmnet`).
//!
//! Objective on standardised columns `z_j = (chi_j - mean_j) / sd_j` and centred `y`:
//! `1/(2m) ||y - ybar - Z beta||^2 + lambda ||beta||_1`. The intercept is never penalised.

use super::columns::{split_rows, Columns, Moments};
use super::support::{check_folds, check_size, FoldScores};
use crate::proxy::cv::fold_ranges;
use crate::{MaskBatch, Result, Subset};

/// Smallest penalty of the path relative to the largest (`lambda_max`, where every coefficient
/// is zero), as glmnet and scikit-learn.
pub const LAMBDA_RATIO: f64 = 1e-3;

/// Convergence: a pass stops when no coefficient moved by more than `sqrt(TOL * var(y))` in
/// standardised units (glmnet's criterion, tighter than its default 1e-7).
const TOL: f64 = 1e-9;

/// Most coordinate-descent passes per penalty.
const MAX_PASSES: usize = 10_000;

/// A lasso fit over a support.
#[derive(Clone, Debug, PartialEq)]
pub struct LassoFit {
    /// One coefficient per support subset, in the support's order, on the `±1` Fourier columns
    /// (not standardised). The coefficient of `∅`, when the support holds it, is the intercept.
    pub coefficients: Vec<f64>,
    /// The unpenalised constant: the prediction is
    /// `intercept + sum_{S_j != ∅} coefficients[j] chi_{S_j}(x)`.
    pub intercept: f64,
    /// The penalty chosen (on the standardised scale, see the module docs).
    pub lambda: f64,
    /// Mean over the folds of the validation R^2 at `lambda`.
    pub cv_r2: f64,
    /// Mean over the folds of the validation mean squared error at `lambda` (the criterion).
    pub cv_mse: f64,
}

/// The standardised problem of one row set: Gram and correlations of the columns that vary.
struct Standardised {
    k: usize,
    /// Columns that vary on these rows (the others keep a zero coefficient).
    live: Vec<bool>,
    sd: Vec<f64>,
    mean: Vec<f64>,
    /// `[k, k]` correlation matrix (unit diagonal on live columns).
    gram: Vec<f64>,
    /// `z_j^T (y - ybar) / m`.
    c: Vec<f64>,
    y_mean: f64,
    y_var: f64,
}

impl Standardised {
    fn new(mo: Moments) -> Standardised {
        let k = mo.mean.len();
        let sd: Vec<f64> = (0..k).map(|j| mo.gram[j * k + j].max(0.0).sqrt()).collect();
        let live: Vec<bool> = sd.iter().map(|&s| s > 1e-12).collect();
        let mut gram = mo.gram;
        for j in 0..k {
            for l in 0..k {
                gram[j * k + l] = if live[j] && live[l] {
                    gram[j * k + l] / (sd[j] * sd[l])
                } else {
                    0.0
                };
            }
        }
        let c = (0..k)
            .map(|j| if live[j] { mo.xty[j] / sd[j] } else { 0.0 })
            .collect();
        Standardised {
            k,
            live,
            sd,
            mean: mo.mean,
            gram,
            c,
            y_mean: mo.y_mean,
            y_var: mo.y_var,
        }
    }

    /// `max_j |c_j|`: the smallest penalty at which every coefficient is zero.
    fn lambda_max(&self) -> f64 {
        self.c.iter().fold(0.0, |a, v| a.max(v.abs()))
    }

    /// Coefficients on the `±1` columns and the intercept, from standardised `beta`.
    fn unstandardise(&self, beta: &[f64]) -> (Vec<f64>, f64) {
        let coef: Vec<f64> = (0..self.k)
            .map(|j| {
                if self.live[j] {
                    beta[j] / self.sd[j]
                } else {
                    0.0
                }
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

    /// Walks `lambdas` (decreasing) with warm starts; calls `visit(index, beta)` after each.
    fn path(&self, lambdas: &[f64], mut visit: impl FnMut(usize, &[f64])) {
        let k = self.k;
        let mut beta = vec![0.0; k];
        // grad = c - G beta.
        let mut grad = self.c.clone();
        let tol = TOL * self.y_var.max(f64::MIN_POSITIVE);
        let update = |j: usize, lambda: f64, beta: &mut [f64], grad: &mut [f64]| -> f64 {
            let rho = grad[j] + beta[j];
            let new = soft(rho, lambda);
            let delta = new - beta[j];
            if delta != 0.0 {
                let row = &self.gram[j * k..(j + 1) * k];
                grad.iter_mut().zip(row).for_each(|(g, r)| *g -= delta * r);
                beta[j] = new;
            }
            delta * delta
        };
        for (index, &lambda) in lambdas.iter().enumerate() {
            let mut passes = 0;
            loop {
                // A full pass over every live column, then passes over the active set alone
                // until it settles; done when a full pass changes nothing.
                let mut moved = 0.0f64;
                for j in (0..k).filter(|&j| self.live[j]) {
                    moved = moved.max(update(j, lambda, &mut beta, &mut grad));
                }
                passes += 1;
                if moved <= tol || passes >= MAX_PASSES {
                    break;
                }
                let active: Vec<usize> = (0..k).filter(|&j| beta[j] != 0.0).collect();
                while passes < MAX_PASSES {
                    let mut moved = 0.0f64;
                    for &j in &active {
                        moved = moved.max(update(j, lambda, &mut beta, &mut grad));
                    }
                    passes += 1;
                    if moved <= tol {
                        break;
                    }
                }
            }
            visit(index, &beta);
        }
    }
}

fn soft(x: f64, t: f64) -> f64 {
    if x > t {
        x - t
    } else if x < -t {
        x + t
    } else {
        0.0
    }
}

/// `count` penalties from `max` down to `max * LAMBDA_RATIO`, evenly spaced in log.
fn lambda_path(max: f64, count: usize) -> Vec<f64> {
    match count {
        0 => Vec::new(),
        1 => vec![max],
        _ => (0..count)
            .map(|i| max * LAMBDA_RATIO.powf(i as f64 / (count - 1) as f64))
            .collect(),
    }
}

/// Lasso of `y` (`[m]`, `y[r] = f(masks[r])`) on the Fourier columns of `support`, with an
/// unpenalised intercept always fitted (see [`LassoFit::intercept`]).
///
/// Columns are standardised internally (population sd on the fitting rows; a column constant
/// on those rows, `∅` among them, keeps a zero slope). The path holds `lambdas_count` penalties
/// from `lambda_max` (computed on all rows, shared by every fold) down to
/// `lambda_max * 1e-3`; each of the `folds` contiguous folds of [`fold_ranges`] walks it with
/// warm starts on its training rows and scores every penalty on its held-out rows. The penalty
/// with the smallest mean held-out squared error wins (the largest on ties: the sparser fit),
/// and the path is walked again on all rows down to it.
///
/// Cost: one Gram matrix of all rows (`k^2 m / 128` word operations, kept as `4 k^2` bytes of
/// counts), from which each fold's training Gram is the whole less the fold's own products
/// (`k^2 m / (128 folds)` operations, `8 k^2` bytes, one fold at a time); then a few coordinate
/// passes per penalty, each `O(k)` plus `O(k)` per coefficient that moves.
///
/// Errors: lengths differ, `folds < 2` or more folds than rows, `lambdas_count = 0`; a support
/// above the size caps ([`super::MAX_COLUMNS`], [`super::MAX_CELLS`]) or one whose Gram matrix
/// does not fit in memory.
pub fn lasso_cv(
    masks: &MaskBatch,
    support: &[Subset],
    y: &[f64],
    folds: usize,
    lambdas_count: usize,
) -> Result<LassoFit> {
    check_folds(masks, y, folds)?;
    if lambdas_count == 0 {
        return Err(crate::Error::invalid(
            "lambdas_count",
            "0 penalties: the lasso path needs at least one (glmnet and scikit-learn use 100)",
        ));
    }
    check_size(support.len(), masks.len())?;
    let m = y.len();
    // Shift y by its mean so that the raw sums lose no precision to a large constant.
    let shift = y.iter().sum::<f64>() / m as f64;
    let y: Vec<f64> = y.iter().map(|v| v - shift).collect();
    let all: Vec<usize> = (0..m).collect();
    let sums = Columns::new(masks, support, &all).sums(&y);
    let full = Standardised::new(sums.moments());
    let lambdas = lambda_path(full.lambda_max(), lambdas_count);
    if full.lambda_max() == 0.0 {
        // Constant y (or no varying column): the mean is the fit, whatever the penalty.
        let (coefficients, intercept) = full.unstandardise(&vec![0.0; support.len()]);
        return Ok(finish(
            support,
            coefficients,
            intercept + shift,
            0.0,
            1.0,
            0.0,
        ));
    }
    let ranges = fold_ranges(m, folds);
    let mut scores = FoldScores::new(lambdas.len(), ranges.len());
    for &range in &ranges {
        let (_, valid) = split_rows(m, range);
        let y_valid: Vec<f64> = valid.iter().map(|&r| y[r]).collect();
        let valid_cols = Columns::new(masks, support, &valid);
        let problem = Standardised::new(sums.moments_without(&valid_cols, &y_valid));
        problem.path(&lambdas, |i, beta| {
            let (coef, intercept) = problem.unstandardise(beta);
            scores.add(i, &y_valid, &valid_cols.predict(intercept, &coef));
        });
    }
    let best = scores.best();
    let mut result = None;
    full.path(&lambdas[..=best], |i, beta| {
        if i == best {
            result = Some(full.unstandardise(beta));
        }
    });
    let (coefficients, intercept) =
        result.unwrap_or_else(|| full.unstandardise(&vec![0.0; support.len()]));
    Ok(finish(
        support,
        coefficients,
        intercept + shift,
        lambdas[best],
        scores.r2[best],
        scores.mse[best],
    ))
}

fn finish(
    support: &[Subset],
    mut coefficients: Vec<f64>,
    intercept: f64,
    lambda: f64,
    cv_r2: f64,
    cv_mse: f64,
) -> LassoFit {
    for (s, c) in support.iter().zip(coefficients.iter_mut()) {
        if s.is_empty() {
            *c = intercept;
        }
    }
    LassoFit {
        coefficients,
        intercept,
        lambda,
        cv_r2,
        cv_mse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::low_order_support;
    use crate::synthetic::uniform_masks;
    use crate::{Basis, Spectrum};

    /// A fixed pseudo-random noise in [-0.5, 0.5).
    fn noise(r: usize) -> f64 {
        ((r * 2_654_435_761) % 1_000_003) as f64 / 1_000_003.0 - 0.5
    }

    #[test]
    fn recovers_a_sparse_linear_function() {
        let n = 30;
        let truth = Spectrum::from_terms(
            n,
            Basis::Fourier,
            [
                (Subset::empty(), 0.7),
                (Subset::singleton(2), 1.5),
                (Subset::singleton(11), -1.0),
                (Subset::singleton(27), 0.6),
            ],
        );
        let masks = uniform_masks(n, 400, 7);
        let y: Vec<f64> = truth
            .eval(&masks)
            .iter()
            .enumerate()
            .map(|(r, v)| v + 0.05 * noise(r))
            .collect();
        let support = low_order_support(n, 1);
        let fit = lasso_cv(&masks, &support, &y, 5, 100).unwrap();
        assert!(fit.cv_r2 > 0.99, "{fit:?}");
        for (s, &c) in support.iter().zip(&fit.coefficients) {
            let want = truth.get(s);
            if want != 0.0 {
                assert!((c - want).abs() < 0.03, "{s}: {c} vs {want}");
            } else {
                assert!(c.abs() < 0.01, "{s}: {c} should be (about) zero");
            }
        }
        assert!((fit.intercept - 0.7).abs() < 0.03);
        // The three true players are the three largest coefficients, with the right signs.
        let mut order: Vec<usize> = (1..support.len()).collect();
        order.sort_by(|&a, &b| {
            fit.coefficients[b]
                .abs()
                .total_cmp(&fit.coefficients[a].abs())
        });
        let mut top: Vec<u32> = order[..3]
            .iter()
            .map(|&j| support[j].indices()[0])
            .collect();
        top.sort();
        assert_eq!(top, vec![2, 11, 27]);
    }

    #[test]
    fn constant_values_give_the_mean() {
        let masks = uniform_masks(5, 40, 1);
        let fit = lasso_cv(&masks, &low_order_support(5, 2), &[3.0; 40], 5, 10).unwrap();
        assert_eq!(fit.intercept, 3.0);
        assert_eq!(fit.coefficients[0], 3.0);
        assert!(fit.coefficients[1..].iter().all(|&c| c == 0.0));
    }

    #[test]
    fn path_solution_satisfies_the_lasso_optimality_conditions() {
        let n = 12;
        let masks = uniform_masks(n, 200, 3);
        let support = low_order_support(n, 2);
        let y: Vec<f64> = (0..200)
            .map(|r| {
                f64::from(u8::from(masks.get(r, 0))) * 2.0
                    - f64::from(u8::from(masks.get(r, 1) && masks.get(r, 2)))
                    + noise(r)
            })
            .collect();
        let all: Vec<usize> = (0..200).collect();
        let p = Standardised::new(Columns::new(&masks, &support, &all).moments(&y));
        let lambdas = lambda_path(p.lambda_max(), 30);
        p.path(&lambdas, |i, beta| {
            // KKT: |c_j - (G beta)_j| <= lambda, with equality and matching sign when active.
            for j in (0..p.k).filter(|&j| p.live[j]) {
                let g = p.c[j] - (0..p.k).map(|l| p.gram[j * p.k + l] * beta[l]).sum::<f64>();
                if beta[j] == 0.0 {
                    assert!(g.abs() <= lambdas[i] + 1e-6, "{i} {j}: {g}");
                } else {
                    assert!(
                        (g - lambdas[i] * beta[j].signum()).abs() < 1e-4,
                        "{i} {j}: {g}"
                    );
                }
            }
        });
    }

    #[test]
    fn bad_arguments_are_errors() {
        let masks = uniform_masks(4, 20, 1);
        let support = low_order_support(4, 1);
        assert!(lasso_cv(&masks, &support, &[0.0; 19], 5, 10).is_err());
        assert!(lasso_cv(&masks, &support, &[0.0; 20], 1, 10).is_err());
        assert!(lasso_cv(&masks, &support, &[0.0; 20], 21, 10).is_err());
        let err = lasso_cv(&masks, &support, &[0.0; 20], 5, 0).unwrap_err();
        assert!(err.to_string().contains("lambdas_count"));
    }
}
