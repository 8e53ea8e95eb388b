//! Single-precision matrix product against a right-hand side packed once, for the CPU path of the
//! model's projections: `C [M, N] = A [M, K] · W [N, K]ᵀ`, `W` being a Linear weight.
//!
//! Weights are constant for the life of a model, so they are packed at load time into 16-column
//! panels (each k-row of a panel is one 64-byte line) and no call repacks them. Each call packs
//! its activations into 6-row panels per 768-deep slice of K and runs a 6x16 AVX2/FMA register
//! tile over them; row blocks (and, for short inputs, column groups) are spread over rayon's
//! threads. Used only where [`available`] says the CPU has AVX2 and FMA.

use std::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_load_ps, _mm256_loadu_ps,
    _mm256_setzero_ps, _mm256_storeu_ps,
};

use rayon::prelude::*;

/// Rows of the register tile.
const MR: usize = 6;
/// Columns of the register tile (two 8-lane vectors).
const NR: usize = 16;
/// Depth of one K slice: the default model's 576-wide inputs take one slice, so each C tile is
/// written once; a 768 x 16 weight micro-panel (48 KiB) stays in L2. Measured against 256 with
/// benches/sgemm.rs: about 10% faster at 1024 rows.
const KC: usize = 768;
/// Most rows of one packed activation block: 144 x 768 floats (432 KiB) stay in L2.
const MC: usize = 144;
/// Fewest rows a task takes (four register tiles), so small inputs split by columns instead.
const MIN_TASK_ROWS: usize = 4 * MR;
/// Fewest weight panels a task takes: repacking a task's activations must stay cheap next to
/// the products over its panels.
const MIN_TASK_PANELS: usize = 4;
/// Tasks per rayon thread: enough that a short last task or a busy core costs little.
const TASKS_PER_THREAD: usize = 4;

/// One k-row of a 16-column weight panel, aligned to a cache line.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct PanelRow([f32; NR]);

/// Whether this CPU can run the packed product (AVX2 and FMA).
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// A `[N, K]` matrix packed as ceil(N / 16) panels of K rows of 16 columns (zero-padded).
pub struct PackedMatrix {
    n: usize,
    k: usize,
    /// Panel `j`, row `p` is `rows[j * k + p]`.
    rows: Vec<PanelRow>,
}

impl PackedMatrix {
    /// Packs the row-major `w [n, k]` (a Linear weight: output features by input features).
    pub fn pack(w: &[f32], n: usize, k: usize) -> PackedMatrix {
        assert_eq!(w.len(), n * k, "weight length is not n * k");
        let mut rows = vec![PanelRow([0.0; NR]); n.div_ceil(NR) * k];
        for (j, w_row) in w.chunks_exact(k.max(1)).enumerate().take(n) {
            let (panel, col) = (j / NR, j % NR);
            for (p, &v) in w_row.iter().enumerate() {
                rows[panel * k + p].0[col] = v;
            }
        }
        PackedMatrix { n, k, rows }
    }

    /// Output features N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features K.
    pub fn k(&self) -> usize {
        self.k
    }

    /// `a [m, K]` row-major times this matrix transposed: `[m, N]` row-major.
    ///
    /// Callers must have checked [`available`].
    pub fn matmul(&self, a: &[f32], m: usize) -> Vec<f32> {
        assert!(available(), "packed sgemm needs AVX2 and FMA");
        assert_eq!(a.len(), m * self.k, "activation length is not m * K");
        let n = self.n;
        if m == 0 || n == 0 || self.k == 0 {
            return vec![0.0; m * n];
        }
        // Left uninitialised: the first K slice of every task overwrites each element of its
        // tiles, and the tiles cover C.
        let mut c: Vec<f32> = Vec::with_capacity(m * n);
        let panels = n.div_ceil(NR);
        let want = TASKS_PER_THREAD * rayon::current_num_threads();
        let row_chunks = want.min(m.div_ceil(MIN_TASK_ROWS)).max(1);
        let rows_per_chunk = m.div_ceil(row_chunks).next_multiple_of(MR);
        let row_chunks = m.div_ceil(rows_per_chunk);
        let col_groups = want
            .div_ceil(row_chunks)
            .clamp(1, (panels / MIN_TASK_PANELS).max(1));
        let panels_per_group = panels.div_ceil(col_groups);
        let out = OutPtr(c.as_mut_ptr());
        (0..row_chunks * col_groups)
            .into_par_iter()
            .for_each(|task| {
                let (chunk, group) = (task / col_groups, task % col_groups);
                let r0 = chunk * rows_per_chunk;
                let r1 = (r0 + rows_per_chunk).min(m);
                let p0 = group * panels_per_group;
                let p1 = (p0 + panels_per_group).min(panels);
                if p0 < p1 {
                    // Blocks of at most MC rows, of even size.
                    let blocks = (r1 - r0).div_ceil(MC);
                    let step = (r1 - r0).div_ceil(blocks).next_multiple_of(MR);
                    for b0 in (r0..r1).step_by(step) {
                        // SAFETY: tasks write disjoint (row range, panel range) tiles of `c`,
                        // which outlives the parallel loop; AVX2/FMA were checked above.
                        unsafe { self.block_product(a, b0, step.min(r1 - b0), p0..p1, &out) };
                    }
                }
            });
        // SAFETY: every element of C was written above (see the allocation).
        unsafe { c.set_len(m * n) };
        c
    }

    /// Rows `r0..r0 + rows` of the product, over panels `panels`, written into `out`.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `out` must point at an `[M, N]` buffer (M >= r0 + rows)
    /// that no other thread writes in this tile.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_product(
        &self,
        a: &[f32],
        r0: usize,
        rows: usize,
        panels: std::ops::Range<usize>,
        out: &OutPtr,
    ) {
        let (n, k) = (self.n, self.k);
        let micro = rows.div_ceil(MR);
        let mut packed_a = vec![0.0f32; micro * MR * KC.min(k)];
        let mut pc = 0;
        while pc < k {
            let kc = KC.min(k - pc);
            pack_activations(a, k, r0, rows, pc, kc, &mut packed_a);
            for panel in panels.clone() {
                let b = self.rows[panel * k + pc..].as_ptr() as *const f32;
                let cols = NR.min(n - panel * NR);
                for i in 0..micro {
                    let row = r0 + i * MR;
                    let tile = Tile {
                        c: out.0.add(row * n + panel * NR),
                        ldc: n,
                        rows: MR.min(r0 + rows - row),
                        cols,
                        accumulate: pc > 0,
                    };
                    kernel_6x16(kc, packed_a.as_ptr().add(i * MR * kc), b, &tile);
                }
            }
            pc += kc;
        }
    }
}

/// The output pointer shared by the row-block tasks.
struct OutPtr(*mut f32);
// SAFETY: each task writes only its own tile (see `PackedMatrix::matmul`).
unsafe impl Sync for OutPtr {}

/// Where one register tile lands in C.
struct Tile {
    /// Top-left element.
    c: *mut f32,
    /// Row stride of C (elements).
    ldc: usize,
    /// Valid rows (<= MR) and columns (<= NR).
    rows: usize,
    cols: usize,
    /// Add to C instead of overwriting it (every K slice after the first).
    accumulate: bool,
}

/// Copies rows `r0..r0 + rows`, columns `pc..pc + kc` of `a [_, k]` into 6-row panels:
/// panel `i`, depth `p`, row `r` at `dst[i * 6 * kc + p * 6 + r]`, rows past the end zeroed.
fn pack_activations(
    a: &[f32],
    k: usize,
    r0: usize,
    rows: usize,
    pc: usize,
    kc: usize,
    dst: &mut [f32],
) {
    for i in 0..rows.div_ceil(MR) {
        let panel = &mut dst[i * MR * kc..(i + 1) * MR * kc];
        for r in 0..MR {
            let row = i * MR + r;
            if row < rows {
                let src = &a[(r0 + row) * k + pc..(r0 + row) * k + pc + kc];
                for (p, &v) in src.iter().enumerate() {
                    panel[p * MR + r] = v;
                }
            } else {
                for p in 0..kc {
                    panel[p * MR + r] = 0.0;
                }
            }
        }
    }
}

/// One 6x16 tile of C from a packed 6-row activation panel `a` and a packed weight panel `b`
/// (64-byte aligned), both `kc` deep.
///
/// # Safety
/// AVX2/FMA available; `a` holds `6 * kc` floats, `b` `16 * kc`; the tile lies inside C.
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_6x16(kc: usize, a: *const f32, b: *const f32, tile: &Tile) {
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for p in 0..kc {
        let b0 = _mm256_load_ps(b.add(p * NR));
        let b1 = _mm256_load_ps(b.add(p * NR + 8));
        let ap = a.add(p * MR);
        for (r, row) in acc.iter_mut().enumerate() {
            let x = _mm256_broadcast_ss(&*ap.add(r));
            row[0] = _mm256_fmadd_ps(x, b0, row[0]);
            row[1] = _mm256_fmadd_ps(x, b1, row[1]);
        }
    }
    if tile.rows == MR && tile.cols == NR {
        for (r, row) in acc.iter().enumerate() {
            let c = tile.c.add(r * tile.ldc);
            store(c, row[0], tile.accumulate);
            store(c.add(8), row[1], tile.accumulate);
        }
    } else {
        let mut tmp = [0.0f32; MR * NR];
        for (r, row) in acc.iter().enumerate() {
            _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR), row[0]);
            _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR + 8), row[1]);
        }
        for r in 0..tile.rows {
            for j in 0..tile.cols {
                let c = tile.c.add(r * tile.ldc + j);
                let v = tmp[r * NR + j];
                *c = if tile.accumulate { *c + v } else { v };
            }
        }
    }
}

/// Writes (or adds) eight lanes at `c`.
#[target_feature(enable = "avx2,fma")]
unsafe fn store(c: *mut f32, v: __m256, accumulate: bool) {
    let v = if accumulate {
        _mm256_add_ps(_mm256_loadu_ps(c), v)
    } else {
        v
    };
    _mm256_storeu_ps(c, v);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// The product in f64, row by row.
    fn reference(a: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f64> {
        let mut c = vec![0.0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|p| a[i * k + p] as f64 * w[j * k + p] as f64)
                    .sum();
            }
        }
        c
    }

    #[test]
    fn matches_the_f64_product_on_ragged_shapes() {
        if !available() {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // Edges: single elements, rows and columns short of a tile, K past one slice,
        // more than one row block, a row count that leaves a partial last block.
        for &(m, n, k) in &[
            (1, 1, 1),
            (5, 15, 3),
            (6, 16, 768),
            (7, 17, 769),
            (13, 40, 300),
            (97, 33, 1600),
            (200, 65, 513),
            (1, 200, 64),
            (1300, 20, 40),
        ] {
            let a = random(m * k, &mut rng);
            let w = random(n * k, &mut rng);
            let packed = PackedMatrix::pack(&w, n, k);
            let got = packed.matmul(&a, m);
            let want = reference(&a, &w, m, n, k);
            for (idx, (&g, &e)) in got.iter().zip(&want).enumerate() {
                let tol = 1e-5 * (k as f64).sqrt().max(1.0);
                assert!(
                    (g as f64 - e).abs() <= tol,
                    "m={m} n={n} k={k} element {idx}: {g} vs {e}"
                );
            }
        }
    }

    #[test]
    fn empty_inputs_give_empty_or_zero_outputs() {
        if !available() {
            return;
        }
        let packed = PackedMatrix::pack(&[1.0, 2.0], 1, 2);
        assert!(packed.matmul(&[], 0).is_empty());
        let zero_k = PackedMatrix::pack(&[], 3, 0);
        assert_eq!(zero_k.matmul(&[], 2), vec![0.0; 6]);
    }
}
