//! Invariants of the maskable runtime on tiny random Llama-style and GPT-2 checkpoints that the
//! test writes itself (config.json + model.safetensors + a word-level tokenizer.json).

use std::path::Path;

use candle_core::{DType, Device};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use spex::model::{HeadMask, HeadScales, Job, Model, ModelError, Readout, RunOptions, TokenMask};

mod common;
use common::{
    gpt2_config, gpt2_weights, llama_config, llama_weights, tokenizer_json, write_model, Ckpt,
    VOCAB,
};

fn load(dir: &Path) -> Model {
    Model::load(dir, &Device::Cpu, DType::F32).unwrap()
}

fn tiny(model_type: &str, seed: u64) -> (tempfile::TempDir, Model, Ckpt) {
    tiny_in(model_type, seed, DType::F32)
}

/// A tiny checkpoint of `model_type` loaded in `dtype` (bf16: bf16 projection products).
fn tiny_in(model_type: &str, seed: u64, dtype: DType) -> (tempfile::TempDir, Model, Ckpt) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = llama_config(model_type);
    let w = llama_weights(&cfg, seed);
    write_model(tmp.path(), &cfg, &w);
    let m = Model::load(tmp.path(), &Device::Cpu, dtype).unwrap();
    (tmp, m, w)
}

/// f32, and bf16 products on the CPU (whichever kernel this CPU runs).
const DTYPES: [DType; 2] = [DType::F32, DType::BF16];

fn prompt(len: usize, seed: u64) -> Vec<u32> {
    common::random_prompt(len, VOCAB, seed)
}

fn random_mask(rows: usize, layers: usize, heads: usize, seed: u64) -> HeadMask {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut m = HeadMask::ones(rows, layers, heads);
    for b in 0..rows {
        for l in 0..layers {
            for h in 0..heads {
                let r: f32 = rng.random();
                let v = if r < 0.3 {
                    0.0
                } else if r < 0.4 {
                    0.5
                } else {
                    1.0
                };
                m.set(b, l, h, v).unwrap();
            }
        }
    }
    m
}

fn assert_close(a: &[Vec<f32>], b: &[Vec<f32>], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: row count");
    for (r, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.len(), y.len(), "{what}: row {r} width");
        for (k, (u, v)) in x.iter().zip(y).enumerate() {
            let scale = 1.0f32.max(u.abs()).max(v.abs());
            assert!(
                (u - v).abs() <= tol * scale,
                "{what}: row {r} col {k}: {u} vs {v}"
            );
        }
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f32::max)
}

/// One unmasked-token job per prompt `0..n`, prompt p under the head scales `heads(p)`.
fn one_job_per_prompt(n: usize, heads: impl Fn(usize) -> Option<HeadScales>) -> Vec<Job> {
    (0..n)
        .map(|p| Job {
            prompt: p,
            heads: heads(p),
            tokens: None,
        })
        .collect()
}

fn no_reuse() -> RunOptions {
    RunOptions {
        reuse: false,
        ..RunOptions::default()
    }
}

fn jobs_of(mask: &HeadMask, tokens: Option<&TokenMask>) -> Vec<Job> {
    (0..mask.rows())
        .map(|b| Job {
            prompt: 0,
            heads: Some(mask.row(b).clone()),
            tokens: tokens.map(|t| t.row(b).to_vec()),
        })
        .collect()
}

#[test]
fn all_ones_mask_equals_the_unmasked_model() {
    for (arch, dtype) in ["llama", "qwen2", "qwen3"]
        .into_iter()
        .flat_map(|arch| DTYPES.map(|dtype| (arch, dtype)))
    {
        let kind = &format!("{arch} {dtype:?}");
        let (_d, m, _) = tiny_in(arch, 1, dtype);
        let ids = prompt(9, 2);
        let plain = m.forward_ablated(&ids, None, None, &Readout::Full).unwrap();
        let ones = HeadMask::ones(3, 4, 4);
        let masked = m
            .forward_ablated(&ids, Some(&ones), None, &Readout::Full)
            .unwrap();
        let full = m
            .run(
                std::slice::from_ref(&ids),
                &jobs_of(&ones, None),
                &Readout::Full,
                &no_reuse(),
            )
            .unwrap();
        for row in masked.iter().chain(&full) {
            assert_close(std::slice::from_ref(row), &plain, 1e-5, kind);
        }
    }
}

#[test]
fn batch_rows_equal_single_runs() {
    for (arch, dtype) in ["llama", "qwen2", "qwen3"]
        .into_iter()
        .flat_map(|arch| DTYPES.map(|dtype| (arch, dtype)))
    {
        let kind = &format!("{arch} {dtype:?}");
        let (_d, m, _) = tiny_in(arch, 3, dtype);
        let ids = prompt(11, 4);
        let mask = random_mask(6, 4, 4, 5);
        for opts in [RunOptions::default(), no_reuse()] {
            let batch = m
                .run(
                    std::slice::from_ref(&ids),
                    &jobs_of(&mask, None),
                    &Readout::Full,
                    &opts,
                )
                .unwrap();
            for b in 0..6 {
                let one = HeadMask::from_values(1, 4, 4, mask.row(b).to_vec()).unwrap();
                let single = m
                    .run(
                        std::slice::from_ref(&ids),
                        &jobs_of(&one, None),
                        &Readout::Full,
                        &opts,
                    )
                    .unwrap();
                assert_close(&batch[b..b + 1], &single, 1e-5, &format!("{kind} row {b}"));
            }
            // A mask that removes something must change the output (the test would pass vacuously otherwise).
            let plain = m.forward_ablated(&ids, None, None, &Readout::Full).unwrap();
            assert!(
                max_diff(&batch[0], &plain[0]) > 1e-3,
                "{kind}: mask had no effect"
            );
        }
    }
}

#[test]
fn zeroing_a_head_equals_zeroing_its_o_proj_columns() {
    // Heads 2 and 3 share KV head 1 (group size 2): zeroing head 2 must leave head 3 alone.
    let cfg = llama_config("llama");
    let w = llama_weights(&cfg, 7);
    let (layer, head, hd, hh) = (2usize, 2usize, 8usize, 32usize);
    let mut cut = w.clone();
    let (_, o) = cut
        .get_mut(&format!("model.layers.{layer}.self_attn.o_proj.weight"))
        .unwrap();
    for row in 0..24 {
        for c in head * hd..(head + 1) * hd {
            o[row * hh + c] = 0.0;
        }
    }
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_model(a.path(), &cfg, &w);
    write_model(b.path(), &cfg, &cut);
    let (orig, edited) = (load(a.path()), load(b.path()));
    let ids = prompt(10, 8);
    let mask = HeadMask::zeroing(4, 4, &[vec![(layer, head)]]).unwrap();
    let masked = orig
        .forward_ablated(&ids, Some(&mask), None, &Readout::Full)
        .unwrap();
    let reference = edited
        .forward_ablated(&ids, None, None, &Readout::Full)
        .unwrap();
    assert_close(&masked, &reference, 1e-5, "o_proj columns");
    let plain = orig
        .forward_ablated(&ids, None, None, &Readout::Full)
        .unwrap();
    assert!(max_diff(&masked[0], &plain[0]) > 1e-3);
}

#[test]
fn gqa_matches_the_same_model_with_kv_heads_repeated() {
    // Query head h reads KV head h / group; repeating K/V weights per query head gives plain
    // multi-head attention, which must agree masked and unmasked.
    let cfg = llama_config("qwen2");
    let w = llama_weights(&cfg, 9);
    let mut mha_cfg = cfg.clone();
    mha_cfg["num_key_value_heads"] = json!(4);
    let mut mha = w.clone();
    let (hd, d) = (8usize, 24usize);
    for l in 0..4 {
        for name in ["k_proj", "v_proj"] {
            let key = format!("model.layers.{l}.self_attn.{name}.weight");
            let (_, src) = w[&key].clone();
            let rows: Vec<f32> = (0..4)
                .flat_map(|h| src[(h / 2) * hd * d..(h / 2 + 1) * hd * d].to_vec())
                .collect();
            mha.insert(key, (vec![4 * hd, d], rows));
            let key = format!("model.layers.{l}.self_attn.{name}.bias");
            let (_, src) = w[&key].clone();
            let rows: Vec<f32> = (0..4)
                .flat_map(|h| src[(h / 2) * hd..(h / 2 + 1) * hd].to_vec())
                .collect();
            mha.insert(key, (vec![4 * hd], rows));
        }
    }
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_model(a.path(), &cfg, &w);
    write_model(b.path(), &mha_cfg, &mha);
    let (gqa, full) = (load(a.path()), load(b.path()));
    let ids = prompt(8, 10);
    let mask = random_mask(4, 4, 4, 11);
    let x = gqa
        .forward_ablated(&ids, Some(&mask), None, &Readout::Full)
        .unwrap();
    let y = full
        .forward_ablated(&ids, Some(&mask), None, &Readout::Full)
        .unwrap();
    assert_close(&x, &y, 1e-5, "gqa vs repeated kv");
}

#[test]
fn layer_and_prefix_reuse_equal_the_full_pass() {
    let (_d, m, _) = tiny("llama", 12);
    let ids = prompt(12, 13);
    // Masks touching only the top layers, at different lowest layers, plus unmasked rows.
    let mut mask = HeadMask::ones(5, 4, 4);
    mask.set(0, 3, 1, 0.0).unwrap();
    mask.set(1, 2, 0, 0.0).unwrap();
    mask.set(1, 3, 3, 0.0).unwrap();
    mask.set(2, 1, 2, 0.25).unwrap();
    let reused = m
        .run(
            std::slice::from_ref(&ids),
            &jobs_of(&mask, None),
            &Readout::Full,
            &RunOptions::default(),
        )
        .unwrap();
    let full = m
        .run(
            std::slice::from_ref(&ids),
            &jobs_of(&mask, None),
            &Readout::Full,
            &no_reuse(),
        )
        .unwrap();
    assert_close(&reused, &full, 1e-5, "layer reuse");
    // Token masks: KV prefix up to the first removed token, with and without head masks.
    let keep: Vec<Vec<bool>> = (0..5)
        .map(|b| (0..12).map(|t| t != 4 + b && t != 9).collect())
        .collect();
    let tokens = TokenMask::from_rows(&keep).unwrap();
    let only_tokens: Vec<Job> = (0..5)
        .map(|b| Job {
            prompt: 0,
            heads: None,
            tokens: Some(keep[b].clone()),
        })
        .collect();
    let reused = m
        .run(
            std::slice::from_ref(&ids),
            &only_tokens,
            &Readout::Full,
            &RunOptions::default(),
        )
        .unwrap();
    let full = m
        .run(
            std::slice::from_ref(&ids),
            &only_tokens,
            &Readout::Full,
            &no_reuse(),
        )
        .unwrap();
    assert_close(&reused, &full, 1e-5, "kv prefix");
    let both = m
        .run(
            std::slice::from_ref(&ids),
            &jobs_of(&mask, Some(&tokens)),
            &Readout::Full,
            &RunOptions::default(),
        )
        .unwrap();
    let both_full = m
        .run(
            std::slice::from_ref(&ids),
            &jobs_of(&mask, Some(&tokens)),
            &Readout::Full,
            &no_reuse(),
        )
        .unwrap();
    assert_close(&both, &both_full, 1e-5, "heads + tokens");
}

#[test]
fn prompts_sharing_a_prefix_equal_separate_runs() {
    let (_d, m, _) = tiny("llama", 31);
    let shared = prompt(40, 32);
    // Five prompts: the shared 40 tokens then 1..9 own tokens, plus one unrelated prompt.
    let mut prompts: Vec<Vec<u32>> = (0..5)
        .map(|k| [shared.clone(), prompt(1 + 2 * k, 40 + k as u64)].concat())
        .collect();
    prompts.push(prompt(17, 50));
    let mask = random_mask(1, 4, 4, 33);
    for heads in [None, Some(mask.row(0).clone())] {
        let jobs = one_job_per_prompt(prompts.len(), |_| heads.clone());
        let grouped = m
            .run(&prompts, &jobs, &Readout::Full, &RunOptions::default())
            .unwrap();
        let separate: Vec<Vec<f32>> = prompts
            .iter()
            .zip(&jobs)
            .map(|(p, job)| {
                let one = Job {
                    prompt: 0,
                    ..job.clone()
                };
                m.run(std::slice::from_ref(p), &[one], &Readout::Full, &no_reuse())
                    .unwrap()
                    .remove(0)
            })
            .collect();
        assert_close(&grouped, &separate, 1e-5, "shared-prefix runs");
    }
}

/// Prefix groups of different prefix lengths and head scales, run together (their prefixes in
/// one padded pass, their members on per-row pasts, in small batches): every job's readout,
/// last logits and a continuation's log-probabilities, equals its run alone from the embedding.
fn prefix_groups_batch_together_on_per_row_pasts(m: &Model, layers: usize, heads: usize) {
    let contexts = [prompt(20, 91), prompt(9, 92), prompt(14, 93)];
    let own: [&[usize]; 3] = [&[1, 4, 7], &[2, 9], &[3, 3, 5]];
    let mask = random_mask(2, layers, heads, 94);
    let group_heads = [None, Some(mask.row(0).clone()), Some(mask.row(1).clone())];
    let mut prompts = Vec::new();
    let mut targets = Vec::new();
    let mut scales = Vec::new();
    for (g, context) in contexts.iter().enumerate() {
        for (i, &k) in own[g].iter().enumerate() {
            let tail = prompt(k, 100 + (10 * g + i) as u64);
            prompts.push([context.clone(), tail[..k - 1].to_vec()].concat());
            targets.push(tail);
            scales.push(group_heads[g].clone());
        }
    }
    let jobs = one_job_per_prompt(prompts.len(), |p| scales[p].clone());
    let small = RunOptions {
        max_batch_tokens: 48,
        ..RunOptions::default()
    };
    let continuations = Readout::Continuations(targets.clone());
    for readout in [Readout::Full, continuations] {
        for opts in [RunOptions::default(), small.clone()] {
            let together = m.run(&prompts, &jobs, &readout, &opts).unwrap();
            let alone: Vec<Vec<f32>> = (0..prompts.len())
                .map(|p| {
                    let one = Job {
                        prompt: 0,
                        ..jobs[p].clone()
                    };
                    let readout = match &readout {
                        Readout::Continuations(_) => {
                            Readout::Continuations(vec![targets[p].clone()])
                        }
                        other => other.clone(),
                    };
                    m.run(&[prompts[p].clone()], &[one], &readout, &no_reuse())
                        .unwrap()
                        .remove(0)
                })
                .collect();
            let what = format!(
                "{readout:?} at {} positions per batch",
                opts.max_batch_tokens
            );
            assert_close(&together, &alone, 1e-5, &what[..what.len().min(60)]);
        }
    }
}

#[test]
fn prefix_groups_of_different_lengths_equal_runs_alone() {
    let (_d, m, _) = tiny("llama", 90);
    prefix_groups_batch_together_on_per_row_pasts(&m, 4, 4);
    // GPT-2's learned positions: each member's rows embedded at its own group's offset.
    let tmp = tempfile::tempdir().unwrap();
    write_model(tmp.path(), &gpt2_config(), &gpt2_weights(95));
    prefix_groups_batch_together_on_per_row_pasts(&load(tmp.path()), 3, 3);
}

#[test]
fn token_mask_replaces_tokens_by_the_baseline_in_place() {
    let (_d, m, _) = tiny("llama", 14);
    assert_eq!(
        (m.info().baseline_token, m.info().baseline_source.as_str()),
        (0, "unk")
    );
    let ids = prompt(7, 15);
    let keep = vec![true, true, false, true, false, true, true];
    let masked = m
        .forward_ablated(
            &ids,
            None,
            Some(&TokenMask::from_rows(std::slice::from_ref(&keep)).unwrap()),
            &Readout::Full,
        )
        .unwrap();
    let replaced: Vec<u32> = ids
        .iter()
        .zip(&keep)
        .map(|(&id, &k)| if k { id } else { 0 })
        .collect();
    let direct = m
        .forward_ablated(&replaced, None, None, &Readout::Full)
        .unwrap();
    assert_close(&masked, &direct, 1e-5, "token replacement");
    let custom = RunOptions {
        baseline_token: Some(5),
        ..RunOptions::default()
    };
    let job = Job {
        prompt: 0,
        heads: None,
        tokens: Some(keep.clone()),
    };
    let with5 = m
        .run(std::slice::from_ref(&ids), &[job], &Readout::Full, &custom)
        .unwrap();
    let replaced5: Vec<u32> = ids
        .iter()
        .zip(&keep)
        .map(|(&id, &k)| if k { id } else { 5 })
        .collect();
    assert_close(
        &with5,
        &m.forward_ablated(&replaced5, None, None, &Readout::Full)
            .unwrap(),
        1e-5,
        "baseline 5",
    );
}

#[test]
fn prompts_of_different_lengths_batch_with_padding_and_budget() {
    let (_d, m, _) = tiny("qwen3", 16);
    let prompts = vec![prompt(5, 17), prompt(13, 18), prompt(9, 19)];
    let mask = random_mask(2, 4, 4, 20);
    let mut jobs = Vec::new();
    for p in 0..3 {
        for b in 0..2 {
            jobs.push(Job {
                prompt: p,
                heads: Some(mask.row(b).clone()),
                tokens: None,
            });
        }
    }
    let mixed = m.run(&prompts, &jobs, &Readout::Full, &no_reuse()).unwrap();
    let tight = RunOptions {
        max_batch_tokens: 1,
        ..no_reuse()
    };
    let one_by_one = m.run(&prompts, &jobs, &Readout::Full, &tight).unwrap();
    assert_close(&mixed, &one_by_one, 1e-5, "padding vs single rows");
    for (j, job) in jobs.iter().enumerate() {
        let single = HeadMask::from_values(1, 4, 4, job.heads.clone().unwrap().to_vec()).unwrap();
        let alone = m
            .forward_ablated(&prompts[job.prompt], Some(&single), None, &Readout::Full)
            .unwrap();
        assert_close(&mixed[j..j + 1], &alone, 1e-5, &format!("job {j}"));
    }
}

#[test]
fn token_readout_equals_the_full_columns() {
    let (_d, m, _) = tiny("llama", 21);
    let ids = prompt(6, 22);
    let mask = random_mask(3, 4, 4, 23);
    let full = m
        .forward_ablated(&ids, Some(&mask), None, &Readout::Full)
        .unwrap();
    let pick = vec![7u32, 3, 39];
    let some = m
        .forward_ablated(&ids, Some(&mask), None, &Readout::Tokens(pick.clone()))
        .unwrap();
    let expect: Vec<Vec<f32>> = full
        .iter()
        .map(|r| pick.iter().map(|&i| r[i as usize]).collect())
        .collect();
    assert_close(&some, &expect, 1e-6, "token readout");

    let with_lse = m
        .forward_ablated(
            &ids,
            Some(&mask),
            None,
            &Readout::TokensAndLogsumexp(pick.clone()),
        )
        .unwrap();
    let expect: Vec<Vec<f32>> = full
        .iter()
        .map(|r| {
            let lse = r.iter().map(|&v| f64::from(v).exp()).sum::<f64>().ln() as f32;
            let mut row: Vec<f32> = pick.iter().map(|&i| r[i as usize]).collect();
            row.push(lse);
            row
        })
        .collect();
    assert_close(&with_lse, &expect, 1e-5, "token + logsumexp readout");
}

#[test]
fn mean_ablation_blends_towards_the_reference_mean() {
    let (_d, m, _) = tiny("llama", 24);
    let refs = vec![prompt(6, 25), prompt(9, 26)];
    let means = m.head_means(&refs).unwrap();
    let ids = prompt(8, 27);
    let opts = RunOptions {
        means: Some(means),
        ..RunOptions::default()
    };
    let keep = Job {
        prompt: 0,
        heads: Some(HeadScales::ones(4, 4)),
        tokens: None,
    };
    let mut zero_row = vec![1.0; 16];
    zero_row[2 * 4 + 1] = 0.0;
    let ablate = Job {
        prompt: 0,
        heads: Some(HeadScales::new(4, 4, zero_row).unwrap()),
        tokens: None,
    };
    let mean = m
        .run(
            std::slice::from_ref(&ids),
            &[keep, ablate.clone()],
            &Readout::Full,
            &opts,
        )
        .unwrap();
    let plain = m.forward_ablated(&ids, None, None, &Readout::Full).unwrap();
    assert_close(&mean[..1], &plain, 1e-5, "mean ablation with scale 1");
    let zero = m
        .run(
            std::slice::from_ref(&ids),
            &[ablate],
            &Readout::Full,
            &RunOptions::default(),
        )
        .unwrap();
    assert!(
        max_diff(&mean[1], &zero[0]) > 1e-4,
        "mean ablation must differ from zero ablation"
    );
    assert!(
        max_diff(&mean[1], &plain[0]) > 1e-4,
        "mean ablation must change the output"
    );
}

#[test]
fn gpt2_invariants() {
    let tmp = tempfile::tempdir().unwrap();
    let w = gpt2_weights(30);
    write_model(tmp.path(), &gpt2_config(), &w);
    let m = load(tmp.path());
    assert_eq!(
        (m.info().n_layers, m.info().n_heads, m.info().head_dim),
        (3, 3, 8)
    );
    let ids = prompt(10, 31);
    let mask = random_mask(4, 3, 3, 32);
    let batch = m
        .forward_ablated(&ids, Some(&mask), None, &Readout::Full)
        .unwrap();
    let full = m
        .run(
            std::slice::from_ref(&ids),
            &jobs_of(&mask, None),
            &Readout::Full,
            &no_reuse(),
        )
        .unwrap();
    assert_close(&batch, &full, 1e-5, "gpt2 reuse");
    for b in 0..4 {
        let one = HeadMask::from_values(1, 3, 3, mask.row(b).to_vec()).unwrap();
        let single = m
            .forward_ablated(&ids, Some(&one), None, &Readout::Full)
            .unwrap();
        assert_close(&batch[b..b + 1], &single, 1e-5, "gpt2 row");
    }
    // Zeroing head 1 of block 1 equals zeroing rows 8..16 of its c_proj (Conv1D, [in, out]).
    let mut cut = w.clone();
    let (_, c) = cut.get_mut("h.1.attn.c_proj.weight").unwrap();
    for r in 8..16 {
        for col in 0..24 {
            c[r * 24 + col] = 0.0;
        }
    }
    let tmp2 = tempfile::tempdir().unwrap();
    write_model(tmp2.path(), &gpt2_config(), &cut);
    let edited = load(tmp2.path());
    let masked = m
        .forward_ablated(
            &ids,
            Some(&HeadMask::zeroing(3, 3, &[vec![(1, 1)]]).unwrap()),
            None,
            &Readout::Full,
        )
        .unwrap();
    assert_close(
        &masked,
        &edited
            .forward_ablated(&ids, None, None, &Readout::Full)
            .unwrap(),
        1e-5,
        "c_proj rows",
    );
    let keep: Vec<Vec<bool>> = vec![(0..10).map(|t| t != 6).collect()];
    let tok = m
        .forward_ablated(
            &ids,
            None,
            Some(&TokenMask::from_rows(&keep).unwrap()),
            &Readout::Full,
        )
        .unwrap();
    let tok_full = m
        .run(
            std::slice::from_ref(&ids),
            &[Job {
                prompt: 0,
                heads: None,
                tokens: Some(keep[0].clone()),
            }],
            &Readout::Full,
            &no_reuse(),
        )
        .unwrap();
    assert_close(&tok, &tok_full, 1e-5, "gpt2 kv prefix");
    // Prompts of 10, 3 and 6 tokens in one padded batch (padding skipped by the position-wise
    // parts) equal each prompt run alone.
    let prompts = vec![ids.clone(), prompt(3, 33), prompt(6, 34)];
    let jobs = one_job_per_prompt(3, |p| Some(mask.row(p).clone()));
    let mixed = m.run(&prompts, &jobs, &Readout::Full, &no_reuse()).unwrap();
    for (p, job) in jobs.iter().enumerate() {
        let one = HeadMask::from_values(1, 3, 3, job.heads.clone().unwrap().to_vec()).unwrap();
        let alone = m
            .forward_ablated(&prompts[p], Some(&one), None, &Readout::Full)
            .unwrap();
        assert_close(&mixed[p..p + 1], &alone, 1e-5, "gpt2 padded batch");
    }
}

#[test]
fn load_errors_name_the_file_field_or_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Model::load(tmp.path(), &Device::Cpu, DType::F32).unwrap_err();
    assert!(
        matches!(err, ModelError::MissingFile { .. }) && err.to_string().contains("config.json"),
        "{err}"
    );

    let cfg = llama_config("llama");
    let w = llama_weights(&cfg, 40);
    let mut bad = cfg.clone();
    bad["model_type"] = json!("mamba");
    write_model(tmp.path(), &bad, &w);
    let err = Model::load(tmp.path(), &Device::Cpu, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model_type") && err.contains("mamba") && err.contains("config.json"),
        "{err}"
    );

    let mut wrong = w.clone();
    wrong.insert(
        "model.layers.1.mlp.up_proj.weight".into(),
        (vec![41, 24], vec![0.0; 41 * 24]),
    );
    write_model(tmp.path(), &cfg, &wrong);
    let err = Model::load(tmp.path(), &Device::Cpu, DType::F32).unwrap_err();
    assert!(
        matches!(&err, ModelError::WeightShape { tensor, .. } if tensor == "model.layers.1.mlp.up_proj.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("[41, 24]"), "{err}");

    let mut missing = w.clone();
    missing.remove("model.norm.weight");
    write_model(tmp.path(), &cfg, &missing);
    let err = Model::load(tmp.path(), &Device::Cpu, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.norm.weight"), "{err}");

    write_model(tmp.path(), &cfg, &w);
    std::fs::write(
        tmp.path().join("tokenizer.json"),
        tokenizer_json(VOCAB + 5).to_string(),
    )
    .unwrap();
    let err = Model::load(tmp.path(), &Device::Cpu, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("vocab_size"),
        "{err}"
    );

    std::fs::remove_file(tmp.path().join("model.safetensors")).unwrap();
    let err = Model::load(tmp.path(), &Device::Cpu, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let (_d, m, _) = tiny("llama", 50);
    let ids = prompt(5, 51);
    assert!(m.forward_ablated(&[], None, None, &Readout::Full).is_err());
    assert!(m
        .forward_ablated(&[VOCAB as u32], None, None, &Readout::Full)
        .is_err());
    assert!(m
        .forward_ablated(&prompt(65, 1), None, None, &Readout::Full)
        .is_err());
    assert!(m
        .forward_ablated(&ids, Some(&HeadMask::ones(1, 3, 4)), None, &Readout::Full)
        .is_err());
    let short = TokenMask::from_rows(&[vec![true; 4]]).unwrap();
    assert!(m
        .forward_ablated(&ids, None, Some(&short), &Readout::Full)
        .is_err());
    assert!(m
        .forward_ablated(&ids, None, None, &Readout::Tokens(vec![VOCAB as u32]))
        .is_err());
    let job = Job {
        prompt: 3,
        heads: None,
        tokens: None,
    };
    assert!(m
        .run(&[ids], &[job], &Readout::Full, &RunOptions::default())
        .is_err());
}

/// Log-softmax (f64) of `row` at `target`.
fn log_prob(row: &[f32], target: u32) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
    (row[target as usize] as f64 - max - sum.ln()) as f32
}

/// Continuations whose prompts share tokens past their first read position (answers that start
/// with the same words, as PIQA's often do) or are the same prompt (one-token answers, as BoolQ's):
/// the shared positions are read out once in the prefix pass, and every job still equals its run
/// alone; so do last-position readouts of identical prompts, which need no suffix at all.
#[test]
fn prefix_groups_reading_inside_the_prefix_equal_runs_alone() {
    let (_d, m, _) = tiny("llama", 91);
    let context = prompt(20, 92);
    let shared_words = prompt(6, 93);
    let answer = |len: usize, seed: u64| [shared_words.clone(), prompt(len, seed)].concat();
    // (context, continuation): two answers diverging after six shared tokens, one equal to the
    // shared words alone (all read inside the prefix), and two one-token answers of one prompt.
    // A second question of a shorter context (its prefix pass padded beside the first's) whose
    // two answers share four tokens.
    let other = prompt(12, 97);
    let other_words = prompt(4, 98);
    let continuations: Vec<Vec<u32>> = vec![
        answer(3, 94),
        answer(5, 95),
        shared_words.clone(),
        vec![7],
        vec![11],
        [other_words.clone(), prompt(2, 99)].concat(),
        [other_words.clone(), prompt(3, 100)].concat(),
    ];
    let prompts: Vec<Vec<u32>> = continuations
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let context = if i < 5 { &context } else { &other };
            [context.clone(), c[..c.len() - 1].to_vec()].concat()
        })
        .collect();
    let readout = Readout::Continuations(continuations.clone());
    let mask = random_mask(1, 4, 4, 96);
    for heads in [None, Some(mask.row(0).clone())] {
        let jobs = one_job_per_prompt(prompts.len(), |_| heads.clone());
        let alone = |readout: &Readout, prompts: &[Vec<u32>], jobs: &[Job]| -> Vec<Vec<f32>> {
            jobs.iter()
                .map(|job| {
                    let one = Job {
                        prompt: 0,
                        ..job.clone()
                    };
                    let mine = match readout {
                        Readout::Continuations(all) => {
                            Readout::Continuations(vec![all[job.prompt].clone()])
                        }
                        other => other.clone(),
                    };
                    let p = std::slice::from_ref(&prompts[job.prompt]);
                    m.run(p, &[one], &mine, &no_reuse()).unwrap().remove(0)
                })
                .collect()
        };
        for max_batch_tokens in [8192, 24] {
            let opts = RunOptions {
                max_batch_tokens,
                ..RunOptions::default()
            };
            let grouped = m.run(&prompts, &jobs, &readout, &opts).unwrap();
            let lens: Vec<usize> = grouped.iter().map(Vec::len).collect();
            assert_eq!(lens, [9, 11, 6, 1, 1, 6, 7], "one log-prob per target");
            assert_close(
                &grouped,
                &alone(&readout, &prompts, &jobs),
                1e-4,
                "continuations",
            );
            // Last-position logits of the two identical prompts and of the others.
            let full = m.run(&prompts, &jobs, &Readout::Full, &opts).unwrap();
            assert_eq!(full[3], full[4], "identical prompts, identical logits");
            assert_close(
                &full,
                &alone(&Readout::Full, &prompts, &jobs),
                1e-4,
                "logits",
            );
            // Pairs of identical prompts only (one mask's letters, BoolQ's answers): each group
            // ends with its prefix and the last layer computes the read position alone.
            let twins = [3, 3, 5, 5].map(|p| prompts[p].clone());
            for readout in [
                Readout::Full,
                Readout::TokensAndLogsumexp(vec![3, 9]),
                Readout::Continuations(vec![vec![7], vec![11], vec![5], vec![2]]),
            ] {
                let grouped = m.run(&twins, &jobs[..4], &readout, &opts).unwrap();
                let want = alone(&readout, &twins, &jobs[..4]);
                assert_close(&grouped, &want, 1e-4, &format!("{readout:?} of twins"));
            }
        }
    }
}

#[test]
fn continuation_readout_equals_each_prefix_run_alone() {
    let (_d, m, _) = tiny("llama", 61);
    // Three (context, continuation) prompts sharing a 40-token context (one prefix group), one
    // alone; the prompt holds the context and every target
    // but the last.
    let context = prompt(40, 62);
    let continuations: Vec<Vec<u32>> = [1usize, 3, 5, 4]
        .iter()
        .enumerate()
        .map(|(i, &k)| prompt(k, 70 + i as u64))
        .collect();
    let mut prompts: Vec<Vec<u32>> = continuations[..3]
        .iter()
        .map(|c| [context.clone(), c[..c.len() - 1].to_vec()].concat())
        .collect();
    prompts.push([prompt(6, 80), continuations[3][..3].to_vec()].concat());
    let readout = Readout::Continuations(continuations.clone());
    let mask = random_mask(2, 4, 4, 63);
    let keep: Vec<bool> = (0..prompts[0].len()).map(|t| t != 3).collect();
    // Unmasked jobs (prefix group + a fresh row); then two head masks per prompt (clean-run reuse);
    // then a token mask on prompt 0 (key/value prefix up to the removed token).
    let plain = one_job_per_prompt(prompts.len(), |_| None);
    let masked: Vec<Job> = (0..prompts.len())
        .flat_map(|p| {
            let mask = &mask;
            (0..2).map(move |b| Job {
                prompt: p,
                heads: Some(mask.row(b).clone()),
                tokens: None,
            })
        })
        .collect();
    let tokens = vec![Job {
        prompt: 0,
        heads: None,
        tokens: Some(keep.clone()),
    }];
    for (what, jobs) in [("plain", plain), ("masked", masked), ("tokens", tokens)] {
        for opts in [RunOptions::default(), no_reuse()] {
            let rows = m.run(&prompts, &jobs, &readout, &opts).unwrap();
            for (job, row) in jobs.iter().zip(&rows) {
                let targets = &continuations[job.prompt];
                assert_eq!(row.len(), targets.len(), "{what}: one log-prob per target");
                let mut ids = prompts[job.prompt].clone();
                if let Some(keep) = &job.tokens {
                    for (id, &k) in ids.iter_mut().zip(keep) {
                        if !k {
                            *id = m.info().baseline_token;
                        }
                    }
                }
                let t = ids.len();
                for (j, &target) in targets.iter().enumerate() {
                    let upto = t - targets.len() + j + 1;
                    let alone = Job {
                        prompt: 0,
                        heads: job.heads.clone(),
                        tokens: None,
                    };
                    let full = m
                        .run(
                            &[ids[..upto].to_vec()],
                            &[alone],
                            &Readout::Full,
                            &no_reuse(),
                        )
                        .unwrap();
                    let want = log_prob(&full[0], target);
                    assert!(
                        (row[j] - want).abs() < 1e-4,
                        "{what}: prompt {} target {j}: {} vs {want}",
                        job.prompt,
                        row[j]
                    );
                }
            }
        }
    }
    // Bad continuations are errors naming the readout.
    let too_many = Readout::Continuations(vec![vec![1; 60]; prompts.len()]);
    let plain_job = [Job {
        prompt: 0,
        heads: None,
        tokens: None,
    }];
    let err = m
        .run(&prompts, &plain_job, &too_many, &RunOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("readout"), "{err}");
    let err = m
        .run(
            &prompts,
            &plain_job,
            &Readout::Continuations(vec![vec![1]]),
            &RunOptions::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("continuations for"), "{err}");
}
