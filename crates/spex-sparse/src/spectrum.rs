//! [`Spectrum`]: a sparse set function in the Fourier or Moebius basis.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::distribute::{distribute, Weights};
use super::{MaskBatch, Subset};

/// The basis a spectrum's coefficients are expressed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// Walsh-Hadamard: `f(x) = sum_S F(S) (-1)^{|S ∩ x|}`.
    Fourier,
    /// Moebius (Harsanyi dividends): `f(x) = sum_S a(S) prod_{i in S} x_i`.
    Moebius,
}

/// A sparse function `{0,1}^n -> R`: coefficients on a few subsets, in one [`Basis`].
///
/// Terms are kept in a `BTreeMap` ordered by (size, indices), so iteration and every output
/// built from it are deterministic.
#[derive(Clone, Debug, PartialEq)]
pub struct Spectrum {
    n: usize,
    basis: Basis,
    terms: BTreeMap<Subset, f64>,
}

impl Spectrum {
    /// The zero function over `n` players in `basis`.
    pub fn new(n: usize, basis: Basis) -> Self {
        Spectrum {
            n,
            basis,
            terms: BTreeMap::new(),
        }
    }

    /// Builds a spectrum from `(subset, coefficient)` pairs; repeated subsets are summed.
    pub fn from_terms(
        n: usize,
        basis: Basis,
        terms: impl IntoIterator<Item = (Subset, f64)>,
    ) -> Self {
        let mut s = Self::new(n, basis);
        for (k, v) in terms {
            s.add(k, v);
        }
        s
    }

    /// Number of players.
    pub fn n_players(&self) -> usize {
        self.n
    }

    /// The basis of the coefficients.
    pub fn basis(&self) -> Basis {
        self.basis
    }

    /// Number of stored terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether no term is stored.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The coefficient of `s` (0 when absent).
    pub fn get(&self, s: &Subset) -> f64 {
        self.terms.get(s).copied().unwrap_or(0.0)
    }

    /// Adds `value` to the coefficient of `s`.
    pub fn add(&mut self, s: Subset, value: f64) {
        debug_assert!(
            s.min_players() <= self.n,
            "subset {s} outside n = {}",
            self.n
        );
        *self.terms.entry(s).or_insert(0.0) += value;
    }

    /// Sets the coefficient of `s` to `value`.
    pub fn set(&mut self, s: Subset, value: f64) {
        self.terms.insert(s, value);
    }

    /// The terms in (size, indices) order.
    pub fn iter(&self) -> impl Iterator<Item = (&Subset, f64)> + '_ {
        self.terms.iter().map(|(k, &v)| (k, v))
    }

    /// Drops terms with `|value| <= tol`.
    pub fn prune(&mut self, tol: f64) {
        self.terms.retain(|_, v| v.abs() > tol);
    }

    /// The largest subset size with a stored term (0 for an empty spectrum).
    pub fn max_degree(&self) -> usize {
        self.terms.keys().map(Subset::len).max().unwrap_or(0)
    }

    /// Evaluates the function on every mask of `masks`: returns `[m]` values.
    pub fn eval(&self, masks: &MaskBatch) -> Vec<f64> {
        assert_eq!(masks.n_players(), self.n, "mask width differs from n");
        let terms: Vec<(&Subset, f64)> = self.iter().collect();
        (0..masks.len())
            .into_par_iter()
            .map(|r| match self.basis {
                Basis::Fourier => terms
                    .iter()
                    .map(|(s, v)| if masks.parity(r, s) { -v } else { *v })
                    .sum(),
                Basis::Moebius => terms
                    .iter()
                    .filter(|(s, _)| masks.contains_all(r, s))
                    .map(|(_, v)| v)
                    .sum(),
            })
            .collect()
    }

    /// The same function in the Moebius basis (a clone when already there).
    ///
    /// `a(T) = (-2)^{|T|} sum_{S ⊇ T} F(S)`: each stored term visits its `2^{|S|}` subsets.
    /// Coefficients that cancel to rounding noise are dropped (see [`Spectrum::in_basis`]).
    pub fn to_moebius(&self) -> Spectrum {
        self.in_basis(Basis::Moebius)
    }

    /// The same function in the Fourier basis (a clone when already there).
    ///
    /// `F(S) = (-1)^{|S|} sum_{T ⊇ S} a(T) / 2^{|T|}`: each stored term visits its `2^{|T|}`
    /// subsets. Coefficients that cancel to rounding noise are dropped (see [`Spectrum::in_basis`]).
    pub fn to_fourier(&self) -> Spectrum {
        self.in_basis(Basis::Fourier)
    }

    /// The same function in `basis`; a clone when already there.
    ///
    /// Cost: `sum_S 2^{|S|}` contributions over the stored terms, spread over rayon threads;
    /// the result is bit-identical for any thread count. A converted coefficient is dropped when
    /// `|sum| <= 1e-12 * sum |contributions|`, i.e. when it is zero up to rounding (exact zeros
    /// included); everything else is kept, however small.
    pub fn in_basis(&self, basis: Basis) -> Spectrum {
        if basis == self.basis {
            return self.clone();
        }
        let d = self.max_degree();
        let weights = match basis {
            // Fourier -> Moebius: every subset T of S gets (-2)^{|T|} F(S).
            Basis::Moebius => Weights::new(d, d, |_, s| (-2f64).powi(s as i32)),
            // Moebius -> Fourier: every subset S of T gets (-1)^{|S|} a(T) / 2^{|T|}.
            Basis::Fourier => {
                Weights::new(d, d, |t, s| (-1f64).powi(s as i32) * 0.5f64.powi(t as i32))
            }
        };
        let terms: Vec<(&Subset, f64)> = self.iter().collect();
        Spectrum {
            n: self.n,
            basis,
            terms: distribute(&terms, &weights).into_iter().collect(),
        }
    }

    /// Faithfulness `R^2 = 1 - ||y - f(x)||^2 / ||y - mean(y)||^2` on `masks` with true `values`.
    ///
    /// Returns 1 when the values are constant and reproduced exactly, 0 when constant and not.
    pub fn r2(&self, masks: &MaskBatch, values: &[f64]) -> f64 {
        assert_eq!(masks.len(), values.len(), "one value per mask");
        r2_score(values, &self.eval(masks))
    }
}

/// Mean squared error of `predicted` against `truth` (same length; 0 when empty).
pub fn mean_squared_error(truth: &[f64], predicted: &[f64]) -> f64 {
    assert_eq!(truth.len(), predicted.len());
    truth
        .iter()
        .zip(predicted)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        / truth.len().max(1) as f64
}

/// `R^2 = 1 - SS_res / SS_tot` of `predicted` against `truth` (same length).
pub fn r2_score(truth: &[f64], predicted: &[f64]) -> f64 {
    assert_eq!(truth.len(), predicted.len());
    if truth.is_empty() {
        return f64::NAN;
    }
    let mean = truth.iter().sum::<f64>() / truth.len() as f64;
    let ss_tot: f64 = truth.iter().map(|y| (y - mean).powi(2)).sum();
    let ss_res: f64 = truth
        .iter()
        .zip(predicted)
        .map(|(y, p)| (y - p).powi(2))
        .sum();
    if ss_tot == 0.0 {
        return if ss_res <= 1e-24 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourier_and_moebius_eval_by_hand() {
        // f = 2 - 3 * x0 x1 in Moebius; in Fourier: x0 x1 = (1 - c0 - c1 + c0 c1) / 4 with c = (-1)^x.
        let moebius = Spectrum::from_terms(
            2,
            Basis::Moebius,
            [(Subset::empty(), 2.0), (Subset::from_indices([0, 1]), -3.0)],
        );
        let fourier = Spectrum::from_terms(
            2,
            Basis::Fourier,
            [
                (Subset::empty(), 2.0 - 0.75),
                (Subset::singleton(0), 0.75),
                (Subset::singleton(1), 0.75),
                (Subset::from_indices([0, 1]), -0.75),
            ],
        );
        let mut masks = MaskBatch::new(2);
        for bits in [[false, false], [true, false], [false, true], [true, true]] {
            masks.push_bools(&bits);
        }
        let expect = [2.0, 2.0, 2.0, -1.0];
        for (got, want) in moebius.eval(&masks).iter().zip(expect) {
            assert!((got - want).abs() < 1e-12);
        }
        for (got, want) in fourier.eval(&masks).iter().zip(expect) {
            assert!((got - want).abs() < 1e-12);
        }
        assert!((fourier.r2(&masks, &expect) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn r2_of_mean_predictor_is_zero() {
        let y = [1.0, 2.0, 3.0];
        assert!((r2_score(&y, &[2.0, 2.0, 2.0])).abs() < 1e-12);
    }
}
