//! Rotate-half RoPE for f32 CPU tensors, `(x₁, x₂) -> (x₁ cos - x₂ sin, x₁ sin + x₂ cos)` over
//! the two halves of each head, split over rayon's threads by (row, head) and written so that the
//! compiler vectorises it (candle's CPU op indexes every element with bounds checks, 1.5 % of an
//! ablated pass). The same operations in the same order as candle's, so the same bits.

use candle_core::Tensor;

use crate::model::cpu::f32::{par_filled, with_values};
use crate::model::error::ModelResult;

/// `x [N, H, T, D]` (f32, CPU) rotated by `cos, sin`, each `[T, D/2]` (shared by every row) or
/// `[N, T, D/2]` (one table per row), all f32 CPU tensors.
pub(crate) fn rotate_half(x: &Tensor, cos: &Tensor, sin: &Tensor) -> ModelResult<Tensor> {
    let (_, h, t, d) = x.dims4()?;
    let half = d / 2;
    if cos.dims().last() != Some(&half) || d % 2 != 0 {
        return Err(candle_core::Error::ShapeMismatchBinaryOp {
            lhs: x.shape().clone(),
            rhs: cos.shape().clone(),
            op: "rotate_half",
        }
        .into());
    }
    let per_row = cos.rank() == 3;
    let values = with_values(x, |x| {
        with_values(cos, |cos| {
            with_values(sin, |sin| {
                let block = (t * d).max(1);
                // SAFETY: each (row, head) block writes both halves of every position; `d` is
                // even (`cos` has `d / 2` columns per position).
                unsafe {
                    par_filled(x.len(), block, |row_head, out| {
                        let x = &x[row_head * block..(row_head + 1) * block];
                        let table = if per_row { row_head / h * t * half } else { 0 };
                        let (cos, sin) = (&cos[table..], &sin[table..]);
                        for (i, (out, x)) in
                            out.chunks_exact_mut(d).zip(x.chunks_exact(d)).enumerate()
                        {
                            let (c, s) = (
                                &cos[i * half..(i + 1) * half],
                                &sin[i * half..(i + 1) * half],
                            );
                            let (x1, x2) = x.split_at(half);
                            let (o1, o2) = out.split_at_mut(half);
                            for j in 0..half {
                                o1[j].write(x1[j] * c[j] - x2[j] * s[j]);
                                o2[j].write(x1[j] * s[j] + x2[j] * c[j]);
                            }
                        }
                    })
                }
            })
        })
    })???;
    Ok(Tensor::from_vec(values, x.shape(), x.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::seeded::SeededNormal;

    /// The same bits as candle's rope, with shared and per-row tables.
    #[test]
    fn gives_candles_bits() -> anyhow::Result<()> {
        let mut rng = SeededNormal::new(5);
        let x = rng.tensor((3, 2, 5, 8), 0.0, 1.0);
        for tables in [vec![5, 4], vec![3, 5, 4]] {
            let cos = rng.tensor(tables.as_slice(), 0.0, 1.0);
            let sin = rng.tensor(tables.as_slice(), 0.0, 1.0);
            let got = rotate_half(&x, &cos, &sin)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let want = candle_nn::rotary_emb::rope(&x, &cos, &sin)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            assert_eq!(got, want, "tables {tables:?}");
        }
        Ok(())
    }
}
