//! # spex-sparse
//!
//! The math of spex: subsets, sparse spectra (Fourier and Moebius), interaction indices, and the
//! two decoders, SPEX and ProxySPEX. Model-free: everything here takes a batched value function
//! ([`ValueFunction`]: masks in, one `f64` per mask out) and is tested on synthetic functions with
//! known spectra.
//!
//! A crate of its own so that the compiler, not a convention, keeps the math free of models,
//! devices, tasks and jobs, and so that the Python package's shapiq drop-in can build on it without
//! Candle. The `spex` crate re-exports it as `spex::sparse`.
//!
//! - [`Subset`]: a sorted set of player indices.
//! - [`MaskBatch`]: `m` masks over `n` players as packed bits (row = one ablation).
//! - [`Spectrum`]: a sparse function in the Fourier or Moebius basis, with conversions,
//!   evaluation and faithfulness (R^2).
//! - [`plan::Plan`]: a decoder's query design; [`plan::Plan::decode`] turns one value per mask into
//!   a spectrum.
//! - [`interaction_values`]: SII, k-SII, STII, FSII, FBII, BII, SV, BV, Moebius or Fourier values.

#![warn(missing_docs)]

#[cfg(test)]
mod brute;
mod distribute;
pub mod error;
pub mod exact;
pub mod indices;
pub mod linear;
pub mod mask;
pub mod maximise;
pub mod memory;
pub mod plan;
pub mod proxy;
pub mod spectrum;
#[cfg(test)]
mod spectrum_conversions;
pub mod spex;
pub mod structure;
pub mod subset;
pub mod synthetic;
pub mod value;

pub use error::{Error, Result};
pub use indices::{interaction_values, Index, InteractionValues};
pub use mask::MaskBatch;
pub use spectrum::{Basis, Spectrum};
pub use subset::Subset;
pub use value::ValueFunction;
