//! [`MaskBatch`]: many masks over `n` players, packed 64 players to a word.

use super::Subset;
use crate::{Error, Result};

/// `m` masks over `n` players as packed bits: row = one ablation, bit `i` = 1 keeps player `i`.
///
/// Row `r` occupies words `r * words_per_row .. (r + 1) * words_per_row`; player `i` is bit
/// `i % 64` of word `i / 64`. Bits past `n` in the last word are always zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskBatch {
    n: usize,
    words_per_row: usize,
    words: Vec<u64>,
}

impl MaskBatch {
    /// An empty batch over `n` players.
    pub fn new(n: usize) -> Self {
        MaskBatch {
            n,
            words_per_row: n.div_ceil(64).max(1),
            words: Vec::new(),
        }
    }

    /// An empty batch over `n` players with room for `rows` masks.
    pub fn with_capacity(n: usize, rows: usize) -> Self {
        let mut b = Self::new(n);
        b.words.reserve(rows * b.words_per_row);
        b
    }

    /// Number of players per mask.
    pub fn n_players(&self) -> usize {
        self.n
    }

    /// Number of masks.
    pub fn len(&self) -> usize {
        self.words.len() / self.words_per_row
    }

    /// Whether the batch holds no mask.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// 64-bit words per mask.
    pub fn words_per_row(&self) -> usize {
        self.words_per_row
    }

    /// The packed words of mask `row` (`words_per_row` of them).
    pub fn row_words(&self, row: usize) -> &[u64] {
        &self.words[row * self.words_per_row..(row + 1) * self.words_per_row]
    }

    /// Whether player `i` is kept in mask `row`.
    pub fn get(&self, row: usize, i: usize) -> bool {
        self.row_words(row)[i / 64] >> (i % 64) & 1 == 1
    }

    /// Appends a mask given as packed words (bits past `n` must be zero).
    pub fn push_words(&mut self, words: &[u64]) {
        assert_eq!(words.len(), self.words_per_row, "mask width mismatch");
        debug_assert!(
            self.n.is_multiple_of(64) || words[self.words_per_row - 1] >> (self.n % 64) == 0
        );
        self.words.extend_from_slice(words);
    }

    /// Appends a mask given as one bool per player.
    pub fn push_bools(&mut self, kept: &[bool]) {
        assert_eq!(kept.len(), self.n, "mask width mismatch");
        let start = self.words.len();
        self.words.resize(start + self.words_per_row, 0);
        for (i, &k) in kept.iter().enumerate() {
            if k {
                self.words[start + i / 64] |= 1 << (i % 64);
            }
        }
    }

    /// Appends a mask that keeps exactly the players of `kept`.
    pub fn push_subset(&mut self, kept: &Subset) {
        let start = self.words.len();
        self.words.resize(start + self.words_per_row, 0);
        for &i in kept.indices() {
            let i = i as usize;
            assert!(i < self.n, "player {i} out of range for n = {}", self.n);
            self.words[start + i / 64] |= 1 << (i % 64);
        }
    }

    /// Appends every mask of `other` (same `n`).
    pub fn extend(&mut self, other: &MaskBatch) {
        assert_eq!(self.n, other.n, "mask width mismatch");
        self.words.extend_from_slice(&other.words);
    }

    /// Whether `|S ∩ x|` is odd for mask `row` = x, i.e. the Fourier character `(-1)^{<x, 1_S>}` is -1.
    pub fn parity(&self, row: usize, s: &Subset) -> bool {
        let w = self.row_words(row);
        s.indices().iter().fold(false, |acc, &i| {
            acc ^ (w[i as usize / 64] >> (i % 64) & 1 == 1)
        })
    }

    /// Whether every player of `s` is kept in mask `row` (the Moebius monomial `prod_{i in S} x_i`).
    pub fn contains_all(&self, row: usize, s: &Subset) -> bool {
        let w = self.row_words(row);
        s.indices()
            .iter()
            .all(|&i| w[i as usize / 64] >> (i % 64) & 1 == 1)
    }

    /// Number of kept players in mask `row`.
    pub fn count_kept(&self, row: usize) -> usize {
        self.row_words(row)
            .iter()
            .map(|w| w.count_ones() as usize)
            .sum()
    }

    /// The masks as a row-major `[m, n]` matrix of 0/1 bytes (the `.npy` layout).
    pub fn to_u8(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.n);
        for r in 0..self.len() {
            out.extend((0..self.n).map(|i| self.get(r, i) as u8));
        }
        out
    }

    /// Builds a batch from a row-major `[m, n]` matrix of 0/1 bytes; `source` names it in errors.
    pub fn from_u8(n: usize, data: &[u8], source: &str) -> Result<Self> {
        if n == 0 {
            return Err(Error::invalid(
                source,
                "masks must have at least one player",
            ));
        }
        if !data.len().is_multiple_of(n) {
            return Err(Error::invalid(
                source,
                format!("{} entries do not form rows of width {n}", data.len()),
            ));
        }
        let rows = data.len() / n;
        let mut b = Self::with_capacity(n, rows);
        for r in 0..rows {
            let row = &data[r * n..(r + 1) * n];
            if let Some(i) = row.iter().position(|&v| v > 1) {
                return Err(Error::invalid(
                    source,
                    format!("mask {r}, player {i} is {}: masks hold 0 or 1", row[i]),
                ));
            }
            let bools: Vec<bool> = row.iter().map(|&v| v == 1).collect();
            b.push_bools(&bools);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_across_word_boundaries() {
        let n = 130;
        let kept: Vec<bool> = (0..n).map(|i| i % 3 == 0 || i == 64 || i == 129).collect();
        let mut b = MaskBatch::new(n);
        b.push_bools(&kept);
        b.push_bools(&vec![false; n]);
        assert_eq!(b.len(), 2);
        assert_eq!(b.words_per_row(), 3);
        for (i, &k) in kept.iter().enumerate() {
            assert_eq!(b.get(0, i), k);
            assert!(!b.get(1, i));
        }
        let back = MaskBatch::from_u8(n, &b.to_u8(), "test").unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn parity_and_monomials() {
        let mut b = MaskBatch::new(70);
        b.push_subset(&Subset::from_indices([1, 65, 69]));
        assert!(b.parity(0, &Subset::from_indices([1, 2, 3])));
        assert!(!b.parity(0, &Subset::from_indices([1, 65])));
        assert!(b.contains_all(0, &Subset::from_indices([1, 69])));
        assert!(!b.contains_all(0, &Subset::from_indices([1, 2])));
        assert_eq!(b.count_kept(0), 3);
    }

    #[test]
    fn from_u8_rejects_non_binary_entries() {
        let err = MaskBatch::from_u8(2, &[0, 1, 2, 0], "masks.npy").unwrap_err();
        assert!(err.to_string().contains("mask 1, player 0"));
    }
}
