//! The Fourier design of a support on a subset of rows, packed one bit per row, and its moments
//! (column means, centred Gram, centred `X^T y`) computed by XOR and popcount.
//!
//! Column `j` of the design is `chi_{S_j}(x_r) = (-1)^{|S_j ∩ x_r|}`; bit `r` of column `j` is
//! set when that character is `-1`. For two such columns `sum_r chi_j chi_l = m - 2 popcount(b_j
//! xor b_l)`, so the Gram matrix costs `k^2 / 2 * m / 64` word operations and no `[m, k]` float
//! matrix is ever built.

use rayon::prelude::*;

use crate::{MaskBatch, Subset};

/// The `±1` Fourier columns of a support on chosen rows, one bit per row (set = `-1`).
#[derive(Clone, Debug)]
pub struct Columns {
    rows: usize,
    words: usize,
    /// Column-major: column `j` is `bits[j * words .. (j + 1) * words]`.
    bits: Vec<u64>,
}

impl Columns {
    /// The columns of `support` on `masks[rows[0]], masks[rows[1]], ...` (rows in that order).
    pub fn new(masks: &MaskBatch, support: &[Subset], rows: &[usize]) -> Columns {
        let words = rows.len().div_ceil(64).max(1);
        let n = masks.n_players();
        // One bit column per player first; a subset's column is the XOR of its players'.
        let mut players = vec![0u64; n * words];
        for (t, &r) in rows.iter().enumerate() {
            let w = masks.row_words(r);
            for (i, column) in players.chunks_exact_mut(words).enumerate() {
                if w[i / 64] >> (i % 64) & 1 == 1 {
                    column[t / 64] |= 1 << (t % 64);
                }
            }
        }
        let mut bits = vec![0u64; support.len() * words];
        bits.par_chunks_mut(words)
            .zip(support.par_iter())
            .for_each(|(column, s)| {
                for &i in s.indices() {
                    let p = &players[i as usize * words..(i as usize + 1) * words];
                    column.iter_mut().zip(p).for_each(|(c, b)| *c ^= b);
                }
            });
        Columns {
            rows: rows.len(),
            words,
            bits,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.bits.len() / self.words
    }

    /// Whether there is no column.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    fn column(&self, j: usize) -> &[u64] {
        &self.bits[j * self.words..(j + 1) * self.words]
    }

    /// `chi_j(row)`: `-1.0` or `1.0`.
    pub fn sign(&self, j: usize, row: usize) -> f64 {
        if self.column(j)[row / 64] >> (row % 64) & 1 == 1 {
            -1.0
        } else {
            1.0
        }
    }

    /// The moments of the columns and of `y` (`[rows]`, in the order of the rows given to
    /// [`Columns::new`]), every sum divided by the row count.
    pub fn moments(&self, y: &[f64]) -> Moments {
        assert_eq!(y.len(), self.rows, "one value per row");
        let k = self.len();
        let m = self.rows.max(1) as f64;
        let ones: Vec<i64> = (0..k)
            .map(|j| self.column(j).iter().map(|w| w.count_ones() as i64).sum())
            .collect();
        let mean: Vec<f64> = ones
            .iter()
            .map(|&o| (self.rows as i64 - 2 * o) as f64 / m)
            .collect();
        let y_mean = y.iter().sum::<f64>() / m;
        let y_var = y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / m;
        // Centred X^T y / m = sum_r chi_j(r) (y_r - ybar) / m.
        let xty: Vec<f64> = (0..k)
            .into_par_iter()
            .map(|j| {
                (0..self.rows)
                    .map(|r| self.sign(j, r) * (y[r] - y_mean))
                    .sum::<f64>()
                    / m
            })
            .collect();
        // Upper triangle by rows in parallel, then mirrored.
        let upper: Vec<Vec<f64>> = (0..k)
            .into_par_iter()
            .map(|j| {
                let a = self.column(j);
                (j..k)
                    .map(|l| {
                        let b = self.column(l);
                        let differ: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
                        let raw = (self.rows as i64 - 2 * differ as i64) as f64 / m;
                        raw - mean[j] * mean[l]
                    })
                    .collect()
            })
            .collect();
        let mut gram = vec![0.0; k * k];
        for (j, row) in upper.into_iter().enumerate() {
            for (d, v) in row.into_iter().enumerate() {
                gram[j * k + j + d] = v;
                gram[(j + d) * k + j] = v;
            }
        }
        Moments {
            rows: self.rows,
            mean,
            gram,
            xty,
            y_mean,
            y_var,
        }
    }

    /// `intercept + sum_j coefficients[j] chi_j(r)` for every row `r`.
    pub fn predict(&self, intercept: f64, coefficients: &[f64]) -> Vec<f64> {
        let mut out = vec![intercept; self.rows];
        for (j, &c) in coefficients.iter().enumerate() {
            if c == 0.0 {
                continue;
            }
            let column = self.column(j);
            for (r, o) in out.iter_mut().enumerate() {
                if column[r / 64] >> (r % 64) & 1 == 1 {
                    *o -= c;
                } else {
                    *o += c;
                }
            }
        }
        out
    }
}

/// Moments of `k` columns and a response over `rows` rows, all divided by `rows`.
#[derive(Clone, Debug)]
pub struct Moments {
    /// Number of rows.
    pub rows: usize,
    /// Column means `[k]`.
    pub mean: Vec<f64>,
    /// Centred Gram `[k, k]` row-major: `sum_r (chi_j - mean_j)(chi_l - mean_l) / rows`.
    pub gram: Vec<f64>,
    /// Centred `sum_r chi_j (y_r - y_mean) / rows`, `[k]`.
    pub xty: Vec<f64>,
    /// Mean of `y`.
    pub y_mean: f64,
    /// Population variance of `y`.
    pub y_var: f64,
}

/// The rows `0..m` outside `[lo, hi)` and those inside.
pub(crate) fn split_rows(m: usize, (lo, hi): (usize, usize)) -> (Vec<usize>, Vec<usize>) {
    ((0..lo).chain(hi..m).collect(), (lo..hi).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ridge::fourier_design;
    use crate::synthetic::uniform_masks;

    #[test]
    fn moments_match_the_dense_design() {
        let masks = uniform_masks(70, 150, 4);
        let support = vec![
            Subset::empty(),
            Subset::singleton(3),
            Subset::from_indices([1, 66]),
            Subset::from_indices([0, 5, 69]),
        ];
        let rows: Vec<usize> = (10..140).rev().collect();
        let y: Vec<f64> = rows.iter().map(|&r| (r % 7) as f64 - 1.5).collect();
        let cols = Columns::new(&masks, &support, &rows);
        let dense = fourier_design(&masks, &support).select_rows(&rows);
        let mo = cols.moments(&y);
        let m = rows.len() as f64;
        let k = support.len();
        for j in 0..k {
            let mj = dense.column(j).sum() / m;
            assert!((mo.mean[j] - mj).abs() < 1e-12);
            for l in 0..k {
                let ml = dense.column(l).sum() / m;
                let c: f64 = (0..rows.len())
                    .map(|r| (dense[(r, j)] - mj) * (dense[(r, l)] - ml))
                    .sum::<f64>()
                    / m;
                assert!((mo.gram[j * k + l] - c).abs() < 1e-12);
            }
            for (t, _) in rows.iter().enumerate() {
                assert_eq!(cols.sign(j, t), dense[(t, j)]);
            }
        }
        let pred = cols.predict(0.5, &[1.0, 0.0, -2.0, 0.25]);
        for (t, p) in pred.iter().enumerate() {
            let want = 0.5 + dense[(t, 0)] - 2.0 * dense[(t, 2)] + 0.25 * dense[(t, 3)];
            assert!((p - want).abs() < 1e-12);
        }
    }
}
