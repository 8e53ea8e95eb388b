//! What both GPU launches share: the kernel name for a dtype and the sizes of one launch, checked
//! from the storages' layouts.

use candle_core::{DType, Layout, Shape};

/// The kernel both sources name for `dtype`, zero (`head_mask_merge_f16`) or mean
/// (`head_mask_merge_mean_f16`) ablation.
pub(super) fn kernel_name(dtype: DType, with_mean: bool) -> candle_core::Result<String> {
    let suffix = match dtype {
        DType::F32 => "f32",
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        other => candle_core::bail!("head-mask merge takes f32, f16 or bf16, not {other:?}"),
    };
    let ablation = if with_mean { "mean_" } else { "" };
    Ok(format!("head_mask_merge_{ablation}{suffix}"))
}

/// The sizes one launch works on.
#[derive(Clone, Copy)]
pub(super) struct Dims {
    /// Rows N.
    pub n: usize,
    /// Query heads H.
    pub h: usize,
    /// Positions T.
    pub t: usize,
    /// Per-head width Dh.
    pub dh: usize,
}

impl Dims {
    /// The sizes from the storages' layouts, re-checked before any kernel reads memory:
    /// `ctx [N, H, T, Dh]`, `scale` N*H and `mean` H*Dh elements, all contiguous.
    pub fn of(
        l_ctx: &Layout,
        l_scale: &Layout,
        l_mean: Option<&Layout>,
    ) -> candle_core::Result<Dims> {
        let &[n, h, t, dh] = l_ctx.dims() else {
            candle_core::bail!(
                "head-mask merge: ctx must be [N, H, T, Dh], got {:?}",
                l_ctx.dims()
            )
        };
        if l_scale.shape().elem_count() != n * h {
            candle_core::bail!("head-mask merge: scale must hold N*H = {} values", n * h)
        }
        if let Some(l) = l_mean {
            if l.shape().elem_count() != h * dh {
                candle_core::bail!("head-mask merge: mean must hold H*Dh = {} values", h * dh)
            }
        }
        for (what, l) in [
            ("ctx", Some(l_ctx)),
            ("scale", Some(l_scale)),
            ("mean", l_mean),
        ] {
            if l.is_some_and(|l| l.contiguous_offsets().is_none()) {
                candle_core::bail!("head-mask merge: {what} must be contiguous")
            }
        }
        Ok(Dims { n, h, t, dh })
    }

    /// Output rows `N*T`.
    pub fn rows(self) -> usize {
        self.n * self.t
    }

    /// Output columns `H*Dh`.
    pub fn cols(self) -> usize {
        self.h * self.dh
    }

    /// The output shape `[N, T, H*Dh]`.
    pub fn out_shape(self) -> Shape {
        Shape::from((self.n, self.t, self.cols()))
    }
}
