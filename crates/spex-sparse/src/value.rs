//! [`ValueFunction`]: the batched black box the decoders query.

use super::MaskBatch;
use crate::Result;

/// A function `f: {0,1}^n -> R` evaluated a batch at a time (bit `i` = 1 keeps player `i`).
///
/// Batched on purpose: a model runs a whole batch of masks in one forward pass.
pub trait ValueFunction {
    /// Number of players `n` (the mask width).
    fn n_players(&self) -> usize;

    /// One value per mask of `masks` (`[m]` values for `m` masks).
    fn values(&mut self, masks: &MaskBatch) -> Result<Vec<f64>>;
}

/// Any closure over a mask batch is a value function over a fixed `n`.
pub struct FnValue<F> {
    n: usize,
    f: F,
}

impl<F: FnMut(&MaskBatch) -> Vec<f64>> FnValue<F> {
    /// Wraps `f`, which maps `[m, n]` masks to `[m]` values.
    pub fn new(n: usize, f: F) -> Self {
        FnValue { n, f }
    }
}

impl<F: FnMut(&MaskBatch) -> Vec<f64>> ValueFunction for FnValue<F> {
    fn n_players(&self) -> usize {
        self.n
    }

    fn values(&mut self, masks: &MaskBatch) -> Result<Vec<f64>> {
        Ok((self.f)(masks))
    }
}
