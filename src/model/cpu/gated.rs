//! The gate of Llama-style MLPs, `act(g) * u` (SwiGLU with SiLU, Gemma's GeGLU with tanh GELU):
//! one pass split over rayon's threads for f32 CPU tensors (candle's activations run on one
//! thread and allocate twice), candle's ops elsewhere.

use candle_core::Tensor;
use rayon::prelude::*;

use crate::model::cpu::f32::{is_cpu_f32, with_values};
use crate::model::error::ModelResult;
use crate::model::load::config::GateActivation;

/// Elements per parallel chunk.
const CHUNK: usize = 8192;

/// sqrt(2 / pi), in the tanh approximation of GELU.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// `act(gate) * up`, elementwise; both `[..., I]` of one shape.
pub(crate) fn gated(gate: &Tensor, up: &Tensor, act: GateActivation) -> ModelResult<Tensor> {
    if !(is_cpu_f32(gate) && is_cpu_f32(up) && gate.dims() == up.dims()) {
        let activated = match act {
            GateActivation::Silu => candle_nn::ops::silu(gate)?,
            GateActivation::GeluTanh => gate.gelu()?,
        };
        return Ok((activated * up)?);
    }
    let values = with_values(gate, |g| {
        with_values(up, |u| {
            let mut out = vec![0.0f32; g.len()];
            out.par_chunks_mut(CHUNK)
                .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
                .for_each(|(o, (g, u))| match act {
                    GateActivation::Silu => {
                        for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                            *o = g / (1.0 + (-g).exp()) * u;
                        }
                    }
                    GateActivation::GeluTanh => {
                        for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                            let inner = SQRT_2_OVER_PI * (g + 0.044715 * g * g * g);
                            *o = 0.5 * g * (1.0 + inner.tanh()) * u;
                        }
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
    fn fused_gates_equal_candle_activations_times_up() -> anyhow::Result<()> {
        let mut rng = SeededNormal::new(0);
        let g = rng.tensor((3, 5, 7000), -1.0, 3.0);
        let u = rng.tensor((3, 5, 7000), 0.0, 1.0);
        for (act, activated) in [
            (GateActivation::Silu, candle_nn::ops::silu(&g)?),
            (GateActivation::GeluTanh, g.gelu()?),
        ] {
            let want = (activated * &u)?;
            let got = gated(&g, &u, act)?;
            assert_eq!(got.dims(), want.dims());
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "{act:?}: largest difference {diff}");
        }
        Ok(())
    }
}
