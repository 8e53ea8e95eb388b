//! Our own f32 CPU kernels, for the hot loops where candle's CPU ops are slow: the packed
//! projection product ([`sgemm`] on x86-64), the fused causal attention and the fused SwiGLU, with
//! direct access to the values of f32 CPU tensors.

pub(super) mod attention;
pub(super) mod f32;
pub(super) mod projection;
#[cfg(target_arch = "x86_64")]
pub mod sgemm;
pub(super) mod swiglu;
