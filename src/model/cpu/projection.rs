//! A dense projection `y = x Wᵀ + b` (`W [out, in]`) that runs on the pre-packed AVX2 product for
//! f32 on x86 CPUs and on candle's matmul everywhere else (GPUs, half precision, other CPUs).

#[cfg(target_arch = "x86_64")]
use candle_core::DType;
use candle_core::{Module, Tensor};
use candle_nn::Linear;

#[cfg(target_arch = "x86_64")]
use crate::model::cpu::f32::{is_cpu_f32, with_values};
#[cfg(target_arch = "x86_64")]
use crate::model::cpu::sgemm::{self, PackedMatrix};
use crate::model::error::ModelResult;

/// One projection layer of a decoder.
pub(crate) enum Projection {
    /// Candle's Linear: `W` as a tensor.
    Plain(Linear),
    /// `W` packed once for the CPU product; the bias `[out]`, if any, stays a tensor.
    #[cfg(target_arch = "x86_64")]
    Packed {
        weight: PackedMatrix,
        bias: Option<Tensor>,
    },
}

impl Projection {
    /// Wraps `weight [out, in]` and an optional `bias [out]`, packing the weight when the packed
    /// CPU product applies (f32 on a CPU with AVX2 and FMA).
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> ModelResult<Projection> {
        #[cfg(target_arch = "x86_64")]
        if is_cpu_f32(&weight) && sgemm::available() {
            let (n, k) = weight.dims2()?;
            let values = weight.flatten_all()?.to_vec1::<f32>()?;
            drop(weight);
            return Ok(Projection::Packed {
                weight: PackedMatrix::pack(&values, n, k),
                bias,
            });
        }
        Ok(Projection::Plain(Linear::new(weight, bias)))
    }

    /// `x [..., in]` -> `[..., out]`.
    pub fn forward(&self, x: &Tensor) -> ModelResult<Tensor> {
        match self {
            Projection::Plain(linear) => Ok(linear.forward(x)?),
            #[cfg(target_arch = "x86_64")]
            Projection::Packed { weight, bias } => {
                let y = packed_forward(weight, x)?;
                Ok(match bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                })
            }
        }
    }
}

/// `x [..., K]` (f32, CPU) times the packed `W [N, K]` transposed: `[..., N]`.
#[cfg(target_arch = "x86_64")]
fn packed_forward(weight: &PackedMatrix, x: &Tensor) -> ModelResult<Tensor> {
    let mut dims = x.dims().to_vec();
    let k = dims.pop().unwrap_or(0);
    if k != weight.k() {
        return Err(candle_core::Error::ShapeMismatchBinaryOp {
            lhs: x.shape().clone(),
            rhs: (weight.n(), weight.k()).into(),
            op: "projection",
        }
        .into());
    }
    let m: usize = dims.iter().product();
    let values = with_values(&x.to_dtype(DType::F32)?, |a| weight.matmul(a, m))?;
    dims.push(weight.n());
    Ok(Tensor::from_vec(values, dims, x.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::seeded::SeededNormal;

    #[test]
    fn packed_and_plain_projections_agree() -> anyhow::Result<()> {
        let mut rng = SeededNormal::new(0);
        let w = rng.tensor((37, 70), 0.0, 1.0);
        let b = rng.tensor(37, 0.0, 1.0);
        let x = rng.tensor((3, 11, 70), 0.0, 1.0);
        let plain = Linear::new(w.clone(), Some(b.clone())).forward(&x)?;
        let ours = Projection::new(w, Some(b))?.forward(&x)?;
        assert_eq!(ours.dims(), &[3, 11, 37]);
        let diff = (ours - plain)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "largest difference {diff}");
        // A strided (non-contiguous) input gives the same rows as its contiguous copy.
        let xt = rng.tensor((70, 5), 0.0, 1.0).t()?;
        let proj = Projection::new(rng.tensor((9, 70), 0.0, 1.0), None)?;
        let a = proj.forward(&xt)?;
        let b = proj.forward(&xt.contiguous()?)?;
        assert_eq!(a.to_vec2::<f32>()?, b.to_vec2::<f32>()?);
        Ok(())
    }
}
