//! Direct access to the values of f32 CPU tensors, for the few hot loops written here instead of
//! as candle ops (the packed projection product, the fused attention and the fused SwiGLU).

use std::mem::MaybeUninit;

use candle_core::{DType, Storage, Tensor};
use rayon::prelude::*;

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

/// `len` values computed in parallel chunks of `chunk` (the last may be shorter) by
/// `fill(index, chunk)`, into memory that is not zeroed first (zeroing the large outputs of a
/// pass took 3-4 % of it).
///
/// # Safety
/// `fill` must write every element of the chunk it is given.
pub(crate) unsafe fn par_filled(
    len: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(index, values)| fill(index, values));
    // SAFETY: `fill` wrote every chunk, and the chunks cover `len` values (the caller's promise).
    unsafe { out.set_len(len) };
    out
}
