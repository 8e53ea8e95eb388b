//! The interface every architecture implements for the engine: embedding, one block with a per-row
//! head ablation and an optional shared key/value prefix, the final norm and the unembedding.

use candle_core::Tensor;

use super::attention::{attention, causal_bias, AttentionRules};
pub(crate) use crate::model::arch::head_op::HeadOp;
use crate::model::arch::ragged::{self, Ragged};
use crate::model::cpu::attention::fused_causal_attention;
use crate::model::cpu::f32::is_cpu_f32;
use crate::model::cpu::features::CpuFeatures;
use crate::model::cpu::past::after_past;
use crate::model::error::ModelResult;

/// The `o_proj` input from the per-head context `ctx [N, H, T, Dh]` after `op`: `[N, T, H*Dh]`, or
/// the real positions `[M, H*Dh]` with `ragged`. On CUDA and Metal without `ragged`, a head op
/// runs fused with the merge (`kernels/head_mask.cu`, `.metal`), on f32 CPU tensors in the merge's
/// copy ([`ragged::from_heads`]), elsewhere as tensor ops.
pub(crate) fn merge_heads(
    ctx: &Tensor,
    op: Option<&HeadOp>,
    ragged: Option<&Ragged>,
) -> ModelResult<Tensor> {
    #[cfg(any(feature = "cuda", feature = "metal"))]
    if let (Some(op), None, true) = (op, ragged, crate::model::gpu::fused_on(ctx.device())) {
        let (n, h, _, dh) = ctx.dims4()?;
        let mean = match &op.mean {
            Some(m) => Some(m.reshape((h, dh))?),
            None => None,
        };
        return crate::model::gpu::head_mask_merge(ctx, &op.scale.reshape((n, h))?, mean.as_ref());
    }
    ragged::from_heads(ragged, ctx, op)
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
    /// `k, v [N, Hkv, T, Dh]` (positions `starts`) appended to `past` along positions: the keys
    /// and values the new positions attend to, `[N, Hkv, S, Dh]` each, key `j` of a row at
    /// position `j`. A shared past (`[1|N, Hkv, P, Dh]`, broadcast over the rows) comes whole
    /// (`S = P + T`); a per-row past keeps row r's first `starts[r]` positions, then its new
    /// ones, then zeros (`S = P + T`, the zeros never seen by a causal query).
    pub fn extended_by(
        past: Option<&Kv>,
        k: &Tensor,
        v: &Tensor,
        starts: Starts,
    ) -> ModelResult<Kv> {
        let Some(p) = past else {
            return Ok(Kv {
                k: k.clone(),
                v: v.clone(),
            });
        };
        let (n, hkv, _, dh) = k.dims4()?;
        let shape = (n, hkv, p.k.dim(2)?, dh);
        if [&p.k, &p.v, k, v].into_iter().all(is_cpu_f32) {
            let kept = match starts {
                Starts::Shared(_) => vec![shape.2; n],
                Starts::PerRow(rows) => rows.to_vec(),
            };
            return Ok(Kv {
                k: after_past(&p.k.broadcast_as(shape)?, k, &kept)?,
                v: after_past(&p.v.broadcast_as(shape)?, v, &kept)?,
            });
        }
        Ok(match starts {
            Starts::Shared(_) => Kv {
                k: Tensor::cat(&[&p.k.broadcast_as(shape)?, k], 2)?,
                v: Tensor::cat(&[&p.v.broadcast_as(shape)?, v], 2)?,
            },
            Starts::PerRow(rows) => Kv {
                k: per_row_past(&p.k.broadcast_as(shape)?, k, rows)?,
                v: per_row_past(&p.v.broadcast_as(shape)?, v, rows)?,
            },
        })
    }
}

/// Row r of `past [N, Hkv, P, Dh]` cut to its first `starts[r]` positions, followed by row r of
/// `new [N, Hkv, T, Dh]` and zeros to `P + T` positions: `[N, Hkv, P + T, Dh]`.
fn per_row_past(past: &Tensor, new: &Tensor, starts: &[usize]) -> ModelResult<Tensor> {
    let (n, hkv, p, dh) = past.dims4()?;
    let t = new.dim(2)?;
    let rows = (0..n)
        .map(|r| {
            let s = starts[r].min(p);
            let mut parts = vec![new.narrow(0, r, 1)?];
            if s > 0 {
                parts.insert(0, past.narrow(0, r, 1)?.narrow(2, 0, s)?);
            }
            if s < p {
                parts.push(Tensor::zeros(
                    (1, hkv, p - s, dh),
                    new.dtype(),
                    new.device(),
                )?);
            }
            Ok(Tensor::cat(&parts, 2)?)
        })
        .collect::<ModelResult<Vec<Tensor>>>()?;
    debug_assert!(rows.iter().all(|r| r.dim(2).ok() == Some(p + t)));
    Ok(Tensor::cat(&rows, 0)?)
}

/// Where the rows of a block's input start, and how much of its past each row sees.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Starts<'a> {
    /// Every row's first column is at this position; a past holds positions `0..p` for all rows.
    Shared(usize),
    /// Row r's first column is at position `starts[r]`; the past `[N, Hkv, P, Dh]` holds row r's
    /// positions `0..starts[r]`, then padding (prefixes of different lengths, batched).
    PerRow(&'a [usize]),
}

impl Default for Starts<'_> {
    fn default() -> Self {
        Starts::Shared(0)
    }
}

impl Starts<'_> {
    /// Row r's first position.
    pub fn of(self, r: usize) -> usize {
        match self {
            Starts::Shared(p) => p,
            Starts::PerRow(s) => s[r],
        }
    }

    /// One shared start, or one per row (the form RoPE and the causal mask take).
    pub fn to_vec(self) -> Vec<usize> {
        match self {
            Starts::Shared(p) => vec![p],
            Starts::PerRow(s) => s.to_vec(),
        }
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
    /// Position of each row's first column: row r of `x` holds positions `s_r..s_r+T`.
    pub starts: Starts<'a>,
    /// The head op before `o_proj`, if any row removes a head here.
    pub op: Option<&'a HeadOp>,
    /// Keys and values of the positions before `starts`: shared by every row (`[1, Hkv, p, Dh]`)
    /// or one padded row each ([`Starts::PerRow`]).
    pub past: Option<&'a Kv>,
    /// The real positions, when rows are right-padded: only they go through the position-wise
    /// parts; padded positions of the result are then meaningless (no real position reads them).
    pub ragged: Option<&'a Ragged>,
    /// When only one position per row is needed after this block (the last layer before the
    /// readout): row r's position `readout[r]` (relative to its start). Keys and values still cover
    /// every position; the query, `o_proj` and MLP run on the `N` read-out positions only.
    pub readout: Option<&'a [usize]>,
}

impl BlockAt<'_> {
    /// Absolute position of each row's first query: `s_r + readout[r]` with a readout, else the
    /// starts (one shared entry, or one per row).
    pub fn query_starts(&self) -> Vec<usize> {
        match self.readout {
            Some(at) => at
                .iter()
                .enumerate()
                .map(|(r, &p)| self.starts.of(r) + p)
                .collect(),
            None => self.starts.to_vec(),
        }
    }

    /// This block's keys and values `k, v [N, Hkv, T, Dh]` after its past, as attention reads
    /// them ([`Kv::extended_by`]).
    pub fn attended(&self, k: &Tensor, v: &Tensor) -> ModelResult<Kv> {
        Kv::extended_by(self.past, k, v, self.starts)
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

    /// Queries, keys and values `[N, H, T', Dh]`, `[N, H, T, Dh]` x 2 from a fused projection
    /// `qkv` laid out `[q; k; v]` per position (position-wise like [`BlockAt::at_readout`]'s `y`,
    /// each part `H Dh` wide), the queries scaled by `q_scale` and, with a readout, taken at the
    /// read-out positions only (`T' = 1`).
    pub fn split_fused_qkv(
        &self,
        qkv: &Tensor,
        (n, t): (usize, usize),
        (h, hd): (usize, usize),
        q_scale: f64,
    ) -> ModelResult<(Tensor, Tensor, Tensor)> {
        let d = h * hd;
        let part = |i: usize, scale: f64| {
            ragged::to_heads(self.ragged, qkv, i * d, (n, t), (h, hd), scale)
        };
        let q = match self.readout {
            Some(_) => {
                let rows = self.at_readout(qkv, (n, t))?;
                ragged::to_heads(None, &rows, 0, (n, 1), (h, hd), q_scale)?
            }
            None => part(0, q_scale)?,
        };
        Ok((q, part(1, 1.0)?, part(2, 1.0)?))
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
    /// Token and (for learned positions) position embedding: ids `[N, T]`, row r at positions
    /// `starts[r]..starts[r]+T` -> `[N, T, D]`.
    fn embed(&self, ids: &Tensor, starts: Starts) -> ModelResult<Tensor>;
    /// Block `l` on `x [N, T, D]`, run as `at` says.
    fn block(&self, l: usize, x: &Tensor, at: BlockAt<'_>) -> ModelResult<BlockOut>;
    /// The final norm on `[N, D]`.
    fn final_norm(&self, x: &Tensor) -> ModelResult<Tensor>;
    /// The unembedding matrix `[V, D]`.
    fn unembed(&self) -> &Tensor;
    /// Soft cap c on the logits, `c tanh(logit / c)` (Gemma 2's `final_logit_softcapping`).
    fn logit_softcap(&self) -> Option<f64>;
    /// Longest prompt (tokens) the model accepts.
    fn max_positions(&self) -> usize;
}

/// Causal attention of `q [N, H, T, Dh]` (already scaled) over `k, v [N, Hkv, S, Dh]`, row r's
/// queries at positions `first[r]..first[r]+T` (one shared entry, or one per row), under the
/// layer's `rules` (sliding window, score soft cap) -> `[N, H, T, Dh]`: the fused kernel for f32
/// on the CPU, the bias-and-softmax path ([`attention`]) elsewhere.
pub(crate) fn causal_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    first: &[usize],
    rules: AttentionRules,
    features: CpuFeatures,
) -> ModelResult<Tensor> {
    if is_cpu_f32(q) && is_cpu_f32(k) && is_cpu_f32(v) {
        return fused_causal_attention(q, k, v, first, rules, features);
    }
    let (n, _, t, _) = q.dims4()?;
    let bias = causal_bias(t, first, k.dim(2)?, n, rules, q.dtype(), q.device())?;
    attention(q, k, v, &bias, rules.softcap)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::model::HeadScales;

    /// The `o_proj` input of one row under layer 1's scales of `scales` (`H = 4`, `T = 3`,
    /// `Dh = 2`), and the per-head context it came from, `ctx[h][t][d]`.
    fn merged(scales: &HeadScales) -> (Vec<Vec<f32>>, Vec<f32>) {
        let (h, t, dh) = (4, 3, 2);
        let ctx: Vec<f32> = (0..h * t * dh).map(|i| 1.0 + i as f32 * 0.25).collect();
        let ctx_t = Tensor::from_vec(ctx.clone(), (1, h, t, dh), &Device::Cpu).unwrap();
        let scale = Tensor::from_vec(scales.layer(1).to_vec(), (1, h, 1, 1), &Device::Cpu).unwrap();
        let op = HeadOp { scale, mean: None };
        let out = merge_heads(&ctx_t, Some(&op), None).unwrap();
        (out.squeeze(0).unwrap().to_vec2().unwrap(), ctx)
    }

    #[test]
    fn rescaled_scales_multiply_the_kept_heads_of_the_o_proj_input() {
        // One head of four removed in layer 1: the other three scaled by 4/3.
        let rescaled = HeadScales::zeroing(2, 4, &[(1, 2)]).unwrap().rescaled();
        let (out, ctx) = merged(&rescaled);
        for (t, row) in out.iter().enumerate() {
            assert_eq!(row.len(), 8);
            for head in 0..4 {
                let factor = if head == 2 { 0.0 } else { 4.0f32 / 3.0 };
                for d in 0..2 {
                    let want = ctx[(head * 3 + t) * 2 + d] * factor;
                    assert_eq!(row[head * 2 + d], want, "t {t} head {head} d {d}");
                }
            }
        }
        // A layer keeping no head: its o_proj input is all zero, finite.
        let empty = HeadScales::zeroing(2, 4, &[(1, 0), (1, 1), (1, 2), (1, 3)]).unwrap();
        let (out, _) = merged(&empty.rescaled());
        assert!(out.iter().flatten().all(|&v| v == 0.0));
    }
}
