//! Direct access to the values of f32 CPU tensors, for the few hot loops written here instead of
//! as candle ops (the packed projection product, the fused attention and the fused SwiGLU).

use candle_core::{DType, Storage, Tensor};

use crate::model::error::ModelResult;

/// Whether `t` is an f32 tensor in CPU memory.
pub(crate) fn is_cpu_f32(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// Calls `f` with the values of `t` (f32, CPU) in row-major order.
pub(crate) fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> ModelResult<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(candle_core::Error::Msg("expected a CPU tensor".into()).into());
    };
    let start = layout.start_offset();
    let values = &cpu.as_slice::<f32>()?[start..start + t.elem_count()];
    Ok(f(values))
}
