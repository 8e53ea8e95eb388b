//! `e^x` in f32 as straight-line arithmetic that the compiler turns into vector code inside the
//! AVX2 and AVX-512 kernels (libm's `expf` is a scalar call per element, 4 % of an ablated pass
//! in the SiLU gate and the softmax). Every step is an exact operation or one fused multiply-add,
//! so the scalar, AVX2 and AVX-512 forms of a loop give the same bits.
//!
//! Method: `e^x = 2^n * e^r` with `n` the integer nearest `x / ln 2` and `r = x - n ln 2`
//! (`|r| <= ln 2 / 2`, `ln 2` split in two so that `n * LN2_HIGH` is exact), `e^r` by its Taylor
//! series to `r^7` (truncation below 5e-9 relative), `2^n` built in the exponent bits.

/// Below this `e^x` is returned as 0 (it is under 2^-126, the smallest normal f32).
const MIN_ARG: f32 = -87.0;
/// Above this `e^x` is returned as `e^MAX_ARG` (about 1.7e38, short of f32's overflow).
const MAX_ARG: f32 = 88.0;
/// log2(e).
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// The leading bits of ln 2 (9 significant bits: `n * LN2_HIGH` is exact for `|n| < 2^15`).
const LN2_HIGH: f32 = 0.693_359_4;
/// ln 2 - LN2_HIGH.
const LN2_LOW: f32 = -2.121_944_4e-4;
/// 1.5 * 2^23: adding and subtracting it rounds an f32 below 2^22 to the nearest integer (ties
/// to even) with two exact-by-definition additions, on any instruction set.
const ROUNDER: f32 = 12_582_912.0;

/// `e^x` within 2 ulp of the exact value for `x` in `[-87, 88]`; 0 below, `e^88` above; NaN for
/// NaN. Inlined into its caller so that loops over it vectorise with the caller's features.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let clamped = x.clamp(MIN_ARG, MAX_ARG);
    let shifted = clamped * LOG2_E + ROUNDER;
    let n = shifted - ROUNDER;
    let r = n.mul_add(-LN2_HIGH, clamped);
    let r = n.mul_add(-LN2_LOW, r);
    let mut p: f32 = 1.0 / 5040.0;
    p = p.mul_add(r, 1.0 / 720.0);
    p = p.mul_add(r, 1.0 / 120.0);
    p = p.mul_add(r, 1.0 / 24.0);
    p = p.mul_add(r, 1.0 / 6.0);
    p = p.mul_add(r, 0.5);
    p = p.mul_add(r, 1.0);
    p = p.mul_add(r, 1.0);
    // n is in [-126, 127] here, so 2^n is a normal f32. `shifted`'s low bits hold n (its
    // exponent fixes one unit per integer), read without a float-to-int cast: Rust's saturating
    // cast is scalar code per lane. NaN leaves p NaN, whatever the scale.
    let scale = f32::from_bits(
        shifted
            .to_bits()
            .wrapping_sub(ROUNDER.to_bits())
            .wrapping_add(127)
            << 23,
    );
    if x < MIN_ARG {
        0.0
    } else {
        p * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units in the last place between `got` and the exact `e^x` (rounded to f32).
    fn ulps(got: f32, x: f32) -> f64 {
        let want = (x as f64).exp();
        let ulp = f32::EPSILON as f64 * 2f64.powi((want.log2()).floor() as i32);
        (got as f64 - want).abs() / ulp
    }

    #[test]
    fn within_two_ulp_of_the_exact_exponential_over_its_range() {
        let mut worst = 0.0f64;
        let mut x = MIN_ARG;
        while x <= MAX_ARG {
            worst = worst.max(ulps(exp(x), x));
            x += 0.000_731;
        }
        for x in [
            0.0f32,
            1.0,
            -1.0,
            0.5,
            1e-8,
            -1e-8,
            0.346_573_6,
            -0.346_573_6,
            88.0,
            -87.0,
        ] {
            worst = worst.max(ulps(exp(x), x));
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn the_ends_underflow_to_zero_saturate_and_keep_nan() {
        assert_eq!(exp(-87.5), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(f32::INFINITY), exp(MAX_ARG));
        assert!(exp(MAX_ARG).is_finite() && exp(MAX_ARG) > 1e38);
        assert!(exp(f32::NAN).is_nan());
    }
}
