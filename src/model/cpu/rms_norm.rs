//! RMSNorm, `y = x / sqrt(mean(x²) + eps) * w` over the last dimension: rows split over rayon's
//! threads and the sum of squares in 16 independent partial sums for f32 CPU tensors (candle's CPU
//! op sums each row in one sequential chain, 3 % of an ablated pass), candle's op elsewhere.

use std::mem::MaybeUninit;

use candle_core::Tensor;

use crate::model::cpu::f32::{is_cpu_f32, par_filled, with_values};
use crate::model::error::ModelResult;

/// Partial sums per row (one AVX-512 vector, two AVX2 ones).
const LANES: usize = 16;

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 16;

/// An RMSNorm layer: its weight `[D]` (Gemma's `1 + w` already added) and epsilon.
pub(crate) struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// The norm with `weight [D]` and `eps`.
    pub fn new(weight: Tensor, eps: f64) -> RmsNorm {
        RmsNorm { weight, eps }
    }

    /// `x [.., D]` normalised row by row, same shape.
    pub fn forward(&self, x: &Tensor) -> ModelResult<Tensor> {
        let d = self.weight.dims1()?;
        if !(is_cpu_f32(x) && is_cpu_f32(&self.weight)) || x.dims().last() != Some(&d) {
            return Ok(candle_nn::ops::rms_norm(
                &x.contiguous()?,
                &self.weight,
                self.eps as f32,
            )?);
        }
        let eps = self.eps as f32;
        let values = with_values(x, |x| {
            with_values(&self.weight, |w| {
                let task = ROWS_PER_TASK * d.max(1);
                // SAFETY: each task writes every value of its rows (normalise_row writes all D).
                unsafe {
                    par_filled(x.len(), task, |i, out| {
                        let x = &x[i * task..(i * task + task).min(x.len())];
                        for (out, x) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                            normalise_row(out, x, w, eps);
                        }
                    })
                }
            })
        })??;
        Ok(Tensor::from_vec(values, x.shape(), x.device())?)
    }
}

/// `out = x / sqrt(Σx² / D + eps) * w` for one row of `D` values (every one written).
fn normalise_row(out: &mut [MaybeUninit<f32>], x: &[f32], w: &[f32], eps: f32) {
    let mut partial = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (p, &v) in partial.iter_mut().zip(chunk) {
            *p += v * v;
        }
    }
    for (p, &v) in partial.iter_mut().zip(tail) {
        *p += v * v;
    }
    let sum: f32 = partial.iter().sum();
    let m = (sum / x.len() as f32 + eps).sqrt();
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(w) {
        o.write(v / m * w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::seeded::SeededNormal;

    /// Our rows equal candle's op within f32 rounding, on widths with and without a tail and
    /// on more rows than one task; a zero row stays zero.
    #[test]
    fn rows_match_candles_rms_norm() -> anyhow::Result<()> {
        let mut rng = SeededNormal::new(3);
        for (rows, d) in [(1, 1), (3, 7), (40, 576), (33, 100)] {
            let x = rng.tensor((rows, d), 0.5, 2.0);
            let w = rng.tensor(d, 1.0, 0.3);
            let norm = RmsNorm::new(w.clone(), 1e-5);
            let got = norm.forward(&x)?;
            let want = candle_nn::ops::rms_norm(&x, &w, 1e-5)?;
            assert_eq!(got.dims(), want.dims());
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 2e-5, "{rows}x{d}: largest difference {diff}");
        }
        let zero = Tensor::zeros((2, 20), candle_core::DType::F32, &candle_core::Device::Cpu)?;
        let norm = RmsNorm::new(rng.tensor(20, 1.0, 0.3), 1e-6);
        assert_eq!(
            norm.forward(&zero)?.abs()?.max_all()?.to_scalar::<f32>()?,
            0.0
        );
        Ok(())
    }
}
