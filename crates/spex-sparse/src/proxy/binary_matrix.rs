//! [`BinaryMatrix`]: the boosted trees' view of a mask batch, laid out for each of their scans.

use crate::MaskBatch;

/// Masks three ways: bit-packed rows `[m, ceil(n / 64)]` words (the histogram scan), dense 0/1
/// bytes row-major `[m, n]` (prediction) and column-major `[n, m]` (splitting a leaf reads one
/// feature over its rows).
#[derive(Clone, Debug)]
pub struct BinaryMatrix {
    n: usize,
    data: Vec<u8>,
    columns: Vec<u8>,
    bits: Vec<u64>,
}

impl BinaryMatrix {
    /// Unpacks `masks` (`[m, n]` bits) into bytes.
    pub fn from_masks(masks: &MaskBatch) -> Self {
        Self::from_rows(masks.n_players(), masks.to_u8())
    }

    fn from_rows(n: usize, data: Vec<u8>) -> Self {
        let m = data.len().checked_div(n).unwrap_or(0);
        let words = n.div_ceil(64);
        let mut columns = vec![0u8; data.len()];
        let mut bits = vec![0u64; m * words];
        for (r, row) in data.chunks_exact(n.max(1)).enumerate() {
            for (i, &b) in row.iter().enumerate() {
                columns[i * m + r] = b;
                bits[r * words + i / 64] |= u64::from(b != 0) << (i % 64);
            }
        }
        BinaryMatrix {
            n,
            data,
            columns,
            bits,
        }
    }

    /// The rows `rows` of `self`, in that order.
    pub fn select(&self, rows: &[usize]) -> Self {
        let mut data = Vec::with_capacity(rows.len() * self.n);
        for &r in rows {
            data.extend_from_slice(self.row(r));
        }
        Self::from_rows(self.n, data)
    }

    /// Number of features (players) `n`.
    pub fn n_features(&self) -> usize {
        self.n
    }

    /// Number of rows `m`.
    pub fn n_rows(&self) -> usize {
        self.data.len().checked_div(self.n).unwrap_or(0)
    }

    /// Feature `i` over every row, as `m` bytes.
    pub(super) fn column(&self, i: usize) -> &[u8] {
        let m = self.n_rows();
        &self.columns[i * m..(i + 1) * m]
    }

    /// 64-bit words per packed row: `ceil(n / 64)`.
    pub(super) fn words_per_row(&self) -> usize {
        self.n.div_ceil(64)
    }

    /// Every row bit-packed, `[m, words_per_row]` words (see [`Self::row_bits`]).
    pub(super) fn packed(&self) -> &[u64] {
        &self.bits
    }

    /// Row `r` bit-packed: feature `i` is bit `i % 64` of word `i / 64`; bits past `n` are zero.
    pub(super) fn row_bits(&self, r: usize) -> &[u64] {
        let words = self.words_per_row();
        &self.bits[r * words..(r + 1) * words]
    }

    /// Row `r` as `n` bytes (0 = removed, 1 = kept).
    pub fn row(&self, r: usize) -> &[u8] {
        &self.data[r * self.n..(r + 1) * self.n]
    }
}
