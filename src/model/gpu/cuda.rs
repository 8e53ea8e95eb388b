//! The CUDA half of the fused head-mask merge: `kernels/head_mask.cu`, compiled once per process
//! by NVRTC, launched on CUDA storages.
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
use candle_core::{CudaDevice, CudaStorage, Layout, Shape};

use super::launch::{kernel_name, Dims};

const SOURCE: &str = include_str!("../../../kernels/head_mask.cu");
/// Name under which candle caches the loaded module, per device.
const MODULE: &str = "spex_head_mask";

/// Launches the kernel for the storages' dtype; shapes were checked by `head_mask_merge`, the
/// layouts (contiguity, element counts) are checked here again before any pointer is used.
pub(super) fn forward(
    ctx: &CudaStorage,
    l_ctx: &Layout,
    scale: &CudaStorage,
    l_scale: &Layout,
    mean: Option<(&CudaStorage, &Layout)>,
) -> candle_core::Result<(CudaStorage, Shape)> {
    let d = Dims::of(l_ctx, l_scale, mean.map(|(_, l)| l))?;
    let name = kernel_name(ctx.dtype(), mean.is_some())?;
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
        ($variant:ident, $c:expr) => {{
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
            CudaStorageSlice::$variant(launch(dev, &name, c, s, mean, d)?)
        }};
    }
    let slice = match &ctx.slice {
        CudaStorageSlice::F32(c) => launch_as!(F32, c),
        CudaStorageSlice::F16(c) => launch_as!(F16, c),
        CudaStorageSlice::BF16(c) => launch_as!(BF16, c),
        _ => candle_core::bail!(
            "head-mask merge takes f32, f16 or bf16, not {:?}",
            ctx.dtype()
        ),
    };
    let out = CudaStorage {
        slice,
        device: dev.clone(),
    };
    Ok((out, d.out_shape()))
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

/// One launch of kernel `name`: a block per output row `(n, t)`, its threads striding over the
/// `H*Dh` columns.
fn launch<T: DeviceRepr>(
    dev: &CudaDevice,
    name: &str,
    ctx: CudaView<'_, T>,
    scale: CudaView<'_, T>,
    mean: Option<CudaView<'_, T>>,
    d: Dims,
) -> candle_core::Result<CudaSlice<T>> {
    let (rows, cols) = (d.rows(), d.cols());
    // SAFETY: every element is written by the kernel below before anyone reads it.
    let out = unsafe { dev.alloc::<T>(rows * cols) }?;
    if rows * cols == 0 {
        return Ok(out);
    }
    let func = dev.get_or_load_custom_func(name, MODULE, ptx()?)?;
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
