//! Rotary position embedding (rotate-half form, as Hugging Face's Llama and GPT-NeoX apply it):
//! cos/sin tables built once at load, applied to the first `rotated` dimensions of each head
//! (all of them, or a fraction for GPT-NeoX's partial rotary), per-row start positions allowed.

use candle_core::{DType, Device, Tensor};

use crate::model::cpu::f32::is_cpu_f32;
use crate::model::cpu::rotary::rotate_half;
use crate::model::error::ModelResult;

/// RoPE tables for `positions` positions and `rotated` dimensions of each head.
pub(crate) struct Rope {
    /// `[P, rotated / 2]`.
    cos: Tensor,
    /// `[P, rotated / 2]`.
    sin: Tensor,
}

impl Rope {
    /// Tables from the inverse frequencies (radians per position, one per rotated pair) for
    /// `positions` positions, in `dtype` on `device`.
    pub fn new(
        inv_freq: &[f64],
        positions: usize,
        dtype: DType,
        device: &Device,
    ) -> ModelResult<Rope> {
        let angles: Vec<f32> = (0..positions)
            .flat_map(|p| inv_freq.iter().map(move |f| (p as f64 * f) as f32))
            .collect();
        let angles = Tensor::from_vec(angles, (positions, inv_freq.len()), device)?;
        Ok(Rope {
            cos: angles.cos()?.to_dtype(dtype)?,
            sin: angles.sin()?.to_dtype(dtype)?,
        })
    }

    /// Tables for `t` positions per row starting at `first[r]`: `cos, sin [T, R/2]` for one
    /// shared start, else `[N, T, R/2]`.
    fn tables(&self, first: &[usize], t: usize) -> ModelResult<(Tensor, Tensor)> {
        if let [p] = first {
            return Ok((self.cos.narrow(0, *p, t)?, self.sin.narrow(0, *p, t)?));
        }
        // A short row's padding may run past the table: its positions are never read.
        let last = self.cos.dim(0)? - 1;
        let idx: Vec<u32> = first
            .iter()
            .flat_map(|&p| (p..p + t).map(move |i| i.min(last) as u32))
            .collect();
        let idx = Tensor::from_vec(idx, first.len() * t, self.cos.device())?;
        let half = self.cos.dim(1)?;
        let table = |m: &Tensor| -> ModelResult<Tensor> {
            Ok(m.index_select(&idx, 0)?.reshape((first.len(), t, half))?)
        };
        Ok((table(&self.cos)?, table(&self.sin)?))
    }

    /// `x [N, H, T, Dh]` with its first `R` dimensions rotated for positions `first[r]..+T` (one
    /// shared start, or one per row); the other `Dh - R` pass through.
    pub fn apply(&self, x: &Tensor, first: &[usize]) -> ModelResult<Tensor> {
        let (_, _, t, dh) = x.dims4()?;
        let (cos, sin) = self.tables(first, t)?;
        let rotated = 2 * self.cos.dim(1)?;
        let rope = |x: &Tensor| -> ModelResult<Tensor> {
            match is_cpu_f32(x) && is_cpu_f32(&cos) {
                true => rotate_half(x, &cos, &sin),
                false => Ok(candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)?),
            }
        };
        if rotated == dh {
            return rope(x);
        }
        let head = rope(&x.narrow(3, 0, rotated)?)?;
        Ok(Tensor::cat(
            &[&head, &x.narrow(3, rotated, dh - rotated)?],
            3,
        )?)
    }
}
