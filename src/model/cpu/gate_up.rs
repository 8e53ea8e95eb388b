//! The gate and up projections of a gated MLP and its activation, `act(x Gᵀ + b_g) * (x Uᵀ + b_u)`:
//! on one packed product when both are packed for the same kernel (each register tile of the
//! gate and of the up projection combined as it is computed, so neither `[.., I]` product is
//! written out and the input is packed once), as two projections and [`gated`] elsewhere.

use candle_core::Tensor;

use crate::model::cpu::features::CpuFeatures;
#[cfg(target_arch = "x86_64")]
use crate::model::cpu::gated::activate_gate;
use crate::model::cpu::gated::gated;
#[cfg(target_arch = "x86_64")]
use crate::model::cpu::projection::packed_rows;
use crate::model::cpu::projection::Projection;
#[cfg(target_arch = "x86_64")]
use crate::model::cpu::sgemm::PackedMatrix;
use crate::model::error::ModelResult;
use crate::model::load::config::GateActivation;

/// A gated MLP's input side: `[.., D] -> [.., I]`.
pub(crate) enum GateUp {
    /// Both weights packed for one kernel, the biases `[I]` (if any) as values.
    #[cfg(target_arch = "x86_64")]
    Fused {
        gate: PackedMatrix,
        up: PackedMatrix,
        biases: Option<(Vec<f32>, Vec<f32>)>,
    },
    /// Any other pair: two products, then the activation.
    Separate { gate: Projection, up: Projection },
}

impl GateUp {
    /// The gate `gate` and up projection `up` (`[I, D]` each), fused where both are packed for
    /// one kernel with biases on both or neither.
    pub fn new(gate: Projection, up: Projection) -> ModelResult<GateUp> {
        #[cfg(target_arch = "x86_64")]
        if let (
            Projection::Packed {
                weight: g,
                bias: gb,
            },
            Projection::Packed {
                weight: u,
                bias: ub,
            },
        ) = (&gate, &up)
        {
            let same = g.kernel() == u.kernel() && (g.n(), g.k()) == (u.n(), u.k());
            if same && gb.is_some() == ub.is_some() {
                let biases = match (gb, ub) {
                    (Some(gb), Some(ub)) => Some((gb.to_vec1::<f32>()?, ub.to_vec1::<f32>()?)),
                    _ => None,
                };
                let (
                    Projection::Packed { weight: gate, .. },
                    Projection::Packed { weight: up, .. },
                ) = (gate, up)
                else {
                    unreachable!("matched as packed just above")
                };
                return Ok(GateUp::Fused { gate, up, biases });
            }
        }
        Ok(GateUp::Separate { gate, up })
    }

    /// `x [.., D]` -> `act(gate(x)) * up(x)`, `[.., I]`; `features`: what the activation's f32
    /// CPU path may use.
    pub fn forward(
        &self,
        x: &Tensor,
        act: GateActivation,
        features: CpuFeatures,
    ) -> ModelResult<Tensor> {
        match self {
            #[cfg(target_arch = "x86_64")]
            GateUp::Fused { gate, up, biases } => {
                let combine = |out: &mut [f32], g: &[f32], u: &[f32], col: usize| match biases {
                    None => activate_gate(out, g, u, act, features),
                    Some((gb, ub)) => {
                        let at = col..col + out.len();
                        let g: Vec<f32> =
                            g.iter().zip(&gb[at.clone()]).map(|(x, b)| x + b).collect();
                        let u: Vec<f32> = u.iter().zip(&ub[at]).map(|(x, b)| x + b).collect();
                        activate_gate(out, &g, &u, act, features)
                    }
                };
                packed_rows(gate, x, "gate_up", |a, m| {
                    gate.gated_matmul(up, a, m, &combine)
                })
            }
            GateUp::Separate { gate, up } => {
                gated(&gate.forward(x)?, &up.forward(x)?, act, features)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cpu::features::Products;
    use crate::model::testing::seeded::SeededNormal;

    /// The fused product equals the two projections and the activation on every kernel this CPU
    /// runs, f32 and bf16, with and without biases, on ragged shapes: bit for bit while the
    /// depth fits one slice of the separate product, within rounding past it.
    #[test]
    fn fused_equals_two_projections_and_the_activation() -> anyhow::Result<()> {
        let mut rng = SeededNormal::new(7);
        let detected = CpuFeatures::detect();
        for (rows, n, k) in [(37, 70, 300), (5, 33, 1000), (1, 1, 2)] {
            let x = rng.tensor((rows, k), 0.0, 1.0);
            let (wg, wu) = (rng.tensor((n, k), 0.0, 0.3), rng.tensor((n, k), 0.0, 0.3));
            let (bg, bu) = (rng.tensor(n, 0.0, 1.0), rng.tensor(n, 0.0, 1.0));
            for limit in ["auto", "avx512bf16", "avx512", "avx2", "portable"] {
                let features = detected.limited_to(limit)?;
                for (bf16, bias, act) in [
                    (false, false, GateActivation::Silu),
                    (true, true, GateActivation::Silu),
                    (false, true, GateActivation::GeluTanh),
                ] {
                    let products = Products { features, bf16 };
                    let proj = |w: &Tensor, b: &Tensor| {
                        Projection::new(w.clone(), bias.then(|| b.clone()), products)
                    };
                    let fused = GateUp::new(proj(&wg, &bg)?, proj(&wu, &bu)?)?;
                    let separate = GateUp::Separate {
                        gate: proj(&wg, &bg)?,
                        up: proj(&wu, &bu)?,
                    };
                    #[cfg(target_arch = "x86_64")]
                    assert_eq!(
                        matches!(fused, GateUp::Fused { .. }),
                        limit != "portable",
                        "{limit}: fused only where the projections are packed"
                    );
                    let got = fused.forward(&x, act, features)?;
                    let want = separate.forward(&x, act, features)?;
                    assert_eq!(got.dims(), &[rows, n]);
                    let (got, want) = (got.to_vec2::<f32>()?, want.to_vec2::<f32>()?);
                    let case = format!("{limit} {rows}x{n}x{k} bf16 {bf16} bias {bias} {act:?}");
                    if k <= crate::model::cpu::sgemm::KC {
                        assert_eq!(got, want, "{case}");
                    } else {
                        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
                            assert!(
                                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                                "{case}: {g} vs {w}"
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
