//! Batches of rows with different lengths, right-padded to one width: the position-wise parts of a
//! block (norms, projections, MLP) run on the real positions only, packed as `[M, C]`, while
//! attention keeps the padded `[N, T, C]` layout. Padding then costs no matrix products.

use candle_core::{Device, Tensor};

use super::error::ModelResult;

/// Padding below this share of a batch's slots is left in place: packing and unpacking copy
/// activations, which costs more than a few padded rows of matrix products.
const MIN_PADDING_SHARE: f64 = 0.125;

/// The real positions of a right-padded `[N, T]` batch.
pub(crate) struct Ragged {
    /// Flat slot (`row * T + position`) of each real position, in order: `[M]` u32.
    slots: Tensor,
    n: usize,
    t: usize,
}

impl Ragged {
    /// For rows of `lens` real positions each (every one `<= t`), or `None` when the padding is
    /// too small a share of the `N * t` slots to be worth skipping.
    pub fn new(lens: &[usize], t: usize, device: &Device) -> ModelResult<Option<Ragged>> {
        let real: usize = lens.iter().sum();
        let slots_total = lens.len() * t;
        if slots_total == 0
            || ((slots_total - real) as f64) < MIN_PADDING_SHARE * slots_total as f64
        {
            return Ok(None);
        }
        let slots: Vec<u32> = lens
            .iter()
            .enumerate()
            .flat_map(|(r, &len)| (0..len).map(move |p| (r * t + p) as u32))
            .collect();
        Ok(Some(Ragged {
            slots: Tensor::from_vec(slots, real, device)?,
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

/// `x [N, T, C]` packed to `[M, C]` when `ragged`, else unchanged.
pub(crate) fn pack(ragged: Option<&Ragged>, x: &Tensor) -> ModelResult<Tensor> {
    match ragged {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn little_padding_is_left_in_place() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        assert!(Ragged::new(&[8, 8, 7], 8, &dev)?.is_none());
        assert!(Ragged::new(&[8, 1], 8, &dev)?.is_some());
        assert!(Ragged::new(&[], 0, &dev)?.is_none());
        Ok(())
    }
}
