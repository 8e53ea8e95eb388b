//! Test-only references: game-theoretic definitions evaluated by brute force over all `2^n`
//! coalitions (n <= ~10), plus random sparse spectra to feed them.
//!
//! A coalition is a bitmask `u32` (bit `i` = player `i` kept); `table[mask]` is `f(mask)`.

// Dense matrix code reads best with explicit row/column indices.
#![allow(clippy::needless_range_loop)]

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Basis, MaskBatch, Spectrum, Subset};

/// Every mask over `n` players, row `r` = the bits of `r`.
pub(crate) fn all_masks(n: usize) -> MaskBatch {
    let mut masks = MaskBatch::with_capacity(n, 1 << n);
    for r in 0..1u32 << n {
        let kept: Vec<bool> = (0..n).map(|i| r >> i & 1 == 1).collect();
        masks.push_bools(&kept);
    }
    masks
}

/// `f(mask)` for every mask, indexed by the mask's bits.
pub(crate) fn table(f: &Spectrum) -> Vec<f64> {
    f.eval(&all_masks(f.n_players()))
}

/// The subset of a bitmask.
pub(crate) fn subset(bits: u32) -> Subset {
    Subset::from_indices((0..32).filter(|i| bits >> i & 1 == 1))
}

/// A random function with `terms` coefficients U[-1, 1] on random sets of size `0..=max_degree`.
pub(crate) fn random_spectrum(
    n: usize,
    basis: Basis,
    terms: usize,
    max_degree: usize,
    seed: u64,
) -> Spectrum {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut f = Spectrum::new(n, basis);
    for _ in 0..terms {
        let size = rng.random_range(0..=max_degree.min(n));
        let mut set = Subset::empty();
        while set.len() < size {
            let i = rng.random_range(0..n as u32);
            if !set.contains(i) {
                set = set.toggle(i);
            }
        }
        f.add(set, rng.random_range(-1.0..1.0));
    }
    f
}

/// Discrete derivative `Δ_S f(T) = sum_{L ⊆ S} (-1)^{|S|-|L|} f(T ∪ L)` (T disjoint from S).
fn derivative(table: &[f64], s: u32, t: u32) -> f64 {
    submasks(s)
        .map(|l| {
            let sign = if (s.count_ones() - l.count_ones()).is_multiple_of(2) {
                1.0
            } else {
                -1.0
            };
            sign * table[(t | l) as usize]
        })
        .sum()
}

/// Every submask of `m`, including 0 and `m`.
fn submasks(m: u32) -> impl Iterator<Item = u32> {
    (0..=m).filter(move |x| x & !m == 0)
}

/// `n!` as f64.
fn factorial(n: usize) -> f64 {
    (1..=n).map(|i| i as f64).product()
}

/// `C(n, k)` as f64.
pub(crate) fn binom(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    factorial(n) / (factorial(k) * factorial(n - k))
}

/// `sum_{T ⊆ N \ S} weight(|T|) * Δ_S f(T)`.
fn weighted_derivatives(table: &[f64], n: usize, s: u32, weight: impl Fn(usize) -> f64) -> f64 {
    let full = (1u32 << n) - 1;
    submasks(full & !s)
        .map(|t| weight(t.count_ones() as usize) * derivative(table, s, t))
        .sum()
}

/// Shapley interaction index of `s` (Grabisch and Roubens 1999).
pub(crate) fn sii(table: &[f64], n: usize, s: u32) -> f64 {
    let k = s.count_ones() as usize;
    weighted_derivatives(table, n, s, |t| {
        factorial(n - t - k) * factorial(t) / factorial(n - k + 1)
    })
}

/// Banzhaf interaction index of `s`.
pub(crate) fn bii(table: &[f64], n: usize, s: u32) -> f64 {
    let k = s.count_ones() as usize;
    weighted_derivatives(table, n, s, |_| 0.5f64.powi((n - k) as i32))
}

/// Moebius coefficient (Harsanyi dividend) of `s`.
pub(crate) fn moebius(table: &[f64], s: u32) -> f64 {
    derivative(table, s, 0)
}

/// Shapley-Taylor interaction index of order `k` (Sundararajan et al. 2020) of `s`, `|s| <= k`.
pub(crate) fn stii(table: &[f64], n: usize, k: usize, s: u32) -> f64 {
    if (s.count_ones() as usize) < k {
        return moebius(table, s);
    }
    k as f64 / n as f64 * weighted_derivatives(table, n, s, |t| 1.0 / binom(n - 1, t))
}

/// All coalitions of size `1..=k` (or `0..=k` with `empty`), in subset order.
pub(crate) fn coalitions_up_to(n: usize, k: usize, empty: bool) -> Vec<u32> {
    let mut v: Vec<u32> = (0..1u32 << n)
        .filter(|m| (m.count_ones() as usize) <= k && (empty || *m != 0))
        .collect();
    v.sort_by_key(|&m| subset(m));
    v
}

/// The degree-`<= k` Moebius polynomial `g` minimising `sum_T mu(T) (f(T) - g(T))^2`, with
/// `g(T) = f(T)` forced on the coalitions in `exact`; returns its coefficients.
pub(crate) fn least_squares_fit(
    table: &[f64],
    n: usize,
    k: usize,
    mu: impl Fn(u32) -> f64,
    exact: &[u32],
) -> BTreeMap<Subset, f64> {
    let basis = coalitions_up_to(n, k, true);
    let (p, q) = (basis.len(), exact.len());
    let x = |t: u32, j: usize| if basis[j] & !t == 0 { 1.0 } else { 0.0 };
    // KKT system [X^T W X, C^T; C, 0] [beta; lambda] = [X^T W y; f(exact)].
    let mut a = vec![vec![0.0; p + q]; p + q];
    let mut b = vec![0.0; p + q];
    for t in 0..1u32 << n {
        let w = if exact.contains(&t) { 0.0 } else { mu(t) };
        for i in 0..p {
            b[i] += w * x(t, i) * table[t as usize];
            for j in 0..p {
                a[i][j] += w * x(t, i) * x(t, j);
            }
        }
    }
    for (r, &t) in exact.iter().enumerate() {
        for j in 0..p {
            a[p + r][j] = x(t, j);
            a[j][p + r] = x(t, j);
        }
        b[p + r] = table[t as usize];
    }
    let beta = solve(a, b);
    basis.iter().map(|&m| subset(m)).zip(beta).collect()
}

/// Solves the dense system `a z = b` by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let m = b.len();
    for c in 0..m {
        let pivot = (c..m)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .expect("non-empty column");
        a.swap(c, pivot);
        b.swap(c, pivot);
        assert!(a[c][c].abs() > 1e-12, "singular system");
        for r in c + 1..m {
            let factor = a[r][c] / a[c][c];
            for j in c..m {
                a[r][j] -= factor * a[c][j];
            }
            b[r] -= factor * b[c];
        }
    }
    let mut z = vec![0.0; m];
    for r in (0..m).rev() {
        let tail: f64 = (r + 1..m).map(|j| a[r][j] * z[j]).sum();
        z[r] = (b[r] - tail) / a[r][r];
    }
    z
}
