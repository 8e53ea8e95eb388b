//! The architectures beyond Llama and GPT-2 against transformers, on the tiny random checkpoints
//! of tests/data/tiny_models (made by tests/reference/make_tiny_architectures.py): the prompts'
//! token ids, the last position's logits unmasked and under two head masks (within 1e-4
//! relative, f32), alone and in one padded batch; and the runtime's invariants on each of them
//! (all-ones mask = unmasked, batch row = batch of 1, layer and KV-prefix reuse = the full pass,
//! read-out shortcut = the full logits).

use std::path::PathBuf;

use candle_core::{DType, Device};
use serde_json::Value;
use spex::model::{HeadMask, HeadScales, Job, Model, Readout, RunOptions};

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny_models")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(data().join("reference_logits.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every architecture the reference file holds, loaded in f32 on the CPU.
fn models(reference: &Value) -> Vec<(String, Model)> {
    let names: Vec<String> = reference["models"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(!names.is_empty());
    names
        .into_iter()
        .map(|name| {
            let model = Model::load(&data().join(&name), &Device::Cpu, DType::F32)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, model)
        })
        .collect()
}

/// The head scales of a reference mask `{"layer": [heads zeroed]}`.
fn scales(model: &Model, mask: &Value) -> HeadScales {
    let info = model.info();
    let mut s = HeadScales::ones(info.n_layers, info.n_heads);
    for (layer, heads) in mask.as_object().unwrap() {
        for h in heads.as_array().unwrap() {
            let (l, h) = (layer.parse().unwrap(), h.as_u64().unwrap() as usize);
            s.set(l, h, 0.0).unwrap();
        }
    }
    s
}

fn assert_close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: width");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * 1f32.max(w.abs()),
            "{what}: logit {k}: {g} vs {w}"
        );
    }
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn logits_match_transformers_unmasked_and_under_head_masks() {
    let reference = reference();
    let prompts: Vec<&str> = reference["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let masks = reference["masks"].as_array().unwrap();
    for (name, model) in models(&reference) {
        let cases = reference["models"][&name].as_array().unwrap();
        let mut ids = Vec::new();
        let mut jobs = Vec::new();
        let mut wanted = Vec::new();
        for (p, (text, case)) in prompts.iter().zip(cases).enumerate() {
            let encoded = model.encode(text).unwrap();
            let stored: Vec<u32> = case["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(encoded, stored, "{name}: ids of prompt {p}");
            for (c, logits) in case["logits"].as_array().unwrap().iter().enumerate() {
                let heads = (c > 0).then(|| scales(&model, &masks[c - 1]));
                jobs.push(Job {
                    prompt: p,
                    heads,
                    tokens: None,
                });
                wanted.push(floats(logits));
            }
            ids.push(encoded);
        }
        // One at a time, then every prompt and mask in one padded batch.
        for (job, want) in jobs.iter().zip(&wanted) {
            let got = model
                .run(
                    std::slice::from_ref(&ids[job.prompt]),
                    &[Job {
                        prompt: 0,
                        ..job.clone()
                    }],
                    &Readout::Full,
                    &RunOptions::default(),
                )
                .unwrap();
            assert_close(&got[0], want, 1e-4, &format!("{name} {job:?}"));
        }
        let batch = model
            .run(&ids, &jobs, &Readout::Full, &RunOptions::default())
            .unwrap();
        for (b, want) in batch.iter().zip(&wanted) {
            assert_close(b, want, 1e-4, &format!("{name} batched"));
        }
        // The masks change the logits (the comparison would hold vacuously otherwise).
        let gap = wanted[0]
            .iter()
            .zip(&wanted[1])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(gap > 1e-2, "{name}: mask moved the logits by only {gap}");
    }
}

#[test]
fn runtime_invariants_hold_on_every_architecture() {
    let reference = reference();
    for (name, model) in models(&reference) {
        let info = model.info().clone();
        let (l, h) = (info.n_layers, info.n_heads);
        let ids = model
            .encode(reference["prompts"][2].as_str().unwrap())
            .unwrap();
        let plain = model
            .forward_ablated(&ids, None, None, &Readout::Full)
            .unwrap();
        let ones = model
            .forward_ablated(&ids, Some(&HeadMask::ones(2, l, h)), None, &Readout::Full)
            .unwrap();
        for row in &ones {
            assert_close(row, &plain[0], 1e-5, &format!("{name}: all-ones mask"));
        }
        // Masks touching the top layers only (layer reuse), a scaled head, and token masks
        // (the KV prefix up to the first removed token is reused).
        let mut jobs = Vec::new();
        for b in 0..6 {
            let mut s = HeadScales::ones(l, h);
            s.set(l - 1 - b % l.min(2), b % h, 0.0).unwrap();
            if b == 3 {
                s.set(0, 1, 0.5).unwrap();
            }
            let tokens = (b >= 4).then(|| (0..ids.len()).map(|t| t != 3 + b).collect());
            jobs.push(Job {
                prompt: 0,
                heads: Some(s),
                tokens,
            });
        }
        let prompts = std::slice::from_ref(&ids);
        let reused = model
            .run(prompts, &jobs, &Readout::Full, &RunOptions::default())
            .unwrap();
        let no_reuse = RunOptions {
            reuse: false,
            ..RunOptions::default()
        };
        let full = model
            .run(prompts, &jobs, &Readout::Full, &no_reuse)
            .unwrap();
        for (b, job) in jobs.iter().enumerate() {
            assert_close(
                &reused[b],
                &full[b],
                1e-5,
                &format!("{name}: reuse row {b}"),
            );
            let alone = model
                .run(
                    prompts,
                    std::slice::from_ref(job),
                    &Readout::Full,
                    &no_reuse,
                )
                .unwrap();
            assert_close(&alone[0], &full[b], 1e-5, &format!("{name}: row {b} alone"));
        }
        // The read-out shortcut (last block at the read-out position only) gives the full
        // logits' columns.
        let tokens: Vec<u32> = vec![3, 17, 40];
        let some = model
            .run(
                prompts,
                &jobs,
                &Readout::Tokens(tokens.clone()),
                &RunOptions::default(),
            )
            .unwrap();
        for (b, row) in some.iter().enumerate() {
            let want: Vec<f32> = tokens.iter().map(|&t| full[b][t as usize]).collect();
            assert_close(row, &want, 1e-5, &format!("{name}: token read-out row {b}"));
        }
    }
}
