//! The fused head op + head merge on GPUs: the per-head context `ctx [N, H, T, Dh]`, the per-row
//! head scales `s [N, H]` and an optional mean `[H, Dh]` become the `o_proj` input
//! `[N, T, H*Dh]`, `out[n, t, h*Dh + d] = ctx[n, h, t, d] * s[n, h] + (1 - s[n, h]) * mean[h, d]`,
//! in one pass. CUDA runs `kernels/head_mask.cu` (`cuda.rs`), Metal `kernels/head_mask.metal`
//! (`metal.rs`), both compiled from source at run time, once per process and device.
//! The CPU has no kernel: it runs the plain tensor ops (`HeadOp::apply` in `arch/decoder.rs`, then
//! the head merge), the reference the GPU tests compare against.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Device, Layout, Shape, Tensor};

#[cfg(feature = "cuda")]
use super::cuda;
#[cfg(feature = "metal")]
use super::metal;
use crate::model::error::{ModelError, ModelResult};

/// `out [N, T, H*Dh]` = `ctx [N, H, T, Dh] * s [N, H] + (1 - s) * mean [H, Dh]` per head on a CUDA
/// or Metal device (zero ablation without `mean`); f32, f16 or bf16, all three of one dtype.
pub fn head_mask_merge(ctx: &Tensor, scale: &Tensor, mean: Option<&Tensor>) -> ModelResult<Tensor> {
    check(ctx, scale, mean).map_err(|reason| ModelError::input("head-mask merge", reason))?;
    let (ctx, scale) = (ctx.contiguous()?, scale.contiguous()?);
    Ok(match mean {
        None => ctx.apply_op2_no_bwd(&scale, &HeadMaskMerge)?,
        Some(m) => ctx.apply_op3_no_bwd(&scale, &m.contiguous()?, &HeadMaskMerge)?,
    })
}

/// Whether `device` has the fused kernel in this build (CUDA or Metal, under their features).
pub fn fused_on(device: &Device) -> bool {
    (cfg!(feature = "cuda") && device.is_cuda()) || (cfg!(feature = "metal") && device.is_metal())
}

/// The devices this build has the kernel for, in words.
fn kernel_devices() -> &'static str {
    match (cfg!(feature = "cuda"), cfg!(feature = "metal")) {
        (true, true) => "CUDA and Metal",
        (false, true) => "Metal",
        _ => "CUDA",
    }
}

/// Checks `ctx [N, H, T, Dh]` (on a device with the kernel), `scale [N, H]`, `mean [H, Dh]`:
/// shapes, one float dtype, one device, and sizes that the kernels' 32-bit indices and grids hold.
fn check(ctx: &Tensor, scale: &Tensor, mean: Option<&Tensor>) -> Result<(), String> {
    if !fused_on(ctx.device()) {
        return Err(format!(
            "ctx is on {:?}: this build's fused kernel runs on {} only (other devices run the plain ops)",
            ctx.device().location(),
            kernel_devices(),
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

/// The CPU half of the op: never run, the CPU takes the plain ops.
fn no_cpu_kernel() -> candle_core::Result<(CpuStorage, Shape)> {
    candle_core::bail!("head-mask merge has no CPU kernel: the CPU runs the plain tensor ops")
}

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
        no_cpu_kernel()
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        ctx: &candle_core::CudaStorage,
        l_ctx: &Layout,
        scale: &candle_core::CudaStorage,
        l_scale: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::forward(ctx, l_ctx, scale, l_scale, None)
    }

    #[cfg(feature = "metal")]
    fn metal_fwd(
        &self,
        ctx: &candle_core::MetalStorage,
        l_ctx: &Layout,
        scale: &candle_core::MetalStorage,
        l_scale: &Layout,
    ) -> candle_core::Result<(candle_core::MetalStorage, Shape)> {
        metal::forward(ctx, l_ctx, scale, l_scale, None)
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
        no_cpu_kernel()
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        ctx: &candle_core::CudaStorage,
        l_ctx: &Layout,
        scale: &candle_core::CudaStorage,
        l_scale: &Layout,
        mean: &candle_core::CudaStorage,
        l_mean: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        cuda::forward(ctx, l_ctx, scale, l_scale, Some((mean, l_mean)))
    }

    #[cfg(feature = "metal")]
    fn metal_fwd(
        &self,
        ctx: &candle_core::MetalStorage,
        l_ctx: &Layout,
        scale: &candle_core::MetalStorage,
        l_scale: &Layout,
        mean: &candle_core::MetalStorage,
        l_mean: &Layout,
    ) -> candle_core::Result<(candle_core::MetalStorage, Shape)> {
        metal::forward(ctx, l_ctx, scale, l_scale, Some((mean, l_mean)))
    }
}
