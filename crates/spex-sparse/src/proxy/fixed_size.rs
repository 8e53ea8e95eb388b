//! Masks that keep exactly `k` players, uniform over such subsets: the draws of a Best-of-N
//! pruning baseline at a fixed budget of kept players.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::MaskBatch;

/// `count` masks over `n` players, each keeping exactly `k` of them, uniform over the `C(n, k)`
/// such subsets and independent; seeded (same `(n, k, count, seed)` -> same masks).
///
/// Each row is a partial Fisher–Yates shuffle (`k` swaps) of a running permutation of the
/// players, drawn from a `ChaCha8Rng`. Panics when `k > n`.
pub fn fixed_size_masks(n: usize, k: usize, count: usize, seed: u64) -> MaskBatch {
    assert!(k <= n, "cannot keep {k} players out of {n}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut masks = MaskBatch::with_capacity(n, count);
    // Any starting order works: the first k after k swaps are a uniform k-subset.
    let mut order: Vec<usize> = (0..n).collect();
    let mut row = vec![false; n];
    for _ in 0..count {
        for i in 0..k {
            let j = rng.random_range(i..n);
            order.swap(i, j);
        }
        row.iter_mut().for_each(|b| *b = false);
        for &i in &order[..k] {
            row[i] = true;
        }
        masks.push_bools(&row);
    }
    masks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_keeps_exactly_k() {
        for (n, k) in [(1, 0), (1, 1), (10, 3), (70, 35), (130, 129), (27, 27)] {
            let m = fixed_size_masks(n, k, 50, 4);
            assert_eq!((m.len(), m.n_players()), (50, n));
            assert!(
                (0..m.len()).all(|r| m.count_kept(r) == k),
                "n = {n}, k = {k}"
            );
        }
        assert!(fixed_size_masks(5, 2, 0, 1).is_empty());
    }

    #[test]
    fn seeded() {
        let a = fixed_size_masks(96, 40, 200, 7);
        assert_eq!(a.to_u8(), fixed_size_masks(96, 40, 200, 7).to_u8());
        assert_ne!(a.to_u8(), fixed_size_masks(96, 40, 200, 8).to_u8());
    }

    #[test]
    fn players_are_kept_about_k_over_n_of_the_time() {
        let (n, k, rows) = (30, 9, 20_000);
        let m = fixed_size_masks(n, k, rows, 3);
        let p = k as f64 / n as f64;
        // Binomial(20000, 0.3) per player: standard deviation of the share about 0.0032.
        for i in 0..n {
            let share = (0..rows).filter(|&r| m.get(r, i)).count() as f64 / rows as f64;
            assert!((share - p).abs() < 0.02, "player {i}: {share}");
        }
        // Pairs too: both kept with probability k (k - 1) / (n (n - 1)).
        let both = (0..rows)
            .filter(|&r| m.get(r, 0) && m.get(r, n - 1))
            .count() as f64;
        let want = (k * (k - 1)) as f64 / (n * (n - 1)) as f64;
        assert!((both / rows as f64 - want).abs() < 0.01, "{both}");
    }
}
