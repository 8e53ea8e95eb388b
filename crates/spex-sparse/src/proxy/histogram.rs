//! Per-feature gradient sums and counts over a leaf's rows: the inner loop of the tree fits.
//!
//! Features are bits, so a histogram entry is `sum_{r in rows, x_ri = 1} g_r` plus a count. The
//! rows are read bit-packed (64 features per word, 8x less memory traffic than bytes) and each
//! group of four rows is summed as `(g0 b0 + g1 b1) + (g2 b2 + g3 b3)` per feature. On AVX2 the
//! products are masks: a nibble of a row's word selects, by table, which of four lanes keep `g`
//! (`g AND mask` is `g` or `+0`, exactly `g * b`). On AVX-512 a byte of the word is the lane
//! mask itself and a block of 128 features stays in registers for the whole row scan. The
//! portable path adds in the same order, so all three give the same bits (up to the sign of a
//! zero sum).

use super::binary_matrix::BinaryMatrix;

/// Per-feature gradient sum and count over the rows with `x_i = 1` (`[n]` each).
pub(super) struct Histogram {
    /// Gradient sums per feature; empty for a counts-only histogram ([`Self::counts`]).
    pub grad: Vec<f64>,
    /// Row counts per feature.
    pub count: Vec<u32>,
}

impl Histogram {
    /// The histogram of `rows` (indices into `x` and `grad`, `grad` is `[m]`).
    pub fn build(x: &BinaryMatrix, rows: &[u32], grad: &[f64]) -> Self {
        dispatch::<true>(x, rows, grad)
    }

    /// The counts alone (`grad` left empty): all a leaf that will not be split needs.
    pub fn counts(x: &BinaryMatrix, rows: &[u32]) -> Self {
        dispatch::<false>(x, rows, &[])
    }

    /// `self - other` in place (the sibling's histogram from the parent's); counts only if
    /// `other` is.
    pub fn minus(mut self, other: &Histogram) -> Self {
        if other.grad.is_empty() {
            self.grad.clear();
        }
        for (a, b) in self.grad.iter_mut().zip(&other.grad) {
            *a -= b;
        }
        for (a, b) in self.count.iter_mut().zip(&other.count) {
            *a -= b;
        }
        self
    }
}

/// Zeroed gradient sums (only when `G`) and counts over `words` whole words of features, as the
/// vector paths write them; bits past `n` are zero, so the padding entries stay zero.
#[cfg(target_arch = "x86_64")]
fn padded<const G: bool>(words: usize) -> (Vec<f64>, Vec<u32>) {
    (
        vec![0.0; if G { words * 64 } else { 0 }],
        vec![0; words * 64],
    )
}

/// The histogram of the first `n` entries of padded buffers from [`padded`].
#[cfg(target_arch = "x86_64")]
fn trimmed(mut grad: Vec<f64>, mut count: Vec<u32>, n: usize) -> Histogram {
    grad.truncate(n);
    count.truncate(n);
    Histogram { grad, count }
}

/// `g` where bit `i` of `word` is set, else `+0` (equal to `g * b` up to the sign of zero).
#[inline(always)]
fn select(word: u64, i: usize, g: f64) -> f64 {
    if word >> i & 1 == 1 {
        g
    } else {
        0.0
    }
}

/// The fastest path the running CPU has; gradient sums only when `G`.
fn dispatch<const G: bool>(x: &BinaryMatrix, rows: &[u32], grad: &[f64]) -> Histogram {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") {
            // SAFETY: the running CPU supports AVX-512 F and BW, checked just above.
            return unsafe { avx512::build::<G>(x, rows, grad) };
        }
        if has!("avx2") {
            // SAFETY: the running CPU supports AVX2, checked just above.
            return unsafe { avx2::build::<G>(x, rows, grad) };
        }
    }
    build_portable::<G>(x, rows, grad)
}

/// The reference path: the same sums in the same order as the vector ones, one feature at a
/// time; gradient sums only when `G`.
fn build_portable<const G: bool>(x: &BinaryMatrix, rows: &[u32], grad: &[f64]) -> Histogram {
    let n = x.n_features();
    let mut h = Histogram {
        grad: vec![0.0; if G { n } else { 0 }],
        count: vec![0; n],
    };
    let mut quads = rows.chunks_exact(4);
    for q in &mut quads {
        let r = [q[0], q[1], q[2], q[3]].map(|r| r as usize);
        let w = r.map(|r| x.row_bits(r));
        let g = r.map(|r| if G { grad[r] } else { 0.0 });
        for i in 0..n {
            let (word, bit) = (i / 64, i % 64);
            let b = [0, 1, 2, 3].map(|k| w[k][word]);
            if G {
                h.grad[i] += (select(b[0], bit, g[0]) + select(b[1], bit, g[1]))
                    + (select(b[2], bit, g[2]) + select(b[3], bit, g[3]));
            }
            h.count[i] += b.iter().map(|&b| (b >> bit & 1) as u32).sum::<u32>();
        }
    }
    for &r in quads.remainder() {
        let w = x.row_bits(r as usize);
        let g = if G { grad[r as usize] } else { 0.0 };
        for i in 0..n {
            if G {
                h.grad[i] += select(w[i / 64], i % 64, g);
            }
            h.count[i] += (w[i / 64] >> (i % 64) & 1) as u32;
        }
    }
    h
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{padded, trimmed, BinaryMatrix, Histogram};

    /// A `[[$ty; $lanes]; $entries]` table whose entry `k`, lane `j` is `$set` when bit `j` of
    /// `k` is set and 0 otherwise, built at compile time.
    macro_rules! bit_lane_table {
        ($ty:ty, $entries:expr, $lanes:expr, $set:expr) => {{
            let mut t = [[0 as $ty; $lanes]; $entries];
            let mut k = 0;
            while k < $entries {
                let mut j = 0;
                while j < $lanes {
                    if k >> j & 1 == 1 {
                        t[k][j] = $set;
                    }
                    j += 1;
                }
                k += 1;
            }
            t
        }};
    }

    /// Lane masks for a nibble: entry `k`, lane `j` is all ones when bit `j` of `k` is set.
    #[repr(align(32))]
    struct NibbleMasks([[u64; 4]; 16]);

    static NIBBLE_MASKS: NibbleMasks = NibbleMasks(bit_lane_table!(u64, 16, 4, u64::MAX));

    /// Lane counts for a byte: entry `k`, lane `j` is bit `j` of `k` (as a u32).
    #[repr(align(32))]
    struct ByteOnes([[u32; 8]; 256]);

    static BYTE_ONES: ByteOnes = ByteOnes(bit_lane_table!(u32, 256, 8, 1));

    #[inline(always)]
    unsafe fn nibble_mask(word: u64, j: usize) -> __m256d {
        let k = (word >> (4 * j) & 15) as usize;
        _mm256_load_pd(NIBBLE_MASKS.0[k].as_ptr().cast())
    }

    #[inline(always)]
    unsafe fn byte_ones(word: u64, j: usize) -> __m256i {
        let k = (word >> (8 * j) & 255) as usize;
        _mm256_load_si256(BYTE_ONES.0[k].as_ptr().cast())
    }

    /// [`Histogram::build`] with 256-bit lanes: four features per add, eight per count.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn build<const G: bool>(
        x: &BinaryMatrix,
        rows: &[u32],
        grad: &[f64],
    ) -> Histogram {
        let (mut hg, mut hc) = padded::<G>(x.words_per_row());
        let mut quads = rows.chunks_exact(4);
        for q in &mut quads {
            let r = [q[0], q[1], q[2], q[3]].map(|r| r as usize);
            let w = r.map(|r| x.row_bits(r));
            let g = r.map(|r| _mm256_set1_pd(if G { grad[r] } else { 0.0 }));
            let quad_words = w[0].iter().zip(w[1]).zip(w[2].iter().zip(w[3]));
            for (word, ((&b0, &b1), (&b2, &b3))) in quad_words.enumerate() {
                let b = [b0, b1, b2, b3];
                if G {
                    let hg_word = hg.as_mut_ptr().add(word * 64);
                    for j in 0..16 {
                        let t01 = _mm256_add_pd(
                            _mm256_and_pd(g[0], nibble_mask(b[0], j)),
                            _mm256_and_pd(g[1], nibble_mask(b[1], j)),
                        );
                        let t23 = _mm256_add_pd(
                            _mm256_and_pd(g[2], nibble_mask(b[2], j)),
                            _mm256_and_pd(g[3], nibble_mask(b[3], j)),
                        );
                        let p = hg_word.add(4 * j);
                        let sum = _mm256_add_pd(t01, t23);
                        _mm256_storeu_pd(p, _mm256_add_pd(_mm256_loadu_pd(p), sum));
                    }
                }
                let hc_word = hc.as_mut_ptr().add(word * 64);
                for j in 0..8 {
                    let ones = _mm256_add_epi32(
                        _mm256_add_epi32(byte_ones(b[0], j), byte_ones(b[1], j)),
                        _mm256_add_epi32(byte_ones(b[2], j), byte_ones(b[3], j)),
                    );
                    let p = hc_word.add(8 * j).cast::<__m256i>();
                    _mm256_storeu_si256(p, _mm256_add_epi32(_mm256_loadu_si256(p), ones));
                }
            }
        }
        for &r in quads.remainder() {
            let g = _mm256_set1_pd(if G { grad[r as usize] } else { 0.0 });
            for (word, &b) in x.row_bits(r as usize).iter().enumerate() {
                if G {
                    let hg_word = hg.as_mut_ptr().add(word * 64);
                    for j in 0..16 {
                        let p = hg_word.add(4 * j);
                        let add = _mm256_and_pd(g, nibble_mask(b, j));
                        _mm256_storeu_pd(p, _mm256_add_pd(_mm256_loadu_pd(p), add));
                    }
                }
                let hc_word = hc.as_mut_ptr().add(word * 64);
                for j in 0..8 {
                    let p = hc_word.add(8 * j).cast::<__m256i>();
                    let sum = _mm256_add_epi32(_mm256_loadu_si256(p), byte_ones(b, j));
                    _mm256_storeu_si256(p, sum);
                }
            }
        }
        trimmed(hg, hc, x.n_features())
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{padded, trimmed, BinaryMatrix, Histogram};

    /// Rows between flushes of the 16-bit count lanes (each row adds at most 1 per lane).
    const COUNT_FLUSH_ROWS: usize = 65_532;

    /// [`Histogram::build`] with 512-bit lanes, two words (128 features) per pass over the rows.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn build<const G: bool>(
        x: &BinaryMatrix,
        rows: &[u32],
        grad: &[f64],
    ) -> Histogram {
        let words = x.words_per_row();
        let (mut hg, mut hc) = padded::<G>(words);
        // `block` reads the packed words unchecked: every row must be in range.
        assert!(rows.iter().all(|&r| (r as usize) < x.n_rows()));
        let mut w0 = 0;
        while w0 < words {
            let hg_block: &mut [f64] = if G { &mut hg[w0 * 64..] } else { &mut [] };
            let out = (hg_block, &mut hc[w0 * 64..]);
            if words - w0 >= 2 {
                block::<2, G>(x, rows, grad, w0, out);
                w0 += 2;
            } else {
                block::<1, G>(x, rows, grad, w0, out);
                w0 += 1;
            }
        }
        trimmed(hg, hc, x.n_features())
    }

    /// Words `w0 .. w0 + W` of every row in `rows`: gradient sums (when `G`) in `8 W` registers
    /// of eight f64 lanes, counts in `2 W` registers of 32 u16 lanes, written to `hg` / `hc` at
    /// the end.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F and BW, and every row must be below `x.n_rows()`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn block<const W: usize, const G: bool>(
        x: &BinaryMatrix,
        rows: &[u32],
        grad: &[f64],
        w0: usize,
        (hg, hc): (&mut [f64], &mut [u32]),
    ) {
        let mut acc = [[_mm512_setzero_pd(); 8]; W];
        let mut cnt = [[_mm512_setzero_si512(); 2]; W];
        let ones = _mm512_set1_epi16(1);
        let (bits, words) = (x.packed(), x.words_per_row());
        assert!(w0 + W <= words);
        // SAFETY: every row is in range (the caller's contract) and `w0 + w < words` (checked
        // just above).
        let word = |r: usize, w: usize| unsafe { *bits.get_unchecked(r * words + w0 + w) };
        let mut since_flush = 0;
        let mut quads = rows.chunks_exact(4);
        for q in &mut quads {
            let r = [q[0], q[1], q[2], q[3]].map(|r| r as usize);
            let g = r.map(|r| _mm512_set1_pd(if G { grad[r] } else { 0.0 }));
            for w in 0..W {
                let b = r.map(|r| word(r, w));
                for (j, a) in acc[w].iter_mut().enumerate().filter(|_| G) {
                    let k = b.map(|b| (b >> (8 * j)) as __mmask8);
                    // g0 b0 + g1 b1: where b1 = 0 the sum is g0 b0 itself, as `+ 0` would give.
                    let p0 = _mm512_maskz_mov_pd(k[0], g[0]);
                    let t01 = _mm512_mask_add_pd(p0, k[1], p0, g[1]);
                    let p2 = _mm512_maskz_mov_pd(k[2], g[2]);
                    let t23 = _mm512_mask_add_pd(p2, k[3], p2, g[3]);
                    *a = _mm512_add_pd(*a, _mm512_add_pd(t01, t23));
                }
                for (j, c) in cnt[w].iter_mut().enumerate() {
                    for &b in &b {
                        *c = _mm512_mask_add_epi16(*c, (b >> (32 * j)) as __mmask32, *c, ones);
                    }
                }
            }
            since_flush += 4;
            if since_flush >= COUNT_FLUSH_ROWS {
                flush_counts(&mut cnt, hc);
                since_flush = 0;
            }
        }
        for &r in quads.remainder() {
            let r = r as usize;
            let g = _mm512_set1_pd(if G { grad[r] } else { 0.0 });
            for w in 0..W {
                let b = word(r, w);
                for (j, a) in acc[w].iter_mut().enumerate().filter(|_| G) {
                    *a = _mm512_add_pd(*a, _mm512_maskz_mov_pd((b >> (8 * j)) as __mmask8, g));
                }
                for (j, c) in cnt[w].iter_mut().enumerate() {
                    *c = _mm512_mask_add_epi16(*c, (b >> (32 * j)) as __mmask32, *c, ones);
                }
            }
        }
        for (w, regs) in acc.iter().enumerate().filter(|_| G) {
            for (j, a) in regs.iter().enumerate() {
                _mm512_storeu_pd(hg[64 * w + 8 * j..][..8].as_mut_ptr(), *a);
            }
        }
        flush_counts(&mut cnt, hc);
    }

    /// Adds the 16-bit count lanes into `hc` (u32) and zeroes them.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn flush_counts<const W: usize>(cnt: &mut [[__m512i; 2]; W], hc: &mut [u32]) {
        for (w, regs) in cnt.iter_mut().enumerate() {
            for (j, c) in regs.iter_mut().enumerate() {
                for half in 0..2 {
                    let lanes = if half == 0 {
                        _mm512_castsi512_si256(*c)
                    } else {
                        _mm512_extracti64x4_epi64::<1>(*c)
                    };
                    let p = hc
                        .as_mut_ptr()
                        .add(64 * w + 32 * j + 16 * half)
                        .cast::<__m512i>();
                    let sum = _mm512_add_epi32(_mm512_loadu_si512(p), _mm512_cvtepu16_epi32(lanes));
                    _mm512_storeu_si512(p, sum);
                }
                *c = _mm512_setzero_si512();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::sampling::distinct_uniform_masks;

    /// Sums in the plainest form: every row, one feature at a time, `g * b` in f64.
    fn naive(x: &BinaryMatrix, rows: &[u32], grad: &[f64]) -> (Vec<f64>, Vec<u32>) {
        let n = x.n_features();
        let (mut g, mut c) = (vec![0.0; n], vec![0u32; n]);
        for &r in rows {
            for (i, &b) in x.row(r as usize).iter().enumerate() {
                g[i] += grad[r as usize] * f64::from(b);
                c[i] += u32::from(b);
            }
        }
        (g, c)
    }

    /// The bit patterns, with `-0` read as `+0`.
    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|g| (g + 0.0).to_bits()).collect()
    }

    /// Every vector path the running CPU can take, by name.
    fn simd_paths(x: &BinaryMatrix, rows: &[u32], grad: &[f64]) -> Vec<(&'static str, Histogram)> {
        let mut out = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") {
                // SAFETY: AVX2 is present, checked just above.
                out.push(("avx2", unsafe { avx2::build::<true>(x, rows, grad) }));
            }
            if has!("avx512f") && has!("avx512bw") {
                // SAFETY: AVX-512 F and BW are present, checked just above.
                out.push(("avx512", unsafe { avx512::build::<true>(x, rows, grad) }));
            }
        }
        out
    }

    #[test]
    fn every_path_gives_the_same_bits_and_the_plain_sums() {
        // Widths around word edges; row counts with every remainder mod 4; more rows than the
        // 16-bit count lanes hold between flushes.
        for (n, m) in [
            (1, 2),
            (5, 29),
            (63, 30),
            (64, 41),
            (65, 23),
            (130, 102),
            (200, 77),
            (20, 70_000),
        ] {
            let masks = distinct_uniform_masks(n, m, 7);
            let x = BinaryMatrix::from_masks(&masks);
            let grad: Vec<f64> = (0..m).map(|r| ((r * 37 % 11) as f64 - 5.0) / 3.0).collect();
            let rows: Vec<u32> = (0..m as u32).filter(|r| r % 3 != 1).collect();
            let portable = build_portable::<true>(&x, &rows, &grad);
            let (g, c) = naive(&x, &rows, &grad);
            assert_eq!(portable.count, c, "n {n}, m {m}");
            for (a, b) in portable.grad.iter().zip(&g) {
                assert!((a - b).abs() < 1e-12, "n {n}, m {m}: {a} vs {b}");
            }
            for (path, fast) in simd_paths(&x, &rows, &grad) {
                assert_eq!(
                    bits(&fast.grad),
                    bits(&portable.grad),
                    "{path}: n {n}, m {m}"
                );
                assert_eq!(fast.count, portable.count, "{path}: n {n}, m {m}");
            }
            let counts = Histogram::counts(&x, &rows);
            assert!(counts.grad.is_empty());
            assert_eq!(counts.count, c, "counts only: n {n}, m {m}");
            assert_eq!(build_portable::<false>(&x, &rows, &[]).count, c);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is present, checked just above.
                assert_eq!(unsafe { avx2::build::<false>(&x, &rows, &[]) }.count, c);
            }
        }
    }
}
