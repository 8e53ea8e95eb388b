//! The math: subsets, sparse spectra (Fourier and Moebius), interaction indices, and the two
//! decoders, SPEX and ProxySPEX. Model-free: everything here takes a batched value function.

pub mod mask;
pub mod proxy;
pub mod spectrum;
pub mod subset;
pub mod value;

pub use mask::MaskBatch;
pub use spectrum::{Basis, Spectrum};
pub use subset::Subset;
pub use value::ValueFunction;
