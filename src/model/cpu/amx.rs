//! bf16 products on Intel AMX (Sapphire Rapids and later): a 32x32 tile of C from four 16x16
//! accumulator tiles, TDPBF16PS over 32-deep steps (each step 16 x 16 x 32 products summed in
//! f32). The weights use the AVX512-BF16 kernel's packing (32-column panels of bf16 pairs, one
//! 128-byte row per pair of depths), which is the layout of an AMX right-hand tile; the
//! activations are packed row by row as bf16 pairs, the layout of a left-hand tile.
//!
//! Linux hands out the tile registers only on request ([`bf16_available`] asks), and each
//! thread must load a tile configuration before it uses them ([`configure`]).

use std::arch::asm;
use std::arch::x86_64::{__m512i, __mmask16, _mm512_cvtne2ps_pbh, _mm512_maskz_loadu_ps};
use std::sync::OnceLock;

use super::tile::{Tile, MAX_TILE};

/// Rows of C per tile: two 16-row accumulator tiles.
pub(crate) const MR: usize = 32;
/// Columns of C per tile: two 16-column accumulator tiles (one weight panel).
pub(crate) const NR: usize = 32;
/// Pairs of depths per step (one left-hand tile row: 64 bytes of bf16).
pub(crate) const STEP: usize = 16;

/// Whether the CPU has AMX-TILE and AMX-BF16 (CPUID leaf 7, EDX bits 24 and 22) and this
/// process may use the tile registers. Found once per process: CPUID leaves a virtual machine
/// for its host, and every product checks its kernel.
pub(crate) fn bf16_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
        edx & (1 << 24) != 0 && edx & (1 << 22) != 0 && tiles_granted()
    })
}

/// Whether this process may use the AMX tile registers: asks Linux
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), false where it refuses or where
/// this is not Linux.
fn tiles_granted() -> bool {
    #[cfg(target_os = "linux")]
    {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: a request for a permission; it touches no memory of ours.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    false
}

/// The tile configuration every kernel here uses: palette 1, tiles 0-7 each 16 rows of 64 bytes.
#[repr(C, align(64))]
struct Config {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    bytes_per_row: [u16; 16],
    rows: [u8; 16],
}

const CONFIG: Config = Config {
    palette: 1,
    start_row: 0,
    reserved: [0; 14],
    bytes_per_row: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// Loads [`CONFIG`] on this thread; call before [`tile_32x32`], and [`release`] after.
///
/// # Safety
/// [`bf16_available`] returned true.
pub(crate) unsafe fn configure() {
    asm!("ldtilecfg [{0}]", in(reg) &CONFIG, options(nostack, readonly));
}

/// Returns the tile registers to their initial state (cheaper context switches).
///
/// # Safety
/// As [`configure`].
pub(crate) unsafe fn release() {
    asm!("tilerelease", options(nostack, nomem));
}

/// One 32x32 tile of C: a packed activation panel `a` (32 rows of `kq` words, `kq` a multiple
/// of [`STEP`]) against a packed 32-column weight panel `b` (`kq` rows of 32 words), into `tile`.
/// Rows 16-31 are skipped when the tile has 16 valid rows or fewer.
///
/// # Safety
/// [`configure`] ran on this thread; `a` holds `32 * kq` words and `b` `32 * kq`; the tile's
/// valid part lies inside C.
pub(crate) unsafe fn tile_32x32(kq: usize, a: *const u32, b: *const u32, tile: &Tile) {
    debug_assert!(kq.is_multiple_of(STEP));
    let lower = tile.rows > 16;
    let full = tile.rows == MR && tile.cols == NR;
    let (a_stride, b_stride) = (kq * 4, NR * 4);
    let a_lower = a.add(16 * kq);
    if full && tile.accumulate {
        let ldc = tile.ldc * 4;
        let c = tile.c;
        asm!(
            "tileloadd tmm0, [{c} + {ldc}*1]",
            "tileloadd tmm1, [{c} + {ldc}*1 + 64]",
            "tileloadd tmm2, [{d} + {ldc}*1]",
            "tileloadd tmm3, [{d} + {ldc}*1 + 64]",
            c = in(reg) c, d = in(reg) c.add(16 * tile.ldc), ldc = in(reg) ldc,
            options(nostack, readonly),
        );
    } else {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        );
    }
    for s in 0..kq / STEP {
        let (a_s, b_s) = (a.add(s * STEP), b.add(s * STEP * NR));
        asm!(
            "tileloadd tmm4, [{a} + {sa}*1]",
            "tileloadd tmm6, [{b} + {sb}*1]",
            "tileloadd tmm7, [{b} + {sb}*1 + 64]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            a = in(reg) a_s, b = in(reg) b_s, sa = in(reg) a_stride, sb = in(reg) b_stride,
            options(nostack, readonly),
        );
        if lower {
            asm!(
                "tileloadd tmm5, [{a} + {sa}*1]",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                a = in(reg) a_lower.add(s * STEP), sa = in(reg) a_stride,
                options(nostack, readonly),
            );
        }
    }
    if full {
        store_accumulators(tile.c, tile.ldc);
    } else {
        let mut tmp = [0.0f32; MAX_TILE];
        store_accumulators(tmp.as_mut_ptr(), NR);
        tile.store_partial(&tmp, NR);
    }
}

/// Stores the four accumulator tiles as a 32x32 block of f32 at `c`, rows `ldc` apart: tiles 0
/// and 1 the top 16 rows (left and right), 2 and 3 the bottom 16.
///
/// # Safety
/// [`configure`] ran on this thread; `c` has room for 32 rows of 32 values, `ldc` apart.
#[inline(always)]
unsafe fn store_accumulators(c: *mut f32, ldc: usize) {
    asm!(
        "tilestored [{c} + {ld}*1], tmm0",
        "tilestored [{c} + {ld}*1 + 64], tmm1",
        "tilestored [{d} + {ld}*1], tmm2",
        "tilestored [{d} + {ld}*1 + 64], tmm3",
        c = in(reg) c, d = in(reg) c.add(16 * ldc), ld = in(reg) ldc * 4,
        options(nostack),
    );
}

/// The AMX kernel's activation panel: row `r` at words `r * kq ..`, word `q` holding depths 2q
/// and 2q + 1 of row `r` of `block` (rows `k` apart, `kc` deep) rounded to bf16 with
/// VCVTNE2PS2BF16 (ties to even, the odd depth in the high half), zero past the end and for rows
/// `valid..32`.
///
/// # Safety
/// AVX512-BF16 available; `panel` holds `32 * kq` words, `kq >= kc / 2`.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(crate) unsafe fn pack_panel(
    block: &[f32],
    k: usize,
    valid: usize,
    kc: usize,
    kq: usize,
    panel: &mut [u32],
) {
    let lanes = |count: usize| -> __mmask16 { ((1u32 << count.min(16)) - 1) as __mmask16 };
    for (r, row) in panel.chunks_exact_mut(kq).take(MR).enumerate() {
        if r >= valid {
            row.fill(0);
            continue;
        }
        for (c, words) in row.chunks_mut(16).enumerate() {
            let depth = kc.saturating_sub(c * 32).min(32);
            if depth == 0 {
                words.fill(0);
                continue;
            }
            let src = block[r * k + c * 32..].as_ptr();
            let low = _mm512_maskz_loadu_ps(lanes(depth), src);
            let high = _mm512_maskz_loadu_ps(lanes(depth.saturating_sub(16)), src.wrapping_add(16));
            let pairs: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(high, low));
            let pairs: [u32; 16] = std::mem::transmute(pairs);
            words.copy_from_slice(&pairs[..words.len()]);
        }
    }
}
