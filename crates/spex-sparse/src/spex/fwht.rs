//! The in-place fast Walsh–Hadamard transform.

/// In place: `a[j] <- sum_l a[l] (-1)^{popcount(l & j)}` (unnormalised); `a.len()` a power of two.
pub fn fwht(a: &mut [f64]) {
    let len = a.len();
    debug_assert!(len.is_power_of_two());
    let mut h = 1;
    while h < len {
        for block in a.chunks_exact_mut(2 * h) {
            let (lo, hi) = block.split_at_mut(h);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let (u, v) = (*x, *y);
                *x = u + v;
                *y = u - v;
            }
        }
        h *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition() {
        let a: Vec<f64> = (0..16).map(|i| ((i * 7 + 3) % 11) as f64 - 4.5).collect();
        let mut fast = a.clone();
        fwht(&mut fast);
        for (j, got) in fast.iter().enumerate() {
            let want: f64 = a
                .iter()
                .enumerate()
                .map(|(l, v)| {
                    if (l & j).count_ones() % 2 == 1 {
                        -v
                    } else {
                        *v
                    }
                })
                .sum();
            assert!((got - want).abs() < 1e-12);
        }
    }

    #[test]
    fn twice_is_len_times_identity() {
        let a: Vec<f64> = (0..64).map(|i| (i as f64).sin()).collect();
        let mut b = a.clone();
        fwht(&mut b);
        fwht(&mut b);
        for (x, y) in a.iter().zip(&b) {
            assert!((x * 64.0 - y).abs() < 1e-9);
        }
    }
}
