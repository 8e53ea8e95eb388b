//! `spex logits` and `spex eval` through the binary: outputs, zero/mean ablation and exit codes.
//! Tests that need the default model skip when `bash models/fetch.sh` has not fetched it.

use std::path::PathBuf;

use serde_json::Value;
use spex::model::ModelSource;
use spex::task::default_data_dir;

mod common;
use common::{spex, spex_env, stderr};

fn have_model() -> bool {
    let ok = ModelSource::resolve(None).is_ok();
    if !ok {
        println!("skipped: default model not fetched (bash models/fetch.sh)");
    }
    ok
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spex-cli-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// `spex logits --json` output, asserting success.
fn logits_json(extra: &[&str]) -> Value {
    let mut args = vec!["logits", "--prompt", "The capital of France is", "--json"];
    args.extend_from_slice(extra);
    let out = spex(&args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn top_logit(v: &Value) -> f64 {
    v["top"][0]["logit"].as_f64().unwrap()
}

#[test]
fn logits_names_paris_and_ablation_modes_differ() {
    if !have_model() {
        return;
    }
    let plain = logits_json(&[]);
    assert_eq!(plain["top"][0]["token"], " Paris");
    assert_eq!(plain["ablation"], "zero");

    let zero = logits_json(&["--head-mask", "0:*,1:*"]);
    let mean = logits_json(&["--head-mask", "0:*,1:*", "--ablation", "mean"]);
    assert_eq!(zero["masked_heads"].as_array().unwrap().len(), 18);
    assert_eq!(mean["ablation"], "mean");
    assert_ne!(top_logit(&zero), top_logit(&plain));
    assert_ne!(top_logit(&mean), top_logit(&zero));

    // The default reference set is the prompt itself: naming it in a file gives the same bytes.
    let file = tmp("means.txt");
    std::fs::write(&file, "The capital of France is\n\n").unwrap();
    let named = logits_json(&[
        "--head-mask",
        "0:*,1:*",
        "--ablation",
        "mean",
        "--mean-prompts",
        file.to_str().unwrap(),
    ]);
    assert_eq!(named, mean);
}

/// Without GPU features `--device auto` (the default) is the CPU, and the command says so.
#[cfg(not(any(feature = "cuda", feature = "metal")))]
#[test]
fn logits_reports_the_device_and_dtype_it_loaded() {
    if !have_model() {
        return;
    }
    let out = spex(&["logits", "--prompt", "Hi", "--top", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("model: ") && err.contains(" on cpu, f32"),
        "{err}"
    );
}

/// `spex logits --json` with `envs` set: the logits of the top 10 tokens, by token.
fn top_logits(extra: &[&str], envs: &[(&str, &str)]) -> Vec<(String, f64)> {
    let mut args = vec!["logits", "--prompt", "The capital of France is", "--json"];
    args.extend_from_slice(extra);
    let out = spex_env(&args, envs);
    assert!(out.status.success(), "{args:?} {envs:?}: {}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["token"].as_str().unwrap().to_string(),
                t["logit"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The largest difference between two top-10 lists' logits over the tokens both hold (near
/// ties may swap places), asserting the same top token and at least 8 shared.
fn largest_gap(a: &[(String, f64)], b: &[(String, f64)]) -> f64 {
    assert_eq!(a[0].0, b[0].0, "{a:?}\n{b:?}");
    let shared: Vec<f64> = a
        .iter()
        .filter_map(|(tok, x)| b.iter().find(|t| &t.0 == tok).map(|t| (x - t.1).abs()))
        .collect();
    assert!(shared.len() >= a.len().min(8), "{a:?}\n{b:?}");
    shared.into_iter().fold(0.0, f64::max)
}

#[test]
fn cpu_kernels_forced_narrower_and_bf16_products() {
    const VAR: &str = "SPEX_CPU_KERNELS";
    let out = spex_env(&["logits", "--prompt", "x"], &[(VAR, "sse9")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(VAR), "{}", stderr(&out));
    if !have_model() {
        return;
    }
    // The AVX-512 f32 kernel sums in the AVX2 kernel's order: the same bits; candle's matmul
    // (portable) sums in its own order.
    let auto = top_logits(&[], &[]);
    assert_eq!(auto, top_logits(&[], &[(VAR, "avx2")]));
    assert!(largest_gap(&auto, &top_logits(&[], &[(VAR, "portable")])) < 1e-3);
    // bf16 products: AMX tiles, AVX512-BF16, the f32 kernels fed bf16 values (the same bits on
    // both) and candle's matmul fed them. Each path rounds slightly different f32 activations to bf16, so
    // the paths differ from one another by about as much as each differs from f32.
    let out = spex(&["logits", "--prompt", "Hi", "--top", "1", "--dtype", "bf16"]);
    assert!(stderr(&out).contains(" on cpu, bf16"), "{}", stderr(&out));
    let bf16 = |limit: &str| top_logits(&["--dtype", "bf16"], &[(VAR, limit)]);
    assert_eq!(bf16("avx512"), bf16("avx2"));
    for limit in ["auto", "avx512bf16", "avx2", "portable"] {
        let gap = largest_gap(&auto, &bf16(limit));
        assert!(gap > 1e-3 && gap < 0.3, "{limit}: bf16 against f32: {gap}");
    }
}

#[test]
fn logits_bad_arguments_exit_2_with_the_argument_named() {
    let missing = tmp("no-such-model-dir");
    let out = spex(&[
        "logits",
        "--model",
        missing.to_str().unwrap(),
        "--prompt",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no-such-model-dir"),
        "{}",
        stderr(&out)
    );
    // Checked before any model is read: f16 on the CPU, an unknown dtype.
    for (dtype, needle) in [("f16", "needs a GPU"), ("int4", "int4")] {
        let out = spex(&["logits", "--dtype", dtype, "--prompt", "x"]);
        assert_eq!(out.status.code(), Some(2), "{dtype}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("--dtype") && err.contains(needle),
            "{dtype}: {err}"
        );
    }

    if !have_model() {
        return;
    }
    // `--dtype f32` is the CPU's default: the same logits.
    let default = logits_json(&[]);
    assert_eq!(logits_json(&["--dtype", "f32"])["top"], default["top"]);
    let cases: [(&[&str], &str); 4] = [
        (&["--head-mask", "40:1"], "layer"),
        (&["--head-mask", "zero:1"], "zero"),
        (
            &["--mean-prompts", "/nonexistent/prompts.txt"],
            "--ablation mean",
        ),
        (
            &["--ablation", "mean", "--mean-prompts", "/nonexistent/p.txt"],
            "/nonexistent/p.txt",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["logits", "--prompt", "x"];
        args.extend_from_slice(extra);
        let out = spex(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn eval_writes_json_with_predictions_and_accuracy() {
    if !have_model() || !default_data_dir().join(".ready").exists() {
        println!("skipped: model or data not fetched");
        return;
    }
    let json = tmp("eval.json");
    let out = spex(&[
        "eval",
        "--task",
        "mmlu",
        "--subjects",
        "high_school_geography",
        "--limit",
        "4",
        "--head-mask",
        "0:*",
        "--ablation",
        "mean",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("high_school_geography"), "{table}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["ablation"], "mean");
    assert_eq!(v["shots"], 0);
    let questions = v["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 4);
    let correct = questions.iter().filter(|q| q["pred"] == q["gold"]).count();
    assert_eq!(v["accuracy"].as_f64().unwrap(), correct as f64 / 4.0);
}

#[test]
fn tokens_on_the_real_model_are_exact_and_france_drives_paris() {
    if !have_model() {
        return;
    }
    let dir = tmp("tokens-paris");
    let out = spex(&[
        "tokens",
        "--prompt",
        "The capital of France is",
        "--target",
        " Paris",
        "--budget",
        "100",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    // Five words, 2^5 = 32 masks within the budget: the whole cube, decoded exactly.
    let interactions = read("interactions.json");
    assert_eq!(interactions["queries"], 32);
    assert!(interactions["r2_queried"].as_f64().unwrap() > 1.0 - 1e-9);
    // Every mask was evaluated: nothing is unseen, so no held-out check ran.
    assert_eq!(interactions["held_out"], 0);
    assert!(interactions["r2_held_out"].is_null() && !dir.join("held_out.log").exists());
    let tokens = read("tokens.json");
    let players = tokens["players"].as_array().unwrap();
    let texts: Vec<&str> = players
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["The", " capital", " of", " France", " is"]);
    let france = players[3]["value"].as_f64().unwrap();
    assert!(
        france > 0.0,
        "keeping \" France\" should raise log p(\" Paris\"): {france}"
    );

    // The all-kept value is the unablated model's log-probability of " Paris".
    let model = spex::model::Model::open(
        &ModelSource::resolve(None).unwrap(),
        &candle_core::Device::Cpu,
        candle_core::DType::F32,
    )
    .unwrap();
    let ids = model.encode("The capital of France is").unwrap();
    let paris = model.encode(" Paris").unwrap()[0];
    let row = &model
        .run(
            &[ids],
            &[spex::model::Job {
                prompt: 0,
                heads: None,
                tokens: None,
            }],
            &spex::model::Readout::Full,
            &spex::model::RunOptions::default(),
        )
        .unwrap()[0];
    let expect = f64::from(row[paris as usize]) - spex::model::logsumexp(row);
    let values = spex::io::read_values(&dir.join("values.npy")).unwrap();
    let masks = spex::io::read_masks_npy(&dir.join("masks.npy")).unwrap();
    let all = (0..masks.len())
        .find(|&r| masks.count_kept(r) == 5)
        .unwrap();
    assert!(
        (values[all] - expect).abs() < 1e-4,
        "{} vs {expect}",
        values[all]
    );
}
