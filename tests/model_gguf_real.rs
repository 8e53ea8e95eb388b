//! The default model (SmolLM2-135M-Instruct, Q4_1 GGUF) against the Hugging Face folder that the
//! fetch script converted from it with Python (`models/smollm2-135m-instruct-hf/`).
//! Each test prints a skip line and passes when its files are absent.

use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::{Device, Tensor};
use spex::home::{default_model_path, spex_home};
use spex::model::load::tokenizer::{load_tokenizer, SpecialTokens};
use spex::model::{load_gguf, GgufModel};

fn hf_folder() -> Option<PathBuf> {
    let dir = spex_home().join("models").join("smollm2-135m-instruct-hf");
    if dir.join("model.safetensors").is_file() && dir.join("tokenizer.json").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: {} not found (run `bash models/fetch.sh`)",
            dir.display()
        );
        None
    }
}

/// The default model, loaded once for all tests (None when the GGUF is absent).
fn gguf() -> Option<&'static GgufModel> {
    static MODEL: OnceLock<Option<GgufModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            Some(default_model_path())
                .filter(|p| p.is_file())
                .map(|path| load_gguf(&path, &Device::Cpu).expect("default GGUF loads"))
        })
        .as_ref()
        .or_else(|| {
            eprintln!("skipping: the default GGUF is not there (run `bash models/fetch.sh`)");
            None
        })
}

#[test]
fn config_and_pinned_token_ids() {
    let Some(model) = gguf() else { return };
    let c = &model.config_json;
    assert_eq!(c["model_type"], "llama");
    assert_eq!(c["num_hidden_layers"], 30);
    assert_eq!(c["num_attention_heads"], 9);
    assert_eq!(c["num_key_value_heads"], 3);
    assert_eq!(c["hidden_size"], 576);
    assert_eq!(c["intermediate_size"], 1536);
    assert_eq!(c["vocab_size"], 49152);
    assert_eq!(c["rms_norm_eps"], f64::from(1e-5f32));
    assert_eq!(c["rope_theta"], 100000.0);
    assert_eq!(c["tie_word_embeddings"], true);
    assert_eq!(model.tensors.len(), 272);

    let tok = &model.tokenizer;
    let ids = tok.encode("<|im_start|>user\n", false).unwrap();
    assert_eq!(ids.get_ids(), &[1, 4093, 198]);
    let ids = tok.encode("In 2024", false).unwrap();
    let pieces: Vec<String> = ids
        .get_ids()
        .iter()
        .map(|&id| tok.id_to_token(id).unwrap())
        .collect();
    assert_eq!(pieces, ["In", "Ġ", "2", "0", "2", "4"]);
}

#[test]
fn every_tensor_equals_the_hf_safetensors() {
    let (Some(model), Some(dir)) = (gguf(), hf_folder()) else {
        return;
    };
    let hf = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let mut ours: Vec<&String> = model.tensors.keys().collect();
    let mut theirs: Vec<&String> = hf.keys().collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs, "tensor names differ");
    for (name, want) in &hf {
        let got = &model.tensors[name];
        assert_eq!(got.dims(), want.dims(), "{name}");
        let want = want.to_dtype(candle_core::DType::F32).unwrap();
        let diff = max_abs_diff(got, &want);
        assert!(diff <= 1e-6, "{name}: max |diff| = {diff}");
    }
}

#[test]
fn config_json_agrees_with_the_hf_config() {
    let (Some(model), Some(dir)) = (gguf(), hf_folder()) else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let hf: serde_json::Value = serde_json::from_str(&text).unwrap();
    let hf = hf.as_object().unwrap();
    for (key, ours) in model.config_json.as_object().unwrap() {
        let Some(theirs) = hf.get(key) else { continue };
        match (ours.as_f64(), theirs.as_f64()) {
            (Some(a), Some(b)) => assert!(
                (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                "{key}: {a} vs {b}"
            ),
            _ => assert_eq!(ours, theirs, "{key}"),
        }
    }
}

#[test]
fn tokenizer_matches_the_hf_tokenizer_json() {
    let (Some(model), Some(dir)) = (gguf(), hf_folder()) else {
        return;
    };
    let hf = load_tokenizer(&dir.join("tokenizer.json")).unwrap();
    let prompts = [
        "The capital of France is",
        "In 2024, 3.14159 × 10^6 people paid $1,299.99.",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n",
        "Ünïcödé: naïve café, 日本語のテキスト, emoji 🦀🚀, Ελληνικά.",
        "line one\n\n  indented\ttab\r\nwindows line\n",
        "Question: What is 7 * 8?\nA. 54\nB. 56\nC. 58\nD. 64\nAnswer:",
        "   leading spaces and trailing   ",
        "don't won't it's y'all",
    ];
    for prompt in prompts {
        let ours = model.tokenizer.encode(prompt, false).unwrap();
        let theirs = hf.encode(prompt, false).unwrap();
        assert_eq!(ours.get_ids(), theirs.get_ids(), "{prompt:?}");
        let decoded = model.tokenizer.decode(ours.get_ids(), false).unwrap();
        assert_eq!(decoded, prompt);
    }
    assert_eq!(
        model.tokenizer.get_vocab_size(true),
        hf.get_vocab_size(true)
    );
    let config = dir.join("tokenizer_config.json");
    if config.is_file() {
        let special = SpecialTokens::from_tokenizer_config(&config, &hf).unwrap();
        assert_eq!(special.bos, model.special_tokens.bos);
        assert_eq!(special.eos, model.special_tokens.eos);
        assert_eq!(special.pad, model.special_tokens.pad);
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .unwrap()
}
