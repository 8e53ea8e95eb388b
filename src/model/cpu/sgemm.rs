//! Matrix product against a right-hand side packed once, for the CPU path of the model's
//! projections: `C [M, N] = A [M, K] · W [N, K]ᵀ`, `W` being a Linear weight, in f32 or with bf16
//! products summed in f32.
//!
//! Weights are constant for the life of a model, so they are packed at load time into column
//! panels as wide as the kernel's register tile and no call repacks them. The f32 kernels read
//! the activations in place, row by row; bf16 products (and f32 kernels fed bf16-rounded values)
//! pack them into row panels per 768-deep slice of K. The register tile runs over 768-deep
//! slices; row blocks (and, for short inputs, column groups) are spread over rayon's threads.
//! Four kernels, chosen from the CPU's features ([`Kernel::choose`]):
//! - [`Kernel::Avx2`]: f32, a 6x16 AVX2/FMA tile;
//! - [`Kernel::Avx512`]: f32, a 12x32 AVX-512 tile. Each element of C is the same chain of fused
//!   multiply-adds in the same order as in the AVX2 kernel, so both give the same bits;
//! - [`Kernel::Avx512Bf16`]: bf16, a 12x32 tile of VDPBF16PS (pairs of bf16 products added to f32
//!   sums). Without those instructions, bf16 products run on an f32 kernel with inputs and weights
//!   rounded to bf16 first: the products of two bf16 numbers are exact in f32, so only the order
//!   of the sums differs;
//! - [`Kernel::AmxBf16`]: bf16, a 32x32 tile on AMX's tile registers ([`super::amx`]), preferred
//!   to VDPBF16PS where the CPU has both (on Intel, VDPBF16PS runs at half the f32 FMA's rate).

use std::arch::x86_64::{
    __m256, __m512, __m512bh, __m512i, __mmask16, _mm256_add_ps, _mm256_broadcast_ss,
    _mm256_fmadd_ps, _mm256_load_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    _mm512_add_ps, _mm512_cvtne2ps_pbh, _mm512_dpbf16_ps, _mm512_load_si512, _mm512_loadu_ps,
    _mm512_maskz_loadu_ps, _mm512_set1_epi32, _mm512_setzero_ps, _mm512_storeu_ps,
    _mm512_storeu_si512,
};

use rayon::prelude::*;

use super::amx;
use super::avx512_f32;
use super::tile::{Tile, MAX_TILE};
use crate::model::cpu::features::{bf16_bits, round_to_bf16, CpuFeatures};

/// Depth of one K slice (even, so bf16 pairs never straddle two): the default model's 576-wide
/// inputs take one slice, so each C tile is written once. Measured against 256 with
/// benches/sgemm.rs: about 10% faster at 1024 rows.
pub(crate) const KC: usize = 768;
/// Most rows of one packed activation block (a multiple of every kernel's tile height).
const MC: usize = 144;
/// Fewest register tiles of rows a task takes, so small inputs split by columns instead.
const MIN_TASK_TILES: usize = 4;
/// Fewest weight panels a task takes: repacking a task's activations must stay cheap next to
/// the products over its panels.
const MIN_TASK_PANELS: usize = 4;
/// Weights larger than this (bytes) are streamed from memory: [`PackedMatrix::for_each_task`]
/// splits their products by columns only.
const STREAMED_WEIGHT_BYTES: usize = 8 << 20;
/// Bytes of weight panels a task of a streamed weight runs over all its rows before the next
/// ones: they stay in L2 while the row blocks pass.
const CACHED_PANEL_BYTES: usize = 512 << 10;
/// Tasks per rayon thread: enough that a short last task or a busy core costs little.
const TASKS_PER_THREAD: usize = 4;

/// The register kernel a packed matrix runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// f32 products, a 6x16 AVX2/FMA tile.
    Avx2,
    /// f32 products, a 12x32 AVX-512 tile (the same bits as [`Kernel::Avx2`]).
    Avx512,
    /// bf16 products summed in f32, a 12x32 AVX512-BF16 tile.
    Avx512Bf16,
    /// bf16 products summed in f32, a 32x32 tile of four AMX accumulator tiles (the weights
    /// packed as for [`Kernel::Avx512Bf16`]).
    AmxBf16,
}

impl Kernel {
    /// Every kernel, narrowest first.
    pub const ALL: [Kernel; 4] = [
        Kernel::Avx2,
        Kernel::Avx512,
        Kernel::Avx512Bf16,
        Kernel::AmxBf16,
    ];

    /// The fastest kernel `features` allow for f32 products (`bf16` false) or bf16 products:
    /// bf16 runs on AMX tiles, else on AVX512-BF16, else on an f32 kernel fed bf16-rounded
    /// values; `None` where the CPU lacks AVX2/FMA.
    pub fn choose(features: CpuFeatures, bf16: bool) -> Option<Kernel> {
        if bf16 && features.amx_bf16 {
            Some(Kernel::AmxBf16)
        } else if bf16 && features.avx512_bf16 {
            Some(Kernel::Avx512Bf16)
        } else if features.avx512f {
            Some(Kernel::Avx512)
        } else if features.avx2_fma {
            Some(Kernel::Avx2)
        } else {
            None
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn runs_here(self) -> bool {
        Kernel::choose(CpuFeatures::detect(), self.bf16_products())
            .is_some_and(|best| best.width() >= self.width())
    }

    /// Whether the kernel multiplies bf16 pairs (else f32 values, perhaps rounded to bf16).
    fn bf16_products(self) -> bool {
        matches!(self, Kernel::Avx512Bf16 | Kernel::AmxBf16)
    }

    /// How wide a kernel is, for [`Kernel::runs_here`]: each needs what the narrower ones do.
    fn width(self) -> u8 {
        match self {
            Kernel::Avx2 => 1,
            Kernel::Avx512 => 2,
            Kernel::Avx512Bf16 => 3,
            Kernel::AmxBf16 => 4,
        }
    }

    /// Rows and columns of the register tile, and depth values per packed word (1 f32, or a
    /// pair of bf16).
    fn shape(self) -> (usize, usize, usize) {
        match self {
            Kernel::Avx2 => (6, 16, 1),
            Kernel::Avx512 => (12, 32, 1),
            Kernel::Avx512Bf16 => (12, 32, 2),
            Kernel::AmxBf16 => (amx::MR, amx::NR, 2),
        }
    }

    /// Packed words per row of `depth` values: whole AMX steps for the AMX kernel (zero-padded),
    /// else one per value or pair.
    fn words(self, depth: usize) -> usize {
        let (_, _, pair) = self.shape();
        match self {
            Kernel::AmxBf16 => depth.div_ceil(pair).next_multiple_of(amx::STEP),
            _ => depth.div_ceil(pair),
        }
    }
}

/// What [`PackedMatrix::gated_matmul`] makes of a tile's gate and up values for one row:
/// `(out, gate, up, first column)`, all three slices of one length.
pub type Combine<'a> = dyn Fn(&mut [f32], &[f32], &[f32], usize) + Sync + 'a;

/// 64 bytes of a packed weight panel (16 words), aligned to a cache line.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u32; 16]);

/// A `[N, K]` matrix packed for one [`Kernel`]: ceil(N / NR) panels, each ceil(K / pair) rows of
/// NR words (f32 values, or bf16 pairs with the lower depth in the low half), zero-padded.
pub struct PackedMatrix {
    kernel: Kernel,
    /// Round activations (and, at packing, weights) to bf16 before an f32 kernel multiplies them.
    round_bf16: bool,
    n: usize,
    k: usize,
    lines: Vec<Line>,
}

impl PackedMatrix {
    /// Packs the row-major `w [n, k]` (a Linear weight: output features by input features) for
    /// `kernel`, with bf16 products when `bf16` (always so for the bf16 kernels).
    pub fn pack(w: &[f32], n: usize, k: usize, kernel: Kernel, bf16: bool) -> PackedMatrix {
        assert_eq!(w.len(), n * k, "weight length is not n * k");
        let (_, nr, _) = kernel.shape();
        let round_bf16 = bf16 && !kernel.bf16_products();
        let depth = kernel.words(k);
        let panel_lines = depth * nr / 16;
        let mut lines = vec![Line([0; 16]); n.div_ceil(nr) * panel_lines];
        // Panels in parallel: the default model's unembedding (49k rows) is packed when the
        // first readout asks for it.
        lines
            .par_chunks_mut(panel_lines.max(1))
            .enumerate()
            .for_each(|(panel, panel_lines)| {
                let columns = nr.min(n - panel * nr);
                for col in 0..columns {
                    let w_row = &w[(panel * nr + col) * k..(panel * nr + col + 1) * k];
                    for q in 0..depth {
                        let word = q * nr + col;
                        panel_lines[word / 16].0[word % 16] =
                            packed_word(kernel, w_row, q, round_bf16);
                    }
                }
            });
        PackedMatrix {
            kernel,
            round_bf16,
            n,
            k,
            lines,
        }
    }

    /// Output features N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input features K.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The kernel this matrix was packed for.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// `a [m, K]` row-major times this matrix transposed: `[m, N]` row-major.
    pub fn matmul(&self, a: &[f32], m: usize) -> Vec<f32> {
        self.check_input(a, m);
        let n = self.n;
        if m == 0 || n == 0 || self.k == 0 {
            return vec![0.0; m * n];
        }
        // Left uninitialised: the first K slice of every task overwrites each element of its
        // tiles, and the tiles cover C.
        let mut c: Vec<f32> = Vec::with_capacity(m * n);
        let out = OutPtr(c.as_mut_ptr());
        self.for_each_task(m, |rows, panels| {
            // SAFETY: tasks write disjoint (row range, panel range) tiles of `c`, which outlives
            // the parallel loop; the kernel runs here (checked above).
            unsafe { self.block_product(a, rows, panels, &out, n, 0) }
        });
        // SAFETY: every element of C was written above (see the allocation).
        unsafe { c.set_len(m * n) };
        c
    }

    /// `visit(columns, block)` for each block of `cols` consecutive columns of `a [m, K]` times
    /// this matrix transposed (the last block narrower when `cols` does not divide N), `block`
    /// being those columns of all m rows, `[m, columns.len()]` row-major; returns the visits'
    /// results in column order. The `[m, N]` product is never written out: each block lands in
    /// a scratch buffer of its thread (the readout's logits, reduced as they come). The values
    /// are those of [`PackedMatrix::matmul`], bit for bit. `cols` must be a multiple of the
    /// kernel's tile width (a multiple of 32 serves every kernel).
    pub fn column_blocks<T: Send>(
        &self,
        a: &[f32],
        m: usize,
        cols: usize,
        visit: impl Fn(std::ops::Range<usize>, &[f32]) -> T + Sync,
    ) -> Vec<T> {
        self.check_input(a, m);
        let (mr, nr, _) = self.kernel.shape();
        assert!(
            cols > 0 && cols.is_multiple_of(nr),
            "column blocks of {cols} for tiles {nr} wide"
        );
        let step = MC.next_multiple_of(mr);
        (0..self.n.div_ceil(cols))
            .into_par_iter()
            .map(|b| {
                let columns = b * cols..((b + 1) * cols).min(self.n);
                let width = columns.len();
                BLOCK_OUTPUT.with_borrow_mut(|block| {
                    block.clear();
                    if self.k == 0 {
                        block.resize(m * width, 0.0);
                        return visit(columns, block);
                    }
                    block.reserve(m * width);
                    let out = OutPtr(block.as_mut_ptr());
                    let panels = columns.start / nr..columns.end.div_ceil(nr);
                    for r0 in (0..m).step_by(step) {
                        let rows = r0..(r0 + step).min(m);
                        // SAFETY: the block buffer holds m rows of `width` columns; the kernel
                        // runs here (checked above).
                        unsafe {
                            self.block_product(a, rows, panels.clone(), &out, width, columns.start)
                        };
                    }
                    // SAFETY: the tiles cover every element of the block (as in `matmul`).
                    unsafe { block.set_len(m * width) };
                    visit(columns, block)
                })
            })
            .collect()
    }

    /// `combine(a Gᵀ, a Uᵀ)` without either product written out: `self` is the gate `G [N, K]`,
    /// `up` the up projection `U [N, K]` packed for the same kernel. For each register
    /// tile, both products run over the whole depth, then `combine(out, g, u, col)` writes
    /// `out[j] = f(g[j], u[j])` for the tile's part of one row, its first column being `col`.
    /// Returns `[m, N]` row-major.
    pub fn gated_matmul(
        &self,
        up: &PackedMatrix,
        a: &[f32],
        m: usize,
        combine: &Combine<'_>,
    ) -> Vec<f32> {
        assert!(
            up.kernel == self.kernel
                && up.round_bf16 == self.round_bf16
                && (up.n, up.k) == (self.n, self.k),
            "gate and up packed differently"
        );
        self.check_input(a, m);
        let n = self.n;
        if m == 0 || n == 0 {
            return vec![0.0; m * n];
        }
        // Left uninitialised, as in `matmul`: the tiles cover C and each is copied in whole.
        let mut c: Vec<f32> = Vec::with_capacity(m * n);
        let out = OutPtr(c.as_mut_ptr());
        self.for_each_task(m, |rows, panels| {
            // SAFETY: as in `matmul`.
            unsafe { self.gated_block(up, a, rows, panels, &out, combine) }
        });
        // SAFETY: every element of C was written above.
        unsafe { c.set_len(m * n) };
        c
    }

    /// Panics unless the kernel runs here and `a` holds `m` rows of K.
    fn check_input(&self, a: &[f32], m: usize) {
        assert!(
            self.kernel.runs_here(),
            "{:?} kernel on a CPU without it",
            self.kernel
        );
        assert_eq!(a.len(), m * self.k, "activation length is not m * K");
    }

    /// Runs `block(rows, panels)` over the blocks of at most [`MC`] rows (whole register tiles)
    /// and groups of weight panels that split an `m`-row product over rayon's threads into about
    /// [`TASKS_PER_THREAD`] tasks each: a chunk of rows per thread (per task for kernels that
    /// pack their rows; fewer for short inputs), each chunk's panels in groups for the rest.
    fn for_each_task(
        &self,
        m: usize,
        block: impl Fn(std::ops::Range<usize>, std::ops::Range<usize>) + Sync,
    ) {
        let (mr, nr, _) = self.kernel.shape();
        let panels = self.n.div_ceil(nr);
        let threads = rayon::current_num_threads();
        let want = TASKS_PER_THREAD * threads;
        let panel_bytes = (self.kernel.words(self.k) * nr * 4).max(1);
        // A weight too large for the caches (the unembedding) is split by columns only, and each
        // task runs a few panels over all its rows before the next: every panel then comes from
        // memory once, not once per row chunk. Only where rows are read in place: kernels that
        // pack the activations would pack them again for every few panels.
        let in_place = self.reads_rows();
        let streamed = in_place && panels * panel_bytes > STREAMED_WEIGHT_BYTES;
        // Kernels reading rows in place take at most one row chunk per thread, the columns
        // split for the rest, so that a thread's tasks share its rows (measured on a 2-core Xeon
        // against a chunk per task: BoolQ +4-8 %, PIQA +9-11 %, the projection products at
        // 128-1024 rows -2 % to +19 %); kernels that pack rows would pack them once per column
        // group, so they split rows first.
        let chunks = match in_place {
            true => threads,
            false => want,
        };
        let row_chunks = match streamed {
            true => 1,
            false => chunks.min(m.div_ceil(MIN_TASK_TILES * mr)).max(1),
        };
        let rows_per_chunk = m.div_ceil(row_chunks).next_multiple_of(mr);
        let row_chunks = m.div_ceil(rows_per_chunk);
        let col_groups = want
            .div_ceil(row_chunks)
            .clamp(1, (panels / MIN_TASK_PANELS).max(1));
        let panels_per_group = panels.div_ceil(col_groups);
        let panels_per_pass = match streamed {
            true => (CACHED_PANEL_BYTES / panel_bytes).max(1),
            false => panels_per_group,
        };
        (0..row_chunks * col_groups)
            .into_par_iter()
            .for_each(|task| {
                let (chunk, group) = (task / col_groups, task % col_groups);
                let r0 = chunk * rows_per_chunk;
                let r1 = (r0 + rows_per_chunk).min(m);
                let p0 = group * panels_per_group;
                let p1 = (p0 + panels_per_group).min(panels);
                // Blocks of at most MC rows, of even size.
                let blocks = (r1 - r0).div_ceil(MC);
                let step = (r1 - r0).div_ceil(blocks).next_multiple_of(mr);
                for q0 in (p0..p1).step_by(panels_per_pass) {
                    let q1 = (q0 + panels_per_pass).min(p1);
                    for b0 in (r0..r1).step_by(step) {
                        block(b0..(b0 + step).min(r1), q0..q1);
                    }
                }
            });
    }

    /// Rows `rows` of the product, over panels `panels`, written into `out`: element (row, col)
    /// at `row * ldc + col - first_col`.
    ///
    /// # Safety
    /// The CPU must run `self.kernel`; `out` must point at a buffer holding those elements for
    /// every row below `rows.end` and column of `panels` (from `first_col`), that no other
    /// thread writes in this tile.
    unsafe fn block_product(
        &self,
        a: &[f32],
        rows: std::ops::Range<usize>,
        panels: std::ops::Range<usize>,
        out: &OutPtr,
        ldc: usize,
        first_col: usize,
    ) {
        let (n, k) = (self.n, self.k);
        let (mr, nr, pair) = self.kernel.shape();
        let depth = self.kernel.words(k);
        let micro = rows.len().div_ceil(mr);
        let _tiles = AmxTiles::configure(self.kernel);
        PACKED_ACTIVATIONS.with_borrow_mut(|packed_a| {
            let words = self.lines.as_ptr() as *const u32;
            let mut pc = 0;
            while pc < k {
                let kc = KC.min(k - pc);
                let kq = self.kernel.words(kc);
                let staged = self.stage_activations(a, rows.clone(), pc, kc, packed_a);
                for panel in panels.clone() {
                    let b = words.add((panel * depth + pc / pair) * nr);
                    let cols = nr.min(n - panel * nr);
                    for i in 0..micro {
                        let row = rows.start + i * mr;
                        let tile = Tile {
                            c: out.0.add(row * ldc + panel * nr - first_col),
                            ldc,
                            rows: mr.min(rows.end - row),
                            cols,
                            accumulate: pc > 0,
                        };
                        self.tile(kq, staged.lhs(i), b, &tile);
                    }
                }
                pc += kc;
            }
        });
    }

    /// [`PackedMatrix::gated_matmul`] for rows `rows` and panels `panels`: activations packed
    /// once for the whole depth, each gate tile and up tile into scratch, then `combine` row by
    /// row into scratch, copied into `out`.
    ///
    /// # Safety
    /// As [`PackedMatrix::block_product`]; `up` packed like `self`.
    unsafe fn gated_block(
        &self,
        up: &PackedMatrix,
        a: &[f32],
        rows: std::ops::Range<usize>,
        panels: std::ops::Range<usize>,
        out: &OutPtr,
        combine: &Combine<'_>,
    ) {
        let (n, k) = (self.n, self.k);
        let (mr, nr, _) = self.kernel.shape();
        let kq = self.kernel.words(k);
        let micro = rows.len().div_ceil(mr);
        let mut gate_tile = [0.0f32; MAX_TILE];
        let mut up_tile = [0.0f32; MAX_TILE];
        let mut combined = [0.0f32; MAX_TILE];
        let scratch = |t: &mut [f32; MAX_TILE]| Tile {
            c: t.as_mut_ptr(),
            ldc: nr,
            rows: mr,
            cols: nr,
            accumulate: false,
        };
        let _tiles = AmxTiles::configure(self.kernel);
        PACKED_ACTIVATIONS.with_borrow_mut(|packed_a| {
            let staged = self.stage_activations(a, rows.clone(), 0, k, packed_a);
            let (gate_words, up_words) = (
                self.lines.as_ptr() as *const u32,
                up.lines.as_ptr() as *const u32,
            );
            for panel in panels {
                let col = panel * nr;
                let cols = nr.min(n - col);
                for i in 0..micro {
                    let row = rows.start + i * mr;
                    // Rows past the end (zero in the packed panels) are computed, not used.
                    let lhs = staged.lhs(i);
                    self.tile(
                        kq,
                        lhs,
                        gate_words.add(panel * kq * nr),
                        &scratch(&mut gate_tile),
                    );
                    self.tile(
                        kq,
                        lhs,
                        up_words.add(panel * kq * nr),
                        &scratch(&mut up_tile),
                    );
                    for r in 0..mr.min(rows.end - row) {
                        let at = r * nr..r * nr + cols;
                        let combined = &mut combined[..cols];
                        combine(combined, &gate_tile[at.clone()], &up_tile[at], col);
                        let dst = out.0.add((row + r) * n + col);
                        std::ptr::copy_nonoverlapping(combined.as_ptr(), dst, cols);
                    }
                }
            }
        });
    }

    /// One register tile: `kq` words of the activations `a` against the weight panel `b`, into
    /// `tile`.
    ///
    /// # Safety
    /// The CPU must run `self.kernel`; `a` and `b` hold `kq` words per row and column of the
    /// kernel's tile (`a` packed for the bf16 kernel); the tile lies inside its buffer.
    #[inline(always)]
    unsafe fn tile(&self, kq: usize, a: Lhs, b: *const u32, tile: &Tile) {
        match (self.kernel, a) {
            (Kernel::Avx2, a) => f32_6x16(kq, &a.rows(), b as *const f32, tile),
            (Kernel::Avx512, a) => f32_12x32(kq, a, b as *const f32, tile),
            (Kernel::Avx512Bf16, Lhs::Packed(a)) => bf16_12x32(kq, a, b, tile),
            (Kernel::AmxBf16, Lhs::Packed(a)) => amx::tile_32x32(kq, a, b, tile),
            (Kernel::Avx512Bf16 | Kernel::AmxBf16, Lhs::Rows { .. }) => {
                unreachable!("bf16 products read packed activations")
            }
        }
    }

    /// Makes ready what the tiles of rows `rows`, depths `pc..pc + kc` of `a [_, K]` read: for
    /// kernels that read rows in place, only a partial last tile is packed (at the start of
    /// `packed`, zero-padded), else every tile is.
    fn stage_activations(
        &self,
        a: &[f32],
        rows: std::ops::Range<usize>,
        pc: usize,
        kc: usize,
        packed: &mut Vec<u32>,
    ) -> StagedActivations {
        let (mr, _, _) = self.kernel.shape();
        let kq = self.kernel.words(kc);
        let in_place = match self.reads_rows() {
            true => rows.len() / mr,
            false => 0,
        };
        let first_packed = rows.start + in_place * mr;
        packed.resize((rows.end - first_packed).div_ceil(mr) * mr * kq, 0);
        if first_packed < rows.end {
            self.pack_activations(a, first_packed..rows.end, pc, kc, packed);
        }
        StagedActivations {
            rows: a[rows.start * self.k + pc..].as_ptr(),
            ld: self.k,
            in_place,
            packed: packed.as_ptr(),
            panel_words: mr * kq,
            mr,
        }
    }

    /// Whether the kernel reads the activations in place, row by row (f32 products of unrounded
    /// values), instead of from packed panels: packing them took 5 % of an f32 pass, and a tile's
    /// rows stay in L1 across its depth either way.
    fn reads_rows(&self) -> bool {
        !self.kernel.bf16_products() && !self.round_bf16
    }

    /// Copies rows `rows`, depths `pc..pc + kc` of `a [_, K]` into tile-high panels of
    /// packed words: panel `i`, word `q`, row `r` at `dst[(i * kq + q) * MR + r]`, rows past the
    /// end zeroed.
    fn pack_activations(
        &self,
        a: &[f32],
        rows: std::ops::Range<usize>,
        pc: usize,
        kc: usize,
        dst: &mut [u32],
    ) {
        let (mr, _, _) = self.kernel.shape();
        let (k, kq) = (self.k, self.kernel.words(kc));
        let (r0, rows) = (rows.start, rows.len());
        for i in 0..rows.div_ceil(mr) {
            let panel = &mut dst[i * mr * kq..(i + 1) * mr * kq];
            let valid = mr.min(rows - i * mr);
            let first = (r0 + i * mr) * k + pc;
            let block = &a[first..first + (valid - 1) * k + kc];
            match (self.kernel, self.round_bf16) {
                // SAFETY: the kernel runs here (checked by `matmul`), so AVX512-BF16 does.
                (Kernel::Avx512Bf16, _) => unsafe { bf16_panel(block, k, valid, kc, panel) },
                // SAFETY: as above; the AMX kernel runs where AVX512-BF16 does.
                (Kernel::AmxBf16, _) => unsafe { amx::pack_panel(block, k, valid, kc, kq, panel) },
                (_, true) => f32_panel(block, k, valid, kc, mr, panel, |x| {
                    round_to_bf16(x).to_bits()
                }),
                (_, false) => f32_panel(block, k, valid, kc, mr, panel, f32::to_bits),
            }
        }
    }
}

/// One f32 kernel's activation panel: word `q * mr + r` = `word(block[r * k + q])` for the
/// `valid` rows of `block` (rows `k` apart, `kc` deep), zero for rows `valid..mr`. Written in
/// order, reading the rows side by side.
#[inline(always)]
fn f32_panel(
    block: &[f32],
    k: usize,
    valid: usize,
    kc: usize,
    mr: usize,
    panel: &mut [u32],
    word: impl Fn(f32) -> u32,
) {
    for (q, out) in panel.chunks_exact_mut(mr).take(kc).enumerate() {
        for (r, slot) in out.iter_mut().enumerate() {
            *slot = if r < valid { word(block[r * k + q]) } else { 0 };
        }
    }
}

/// The bf16 kernel's activation panel (12 rows): word `q * 12 + r` holds depths 2q and 2q + 1 of
/// row `r` of `block` (rows `k` apart, `kc` deep) rounded to bf16 with VCVTNE2PS2BF16, the odd
/// one in the high half, zero past the end and for rows `valid..12`. Ties go to even as in
/// [`bf16_bits`]; subnormal inputs become zero, as VDPBF16PS would treat them anyway. Each
/// 32-deep chunk is rounded row by row into registers' worth of words, then written in order.
///
/// # Safety
/// AVX512-BF16 available.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn bf16_panel(block: &[f32], k: usize, valid: usize, kc: usize, panel: &mut [u32]) {
    const MR: usize = 12;
    let lanes = |count: usize| -> __mmask16 { ((1u32 << count.min(16)) - 1) as __mmask16 };
    let mut words = [[0u32; 16]; MR];
    for c in 0..kc.div_ceil(32) {
        let depth = 32.min(kc - c * 32);
        for (r, row_words) in words.iter_mut().enumerate().take(valid) {
            let src = block[r * k + c * 32..].as_ptr();
            let low = _mm512_maskz_loadu_ps(lanes(depth), src);
            let high = _mm512_maskz_loadu_ps(lanes(depth.saturating_sub(16)), src.wrapping_add(16));
            let pairs: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
            _mm512_storeu_si512(row_words.as_mut_ptr().cast(), pairs);
        }
        let chunk = &mut panel[c * 16 * MR..(c * 16 + depth.div_ceil(2)) * MR];
        for (j, out) in chunk.chunks_exact_mut(MR).enumerate() {
            for (r, slot) in out.iter_mut().enumerate() {
                *slot = if r < valid { words[r][j] } else { 0 };
            }
        }
    }
}

/// Word `q` of a row of depths `src` as `kernel` reads it: the f32 value (rounded to bf16 when
/// `round_bf16`), or the bf16 pair of depths 2q and 2q + 1 (zero past the end).
fn packed_word(kernel: Kernel, src: &[f32], q: usize, round_bf16: bool) -> u32 {
    match kernel {
        Kernel::Avx512Bf16 | Kernel::AmxBf16 if 2 * q >= src.len() => 0,
        Kernel::Avx512Bf16 | Kernel::AmxBf16 => {
            let low = bf16_bits(src[2 * q]) as u32;
            let high = src.get(2 * q + 1).map_or(0, |&x| bf16_bits(x) as u32);
            low | (high << 16)
        }
        Kernel::Avx2 | Kernel::Avx512 if round_bf16 => round_to_bf16(src[q]).to_bits(),
        Kernel::Avx2 | Kernel::Avx512 => src[q].to_bits(),
    }
}

/// The AMX tile configuration of one task, loaded on this thread while it lives (for the AMX
/// kernel only) and released when it drops.
struct AmxTiles(bool);

impl AmxTiles {
    /// Configures the tiles when `kernel` is [`Kernel::AmxBf16`] (which runs here: checked by
    /// the product's entry points).
    fn configure(kernel: Kernel) -> AmxTiles {
        let on = kernel == Kernel::AmxBf16;
        if on {
            // SAFETY: the AMX kernel runs here, so the tiles were granted.
            unsafe { amx::configure() };
        }
        AmxTiles(on)
    }
}

impl Drop for AmxTiles {
    fn drop(&mut self) {
        if self.0 {
            // SAFETY: configured in `configure`, on this thread.
            unsafe { amx::release() };
        }
    }
}

thread_local! {
    /// Each thread's packed activation panels, kept between calls: allocating them afresh
    /// (about 200 KiB) made every call fault in new zeroed pages.
    static PACKED_ACTIVATIONS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Each thread's block of [`PackedMatrix::column_blocks`], kept between blocks and calls.
    static BLOCK_OUTPUT: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The output pointer shared by the row-block tasks.
struct OutPtr(*mut f32);
// SAFETY: each task writes only its own tile (see `PackedMatrix::matmul`).
unsafe impl Sync for OutPtr {}

/// Where a register tile's activations are.
#[derive(Clone, Copy)]
enum Lhs {
    /// A packed panel: word `q * MR + r` is row `r`, depth word `q`.
    Packed(*const u32),
    /// A whole tile's rows of f32 in place: row `r` at `first + r * ld`.
    Rows { first: *const f32, ld: usize },
}

/// A block of rows made ready for its tiles by [`PackedMatrix::stage_activations`].
struct StagedActivations {
    /// The block's first row (at its K slice) in the input.
    rows: *const f32,
    /// Row stride of the input.
    ld: usize,
    /// Tiles read in place (the first ones); the rest are packed.
    in_place: usize,
    /// The packed panels, the first for tile `in_place`.
    packed: *const u32,
    /// Words per packed panel.
    panel_words: usize,
    /// Rows per tile.
    mr: usize,
}

impl StagedActivations {
    /// Where tile `i` (of the block) reads its activations.
    fn lhs(&self, i: usize) -> Lhs {
        match i < self.in_place {
            true => Lhs::Rows {
                first: self.rows.wrapping_add(i * self.mr * self.ld),
                ld: self.ld,
            },
            false => Lhs::Packed(
                self.packed
                    .wrapping_add((i - self.in_place) * self.panel_words),
            ),
        }
    }
}

impl Lhs {
    /// Pointers to the `MR` rows of an f32 tile and the step between depths.
    ///
    /// # Safety
    /// As the tile kernels ask of `a`.
    #[inline(always)]
    unsafe fn rows<const MR: usize>(self) -> LhsRows<MR> {
        match self {
            Lhs::Packed(panel) => LhsRows {
                rows: std::array::from_fn(|r| (panel as *const f32).add(r)),
                step: MR,
            },
            Lhs::Rows { first, ld } => LhsRows {
                rows: std::array::from_fn(|r| first.add(r * ld)),
                step: 1,
            },
        }
    }
}

/// An f32 tile's activations: depth `p` of row `r` at `rows[r] + p * step`.
struct LhsRows<const MR: usize> {
    rows: [*const f32; MR],
    step: usize,
}

/// One 6x16 f32 tile of C from 6 activation rows `a` and a packed weight panel `b` (64-byte
/// aligned), both `kc` deep.
///
/// # Safety
/// AVX2/FMA available; `a`'s rows hold `kc` values, `b` `16 * kc`; the tile lies inside C.
#[target_feature(enable = "avx2,fma")]
unsafe fn f32_6x16(kc: usize, a: &LhsRows<6>, b: *const f32, tile: &Tile) {
    const MR: usize = 6;
    const NR: usize = 16;
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for p in 0..kc {
        let b0 = _mm256_load_ps(b.add(p * NR));
        let b1 = _mm256_load_ps(b.add(p * NR + 8));
        let at = p * a.step;
        for (r, row) in acc.iter_mut().enumerate() {
            let x = _mm256_broadcast_ss(&*a.rows[r].add(at));
            row[0] = _mm256_fmadd_ps(x, b0, row[0]);
            row[1] = _mm256_fmadd_ps(x, b1, row[1]);
        }
    }
    if tile.rows == MR && tile.cols == NR {
        for (r, row) in acc.iter().enumerate() {
            let c = tile.c.add(r * tile.ldc);
            store8(c, row[0], tile.accumulate);
            store8(c.add(8), row[1], tile.accumulate);
        }
    } else {
        let mut tmp = [0.0f32; MAX_TILE];
        for (r, row) in acc.iter().enumerate() {
            _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR), row[0]);
            _mm256_storeu_ps(tmp.as_mut_ptr().add(r * NR + 8), row[1]);
        }
        tile.store_partial(&tmp, NR);
    }
}

/// Writes (or adds) eight lanes at `c`.
#[target_feature(enable = "avx2,fma")]
unsafe fn store8(c: *mut f32, v: __m256, accumulate: bool) {
    let v = if accumulate {
        _mm256_add_ps(_mm256_loadu_ps(c), v)
    } else {
        v
    };
    _mm256_storeu_ps(c, v);
}

/// One 12x32 f32 tile of C from 12 activation rows `a` and a packed 32-column weight panel `b`
/// (64-byte aligned), both `kc` deep, on the assembly tile of [`avx512_f32`].
///
/// # Safety
/// AVX-512F available; `a`'s rows hold `kc` values, `b` `32 * kc`; the tile lies inside C.
#[target_feature(enable = "avx512f")]
unsafe fn f32_12x32(kc: usize, a: Lhs, b: *const f32, tile: &Tile) {
    const MR: usize = 12;
    let acc = match a {
        Lhs::Packed(panel) => avx512_f32::tile_12x32::<{ MR * 4 }>(kc, panel.cast(), 4, b),
        Lhs::Rows { first, ld } => avx512_f32::tile_12x32::<4>(kc, first, ld * 4, b),
    };
    store_12x32(&acc, tile);
}

/// One 12x32 tile of C from bf16 pairs: a packed 12-row activation panel `a` and a packed
/// 32-column weight panel `b` (64-byte aligned), both `kq` pairs deep.
///
/// # Safety
/// AVX-512F and AVX512-BF16 available; `a` holds `12 * kq` words, `b` `32 * kq`; the tile lies
/// inside C.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn bf16_12x32(kq: usize, a: *const u32, b: *const u32, tile: &Tile) {
    const MR: usize = 12;
    const NR: usize = 32;
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for q in 0..kq {
        let b0: __m512bh = std::mem::transmute(_mm512_load_si512(b.add(q * NR).cast()));
        let b1: __m512bh = std::mem::transmute(_mm512_load_si512(b.add(q * NR + 16).cast()));
        let aq = a.add(q * MR);
        for (r, row) in acc.iter_mut().enumerate() {
            let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(*aq.add(r) as i32));
            row[0] = _mm512_dpbf16_ps(row[0], x, b0);
            row[1] = _mm512_dpbf16_ps(row[1], x, b1);
        }
    }
    store_12x32(&acc, tile);
}

/// Writes (or adds) a 12x32 accumulator tile into C.
///
/// # Safety
/// AVX-512F available; the tile's valid part lies inside C.
#[inline(always)]
unsafe fn store_12x32(acc: &[[__m512; 2]; 12], tile: &Tile) {
    const NR: usize = 32;
    if tile.rows == acc.len() && tile.cols == NR {
        for (r, row) in acc.iter().enumerate() {
            let c = tile.c.add(r * tile.ldc);
            for (half, &v) in row.iter().enumerate() {
                let c = c.add(half * 16);
                let v = if tile.accumulate {
                    _mm512_add_ps(_mm512_loadu_ps(c), v)
                } else {
                    v
                };
                _mm512_storeu_ps(c, v);
            }
        }
    } else {
        let mut tmp = [0.0f32; MAX_TILE];
        for (r, row) in acc.iter().enumerate() {
            _mm512_storeu_ps(tmp.as_mut_ptr().add(r * NR), row[0]);
            _mm512_storeu_ps(tmp.as_mut_ptr().add(r * NR + 16), row[1]);
        }
        tile.store_partial(&tmp, NR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Edges: single elements, rows and columns short of a tile, odd K, K past one slice, more
    /// than one row block, a row count that leaves a partial last block.
    const SHAPES: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (5, 15, 3),
        (6, 16, 768),
        (7, 17, 769),
        (13, 40, 300),
        (97, 33, 1600),
        (200, 65, 513),
        (1, 200, 64),
        (1300, 20, 40),
    ];

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

    /// Offset of row `r`, word `q` in `kernel`'s packed activation panel of `kq` words per row:
    /// rows side by side for the register kernels, one row after another for AMX tiles.
    fn panel_word(kernel: Kernel, kq: usize, q: usize, r: usize) -> usize {
        match kernel {
            Kernel::AmxBf16 => r * kq + q,
            _ => q * kernel.shape().0 + r,
        }
    }

    /// The kernels this CPU runs.
    fn runnable() -> Vec<Kernel> {
        Kernel::ALL.into_iter().filter(|k| k.runs_here()).collect()
    }

    #[test]
    fn dispatch_follows_the_features_given() {
        let f = |avx2_fma, avx512f, avx512_bf16| CpuFeatures {
            avx2_fma,
            avx512f,
            avx512_bf16,
            amx_bf16: false,
        };
        for bf16 in [false, true] {
            assert_eq!(Kernel::choose(f(false, false, false), bf16), None);
            assert_eq!(
                Kernel::choose(f(true, false, false), bf16),
                Some(Kernel::Avx2)
            );
        }
        assert_eq!(
            Kernel::choose(f(true, true, false), true),
            Some(Kernel::Avx512)
        );
        assert_eq!(
            Kernel::choose(f(true, true, true), false),
            Some(Kernel::Avx512)
        );
        assert_eq!(
            Kernel::choose(f(true, true, true), true),
            Some(Kernel::Avx512Bf16)
        );
        let amx = CpuFeatures {
            amx_bf16: true,
            ..f(true, true, true)
        };
        assert_eq!(Kernel::choose(amx, true), Some(Kernel::AmxBf16));
        assert_eq!(Kernel::choose(amx, false), Some(Kernel::Avx512));
    }

    #[test]
    fn f32_kernels_match_the_f64_product_on_ragged_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for kernel in runnable().into_iter().filter(|k| !k.bf16_products()) {
            for &(m, n, k) in SHAPES {
                let a = random(m * k, &mut rng);
                let w = random(n * k, &mut rng);
                let got = PackedMatrix::pack(&w, n, k, kernel, false).matmul(&a, m);
                let want = reference(&a, &w, m, n, k);
                let tol = 1e-5 * (k as f64).sqrt().max(1.0);
                for (idx, (&g, &e)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g as f64 - e).abs() <= tol,
                        "{kernel:?} m={m} n={n} k={k} element {idx}: {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn weights_past_the_caches_give_the_same_product() {
        // 8.6 MB of f32 weights: split by columns only, a few panels over all rows at a time;
        // 150 rows make two row blocks.
        let (m, n, k) = (150, 3600, 600);
        assert!(n * k * 4 > STREAMED_WEIGHT_BYTES);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let a = random(m * k, &mut rng);
        let w = random(n * k, &mut rng);
        for kernel in runnable().into_iter().filter(|k| !k.bf16_products()) {
            let got = PackedMatrix::pack(&w, n, k, kernel, false).matmul(&a, m);
            for idx in (0..m * n).step_by(97) {
                let (i, j) = (idx / n, idx % n);
                let want: f64 = (0..k)
                    .map(|p| a[i * k + p] as f64 * w[j * k + p] as f64)
                    .sum();
                assert!(
                    (got[idx] as f64 - want).abs() <= 1e-5 * (k as f64).sqrt(),
                    "{kernel:?} element ({i}, {j}): {} vs {want}",
                    got[idx]
                );
            }
        }
    }

    #[test]
    fn column_blocks_hold_the_bits_of_the_whole_product() {
        // 157 rows (two row blocks and a partial tile), 1000 columns (a narrower last block
        // and a partial panel), depth 900 (two K slices).
        let (m, n, k) = (157, 1000, 900);
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let a = random(m * k, &mut rng);
        let w = random(n * k, &mut rng);
        for kernel in runnable() {
            for bf16 in [false, true] {
                let packed = PackedMatrix::pack(&w, n, k, kernel, bf16);
                let whole = packed.matmul(&a, m);
                let blocks = packed.column_blocks(&a, m, 64, |cols, block| (cols, block.to_vec()));
                assert_eq!(
                    blocks.len(),
                    n.div_ceil(64),
                    "{kernel:?}: one visit per block"
                );
                let mut next = 0;
                for (cols, block) in blocks {
                    assert_eq!(cols.start, next, "{kernel:?}: blocks in column order");
                    next = cols.end;
                    for i in 0..m {
                        let row = &block[i * cols.len()..(i + 1) * cols.len()];
                        let want = &whole[i * n + cols.start..i * n + cols.end];
                        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                        assert_eq!(
                            bits(row),
                            bits(want),
                            "{kernel:?} bf16 {bf16} row {i} {cols:?}"
                        );
                    }
                }
                assert_eq!(next, n, "{kernel:?}: the blocks cover every column");
            }
        }
    }

    #[test]
    fn avx512_gives_the_bits_of_avx2() {
        if !Kernel::Avx512.runs_here() {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        for &(m, n, k) in SHAPES {
            let a = random(m * k, &mut rng);
            let w = random(n * k, &mut rng);
            for bf16 in [false, true] {
                let narrow = PackedMatrix::pack(&w, n, k, Kernel::Avx2, bf16).matmul(&a, m);
                let wide = PackedMatrix::pack(&w, n, k, Kernel::Avx512, bf16).matmul(&a, m);
                let same = narrow
                    .iter()
                    .zip(&wide)
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "m={m} n={n} k={k} bf16={bf16}");
            }
        }
    }

    /// bf16 products against the f64 product of the bf16-rounded inputs (tight: the products
    /// are exact, only f32 sums round) and of the unrounded inputs (bf16's 8 bits: each
    /// product within 2^-8 relative, errors of random sign).
    #[test]
    fn bf16_products_match_the_rounded_product_on_every_kernel() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for kernel in runnable() {
            for &(m, n, k) in SHAPES {
                let a = random(m * k, &mut rng);
                let w = random(n * k, &mut rng);
                let got = PackedMatrix::pack(&w, n, k, kernel, true).matmul(&a, m);
                let round = |v: &[f32]| v.iter().map(|&x| round_to_bf16(x)).collect::<Vec<_>>();
                let rounded = reference(&round(&a), &round(&w), m, n, k);
                let exact = reference(&a, &w, m, n, k);
                let sqrt_k = (k as f64).sqrt().max(1.0);
                for idx in 0..m * n {
                    let g = got[idx] as f64;
                    assert!(
                        (g - rounded[idx]).abs() <= 1e-5 * sqrt_k,
                        "{kernel:?} m={m} n={n} k={k} element {idx}: {g} vs {}",
                        rounded[idx]
                    );
                    assert!(
                        (g - exact[idx]).abs() <= 2e-2 * sqrt_k,
                        "{kernel:?} m={m} n={n} k={k} element {idx}: {g} vs {}",
                        exact[idx]
                    );
                }
            }
        }
    }

    /// Packed activation panels hold the words [`packed_word`] defines (bf16 pairs from the
    /// vector rounding included: ties to even, a NaN), rows past the end zero, on every kernel
    /// and rounding, with ragged rows, depths and slice offsets.
    #[test]
    fn packed_activations_hold_the_scalar_words() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let k = 101;
        let mut a = random(40 * k, &mut rng);
        a[1] = f32::from_bits(0x3f80_8000); // a tie: rounds down to even
        a[3] = f32::from_bits(0x3f81_8000); // a tie: rounds up to even
        a[k + 4] = f32::NAN;
        for kernel in runnable() {
            for round in [false, true] {
                let packed = PackedMatrix::pack(&random(3 * k, &mut rng), 3, k, kernel, round);
                let (mr, _, _) = kernel.shape();
                for (r0, rows, pc, kc) in [
                    (0usize, 1usize, 0usize, 1usize),
                    (1, 13, 0, 101),
                    (2, 25, 4, 64),
                    (5, 30, 33, 67),
                    (3, 37, 2, 99),
                ] {
                    let kq = kernel.words(kc);
                    let mut dst = vec![u32::MAX; rows.div_ceil(mr) * mr * kq];
                    packed.pack_activations(&a, r0..r0 + rows, pc, kc, &mut dst);
                    for row in 0..rows.div_ceil(mr) * mr {
                        let panel = &dst[row / mr * mr * kq..][..mr * kq];
                        for q in 0..kq {
                            let got = panel[panel_word(kernel, kq, q, row % mr)];
                            let want = if row < rows {
                                let src = &a[(r0 + row) * k + pc..(r0 + row) * k + pc + kc];
                                packed_word(kernel, src, q, packed.round_bf16)
                            } else {
                                0
                            };
                            assert_eq!(
                                got, want,
                                "{kernel:?} round {round} {r0},{rows},{pc},{kc}: row {row} word {q}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn empty_inputs_give_empty_or_zero_outputs() {
        for kernel in runnable() {
            let packed = PackedMatrix::pack(&[1.0, 2.0], 1, 2, kernel, false);
            assert!(packed.matmul(&[], 0).is_empty());
            let zero_k = PackedMatrix::pack(&[], 3, 0, kernel, false);
            assert_eq!(zero_k.matmul(&[], 2), vec![0.0; 6]);
            let blocks = zero_k.column_blocks(&[], 2, 32, |cols, block| (cols, block.to_vec()));
            assert_eq!(
                blocks,
                [(0..3, vec![0.0; 6])],
                "{kernel:?}: zero depth, zero block"
            );
            let no_rows = packed.column_blocks(&[], 0, 32, |_, block| block.len());
            assert_eq!(no_rows, [0], "{kernel:?}: no rows, empty block");
        }
    }
}
