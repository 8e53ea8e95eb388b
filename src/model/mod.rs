//! The maskable transformer runtime: our own decoders (Llama-style and GPT-2) on Candle, written so
//! that every query head's output can be scaled per batch row before `o_proj`, and input tokens
//! replaced per row by a baseline token.
//!
//! - [`ModelSource`]: where a model is (folder, hub cache, GGUF, default), resolved once;
//!   [`Model::open`] loads exactly the files it found.
//! - [`Model`]: one loaded model (weights, tokenizer, device), stateless between calls.
//! - [`HeadScales`] `[L, H]`: one validated row of head scales, the form a head mask has from
//!   the parser ([`HeadScales::parse`]) to the tensor; [`HeadMask`] `[B, L, H]` and
//!   [`TokenMask`] `[B, T]`: one ablation per row.
//! - [`Model::forward_ablated`]: B ablations of one prompt -> last-position logits `[B][K]`.
//! - [`Model::run`]: many (prompt, ablation) jobs, batched under a token budget, with layer reuse
//!   (layers below a job's lowest masked layer come from one clean run per prompt) and key/value
//!   prefix reuse (positions before the first replaced token).
//! - [`ModelError`]: the one error type of this module.
//!
//! Layout by job: `load/` (source, hub cache, config, safetensors, GGUF, tokenizer), `arch/` (the
//! decoder interface, Llama, GPT-2), `cpu/` (f32 kernels), `gpu/` (the fused head-mask op),
//! `masks/` (head scales and token masks), the engine and its batching, the readout (unembedding
//! into logits, log-probabilities or letters), and `testing/` (test-only).

mod arch;
mod batching;
pub mod cpu;
mod device;
mod engine;
mod error;
#[cfg(any(feature = "cuda", feature = "metal"))]
pub mod gpu;
pub mod load;
mod loaded;
mod masks;
mod readout;
#[cfg(test)]
mod testing;

pub use device::{default_dtype, DTypeChoice, DeviceChoice};
pub use engine::{logsumexp, HeadMeans, Job, RunOptions};
pub use error::{ModelError, ModelResult};
pub use load::config::{Config, Gpt2Config, LlamaConfig, RopeScaling, SpecialIds};
pub use load::gguf::{load_gguf, GgufModel};
pub use load::source::ModelSource;
pub use load::weights::Weights;
pub use loaded::{Model, ModelInfo};
pub use masks::{HeadMask, HeadScales, TokenMask};
pub use readout::Readout;
