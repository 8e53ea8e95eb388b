//! Batches of rows with different lengths, right-padded to one width: the position-wise parts of a
//! block (norms, projections, MLP) run on the real positions only, packed as `[M, C]`, while
//! attention keeps the padded `[N, T, C]` layout. Padding then costs no matrix products.
//!
//! The moves between the two layouts ([`to_heads`], [`from_heads`], [`add_unpacked`], [`pack`])
//! are single parallel passes for f32 on the CPU, where candle's copies run on one thread, and
//! compositions of candle ops elsewhere (the reference the tests compare against).

use std::borrow::Cow;

use candle_core::{DType, Device, Tensor};

use crate::model::arch::head_op::HeadOp;
use crate::model::cpu::f32::{is_cpu_f32, par_filled, with_values};
use crate::model::error::ModelResult;

/// Padding below this share of a batch's slots is left in place on GPUs, where packing and
/// unpacking are extra copies that cost more than a few padded rows of matrix products. On the
/// CPU any padding is skipped: the layout moves there are the same single passes either way.
const MIN_GPU_PADDING_SHARE: f64 = 0.125;

/// Whether `padding` of `slots` slots is worth skipping on a device (`on_cpu` or a GPU).
fn skips_padding(padding: usize, slots: usize, on_cpu: bool) -> bool {
    match on_cpu {
        true => padding > 0,
        false => padding as f64 >= MIN_GPU_PADDING_SHARE * slots as f64 && padding > 0,
    }
}

/// The real positions of a right-padded `[N, T]` batch.
pub(crate) struct Ragged {
    /// Flat slot (`row * T + position`) of each real position, in order: `[M]` u32.
    slots: Tensor,
    /// The same slots as host indices, `[M]`.
    real: Vec<usize>,
    /// Packed row of every slot, `None` at padding: `[N * T]`.
    rows: Vec<Option<usize>>,
    n: usize,
    t: usize,
}

impl Ragged {
    /// For rows of `lens` real positions each (every one `<= t`), or `None` when the padding is
    /// not worth skipping on `device` ([`skips_padding`]).
    pub fn new(lens: &[usize], t: usize, device: &Device) -> ModelResult<Option<Ragged>> {
        let real: usize = lens.iter().sum();
        let slots_total = lens.len() * t;
        if !skips_padding(slots_total - real, slots_total, device.is_cpu()) {
            return Ok(None);
        }
        let flat: Vec<usize> = lens
            .iter()
            .enumerate()
            .flat_map(|(r, &len)| (0..len).map(move |p| r * t + p))
            .collect();
        let mut rows = vec![None; slots_total];
        for (m, &s) in flat.iter().enumerate() {
            rows[s] = Some(m);
        }
        let slots: Vec<u32> = flat.iter().map(|&s| s as u32).collect();
        Ok(Some(Ragged {
            slots: Tensor::from_vec(slots, real, device)?,
            real: flat,
            rows,
            n: lens.len(),
            t,
        }))
    }

    /// `[N, T, C]` -> the real positions `[M, C]`.
    pub fn pack(&self, x: &Tensor) -> ModelResult<Tensor> {
        let c = x.dim(2)?;
        Ok(x.reshape((self.n * self.t, c))?
            .index_select(&self.slots, 0)?)
    }

    /// `[M, C]` -> `[N, T, C]`, zero at padded positions.
    pub fn unpack(&self, y: &Tensor) -> ModelResult<Tensor> {
        let c = y.dim(1)?;
        let padded = Tensor::zeros((self.n * self.t, c), y.dtype(), y.device())?;
        Ok(padded
            .index_add(&self.slots, y, 0)?
            .reshape((self.n, self.t, c))?)
    }
}

/// Position-wise row of each `(row, position)` slot of an `[N, T]` batch, `None` at padding:
/// `[N * T]`, row-major. Without `ragged` every slot is real and row `r * T + p`.
fn slot_rows(ragged: Option<&Ragged>, n: usize, t: usize) -> Cow<'_, [Option<usize>]> {
    match ragged {
        Some(r) => Cow::Borrowed(&r.rows),
        None => Cow::Owned((0..n * t).map(Some).collect()),
    }
}

/// Flat slot of each position-wise row, in order: `[M]` (`[N * T]`, the identity, without `ragged`).
fn real_slots(ragged: Option<&Ragged>, n: usize, t: usize) -> Cow<'_, [usize]> {
    match ragged {
        Some(r) => Cow::Borrowed(&r.real),
        None => Cow::Owned((0..n * t).collect()),
    }
}

/// Position-wise row of row r's position `at[r]` in an `[N, T]` batch, for each row: `[N]`.
/// Every `at[r]` must be a real position of row r.
pub(crate) fn readout_rows(ragged: Option<&Ragged>, n: usize, t: usize, at: &[usize]) -> Vec<u32> {
    let rows = slot_rows(ragged, n, t);
    at.iter()
        .enumerate()
        .map(|(r, &p)| {
            debug_assert!(rows[r * t + p].is_some(), "row {r} reads out padding");
            rows[r * t + p].unwrap_or(r * t + p) as u32
        })
        .collect()
}

/// `x [N, T, C]` packed to `[M, C]` when `ragged`, else unchanged.
pub(crate) fn pack(ragged: Option<&Ragged>, x: &Tensor) -> ModelResult<Tensor> {
    match ragged {
        Some(r) if is_cpu_f32(x) => {
            let c = x.dim(2)?;
            let real = &r.real;
            let out = with_values(x, |src| {
                // SAFETY: every real position writes its `c` values.
                unsafe {
                    par_filled(real.len() * c, c, |m, dst| {
                        let s = real[m];
                        for (d, &v) in dst.iter_mut().zip(&src[s * c..(s + 1) * c]) {
                            d.write(v);
                        }
                    })
                }
            })?;
            Ok(Tensor::from_vec(out, (real.len(), c), x.device())?)
        }
        Some(r) => r.pack(x),
        None => Ok(x.clone()),
    }
}

/// `y [M, C]` back to `[N, T, C]` when `ragged`, else unchanged.
pub(crate) fn unpack(ragged: Option<&Ragged>, y: &Tensor) -> ModelResult<Tensor> {
    match ragged {
        Some(r) => r.unpack(y),
        None => Ok(y.clone()),
    }
}

/// Columns `col0 .. col0 + count * hd` of the position-wise `y` (`[M, C]` with `ragged`, else
/// `[N, T, C]`), times `scale`, as `count` heads `[N, count, T, hd]`, zero at padded positions.
pub(crate) fn to_heads(
    ragged: Option<&Ragged>,
    y: &Tensor,
    col0: usize,
    (n, t): (usize, usize),
    (count, hd): (usize, usize),
    scale: f64,
) -> ModelResult<Tensor> {
    if is_cpu_f32(y) {
        let c = y.dims().last().copied().unwrap_or(0);
        let rows = slot_rows(ragged, n, t);
        let scale = scale as f32;
        let out = with_values(y, |src| {
            // SAFETY: every position of every (row, head) block writes its `hd` values: a copy,
            // a scaled copy, or zeros at padding.
            unsafe {
                par_filled(n * count * t * hd, t * hd, |block, dst| {
                    let (row, head) = (block / count, block % count);
                    let from = col0 + head * hd;
                    let slots = &rows[row * t..(row + 1) * t];
                    for (slot, d) in slots.iter().zip(dst.chunks_exact_mut(hd.max(1))) {
                        match slot {
                            Some(m) => {
                                let s = &src[m * c + from..m * c + from + hd];
                                if scale == 1.0 {
                                    for (d, &v) in d.iter_mut().zip(s) {
                                        d.write(v);
                                    }
                                } else {
                                    for (d, &v) in d.iter_mut().zip(s) {
                                        d.write(v * scale);
                                    }
                                }
                            }
                            None => d.iter_mut().for_each(|d| {
                                d.write(0.0);
                            }),
                        }
                    }
                })
            }
        })?;
        return Ok(Tensor::from_vec(out, (n, count, t, hd), y.device())?);
    }
    let c = y.dims().last().copied().unwrap_or(0);
    let y = y.reshape(((), c))?.narrow(1, col0, count * hd)?;
    let y = match ragged {
        Some(r) => r.unpack(&y.contiguous()?)?,
        None => y.reshape((n, t, count * hd))?,
    };
    let heads = y
        .reshape((n, t, count, hd))?
        .transpose(1, 2)?
        .contiguous()?;
    Ok(if scale == 1.0 {
        heads
    } else {
        (heads * scale)?
    })
}

/// Heads `ctx [N, H, T, Dh]` merged into the position-wise layout: `[M, H * Dh]` with `ragged`
/// (real positions only), else `[N, T, H * Dh]`, after `op` (if any) on each head's values. On
/// f32 CPU tensors `op` is applied as the values are copied ([`HeadOp::apply`]'s operations in
/// its order, so the same bits).
pub(crate) fn from_heads(
    ragged: Option<&Ragged>,
    ctx: &Tensor,
    op: Option<&HeadOp>,
) -> ModelResult<Tensor> {
    let (n, h, t, hd) = ctx.dims4()?;
    if is_cpu_f32(ctx) {
        let slots = real_slots(ragged, n, t);
        let c = h * hd;
        let values = |t: &Tensor| -> ModelResult<Vec<f32>> {
            Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
        };
        let scales = op.map(|op| values(&op.scale)).transpose()?;
        let mean = op.and_then(|op| op.mean.as_ref()).map(values).transpose()?;
        let out = with_values(ctx, |src| {
            // SAFETY: every head of every position writes its `hd` values, and the heads cover
            // the `c = h * hd` values of a position.
            unsafe {
                par_filled(slots.len() * c, c, |slot, dst| {
                    let s = slots[slot];
                    let (row, p) = (s / t, s % t);
                    for (head, d) in dst.chunks_exact_mut(hd.max(1)).enumerate() {
                        let at = ((row * h + head) * t + p) * hd;
                        let from = &src[at..at + hd];
                        match (&scales, &mean) {
                            (None, _) => {
                                for (d, &v) in d.iter_mut().zip(from) {
                                    d.write(v);
                                }
                            }
                            (Some(scales), None) => {
                                let s = scales[row * h + head];
                                for (d, &v) in d.iter_mut().zip(from) {
                                    d.write(v * s);
                                }
                            }
                            (Some(scales), Some(mean)) => {
                                let s = scales[row * h + head];
                                let rest = 1.0 - s;
                                let m = &mean[head * hd..(head + 1) * hd];
                                for ((d, &v), &m) in d.iter_mut().zip(from).zip(m) {
                                    d.write(v * s + m * rest);
                                }
                            }
                        }
                    }
                })
            }
        })?;
        return Ok(match ragged {
            Some(_) => Tensor::from_vec(out, (slots.len(), c), ctx.device())?,
            None => Tensor::from_vec(out, (n, t, c), ctx.device())?,
        });
    }
    let ctx = match op {
        Some(op) => op.apply(ctx)?,
        None => ctx.clone(),
    };
    let merged = ctx.transpose(1, 2)?.contiguous()?.reshape((n, t, h * hd))?;
    pack(ragged, &merged)
}

/// The residual update `x + y`: `x [N, T, C]`, `y` position-wise (`[M, C]` with `ragged`, else
/// `[N, T, C]`); padded positions keep `x`.
pub(crate) fn add_unpacked(ragged: Option<&Ragged>, x: &Tensor, y: &Tensor) -> ModelResult<Tensor> {
    let (n, t, c) = x.dims3()?;
    if is_cpu_f32(x) && is_cpu_f32(y) {
        let rows = slot_rows(ragged, n, t);
        let out = with_values(x, |xs| {
            with_values(y, |ys| {
                // SAFETY: every position writes its `c` values, from x alone at padding.
                unsafe {
                    par_filled(xs.len(), c, |slot, dst| {
                        let xr = &xs[slot * c..(slot + 1) * c];
                        match rows[slot] {
                            Some(m) => {
                                let yr = &ys[m * c..(m + 1) * c];
                                for ((d, &x), &y) in dst.iter_mut().zip(xr).zip(yr) {
                                    d.write(x + y);
                                }
                            }
                            None => {
                                for (d, &x) in dst.iter_mut().zip(xr) {
                                    d.write(x);
                                }
                            }
                        }
                    })
                }
            })
        })??;
        return Ok(Tensor::from_vec(out, (n, t, c), x.device())?);
    }
    Ok((x + unpack(ragged, y)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::seeded::SeededNormal;
    use candle_core::DType;

    #[test]
    fn pack_then_unpack_keeps_real_positions_and_zeroes_padding() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::arange(1f32, 25.0, &dev)?.reshape((3, 4, 2))?;
        let r = Ragged::new(&[4, 1, 2], 4, &dev)?.expect("5 of 12 slots are padding");
        let packed = r.pack(&x)?;
        assert_eq!(
            packed.to_vec2::<f32>()?,
            vec![
                vec![1., 2.],
                vec![3., 4.],
                vec![5., 6.],
                vec![7., 8.],
                vec![9., 10.],
                vec![17., 18.],
                vec![19., 20.],
            ]
        );
        let back = r.unpack(&packed)?.to_vec3::<f32>()?;
        let want = x.to_vec3::<f32>()?;
        for (row, len) in [4, 1, 2].into_iter().enumerate() {
            for p in 0..4 {
                let expect = if p < len {
                    want[row][p].clone()
                } else {
                    vec![0.0, 0.0]
                };
                assert_eq!(back[row][p], expect, "row {row} position {p}");
            }
        }
        Ok(())
    }

    /// Runs `f` on `x` as f32 (the parallel CPU path) and as f64 (candle's ops), both as f32.
    fn both_paths(
        x: &Tensor,
        f: impl Fn(&Tensor) -> ModelResult<Tensor>,
    ) -> anyhow::Result<(Vec<f32>, Vec<f32>)> {
        let fast = f(&x.to_dtype(DType::F32)?)?;
        let reference = f(&x.to_dtype(DType::F64)?)?.to_dtype(DType::F32)?;
        assert_eq!(fast.dims(), reference.dims());
        Ok((
            fast.flatten_all()?.to_vec1()?,
            reference.flatten_all()?.to_vec1()?,
        ))
    }

    #[test]
    fn parallel_layout_moves_equal_candle_ops() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let (n, t, c) = (3, 5, 8);
        let mut rng = SeededNormal::new(0);
        let x = rng.tensor((n, t, c), 0.0, 1.0);
        let ctx = rng.tensor((n, 2, t, 4), 0.0, 1.0);
        let r = Ragged::new(&[5, 2, 3], t, &dev)?.expect("5 of 15 slots are padding");
        for ragged in [Some(&r), None] {
            let rows = ragged.map_or(n * t, |_| 10);
            let y = rng.tensor((rows, c), 0.0, 1.0);
            let y = match ragged {
                Some(_) => y,
                None => y.reshape((n, t, c))?,
            };
            for scale in [0.5, 1.0] {
                let (a, b) = both_paths(&y, |y| to_heads(ragged, y, 2, (n, t), (2, 3), scale))?;
                assert_eq!(a, b, "to_heads, scale {scale}");
            }
            let (a, b) = both_paths(&ctx, |ctx| from_heads(ragged, ctx, None))?;
            assert_eq!(a, b, "from_heads");
            let (a, b) = both_paths(&x, |x| pack(ragged, x))?;
            assert_eq!(a, b, "pack");
            let (a, b) = both_paths(&x, |x| add_unpacked(ragged, x, &y.to_dtype(x.dtype())?))?;
            assert_eq!(a, b, "add_unpacked");
        }
        Ok(())
    }

    /// A head op applied while merging gives the bits of the op's tensor ops, then the merge:
    /// zero and mean ablation, kept and half-kept heads, with and without padding.
    #[test]
    fn head_ops_applied_in_the_merge_equal_the_tensor_ops() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let (n, h, t, hd) = (3, 2, 5, 4);
        let mut rng = SeededNormal::new(9);
        let ctx = rng.tensor((n, h, t, hd), 0.0, 1.0);
        let scale = Tensor::from_vec(vec![1f32, 0.0, 0.5, 1.0, 0.0, 0.0], (n, h, 1, 1), &dev)?;
        let r = Ragged::new(&[5, 2, 3], t, &dev)?.expect("5 of 15 slots are padding");
        for mean in [None, Some(rng.tensor((1, h, 1, hd), 0.0, 1.0))] {
            let op = HeadOp {
                scale: scale.clone(),
                mean,
            };
            for ragged in [Some(&r), None] {
                let fused = from_heads(ragged, &ctx, Some(&op))?;
                let apart = from_heads(ragged, &op.apply(&ctx)?, None)?;
                assert_eq!(fused.dims(), apart.dims());
                assert_eq!(
                    fused.flatten_all()?.to_vec1::<f32>()?,
                    apart.flatten_all()?.to_vec1::<f32>()?,
                    "mean {}, ragged {}",
                    op.mean.is_some(),
                    ragged.is_some()
                );
            }
        }
        Ok(())
    }

    #[test]
    fn the_cpu_skips_any_padding_gpus_only_a_large_share() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        assert!(Ragged::new(&[8, 8, 7], 8, &dev)?.is_some());
        assert!(Ragged::new(&[8, 1], 8, &dev)?.is_some());
        assert!(Ragged::new(&[8, 8], 8, &dev)?.is_none());
        assert!(Ragged::new(&[], 0, &dev)?.is_none());
        // 1 of 24 slots padded: left in place on a GPU; 7 of 16: skipped.
        assert!(!skips_padding(1, 24, false));
        assert!(skips_padding(7, 16, false));
        assert!(!skips_padding(0, 0, false) && !skips_padding(0, 0, true));
        Ok(())
    }
}
