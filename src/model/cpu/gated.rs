//! The SwiGLU gate `silu(g) * u` of Llama-style MLPs: one pass split over rayon's threads for
//! f32 CPU tensors (candle's silu runs on one thread and allocates twice), candle's ops
//! elsewhere.

use candle_core::Tensor;
use rayon::prelude::*;

use crate::model::cpu::f32::{is_cpu_f32, with_values};
use crate::model::error::ModelResult;

/// Elements per parallel chunk.
const CHUNK: usize = 8192;

/// `silu(gate) * up`, elementwise; both `[..., I]` of one shape.
pub(crate) fn swiglu(gate: &Tensor, up: &Tensor) -> ModelResult<Tensor> {
    if !(is_cpu_f32(gate) && is_cpu_f32(up) && gate.dims() == up.dims()) {
        return Ok((candle_nn::ops::silu(gate)? * up)?);
    }
    let values = with_values(gate, |g| {
        with_values(up, |u| {
            let mut out = vec![0.0f32; g.len()];
            out.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
                .for_each(|(o, (g, u))| {
                    for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                        *o = g / (1.0 + (-g).exp()) * u;
                    }
                });
            out
        })
    })??;
    Ok(Tensor::from_vec(values, gate.shape(), gate.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::seeded::SeededNormal;

    #[test]
    fn fused_gate_equals_candle_silu_times_up() -> anyhow::Result<()> {
        let mut rng = SeededNormal::new(0);
        let g = rng.tensor((3, 5, 7000), -1.0, 3.0);
        let u = rng.tensor((3, 5, 7000), 0.0, 1.0);
        let want = (candle_nn::ops::silu(&g)? * &u)?;
        let got = swiglu(&g, &u)?;
        assert_eq!(got.dims(), want.dims());
        let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "largest difference {diff}");
        Ok(())
    }
}
