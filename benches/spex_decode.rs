//! SPEX decode time (values -> Fourier spectrum) on random K-sparse spectra.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use spex::sparse::spex::{BchParams, SpexPlan};
use spex::sparse::synthetic::random_sparse_fourier;

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
                let truth = random_sparse_fourier(n, k, t, 7);
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
