//! A dense projection `y = x Wᵀ + b` (`W [out, in]`) that runs on the pre-packed product for f32
//! on x86 CPUs with AVX2 (f32 or bf16 products) and on candle's matmul everywhere else (GPUs,
//! half precision, other CPUs).

use candle_core::{DType, Module, Tensor};
use candle_nn::Linear;

use crate::model::cpu::f32::is_cpu_f32;
#[cfg(target_arch = "x86_64")]
use crate::model::cpu::f32::with_values;
use crate::model::cpu::features::Products;
#[cfg(target_arch = "x86_64")]
use crate::model::cpu::sgemm::{Kernel, PackedMatrix};
use crate::model::error::ModelResult;

/// One projection layer of a decoder.
pub(crate) enum Projection {
    /// Candle's Linear: `W` as a tensor. With `bf16_inputs`, `W` was rounded to bf16 at load
    /// and each input is rounded before the product (bf16 products on a CPU without a kernel).
    Plain { linear: Linear, bf16_inputs: bool },
    /// `W` packed once for the CPU product; the bias `[out]`, if any, stays a tensor.
    #[cfg(target_arch = "x86_64")]
    Packed {
        weight: PackedMatrix,
        bias: Option<Tensor>,
    },
}

impl Projection {
    /// Wraps `weight [out, in]` and an optional `bias [out]`. An f32 CPU weight is packed for
    /// the best kernel `products` allow, and multiplied in bf16 when `products.bf16`.
    pub fn new(
        weight: Tensor,
        bias: Option<Tensor>,
        products: Products,
    ) -> ModelResult<Projection> {
        let cpu_f32 = is_cpu_f32(&weight);
        #[cfg(target_arch = "x86_64")]
        if let Some(kernel) = Kernel::choose(products.features, products.bf16).filter(|_| cpu_f32) {
            let (n, k) = weight.dims2()?;
            let values = weight.flatten_all()?.to_vec1::<f32>()?;
            drop(weight);
            return Ok(Projection::Packed {
                weight: PackedMatrix::pack(&values, n, k, kernel, products.bf16),
                bias,
            });
        }
        let bf16_inputs = cpu_f32 && products.bf16;
        let weight = if bf16_inputs {
            round_to_bf16(&weight)?
        } else {
            weight
        };
        Ok(Projection::Plain {
            linear: Linear::new(weight, bias),
            bf16_inputs,
        })
    }

    /// The packed weight of a bias-free CPU product (for the readout's fused reductions).
    #[cfg(target_arch = "x86_64")]
    pub fn packed(&self) -> Option<&PackedMatrix> {
        match self {
            Projection::Packed { weight, bias: None } => Some(weight),
            _ => None,
        }
    }

    /// `x [..., in]` -> `[..., out]`.
    pub fn forward(&self, x: &Tensor) -> ModelResult<Tensor> {
        match self {
            Projection::Plain {
                linear,
                bf16_inputs: false,
            } => Ok(linear.forward(x)?),
            Projection::Plain {
                linear,
                bf16_inputs: true,
            } => Ok(linear.forward(&round_to_bf16(x)?)?),
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

/// `t` (f32) with every value rounded to the nearest bf16, kept in f32.
fn round_to_bf16(t: &Tensor) -> ModelResult<Tensor> {
    Ok(t.to_dtype(DType::BF16)?.to_dtype(DType::F32)?)
}

/// `x [..., K]` (f32, CPU) times the packed `W [N, K]` transposed: `[..., N]`.
#[cfg(target_arch = "x86_64")]
fn packed_forward(weight: &PackedMatrix, x: &Tensor) -> ModelResult<Tensor> {
    packed_rows(weight, x, "projection", |a, m| weight.matmul(a, m))
}

/// `product(a, m)` over the `m` rows of `x [..., K]` (as f32 values, row-major), for a product
/// with `weight`'s shape `[N, K]`: `[..., N]`. A width other than K is an error naming `op`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn packed_rows(
    weight: &PackedMatrix,
    x: &Tensor,
    op: &'static str,
    product: impl FnOnce(&[f32], usize) -> Vec<f32>,
) -> ModelResult<Tensor> {
    let mut dims = x.dims().to_vec();
    let k = dims.pop().unwrap_or(0);
    if k != weight.k() {
        return Err(candle_core::Error::ShapeMismatchBinaryOp {
            lhs: x.shape().clone(),
            rhs: (weight.n(), weight.k()).into(),
            op,
        }
        .into());
    }
    let m: usize = dims.iter().product();
    let values = with_values(&x.to_dtype(DType::F32)?, |a| product(a, m))?;
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
        let ours = Projection::new(w, Some(b), Products::f32_detected())?.forward(&x)?;
        assert_eq!(ours.dims(), &[3, 11, 37]);
        let diff = (ours - plain)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-4, "largest difference {diff}");
        // A strided (non-contiguous) input gives the same rows as its contiguous copy.
        let xt = rng.tensor((70, 5), 0.0, 1.0).t()?;
        let proj = Projection::new(
            rng.tensor((9, 70), 0.0, 1.0),
            None,
            Products::f32_detected(),
        )?;
        let a = proj.forward(&xt)?;
        let b = proj.forward(&xt.contiguous()?)?;
        assert_eq!(a.to_vec2::<f32>()?, b.to_vec2::<f32>()?);
        Ok(())
    }

    /// bf16 products give the same values (up to the order of f32 sums) on every kernel this
    /// CPU can run and on candle's matmul, and differ from f32 products by bf16's rounding.
    #[test]
    fn bf16_products_agree_across_kernels() -> anyhow::Result<()> {
        use crate::model::cpu::features::CpuFeatures;
        let mut rng = SeededNormal::new(1);
        let w = rng.tensor((70, 300), 0.0, 1.0);
        let b = rng.tensor(70, 0.0, 1.0);
        let x = rng.tensor((2, 9, 300), 0.0, 1.0);
        let run = |limit: &str, bf16: bool| -> anyhow::Result<Tensor> {
            let features = CpuFeatures::detect().limited_to(limit)?;
            let p = Projection::new(w.clone(), Some(b.clone()), Products { features, bf16 })?;
            Ok(p.forward(&x)?)
        };
        let portable = run("portable", true)?;
        let largest = |t: Tensor| -> anyhow::Result<f32> { Ok(t.abs()?.max_all()?.to_scalar()?) };
        for limit in ["auto", "avx512", "avx2"] {
            let diff = largest((run(limit, true)? - &portable)?)?;
            assert!(diff < 1e-4, "{limit}: largest difference {diff}");
        }
        let f32_diff = largest((run("portable", false)? - &portable)?)?;
        assert!(
            f32_diff > 1e-3 && f32_diff < 0.5,
            "bf16 against f32: {f32_diff}"
        );
        Ok(())
    }
}
