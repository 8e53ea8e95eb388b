//! SPEX decode time (values -> Fourier spectrum) on random K-sparse spectra.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spex::sparse::spex::{BchParams, SpexPlan};
use spex::sparse::{Basis, Spectrum, Subset};

/// K distinct sets of size U{1..t} with amplitudes U[1,2] of random sign.
fn random_sparse(n: usize, k: usize, t: usize, seed: u64) -> Spectrum {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = Spectrum::new(n, Basis::Fourier);
    while s.len() < k {
        let size = rng.random_range(1..=t);
        let set = Subset::from_indices((0..size).map(|_| rng.random_range(0..n as u32)));
        if set.len() == size && s.get(&set) == 0.0 {
            let a = rng.random_range(1.0..2.0) * if rng.random::<bool>() { 1.0 } else { -1.0 };
            s.set(set, a);
        }
    }
    s
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("spex_decode");
    group.sample_size(10);
    for n in [64usize, 256, 1024] {
        for k in [20usize, 50, 100] {
            for t in 3..=5 {
                // b with 2^b >= K (the K <~ 1.25 * 2^b rule of thumb), as a budget
                let b = (k as f64 / 1.25).log2().ceil() as usize;
                let delays = BchParams::search(n, t).expect("code").delays;
                let budget = (3 * delays) << b;
                let plan = SpexPlan::new(n, budget, t, 0).expect("plan");
                let truth = random_sparse(n, k, t, 7);
                let values = truth.eval(&plan.masks().expect("masks"));
                group.throughput(Throughput::Elements(values.len() as u64));
                let id = BenchmarkId::new(format!("n{n}_t{t}"), format!("K{k}_m{}", values.len()));
                group.bench_with_input(id, &values, |bench, v| {
                    bench.iter(|| plan.decode(v).expect("decode"))
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
