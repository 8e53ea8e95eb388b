//! Ablation masks: [`HeadScales`] (one validated row `[L, H]` of head scales, 1 keep, 0 ablate,
//! values in between scale), its parser from the `LAYER:HEAD` and JSON forms, and the batches
//! [`HeadMask`] `[B, L, H]` and [`TokenMask`] `[B, T]`.

mod rows;
mod scales;
mod spec;

pub use rows::{HeadMask, TokenMask};
pub use scales::HeadScales;
