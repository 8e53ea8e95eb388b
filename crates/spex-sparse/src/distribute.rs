//! Spreads each coefficient of a sparse set function onto the subsets of its set, with weights
//! that depend only on the two sizes: the one engine behind the Fourier/Moebius conversions and
//! every interaction index.
//!
//! A term `(T, c)` sends `c * w[|T|][|S|]` to every `S ⊆ T` whose weight is non-zero. Sums are
//! formed in a fixed order (terms in input order, then a stable sort by subset), so the result is
//! bit-identical whatever the number of rayon threads.

use rayon::prelude::*;

use super::Subset;

/// Relative size below which an accumulated coefficient counts as cancellation noise.
///
/// A sum of `m` floating-point contributions is exact up to about `m * 2^-53 * Σ|c|`; with at
/// most a few hundred contributions per subset that is below `1e-13 * Σ|c|`. A coefficient with
/// `|Σ c| <= CANCELLATION_RTOL * Σ|c|` is therefore indistinguishable from an exact zero and is
/// dropped (exact zeros included).
pub(crate) const CANCELLATION_RTOL: f64 = 1e-12;

/// The share `w[t][s]` of a coefficient on a set of size `t` that goes to each of its subsets of
/// size `s`; a zero weight skips those subsets entirely.
pub(crate) struct Weights {
    rows: Vec<Vec<f64>>,
}

impl Weights {
    /// Tabulates `w(t, s)` for `t <= max_t` and `s <= min(t, max_s)`; larger `s` get weight 0.
    pub(crate) fn new(max_t: usize, max_s: usize, w: impl Fn(usize, usize) -> f64) -> Self {
        let rows = (0..=max_t)
            .map(|t| (0..=t.min(max_s)).map(|s| w(t, s)).collect())
            .collect();
        Weights { rows }
    }

    /// The weight for a set of size `t` and a subset of size `s` (0 outside the table).
    fn get(&self, t: usize, s: usize) -> f64 {
        self.rows
            .get(t)
            .and_then(|row| row.get(s))
            .copied()
            .unwrap_or(0.0)
    }

    /// The subset sizes with a non-zero weight for a set of size `t`.
    fn sizes(&self, t: usize) -> impl Iterator<Item = usize> + '_ {
        (0..=t).filter(move |&s| self.get(t, s) != 0.0)
    }
}

/// Spreads every term over its subsets with `weights`; returns the sums sorted by subset, with
/// cancellation noise (see [`CANCELLATION_RTOL`]) removed.
pub(crate) fn distribute(terms: &[(&Subset, f64)], weights: &Weights) -> Vec<(Subset, f64)> {
    let mut parts: Vec<(Subset, f64)> = terms
        .par_iter()
        .flat_map_iter(|&(set, c)| {
            let t = set.len();
            weights
                .sizes(t)
                .flat_map(move |s| {
                    let share = c * weights.get(t, s);
                    Combinations::new(set.indices(), s).map(move |sub| (sub, share))
                })
                .filter(|(_, share)| *share != 0.0)
        })
        .collect();
    parts.par_sort_by(|a, b| a.0.cmp(&b.0));

    let mut out: Vec<(Subset, f64)> = Vec::new();
    let mut parts = parts.into_iter().peekable();
    while let Some((key, first)) = parts.next() {
        let (mut sum, mut mass) = (first, first.abs());
        while let Some((_, c)) = parts.next_if(|(k, _)| *k == key) {
            sum += c;
            mass += c.abs();
        }
        if sum.abs() > CANCELLATION_RTOL * mass {
            out.push((key, sum));
        }
    }
    out
}

/// The subsets of size `k` of a sorted index list, in lexicographic order of positions.
struct Combinations<'a> {
    items: &'a [u32],
    positions: Vec<usize>,
    done: bool,
}

impl<'a> Combinations<'a> {
    /// All `k`-subsets of `items` (none when `k > items.len()`).
    fn new(items: &'a [u32], k: usize) -> Self {
        Combinations {
            items,
            positions: (0..k).collect(),
            done: k > items.len(),
        }
    }
}

impl Iterator for Combinations<'_> {
    type Item = Subset;

    fn next(&mut self) -> Option<Subset> {
        if self.done {
            return None;
        }
        let current = Subset::from_sorted(self.positions.iter().map(|&p| self.items[p]).collect());
        // Advance: the rightmost position that can still move right does, the rest follow it.
        let (n, k) = (self.items.len(), self.positions.len());
        match (0..k).rev().find(|&j| self.positions[j] < n - k + j) {
            Some(j) => {
                self.positions[j] += 1;
                for i in j + 1..k {
                    self.positions[i] = self.positions[i - 1] + 1;
                }
            }
            None => self.done = true,
        }
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combinations_enumerate_every_k_subset_once() {
        let items = [2u32, 5, 7, 9, 11];
        for k in 0..=6 {
            let got: Vec<Subset> = Combinations::new(&items, k).collect();
            let want: Vec<Subset> = Subset::from_sorted(items.to_vec())
                .subsets()
                .filter(|s| s.len() == k)
                .collect();
            let (mut g, mut w) = (got.clone(), want);
            g.sort();
            w.sort();
            assert_eq!(g, w, "k = {k}");
            g.dedup();
            assert_eq!(g.len(), got.len(), "duplicates for k = {k}");
        }
    }

    #[test]
    fn sums_shares_and_drops_cancellations() {
        // {0,1} -> 1 on every subset; {0} -> -1 on every subset: {0} and {} cancel exactly.
        let a = Subset::from_indices([0, 1]);
        let b = Subset::singleton(0);
        let ones = Weights::new(2, 2, |_, _| 1.0);
        let out = distribute(&[(&a, 1.0), (&b, -1.0)], &ones);
        assert_eq!(out, vec![(Subset::singleton(1), 1.0), (a.clone(), 1.0)]);
    }

    #[test]
    fn zero_weights_skip_sizes() {
        let a = Subset::from_indices([0, 1, 2]);
        let only_pairs = Weights::new(3, 3, |_, s| if s == 2 { 0.5 } else { 0.0 });
        let out = distribute(&[(&a, 2.0)], &only_pairs);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|(s, v)| s.len() == 2 && *v == 1.0));
    }
}
