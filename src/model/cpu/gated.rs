//! The gate of Llama-style MLPs, `act(g) * u` (SwiGLU with SiLU, Gemma's GeGLU with tanh GELU):
//! one pass split over rayon's threads for f32 CPU tensors (candle's activations run on one
//! thread and allocate twice), candle's ops elsewhere.

use candle_core::Tensor;
use rayon::prelude::*;

use crate::model::cpu::f32::{is_cpu_f32, with_values};
use crate::model::cpu::fast_exp;
use crate::model::cpu::features::CpuFeatures;
use crate::model::error::ModelResult;
use crate::model::load::config::GateActivation;

/// Elements per parallel chunk.
const CHUNK: usize = 8192;

/// sqrt(2 / pi), in the tanh approximation of GELU.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;

/// `act(gate) * up`, elementwise; both `[..., I]` of one shape; `features`: the instruction sets
/// the f32 CPU path may use.
pub(crate) fn gated(
    gate: &Tensor,
    up: &Tensor,
    act: GateActivation,
    features: CpuFeatures,
) -> ModelResult<Tensor> {
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
                .for_each(|(o, (g, u))| activate_gate(o, g, u, act, features));
            out
        })
    })??;
    Ok(Tensor::from_vec(values, gate.shape(), gate.device())?)
}

/// `out[i] = act(g[i]) * u[i]`, in the widest vectors `features` allow for SiLU.
pub(crate) fn activate_gate(
    out: &mut [f32],
    g: &[f32],
    u: &[f32],
    act: GateActivation,
    features: CpuFeatures,
) {
    match act {
        GateActivation::Silu => silu_gate(out, g, u, features),
        GateActivation::GeluTanh => {
            for ((o, &g), &u) in out.iter_mut().zip(g).zip(u) {
                let inner = SQRT_2_OVER_PI * (g + 0.044715 * g * g * g);
                *o = 0.5 * g * (1.0 + inner.tanh()) * u;
            }
        }
    }
}

/// `out[i] = silu(g[i]) * u[i]` with [`fast_exp::exp`], in the widest vectors `features` allow;
/// every width gives the same bits.
fn silu_gate(out: &mut [f32], g: &[f32], u: &[f32], features: CpuFeatures) {
    #[cfg(target_arch = "x86_64")]
    {
        if features.avx512f {
            // SAFETY: the features say the CPU runs AVX-512F and FMA (avx512f implies avx2_fma).
            return unsafe { silu_gate_avx512(out, g, u) };
        }
        if features.avx2_fma {
            // SAFETY: the features say the CPU runs AVX2 and FMA.
            return unsafe { silu_gate_avx2(out, g, u) };
        }
    }
    let _ = features;
    silu_gate_body(out, g, u);
}

/// [`silu_gate_body`] in 16-lane vectors.
///
/// # Safety
/// The CPU must support AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn silu_gate_avx512(out: &mut [f32], g: &[f32], u: &[f32]) {
    silu_gate_body(out, g, u);
}

/// [`silu_gate_body`] in 8-lane vectors.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn silu_gate_avx2(out: &mut [f32], g: &[f32], u: &[f32]) {
    silu_gate_body(out, g, u);
}

/// The SiLU gate, elementwise: `g / (1 + e^-g) * u`.
#[inline(always)]
fn silu_gate_body(out: &mut [f32], g: &[f32], u: &[f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(g).zip(u) {
        *o = g / (1.0 + fast_exp::exp(-g)) * u;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::seeded::SeededNormal;

    #[test]
    fn the_silu_gate_gives_the_same_bits_on_every_width() {
        let mut rng = SeededNormal::new(4);
        let g = rng.tensor(10_007, -1.0, 4.0).to_vec1::<f32>().unwrap();
        let u = rng.tensor(10_007, 0.0, 1.0).to_vec1::<f32>().unwrap();
        let run = |features: CpuFeatures| {
            let mut out = vec![0.0f32; g.len()];
            silu_gate(&mut out, &g, &u, features);
            out.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        };
        let detected = CpuFeatures::detect();
        let portable = run(CpuFeatures::default());
        for limit in ["avx2", "avx512"] {
            let features = detected.limited_to(limit).unwrap();
            assert_eq!(run(features), portable, "{limit} ({features:?})");
        }
        // And the values are SiLU's: within 4e-7 relative of the f64 formula (3 roundings and exp's 2 ulp).
        for ((&o, &g), &u) in portable.iter().zip(&g).zip(&u) {
            let (g64, u64) = (g as f64, u as f64);
            let want = g64 / (1.0 + (-g64).exp()) * u64;
            let got = f32::from_bits(o) as f64;
            assert!(
                (got - want).abs() <= 4e-7 * want.abs() + 1e-30,
                "{g}: {got} vs {want}"
            );
        }
    }

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
            let got = gated(&g, &u, act, CpuFeatures::detect())?;
            assert_eq!(got.dims(), want.dims());
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "{act:?}: largest difference {diff}");
        }
        Ok(())
    }
}
