//! Seeded random tensors for the model's unit tests, so that a failing draw reproduces.

use candle_core::{Device, Shape, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// A stream of seeded normal tensors (f32, CPU).
pub(crate) struct SeededNormal(ChaCha8Rng);

impl SeededNormal {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        SeededNormal(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Values from `N(mean, std^2)` in `shape`.
    pub fn tensor(&mut self, shape: impl Into<Shape>, mean: f32, std: f32) -> Tensor {
        let shape = shape.into();
        let values: Vec<f32> = (0..shape.elem_count())
            .map(|_| mean + std * self.0.sample::<f32, _>(StandardNormal))
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).expect("length matches the shape")
    }
}
