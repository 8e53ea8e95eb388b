//! The fused head-mask op on GPUs (`kernels/head_mask.cu` on CUDA, `kernels/head_mask.metal` on
//! Metal): the per-head context and per-row head scales become the `o_proj` input in one pass.
//! `merge.rs` ([`head_mask_merge`]) checks the inputs and dispatches; `cuda.rs` and `metal.rs`
//! launch the kernels with the sizes and kernel names of `launch.rs`.

#[cfg(feature = "cuda")]
mod cuda;
mod launch;
mod merge;
#[cfg(feature = "metal")]
mod metal;

pub use merge::{fused_on, head_mask_merge};
