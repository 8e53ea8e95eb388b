//! The ProxySPEX design: distinct uniform random masks (or i.i.d. Bernoulli masks with another
//! keep probability), the all-removed and all-kept masks first.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::MaskBatch;

/// Players up to which a budget above half the cube is drawn by shuffling the whole cube.
const ENUMERATE_MAX_N: usize = 20;

/// `min(budget, 2^n)` distinct masks over `n >= 1` players, uniform over the cube, seeded.
///
/// Row 0 removes every player, row 1 keeps every player (when `budget >= 2`); the rest are
/// distinct uniform draws in draw order. Same `(n, budget, seed)` -> same masks.
pub fn distinct_uniform_masks(n: usize, budget: usize, seed: u64) -> MaskBatch {
    let budget = budget.min(cube_size(n));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut masks = MaskBatch::with_capacity(n, budget);
    if n <= ENUMERATE_MAX_N && 2 * budget > cube_size(n) {
        // Rejection would stall near the full cube: shuffle all 2^n masks, ∅ and [n] first.
        let full = (1u64 << n) - 1;
        let mut rest: Vec<u64> = (1..full).collect();
        rest.shuffle(&mut rng);
        for w in [0, full].into_iter().chain(rest).take(budget) {
            masks.push_words(&[w]);
        }
        return masks;
    }
    let words = masks.words_per_row();
    let last_bits = n - 64 * (words - 1);
    let last_mask = if last_bits == 64 {
        u64::MAX
    } else {
        (1u64 << last_bits) - 1
    };
    let mut full = vec![u64::MAX; words];
    full[words - 1] = last_mask;
    let mut seen: HashSet<Vec<u64>> = HashSet::with_capacity(budget);
    for row in [vec![0u64; words], full] {
        if masks.len() < budget && seen.insert(row.clone()) {
            masks.push_words(&row);
        }
    }
    while masks.len() < budget {
        let mut row: Vec<u64> = (0..words).map(|_| rng.random::<u64>()).collect();
        row[words - 1] &= last_mask;
        if seen.insert(row.clone()) {
            masks.push_words(&row);
        }
    }
    masks
}

/// `budget` masks over `n >= 1` players, each player kept with probability `keep`, seeded: row 0
/// removes every player, row 1 keeps every player (when `budget >= 2`), the rest are i.i.d.
/// draws (repeats possible, as in i.i.d. sampling).
pub fn bernoulli_masks(n: usize, budget: usize, keep: f64, seed: u64) -> MaskBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut masks = MaskBatch::with_capacity(n, budget);
    let rows = [vec![false; n], vec![true; n]];
    for row in rows.iter().take(budget) {
        masks.push_bools(row);
    }
    let rest = budget.saturating_sub(masks.len());
    push_iid(&mut masks, rest, keep, &mut rng);
    masks
}

/// `count` i.i.d. masks over `n` players, each player kept with probability `keep`, seeded: unseen
/// masks from a design's distribution (no fixed rows), for checking a decoded spectrum.
pub fn iid_masks(n: usize, count: usize, keep: f64, seed: u64) -> MaskBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut masks = MaskBatch::with_capacity(n, count);
    push_iid(&mut masks, count, keep, &mut rng);
    masks
}

/// Appends `count` i.i.d. Bernoulli(`keep`) rows drawn from `rng`, player by player.
fn push_iid(masks: &mut MaskBatch, count: usize, keep: f64, rng: &mut ChaCha8Rng) {
    let mut row = vec![false; masks.n_players()];
    for _ in 0..count {
        for bit in row.iter_mut() {
            *bit = rng.random::<f64>() < keep;
        }
        masks.push_bools(&row);
    }
}

/// `2^n`, saturated at `usize::MAX`.
pub fn cube_size(n: usize) -> usize {
    if n >= usize::BITS as usize {
        usize::MAX
    } else {
        1usize << n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(m: &MaskBatch) -> Vec<Vec<u64>> {
        (0..m.len()).map(|r| m.row_words(r).to_vec()).collect()
    }

    #[test]
    fn distinct_seeded_and_corners_first() {
        for n in [3, 10, 64, 70, 130] {
            let m = distinct_uniform_masks(n, 300.min(cube_size(n)), 7);
            assert_eq!(m.len(), 300.min(cube_size(n)));
            assert_eq!(m.count_kept(0), 0);
            assert_eq!(m.count_kept(1), n);
            let set: HashSet<Vec<u64>> = rows(&m).into_iter().collect();
            assert_eq!(set.len(), m.len(), "rows must be distinct (n = {n})");
            assert_eq!(rows(&m), rows(&distinct_uniform_masks(n, m.len(), 7)));
            assert_ne!(rows(&m), rows(&distinct_uniform_masks(n, m.len(), 8)));
        }
    }

    #[test]
    fn bernoulli_masks_keep_the_asked_share_seeded_and_corners_first() {
        let (n, m) = (200, 500);
        let b = bernoulli_masks(n, m, 0.9, 3);
        assert_eq!(b.len(), m);
        assert_eq!((b.count_kept(0), b.count_kept(1)), (0, n));
        let kept: usize = (2..m).map(|r| b.count_kept(r)).sum();
        let share = kept as f64 / ((m - 2) * n) as f64;
        // 99,600 draws of p = 0.9: standard deviation 0.001.
        assert!((share - 0.9).abs() < 0.005, "{share}");
        assert_eq!(rows(&b), rows(&bernoulli_masks(n, m, 0.9, 3)));
        assert_ne!(rows(&b), rows(&bernoulli_masks(n, m, 0.9, 4)));
        assert_eq!(bernoulli_masks(5, 1, 0.9, 3).len(), 1);
    }

    #[test]
    fn budget_above_the_cube_is_clamped() {
        let m = distinct_uniform_masks(4, 100, 1);
        assert_eq!(m.len(), 16);
        let set: HashSet<Vec<u64>> = rows(&m).into_iter().collect();
        assert_eq!(set.len(), 16);
    }

    #[test]
    fn bits_are_balanced() {
        let n = 200;
        let m = distinct_uniform_masks(n, 2000, 3);
        let kept: usize = (0..m.len()).map(|r| m.count_kept(r)).sum();
        let frac = kept as f64 / (n * m.len()) as f64;
        assert!((frac - 0.5).abs() < 0.01, "fraction kept {frac}");
    }
}
