//! Test-only code: seeded random tensors, a tiny GGUF writer, and the tests that span several
//! files of `model/` (decoder readout, out-of-memory retries, the GPU kernels compiled for the
//! host).

mod decoder_readout;
mod kernels_on_host;
mod oom_retry;
pub(super) mod seeded;
pub(super) mod tiny_gguf;
