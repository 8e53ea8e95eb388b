//! The CPU projection product `[M, K] x [N, K]^T` on the default model's shapes: candle's matmul
//! (the `gemm` crate) against spex's packed kernels (AVX2 f32, AVX-512 f32, AVX512-BF16, AMX bf16) in the
//! same run, after this machine's multiply-add peak measured by a register-only loop (best of 5,
//! on every rayon thread at once), so each kernel reads as a fraction of the peak (AMX's is not
//! measured: 1024 FLOP per cycle and core by Intel's tables).
//!
//! Before criterion's runs, each f32 kernel's best and median of 50 calls are printed as a
//! fraction of its peak, with the core clock (from a dependent FMA chain) and the theoretical
//! peak it gives, and the median of each call's speed over that of one register-loop run timed
//! right after it (a clock that drifts during the 50 calls moves both sides of each ratio).
//!
//! `cargo bench --bench sgemm` (env `SPEX_BENCH_M=1024` restricts the row counts; a filter that
//! matches nothing, `cargo bench --bench sgemm -- peak-only`, prints only the fractions).

#[cfg(target_arch = "x86_64")]
use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
#[cfg(target_arch = "x86_64")]
use criterion::{BenchmarkId, Throughput};

#[cfg(target_arch = "x86_64")]
mod peak {
    use std::arch::x86_64::*;
    use std::time::Instant;

    use rayon::prelude::*;

    /// A register-only loop: run on one thread, it returns a value to keep it from being elided.
    type Loop = unsafe fn() -> f32;

    /// Multiply-add instructions per accumulator per timed call.
    const STEPS: usize = 1 << 22;

    /// 12 independent 8-lane f32 FMA chains: 2 FLOP per lane per step.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2() -> f32 {
        let x = _mm256_set1_ps(0.999_999);
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..STEPS {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, x);
            }
        }
        acc.iter().map(|&a| _mm256_cvtss_f32(a)).sum()
    }

    /// 12 independent 16-lane f32 FMA chains: 2 FLOP per lane per step.
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn avx512() -> f32 {
        let x = _mm512_set1_ps(0.999_999);
        let mut acc = [_mm512_set1_ps(1.0); 12];
        for _ in 0..STEPS {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, x);
            }
        }
        acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
    }

    /// 12 independent 16-lane VDPBF16PS chains: two products and two adds (4 FLOP) per lane.
    #[target_feature(enable = "avx512f,avx512bf16")]
    unsafe fn avx512_bf16() -> f32 {
        let x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3), _mm512_set1_ps(1e-3));
        let mut acc = [_mm512_set1_ps(1.0); 12];
        for _ in 0..STEPS {
            for a in acc.iter_mut() {
                *a = _mm512_dpbf16_ps(*a, x, x);
            }
        }
        acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
    }

    /// One dependent chain of 16-lane FMAs: each waits for the last, so the loop runs at the
    /// FMA's latency (4 cycles on the AVX-512 cores of Intel since Skylake-SP and AMD Zen 4).
    #[target_feature(enable = "avx512f,fma")]
    unsafe fn avx512_chain() -> f32 {
        let x = _mm512_set1_ps(0.999_999);
        let mut acc = _mm512_set1_ps(1.0);
        for _ in 0..STEPS {
            acc = _mm512_fmadd_ps(acc, x, x);
        }
        _mm512_reduce_add_ps(acc)
    }

    /// The core clock in GHz, from one dependent FMA chain at 4 cycles per step (best of 5).
    fn clock_ghz() -> f64 {
        (0..5)
            .map(|_| {
                let start = Instant::now();
                // SAFETY: called only where AVX-512F is present.
                std::hint::black_box(unsafe { avx512_chain() });
                4.0 * STEPS as f64 / start.elapsed().as_secs_f64() / 1e9
            })
            .fold(0.0, f64::max)
    }

    /// GFLOP/s of `f` run once on every rayon thread at once (about 6 ms at 4 GHz).
    fn measure_once(f: Loop, flop_per_step: usize) -> f64 {
        let threads = rayon::current_num_threads();
        let start = Instant::now();
        let sink: f32 = (0..threads)
            .into_par_iter()
            // SAFETY: callers check the CPU has the instructions `f` uses.
            .map(|_| unsafe { f() })
            .sum();
        std::hint::black_box(sink);
        let flop = (threads * STEPS * 12 * flop_per_step) as f64;
        flop / start.elapsed().as_secs_f64() / 1e9
    }

    /// GFLOP/s of `f` run on every rayon thread at once, best of 5.
    fn measure(f: Loop, flop_per_step: usize) -> f64 {
        (0..5)
            .map(|_| measure_once(f, flop_per_step))
            .fold(0.0, f64::max)
    }

    /// The f32 register loop's GFLOP/s on all rayon threads, timed once: AVX2's when `avx512`
    /// is false. Callers check the CPU has the instructions.
    pub fn f32_once(avx512: bool) -> f64 {
        match avx512 {
            true => measure_once(self::avx512, 32),
            false => measure_once(avx2, 16),
        }
    }

    /// Prints the peak of each instruction this CPU has, on all rayon threads, and returns the
    /// f32 ones, AVX2 then AVX-512 (GFLOP/s; 0 where the CPU lacks the instructions).
    pub fn print() -> [f64; 2] {
        let threads = rayon::current_num_threads();
        let has = |f: &str| {
            std::is_x86_feature_detected!("avx2")
                && match f {
                    "avx2" => std::is_x86_feature_detected!("fma"),
                    "avx512" => std::is_x86_feature_detected!("avx512f"),
                    _ => std::is_x86_feature_detected!("avx512bf16"),
                }
        };
        let cases: [(&str, &str, Loop, usize); 3] = [
            ("avx2", "f32 FMA, 8 lanes", avx2, 16),
            ("avx512", "f32 FMA, 16 lanes", avx512, 32),
            ("avx512bf16", "VDPBF16PS, 16 lanes", avx512_bf16, 64),
        ];
        let mut f32_peaks = [0.0; 2];
        for (feature, what, f, flop) in cases {
            if has(feature) {
                let peak = measure(f, flop);
                println!("peak {what}: {peak:.1} GFLOP/s on {threads} threads");
                match feature {
                    "avx2" => f32_peaks[0] = peak,
                    "avx512" => f32_peaks[1] = peak,
                    _ => {}
                }
            }
        }
        if has("avx512") {
            let ghz = clock_ghz();
            println!(
                "clock {ghz:.2} GHz (a dependent FMA chain): on {threads} cores with two 512-bit \
                 FMA pipes (Intel Xeon), the theoretical f32 peak is {:.1} GFLOP/s; with two \
                 256-bit pipes (AMD Zen 4), {:.1}",
                threads as f64 * ghz * 64.0,
                threads as f64 * ghz * 32.0
            );
        }
        f32_peaks
    }
}

/// SmolLM2-135M's projections `(K, N)`: q/o (576 -> 576), k/v (576 -> 192), gate/up
/// (576 -> 1536), down (1536 -> 576), the unembedding (576 -> 49152, the readout of every
/// position of a cloze continuation).
#[cfg(target_arch = "x86_64")]
const SHAPES: [(usize, usize); 5] = [
    (576, 576),
    (576, 192),
    (576, 1536),
    (1536, 576),
    (576, 49152),
];

/// Calls of each product timed for its best and median.
#[cfg(target_arch = "x86_64")]
const TIMED_CALLS: usize = 50;

/// A `[rows, cols]` matrix of standard normal values from candle's generator, and its values
/// row-major.
#[cfg(target_arch = "x86_64")]
fn normal(rows: usize, cols: usize) -> (Tensor, Vec<f32>) {
    let t = Tensor::randn(0f32, 1.0, (rows, cols), &Device::Cpu).expect("randn");
    let values = t
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("values");
    (t, values)
}

/// Each f32 kernel's product on every shape, best and median of [`TIMED_CALLS`] calls, as a
/// fraction of its instructions' peak (`peaks`: AVX2 then AVX-512 GFLOP/s, the register loops'
/// best measured just before): the peak's own statistic (best) beside the typical call (median),
/// and the median ratio of each call to one register-loop run timed right after it.
#[cfg(target_arch = "x86_64")]
fn print_fraction_of_peak(
    peaks: [f64; 2],
    rows: &[usize],
    kernels: &[spex::model::cpu::sgemm::Kernel],
) {
    use spex::model::cpu::sgemm::{Kernel, PackedMatrix};
    use std::time::Instant;
    for &kernel in kernels
        .iter()
        .filter(|k| matches!(k, Kernel::Avx2 | Kernel::Avx512))
    {
        let avx512 = matches!(kernel, Kernel::Avx512);
        let peak = peaks[usize::from(avx512)];
        for (k, n) in SHAPES {
            let (_, w) = normal(n, k);
            let packed = PackedMatrix::pack(&w, n, k, kernel, false);
            for &m in rows {
                let (_, x) = normal(m, k);
                for _ in 0..3 {
                    std::hint::black_box(packed.matmul(&x, m));
                }
                let gflops = |s: f64| (2 * m * k * n) as f64 / s / 1e9;
                // Each call paired with one run of the register loop just after it, so a clock
                // that moves between calls moves both sides of the pair's ratio.
                let (mut speeds, mut paired): (Vec<f64>, Vec<f64>) = (0..TIMED_CALLS)
                    .map(|_| {
                        let start = Instant::now();
                        std::hint::black_box(packed.matmul(&x, m));
                        let speed = gflops(start.elapsed().as_secs_f64());
                        let loop_now = peak::f32_once(avx512);
                        (speed, speed / loop_now)
                    })
                    .unzip();
                speeds.sort_by(f64::total_cmp);
                paired.sort_by(f64::total_cmp);
                let (best, median) = (speeds[TIMED_CALLS - 1], speeds[TIMED_CALLS / 2]);
                println!(
                    "{kernel:?} {m}x{k}x{n}: best {best:.1} GFLOP/s ({:.1} % of peak), median \
                     {median:.1} ({:.1} %), median of each call over the loop run after it \
                     {:.1} %",
                    100.0 * best / peak,
                    100.0 * median / peak,
                    100.0 * paired[TIMED_CALLS / 2]
                );
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn bench(c: &mut Criterion) {
    use spex::model::cpu::sgemm::{Kernel, PackedMatrix};
    // As the command line does: freed outputs are reused instead of faulted in again.
    spex::model::cpu::heap::keep_freed_buffers();
    let peaks = peak::print();
    let kernels: Vec<Kernel> = Kernel::ALL.into_iter().filter(|k| k.runs_here()).collect();
    let rows: Vec<usize> = std::env::var("SPEX_BENCH_M")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![64, 1024]);
    print_fraction_of_peak(peaks, &rows, &kernels);
    let mut group = c.benchmark_group("projection_gemm");
    group.sample_size(20);
    for (k, n) in SHAPES {
        let (w, values) = normal(n, k);
        for &m in &rows {
            let (x, xs) = normal(m, k);
            group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            let id = format!("{m}x{k}x{n}");
            group.bench_with_input(BenchmarkId::new("candle_matmul", &id), &x, |b, x| {
                b.iter(|| x.matmul(&w.t().expect("t")).expect("matmul"))
            });
            for &kernel in &kernels {
                let bf16 = matches!(kernel, Kernel::Avx512Bf16 | Kernel::AmxBf16);
                let packed = PackedMatrix::pack(&values, n, k, kernel, bf16);
                let name = format!("spex_{kernel:?}").to_lowercase();
                group.bench_with_input(BenchmarkId::new(name, &id), &xs, |b, xs| {
                    b.iter(|| packed.matmul(xs, m))
                });
            }
        }
    }
    group.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn bench(_c: &mut Criterion) {
    println!("skipped: the packed kernels are x86-64 only");
}

criterion_group!(benches, bench);
criterion_main!(benches);
