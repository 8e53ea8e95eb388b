//! Shared by the integration tests: running the `spex` binary, and tiny random checkpoints the
//! tests write themselves: Llama-style (llama, mistral, qwen2, qwen3) and GPT-2 configs and
//! weights, a word-level tokenizer (`<unk>`, the letters A-D, `w5`..), and a writer of the
//! Hugging Face folder layout (config.json, model.safetensors, tokenizer.json).
#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// Runs the `spex` binary with `args`.
pub fn spex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spex"))
        .args(args)
        .output()
        .expect("the spex binary runs")
}

/// Runs the `spex` binary with `args` and the environment variables `envs` set.
pub fn spex_env(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spex"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("the spex binary runs")
}

/// `out`, asserting the run succeeded.
#[track_caller]
pub fn ok(out: Output) -> Output {
    assert!(out.status.success(), "spex failed: {}", stderr(&out));
    out
}

/// Exit code 2, no panic, and a message holding every one of `words`; returns the message.
#[track_caller]
pub fn refused(out: Output, words: &[&str]) -> String {
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "expected exit 2: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in words {
        assert!(err.contains(w), "`{w}` missing from: {err}");
    }
    err
}

/// The JSON file at `path`.
pub fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The run's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub const VOCAB: usize = 40;

/// `len` random token ids in `3..vocab` (above the special tokens), seeded.
pub fn random_prompt(len: usize, vocab: usize, seed: u64) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| rng.random_range(3..vocab as u32))
        .collect()
}

/// Named tensors as (shape, values), editable before saving.
pub type Ckpt = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

pub fn rand_tensor(rng: &mut ChaCha8Rng, shape: &[usize], scale: f32) -> (Vec<usize>, Vec<f32>) {
    let n: usize = shape.iter().product();
    (
        shape.to_vec(),
        (0..n).map(|_| rng.random_range(-scale..scale)).collect(),
    )
}

pub fn llama_config(model_type: &str) -> Value {
    // head_dim 8 with 4 heads (32) differs from hidden 24: exercises an explicit head_dim.
    json!({"model_type": model_type, "vocab_size": VOCAB, "hidden_size": 24, "intermediate_size": 40,
           "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 64,
           "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2})
}

pub fn llama_weights(cfg: &Value, seed: u64) -> Ckpt {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let (d, i, h, hkv, hd) = (
        g("hidden_size"),
        g("intermediate_size"),
        g("num_attention_heads"),
        g("num_key_value_heads"),
        g("head_dim"),
    );
    let qkv_bias = cfg["model_type"] == "qwen2";
    let qk_norm = cfg["model_type"] == "qwen3";
    let mut w = Ckpt::new();
    w.insert(
        "model.embed_tokens.weight".into(),
        rand_tensor(&mut rng, &[VOCAB, d], 1.0),
    );
    w.insert(
        "lm_head.weight".into(),
        rand_tensor(&mut rng, &[VOCAB, d], 0.5),
    );
    w.insert("model.norm.weight".into(), rand_tensor(&mut rng, &[d], 1.5));
    for l in 0..g("num_hidden_layers") {
        let p = format!("model.layers.{l}");
        let mut put = |name: &str, shape: &[usize], s: f32| {
            w.insert(format!("{p}.{name}"), rand_tensor(&mut rng, shape, s));
        };
        put("input_layernorm.weight", &[d], 1.5);
        put("post_attention_layernorm.weight", &[d], 1.5);
        put("self_attn.q_proj.weight", &[h * hd, d], 0.4);
        put("self_attn.k_proj.weight", &[hkv * hd, d], 0.4);
        put("self_attn.v_proj.weight", &[hkv * hd, d], 0.4);
        put("self_attn.o_proj.weight", &[d, h * hd], 0.4);
        if qkv_bias {
            put("self_attn.q_proj.bias", &[h * hd], 0.2);
            put("self_attn.k_proj.bias", &[hkv * hd], 0.2);
            put("self_attn.v_proj.bias", &[hkv * hd], 0.2);
        }
        if qk_norm {
            put("self_attn.q_norm.weight", &[hd], 1.5);
            put("self_attn.k_norm.weight", &[hd], 1.5);
        }
        put("mlp.gate_proj.weight", &[i, d], 0.4);
        put("mlp.up_proj.weight", &[i, d], 0.4);
        put("mlp.down_proj.weight", &[d, i], 0.4);
    }
    w
}

pub fn gpt2_config() -> Value {
    json!({"model_type": "gpt2", "vocab_size": VOCAB, "n_embd": 24, "n_layer": 3, "n_head": 3,
           "n_positions": 32, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new"})
}

pub fn gpt2_weights(seed: u64) -> Ckpt {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = 24;
    let mut w = Ckpt::new();
    w.insert("wte.weight".into(), rand_tensor(&mut rng, &[VOCAB, d], 1.0));
    w.insert("wpe.weight".into(), rand_tensor(&mut rng, &[32, d], 0.5));
    w.insert("ln_f.weight".into(), rand_tensor(&mut rng, &[d], 1.5));
    w.insert("ln_f.bias".into(), rand_tensor(&mut rng, &[d], 0.2));
    for l in 0..3 {
        let p = format!("h.{l}");
        let mut put = |name: &str, shape: &[usize], s: f32| {
            w.insert(format!("{p}.{name}"), rand_tensor(&mut rng, shape, s));
        };
        for ln in ["ln_1", "ln_2"] {
            put(&format!("{ln}.weight"), &[d], 1.5);
            put(&format!("{ln}.bias"), &[d], 0.2);
        }
        put("attn.c_attn.weight", &[d, 3 * d], 0.4);
        put("attn.c_attn.bias", &[3 * d], 0.2);
        put("attn.c_proj.weight", &[d, d], 0.4);
        put("attn.c_proj.bias", &[d], 0.2);
        put("mlp.c_fc.weight", &[d, 4 * d], 0.4);
        put("mlp.c_fc.bias", &[4 * d], 0.2);
        put("mlp.c_proj.weight", &[4 * d, d], 0.4);
        put("mlp.c_proj.bias", &[d], 0.2);
    }
    w
}

pub fn tokenizer_json(n_words: usize) -> Value {
    let mut vocab = serde_json::Map::new();
    vocab.insert("<unk>".into(), json!(0));
    // Ids 1..=4 are the answer letters, so that multiple-choice tasks have distinct candidates.
    for (i, letter) in ["A", "B", "C", "D"].iter().enumerate() {
        vocab.insert((*letter).into(), json!(i + 1));
    }
    for i in 5..n_words {
        vocab.insert(format!("w{i}"), json!(i));
    }
    json!({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
           "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
           "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}})
}

pub fn write_model(dir: &Path, cfg: &Value, w: &Ckpt) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::write(
        dir.join("tokenizer.json"),
        tokenizer_json(VOCAB).to_string(),
    )
    .unwrap();
    let tensors: BTreeMap<String, Tensor> = w
        .iter()
        .map(|(k, (s, v))| {
            (
                k.clone(),
                Tensor::from_vec(v.clone(), s.as_slice(), &Device::Cpu).unwrap(),
            )
        })
        .collect();
    let map: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
    candle_core::safetensors::save(&map, dir.join("model.safetensors")).unwrap();
}

/// The three MMLU-form questions of the tiny task (JSONL rows over the tokenizer's words).
pub const TINY_TASK_ROWS: [&str; 3] = [
    r#"{"question": "w5 w6 w7", "subject": "tiny", "choices": ["w8", "w9", "w10", "w11"], "answer": 1}"#,
    r#"{"question": "w12 w13", "subject": "tiny", "choices": ["w14", "w15", "w16", "w17"], "answer": 3}"#,
    r#"{"question": "w18 w19 w20 w21", "subject": "tiny", "choices": ["w22", "w23", "w24", "w25"], "answer": 0}"#,
];

/// A temporary folder holding `model/` (a tiny random Llama, 4 layers x 4 heads, seed 3) and
/// `task.jsonl` ([`TINY_TASK_ROWS`]): what the CLI tests run on.
pub fn tiny_model_and_task() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cfg = llama_config("llama");
    write_model(&dir.path().join("model"), &cfg, &llama_weights(&cfg, 3));
    std::fs::write(
        dir.path().join("task.jsonl"),
        TINY_TASK_ROWS.join("\n") + "\n",
    )
    .unwrap();
    dir
}
