//! The interface every architecture implements for the engine: embedding, one block with a per-row
//! head ablation and an optional shared key/value prefix, the final norm and the unembedding.

use candle_core::{DType, Device, Tensor};

use super::cpu_attention::fused_causal_attention;
use super::cpu_f32::is_cpu_f32;
use super::error::ModelResult;
use super::ragged::{self, Ragged};

/// How one layer's query-head outputs are changed before `o_proj`.
pub(crate) struct HeadOp {
    /// Per-row, per-head scale `[N, H, 1, 1]` (1 keeps, 0 removes).
    pub scale: Tensor,
    /// Mean-ablation target `[1, H, 1, Dh]`, blended in as `ctx * s + (1 - s) * mean`; zero ablation when `None`.
    pub mean: Option<Tensor>,
}

impl HeadOp {
    /// Applies the op to the per-head context `ctx [N, H, T, Dh]`.
    pub fn apply(&self, ctx: &Tensor) -> ModelResult<Tensor> {
        let scaled = ctx.broadcast_mul(&self.scale)?;
        Ok(match &self.mean {
            None => scaled,
            Some(mean) => {
                let rest = self.scale.affine(-1.0, 1.0)?;
                scaled.broadcast_add(&mean.broadcast_mul(&rest)?)?
            }
        })
    }
}

/// The `o_proj` input from the per-head context `ctx [N, H, T, Dh]` after `op`: `[N, T, H*Dh]`, or
/// the real positions `[M, H*Dh]` with `ragged`. On CUDA without `ragged`, a head op runs fused
/// with the merge (`kernels/head_mask.cu`); elsewhere the plain tensor ops run.
pub(crate) fn merge_heads(
    ctx: &Tensor,
    op: Option<&HeadOp>,
    ragged: Option<&Ragged>,
) -> ModelResult<Tensor> {
    #[cfg(feature = "cuda")]
    if let (Some(op), None, true) = (op, ragged, ctx.device().is_cuda()) {
        let (n, h, _, dh) = ctx.dims4()?;
        let mean = match &op.mean {
            Some(m) => Some(m.reshape((h, dh))?),
            None => None,
        };
        return super::head_mask::head_mask_merge(ctx, &op.scale.reshape((n, h))?, mean.as_ref());
    }
    match op {
        Some(op) => ragged::from_heads(ragged, &op.apply(ctx)?),
        None => ragged::from_heads(ragged, ctx),
    }
}

/// Keys and values of one layer after RoPE, `[N|1, Hkv, S, Dh]` each.
#[derive(Clone)]
pub(crate) struct Kv {
    /// Keys.
    pub k: Tensor,
    /// Values.
    pub v: Tensor,
}

impl Kv {
    /// `k, v [N, Hkv, T, Dh]` appended to `past` (broadcast over the N rows) along positions:
    /// the keys and values the new positions attend to, `[N, Hkv, P + T, Dh]` each.
    pub fn extended_by(past: Option<&Kv>, k: &Tensor, v: &Tensor) -> ModelResult<Kv> {
        Ok(match past {
            None => Kv {
                k: k.clone(),
                v: v.clone(),
            },
            Some(p) => {
                let (n, hkv, _, dh) = k.dims4()?;
                let shape = (n, hkv, p.k.dim(2)?, dh);
                Kv {
                    k: Tensor::cat(&[&p.k.broadcast_as(shape)?, k], 2)?,
                    v: Tensor::cat(&[&p.v.broadcast_as(shape)?, v], 2)?,
                }
            }
        })
    }
}

/// What one block returns.
pub(crate) struct BlockOut {
    /// Residual stream after the block, `[N, T, D]`.
    pub x: Tensor,
    /// This call's keys and values (the new positions only), `[N, Hkv, T, Dh]`.
    pub kv: Kv,
    /// The per-head attention context before any head op, `[N, H, T, Dh]`.
    pub ctx: Tensor,
}

/// A stateless decoder-only transformer split into the stages the engine drives.
pub(crate) trait Decoder: Send + Sync {
    /// Token and (for learned positions) position embedding: ids `[N, T]` at positions `pos0..pos0+T` -> `[N, T, D]`.
    fn embed(&self, ids: &Tensor, pos0: usize) -> ModelResult<Tensor>;
    /// Block `l` on `x [N, T, D]` at positions `pos0..pos0+T`, attending to `past` (positions
    /// `0..pos0`) too. With `ragged`, only its real positions go through the position-wise parts;
    /// padded positions of the result are then meaningless (no real position reads them).
    fn block(
        &self,
        l: usize,
        x: &Tensor,
        pos0: usize,
        op: Option<&HeadOp>,
        past: Option<&Kv>,
        ragged: Option<&Ragged>,
    ) -> ModelResult<BlockOut>;
    /// The final norm on `[N, D]`.
    fn final_norm(&self, x: &Tensor) -> ModelResult<Tensor>;
    /// The unembedding matrix `[V, D]`.
    fn unembed(&self) -> &Tensor;
    /// Longest prompt (tokens) the model accepts.
    fn max_positions(&self) -> usize;
}

/// Additive causal bias `[T, P + T]` for `t` queries at positions `p..p+t` over keys `0..p+t`.
pub(crate) fn causal_bias(
    t: usize,
    p: usize,
    dtype: DType,
    device: &Device,
) -> ModelResult<Tensor> {
    let s = p + t;
    let values: Vec<f32> = (0..t)
        .flat_map(|i| (0..s).map(move |j| if j > p + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(values, (t, s), device)?.to_dtype(dtype)?)
}

/// Causal attention of `q [N, H, T, Dh]` (already scaled) at positions `pos0..pos0+T` over
/// `k, v [N, Hkv, pos0 + T, Dh]` -> `[N, H, T, Dh]`: the fused kernel for f32 on the CPU, the
/// bias-and-softmax path ([`attention`]) elsewhere.
pub(crate) fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    pos0: usize,
) -> ModelResult<Tensor> {
    if is_cpu_f32(q) && is_cpu_f32(k) && is_cpu_f32(v) {
        return fused_causal_attention(q, k, v, pos0);
    }
    let t = q.dim(2)?;
    let bias = causal_bias(t, pos0, q.dtype(), q.device())?;
    attention(q, k, v, &bias)
}

/// Scaled-dot-product attention with grouped query heads.
///
/// `q [N, H, T, Dh]` (already scaled by 1/sqrt(Dh)), `k, v [N, Hkv, S, Dh]`, `bias [T, S]` -> `[N, H, T, Dh]`.
/// Query head `h` reads KV head `h / (H / Hkv)`, as Hugging Face's `repeat_kv` does, without copying K or V.
pub(crate) fn attention(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor) -> ModelResult<Tensor> {
    let (n, h, t, dh) = q.dims4()?;
    let (_, hkv, s, _) = k.dims4()?;
    let g = h / hkv;
    let q = q.contiguous()?.reshape((n, hkv, g * t, dh))?;
    // K after a cat with a broadcast prefix can have strides the CPU matmul rejects.
    let scores = q
        .matmul(&k.contiguous()?.t()?)?
        .reshape((n, hkv, g, t, s))?;
    let scores = scores.broadcast_add(bias)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((n, hkv, g * t, s))?;
    Ok(probs.matmul(&v.contiguous()?)?.reshape((n, h, t, dh))?)
}
