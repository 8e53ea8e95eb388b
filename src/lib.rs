//! # spex
//!
//! Finds which *combinations* of a model's parts (attention heads, input tokens) drive its
//! behaviour. The model's output as a function of which parts are kept, `f: {0,1}^n -> R`
//! (bit `i` = 1 keeps player `i`), is assumed sparse and low-degree in the Fourier
//! (Walsh-Hadamard) basis; the decoders recover that spectrum from few evaluations:
//!
//! - [`sparse::spex`]: SPEX (Kang et al., ICML 2025): structured subsampling with BCH-coded
//!   delays, decoded by peeling.
//! - [`sparse::proxy`]: ProxySPEX (Butler et al., NeurIPS 2025): boosted trees fitted to random
//!   ablations, their exact Fourier coefficients, an energy cut and a ridge refit.
//!
//! The main types:
//!
//! - [`sparse::Subset`]: a sorted set of player indices.
//! - [`sparse::MaskBatch`]: `m` masks over `n` players as packed bits (row = one ablation).
//! - [`sparse::Spectrum`]: a sparse function in the Fourier or Moebius basis, with conversions,
//!   evaluation and faithfulness (R^2).
//! - [`sparse::ValueFunction`]: the batched black box (masks in, one `f64` per mask out).
//!
//! - [`model::Model`]: a maskable transformer (Llama-style or GPT-2) on Candle that runs a batch of
//!   per-row head masks `[B, L, H]` or token masks `[B, T]` and returns last-position logits.
//!
//! `sparse/` knows nothing of models or devices: it is tested on synthetic functions with known
//! spectra.

// Lets unit tests include files written for the integration tests (`tests/support/`), which name
// the crate `spex`.
#[cfg(test)]
extern crate self as spex;

pub mod ablate;
pub mod error;
pub mod home;
pub mod io;
pub mod model;
pub mod progress;
pub mod report;
pub mod sparse;
pub mod task;

pub use error::{Error, Result};
