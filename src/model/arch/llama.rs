//! The generic Llama-style decoder (llama, mistral, qwen2, qwen3, olmo2, phi3): RMSNorm on the sublayer
//! inputs (or, OLMo 2, on their outputs), RoPE (optionally llama3- or linearly scaled),
//! grouped-query attention, SwiGLU MLP, optional q/k/v bias, optional q/k RMSNorm (per head, or
//! over the whole projection), q/k/v and gate/up as separate or fused (Phi-3) projections, RoPE
//! over all or part of each head, explicit head_dim, tied or separate lm_head. Head ops act on
//! each query head's context before `o_proj`.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::RmsNorm;

use crate::model::arch::decoder::{causal_attention, merge_heads, BlockAt, BlockOut, Decoder, Kv};
use crate::model::arch::ragged;
use crate::model::arch::rope::Rope;
use crate::model::cpu::projection::Projection;
use crate::model::cpu::swiglu::swiglu;
use crate::model::error::ModelResult;
use crate::model::load::config::{LlamaConfig, QkNorm, RopeScaling};
use crate::model::load::weights::Weights;

struct Attention {
    q: Projection,
    k: Projection,
    v: Projection,
    o: Projection,
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
}

struct Mlp {
    gate: Projection,
    up: Projection,
    down: Projection,
}

/// A block's RMSNorms: on each sublayer's input (Llama: `input_layernorm` before attention,
/// `post_attention_layernorm` before the MLP), or on each sublayer's output (OLMo 2:
/// `post_attention_layernorm` after attention, `post_feedforward_layernorm` after the MLP).
enum Norms {
    Before { attn: RmsNorm, mlp: RmsNorm },
    After { attn: RmsNorm, mlp: RmsNorm },
}

/// `norm` of `x` where there is one, else `x`.
fn maybe(norm: Option<&RmsNorm>, x: Tensor) -> ModelResult<Tensor> {
    Ok(match norm {
        Some(n) => n.forward(&x)?,
        None => x,
    })
}

impl Norms {
    /// The norms on the attention's and the MLP's inputs.
    fn inputs(&self) -> (Option<&RmsNorm>, Option<&RmsNorm>) {
        match self {
            Norms::Before { attn, mlp } => (Some(attn), Some(mlp)),
            Norms::After { .. } => (None, None),
        }
    }

    /// The norms on the attention's and the MLP's outputs.
    fn outputs(&self) -> (Option<&RmsNorm>, Option<&RmsNorm>) {
        match self {
            Norms::Before { .. } => (None, None),
            Norms::After { attn, mlp } => (Some(attn), Some(mlp)),
        }
    }
}

struct Block {
    norms: Norms,
    attn: Attention,
    mlp: Mlp,
}

/// A loaded Llama-style decoder.
pub(crate) struct Llama {
    cfg: LlamaConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Tensor,
    rope: Rope,
}

fn linear(
    w: &Weights,
    name: &str,
    out_dim: usize,
    in_dim: usize,
    bias: bool,
) -> ModelResult<Projection> {
    let weight = w.take(&format!("{name}.weight"), &[out_dim, in_dim])?;
    let bias = if bias {
        Some(w.get(&format!("{name}.bias"), &[out_dim])?)
    } else {
        None
    };
    Projection::new(weight, bias, w.products())
}

/// A bias-free projection stored as one weight whose row blocks of `sizes` are separate
/// projections (Phi-3's `qkv_proj`, `gate_up_proj`), split at load.
fn split_rows<const N: usize>(
    w: &Weights,
    name: &str,
    sizes: [usize; N],
    in_dim: usize,
) -> ModelResult<[Projection; N]> {
    let weight = w.take(&format!("{name}.weight"), &[sizes.iter().sum(), in_dim])?;
    let mut start = 0;
    let mut parts = Vec::with_capacity(N);
    for rows in sizes {
        let part = weight.narrow(0, start, rows)?.contiguous()?;
        parts.push(Projection::new(part, None, w.products())?);
        start += rows;
    }
    Ok(parts
        .try_into()
        .unwrap_or_else(|_| unreachable!("one projection per size")))
}

fn rms(w: &Weights, name: &str, dim: usize, eps: f64) -> ModelResult<RmsNorm> {
    Ok(RmsNorm::new(w.get(&format!("{name}.weight"), &[dim])?, eps))
}

/// Inverse RoPE frequencies (radians per position) for `dim / 2` pairs, after scaling.
pub(crate) fn inv_freq(cfg: &LlamaConfig) -> Vec<f64> {
    let dim = cfg.rotary_dims;
    let base: Vec<f64> = (0..dim / 2)
        .map(|i| 1.0 / cfg.rope_theta.powf((2 * i) as f64 / dim as f64))
        .collect();
    match cfg.rope_scaling {
        None => base,
        Some(RopeScaling::Linear { factor }) => base.iter().map(|f| f / factor).collect(),
        Some(RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings: old,
        }) => {
            let low_wavelen = old / low_freq_factor;
            let high_wavelen = old / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect()
        }
    }
}

impl Llama {
    /// Builds the decoder from checkpoint weights named as in Hugging Face (`model.layers.N...`).
    pub fn new(cfg: LlamaConfig, w: &Weights, dtype: DType, device: &Device) -> ModelResult<Llama> {
        let (d, hd) = (cfg.hidden_size, cfg.head_dim);
        let (h, hkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        let embed = w.get("model.embed_tokens.weight", &[cfg.vocab_size, d])?;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let qk_norm = |name: &str, heads: usize| -> ModelResult<Option<RmsNorm>> {
                let width = match cfg.qk_norm {
                    QkNorm::None => return Ok(None),
                    QkNorm::PerHead => hd,
                    QkNorm::Whole => heads * hd,
                };
                rms(w, &format!("{p}.self_attn.{name}"), width, cfg.rms_norm_eps).map(Some)
            };
            let fused = |name: &str| w.contains(&format!("{p}.{name}.weight"));
            let [q, k, v] = match fused("self_attn.qkv_proj") {
                // Phi-3: one [q; k; v] projection.
                true => split_rows(
                    w,
                    &format!("{p}.self_attn.qkv_proj"),
                    [h * hd, hkv * hd, hkv * hd],
                    d,
                )?,
                false => {
                    let proj = |name: &str, heads: usize| {
                        linear(
                            w,
                            &format!("{p}.self_attn.{name}"),
                            heads * hd,
                            d,
                            cfg.qkv_bias,
                        )
                    };
                    [
                        proj("q_proj", h)?,
                        proj("k_proj", hkv)?,
                        proj("v_proj", hkv)?,
                    ]
                }
            };
            let attn = Attention {
                q,
                k,
                v,
                o: linear(w, &format!("{p}.self_attn.o_proj"), d, h * hd, cfg.o_bias)?,
                q_norm: qk_norm("q_norm", h)?,
                k_norm: qk_norm("k_norm", hkv)?,
            };
            let i = cfg.intermediate_size;
            let [gate, up] = match fused("mlp.gate_up_proj") {
                // Phi-3: one [gate; up] projection.
                true => split_rows(w, &format!("{p}.mlp.gate_up_proj"), [i, i], d)?,
                false => [
                    linear(w, &format!("{p}.mlp.gate_proj"), i, d, cfg.mlp_bias)?,
                    linear(w, &format!("{p}.mlp.up_proj"), i, d, cfg.mlp_bias)?,
                ],
            };
            let mlp = Mlp {
                gate,
                up,
                down: linear(w, &format!("{p}.mlp.down_proj"), d, i, cfg.mlp_bias)?,
            };
            let norm = |name: &str| rms(w, &format!("{p}.{name}"), d, cfg.rms_norm_eps);
            let norms = match cfg.norms_after {
                false => Norms::Before {
                    attn: norm("input_layernorm")?,
                    mlp: norm("post_attention_layernorm")?,
                },
                true => Norms::After {
                    attn: norm("post_attention_layernorm")?,
                    mlp: norm("post_feedforward_layernorm")?,
                },
            };
            blocks.push(Block { norms, attn, mlp });
        }
        let norm = rms(w, "model.norm", d, cfg.rms_norm_eps)?;
        let lm_head = match w.get_opt("lm_head.weight", &[cfg.vocab_size, d])? {
            Some(t) if !cfg.tie_word_embeddings => t,
            _ if cfg.tie_word_embeddings => embed.clone(),
            _ => return Err(w.missing("lm_head.weight")),
        };
        let rope = Rope::new(&inv_freq(&cfg), cfg.max_position_embeddings, dtype, device)?;
        Ok(Llama {
            rope,
            cfg,
            embed,
            blocks,
            norm,
            lm_head,
        })
    }
}

impl Decoder for Llama {
    fn embed(&self, ids: &Tensor, _pos0: usize) -> ModelResult<Tensor> {
        let (n, t) = ids.dims2()?;
        Ok(self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((
            n,
            t,
            self.cfg.hidden_size,
        ))?)
    }

    fn block(&self, l: usize, x: &Tensor, at: BlockAt<'_>) -> ModelResult<BlockOut> {
        let blk = &self.blocks[l];
        let (n, t, _) = x.dims3()?;
        let (h, hkv, hd) = (
            self.cfg.num_attention_heads,
            self.cfg.num_key_value_heads,
            self.cfg.head_dim,
        );
        let a = &blk.attn;
        let (attn_in, mlp_in) = blk.norms.inputs();
        let (attn_out, mlp_out) = blk.norms.outputs();
        let xn = maybe(attn_in, ragged::pack(at.ragged, x)?)?;
        // Projections stay position-wise; q/k norms act per head or per position, so they run
        // there too.
        let cfg_qk = self.cfg.qk_norm;
        let heads = |input: &Tensor,
                     lin: &Projection,
                     count: usize,
                     norm: Option<&RmsNorm>,
                     scale: f64,
                     queries: bool|
         -> ModelResult<Tensor> {
            let y = lin.forward(input)?;
            let y = match (norm, cfg_qk) {
                (Some(nm), QkNorm::PerHead) => {
                    let rows = y.elem_count() / (count * hd);
                    nm.forward(&y.reshape((rows, count, hd))?)?
                        .reshape((rows, count * hd))?
                }
                (Some(nm), _) => nm.forward(&y)?,
                (None, _) => y,
            };
            let (shape, padding) = match queries {
                true => (at.query_shape((n, t)), at.query_ragged()),
                false => ((n, t), at.ragged),
            };
            ragged::to_heads(padding, &y, 0, shape, (count, hd), scale)
        };
        // RoPE is linear, so the 1/sqrt(Dh) score scale can be applied to q before it.
        let q_scale = 1.0 / (hd as f64).sqrt();
        let q_in = at.at_readout(&xn, (n, t))?;
        let q = heads(&q_in, &a.q, h, a.q_norm.as_ref(), q_scale, true)?;
        let starts = at.query_starts();
        let q = self.rope.apply(&q, &starts)?;
        let k = heads(&xn, &a.k, hkv, a.k_norm.as_ref(), 1.0, false)?;
        let k = self.rope.apply(&k, &[at.pos0])?;
        let v = heads(&xn, &a.v, hkv, None, 1.0, false)?;
        let all = Kv::extended_by(at.past, &k, &v)?;
        let ctx = causal_attention(&q, &all.k, &all.v, &starts)?;
        let padding = at.query_ragged();
        let merged = merge_heads(&ctx, at.op, padding)?;
        let x = at.residual_at_queries(x)?;
        let x = ragged::add_unpacked(padding, &x, &maybe(attn_out, a.o.forward(&merged)?)?)?;
        let xn = maybe(mlp_in, ragged::pack(padding, &x)?)?;
        let m = &blk.mlp;
        let act = swiglu(&m.gate.forward(&xn)?, &m.up.forward(&xn)?)?;
        let x = ragged::add_unpacked(padding, &x, &maybe(mlp_out, m.down.forward(&act)?)?)?;
        Ok(BlockOut {
            x,
            kv: Kv { k, v },
            ctx,
        })
    }

    fn final_norm(&self, x: &Tensor) -> ModelResult<Tensor> {
        Ok(self.norm.forward(x)?)
    }

    fn unembed(&self) -> &Tensor {
        &self.lm_head
    }

    fn max_positions(&self) -> usize {
        let max = self.cfg.max_position_embeddings;
        self.cfg.sliding_window.map_or(max, |w| w.min(max))
    }
}
