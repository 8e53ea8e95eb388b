//! The AVX-512 f32 register tile in assembly: 12 rows of C by 32 columns, 24 accumulators, one
//! depth step = two 16-lane loads of the weight panel, 12 broadcasts of the activations and 24
//! fused multiply-adds.
//!
//! Written out by hand because the compiler's version of the same loop, with 12 activation rows
//! read in place, kept 12 row pointers and spilled two of them to the stack, reloading them on
//! every depth step. Here three pointers and two strides address the 12 rows (rows 0-3, 4-7 and
//! 8-11 as `base`, `base + stride`, `base + 2 * stride`, `base + 3 * stride`), four depth steps
//! run per loop turn, and the weight panel is prefetched 8 steps ahead. Each element of C is the
//! same chain of multiply-adds in the same order as in the intrinsics kernels, so the bits match
//! theirs.

use std::arch::asm;
use std::arch::x86_64::{__m512, _mm512_setzero_ps};

/// Columns per weight panel (two 16-lane vectors).
const NR: usize = 32;
/// Bytes per depth step of the weight panel.
const PANEL_STEP: usize = NR * 4;
/// How far ahead (bytes of the weight panel, 8 depth steps) the panel is prefetched into L1: it
/// outgrows L1 at the default model's depths (73 KiB at K 576).
const PREFETCH_AHEAD: usize = 8 * PANEL_STEP;

/// One depth step at `$step` steps past the pointers: the panel row prefetched 8 steps ahead,
/// its two vectors loaded into zmm24 and zmm25, each row's value broadcast (zmm26-31 in turn)
/// and multiplied into that row's two accumulators.
macro_rules! depth_step {
    ($step:literal) => {
        concat!(
            "prefetcht0 [{b} + ", $step, " * {panel_step} + {ahead}]\n",
            "prefetcht0 [{b} + ", $step, " * {panel_step} + {ahead} + 64]\n",
            "vmovaps zmm24, [{b} + ", $step, " * {panel_step}]\n",
            "vmovaps zmm25, [{b} + ", $step, " * {panel_step} + 64]\n",
            depth_step!(@row "zmm26", "{r0}", "", "zmm0", "zmm1", $step),
            depth_step!(@row "zmm27", "{r0}", " + {stride}", "zmm2", "zmm3", $step),
            depth_step!(@row "zmm28", "{r0}", " + {stride} * 2", "zmm4", "zmm5", $step),
            depth_step!(@row "zmm29", "{r0}", " + {stride3}", "zmm6", "zmm7", $step),
            depth_step!(@row "zmm30", "{r4}", "", "zmm8", "zmm9", $step),
            depth_step!(@row "zmm31", "{r4}", " + {stride}", "zmm10", "zmm11", $step),
            depth_step!(@row "zmm26", "{r4}", " + {stride} * 2", "zmm12", "zmm13", $step),
            depth_step!(@row "zmm27", "{r4}", " + {stride3}", "zmm14", "zmm15", $step),
            depth_step!(@row "zmm28", "{r8}", "", "zmm16", "zmm17", $step),
            depth_step!(@row "zmm29", "{r8}", " + {stride}", "zmm18", "zmm19", $step),
            depth_step!(@row "zmm30", "{r8}", " + {stride} * 2", "zmm20", "zmm21", $step),
            depth_step!(@row "zmm31", "{r8}", " + {stride3}", "zmm22", "zmm23", $step),
        )
    };
    (@row $x:literal, $base:literal, $row:literal, $lo:literal, $hi:literal, $step:literal) => {
        concat!(
            "vbroadcastss ", $x, ", [", $base, $row, " + ", $step, " * {depth}]\n",
            "vfmadd231ps ", $lo, ", ", $x, ", zmm24\n",
            "vfmadd231ps ", $hi, ", ", $x, ", zmm25\n",
        )
    };
}

/// The 12x32 tile `acc[r][h]` (row `r`, columns `16h..16h + 16`) of `kc` depth steps: row `r`,
/// depth `p` of the activations at byte `r * row_bytes + p * DEPTH_BYTES` from `a` (rows in
/// place: `DEPTH_BYTES` 4 and `row_bytes` the row stride; a packed panel: 48 and 4); the weight
/// panel `b` (64-byte aligned) holds 32 values per depth step.
///
/// # Safety
/// AVX-512F available; every addressed activation and `32 * kc` values of `b` readable.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn tile_12x32<const DEPTH_BYTES: usize>(
    kc: usize,
    a: *const f32,
    row_bytes: usize,
    b: *const f32,
) -> [[__m512; 2]; 12] {
    let mut acc = [[_mm512_setzero_ps(); 2]; 12];
    let at_row = |r: usize| a.cast::<u8>().wrapping_add(r * row_bytes);
    // SAFETY: the caller's contract covers every address the loop reads; `acc` is 64-byte
    // aligned (an array of __m512) and holds the 24 vectors stored at the end.
    asm!(
        "vpxord zmm0, zmm0, zmm0", "vpxord zmm1, zmm1, zmm1", "vpxord zmm2, zmm2, zmm2",
        "vpxord zmm3, zmm3, zmm3", "vpxord zmm4, zmm4, zmm4", "vpxord zmm5, zmm5, zmm5",
        "vpxord zmm6, zmm6, zmm6", "vpxord zmm7, zmm7, zmm7", "vpxord zmm8, zmm8, zmm8",
        "vpxord zmm9, zmm9, zmm9", "vpxord zmm10, zmm10, zmm10", "vpxord zmm11, zmm11, zmm11",
        "vpxord zmm12, zmm12, zmm12", "vpxord zmm13, zmm13, zmm13", "vpxord zmm14, zmm14, zmm14",
        "vpxord zmm15, zmm15, zmm15", "vpxord zmm16, zmm16, zmm16", "vpxord zmm17, zmm17, zmm17",
        "vpxord zmm18, zmm18, zmm18", "vpxord zmm19, zmm19, zmm19", "vpxord zmm20, zmm20, zmm20",
        "vpxord zmm21, zmm21, zmm21", "vpxord zmm22, zmm22, zmm22", "vpxord zmm23, zmm23, zmm23",
        // Four depth steps per turn.
        "test {fours}, {fours}",
        "jz 3f",
        "2:",
        depth_step!("0"),
        depth_step!("1"),
        depth_step!("2"),
        depth_step!("3"),
        "add {r0}, 4 * {depth}",
        "add {r4}, 4 * {depth}",
        "add {r8}, 4 * {depth}",
        "add {b}, 4 * {panel_step}",
        "dec {fours}",
        "jnz 2b",
        // The last kc % 4 steps one at a time.
        "3:",
        "test {ones}, {ones}",
        "jz 5f",
        "4:",
        depth_step!("0"),
        "add {r0}, {depth}",
        "add {r4}, {depth}",
        "add {r8}, {depth}",
        "add {b}, {panel_step}",
        "dec {ones}",
        "jnz 4b",
        "5:",
        "vmovaps [{acc}], zmm0", "vmovaps [{acc} + 64], zmm1",
        "vmovaps [{acc} + 128], zmm2", "vmovaps [{acc} + 192], zmm3",
        "vmovaps [{acc} + 256], zmm4", "vmovaps [{acc} + 320], zmm5",
        "vmovaps [{acc} + 384], zmm6", "vmovaps [{acc} + 448], zmm7",
        "vmovaps [{acc} + 512], zmm8", "vmovaps [{acc} + 576], zmm9",
        "vmovaps [{acc} + 640], zmm10", "vmovaps [{acc} + 704], zmm11",
        "vmovaps [{acc} + 768], zmm12", "vmovaps [{acc} + 832], zmm13",
        "vmovaps [{acc} + 896], zmm14", "vmovaps [{acc} + 960], zmm15",
        "vmovaps [{acc} + 1024], zmm16", "vmovaps [{acc} + 1088], zmm17",
        "vmovaps [{acc} + 1152], zmm18", "vmovaps [{acc} + 1216], zmm19",
        "vmovaps [{acc} + 1280], zmm20", "vmovaps [{acc} + 1344], zmm21",
        "vmovaps [{acc} + 1408], zmm22", "vmovaps [{acc} + 1472], zmm23",
        r0 = inout(reg) at_row(0) => _,
        r4 = inout(reg) at_row(4) => _,
        r8 = inout(reg) at_row(8) => _,
        stride = in(reg) row_bytes,
        stride3 = in(reg) 3 * row_bytes,
        b = inout(reg) b => _,
        fours = inout(reg) kc / 4 => _,
        ones = inout(reg) kc % 4 => _,
        acc = in(reg) acc.as_mut_ptr(),
        depth = const DEPTH_BYTES,
        panel_step = const PANEL_STEP,
        ahead = const PREFETCH_AHEAD,
        out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
        out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
        out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
        out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
        out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
        out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
        out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
        out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
        options(nostack),
    );
    acc
}
