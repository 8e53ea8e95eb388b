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
        self.sums(y).moments()
    }

    /// The raw sums of the columns and of `y` over the rows: `k^2 m / 128` word operations.
    pub fn sums(&self, y: &[f64]) -> Sums {
        assert_eq!(y.len(), self.rows, "one value per row");
        let k = self.len();
        let upper: Vec<Vec<i32>> = (0..k)
            .into_par_iter()
            .map(|j| (j..k).map(|l| self.product(j, l)).collect())
            .collect();
        let mut gram = vec![0i32; k * k];
        for (j, row) in upper.into_iter().enumerate() {
            for (d, v) in row.into_iter().enumerate() {
                gram[j * k + j + d] = v;
                gram[(j + d) * k + j] = v;
            }
        }
        Sums {
            rows: self.rows,
            gram,
            columns: self.column_sums(),
            xy: self.xy(y),
            y: y.iter().sum(),
            yy: y.iter().map(|v| v * v).sum(),
        }
    }

    /// `sum_r chi_j(r) chi_l(r)`.
    fn product(&self, j: usize, l: usize) -> i32 {
        let differ: u32 = self
            .column(j)
            .iter()
            .zip(self.column(l))
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        self.rows as i32 - 2 * differ as i32
    }

    /// `sum_r chi_j(r)` for every column.
    fn column_sums(&self) -> Vec<i64> {
        (0..self.len())
            .map(|j| {
                let ones: i64 = self.column(j).iter().map(|w| w.count_ones() as i64).sum();
                self.rows as i64 - 2 * ones
            })
            .collect()
    }

    /// `sum_r chi_j(r) y_r` for every column.
    fn xy(&self, y: &[f64]) -> Vec<f64> {
        (0..self.len())
            .into_par_iter()
            .map(|j| (0..self.rows).map(|r| self.sign(j, r) * y[r]).sum())
            .collect()
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

/// Raw (uncentred, undivided) sums of `k` columns and a response over `rows` rows.
#[derive(Clone, Debug)]
pub struct Sums {
    rows: usize,
    /// `[k, k]` row-major `sum_r chi_j chi_l`.
    gram: Vec<i32>,
    /// `sum_r chi_j`.
    columns: Vec<i64>,
    /// `sum_r chi_j y_r`.
    xy: Vec<f64>,
    /// `sum_r y_r`.
    y: f64,
    /// `sum_r y_r^2`.
    yy: f64,
}

impl Sums {
    /// The moments of these rows.
    pub fn moments(&self) -> Moments {
        let k = self.columns.len();
        let m = self.rows.max(1) as f64;
        let mean: Vec<f64> = self.columns.iter().map(|&c| c as f64 / m).collect();
        let mut gram = vec![0.0; k * k];
        gram.par_chunks_mut(k.max(1))
            .enumerate()
            .for_each(|(j, row)| {
                for (l, g) in row.iter_mut().enumerate() {
                    *g = f64::from(self.gram[j * k + l]) / m - mean[j] * mean[l];
                }
            });
        self.finish(mean, gram, &self.xy, self.y, self.yy, self.rows)
    }

    /// The moments of these rows less the rows of `part` (which must be some of them), whose
    /// values are `y_part`: a fold's training rows from all rows and the fold, at the cost of
    /// the fold's products only.
    pub fn moments_without(&self, part: &Columns, y_part: &[f64]) -> Moments {
        let k = self.columns.len();
        assert_eq!(part.len(), k, "same support");
        let rows = self.rows - part.rows;
        let m = rows.max(1) as f64;
        let columns: Vec<i64> = part.column_sums();
        let mean: Vec<f64> = (0..k)
            .map(|j| (self.columns[j] - columns[j]) as f64 / m)
            .collect();
        let upper: Vec<Vec<f64>> = (0..k)
            .into_par_iter()
            .map(|j| {
                (j..k)
                    .map(|l| {
                        let raw = self.gram[j * k + l] - part.product(j, l);
                        f64::from(raw) / m - mean[j] * mean[l]
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
        let part_xy = part.xy(y_part);
        let xy: Vec<f64> = self.xy.iter().zip(&part_xy).map(|(a, b)| a - b).collect();
        let y = self.y - y_part.iter().sum::<f64>();
        let yy = self.yy - y_part.iter().map(|v| v * v).sum::<f64>();
        self.finish(mean, gram, &xy, y, yy, rows)
    }

    fn finish(
        &self,
        mean: Vec<f64>,
        gram: Vec<f64>,
        xy: &[f64],
        y: f64,
        yy: f64,
        rows: usize,
    ) -> Moments {
        let m = rows.max(1) as f64;
        let y_mean = y / m;
        // Centred X^T y / m = sum_r chi_j y_r / m - mean_j * ybar.
        let xty = xy
            .iter()
            .zip(&mean)
            .map(|(s, mu)| s / m - mu * y_mean)
            .collect();
        Moments {
            rows,
            mean,
            gram,
            xty,
            y_mean,
            y_var: (yy / m - y_mean * y_mean).max(0.0),
        }
    }
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

    #[test]
    fn a_fold_removed_from_the_sums_equals_the_remaining_rows() {
        let masks = uniform_masks(9, 103, 8);
        let support = crate::linear::low_order_support(9, 2);
        let y: Vec<f64> = (0..103)
            .map(|r| ((r * 13) % 10) as f64 * 0.3 - 1.0)
            .collect();
        let all: Vec<usize> = (0..103).collect();
        let sums = Columns::new(&masks, &support, &all).sums(&y);
        let (train, valid) = split_rows(103, (41, 62));
        let y_valid: Vec<f64> = valid.iter().map(|&r| y[r]).collect();
        let y_train: Vec<f64> = train.iter().map(|&r| y[r]).collect();
        let got = sums.moments_without(&Columns::new(&masks, &support, &valid), &y_valid);
        let want = Columns::new(&masks, &support, &train).moments(&y_train);
        assert_eq!(got.rows, want.rows);
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(&got.mean, &want.mean) && close(&got.gram, &want.gram));
        assert!(close(&got.xty, &want.xty));
        assert!((got.y_mean - want.y_mean).abs() < 1e-12 && (got.y_var - want.y_var).abs() < 1e-12);
    }
}
