//! GPU throughput of ablated forward passes on a SmolLM2-135M-shaped model with random weights
//! (speed does not depend on the values, and the GPU machine has no model files): passes/s and
//! model FLOPs utilisation for bf16 and f32, prompts of 64 and 256 tokens, batches growing until
//! `--max-tokens` positions or an allocation failure, plain (every layer of every row) and with
//! layer reuse (masks only in the top third of the layers). Then the fused head-mask merge alone
//! against the plain tensor ops it replaces, in GB/s.
//!
//! `cargo run --release --features cuda --example gpu_bench -- [--budget-s 300]`, and
//! `-- --oom-check`: one batch too large for the card, which the engine must split.
//!
//! FLOPs count what the engine executes: 2 x (matrix parameters of a layer) per position and
//! layer, plus 4 x H x Dh x T per position and layer for the attention products (full T x T
//! scores, as computed: the causal mask is a bias), plus the 4-token unembedding of the last
//! position. With reuse, a batch of two or more rows costs one clean batch-1 pass over all layers
//! and the batch from its lowest masked layer up; one row runs every layer (as the engine does).

#[path = "../tests/support/random_model.rs"]
mod random_model;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use spex::model::gpu::head_mask_merge;
use spex::model::{HeadScales, Job, Model, Readout, RunOptions};

/// Dense bf16 matrix rate measured on this workplace's H200 (8192^3 products), TFLOP/s.
const PEAK_BF16: f64 = 790.0;
/// The H200 SXM's datasheet f32 rate without tensor cores (candle's f32 GEMM does not use TF32).
const PEAK_F32: f64 = 67.0;
/// H200 HBM3e datasheet bandwidth, GB/s.
const PEAK_BYTES: f64 = 4800.0;

#[derive(Parser)]
#[command(about = "Ablated forward passes per second and MFU on CUDA GPU 0")]
struct Args {
    /// Compute dtypes.
    #[arg(long, value_delimiter = ',', default_value = "bf16,f32")]
    dtypes: Vec<String>,
    /// Prompt lengths (tokens).
    #[arg(long, value_delimiter = ',', default_value = "64,256")]
    lens: Vec<usize>,
    /// Batch sizes (masks per forward pass), tried in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,4,16,64,256,1024,4096,16384"
    )]
    batches: Vec<usize>,
    /// Largest batch in positions (rows x tokens).
    #[arg(long, default_value_t = 1 << 20)]
    max_tokens: usize,
    /// Shortest timed span per point, seconds (after one warm-up call).
    #[arg(long, default_value_t = 0.5)]
    min_time_s: f64,
    /// Wall-clock budget for the whole sweep; points past it are skipped (and listed).
    #[arg(long, default_value_t = 300.0)]
    budget_s: f64,
    /// Instead of the sweep: ask the engine for one bf16 batch too large for the card
    /// (`--oom-rows` masks of `--oom-len` tokens), which it must split after running out of
    /// memory, and check the rows against batch-of-1 runs.
    #[arg(long)]
    oom_check: bool,
    /// Masks in the out-of-memory check.
    #[arg(long, default_value_t = 8192)]
    oom_rows: usize,
    /// Prompt length of the out-of-memory check, tokens (the attention scores grow as its square).
    #[arg(long, default_value_t = 1024)]
    oom_len: usize,
}

/// SmolLM2-135M's config.json, the fields the runtime reads.
fn smollm2_config() -> Value {
    json!({"model_type": "llama", "vocab_size": 49152, "hidden_size": 576,
           "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
           "num_key_value_heads": 3, "head_dim": 64, "rms_norm_eps": 1e-5,
           "rope_theta": 100000.0, "max_position_embeddings": 8192,
           "tie_word_embeddings": true, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2})
}

/// The shape numbers the FLOP count needs.
struct Shape {
    layers: usize,
    heads: usize,
    head_dim: usize,
    d: usize,
    /// Matrix parameters of one layer (q, k, v, o, gate, up, down).
    layer_params: usize,
}

impl Shape {
    fn of(m: &Model, intermediate: usize) -> Shape {
        let i = m.info();
        let (d, h, hkv, hd) = (i.d_model, i.n_heads, i.n_kv_heads, i.head_dim);
        Shape {
            layers: i.n_layers,
            heads: h,
            head_dim: hd,
            d,
            layer_params: 2 * d * h * hd + 2 * d * hkv * hd + 3 * d * intermediate,
        }
    }

    /// FLOPs of `rows` rows of `t` positions through `layers` layers.
    fn layers_flops(&self, rows: usize, t: usize, layers: usize) -> f64 {
        let per_row_layer = 2.0 * (self.layer_params * t) as f64
            + 4.0 * (self.heads * self.head_dim * t * t) as f64;
        rows as f64 * layers as f64 * per_row_layer
    }
}

/// `b` masks zeroing each head of layers `from..L` with probability 1/2 (at least one per row).
fn masks(shape: &Shape, b: usize, from: usize, seed: u64) -> Vec<Job> {
    let (l, h) = (shape.layers, shape.heads);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..b)
        .map(|_| {
            let mut heads: Vec<f32> = (0..l * h)
                .map(|i| {
                    if i / h >= from && rng.random::<bool>() {
                        0.0
                    } else {
                        1.0
                    }
                })
                .collect();
            heads[from * h + rng.random_range(0..h)] = 0.0;
            Job {
                prompt: 0,
                heads: Some(HeadScales::new(l, h, heads).expect("finite 0/1 scales")),
                tokens: None,
            }
        })
        .collect()
}

/// Lowest layer any job masks.
fn lowest_masked(jobs: &[Job], heads: usize, layers: usize) -> usize {
    jobs.iter()
        .filter_map(|j| j.heads.as_ref())
        .filter_map(|row| row.iter().position(|&v| v != 1.0).map(|i| i / heads))
        .min()
        .unwrap_or(layers)
}

/// Calls `f` once (warm-up), then until `min_time` has passed (at least twice): seconds per call.
fn time_it(min_time: Duration, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let start = Instant::now();
    let mut calls = 0u32;
    while calls < 2 || start.elapsed() < min_time {
        f()?;
        calls += 1;
    }
    Ok(start.elapsed().as_secs_f64() / calls as f64)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let budget = Duration::from_secs_f64(args.budget_s);
    let min_time = Duration::from_secs_f64(args.min_time_s);
    let dev = Device::new_cuda(0).context("CUDA GPU 0")?;
    let cfg = smollm2_config();
    let intermediate = cfg["intermediate_size"].as_u64().unwrap_or(0) as usize;
    let tensors = random_model::llama_tensors(&cfg, 1);
    if args.oom_check {
        let model = random_model::build(&cfg, tensors, &dev, DType::BF16)?;
        return oom_check(&model, intermediate, args.oom_rows, args.oom_len);
    }
    let mut skipped = Vec::new();

    println!(
        "SmolLM2-135M-shaped model, random weights; passes/s = masked forward passes per second"
    );
    println!(
        "MFU: executed FLOPs / time / peak (bf16 {PEAK_BF16} TFLOP/s measured here; f32 {PEAK_F32} TFLOP/s datasheet, no TF32)"
    );
    println!(
        "\n| dtype | T | mode | batch | s/call | passes/s | TFLOP/s | MFU % |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for name in &args.dtypes {
        let (dtype, peak) = match name.as_str() {
            "bf16" => (DType::BF16, PEAK_BF16),
            "f32" => (DType::F32, PEAK_F32),
            "f16" => (DType::F16, PEAK_BF16),
            other => anyhow::bail!("--dtypes: `{other}` is not bf16, f16 or f32"),
        };
        let model = random_model::build(&cfg, tensors.clone(), &dev, dtype)?;
        let shape = Shape::of(&model, intermediate);
        let unembed = 2.0 * (shape.d * 4) as f64;
        let top_third = shape.layers - shape.layers / 3;
        for &t in &args.lens {
            let mut rng = ChaCha8Rng::seed_from_u64(t as u64);
            let prompt: Vec<u32> = (0..t).map(|_| rng.random_range(3..49152)).collect();
            for (mode, from, reuse) in [("plain", 0, false), ("reuse top third", top_third, true)] {
                for &b in args.batches.iter().filter(|&&b| b * t <= args.max_tokens) {
                    if let Some(limit) = model.batch_limit().filter(|&l| l < b * t) {
                        println!("| {name} | {t} | {mode} | {b} | past the memory limit ({limit} positions) | | | |");
                        break;
                    }
                    if started.elapsed() > budget {
                        skipped.push(format!("{name} T={t} {mode} B={b}"));
                        continue;
                    }
                    let jobs = masks(&shape, b, from, 7);
                    let opts = RunOptions {
                        reuse,
                        max_batch_tokens: b * t,
                        ..RunOptions::default()
                    };
                    let secs = match time_it(min_time, || {
                        model.run(std::slice::from_ref(&prompt), &jobs, &readout(), &opts)?;
                        Ok(())
                    }) {
                        Ok(s) => s,
                        Err(e) => {
                            println!("| {name} | {t} | {mode} | {b} | stopped: {e:#} | | | |");
                            break;
                        }
                    };
                    if let Some(limit) = model.batch_limit().filter(|&l| l < b * t) {
                        println!("| {name} | {t} | {mode} | {b} | out of memory: the engine now batches at most {limit} positions | | | |");
                        break;
                    }
                    let start = lowest_masked(&jobs, shape.heads, shape.layers);
                    let flops = if reuse && b > 1 {
                        shape.layers_flops(1, t, shape.layers)
                            + shape.layers_flops(b, t, shape.layers - start)
                    } else {
                        shape.layers_flops(b, t, shape.layers)
                    } + b as f64 * unembed;
                    let tflops = flops / secs / 1e12;
                    println!(
                        "| {name} | {t} | {mode} | {b} | {secs:.4} | {:.1} | {tflops:.1} | {:.1} |",
                        b as f64 / secs,
                        100.0 * tflops / peak
                    );
                }
            }
        }
    }
    if !skipped.is_empty() {
        println!(
            "\nskipped (past --budget-s {}): {}",
            args.budget_s,
            skipped.join(", ")
        );
    }
    merge_bench(&dev, min_time)?;
    println!("\ntotal {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The answer-letter readout of multiple choice: 4 rows of the unembedding.
fn readout() -> Readout {
    Readout::Tokens(vec![330, 389, 426, 420])
}

/// One batch of `rows` masks x `len` tokens, asked for whole: the engine must run out of memory,
/// split it and return every row; rows 0 and `rows - 1` must equal batch-of-1 runs (bf16
/// tolerance, relative to the largest logit).
fn oom_check(model: &Model, intermediate: usize, rows: usize, len: usize) -> Result<()> {
    let shape = Shape::of(model, intermediate);
    let mut rng = ChaCha8Rng::seed_from_u64(len as u64);
    let prompt = vec![(0..len)
        .map(|_| rng.random_range(3..49152))
        .collect::<Vec<u32>>()];
    let jobs = masks(&shape, rows, 0, 11);
    let opts = RunOptions {
        reuse: false,
        max_batch_tokens: rows * len,
        ..RunOptions::default()
    };
    println!(
        "out-of-memory check: {rows} masks x {len} tokens asked as one batch ({} positions)",
        rows * len
    );
    let start = Instant::now();
    let out = model.run(&prompt, &jobs, &readout(), &opts)?;
    let secs = start.elapsed().as_secs_f64();
    let Some(limit) = model.batch_limit() else {
        anyhow::bail!("no out-of-memory happened in {secs:.1} s: the card held the whole batch (raise --oom-rows)");
    };
    println!("ran in {secs:.1} s; the engine now batches at most {limit} positions");
    anyhow::ensure!(
        out.iter().flatten().all(|v| v.is_finite()),
        "non-finite logits"
    );
    for j in [0, rows - 1] {
        let single = model.run(&prompt, &jobs[j..j + 1], &readout(), &opts)?;
        let scale = single[0].iter().fold(1.0f32, |m, v| m.max(v.abs()));
        let err = out[j]
            .iter()
            .zip(&single[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
            / scale;
        println!("row {j} against a batch of 1: relative error {err:.2e}");
        anyhow::ensure!(
            err <= 2e-2,
            "row {j} differs from its batch-of-1 run by {err}"
        );
    }
    println!("out-of-memory check passed");
    Ok(())
}

/// The fused head-mask merge against the plain ops (scale, mean blend, merge copy) on one
/// layer's context `[B, 9, T, 64]`: GB/s counting the context read once and the output written.
fn merge_bench(dev: &Device, min_time: Duration) -> Result<()> {
    println!(
        "\nhead-mask merge alone, ctx [B, 9, T, 64] (GB/s = (ctx + out bytes) / time; HBM peak {PEAK_BYTES} GB/s)\n\n| dtype | B x T | mean | fused GB/s | plain GB/s | speed-up |\n| --- | --- | --- | --- | --- | --- |"
    );
    let (h, dh) = (9, 64);
    for dtype in [DType::BF16, DType::F32] {
        for (b, t) in [(64, 256), (1024, 256)] {
            let ctx = Tensor::randn(0f32, 1.0, (b, h, t, dh), dev)?.to_dtype(dtype)?;
            let s = Tensor::rand(0f32, 1.0, (b, h), dev)?.to_dtype(dtype)?;
            let mean = Tensor::randn(0f32, 1.0, (h, dh), dev)?.to_dtype(dtype)?;
            let bytes = 2.0 * (ctx.elem_count() * dtype.size_in_bytes()) as f64;
            for m in [None, Some(&mean)] {
                let fused = time_it(min_time, || {
                    head_mask_merge(&ctx, &s, m)?;
                    dev.synchronize()?;
                    Ok(())
                })?;
                let s4 = s.reshape((b, h, 1, 1))?;
                let plain = time_it(min_time, || {
                    let mut y = ctx.broadcast_mul(&s4)?;
                    if let Some(m) = m {
                        let rest = s4.affine(-1.0, 1.0)?;
                        y = y.broadcast_add(&m.reshape((1, h, 1, dh))?.broadcast_mul(&rest)?)?;
                    }
                    y.transpose(1, 2)?.contiguous()?.reshape((b, t, h * dh))?;
                    dev.synchronize()?;
                    Ok(())
                })?;
                println!(
                    "| {dtype:?} | {b} x {t} | {} | {:.0} | {:.0} | {:.2} |",
                    m.is_some(),
                    bytes / fused / 1e9,
                    bytes / plain / 1e9,
                    plain / fused
                );
            }
        }
    }
    Ok(())
}
