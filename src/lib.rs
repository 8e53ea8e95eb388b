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
//! ## Layers, each knowing only those below it
//!
//! - [`sparse`] (its own crate, `spex-sparse`): the math. [`sparse::Spectrum`],
//!   [`sparse::MaskBatch`], [`sparse::ValueFunction`] (the batched black box: masks in, one `f64`
//!   per mask out), [`sparse::plan::Plan`], the interaction indices. Knows no model.
//! - [`model`]: the maskable transformer runtime on Candle. [`model::Model`] runs batches of
//!   per-row head masks `[B, L, H]` or token masks `[B, T]`. Knows no task, job or decoder.
//! - [`task`]: data sets, lm-eval's prompts, scoring and value kinds.
//! - [`ablate`]: players (heads, tokens) and scorers: a batch of masks -> batched masked passes ->
//!   one value per mask.
//! - [`report`]: interactions.json, spectrum.json, head graphs, token pages, pruning orders.
//! - [`run`]: the jobs with plain option structs, what the command line and the Python package
//!   call: [`run::heads()`], [`run::tokens()`], [`run::prune()`], [`run::run_shard`], [`run::decode()`],
//!   resumable evaluation into a [`run::ValueStore`]; shards on Slurm and Kubernetes
//!   ([`run::cluster`]) and how far they got ([`run::status`]).
//!
//! Errors: [`sparse::Error`] and [`model::ModelError`] for their layers, [`Error`] above them;
//! every variant names the file, field or value at fault (fields, never command-line flags).

#![warn(missing_docs)]

// Lets unit tests include files written for the integration tests (`tests/support/`), which name
// the crate `spex`.
#[cfg(test)]
extern crate self as spex;

pub mod ablate;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod home;
pub mod io;
pub mod model;
pub mod progress;
pub mod report;
pub mod run;
pub mod task;

pub use error::{Error, Result};
/// The math (its own crate, `spex-sparse`): spectra, indices, SPEX and ProxySPEX.
pub use spex_sparse as sparse;
