//! Ridge refit of a Fourier support, the penalty chosen by exact leave-one-out.
//!
//! The design is `Phi[r, j] = (-1)^{|S_j ∩ x_r|}` over the kept subsets (no separate intercept:
//! `∅` is a column). One symmetric eigendecomposition (of `Phi^T Phi`, or of `Phi Phi^T` when
//! there are more terms than samples) gives the fit and the hat-matrix diagonal `h` for every
//! penalty `alpha`, so the leave-one-out residuals `(y - yhat) / (1 - h)` cost `O(m k)` each.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use crate::{MaskBatch, Subset};

/// `count` penalties spaced evenly in log10 from `min` to `max` (both included).
pub fn log_grid(min: f64, max: f64, count: usize) -> Vec<f64> {
    let (lo, hi) = (min.log10(), max.log10());
    match count {
        0 => Vec::new(),
        1 => vec![min],
        _ => (0..count)
            .map(|i| 10f64.powf(lo + (hi - lo) * i as f64 / (count - 1) as f64))
            .collect(),
    }
}

/// A ridge fit: one coefficient per support subset and the penalty that won.
#[derive(Clone, Debug, PartialEq)]
pub struct RidgeFit {
    /// Coefficients `[k]`, in the order of the support.
    pub coefficients: Vec<f64>,
    /// The chosen penalty (smallest mean squared leave-one-out error; first on ties).
    pub alpha: f64,
}

/// The Fourier design `[m, k]` of `support` on `masks`.
pub fn fourier_design(masks: &MaskBatch, support: &[Subset]) -> DMatrix<f64> {
    DMatrix::from_fn(masks.len(), support.len(), |r, j| {
        if masks.parity(r, &support[j]) {
            -1.0
        } else {
            1.0
        }
    })
}

/// Ridge regression of `y` (`[m]`) on the Fourier columns of `support`, penalty by exact LOO.
/// The reference's refit: `∅` is a column like any other, so the constant is penalised too.
///
/// `alphas` must be non-empty and positive (the caller builds them with [`log_grid`]).
pub fn ridge_loo(masks: &MaskBatch, support: &[Subset], y: &[f64], alphas: &[f64]) -> RidgeFit {
    let (coef, alpha) = ridge_core(&fourier_design(masks, support), y, alphas, 0.0);
    RidgeFit {
        coefficients: coef.iter().copied().collect(),
        alpha,
    }
}

/// [`ridge_loo`] with an unpenalised constant: the non-constant columns and `y` are centred, the
/// ridge runs on them, and the `∅` coefficient is whatever makes the fit's mean `y`'s mean
/// (`support` must hold `∅`). Under biased sampling (keep probability far from 1/2) every
/// parity column has a large mean; penalising the constant then pushes it into those columns.
/// The leave-one-out hat diagonal gains the intercept's `1/m`.
pub fn ridge_loo_centred(
    masks: &MaskBatch,
    support: &[Subset],
    y: &[f64],
    alphas: &[f64],
) -> RidgeFit {
    let rest: Vec<Subset> = support.iter().filter(|s| !s.is_empty()).cloned().collect();
    let mut phi = fourier_design(masks, &rest);
    let m = y.len().max(1) as f64;
    let means: Vec<f64> = phi.column_iter().map(|c| c.sum() / m).collect();
    for (mut col, mean) in phi.column_iter_mut().zip(&means) {
        col.add_scalar_mut(-mean);
    }
    let y_mean = y.iter().sum::<f64>() / m;
    let centred: Vec<f64> = y.iter().map(|v| v - y_mean).collect();
    let (coef, alpha) = ridge_core(&phi, &centred, alphas, 1.0 / m);
    let constant = y_mean - coef.iter().zip(&means).map(|(c, mu)| c * mu).sum::<f64>();
    let mut rest_coef = coef.iter();
    let coefficients = support
        .iter()
        .map(|s| match s.is_empty() {
            true => constant,
            false => rest_coef.next().copied().unwrap_or(0.0),
        })
        .collect();
    RidgeFit {
        coefficients,
        alpha,
    }
}

/// Ridge of `y` on the columns of `phi` (`[m, k]`) for the penalty in `alphas` with the smallest
/// leave-one-out error, where `h0` is added to every hat diagonal (an intercept fitted outside):
/// the coefficients `[k]` and the penalty.
fn ridge_core(phi: &DMatrix<f64>, y: &[f64], alphas: &[f64], h0: f64) -> (DVector<f64>, f64) {
    let yv = DVector::from_column_slice(y);
    let (m, k) = phi.shape();
    if k <= m {
        // Phi^T Phi = V L V^T; with Q = Phi V: yhat = Q (L + a)^-1 Q^T y, h_i = sum_j Q_ij^2 / (l_j + a).
        let eig = SymmetricEigen::new(phi.tr_mul(phi));
        let q = phi * &eig.eigenvectors;
        let z = q.tr_mul(&yv);
        let lambda: Vec<f64> = eig.eigenvalues.iter().map(|l| l.max(0.0)).collect();
        let alpha = best_alpha(alphas, y, h0, |a, i| {
            let (mut fit, mut h) = (0.0, 0.0);
            for j in 0..k {
                let w = 1.0 / (lambda[j] + a);
                fit += q[(i, j)] * z[j] * w;
                h += q[(i, j)] * q[(i, j)] * w;
            }
            (fit, h)
        });
        let scaled = DVector::from_fn(k, |j, _| z[j] / (lambda[j] + alpha));
        (&eig.eigenvectors * scaled, alpha)
    } else {
        // Phi Phi^T = U L U^T: yhat = U L (L + a)^-1 U^T y, h_i = sum_j U_ij^2 l_j / (l_j + a).
        let eig = SymmetricEigen::new(phi * phi.transpose());
        let u = &eig.eigenvectors;
        let z = u.tr_mul(&yv);
        let lambda: Vec<f64> = eig.eigenvalues.iter().map(|l| l.max(0.0)).collect();
        let alpha = best_alpha(alphas, y, h0, |a, i| {
            let (mut fit, mut h) = (0.0, 0.0);
            for j in 0..m {
                let w = lambda[j] / (lambda[j] + a);
                fit += u[(i, j)] * z[j] * w;
                h += u[(i, j)] * u[(i, j)] * w;
            }
            (fit, h)
        });
        let dual = u * DVector::from_fn(m, |j, _| z[j] / (lambda[j] + alpha));
        (phi.tr_mul(&dual), alpha)
    }
}

/// The penalty with the smallest sum of squared LOO residuals; `fit_h(a, i)` = (yhat_i, h_ii),
/// `h0` added to every `h_ii`.
fn best_alpha(alphas: &[f64], y: &[f64], h0: f64, fit_h: impl Fn(f64, usize) -> (f64, f64)) -> f64 {
    let mut best = (f64::INFINITY, alphas.first().copied().unwrap_or(1.0));
    for &a in alphas {
        let loo: f64 = y
            .iter()
            .enumerate()
            .map(|(i, yi)| {
                let (fit, h) = fit_h(a, i);
                ((yi - fit) / (1.0 - h0 - h)).powi(2)
            })
            .sum();
        if loo.is_finite() && loo < best.0 {
            best = (loo, a);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::sampling::distinct_uniform_masks;

    /// Brute-force LOO error for one alpha: refit without each row (normal equations).
    fn brute_loo(phi: &DMatrix<f64>, y: &[f64], a: f64) -> f64 {
        let (m, k) = phi.shape();
        (0..m)
            .map(|i| {
                let rows: Vec<usize> = (0..m).filter(|&r| r != i).collect();
                let p = phi.select_rows(&rows);
                let yv = DVector::from_iterator(m - 1, rows.iter().map(|&r| y[r]));
                let g = p.tr_mul(&p) + DMatrix::identity(k, k) * a;
                let c = g.lu().solve(&p.tr_mul(&yv)).expect("invertible");
                (y[i] - (phi.row(i) * c)[0]).powi(2)
            })
            .sum()
    }

    /// `1 - 2 chi_{0} + 0.5 chi_{1,2}` plus a fixed saw-tooth noise, on `masks`; its support.
    fn noisy_values(masks: &MaskBatch) -> (Vec<Subset>, Vec<f64>) {
        let support = vec![
            Subset::empty(),
            Subset::singleton(0),
            Subset::from_indices([1, 2]),
            Subset::singleton(3),
        ];
        let truth = [1.0, -2.0, 0.5, 0.0];
        let y: Vec<f64> = (0..masks.len())
            .map(|r| {
                let noise = ((r * 7919) % 13) as f64 / 13.0 - 0.5;
                support
                    .iter()
                    .zip(truth)
                    .map(|(s, c)| if masks.parity(r, s) { -c } else { c })
                    .sum::<f64>()
                    + 0.3 * noise
            })
            .collect();
        (support, y)
    }

    fn data(n: usize, m: usize) -> (MaskBatch, Vec<Subset>, Vec<f64>) {
        let masks = distinct_uniform_masks(n, m, 5);
        let (support, y) = noisy_values(&masks);
        (masks, support, y)
    }

    #[test]
    fn chosen_alpha_minimises_brute_force_loo() {
        let (masks, support, y) = data(6, 40);
        let alphas = log_grid(1e-3, 1e3, 13);
        let fit = ridge_loo(&masks, &support, &y, &alphas);
        let phi = fourier_design(&masks, &support);
        let errs: Vec<f64> = alphas.iter().map(|&a| brute_loo(&phi, &y, a)).collect();
        let best = errs.iter().cloned().fold(f64::INFINITY, f64::min);
        let chosen = errs[alphas.iter().position(|&a| a == fit.alpha).unwrap()];
        assert!((chosen - best).abs() <= 1e-9 * best, "{chosen} vs {best}");
        // The coefficients are the ridge solution at that alpha.
        let g = phi.tr_mul(&phi) + DMatrix::identity(4, 4) * fit.alpha;
        let c = g
            .lu()
            .solve(&phi.tr_mul(&DVector::from_column_slice(&y)))
            .unwrap();
        for (a, b) in fit.coefficients.iter().zip(c.iter()) {
            assert!((a - b).abs() < 1e-9);
        }
    }

    #[test]
    fn more_terms_than_samples_uses_the_dual_and_agrees_with_normal_equations() {
        let masks = distinct_uniform_masks(8, 6, 9);
        let support: Vec<Subset> = (0..8u32).map(Subset::singleton).collect();
        let y = [1.0, 2.0, -1.0, 0.5, 3.0, 0.0];
        let fit = ridge_loo(&masks, &support, &y, &[0.1, 1.0, 10.0]);
        let phi = fourier_design(&masks, &support);
        let g = phi.tr_mul(&phi) + DMatrix::identity(8, 8) * fit.alpha;
        let c = g
            .lu()
            .solve(&phi.tr_mul(&DVector::from_column_slice(&y)))
            .unwrap();
        for (a, b) in fit.coefficients.iter().zip(c.iter()) {
            assert!((a - b).abs() < 1e-8, "{a} vs {b}");
        }
    }

    /// Ridge with an unpenalised intercept by its augmented normal equations: `[1 X]` against
    /// `diag(0, a, .., a)`; `x` holds the non-constant columns. Returns `(intercept, coefficients)`.
    fn intercept_ridge(x: &DMatrix<f64>, y: &[f64], a: f64) -> (f64, Vec<f64>) {
        let (m, k) = x.shape();
        let design = DMatrix::from_fn(m, k + 1, |r, j| if j == 0 { 1.0 } else { x[(r, j - 1)] });
        let mut penalty = DMatrix::identity(k + 1, k + 1) * a;
        penalty[(0, 0)] = 0.0;
        let g = design.tr_mul(&design) + penalty;
        let c = g
            .lu()
            .solve(&design.tr_mul(&DVector::from_column_slice(y)))
            .expect("invertible");
        (c[0], c.iter().skip(1).copied().collect())
    }

    #[test]
    fn centred_refit_is_the_unpenalised_intercept_ridge_with_exact_loo() {
        // Biased masks (keep 0.85), where every parity column has a large mean.
        let masks = crate::proxy::sampling::bernoulli_masks(6, 50, 0.85, 3);
        let (support, y) = noisy_values(&masks);
        let alphas = log_grid(1e-3, 1e3, 13);
        let fit = ridge_loo_centred(&masks, &support, &y, &alphas);
        let x = fourier_design(&masks, &support[1..]);
        let m = y.len();
        let brute = |a: f64| -> f64 {
            (0..m)
                .map(|i| {
                    let rows: Vec<usize> = (0..m).filter(|&r| r != i).collect();
                    let yr: Vec<f64> = rows.iter().map(|&r| y[r]).collect();
                    let (b0, c) = intercept_ridge(&x.select_rows(&rows), &yr, a);
                    let pred = b0 + (0..c.len()).map(|j| c[j] * x[(i, j)]).sum::<f64>();
                    (y[i] - pred).powi(2)
                })
                .sum()
        };
        let errs: Vec<f64> = alphas.iter().map(|&a| brute(a)).collect();
        let best = errs.iter().cloned().fold(f64::INFINITY, f64::min);
        let chosen = errs[alphas.iter().position(|&a| a == fit.alpha).unwrap()];
        assert!((chosen - best).abs() <= 1e-9 * best, "{chosen} vs {best}");
        let (b0, c) = intercept_ridge(&x, &y, fit.alpha);
        assert!((fit.coefficients[0] - b0).abs() < 1e-9, "intercept");
        for (a, b) in fit.coefficients[1..].iter().zip(&c) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }

    #[test]
    fn log_grid_spans_its_ends() {
        let g = log_grid(1e-6, 1e6, 100);
        assert_eq!(g.len(), 100);
        assert!((g[0] - 1e-6).abs() < 1e-18 && (g[99] - 1e6).abs() < 1e-6);
        assert!(g.windows(2).all(|w| w[0] < w[1]));
    }
}
