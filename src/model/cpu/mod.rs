//! Our own CPU kernels, for the hot loops where candle's CPU ops are slow: the packed projection
//! product ([`sgemm`] on x86-64, f32 or bf16 products, these on AMX tiles where the CPU has
//! them), the fused causal attention (sliding windows and soft caps included), the fused MLP gate
//! (SwiGLU, GeGLU) and the gate and up products fused with it ([`gate_up`]), RMSNorm and RoPE,
//! new keys and values placed after their past ([`past`]), with direct access to the values of
//! f32 CPU tensors, the CPU [`features`] they may use, and the allocator settings a long run
//! wants ([`heap`]).

#[cfg(target_arch = "x86_64")]
pub(super) mod amx;
pub(super) mod attention;
#[cfg(target_arch = "x86_64")]
pub(super) mod avx512_f32;
pub(super) mod f32;
pub(super) mod fast_exp;
pub mod features;
pub(super) mod gate_up;
pub(super) mod gated;
pub mod heap;
pub(super) mod log_probs;
pub(super) mod past;
pub(super) mod projection;
pub(super) mod rms_norm;
pub(super) mod rotary;
#[cfg(target_arch = "x86_64")]
pub mod sgemm;
#[cfg(target_arch = "x86_64")]
pub(super) mod tile;
