//! The math: subsets, sparse spectra (Fourier and Moebius), interaction indices, and the two
//! decoders, SPEX and ProxySPEX. Model-free: everything here takes a batched value function.

#[cfg(test)]
mod brute;
mod distribute;
pub mod exact;
pub mod indices;
pub mod mask;
pub mod plan;
pub mod proxy;
pub mod spectrum;
pub mod spex;
pub mod subset;
pub mod synthetic;
pub mod value;

pub use indices::{interaction_values, Index, InteractionValues};
pub use mask::MaskBatch;
pub use spectrum::{Basis, Spectrum};
pub use subset::Subset;
pub use value::ValueFunction;
