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
/// the real positions `[M, H*Dh]` with `ragged`. On CUDA and Metal without `ragged`, a head op
/// runs fused with the merge (`kernels/head_mask.cu`, `.metal`); elsewhere the plain tensor ops.
pub(crate) fn merge_heads(
    ctx: &Tensor,
    op: Option<&HeadOp>,
    ragged: Option<&Ragged>,
) -> ModelResult<Tensor> {
    #[cfg(any(feature = "cuda", feature = "metal"))]
    if let (Some(op), None, true) = (op, ragged, super::head_mask::fused_on(ctx.device())) {
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
    /// Residual stream after the block, `[N, T, D]`; `[N, 1, D]` (the read-out positions) with
    /// [`BlockAt::readout`].
    pub x: Tensor,
    /// This call's keys and values (the new positions only), `[N, Hkv, T, Dh]`.
    pub kv: Kv,
    /// The per-head attention context before any head op, `[N, H, T, Dh]` (`[N, H, 1, Dh]` with a readout).
    pub ctx: Tensor,
}

/// Where and how one block runs on `x [N, T, D]`.
#[derive(Clone, Copy, Default)]
pub(crate) struct BlockAt<'a> {
    /// Position of `x`'s first column: `x` holds positions `pos0..pos0+T`.
    pub pos0: usize,
    /// The head op before `o_proj`, if any row removes a head here.
    pub op: Option<&'a HeadOp>,
    /// Keys and values of positions `0..pos0`, shared by every row (`[1, Hkv, pos0, Dh]`).
    pub past: Option<&'a Kv>,
    /// The real positions, when rows are right-padded: only they go through the position-wise
    /// parts; padded positions of the result are then meaningless (no real position reads them).
    pub ragged: Option<&'a Ragged>,
    /// When only one position per row is needed after this block (the last layer before the
    /// readout): row r's position `readout[r]` (relative to `pos0`). Keys and values still cover
    /// every position; the query, `o_proj` and MLP run on the `N` read-out positions only.
    pub readout: Option<&'a [usize]>,
}

impl BlockAt<'_> {
    /// Absolute position of each row's first query: `pos0 + readout[r]` with a readout, else `[pos0]`.
    pub fn query_starts(&self) -> Vec<usize> {
        match self.readout {
            Some(at) => at.iter().map(|&p| self.pos0 + p).collect(),
            None => vec![self.pos0],
        }
    }

    /// `y`'s rows at the read-out positions, `[N, C]`: `y` is position-wise, `[M, C]` with
    /// `ragged`, else `[N, T, C]` (`n, t` the batch's shape). `y` itself without a readout.
    pub fn at_readout(&self, y: &Tensor, (n, t): (usize, usize)) -> ModelResult<Tensor> {
        let Some(at) = self.readout else {
            return Ok(y.clone());
        };
        let rows = ragged::readout_rows(self.ragged, n, t, at);
        let idx = Tensor::from_vec(rows, n, y.device())?;
        let c = y.dims().last().copied().unwrap_or(0);
        Ok(y.reshape(((), c))?.index_select(&idx, 0)?)
    }

    /// The residual stream `x [N, T, D]` in the query layout: `[N, 1, D]` (the read-out
    /// positions) with a readout, else `x`.
    pub fn residual_at_queries(&self, x: &Tensor) -> ModelResult<Tensor> {
        let (n, t, d) = x.dims3()?;
        match self.readout {
            Some(_) => Ok(BlockAt {
                ragged: None,
                ..*self
            }
            .at_readout(x, (n, t))?
            .reshape((n, 1, d))?),
            None => Ok(x.clone()),
        }
    }

    /// The query layout's `(rows, positions)`: `(N, 1)` with a readout, else `(N, T)`.
    pub fn query_shape(&self, (n, t): (usize, usize)) -> (usize, usize) {
        match self.readout {
            Some(_) => (n, 1),
            None => (n, t),
        }
    }

    /// Padding of the query layout: none with a readout (one real position per row).
    pub fn query_ragged(&self) -> Option<&Ragged> {
        match self.readout {
            Some(_) => None,
            None => self.ragged,
        }
    }
}

/// A stateless decoder-only transformer split into the stages the engine drives.
pub(crate) trait Decoder: Send + Sync {
    /// Token and (for learned positions) position embedding: ids `[N, T]` at positions `pos0..pos0+T` -> `[N, T, D]`.
    fn embed(&self, ids: &Tensor, pos0: usize) -> ModelResult<Tensor>;
    /// Block `l` on `x [N, T, D]`, run as `at` says.
    fn block(&self, l: usize, x: &Tensor, at: BlockAt<'_>) -> ModelResult<BlockOut>;
    /// The final norm on `[N, D]`.
    fn final_norm(&self, x: &Tensor) -> ModelResult<Tensor>;
    /// The unembedding matrix `[V, D]`.
    fn unembed(&self) -> &Tensor;
    /// Longest prompt (tokens) the model accepts.
    fn max_positions(&self) -> usize;
}

/// Additive causal bias for `t` queries per row over `s` keys: row r's queries sit at positions
/// `first[r]..first[r]+t` and see keys up to their own position. `[T, S]` when `first` has one
/// entry (shared by all rows), else `[N, 1, 1, T, S]` for the `n` rows.
pub(crate) fn causal_bias(
    t: usize,
    first: &[usize],
    s: usize,
    n: usize,
    dtype: DType,
    device: &Device,
) -> ModelResult<Tensor> {
    let values: Vec<f32> = first
        .iter()
        .flat_map(|&p| {
            (0..t).flat_map(move |i| {
                (0..s).map(move |j| if j > p + i { f32::NEG_INFINITY } else { 0.0 })
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

/// Causal attention of `q [N, H, T, Dh]` (already scaled) over `k, v [N, Hkv, S, Dh]`, row r's
/// queries at positions `first[r]..first[r]+T` (one shared entry, or one per row) ->
/// `[N, H, T, Dh]`: the fused kernel for f32 on the CPU, the bias-and-softmax path
/// ([`attention`]) elsewhere.
pub(crate) fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    first: &[usize],
) -> ModelResult<Tensor> {
    if is_cpu_f32(q) && is_cpu_f32(k) && is_cpu_f32(v) {
        return fused_causal_attention(q, k, v, first);
    }
    let (n, _, t, _) = q.dims4()?;
    let bias = causal_bias(t, first, k.dim(2)?, n, q.dtype(), q.device())?;
    attention(q, k, v, &bias)
}

/// Scaled-dot-product attention with grouped query heads.
///
/// `q [N, H, T, Dh]` (already scaled by 1/sqrt(Dh)), `k, v [N, Hkv, S, Dh]`, `bias [T, S]` or
/// `[N, 1, 1, T, S]` -> `[N, H, T, Dh]`.
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::model::config::{Gpt2Config, LlamaConfig, SpecialIds};
    use crate::model::gpt2::Gpt2;
    use crate::model::llama::Llama;
    use crate::model::seeded::SeededNormal;
    use crate::model::weights::Weights;

    const D: usize = 32;
    const VOCAB: usize = 40;
    const POSITIONS: usize = 64;

    /// Random weights of the given names and shapes; norm scales near 1.
    fn weights(shapes: &[(String, Vec<usize>)], dtype: DType, seed: u64) -> Weights {
        let mut rng = SeededNormal::new(seed);
        let tensors: HashMap<String, Tensor> = shapes
            .iter()
            .map(|(name, shape)| {
                let mean = if name.contains("norm") || name.contains("ln_") {
                    1.0
                } else {
                    0.0
                };
                let t = rng.tensor(shape.as_slice(), mean, 0.2);
                (name.clone(), t.to_dtype(dtype).unwrap())
            })
            .collect();
        Weights::from_tensors(tensors, dtype, &Device::Cpu)
    }

    /// A two-layer qwen3-style decoder (grouped-query attention, qkv bias, q/k norms).
    fn llama(dtype: DType) -> Llama {
        let cfg = LlamaConfig {
            model_type: "qwen3".into(),
            vocab_size: VOCAB,
            hidden_size: D,
            intermediate_size: 48,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 8,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            rope_scaling: None,
            max_position_embeddings: POSITIONS,
            tie_word_embeddings: true,
            qkv_bias: true,
            o_bias: false,
            mlp_bias: false,
            qk_norm: true,
            sliding_window: None,
            special: SpecialIds::default(),
        };
        let mut shapes = vec![
            ("model.embed_tokens.weight".to_string(), vec![VOCAB, D]),
            ("model.norm.weight".to_string(), vec![D]),
        ];
        for l in 0..2 {
            let p = format!("model.layers.{l}");
            for (name, shape) in [
                ("self_attn.q_proj.weight", vec![32, D]),
                ("self_attn.q_proj.bias", vec![32]),
                ("self_attn.k_proj.weight", vec![16, D]),
                ("self_attn.k_proj.bias", vec![16]),
                ("self_attn.v_proj.weight", vec![16, D]),
                ("self_attn.v_proj.bias", vec![16]),
                ("self_attn.o_proj.weight", vec![D, 32]),
                ("self_attn.q_norm.weight", vec![8]),
                ("self_attn.k_norm.weight", vec![8]),
                ("mlp.gate_proj.weight", vec![48, D]),
                ("mlp.up_proj.weight", vec![48, D]),
                ("mlp.down_proj.weight", vec![D, 48]),
                ("input_layernorm.weight", vec![D]),
                ("post_attention_layernorm.weight", vec![D]),
            ] {
                shapes.push((format!("{p}.{name}"), shape));
            }
        }
        Llama::new(cfg, &weights(&shapes, dtype, 3), dtype, &Device::Cpu).unwrap()
    }

    /// A two-layer GPT-2 with 4 heads.
    fn gpt2() -> Gpt2 {
        let cfg = Gpt2Config {
            vocab_size: VOCAB,
            n_embd: D,
            n_layer: 2,
            n_head: 4,
            n_positions: POSITIONS,
            layer_norm_epsilon: 1e-5,
            n_inner: 64,
            gelu_erf: false,
            special: SpecialIds::default(),
        };
        let mut shapes = vec![
            ("wte.weight".to_string(), vec![VOCAB, D]),
            ("wpe.weight".to_string(), vec![POSITIONS, D]),
            ("ln_f.weight".to_string(), vec![D]),
            ("ln_f.bias".to_string(), vec![D]),
        ];
        for l in 0..2 {
            for (name, shape) in [
                ("ln_1.weight", vec![D]),
                ("ln_1.bias", vec![D]),
                ("attn.c_attn.weight", vec![D, 3 * D]),
                ("attn.c_attn.bias", vec![3 * D]),
                ("attn.c_proj.weight", vec![D, D]),
                ("attn.c_proj.bias", vec![D]),
                ("ln_2.weight", vec![D]),
                ("ln_2.bias", vec![D]),
                ("mlp.c_fc.weight", vec![D, 64]),
                ("mlp.c_fc.bias", vec![64]),
                ("mlp.c_proj.weight", vec![64, D]),
                ("mlp.c_proj.bias", vec![D]),
            ] {
                shapes.push((format!("h.{l}.{name}"), shape));
            }
        }
        Gpt2::new(cfg, &weights(&shapes, DType::F32, 4)).unwrap()
    }

    fn max_gap(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.dims(), b.dims());
        (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    /// The read-out block at row r equals the full block at `(r, last[r])`, with and without
    /// padding, a shared key/value prefix and a head op.
    fn readout_equals_the_full_block(model: &dyn Decoder, kv_heads: usize, dtype: DType, tol: f64) {
        let (n, t, past_len) = (3, 7, 3);
        let mut rng = SeededNormal::new(9);
        let x = rng.tensor((n, t, D), 0.0, 1.0).to_dtype(dtype).unwrap();
        let head_dim = 8;
        let past = Kv {
            k: rng
                .tensor((1, kv_heads, past_len, head_dim), 0.0, 1.0)
                .to_dtype(dtype)
                .unwrap(),
            v: rng
                .tensor((1, kv_heads, past_len, head_dim), 0.0, 1.0)
                .to_dtype(dtype)
                .unwrap(),
        };
        let scale = Tensor::from_vec(
            vec![1f32, 0., 1., 1., 0., 0., 1., 1., 1., 1., 1., 0.],
            (n, 4, 1, 1),
            &Device::Cpu,
        )
        .unwrap()
        .to_dtype(dtype)
        .unwrap();
        let op = HeadOp { scale, mean: None };
        for lens in [[7, 4, 6], [7, 7, 7]] {
            let last: Vec<usize> = lens.iter().map(|&len| len - 1).collect();
            let ragged = Ragged::new(&lens, t, &Device::Cpu).unwrap();
            assert_eq!(ragged.is_some(), lens != [7, 7, 7], "padding is skipped");
            for (with_past, with_op) in [(false, false), (true, false), (false, true), (true, true)]
            {
                let full_at = BlockAt {
                    pos0: if with_past { past_len } else { 0 },
                    op: with_op.then_some(&op),
                    past: with_past.then_some(&past),
                    ragged: ragged.as_ref(),
                    readout: None,
                };
                let part_at = BlockAt {
                    readout: Some(&last),
                    ..full_at
                };
                let l = 1;
                let full = model.block(l, &x, full_at).unwrap();
                let part = model.block(l, &x, part_at).unwrap();
                let want = part_at.residual_at_queries(&full.x).unwrap();
                let what = format!("lens {lens:?}, past {with_past}, op {with_op}");
                assert_eq!(part.x.dims(), &[n, 1, D], "{what}");
                let gap = max_gap(&part.x, &want);
                assert!(gap < tol, "{what}: read-out block differs by {gap}");
                assert!(
                    max_gap(&part.kv.k, &full.kv.k) == 0.0,
                    "{what}: keys differ"
                );
            }
        }
    }

    #[test]
    fn llama_readout_block_equals_the_full_block() {
        readout_equals_the_full_block(&llama(DType::F32), 2, DType::F32, 1e-5);
        // bf16 runs candle's bias-and-softmax attention, the path GPUs take.
        readout_equals_the_full_block(&llama(DType::BF16), 2, DType::BF16, 0.05);
    }

    #[test]
    fn gpt2_readout_block_equals_the_full_block() {
        readout_equals_the_full_block(&gpt2(), 4, DType::F32, 1e-5);
    }
}
