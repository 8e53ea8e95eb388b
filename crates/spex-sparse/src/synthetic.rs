//! Synthetic functions with known spectra and random masks: the ground truth that tests and
//! benchmarks measure the decoders against.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Basis, MaskBatch, Spectrum, Subset};

/// A random K-sparse Fourier spectrum over `n` players: `k` distinct sets of size U{1..t}, each
/// with amplitude U[1, 2] of random sign (the recovery setup of algorithms.md §9.3).
///
/// Needs enough distinct sets to exist (`k` well below `C(n, <= t)`); seeded, deterministic.
pub fn random_sparse_fourier(n: usize, k: usize, t: usize, seed: u64) -> Spectrum {
    assert!(n >= t && t >= 1, "need n >= t >= 1");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = Spectrum::new(n, Basis::Fourier);
    while s.len() < k {
        let size = rng.random_range(1..=t);
        let set = Subset::from_indices((0..size).map(|_| rng.random_range(0..n as u32)));
        if set.len() == size && s.get(&set) == 0.0 {
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            s.set(set, sign * rng.random_range(1.0..2.0));
        }
    }
    s
}

/// `m` i.i.d. uniform masks over `n` players (each player kept with probability 1/2); seeded.
pub fn uniform_masks(n: usize, m: usize, seed: u64) -> MaskBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut masks = MaskBatch::with_capacity(n, m);
    let mut row = vec![false; n];
    for _ in 0..m {
        row.iter_mut().for_each(|b| *b = rng.random());
        masks.push_bools(&row);
    }
    masks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_sparse_has_the_asked_shape() {
        let s = random_sparse_fourier(50, 20, 4, 3);
        assert_eq!(s.len(), 20);
        assert!(s.max_degree() <= 4);
        assert!(s
            .iter()
            .all(|(k, v)| !k.is_empty() && (1.0..2.0).contains(&v.abs())));
        assert_eq!(s, random_sparse_fourier(50, 20, 4, 3));
    }

    #[test]
    fn uniform_masks_keep_about_half() {
        let m = uniform_masks(64, 500, 1);
        let kept: usize = (0..m.len()).map(|r| m.count_kept(r)).sum();
        let frac = kept as f64 / (64.0 * 500.0);
        assert!((frac - 0.5).abs() < 0.02, "{frac}");
        assert_eq!(m, uniform_masks(64, 500, 1));
    }
}
