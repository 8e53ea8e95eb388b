//! The CPU projection product `[M, K] x [N, K]^T` in f32 on the default model's shapes:
//! spex's pre-packed AVX2 kernel against candle's matmul (the `gemm` crate) in the same run.
//! Skips on CPUs without AVX2/FMA.
//!
//! `cargo bench --bench sgemm` (env `SPEX_BENCH_M=1024` restricts the row counts).

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[cfg(target_arch = "x86_64")]
fn bench(c: &mut Criterion) {
    use spex::model::cpu::sgemm::{available, PackedMatrix};
    if !available() {
        println!("skipped: this CPU lacks AVX2/FMA");
        return;
    }
    let rows: Vec<usize> = std::env::var("SPEX_BENCH_M")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![64, 1024]);
    let dev = Device::Cpu;
    let mut group = c.benchmark_group("projection_gemm");
    group.sample_size(20);
    // SmolLM2-135M: q/o (576 -> 576), k/v (576 -> 192), gate/up (576 -> 1536), down (1536 -> 576).
    for (k, n) in [(576, 576), (576, 192), (576, 1536), (1536, 576)] {
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).expect("weight");
        let packed = PackedMatrix::pack(
            &w.flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .expect("values"),
            n,
            k,
        );
        for &m in &rows {
            let x = Tensor::randn(0f32, 1.0, (m, k), &dev).expect("input");
            let xs = x
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .expect("values");
            group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            let id = format!("{m}x{k}x{n}");
            group.bench_with_input(BenchmarkId::new("candle_matmul", &id), &x, |b, x| {
                b.iter(|| x.matmul(&w.t().expect("t")).expect("matmul"))
            });
            group.bench_with_input(BenchmarkId::new("spex_packed", &id), &xs, |b, xs| {
                b.iter(|| packed.matmul(xs, m))
            });
        }
    }
    group.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn bench(_c: &mut Criterion) {
    println!("skipped: the packed kernel is x86-64 only");
}

criterion_group!(benches, bench);
criterion_main!(benches);
