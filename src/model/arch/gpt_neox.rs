//! GPT-NeoX (the Pythia suite): LayerNorm with bias, a fused per-head query/key/value projection,
//! rotary embedding over a fraction of each head, the parallel residual (attention and MLP read
//! the same input) or the sequential one, an exact-GELU MLP, a separate output matrix. Head ops
//! act on each head's context before `attention.dense`.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::LayerNorm;

use crate::model::arch::decoder::{
    causal_attention, merge_heads, BlockAt, BlockOut, Decoder, Kv, Starts,
};
use crate::model::arch::ragged;
use crate::model::arch::rope::Rope;
use crate::model::cpu::features::CpuFeatures;
use crate::model::cpu::projection::Projection;
use crate::model::error::ModelResult;
use crate::model::load::config::GptNeoxConfig;
use crate::model::load::weights::Weights;

struct Block {
    input_norm: LayerNorm,
    /// Queries, keys and values of every head, reordered at load from GPT-NeoX's per-head
    /// interleaving (`[q_h k_h v_h]` for each head h) to `[q; k; v]`: `[3 D, D]`.
    qkv: Projection,
    dense: Projection,
    post_norm: LayerNorm,
    up: Projection,
    down: Projection,
}

/// A loaded GPT-NeoX decoder.
pub(crate) struct GptNeox {
    cfg: GptNeoxConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    final_norm: LayerNorm,
    unembed: Tensor,
    rope: Rope,
    /// The instruction sets the attention kernel may use (`SPEX_CPU_KERNELS` applied).
    features: CpuFeatures,
}

fn layer_norm(w: &Weights, name: &str, d: usize, eps: f64) -> ModelResult<LayerNorm> {
    Ok(LayerNorm::new(
        w.get(&format!("{name}.weight"), &[d])?,
        w.get(&format!("{name}.bias"), &[d])?,
        eps,
    ))
}

fn linear(
    w: &Weights,
    name: &str,
    out_dim: usize,
    in_dim: usize,
    bias: bool,
) -> ModelResult<Projection> {
    let weight = w.take(&format!("{name}.weight"), &[out_dim, in_dim])?;
    let bias = match bias {
        true => Some(w.get(&format!("{name}.bias"), &[out_dim])?),
        false => None,
    };
    Projection::new(weight, bias, w.products())
}

/// Row order that turns the per-head interleaved `[q_0 k_0 v_0 q_1 ...]` (each `hd` rows) into
/// `[q_0 q_1 ... k_0 ... v_0 ...]`.
fn grouped_rows(heads: usize, hd: usize, device: &Device) -> ModelResult<Tensor> {
    let order: Vec<u32> = (0..3)
        .flat_map(|part| {
            (0..heads).flat_map(move |h| (0..hd).map(move |i| ((h * 3 + part) * hd + i) as u32))
        })
        .collect();
    Ok(Tensor::from_vec(order, 3 * heads * hd, device)?)
}

impl GptNeox {
    /// Builds the decoder from Hugging Face names (`gpt_neox.layers.N...`, `embed_out`).
    pub fn new(
        cfg: GptNeoxConfig,
        w: &Weights,
        dtype: DType,
        device: &Device,
    ) -> ModelResult<GptNeox> {
        let (d, h, hd) = (cfg.hidden_size, cfg.num_attention_heads, cfg.head_dim);
        let eps = cfg.layer_norm_eps;
        let embed = w.get("gpt_neox.embed_in.weight", &[cfg.vocab_size, d])?;
        let order = grouped_rows(h, hd, device)?;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for l in 0..cfg.num_hidden_layers {
            let p = format!("gpt_neox.layers.{l}");
            let qkv_name = format!("{p}.attention.query_key_value");
            let weight = w
                .take(&format!("{qkv_name}.weight"), &[3 * d, d])?
                .index_select(&order, 0)?;
            let bias = match cfg.attention_bias {
                true => Some(
                    w.get(&format!("{qkv_name}.bias"), &[3 * d])?
                        .index_select(&order, 0)?,
                ),
                false => None,
            };
            let i = cfg.intermediate_size;
            blocks.push(Block {
                input_norm: layer_norm(w, &format!("{p}.input_layernorm"), d, eps)?,
                qkv: Projection::new(weight, bias, w.products())?,
                dense: linear(w, &format!("{p}.attention.dense"), d, d, cfg.attention_bias)?,
                post_norm: layer_norm(w, &format!("{p}.post_attention_layernorm"), d, eps)?,
                up: linear(w, &format!("{p}.mlp.dense_h_to_4h"), i, d, true)?,
                down: linear(w, &format!("{p}.mlp.dense_4h_to_h"), d, i, true)?,
            });
        }
        let final_norm = layer_norm(w, "gpt_neox.final_layer_norm", d, eps)?;
        let unembed = match cfg.tie_word_embeddings {
            true => embed.clone(),
            false => w.get("embed_out.weight", &[cfg.vocab_size, d])?,
        };
        let rope = Rope::new(&cfg.inv_freq(), cfg.max_position_embeddings, dtype, device)?;
        Ok(GptNeox {
            cfg,
            embed,
            blocks,
            final_norm,
            unembed,
            rope,
            features: w.products().features,
        })
    }

    /// The MLP on normalised rows `xn [P, D]`.
    fn mlp(&self, blk: &Block, xn: &Tensor) -> ModelResult<Tensor> {
        let hidden = blk.up.forward(xn)?;
        let hidden = match self.cfg.gelu_erf {
            true => hidden.gelu_erf()?,
            false => hidden.gelu()?,
        };
        blk.down.forward(&hidden)
    }
}

impl Decoder for GptNeox {
    fn embed(&self, ids: &Tensor, _starts: Starts) -> ModelResult<Tensor> {
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
        let (h, hd) = (self.cfg.num_attention_heads, self.cfg.head_dim);
        let qkv = blk
            .qkv
            .forward(&blk.input_norm.forward(&ragged::pack(at.ragged, x)?)?)?;
        // RoPE is linear, so the 1/sqrt(Dh) score scale can be applied to q before it.
        let (q, k, v) = at.split_fused_qkv(&qkv, (n, t), (h, hd), 1.0 / (hd as f64).sqrt())?;
        let starts = at.query_starts();
        let q = self.rope.apply(&q, &starts)?;
        let k = self.rope.apply(&k, &at.starts.to_vec())?;
        let all = at.attended(&k, &v)?;
        let ctx = causal_attention(
            &q,
            &all.k,
            &all.v,
            &starts,
            Default::default(),
            self.features,
        )?;
        let padding = at.query_ragged();
        let attn = blk.dense.forward(&merge_heads(&ctx, at.op, padding)?)?;
        let x = at.residual_at_queries(x)?;
        let x = match self.cfg.use_parallel_residual {
            true => {
                let mlp = self.mlp(blk, &blk.post_norm.forward(&ragged::pack(padding, &x)?)?)?;
                ragged::add_unpacked(padding, &x, &(mlp + attn)?)?
            }
            false => {
                let x = ragged::add_unpacked(padding, &x, &attn)?;
                let mlp = self.mlp(blk, &blk.post_norm.forward(&ragged::pack(padding, &x)?)?)?;
                ragged::add_unpacked(padding, &x, &mlp)?
            }
        };
        Ok(BlockOut {
            x,
            kv: Kv { k, v },
            ctx,
        })
    }

    fn final_norm(&self, x: &Tensor) -> ModelResult<Tensor> {
        Ok(self.final_norm.forward(x)?)
    }

    fn unembed(&self) -> &Tensor {
        &self.unembed
    }

    fn logit_softcap(&self) -> Option<f64> {
        None
    }

    fn max_positions(&self) -> usize {
        self.cfg.max_position_embeddings
    }
}
