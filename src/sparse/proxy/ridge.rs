//! Ridge refit of a Fourier support, the penalty chosen by exact leave-one-out.
//!
//! The design is `Phi[r, j] = (-1)^{|S_j ∩ x_r|}` over the kept subsets (no separate intercept:
//! `∅` is a column). One symmetric eigendecomposition (of `Phi^T Phi`, or of `Phi Phi^T` when
//! there are more terms than samples) gives the fit and the hat-matrix diagonal `h` for every
//! penalty `alpha`, so the leave-one-out residuals `(y - yhat) / (1 - h)` cost `O(m k)` each.

use nalgebra::{DMatrix, DVector, SymmetricEigen};

use crate::sparse::{MaskBatch, Subset};

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
///
/// `alphas` must be non-empty and positive (the caller builds them with [`log_grid`]).
pub fn ridge_loo(masks: &MaskBatch, support: &[Subset], y: &[f64], alphas: &[f64]) -> RidgeFit {
    let phi = fourier_design(masks, support);
    let yv = DVector::from_column_slice(y);
    let (m, k) = phi.shape();
    if k <= m {
        // Phi^T Phi = V L V^T; with Q = Phi V: yhat = Q (L + a)^-1 Q^T y, h_i = sum_j Q_ij^2 / (l_j + a).
        let eig = SymmetricEigen::new(phi.tr_mul(&phi));
        let q = &phi * &eig.eigenvectors;
        let z = q.tr_mul(&yv);
        let lambda: Vec<f64> = eig.eigenvalues.iter().map(|l| l.max(0.0)).collect();
        let alpha = best_alpha(alphas, y, |a, i| {
            let (mut fit, mut h) = (0.0, 0.0);
            for j in 0..k {
                let w = 1.0 / (lambda[j] + a);
                fit += q[(i, j)] * z[j] * w;
                h += q[(i, j)] * q[(i, j)] * w;
            }
            (fit, h)
        });
        let scaled = DVector::from_fn(k, |j, _| z[j] / (lambda[j] + alpha));
        let coef = &eig.eigenvectors * scaled;
        RidgeFit {
            coefficients: coef.iter().copied().collect(),
            alpha,
        }
    } else {
        // Phi Phi^T = U L U^T: yhat = U L (L + a)^-1 U^T y, h_i = sum_j U_ij^2 l_j / (l_j + a).
        let eig = SymmetricEigen::new(&phi * phi.transpose());
        let u = &eig.eigenvectors;
        let z = u.tr_mul(&yv);
        let lambda: Vec<f64> = eig.eigenvalues.iter().map(|l| l.max(0.0)).collect();
        let alpha = best_alpha(alphas, y, |a, i| {
            let (mut fit, mut h) = (0.0, 0.0);
            for j in 0..m {
                let w = lambda[j] / (lambda[j] + a);
                fit += u[(i, j)] * z[j] * w;
                h += u[(i, j)] * u[(i, j)] * w;
            }
            (fit, h)
        });
        let dual = u * DVector::from_fn(m, |j, _| z[j] / (lambda[j] + alpha));
        let coef = phi.tr_mul(&dual);
        RidgeFit {
            coefficients: coef.iter().copied().collect(),
            alpha,
        }
    }
}

/// The penalty with the smallest sum of squared LOO residuals; `fit_h(a, i)` = (yhat_i, h_ii).
fn best_alpha(alphas: &[f64], y: &[f64], fit_h: impl Fn(f64, usize) -> (f64, f64)) -> f64 {
    let mut best = (f64::INFINITY, alphas.first().copied().unwrap_or(1.0));
    for &a in alphas {
        let loo: f64 = y
            .iter()
            .enumerate()
            .map(|(i, yi)| {
                let (fit, h) = fit_h(a, i);
                ((yi - fit) / (1.0 - h)).powi(2)
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
    use crate::sparse::proxy::sampling::distinct_uniform_masks;

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

    fn data(n: usize, m: usize) -> (MaskBatch, Vec<Subset>, Vec<f64>) {
        let masks = distinct_uniform_masks(n, m, 5);
        let support = vec![
            Subset::empty(),
            Subset::singleton(0),
            Subset::from_indices([1, 2]),
            Subset::singleton(3),
        ];
        let truth = [1.0, -2.0, 0.5, 0.0];
        let y: Vec<f64> = (0..m)
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

    #[test]
    fn log_grid_spans_its_ends() {
        let g = log_grid(1e-6, 1e6, 100);
        assert_eq!(g.len(), 100);
        assert!((g[0] - 1e-6).abs() < 1e-18 && (g[99] - 1e6).abs() < 1e-6);
        assert!(g.windows(2).all(|w| w[0] < w[1]));
    }
}
