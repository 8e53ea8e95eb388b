//! GPT-2: learned positions, pre-LayerNorm blocks, fused `c_attn`, Conv1D weights stored `[in, out]`,
//! GELU MLP, lm_head tied to `wte`. Head ops act on each head's context before `c_proj`.

use candle_core::{Module, Tensor};
use candle_nn::LayerNorm;

use crate::model::arch::decoder::{
    causal_attention, merge_heads, BlockAt, BlockOut, Decoder, Kv, Starts,
};
use crate::model::arch::ragged;
use crate::model::cpu::features::CpuFeatures;
use crate::model::cpu::projection::Projection;
use crate::model::error::ModelResult;
use crate::model::load::config::Gpt2Config;
use crate::model::load::weights::Weights;

struct Block {
    ln_1: LayerNorm,
    c_attn: Projection,
    attn_proj: Projection,
    ln_2: LayerNorm,
    c_fc: Projection,
    mlp_proj: Projection,
}

/// A loaded GPT-2.
pub(crate) struct Gpt2 {
    cfg: Gpt2Config,
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    /// The instruction sets the attention kernel may use (`SPEX_CPU_KERNELS` applied).
    features: CpuFeatures,
}

/// A Conv1D (`[in, out]` weight) as a projection (`[out, in]`).
fn conv1d(w: &Weights, name: &str, d_in: usize, d_out: usize) -> ModelResult<Projection> {
    let weight = w
        .take(&format!("{name}.weight"), &[d_in, d_out])?
        .t()?
        .contiguous()?;
    let bias = w.get(&format!("{name}.bias"), &[d_out])?;
    Projection::new(weight, Some(bias), w.products())
}

fn layer_norm(w: &Weights, name: &str, d: usize, eps: f64) -> ModelResult<LayerNorm> {
    Ok(LayerNorm::new(
        w.get(&format!("{name}.weight"), &[d])?,
        w.get(&format!("{name}.bias"), &[d])?,
        eps,
    ))
}

impl Gpt2 {
    /// Builds GPT-2 from Hugging Face names, with or without the `transformer.` prefix.
    pub fn new(cfg: Gpt2Config, w: &Weights) -> ModelResult<Gpt2> {
        let pre = if w.contains("transformer.wte.weight") {
            "transformer."
        } else {
            ""
        };
        let (d, eps) = (cfg.n_embd, cfg.layer_norm_epsilon);
        let wte = w.get(&format!("{pre}wte.weight"), &[cfg.vocab_size, d])?;
        let wpe = w.get(&format!("{pre}wpe.weight"), &[cfg.n_positions, d])?;
        let mut blocks = Vec::with_capacity(cfg.n_layer);
        for l in 0..cfg.n_layer {
            let p = format!("{pre}h.{l}");
            blocks.push(Block {
                ln_1: layer_norm(w, &format!("{p}.ln_1"), d, eps)?,
                c_attn: conv1d(w, &format!("{p}.attn.c_attn"), d, 3 * d)?,
                attn_proj: conv1d(w, &format!("{p}.attn.c_proj"), d, d)?,
                ln_2: layer_norm(w, &format!("{p}.ln_2"), d, eps)?,
                c_fc: conv1d(w, &format!("{p}.mlp.c_fc"), d, cfg.n_inner)?,
                mlp_proj: conv1d(w, &format!("{p}.mlp.c_proj"), cfg.n_inner, d)?,
            });
        }
        let ln_f = layer_norm(w, &format!("{pre}ln_f"), d, eps)?;
        Ok(Gpt2 {
            cfg,
            wte,
            wpe,
            blocks,
            ln_f,
            features: w.products().features,
        })
    }
}

impl Decoder for Gpt2 {
    fn embed(&self, ids: &Tensor, starts: Starts) -> ModelResult<Tensor> {
        let (n, t) = ids.dims2()?;
        let d = self.cfg.n_embd;
        let tok = self
            .wte
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((n, t, d))?;
        let pos = match starts {
            Starts::Shared(p0) => self.wpe.narrow(0, p0, t)?.unsqueeze(0)?,
            Starts::PerRow(rows) => {
                // A short row's padding may run past the table: its positions are never read.
                let last = self.cfg.n_positions - 1;
                let idx: Vec<u32> = rows
                    .iter()
                    .flat_map(|&p0| (p0..p0 + t).map(move |p| p.min(last) as u32))
                    .collect();
                let idx = Tensor::from_vec(idx, n * t, self.wpe.device())?;
                self.wpe.index_select(&idx, 0)?.reshape((n, t, d))?
            }
        };
        Ok(tok.broadcast_add(&pos)?)
    }

    fn block(&self, l: usize, x: &Tensor, at: BlockAt<'_>) -> ModelResult<BlockOut> {
        let blk = &self.blocks[l];
        let (n, t, d) = x.dims3()?;
        let (h, hd) = (self.cfg.n_head, d / self.cfg.n_head);
        let xn = blk.ln_1.forward(&ragged::pack(at.ragged, x)?)?;
        let qkv = blk.c_attn.forward(&xn)?;
        let (q, k, v) = at.split_fused_qkv(&qkv, (n, t), (h, hd), 1.0 / (hd as f64).sqrt())?;
        let all = at.attended(&k, &v)?;
        let starts = at.query_starts();
        let ctx = causal_attention(
            &q,
            &all.k,
            &all.v,
            &starts,
            Default::default(),
            self.features,
        )?;
        let padding = at.query_ragged();
        let merged = merge_heads(&ctx, at.op, padding)?;
        let x = at.residual_at_queries(x)?;
        let x = ragged::add_unpacked(padding, &x, &blk.attn_proj.forward(&merged)?)?;
        let hidden = blk
            .c_fc
            .forward(&blk.ln_2.forward(&ragged::pack(padding, &x)?)?)?;
        let hidden = if self.cfg.gelu_erf {
            hidden.gelu_erf()?
        } else {
            hidden.gelu()?
        };
        let x = ragged::add_unpacked(padding, &x, &blk.mlp_proj.forward(&hidden)?)?;
        Ok(BlockOut {
            x,
            kv: Kv { k, v },
            ctx,
        })
    }

    fn final_norm(&self, x: &Tensor) -> ModelResult<Tensor> {
        Ok(self.ln_f.forward(x)?)
    }

    fn unembed(&self) -> &Tensor {
        &self.wte
    }

    fn logit_softcap(&self) -> Option<f64> {
        None
    }

    fn max_positions(&self) -> usize {
        self.cfg.n_positions
    }
}
