//! Ablated forward passes per second of the default model (SmolLM2-135M, f32, CPU): prompts of 64
//! and 256 tokens, batches of 1..64 random head masks, plain (every layer recomputed) and with
//! layer reuse (masks only in the top third of the layers), with f32 or bf16 projection products.
//! Skips when the model folder is absent.
//!
//! `cargo bench --bench forward` (env `SPEX_BENCH_T=64`, `SPEX_BENCH_B=1,8`, `SPEX_BENCH_DTYPE=bf16`
//! restrict the grid; `SPEX_CPU_KERNELS=avx2` forces the narrower kernels;
//! `SPEX_BENCH_BATCH_TOKENS` sets the positions per batch: default the library's for the CPU,
//! `RunOptions::for_device`, as the command line and the Python module run; 16384 runs each B as
//! one batch, as torch_heads.py runs it).

use std::path::PathBuf;

use candle_core::{DType, Device};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spex::model::{HeadScales, Job, Model, Readout, RunOptions};

/// The paragraph benches/python/torch_heads.py uses, repeated and cut to exactly T tokens.
const TEXT: &str =
    "The old lighthouse stood on a rocky point at the edge of the bay. Every night for ninety \
years its keeper climbed the spiral stairs, trimmed the wick and polished the great lens, \
so that fishing boats coming home through fog and storm could find the narrow channel \
between the reefs. ";

fn grid(var: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(var)
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// `b` masks that zero each head with probability 1/2, in layers `from..L` only.
fn masks(model: &Model, b: usize, from: usize, seed: u64) -> Vec<Job> {
    let (l, h) = (model.info().n_layers, model.info().n_heads);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..b)
        .map(|_| {
            let heads = (0..l * h)
                .map(|i| {
                    if i / h >= from && rng.random::<bool>() {
                        0.0
                    } else {
                        1.0
                    }
                })
                .collect();
            Job {
                prompt: 0,
                heads: Some(HeadScales::new(l, h, heads).expect("finite 0/1 scales")),
                tokens: None,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    // As the command line runs: freed buffers stay in the heap (src/model/cpu/heap.rs).
    spex::model::cpu::heap::keep_freed_buffers();
    let home = std::env::var_os("SPEX_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/spex")
        });
    let dir = home.join("models/smollm2-135m-instruct-hf");
    if !dir.join("model.safetensors").is_file() {
        println!("skipped: no model folder at {}", dir.display());
        return;
    }
    let dtypes = std::env::var("SPEX_BENCH_DTYPE").unwrap_or_else(|_| "f32".into());
    let mut group = c.benchmark_group("ablated_forward");
    group.sample_size(10);
    for dtype in dtypes.split(',').map(str::trim) {
        let dtype = match dtype {
            "bf16" => DType::BF16,
            _ => DType::F32,
        };
        let model = Model::load(&dir, &Device::Cpu, dtype).expect("model loads");
        bench_model(&mut group, &model);
    }
    group.finish();
}

/// The grid of prompt lengths, batch sizes and (plain, reuse) on one loaded model.
fn bench_model(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    model: &Model,
) {
    let all: Vec<u32> = model.encode(&TEXT.repeat(12)).expect("encodes");
    let layers = model.info().n_layers;
    let readout = Readout::Tokens(vec![330, 389, 426, 420]);
    let dtype = model.dtype().as_str();
    let batch_tokens = grid("SPEX_BENCH_BATCH_TOKENS", &[])
        .first()
        .copied()
        .unwrap_or(RunOptions::for_device(&Device::Cpu).max_batch_tokens);
    for t in grid("SPEX_BENCH_T", &[64, 256]) {
        let prompt = all[..t.min(all.len())].to_vec();
        for b in grid("SPEX_BENCH_B", &[1, 8, 32, 64]) {
            group.throughput(Throughput::Elements(b as u64));
            for (name, from, reuse) in [
                ("plain", 0, false),
                ("reuse_top_third", layers - layers / 3, true),
            ] {
                let jobs = masks(model, b, from, 7);
                let opts = RunOptions {
                    reuse,
                    max_batch_tokens: batch_tokens,
                    ..RunOptions::default()
                };
                group.bench_with_input(
                    BenchmarkId::new(format!("{name}/{dtype}/T{t}"), b),
                    &jobs,
                    |bch, jobs| {
                        bch.iter(|| {
                            model
                                .run(std::slice::from_ref(&prompt), jobs, &readout, &opts)
                                .expect("runs")
                        })
                    },
                );
            }
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
