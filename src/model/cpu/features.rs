//! The instruction sets the CPU kernels may use: detected at run time, optionally limited by the
//! `SPEX_CPU_KERNELS` environment variable (to measure or test the narrower paths on a wider CPU),
//! and passed to the kernels as a value, so tests choose them without touching the process.

use crate::model::error::{ModelError, ModelResult};

/// The environment variable that limits the CPU kernels: `auto`, `avx512bf16`, `avx512`, `avx2`
/// or `portable`.
pub const KERNELS_VAR: &str = "SPEX_CPU_KERNELS";

/// What the CPU offers to spex's kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    /// AVX2 with FMA (the 8-lane f32 kernels).
    pub avx2_fma: bool,
    /// AVX-512 Foundation with FMA (the 16-lane f32 kernel).
    pub avx512f: bool,
    /// AVX512-BF16 (VDPBF16PS: bf16 pair products accumulated in f32).
    pub avx512_bf16: bool,
    /// AMX-BF16 with the tile registers granted by the OS (TDPBF16PS: 16x16 tiles of bf16
    /// pair products accumulated in f32), on top of AVX512-BF16.
    pub amx_bf16: bool,
}

impl CpuFeatures {
    /// What this CPU has.
    pub fn detect() -> CpuFeatures {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2_fma = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let avx512f = avx2_fma && is_x86_feature_detected!("avx512f");
            let avx512_bf16 = avx512f && is_x86_feature_detected!("avx512bf16");
            CpuFeatures {
                avx2_fma,
                avx512f,
                avx512_bf16,
                amx_bf16: avx512_bf16 && super::amx::bf16_available(),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        CpuFeatures::default()
    }

    /// These features narrowed to `limit`: `auto` (all of them), `avx512bf16` (no AMX),
    /// `avx512` (no bf16 products), `avx2` (no AVX-512) or `portable` (none: candle's matmul).
    pub fn limited_to(self, limit: &str) -> ModelResult<CpuFeatures> {
        let none = CpuFeatures::default();
        Ok(match limit.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => self,
            "avx512bf16" => CpuFeatures {
                amx_bf16: false,
                ..self
            },
            "avx512" => CpuFeatures {
                avx512_bf16: false,
                amx_bf16: false,
                ..self
            },
            "avx2" => CpuFeatures {
                avx2_fma: self.avx2_fma,
                ..none
            },
            "portable" => none,
            other => {
                return Err(ModelError::input(
                    KERNELS_VAR,
                    format!("`{other}` is not one of auto, avx512bf16, avx512, avx2, portable"),
                ))
            }
        })
    }

    /// What this CPU has, limited by `SPEX_CPU_KERNELS` when it is set.
    pub fn from_env() -> ModelResult<CpuFeatures> {
        match std::env::var(KERNELS_VAR) {
            Ok(limit) => CpuFeatures::detect().limited_to(&limit),
            Err(_) => Ok(CpuFeatures::detect()),
        }
    }
}

/// How a model's projections compute on the CPU: the features its kernels may use, and whether
/// the products are in bf16 (inputs and weights rounded to bf16, sums in f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Products {
    /// The instruction sets the kernels may use.
    pub features: CpuFeatures,
    /// bf16 products (`--dtype bf16` on the CPU) instead of f32 ones.
    pub bf16: bool,
}

impl Products {
    /// f32 products with everything this CPU has.
    pub fn f32_detected() -> Products {
        Products {
            features: CpuFeatures::detect(),
            bf16: false,
        }
    }
}

/// `x` rounded to the nearest bf16 (ties to even), as its 16 bits; NaN stays NaN.
pub fn bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

/// `x` rounded to the nearest bf16 (ties to even), widened back to f32 (exactly).
pub fn round_to_bf16(x: f32) -> f32 {
    f32::from_bits((bf16_bits(x) as u32) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};

    #[test]
    fn limits_narrow_and_never_widen() {
        let all = CpuFeatures {
            avx2_fma: true,
            avx512f: true,
            avx512_bf16: true,
            amx_bf16: true,
        };
        assert_eq!(all.limited_to("AUTO").unwrap(), all);
        assert_eq!(
            all.limited_to("avx512bf16").unwrap(),
            CpuFeatures {
                amx_bf16: false,
                ..all
            }
        );
        assert_eq!(
            all.limited_to("avx512").unwrap(),
            CpuFeatures {
                avx512_bf16: false,
                amx_bf16: false,
                ..all
            }
        );
        assert_eq!(
            all.limited_to("avx2").unwrap(),
            CpuFeatures {
                avx2_fma: true,
                ..CpuFeatures::default()
            }
        );
        assert_eq!(all.limited_to("portable").unwrap(), CpuFeatures::default());
        let old = CpuFeatures::default();
        assert_eq!(old.limited_to("avx512").unwrap(), old);
        let err = all.limited_to("sse9").unwrap_err().to_string();
        assert!(err.contains(KERNELS_VAR) && err.contains("sse9"), "{err}");
    }

    #[test]
    fn bf16_rounding_matches_candles_conversion() -> anyhow::Result<()> {
        let mut values = vec![
            0.0f32,
            -0.0,
            1.0,
            1.0 + 1.0 / 256.0, // halfway between two bf16 values: ties to even (down)
            1.0 + 3.0 / 256.0, // halfway: ties to even (up)
            3.4e38,            // rounds up to infinity
            1.0e-40,           // subnormal
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
        ];
        values.extend((0..2000).map(|i| ((i as f32) * 0.7919).sin() * 10f32.powi(i % 9 - 4)));
        let t = Tensor::new(values.as_slice(), &Device::Cpu)?;
        let want = t
            .to_dtype(DType::BF16)?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?;
        for (x, w) in values.iter().zip(want) {
            assert_eq!(round_to_bf16(*x).to_bits(), w.to_bits(), "{x}");
        }
        assert!(round_to_bf16(f32::NAN).is_nan());
        Ok(())
    }
}
