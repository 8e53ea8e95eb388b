//! Attention in plain tensor ops (additive causal bias, softmax): the path of GPUs and of non-f32
//! dtypes, and the reference the fused CPU kernel is tested against.

use candle_core::{DType, Device, Tensor};

use crate::model::error::ModelResult;

/// What a layer's attention does beyond causal softmax attention; `Default` is plain causal.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct AttentionRules {
    /// Sliding window (tokens): the query at position p sees keys `p - window < j <= p` only
    /// (Hugging Face's `kv_idx > q_idx - sliding_window`).
    pub window: Option<usize>,
    /// Soft cap c on the (scaled) scores: each becomes `c tanh(score / c)` (Gemma 2).
    pub softcap: Option<f32>,
}

impl AttentionRules {
    /// The first key position the query at `position` sees.
    pub fn first_key(&self, position: usize) -> usize {
        self.window.map_or(0, |w| (position + 1).saturating_sub(w))
    }
}

/// `c tanh(x / c)`, the soft cap of Gemma 2's attention scores and final logits.
pub(crate) fn softcapped(x: &Tensor, cap: f64) -> ModelResult<Tensor> {
    Ok(((x / cap)?.tanh()? * cap)?)
}

/// Additive causal bias for `t` queries per row over `s` keys: row r's queries sit at positions
/// `first[r]..first[r]+t` and see keys up to their own position, and none before the sliding
/// window of `rules`. `[T, S]` when `first` has one entry (shared by all rows), else
/// `[N, 1, 1, T, S]` for the `n` rows.
pub(crate) fn causal_bias(
    t: usize,
    first: &[usize],
    s: usize,
    n: usize,
    rules: AttentionRules,
    dtype: DType,
    device: &Device,
) -> ModelResult<Tensor> {
    let values: Vec<f32> = first
        .iter()
        .flat_map(|&p| {
            (0..t).flat_map(move |i| {
                let seen = rules.first_key(p + i)..=p + i;
                (0..s).map(move |j| match seen.contains(&j) {
                    true => 0.0,
                    false => f32::NEG_INFINITY,
                })
            })
        })
        .collect();
    let bias = if first.len() == 1 {
        Tensor::from_vec(values, (t, s), device)?
    } else {
        Tensor::from_vec(values, (n, 1, 1, t, s), device)?
    };
    Ok(bias.to_dtype(dtype)?)
}

/// Scaled-dot-product attention with grouped query heads.
///
/// `q [N, H, T, Dh]` (already scaled), `k, v [N, Hkv, S, Dh]`, `bias [T, S]` or
/// `[N, 1, 1, T, S]` -> `[N, H, T, Dh]`; the scores soft-capped at `softcap` when given.
/// Query head `h` reads KV head `h / (H / Hkv)`, as Hugging Face's `repeat_kv` does, without copying K or V.
pub(crate) fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: &Tensor,
    softcap: Option<f32>,
) -> ModelResult<Tensor> {
    let (n, h, t, dh) = q.dims4()?;
    let (_, hkv, s, _) = k.dims4()?;
    let g = h / hkv;
    let q = q.contiguous()?.reshape((n, hkv, g * t, dh))?;
    // K after a cat with a broadcast prefix can have strides the CPU matmul rejects.
    let scores = q
        .matmul(&k.contiguous()?.t()?)?
        .reshape((n, hkv, g, t, s))?;
    let scores = match softcap {
        Some(cap) => softcapped(&scores, cap as f64)?,
        None => scores,
    };
    let scores = scores.broadcast_add(bias)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((n, hkv, g * t, s))?;
    Ok(probs.matmul(&v.contiguous()?)?.reshape((n, h, t, dh))?)
}
