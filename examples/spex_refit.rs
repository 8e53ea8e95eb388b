//! Does the least-squares refit help? R^2 on 2000 noiseless uniform masks and the largest
//! coefficient error, with and without refit, for K-sparse games with Gaussian noise.
//!
//! `cargo run --release --example spex_refit`

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use spex::sparse::spex::{Decoder, SpexPlan};
use spex::sparse::synthetic::random_sparse_fourier;
use spex::sparse::MaskBatch;

fn main() -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut test = MaskBatch::new(100);
    for _ in 0..2000 {
        let bools: Vec<bool> = (0..100).map(|_| rng.random()).collect();
        test.push_bools(&bools);
    }
    println!("| K | b | sigma | decoder | mean R2 refit | mean R2 no refit | mean max coef err refit | no refit |");
    println!("|---|---|---|---|---|---|---|---|");
    for (k, budget) in [(10usize, 4224usize), (40, 8448)] {
        for sigma in [0.0, 0.1, 0.5, 1.0] {
            for decoder in [Decoder::Soft, Decoder::Hard] {
                let mut acc = [0.0f64; 4];
                let seeds = 10;
                for seed in 0..seeds {
                    let truth = random_sparse_fourier(100, k, 3, 100 + seed);
                    let plan = SpexPlan::new(100, budget, 3, seed)?.with_decoder(decoder);
                    let mut values = truth.eval(&plan.masks()?);
                    let mut noise_rng = ChaCha8Rng::seed_from_u64(seed);
                    if sigma > 0.0 {
                        let noise = Normal::new(0.0, sigma)?;
                        values
                            .iter_mut()
                            .for_each(|v| *v += noise.sample(&mut noise_rng));
                    }
                    let y = truth.eval(&test);
                    for (i, refit) in [true, false].into_iter().enumerate() {
                        let got = plan.clone().with_refit(refit).decode(&values)?;
                        acc[i] += got.r2(&test, &y);
                        let err = truth
                            .iter()
                            .map(|(s, v)| (got.get(s) - v).abs())
                            .fold(0.0, f64::max);
                        acc[2 + i] += err;
                    }
                }
                let b = SpexPlan::new(100, budget, 3, 0)?.b;
                let m = seeds as f64;
                println!(
                    "| {k} | {b} | {sigma} | {decoder:?} | {:.6} | {:.6} | {:.4} | {:.4} |",
                    acc[0] / m,
                    acc[1] / m,
                    acc[2] / m,
                    acc[3] / m
                );
            }
        }
    }
    Ok(())
}
