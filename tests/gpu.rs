//! GPU checks, built only with `--features cuda` or `--features metal` and failing (not skipping)
//! without that GPU: the fused head-mask merge (`kernels/head_mask.cu`, `kernels/head_mask.metal`)
//! against the plain tensor ops on the CPU, and tiny random models on the GPU against the same
//! models on the CPU (the reference path), in f32 and in the GPU's half type (bf16 on CUDA, f16 on
//! Metal: what `--device` picks).
#![cfg(any(feature = "cuda", feature = "metal"))]

mod common;
#[path = "support/random_model.rs"]
mod random_model;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use spex::model::gpu::head_mask_merge;
use spex::model::{HeadMask, Job, Model, ModelResult, Readout, RunOptions};

/// CUDA GPU 0 in a `cuda` build, else Metal GPU 0.
fn gpu() -> Device {
    #[cfg(feature = "cuda")]
    let dev = Device::new_cuda(0);
    #[cfg(not(feature = "cuda"))]
    let dev = Device::new_metal(0);
    dev.expect("GPU 0 (these tests exist only with --features cuda or --features metal)")
}

/// The half-precision type the runtime computes in on this GPU (`model::default_dtype`).
fn half_dtype() -> DType {
    spex::model::default_dtype(&gpu())
}

/// Seeded values uniform in `[lo, hi)`, f32 on the CPU.
fn rand_tensor(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Head scales `[N, H]`: 0, 1, 0.5 and random values in between, so every branch is exercised.
fn scales(n: usize, h: usize, seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..n * h)
        .map(|i| match i % 4 {
            0 => 0.0,
            1 => 1.0,
            2 => 0.5,
            _ => rng.random_range(0.0..1.0),
        })
        .collect();
    Tensor::from_vec(v, (n, h), &Device::Cpu).unwrap()
}

/// The plain tensor ops the models run on the CPU: `ctx * s + (1 - s) * mean` per head, then
/// the heads merged into `[N, T, H*Dh]`.
fn reference(ctx: &Tensor, s: &Tensor, mean: Option<&Tensor>) -> Tensor {
    let (n, h, t, dh) = ctx.dims4().unwrap();
    let s4 = s.reshape((n, h, 1, 1)).unwrap();
    let mut y = ctx.broadcast_mul(&s4).unwrap();
    if let Some(m) = mean {
        let rest = s4.affine(-1.0, 1.0).unwrap();
        let m4 = m.reshape((1, h, 1, dh)).unwrap();
        y = y.broadcast_add(&m4.broadcast_mul(&rest).unwrap()).unwrap();
    }
    y.transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((n, t, h * dh))
        .unwrap()
}

/// Largest `|a - b| / max(1, |b|)` over two tensors of one shape (compared in f32 on the CPU).
fn max_rel_err(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a = a.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
    let b = b.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
    let (a, b) = (a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
    a.iter()
        .zip(&b)
        .map(|(x, y)| {
            assert!(x.is_finite(), "non-finite output {x}");
            (x - y).abs() / y.abs().max(1.0)
        })
        .fold(0.0, f32::max)
}

#[test]
fn fused_merge_matches_the_plain_ops() {
    let dev = gpu();
    // Odd sizes, a single element, H*Dh not a multiple of 32, and H*Dh = 1280 > 1024 threads.
    let shapes = [
        (1, 1, 1, 1),
        (3, 9, 7, 64),
        (2, 5, 13, 24),
        (4, 3, 1, 17),
        (1, 16, 5, 80),
        (5, 2, 33, 128),
    ];
    // Half an ulp of rounding the output once, plus the inputs' rounding carried through.
    for (dtype, tol) in [
        (DType::F32, 1e-6),
        (DType::F16, 2e-3),
        (DType::BF16, 1.6e-2),
    ] {
        for (k, &(n, h, t, dh)) in shapes.iter().enumerate() {
            let seed = 10 * k as u64;
            // The inputs rounded to `dtype` first, so the reference sees what the kernel sees.
            let round = |x: Tensor| x.to_dtype(dtype).unwrap().to_dtype(DType::F32).unwrap();
            let ctx = round(rand_tensor(&[n, h, t, dh], -4.0, 4.0, seed));
            let s = round(scales(n, h, seed + 1));
            let mean = round(rand_tensor(&[h, dh], -2.0, 2.0, seed + 2));
            let on_gpu = |x: &Tensor| x.to_dtype(dtype).unwrap().to_device(&dev).unwrap();
            for m in [None, Some(&mean)] {
                let want = reference(&ctx, &s, m);
                let got =
                    head_mask_merge(&on_gpu(&ctx), &on_gpu(&s), m.map(on_gpu).as_ref()).unwrap();
                assert_eq!(got.dims(), &[n, t, h * dh]);
                assert_eq!(got.dtype(), dtype);
                let err = max_rel_err(&got.to_device(&Device::Cpu).unwrap(), &want);
                assert!(
                    err <= tol,
                    "{dtype:?} [{n}, {h}, {t}, {dh}] mean={}: error {err} > {tol}",
                    m.is_some()
                );
            }
        }
    }
}

#[test]
fn fused_merge_takes_strided_inputs() {
    let dev = gpu();
    // ctx built as [N, T, H, Dh] and transposed: not contiguous.
    let base = rand_tensor(&[3, 6, 4, 16], -1.0, 1.0, 1);
    let ctx = base.transpose(1, 2).unwrap();
    let s = scales(3, 4, 2);
    let got = head_mask_merge(
        &ctx.to_device(&dev).unwrap(),
        &s.to_device(&dev).unwrap(),
        None,
    )
    .unwrap();
    let err = max_rel_err(
        &got.to_device(&Device::Cpu).unwrap(),
        &reference(&ctx, &s, None),
    );
    assert!(err <= 1e-6, "error {err}");
}

#[test]
fn fused_merge_rejects_bad_inputs() {
    let dev = gpu();
    let zeros = |shape: &[usize], dtype, d: &Device| Tensor::zeros(shape, dtype, d).unwrap();
    let ctx = zeros(&[2, 3, 4, 8], DType::F32, &dev);
    let s = zeros(&[2, 3], DType::F32, &dev);
    let says = |needle: &str, r: ModelResult<Tensor>| {
        let err = r.expect_err(needle).to_string();
        assert!(err.contains(needle), "`{needle}` not in: {err}");
    };
    says(
        "scale",
        head_mask_merge(&ctx, &zeros(&[3, 2], DType::F32, &dev), None),
    );
    let wrong_mean = zeros(&[3, 4], DType::F32, &dev);
    says("mean", head_mask_merge(&ctx, &s, Some(&wrong_mean)));
    says(
        "BF16",
        head_mask_merge(&ctx, &zeros(&[2, 3], DType::BF16, &dev), None),
    );
    says(
        "ctx",
        head_mask_merge(&zeros(&[2, 3, 4], DType::F32, &dev), &s, None),
    );
    let ints = zeros(&[2, 3, 4, 8], DType::U32, &dev);
    says(
        "U32",
        head_mask_merge(&ints, &zeros(&[2, 3], DType::U32, &dev), None),
    );
    let on_cpu = zeros(&[2, 3, 4, 8], DType::F32, &Device::Cpu);
    says(
        "fused kernel runs on",
        head_mask_merge(&on_cpu, &zeros(&[2, 3], DType::F32, &Device::Cpu), None),
    );
    says(
        "device",
        head_mask_merge(&ctx, &zeros(&[2, 3], DType::F32, &Device::Cpu), None),
    );
}

const VOCAB: usize = 48;

fn llama_config() -> Value {
    // 4 query heads over 2 KV heads (GQA), head_dim 8 with hidden 24 (explicit head_dim).
    json!({"model_type": "llama", "vocab_size": VOCAB, "hidden_size": 24, "intermediate_size": 40,
           "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 64,
           "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2})
}

fn gpt2_config() -> Value {
    json!({"model_type": "gpt2", "vocab_size": VOCAB, "n_embd": 24, "n_layer": 3, "n_head": 3,
           "n_positions": 32, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"})
}

/// GPT-2 tensors (Conv1D `[in, out]` weights) with seeded random values.
fn gpt2_tensors(seed: u64) -> HashMap<String, Tensor> {
    let d = 24;
    let mut k = seed;
    let mut r = |shape: &[usize], lo: f32, hi: f32| {
        k += 1;
        rand_tensor(shape, lo, hi, k)
    };
    let mut w = HashMap::new();
    w.insert("wte.weight".to_string(), r(&[VOCAB, d], -1.0, 1.0));
    w.insert("wpe.weight".to_string(), r(&[32, d], -0.5, 0.5));
    w.insert("ln_f.weight".to_string(), r(&[d], 0.5, 1.5));
    w.insert("ln_f.bias".to_string(), r(&[d], -0.2, 0.2));
    for l in 0..3 {
        let p = format!("h.{l}");
        for ln in ["ln_1", "ln_2"] {
            w.insert(format!("{p}.{ln}.weight"), r(&[d], 0.5, 1.5));
            w.insert(format!("{p}.{ln}.bias"), r(&[d], -0.2, 0.2));
        }
        for (name, d_in, d_out) in [
            ("attn.c_attn", d, 3 * d),
            ("attn.c_proj", d, d),
            ("mlp.c_fc", d, 4 * d),
            ("mlp.c_proj", 4 * d, d),
        ] {
            w.insert(format!("{p}.{name}.weight"), r(&[d_in, d_out], -0.4, 0.4));
            w.insert(format!("{p}.{name}.bias"), r(&[d_out], -0.2, 0.2));
        }
    }
    w
}

/// The same weights on the CPU (f32, the reference), on the GPU in f32 and in its half type.
fn three_models(cfg: &Value, tensors: &HashMap<String, Tensor>) -> [Model; 3] {
    let dev = gpu();
    let m = |d: &Device, dt| random_model::build(cfg, tensors.clone(), d, dt).unwrap();
    [
        m(&Device::Cpu, DType::F32),
        m(&dev, DType::F32),
        m(&dev, half_dtype()),
    ]
}

fn prompt(len: usize, seed: u64) -> Vec<u32> {
    common::random_prompt(len, VOCAB, seed)
}

/// `rows` masks over `layers x heads`: each head zeroed (30%), halved (10%) or kept.
fn random_mask(rows: usize, layers: usize, heads: usize, seed: u64) -> HeadMask {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values = (0..rows * layers * heads)
        .map(|_| match rng.random::<f32>() {
            r if r < 0.3 => 0.0,
            r if r < 0.4 => 0.5,
            _ => 1.0,
        })
        .collect();
    HeadMask::from_values(rows, layers, heads, values).unwrap()
}

fn jobs_of(mask: &HeadMask) -> Vec<Job> {
    (0..mask.rows())
        .map(|b| Job {
            prompt: 0,
            heads: Some(mask.row(b).clone()),
            tokens: None,
        })
        .collect()
}

/// Largest `|a - b|` over all logits, relative to the largest `|b|` (at least 1).
fn logit_err(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "row count");
    let scale = b.iter().flatten().fold(1.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len(), "row width");
            x.iter().zip(y).map(|(u, v)| {
                assert!(u.is_finite(), "non-finite logit {u}");
                (u - v).abs()
            })
        })
        .fold(0.0, f32::max)
        / scale
}

/// Tolerances against the CPU f32 reference: f32 on the GPU (other GEMM orders), and its half
/// type (set for bf16, 8 significant bits; f16 has 11).
const F32_TOL: f32 = 1e-4;
const HALF_TOL: f32 = 6e-2;

fn no_reuse() -> RunOptions {
    RunOptions {
        reuse: false,
        ..RunOptions::default()
    }
}

fn run(m: &Model, prompts: &[Vec<u32>], jobs: &[Job], opts: &RunOptions) -> Vec<Vec<f32>> {
    m.run(prompts, jobs, &Readout::Full, opts).unwrap()
}

#[test]
fn gpu_models_match_the_cpu_model() {
    let llama = llama_config();
    let gpt2 = gpt2_config();
    for (cfg, tensors) in [
        (&llama, random_model::llama_tensors(&llama, 1)),
        (&gpt2, gpt2_tensors(100)),
    ] {
        let kind = cfg["model_type"].as_str().unwrap();
        let [cpu, f32_gpu, half_gpu] = three_models(cfg, &tensors);
        let (layers, heads) = (cpu.info().n_layers, cpu.info().n_heads);
        let ids = vec![prompt(13, 2)];
        let jobs = jobs_of(&random_mask(5, layers, heads, 3));
        for opts in [RunOptions::default(), no_reuse()] {
            let want = run(&cpu, &ids, &jobs, &opts);
            let got = run(&f32_gpu, &ids, &jobs, &opts);
            let err = logit_err(&got, &want);
            assert!(err <= F32_TOL, "{kind} f32: error {err}");
            let got = run(&half_gpu, &ids, &jobs, &opts);
            let err = logit_err(&got, &want);
            assert!(err <= HALF_TOL, "{kind} {:?}: error {err}", half_dtype());
        }
        // The masks must matter, or the comparison above would say nothing about the kernel.
        let plain = cpu
            .forward_ablated(&ids[0], None, None, &Readout::Full)
            .unwrap();
        let masked = run(&cpu, &ids, &jobs, &no_reuse());
        assert!(
            logit_err(&masked[..1], &plain) > 1e-3,
            "{kind}: mask had no effect"
        );
    }
}

#[test]
fn gpu_mean_ablation_matches_the_cpu() {
    let cfg = llama_config();
    let [cpu, f32_gpu, half_gpu] = three_models(&cfg, &random_model::llama_tensors(&cfg, 4));
    let refs = vec![prompt(6, 5), prompt(9, 6)];
    let ids = vec![prompt(10, 7)];
    let jobs = jobs_of(&random_mask(4, 6, 4, 8));
    let with_means = |m: &Model| RunOptions {
        means: Some(m.head_means(&refs).unwrap()),
        ..RunOptions::default()
    };
    let want = run(&cpu, &ids, &jobs, &with_means(&cpu));
    let err = logit_err(&run(&f32_gpu, &ids, &jobs, &with_means(&f32_gpu)), &want);
    assert!(err <= F32_TOL, "f32: error {err}");
    let err = logit_err(&run(&half_gpu, &ids, &jobs, &with_means(&half_gpu)), &want);
    assert!(err <= HALF_TOL, "{:?}: error {err}", half_dtype());
    let zero = run(&cpu, &ids, &jobs, &RunOptions::default());
    assert!(
        logit_err(&want, &zero) > 1e-4,
        "mean ablation must differ from zero ablation"
    );
}

#[test]
fn gpu_all_ones_mask_equals_the_unmasked_model() {
    let cfg = llama_config();
    let [_, f32_gpu, half_gpu] = three_models(&cfg, &random_model::llama_tensors(&cfg, 9));
    let ids = prompt(11, 10);
    for (m, tol) in [(&f32_gpu, 1e-5), (&half_gpu, 1e-2)] {
        let plain = m.forward_ablated(&ids, None, None, &Readout::Full).unwrap();
        let ones = HeadMask::ones(3, 6, 4);
        let masked = m
            .forward_ablated(&ids, Some(&ones), None, &Readout::Full)
            .unwrap();
        for row in &masked {
            let err = logit_err(std::slice::from_ref(row), &plain);
            assert!(err <= tol, "{:?}: error {err}", m.dtype());
        }
    }
}

#[test]
fn gpu_batch_rows_equal_single_runs() {
    let cfg = llama_config();
    let [_, f32_gpu, half_gpu] = three_models(&cfg, &random_model::llama_tensors(&cfg, 11));
    let ids = vec![prompt(12, 12)];
    let mask = random_mask(6, 6, 4, 13);
    for (m, tol) in [(&f32_gpu, 1e-5), (&half_gpu, 2e-2)] {
        for opts in [RunOptions::default(), no_reuse()] {
            let batch = run(m, &ids, &jobs_of(&mask), &opts);
            for b in 0..mask.rows() {
                let one = HeadMask::from_values(1, 6, 4, mask.row(b).to_vec()).unwrap();
                let single = run(m, &ids, &jobs_of(&one), &opts);
                let err = logit_err(&batch[b..b + 1], &single);
                assert!(err <= tol, "{:?} row {b}: error {err}", m.dtype());
            }
        }
    }
}

#[test]
fn gpu_layer_reuse_equals_the_full_pass() {
    let cfg = llama_config();
    let [_, f32_gpu, half_gpu] = three_models(&cfg, &random_model::llama_tensors(&cfg, 14));
    let ids = vec![prompt(12, 15)];
    // Masks only in the top layers, with different lowest masked layers, plus an unmasked row.
    let mut mask = HeadMask::ones(5, 6, 4);
    mask.set(0, 5, 1, 0.0).unwrap();
    mask.set(1, 4, 0, 0.0).unwrap();
    mask.set(1, 5, 3, 0.0).unwrap();
    mask.set(2, 3, 2, 0.25).unwrap();
    for (m, tol) in [(&f32_gpu, 1e-5), (&half_gpu, 2e-2)] {
        let reused = run(m, &ids, &jobs_of(&mask), &RunOptions::default());
        let full = run(m, &ids, &jobs_of(&mask), &no_reuse());
        let err = logit_err(&reused, &full);
        assert!(err <= tol, "{:?}: error {err}", m.dtype());
    }
}

#[test]
fn gpu_ragged_batches_match_the_cpu() {
    // Prompts of different lengths batch with padding: the ragged path (plain ops on the GPU).
    let cfg = llama_config();
    let [cpu, f32_gpu, _] = three_models(&cfg, &random_model::llama_tensors(&cfg, 16));
    let prompts: Vec<Vec<u32>> = [4, 15, 9, 20]
        .iter()
        .enumerate()
        .map(|(i, &len)| prompt(len, 17 + i as u64))
        .collect();
    let mask = random_mask(prompts.len(), 6, 4, 18);
    let jobs: Vec<Job> = (0..prompts.len())
        .map(|p| Job {
            prompt: p,
            heads: Some(mask.row(p).clone()),
            tokens: None,
        })
        .collect();
    let want = run(&cpu, &prompts, &jobs, &no_reuse());
    let err = logit_err(&run(&f32_gpu, &prompts, &jobs, &no_reuse()), &want);
    assert!(err <= F32_TOL, "error {err}");
}
