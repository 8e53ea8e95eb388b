//! The real default model (SmolLM2-135M-Instruct, dequantized Q4_1, Hugging Face folder) against
//! reference logits from Hugging Face transformers (f32, eager). Runs only when the model folder
//! (`$SPEX_HOME/models/smollm2-135m-instruct-hf`) and the reference file
//! (`tests/data/smollm2_reference_logits.json`, or `$SPEX_REFERENCE_LOGITS`) exist; prints a skip line otherwise.

use std::path::PathBuf;

use candle_core::{DType, Device};
use serde_json::Value;
use spex::model::{HeadMask, Job, Model, Readout, RunOptions};

fn model_dir() -> PathBuf {
    let home = std::env::var_os("SPEX_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/spex")
        });
    home.join("models/smollm2-135m-instruct-hf")
}

fn reference_file() -> PathBuf {
    std::env::var_os("SPEX_REFERENCE_LOGITS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/smollm2_reference_logits.json")
        })
}

fn setup() -> Option<(Model, Value)> {
    let dir = model_dir();
    let reference = reference_file();
    if !dir.join("model.safetensors").is_file() || !reference.is_file() {
        println!(
            "skipped: needs {} and {}",
            dir.display(),
            reference.display()
        );
        return None;
    }
    let model = Model::load(&dir, &Device::Cpu, DType::F32).expect("the real model loads");
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&reference).unwrap()).unwrap();
    Some((model, value))
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn check_close(got: f64, want: f64, what: &str) {
    let tol = 1e-4 * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, reference {want} (tolerance {tol:.2e})"
    );
}

#[test]
fn logits_match_the_transformers_reference() {
    let Some((model, reference)) = setup() else {
        return;
    };
    let info = model.info().clone();
    for (c, case) in reference["cases"].as_array().unwrap().iter().enumerate() {
        let text = case["text"].as_str().unwrap();
        let ids = ids_of(&case["input_ids"]);
        assert_eq!(
            model.encode(text).unwrap(),
            ids,
            "case {c}: token ids differ from the HF tokenizer"
        );
        let pairs: Vec<(usize, usize)> = case["ablated_heads"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        (
                            p[0].as_u64().unwrap() as usize,
                            p[1].as_u64().unwrap() as usize,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mask =
            HeadMask::zeroing(info.n_layers, info.n_heads, std::slice::from_ref(&pairs)).unwrap();
        let logits = model
            .forward_ablated(&ids, Some(&mask), None, &Readout::Full)
            .unwrap()
            .remove(0);
        let mut worst = 0f64;
        for key in ["top", "probe"] {
            let want = floats(&case[format!("{key}_logits")]);
            for (id, w) in ids_of(&case[format!("{key}_ids")]).into_iter().zip(want) {
                let got = logits[id as usize] as f64;
                worst = worst.max((got - w).abs() / w.abs().max(1.0));
                check_close(
                    got,
                    w,
                    &format!("case {c} ({} heads ablated) {key} id {id}", pairs.len()),
                );
            }
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = max
            + logits
                .iter()
                .map(|&v| (v as f64 - max).exp())
                .sum::<f64>()
                .ln();
        check_close(
            lse,
            case["logsumexp"].as_f64().unwrap(),
            &format!("case {c} logsumexp"),
        );
        let top = ids_of(&case["top_ids"])[0];
        let argmax = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap() as u32;
        assert_eq!(argmax, top, "case {c}: top token");
        println!(
            "case {c}: {} tokens, {} heads ablated, worst relative error {worst:.2e}",
            ids.len(),
            pairs.len()
        );
    }
}

#[test]
fn the_capital_of_france_is_paris() {
    let Some((model, _)) = setup() else { return };
    let ids = model.encode("The capital of France is").unwrap();
    let logits = model
        .forward_ablated(&ids, None, None, &Readout::Full)
        .unwrap()
        .remove(0);
    let argmax = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
        .unwrap() as u32;
    assert_eq!(
        model.tokenizer().decode(&[argmax], false).unwrap(),
        " Paris"
    );
}

#[test]
fn real_model_batching_and_reuse_invariants() {
    let Some((model, reference)) = setup() else {
        return;
    };
    let info = model.info().clone();
    let ids = ids_of(&reference["cases"][2]["input_ids"]);
    // Rows: all ones, the top third only, a mid layer, and a GQA group split (head 3 zeroed, 4 and 5 kept).
    let top = info.n_layers * 2 / 3;
    let rows = vec![
        vec![],
        vec![(top, 0), (info.n_layers - 1, 5)],
        vec![(info.n_layers / 2, 1), (top + 1, 2)],
        vec![(top, 3)],
    ];
    let mask = HeadMask::zeroing(info.n_layers, info.n_heads, &rows).unwrap();
    let jobs: Vec<Job> = (0..rows.len())
        .map(|b| Job {
            prompt: 0,
            heads: Some(mask.row(b).clone()),
            tokens: None,
        })
        .collect();
    let readout = Readout::Tokens(vec![330, 389, 426, 420]);
    let reused = model
        .run(
            std::slice::from_ref(&ids),
            &jobs,
            &readout,
            &RunOptions::default(),
        )
        .unwrap();
    let full = model
        .run(
            std::slice::from_ref(&ids),
            &jobs,
            &readout,
            &RunOptions {
                reuse: false,
                ..RunOptions::default()
            },
        )
        .unwrap();
    let plain = model.forward_ablated(&ids, None, None, &readout).unwrap();
    for (b, (r, f)) in reused.iter().zip(&full).enumerate() {
        let single =
            HeadMask::from_values(1, info.n_layers, info.n_heads, mask.row(b).to_vec()).unwrap();
        let alone = model
            .forward_ablated(&ids, Some(&single), None, &readout)
            .unwrap()
            .remove(0);
        for k in 0..r.len() {
            check_close(r[k] as f64, f[k] as f64, &format!("row {b} reuse vs full"));
            check_close(
                r[k] as f64,
                alone[k] as f64,
                &format!("row {b} batch vs single"),
            );
        }
    }
    for k in 0..plain[0].len() {
        check_close(
            reused[0][k] as f64,
            plain[0][k] as f64,
            "all-ones row vs unmasked",
        );
    }
}
