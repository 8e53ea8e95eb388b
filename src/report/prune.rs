//! Pruning orders from a decoded spectrum: which players (heads) to remove first so that the
//! surrogate `f^` stays as high as possible, with and without its interactions.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::sparse::{MaskBatch, Spectrum};

/// How a pruning order is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Greedy on the whole surrogate: each step removes the player whose removal, given the ones
    /// already removed, leaves `f^` highest. Interactions between removed players count.
    Greedy,
    /// One at a time: players ranked by `f^(all) - f^(all without i)`, smallest first; blind to
    /// interactions (what single-head ablation studies do).
    Single,
    /// A seeded random order: the floor every other strategy should beat.
    Random,
}

impl Strategy {
    /// Every strategy, in report order.
    pub const ALL: [Strategy; 3] = [Strategy::Greedy, Strategy::Single, Strategy::Random];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Greedy => "greedy",
            Strategy::Single => "single",
            Strategy::Random => "random",
        }
    }
}

/// The first `count` players to remove under `strategy` (`seed` drives [`Strategy::Random`]).
pub fn removal_order(
    spectrum: &Spectrum,
    strategy: Strategy,
    count: usize,
    seed: u64,
) -> Vec<usize> {
    let n = spectrum.n_players();
    let count = count.min(n);
    match strategy {
        Strategy::Greedy => greedy(spectrum, count),
        Strategy::Single => {
            let drops = spectrum.eval(&leave_one_out(n, &vec![true; n]));
            let mut order: Vec<usize> = (0..n).collect();
            // Highest f^ after removing i = least harm; ties by index.
            order.sort_by(|&a, &b| drops[b].total_cmp(&drops[a]).then(a.cmp(&b)));
            order.truncate(count);
            order
        }
        Strategy::Random => {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
            order.truncate(count);
            order
        }
    }
}

/// A mask (true = kept) over `n` players with `removed` removed.
pub fn kept_mask(n: usize, removed: &[usize]) -> Vec<bool> {
    let mut kept = vec![true; n];
    for &i in removed {
        kept[i] = false;
    }
    kept
}

/// Greedy removal on the surrogate, `count` steps.
fn greedy(spectrum: &Spectrum, count: usize) -> Vec<usize> {
    let n = spectrum.n_players();
    let mut kept = vec![true; n];
    let mut order = Vec::with_capacity(count);
    for _ in 0..count {
        let candidates: Vec<usize> = (0..n).filter(|&i| kept[i]).collect();
        let scores = spectrum.eval(&leave_one_out(n, &kept));
        // `scores` has one row per kept player, in index order; first best wins ties.
        let best = (0..candidates.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))
            .map(|k| candidates[k]);
        let Some(i) = best else { break };
        kept[i] = false;
        order.push(i);
    }
    order
}

/// One row per kept player of `kept`: `kept` with that player removed too.
fn leave_one_out(n: usize, kept: &[bool]) -> MaskBatch {
    let mut batch = MaskBatch::new(n);
    let mut row = kept.to_vec();
    for i in (0..n).filter(|&i| kept[i]) {
        row[i] = false;
        batch.push_bools(&row);
        row[i] = true;
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::{Basis, Subset};

    /// Moebius: heads 0 and 1 are redundant copies (either is worth 2, both together also 2),
    /// head 2 is worth 1 alone.
    fn redundant_pair() -> Spectrum {
        Spectrum::from_terms(
            3,
            Basis::Moebius,
            [
                (Subset::singleton(0), 2.0),
                (Subset::singleton(1), 2.0),
                (Subset::from_indices([0, 1]), -2.0),
                (Subset::singleton(2), 1.0),
            ],
        )
        .to_fourier()
    }

    fn value_after(s: &Spectrum, removed: &[usize]) -> f64 {
        let mut b = MaskBatch::new(s.n_players());
        b.push_bools(&kept_mask(s.n_players(), removed));
        s.eval(&b)[0]
    }

    #[test]
    fn greedy_sees_the_redundancy_that_one_at_a_time_ranking_misses() {
        let s = redundant_pair();
        // Alone, removing 0 or 1 costs nothing, so one-at-a-time ranking removes both first.
        assert_eq!(removal_order(&s, Strategy::Single, 3, 0), vec![0, 1, 2]);
        // Greedy removes 0, then sees that 1 now carries the pair's 2 and removes 2 instead.
        let greedy = removal_order(&s, Strategy::Greedy, 3, 0);
        assert_eq!(greedy, vec![0, 2, 1]);
        // Two heads gone: greedy keeps head 1 (worth 2), one at a time keeps only head 2 (worth 1).
        assert!((value_after(&s, &greedy[..2]) - 2.0).abs() < 1e-12);
        assert!((value_after(&s, &[0, 1]) - 1.0).abs() < 1e-12);
        assert_eq!(removal_order(&s, Strategy::Greedy, 1, 0), vec![0]);
    }

    #[test]
    fn random_orders_are_seeded_permutations_and_masks_mark_the_removed() {
        let s = redundant_pair();
        let r = removal_order(&s, Strategy::Random, 3, 7);
        let mut sorted = r.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2]);
        assert_eq!(r, removal_order(&s, Strategy::Random, 3, 7));
        assert_eq!(removal_order(&s, Strategy::Random, 10, 7).len(), 3);
        assert_eq!(kept_mask(3, &[2, 0]), vec![false, true, false]);
    }
}
