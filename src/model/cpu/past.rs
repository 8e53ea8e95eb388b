//! Keys or values of new positions placed after their past, for f32 CPU tensors: one parallel copy
//! straight from the past's (possibly broadcast or narrowed) view, where candle's cats copy on one
//! thread, row by row, through temporary tensors.

use candle_core::{Storage, Tensor};

use crate::model::cpu::f32::{par_filled, with_values};
use crate::model::error::{ModelError, ModelResult};

/// Row r of `past [N, Hkv, P, Dh]` (any strides, `Dh` contiguous) cut to its first `kept[r]`
/// positions (at most P), then row r of `new [N, Hkv, T, Dh]`, then zeros up to `P + T`
/// positions: `[N, Hkv, P + T, Dh]`. Both must be f32 CPU tensors.
pub(crate) fn after_past(past: &Tensor, new: &Tensor, kept: &[usize]) -> ModelResult<Tensor> {
    let (n, hkv, p, dh) = past.dims4()?;
    let t = new.dim(2)?;
    if new.dims4()? != (n, hkv, t, dh) || kept.len() != n {
        return Err(ModelError::input(
            "past",
            format!(
                "past {:?} and new {:?} with {} row starts do not line up",
                past.dims(),
                new.dims(),
                kept.len()
            ),
        ));
    }
    let (storage, layout) = past.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(candle_core::Error::Msg("expected a CPU tensor".into()).into());
    };
    let values = cpu.as_slice::<f32>()?;
    let stride = layout.stride();
    if dh > 1 && stride[3] != 1 {
        drop(storage);
        return after_past(&past.contiguous()?, new, kept);
    }
    let (base, s0, s1, s2) = (layout.start_offset(), stride[0], stride[1], stride[2]);
    let width = (p + t) * dh;
    let out = with_values(new, |new| {
        // SAFETY: each chunk (one row and head) is written whole: `kept` positions of the past,
        // the T new ones, then zeros.
        unsafe {
            par_filled(n * hkv * width, width.max(1), |index, chunk| {
                let (r, h) = (index / hkv, index % hkv);
                let kept = kept[r].min(p);
                let at = base + r * s0 + h * s1;
                for (q, dst) in chunk[..kept * dh].chunks_exact_mut(dh.max(1)).enumerate() {
                    let src = &values[at + q * s2..at + q * s2 + dh];
                    for (d, &x) in dst.iter_mut().zip(src) {
                        d.write(x);
                    }
                }
                let fresh = &new[index * t * dh..(index + 1) * t * dh];
                let (head, tail) = chunk[kept * dh..].split_at_mut(t * dh);
                for (d, &x) in head.iter_mut().zip(fresh) {
                    d.write(x);
                }
                for d in tail {
                    d.write(0.0);
                }
            })
        }
    })?;
    Ok(Tensor::from_vec(out, (n, hkv, p + t, dh), past.device())?)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// `[n, hkv, p, dh]` values that name their own index.
    fn numbered(shape: (usize, usize, usize, usize), offset: f32) -> Tensor {
        let count = shape.0 * shape.1 * shape.2 * shape.3;
        let values: Vec<f32> = (0..count).map(|i| offset + i as f32).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    /// The layout by definition: per row and head, the kept past, the new positions, zeros.
    fn expected(past: &Tensor, new: &Tensor, kept: &[usize]) -> Vec<f32> {
        let (n, hkv, p, dh) = past.dims4().unwrap();
        let t = new.dim(2).unwrap();
        let past: Vec<f32> = past.flatten_all().unwrap().to_vec1().unwrap();
        let new: Vec<f32> = new.flatten_all().unwrap().to_vec1().unwrap();
        let mut out = Vec::new();
        for r in 0..n {
            for h in 0..hkv {
                let kept = kept[r].min(p);
                let head = (r * hkv + h) * p * dh;
                out.extend_from_slice(&past[head..head + kept * dh]);
                let head = (r * hkv + h) * t * dh;
                out.extend_from_slice(&new[head..head + t * dh]);
                out.extend(std::iter::repeat_n(0.0, (p - kept) * dh));
            }
        }
        out
    }

    #[test]
    fn rows_keep_their_own_past_then_the_new_positions_then_zeros() {
        let new = numbered((2, 3, 2, 4), 1000.0);
        // A narrowed view (the longest start of a suffix batch), read through its strides.
        let past = numbered((2, 3, 6, 4), 0.0).narrow(2, 0, 5).unwrap();
        let kept = [3, 0];
        let got = after_past(&past, &new, &kept).unwrap();
        assert_eq!(got.dims(), [2, 3, 7, 4]);
        let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got, expected(&past, &new, &kept));
        // A past shared by every row (broadcast, stride 0), kept whole: a plain concatenation.
        let shared = numbered((1, 3, 4, 4), 0.0)
            .broadcast_as((2, 3, 4, 4))
            .unwrap();
        let got = after_past(&shared, &new, &[4, 4]).unwrap();
        let cat = Tensor::cat(&[&shared, &new], 2).unwrap();
        assert_eq!(
            got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            cat.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }

    #[test]
    fn mismatched_shapes_are_an_error_naming_the_past() {
        let past = numbered((2, 3, 4, 4), 0.0);
        let new = numbered((1, 3, 2, 4), 0.0);
        let err = after_past(&past, &new, &[1, 1]).unwrap_err().to_string();
        assert!(err.contains("past"), "{err}");
    }
}
