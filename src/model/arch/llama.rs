//! The generic Llama-style decoder (llama, mistral, qwen2, qwen3, olmo2, phi3, gemma2,
//! gemma3_text): RMSNorm on the sublayer inputs, outputs (OLMo 2) or both (Gemma, with (1 + w)
//! weights), RoPE (optionally llama3- or linearly scaled; Gemma 3's own base on its sliding
//! layers), grouped-query attention with optional per-layer sliding windows and score soft caps,
//! SwiGLU or GeGLU MLP, optional q/k/v bias, optional q/k RMSNorm (per head, or over the whole
//! projection), q/k/v and gate/up as separate or fused (Phi-3) projections, RoPE over all or part
//! of each head, explicit head_dim, scaled embeddings, soft-capped logits, tied or separate
//! lm_head. Head ops act on each query head's context before `o_proj`.

use candle_core::{DType, Device, Tensor};

use crate::model::arch::attention::AttentionRules;
use crate::model::arch::decoder::{
    causal_attention, merge_heads, BlockAt, BlockOut, Decoder, Kv, Starts,
};
use crate::model::arch::ragged;
use crate::model::arch::rope::Rope;
use crate::model::cpu::features::CpuFeatures;
use crate::model::cpu::gate_up::GateUp;
use crate::model::cpu::projection::Projection;
use crate::model::cpu::rms_norm::RmsNorm;
use crate::model::error::ModelResult;
use crate::model::load::config::{LlamaConfig, NormPlacement, QkNorm, RopeScaling};
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
    gate_up: GateUp,
    down: Projection,
    /// The instruction sets the fused gate may use (the model's, `SPEX_CPU_KERNELS` applied).
    features: CpuFeatures,
}

/// A block's RMSNorms on each sublayer's input and output, where it has them.
struct Norms {
    attn_in: Option<RmsNorm>,
    attn_out: Option<RmsNorm>,
    mlp_in: Option<RmsNorm>,
    mlp_out: Option<RmsNorm>,
}

/// `norm` of `x` where there is one, else `x`.
fn maybe(norm: Option<&RmsNorm>, x: Tensor) -> ModelResult<Tensor> {
    Ok(match norm {
        Some(n) => n.forward(&x)?,
        None => x,
    })
}

impl Norms {
    /// Layer `p`'s norms (`model.layers.N`) as `placement` puts them, `rms` loading one by name.
    fn load(
        placement: NormPlacement,
        p: &str,
        rms: impl Fn(&str) -> ModelResult<RmsNorm>,
    ) -> ModelResult<Norms> {
        let norm = |name: &str| rms(&format!("{p}.{name}")).map(Some);
        Ok(match placement {
            NormPlacement::Inputs => Norms {
                attn_in: norm("input_layernorm")?,
                attn_out: None,
                mlp_in: norm("post_attention_layernorm")?,
                mlp_out: None,
            },
            NormPlacement::Outputs => Norms {
                attn_in: None,
                attn_out: norm("post_attention_layernorm")?,
                mlp_in: None,
                mlp_out: norm("post_feedforward_layernorm")?,
            },
            NormPlacement::Both => Norms {
                attn_in: norm("input_layernorm")?,
                attn_out: norm("post_attention_layernorm")?,
                mlp_in: norm("pre_feedforward_layernorm")?,
                mlp_out: norm("post_feedforward_layernorm")?,
            },
        })
    }
}

struct Block {
    norms: Norms,
    attn: Attention,
    mlp: Mlp,
    /// Sliding window and score soft cap.
    rules: AttentionRules,
    /// Whether the block uses the local RoPE (Gemma 3's sliding layers).
    local_rope: bool,
}

/// A loaded Llama-style decoder.
pub(crate) struct Llama {
    cfg: LlamaConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Tensor,
    rope: Rope,
    /// The sliding layers' RoPE where it differs (Gemma 3).
    local_rope: Option<Rope>,
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

/// The RMSNorm `name` over `dim` values, `offset` added to its weight (Gemma's `1 + w`).
fn rms(w: &Weights, name: &str, dim: usize, eps: f64, offset: f64) -> ModelResult<RmsNorm> {
    let weight = w.get(&format!("{name}.weight"), &[dim])?;
    let weight = match offset {
        0.0 => weight,
        _ => (weight + offset)?,
    };
    Ok(RmsNorm::new(weight, eps))
}

/// Inverse RoPE frequencies (radians per position) for `dim / 2` pairs of the global layers,
/// after scaling.
pub(crate) fn inv_freq(cfg: &LlamaConfig) -> Vec<f64> {
    scaled_inv_freq(cfg.rotary_dims, cfg.rope_theta, cfg.rope_scaling.as_ref())
}

/// Inverse RoPE frequencies for `dim / 2` pairs of base `theta`, after `scaling`.
fn scaled_inv_freq(dim: usize, theta: f64, scaling: Option<&RopeScaling>) -> Vec<f64> {
    let base: Vec<f64> = (0..dim / 2)
        .map(|i| 1.0 / theta.powf((2 * i) as f64 / dim as f64))
        .collect();
    match scaling {
        None => base,
        Some(&RopeScaling::Linear { factor }) => base.iter().map(|f| f / factor).collect(),
        Some(&RopeScaling::Llama3 {
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
        let variants = &cfg.variants;
        let rms =
            |name: &str, dim: usize| rms(w, name, dim, cfg.rms_norm_eps, variants.norm_offset);
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
                rms(&format!("{p}.self_attn.{name}"), width).map(Some)
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
                gate_up: GateUp::new(gate, up)?,
                down: linear(w, &format!("{p}.mlp.down_proj"), d, i, cfg.mlp_bias)?,
                features: w.products().features,
            };
            let norms = Norms::load(cfg.norms, &p, |name| rms(name, d))?;
            let window = variants.layer_windows.get(l).copied().flatten();
            let rules = AttentionRules {
                window,
                softcap: variants.attn_softcap.map(|c| c as f32),
            };
            blocks.push(Block {
                norms,
                attn,
                mlp,
                rules,
                local_rope: window.is_some() && variants.local_rope.is_some(),
            });
        }
        let norm = rms("model.norm", d)?;
        let lm_head = match w.get_opt("lm_head.weight", &[cfg.vocab_size, d])? {
            Some(t) if !cfg.tie_word_embeddings => t,
            _ if cfg.tie_word_embeddings => embed.clone(),
            _ => return Err(w.missing("lm_head.weight")),
        };
        let positions = cfg.max_position_embeddings;
        let rope = Rope::new(&inv_freq(&cfg), positions, dtype, device)?;
        let local_rope = match &variants.local_rope {
            Some((theta, scaling)) => {
                let freq = scaled_inv_freq(cfg.rotary_dims, *theta, scaling.as_ref());
                Some(Rope::new(&freq, positions, dtype, device)?)
            }
            None => None,
        };
        Ok(Llama {
            rope,
            local_rope,
            cfg,
            embed,
            blocks,
            norm,
            lm_head,
        })
    }
}

impl Decoder for Llama {
    fn embed(&self, ids: &Tensor, _starts: Starts) -> ModelResult<Tensor> {
        let (n, t) = ids.dims2()?;
        let x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((
            n,
            t,
            self.cfg.hidden_size,
        ))?;
        // Gemma multiplies by the scale in the embedding's dtype.
        Ok(match self.cfg.variants.embed_scale {
            Some(scale) => (x * f64::from(scale as f32))?,
            None => x,
        })
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
        let norms = &blk.norms;
        let xn = maybe(norms.attn_in.as_ref(), ragged::pack(at.ragged, x)?)?;
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
        // RoPE is linear, so the 1/sqrt(Dh) (Gemma: 1/sqrt(query_pre_attn_scalar)) score scale
        // can be applied to q before it.
        let scalar = self.cfg.variants.query_pre_attn_scalar;
        let q_scale = 1.0 / scalar.unwrap_or(hd as f64).sqrt();
        let rope = match blk.local_rope {
            true => self.local_rope.as_ref().unwrap_or(&self.rope),
            false => &self.rope,
        };
        let q_in = at.at_readout(&xn, (n, t))?;
        let q = heads(&q_in, &a.q, h, a.q_norm.as_ref(), q_scale, true)?;
        let starts = at.query_starts();
        let q = rope.apply(&q, &starts)?;
        let k = heads(&xn, &a.k, hkv, a.k_norm.as_ref(), 1.0, false)?;
        let k = rope.apply(&k, &at.starts.to_vec())?;
        let v = heads(&xn, &a.v, hkv, None, 1.0, false)?;
        let all = at.attended(&k, &v)?;
        let ctx = causal_attention(&q, &all.k, &all.v, &starts, blk.rules, blk.mlp.features)?;
        let padding = at.query_ragged();
        let merged = merge_heads(&ctx, at.op, padding)?;
        let x = at.residual_at_queries(x)?;
        let attended = maybe(norms.attn_out.as_ref(), a.o.forward(&merged)?)?;
        let x = ragged::add_unpacked(padding, &x, &attended)?;
        let xn = maybe(norms.mlp_in.as_ref(), ragged::pack(padding, &x)?)?;
        let m = &blk.mlp;
        let gate_act = self.cfg.variants.gate_activation;
        let act = m.gate_up.forward(&xn, gate_act, m.features)?;
        let mlp = maybe(norms.mlp_out.as_ref(), m.down.forward(&act)?)?;
        let x = ragged::add_unpacked(padding, &x, &mlp)?;
        Ok(BlockOut {
            x,
            kv: Kv { k, v },
            ctx,
        })
    }

    fn final_norm(&self, x: &Tensor) -> ModelResult<Tensor> {
        self.norm.forward(x)
    }

    fn unembed(&self) -> &Tensor {
        &self.lm_head
    }

    fn logit_softcap(&self) -> Option<f64> {
        self.cfg.variants.final_softcap
    }

    fn max_positions(&self) -> usize {
        self.cfg.max_position_embeddings
    }
}
