//! [`Baseline`]: the honest linear baselines a decoder is measured against, every penalty tuned
//! on the same contiguous folds of the samples.

use super::lasso::lasso_cv;
use super::ridge_cv::{least_squares, ridge_alphas, ridge_cv};
use super::support::{low_order_support, LAMBDAS};
use crate::{Basis, MaskBatch, Result, Spectrum, Subset};

/// A regression in the Fourier basis over a fixed low-order support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Baseline {
    /// Least squares on `∅` + singles (first order), no penalty to tune.
    Linear,
    /// [`lasso_cv`] on `∅` + singles.
    LassoLinear,
    /// [`lasso_cv`] on `∅` + singles + pairs.
    LassoPairs,
    /// [`ridge_cv`] on `∅` + singles + pairs, the penalty chosen by K-fold cross-validation on
    /// the same folds as the lasso (not by leave-one-out).
    RidgePairs,
}

impl Baseline {
    /// Every baseline, in declaration order.
    pub const ALL: [Baseline; 4] = [
        Baseline::Linear,
        Baseline::LassoLinear,
        Baseline::LassoPairs,
        Baseline::RidgePairs,
    ];

    /// The name tables and reports use: `linear`, `lasso-linear`, `lasso-pairs`, `ridge-pairs`.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::Linear => "linear",
            Baseline::LassoLinear => "lasso-linear",
            Baseline::LassoPairs => "lasso-pairs",
            Baseline::RidgePairs => "ridge-pairs",
        }
    }

    /// The interaction order of the support: 1 or 2.
    pub fn order(self) -> usize {
        match self {
            Baseline::Linear | Baseline::LassoLinear => 1,
            Baseline::LassoPairs | Baseline::RidgePairs => 2,
        }
    }

    /// Fits `y[r] = f(masks[r])` over the baseline's support; penalties are chosen on the
    /// `folds` contiguous folds of [`crate::proxy::cv::fold_ranges`]. The intercept goes to `∅`.
    ///
    /// Errors: those of [`lasso_cv`] / [`ridge_cv`], among them a support over the size caps
    /// ([`super::MAX_COLUMNS`], [`super::MAX_CELLS`]).
    pub fn fit(self, masks: &MaskBatch, y: &[f64], folds: usize) -> Result<Spectrum> {
        let n = masks.n_players();
        let support = low_order_support(n, self.order());
        let coefficients = match self {
            Baseline::Linear => least_squares(masks, &support, y)?.coefficients,
            Baseline::LassoLinear | Baseline::LassoPairs => {
                lasso_cv(masks, &support, y, folds, LAMBDAS)?.coefficients
            }
            Baseline::RidgePairs => {
                ridge_cv(masks, &support, y, folds, &ridge_alphas())?.coefficients
            }
        };
        Ok(to_spectrum(n, support, coefficients))
    }
}

/// A Fourier spectrum from one coefficient per support subset (zeros dropped, `∅` kept).
pub(crate) fn to_spectrum(n: usize, support: Vec<Subset>, coefficients: Vec<f64>) -> Spectrum {
    Spectrum::from_terms(
        n,
        Basis::Fourier,
        support
            .into_iter()
            .zip(coefficients)
            .filter(|(s, c)| s.is_empty() || *c != 0.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::uniform_masks;

    #[test]
    fn pairs_recover_an_interaction_that_linear_misses() {
        let n = 15;
        let truth = Spectrum::from_terms(
            n,
            Basis::Fourier,
            [
                (Subset::empty(), 1.0),
                (Subset::singleton(0), 1.0),
                (Subset::singleton(4), -0.5),
                (Subset::from_indices([2, 9]), 0.8),
            ],
        );
        let masks = uniform_masks(n, 300, 11);
        let y: Vec<f64> = truth
            .eval(&masks)
            .iter()
            .enumerate()
            .map(|(r, v)| v + 0.02 * (((r * 7919) % 101) as f64 / 101.0 - 0.5))
            .collect();
        let fresh = uniform_masks(n, 2000, 12);
        let want = truth.eval(&fresh);
        let mut r2 = Vec::new();
        for b in Baseline::ALL {
            let s = b.fit(&masks, &y, 5).unwrap();
            r2.push(s.r2(&fresh, &want));
            if b.order() == 2 {
                let pair = s.get(&Subset::from_indices([2, 9]));
                assert!((pair - 0.8).abs() < 0.05, "{}: {pair}", b.name());
                assert!((s.get(&Subset::singleton(0)) - 1.0).abs() < 0.05);
            }
        }
        // Linear: 1 - 0.64 / 1.89 of the variance at best.
        assert!(r2[0] < 0.7 && r2[1] < 0.7, "{r2:?}");
        assert!(r2[2] > 0.99 && r2[3] > 0.99, "{r2:?}");
    }

    #[test]
    fn oversized_supports_are_refused_by_name() {
        let masks = uniform_masks(400, 1000, 1);
        let err = Baseline::LassoPairs
            .fit(&masks, &[0.0; 1000], 5)
            .unwrap_err();
        assert!(err.to_string().contains("support"), "{err}");
    }

    #[test]
    fn fits_are_deterministic() {
        let masks = uniform_masks(12, 200, 5);
        let y: Vec<f64> = (0..200).map(|r| ((r * 31) % 17) as f64).collect();
        for b in Baseline::ALL {
            assert_eq!(b.fit(&masks, &y, 5).unwrap(), b.fit(&masks, &y, 5).unwrap());
        }
    }
}
