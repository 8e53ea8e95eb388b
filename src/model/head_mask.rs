//! The fused head op + head merge on CUDA: `kernels/head_mask.cu`, compiled once per process by
//! NVRTC, turns the per-head context `ctx [N, H, T, Dh]`, the per-row head scales `s [N, H]` and
//! an optional mean `[H, Dh]` into the `o_proj` input `[N, T, H*Dh]`,
//! `out[n, t, h*Dh + d] = ctx[n, h, t, d] * s[n, h] + (1 - s[n, h]) * mean[h, d]`, in one pass.
//! The CPU has no kernel: it runs the plain tensor ops (`HeadOp::apply` in `decoder.rs`, then the
//! head merge), the reference the CUDA tests compare against.
//!
//! NVRTC rather than PTX built by nvcc in a build script: no build step and no header paths, and
//! the PTX always comes from the NVRTC installed beside the driver, so the driver can load it.

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{
    CudaSlice, CudaView, DeviceRepr, LaunchConfig, PushKernelArg,
};
use candle_core::cuda_backend::cudarc::nvrtc;
use candle_core::cuda_backend::{CudaStorageSlice, WrapErr};
use candle_core::{
    CpuStorage, CudaDevice, CudaStorage, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor,
};

use super::error::{ModelError, ModelResult};

const SOURCE: &str = include_str!("../../kernels/head_mask.cu");
/// Name under which candle caches the loaded module, per device.
const MODULE: &str = "spex_head_mask";

/// `out [N, T, H*Dh]` = `ctx [N, H, T, Dh] * s [N, H] + (1 - s) * mean [H, Dh]` per head on a CUDA
/// device (zero ablation without `mean`); f32, f16 or bf16, all three tensors of one dtype.
pub fn head_mask_merge(ctx: &Tensor, scale: &Tensor, mean: Option<&Tensor>) -> ModelResult<Tensor> {
    check(ctx, scale, mean).map_err(|reason| ModelError::input("head-mask merge", reason))?;
    let (ctx, scale) = (ctx.contiguous()?, scale.contiguous()?);
    Ok(match mean {
        None => ctx.apply_op2_no_bwd(&scale, &HeadMaskMerge)?,
        Some(m) => ctx.apply_op3_no_bwd(&scale, &m.contiguous()?, &HeadMaskMerge)?,
    })
}

/// The sizes one launch works on.
#[derive(Clone, Copy)]
struct Dims {
    n: usize,
    h: usize,
    t: usize,
    dh: usize,
}

/// Checks `ctx [N, H, T, Dh]` (on CUDA), `scale [N, H]`, `mean [H, Dh]`: shapes, one float dtype,
/// one device, and sizes that the kernel's 32-bit indices and grid hold.
fn check(ctx: &Tensor, scale: &Tensor, mean: Option<&Tensor>) -> Result<(), String> {
    if !ctx.device().is_cuda() {
        return Err(format!(
            "ctx is on {:?}: the fused kernel runs on CUDA only (other devices run the plain ops)",
            ctx.device().location()
        ));
    }
    let &[n, h, t, dh] = ctx.dims() else {
        return Err(format!(
            "ctx has shape {:?}, expected [N, H, T, Dh]",
            ctx.dims()
        ));
    };
    if scale.dims() != [n, h] {
        return Err(format!(
            "scale has shape {:?}, expected [N, H] = [{n}, {h}]",
            scale.dims()
        ));
    }
    if let Some(m) = mean {
        if m.dims() != [h, dh] {
            return Err(format!(
                "mean has shape {:?}, expected [H, Dh] = [{h}, {dh}]",
                m.dims()
            ));
        }
    }
    let dtype = ctx.dtype();
    if !matches!(dtype, DType::F32 | DType::F16 | DType::BF16) {
        return Err(format!(
            "ctx is {dtype:?}; the kernel takes f32, f16 or bf16"
        ));
    }
    for (what, other) in [("scale", Some(scale)), ("mean", mean)] {
        if let Some(o) = other {
            if o.dtype() != dtype {
                return Err(format!("{what} is {:?} but ctx is {dtype:?}", o.dtype()));
            }
            if !o.device().same_device(ctx.device()) {
                return Err(format!("{what} is on another device than ctx"));
            }
        }
    }
    let fits = |x: usize| x <= i32::MAX as usize;
    if !fits(n * t) || !fits(n * h) || !fits(h * dh) || !fits(t) {
        return Err(format!(
            "ctx [{n}, {h}, {t}, {dh}] is too large for one launch"
        ));
    }
    Ok(())
}

/// The custom op: `(ctx, scale)` for zero ablation, `(ctx, scale, mean)` for mean ablation.
struct HeadMaskMerge;

impl CustomOp2 for HeadMaskMerge {
    fn name(&self) -> &'static str {
        "head-mask-merge"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        candle_core::bail!("head-mask merge has no CPU kernel: the CPU runs the plain tensor ops")
    }

    fn cuda_fwd(
        &self,
        ctx: &CudaStorage,
        l_ctx: &Layout,
        scale: &CudaStorage,
        l_scale: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        forward(ctx, l_ctx, scale, l_scale, None)
    }
}

impl CustomOp3 for HeadMaskMerge {
    fn name(&self) -> &'static str {
        "head-mask-merge-mean"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        candle_core::bail!("head-mask merge has no CPU kernel: the CPU runs the plain tensor ops")
    }

    fn cuda_fwd(
        &self,
        ctx: &CudaStorage,
        l_ctx: &Layout,
        scale: &CudaStorage,
        l_scale: &Layout,
        mean: &CudaStorage,
        l_mean: &Layout,
    ) -> candle_core::Result<(CudaStorage, Shape)> {
        forward(ctx, l_ctx, scale, l_scale, Some((mean, l_mean)))
    }
}

/// Launches the kernel for the storages' dtype; shapes were checked by [`head_mask_merge`], the
/// layouts (contiguity, element counts) are checked here again before any pointer is used.
fn forward(
    ctx: &CudaStorage,
    l_ctx: &Layout,
    scale: &CudaStorage,
    l_scale: &Layout,
    mean: Option<(&CudaStorage, &Layout)>,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let &[n, h, t, dh] = l_ctx.dims() else {
        candle_core::bail!(
            "head-mask merge: ctx must be [N, H, T, Dh], got {:?}",
            l_ctx.dims()
        )
    };
    let d = Dims { n, h, t, dh };
    if l_scale.shape().elem_count() != n * h {
        candle_core::bail!("head-mask merge: scale must hold N*H = {} values", n * h)
    }
    if let Some((_, l)) = mean {
        if l.shape().elem_count() != h * dh {
            candle_core::bail!("head-mask merge: mean must hold H*Dh = {} values", h * dh)
        }
    }
    let dev = ctx.device();
    let mismatch = |what: &str, other: &CudaStorage| {
        candle_core::Error::Msg(format!(
            "head-mask merge: {what} is {:?} but ctx is {:?}",
            other.dtype(),
            ctx.dtype()
        ))
    };
    // One arm per dtype: the scale and the mean must hold the ctx's element type.
    macro_rules! launch_as {
        ($variant:ident, $suffix:literal, $c:expr) => {{
            let CudaStorageSlice::$variant(s) = &scale.slice else {
                return Err(mismatch("scale", scale));
            };
            let mean = match mean {
                None => None,
                Some((m, l)) => match &m.slice {
                    CudaStorageSlice::$variant(m) => Some(view(m, l, "mean")?),
                    _ => return Err(mismatch("mean", m)),
                },
            };
            let (c, s) = (view($c, l_ctx, "ctx")?, view(s, l_scale, "scale")?);
            CudaStorageSlice::$variant(launch(dev, $suffix, c, s, mean, d)?)
        }};
    }
    let slice = match &ctx.slice {
        CudaStorageSlice::F32(c) => launch_as!(F32, "f32", c),
        CudaStorageSlice::F16(c) => launch_as!(F16, "f16", c),
        CudaStorageSlice::BF16(c) => launch_as!(BF16, "bf16", c),
        _ => candle_core::bail!(
            "head-mask merge takes f32, f16 or bf16, not {:?}",
            ctx.dtype()
        ),
    };
    let out = CudaStorage {
        slice,
        device: dev.clone(),
    };
    Ok((out, Shape::from((n, t, h * dh))))
}

/// The contiguous elements of `slice` that `layout` addresses.
fn view<'a, T>(
    slice: &'a CudaSlice<T>,
    layout: &Layout,
    what: &str,
) -> candle_core::Result<CudaView<'a, T>> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(slice.slice(start..end)),
        None => candle_core::bail!("head-mask merge: {what} must be contiguous"),
    }
}

/// The NVRTC-compiled PTX of `kernels/head_mask.cu`, compiled on first use.
fn ptx() -> candle_core::Result<&'static str> {
    static PTX: OnceLock<Result<String, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        nvrtc::compile_ptx(SOURCE)
            .map(|p| p.to_src())
            .map_err(|e| e.to_string())
    })
    .as_deref()
    .map_err(|e| candle_core::Error::Msg(format!("kernels/head_mask.cu: NVRTC: {e}")))
}

/// One launch: a block per output row `(n, t)`, its threads striding over the `H*Dh` columns.
fn launch<T: DeviceRepr>(
    dev: &CudaDevice,
    suffix: &str,
    ctx: CudaView<'_, T>,
    scale: CudaView<'_, T>,
    mean: Option<CudaView<'_, T>>,
    d: Dims,
) -> candle_core::Result<CudaSlice<T>> {
    let cols = d.h * d.dh;
    let rows = d.n * d.t;
    // SAFETY: every element is written by the kernel below before anyone reads it.
    let out = unsafe { dev.alloc::<T>(rows * cols) }?;
    if rows * cols == 0 {
        return Ok(out);
    }
    let name = match mean {
        None => format!("head_mask_merge_{suffix}"),
        Some(_) => format!("head_mask_merge_mean_{suffix}"),
    };
    let func = dev.get_or_load_custom_func(&name, MODULE, ptx()?)?;
    let threads = cols.div_ceil(32).min(32) * 32;
    let cfg = LaunchConfig {
        grid_dim: (rows as u32, 1, 1),
        block_dim: (threads as u32, 1, 1),
        shared_mem_bytes: 0,
    };
    let (h, t, dh) = (d.h as u32, d.t as u32, d.dh as u32);
    let mut args = func.builder();
    args.arg(&ctx);
    args.arg(&scale);
    if let Some(m) = &mean {
        args.arg(m);
    }
    args.arg(&out);
    args.arg(&h);
    args.arg(&t);
    args.arg(&dh);
    // SAFETY: the argument list matches the kernel's signature; the views hold N*H*T*Dh, N*H and
    // H*Dh elements and `out` N*T*H*Dh (checked above), which bounds every index the kernel forms.
    unsafe { args.launch(cfg) }.w()?;
    Ok(out)
}
