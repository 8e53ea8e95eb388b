//! The exact Fourier spectrum of a function known on the whole cube (every mask over `n` players
//! queried at least once), by a fast Walsh-Hadamard transform: `O(n 2^n)`.
//!
//! A budget of at least `2^n` queries buys the whole cube, and then no proxy is needed: the
//! transform is the answer, with R^2 = 1 on every mask, whatever the method that drew the masks.

use super::{Basis, MaskBatch, Spectrum, Subset};

/// Largest `n` whose cube is transformed (`2^24` values, 128 MiB of `f64`).
pub const MAX_EXACT_PLAYERS: usize = 24;

/// The exact Fourier spectrum (`f(x) = sum_S F(S) (-1)^{|S ∩ x|}`, x = kept players) when
/// `masks` hold every point of `{0,1}^n` at least once, `values[r] = f(masks[r])`; a mask queried
/// more than once counts with the mean of its values (the least-squares fit over the whole
/// cube). `None` when some point is missing (or `n > MAX_EXACT_PLAYERS`). Coefficients below
/// `1e-12` of the largest are rounding noise and dropped.
pub fn exact_fourier(masks: &MaskBatch, values: &[f64]) -> Option<Spectrum> {
    let n = masks.n_players();
    if n > MAX_EXACT_PLAYERS || masks.len() < 1usize << n || values.len() != masks.len() {
        return None;
    }
    let mut table = vec![0.0f64; 1 << n];
    let mut counts = vec![0u32; 1 << n];
    for (r, &v) in values.iter().enumerate() {
        let x = masks.row_words(r).first().copied().unwrap_or(0) as usize;
        table[x] += v;
        counts[x] = counts[x].saturating_add(1);
    }
    if counts.contains(&0) {
        return None;
    }
    for (t, &c) in table.iter_mut().zip(&counts) {
        if c > 1 {
            *t /= f64::from(c);
        }
    }
    let mut half = 1;
    while half < table.len() {
        for block in table.chunks_mut(2 * half) {
            let (lo, hi) = block.split_at_mut(half);
            for (a, b) in lo.iter_mut().zip(hi) {
                (*a, *b) = (*a + *b, *a - *b);
            }
        }
        half *= 2;
    }
    let scale = 1.0 / table.len() as f64;
    let largest = table.iter().fold(0.0f64, |m, v| m.max(v.abs())) * scale;
    let terms = table.iter().enumerate().filter_map(|(s, &v)| {
        let c = v * scale;
        (c.abs() > 1e-12 * largest).then(|| {
            let players = (0..n as u32).filter(|&i| (s >> i) & 1 == 1);
            (Subset::from_sorted(players.collect()), c)
        })
    });
    Some(Spectrum::from_terms(n, Basis::Fourier, terms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectrum::r2_score;

    fn cube(n: usize) -> MaskBatch {
        let mut m = MaskBatch::new(n);
        // A scrambled order: the transform must not rely on row order.
        for k in 0..1usize << n {
            let x = (k * 5 + 3) % (1 << n);
            m.push_bools(&(0..n).map(|i| (x >> i) & 1 == 1).collect::<Vec<_>>());
        }
        m
    }

    #[test]
    fn the_whole_cube_is_transformed_exactly() {
        let n = 6;
        let masks = cube(n);
        let f = |r: usize| {
            let k = |i: usize| f64::from(u8::from(masks.get(r, i)));
            3.0 * k(0) * k(1) - 2.0 * k(2) + 0.5 * k(3) * k(4) * k(5) + 1.0
        };
        let values: Vec<f64> = (0..masks.len()).map(f).collect();
        let s = exact_fourier(&masks, &values).unwrap();
        assert_eq!(s.basis(), Basis::Fourier);
        let back = s.eval(&masks);
        assert!(back.iter().zip(&values).all(|(a, b)| (a - b).abs() < 1e-12));
        assert!((r2_score(&values, &back) - 1.0).abs() < 1e-12);
        // The Moebius view has exactly the three monomials and the constant.
        let m = s.to_moebius();
        assert!((m.get(&Subset::from_indices([0, 1])) - 3.0).abs() < 1e-12);
        assert!((m.get(&Subset::from_indices([3, 4, 5])) - 0.5).abs() < 1e-12);
        assert!((m.get(&Subset::singleton(2)) + 2.0).abs() < 1e-12);
    }

    #[test]
    fn anything_short_of_the_whole_cube_is_declined() {
        let masks = cube(4);
        let values = vec![1.0; 16];
        let mut short = MaskBatch::new(4);
        for r in 0..15 {
            short.push_words(masks.row_words(r));
        }
        assert!(exact_fourier(&short, &values[..15]).is_none());
        let mut repeated = short.clone();
        repeated.push_words(masks.row_words(0));
        assert!(exact_fourier(&repeated, &values).is_none());
        assert!(exact_fourier(&masks, &values).is_some());
    }

    #[test]
    fn a_mask_queried_twice_counts_with_its_mean() {
        let n = 3;
        let mut masks = cube(n);
        let mut values: Vec<f64> = (0..masks.len())
            .map(|r| f64::from(u8::from(masks.get(r, 0))))
            .collect();
        // The first row again, with another value: the cube's point is their mean.
        let first = masks.row_words(0).to_vec();
        masks.push_words(&first);
        values.push(values[0] + 2.0);
        let s = exact_fourier(&masks, &values).unwrap();
        let back = s.eval(&masks);
        assert!((back[0] - (values[0] + 1.0)).abs() < 1e-12);
        for r in 1..8 {
            assert!((back[r] - values[r]).abs() < 1e-12, "row {r}");
        }
    }
}
