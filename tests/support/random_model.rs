//! A Llama-style model with seeded random weights, built in memory from a `config.json` value (no
//! files): for the CUDA tests and the GPU benchmark (`examples/gpu_bench.rs` includes this file).

use std::collections::HashMap;
use std::str::FromStr;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use spex::model::{Model, ModelResult};
use tokenizers::Tokenizer;

/// `shape` uniform in `[-scale, scale)`, f32 on the CPU.
fn uniform(rng: &mut ChaCha8Rng, shape: &[usize], scale: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
    Tensor::from_vec(values, shape, &Device::Cpu).expect("sizes match the shape")
}

/// Hugging Face-named tensors of a Llama-style `cfg` (no biases, no q/k norms): projections
/// uniform in `±2/sqrt(fan_in)`, norm weights in `[0.5, 1.5)`, embeddings in `±1`.
pub fn llama_tensors(cfg: &Value, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = |k: &str| {
        cfg[k]
            .as_u64()
            .unwrap_or_else(|| panic!("config needs `{k}`")) as usize
    };
    let (v, d, i) = (g("vocab_size"), g("hidden_size"), g("intermediate_size"));
    let (h, hkv, hd) = (
        g("num_attention_heads"),
        g("num_key_value_heads"),
        g("head_dim"),
    );
    let mut w = HashMap::new();
    let mut put = |rng: &mut ChaCha8Rng, name: String, shape: &[usize]| {
        let t = match shape {
            [_] => (uniform(rng, shape, 0.5) + 1.0).expect("affine"),
            [_, fan_in] => uniform(rng, shape, 2.0 / (*fan_in as f32).sqrt()),
            _ => unreachable!("weights are vectors or matrices"),
        };
        w.insert(name, t);
    };
    put(&mut rng, "model.norm.weight".into(), &[d]);
    for l in 0..g("num_hidden_layers") {
        let p = format!("model.layers.{l}");
        put(&mut rng, format!("{p}.input_layernorm.weight"), &[d]);
        put(
            &mut rng,
            format!("{p}.post_attention_layernorm.weight"),
            &[d],
        );
        put(
            &mut rng,
            format!("{p}.self_attn.q_proj.weight"),
            &[h * hd, d],
        );
        put(
            &mut rng,
            format!("{p}.self_attn.k_proj.weight"),
            &[hkv * hd, d],
        );
        put(
            &mut rng,
            format!("{p}.self_attn.v_proj.weight"),
            &[hkv * hd, d],
        );
        put(
            &mut rng,
            format!("{p}.self_attn.o_proj.weight"),
            &[d, h * hd],
        );
        put(&mut rng, format!("{p}.mlp.gate_proj.weight"), &[i, d]);
        put(&mut rng, format!("{p}.mlp.up_proj.weight"), &[i, d]);
        put(&mut rng, format!("{p}.mlp.down_proj.weight"), &[d, i]);
    }
    w.insert(
        "model.embed_tokens.weight".into(),
        uniform(&mut rng, &[v, d], 1.0),
    );
    if cfg["tie_word_embeddings"] != json!(true) {
        w.insert("lm_head.weight".into(), uniform(&mut rng, &[v, d], 0.5));
    }
    w
}

/// A word-level tokenizer of `words` ids (`<unk>`, then `w1`, `w2`, ...).
pub fn word_tokenizer(words: usize) -> Tokenizer {
    let mut vocab = serde_json::Map::new();
    vocab.insert("<unk>".into(), json!(0));
    for i in 1..words {
        vocab.insert(format!("w{i}"), json!(i));
    }
    let spec = json!({"version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
        "decoder": null, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}});
    Tokenizer::from_str(&spec.to_string()).expect("a valid tokenizer.json")
}

/// The model of `cfg` with the weights `tensors` on `device` in `dtype`.
pub fn build(
    cfg: &Value,
    tensors: HashMap<String, Tensor>,
    device: &Device,
    dtype: DType,
) -> ModelResult<Model> {
    let words = cfg["vocab_size"].as_u64().map_or(2, |v| v.min(64) as usize);
    Model::from_parts(
        cfg,
        tensors,
        word_tokenizer(words),
        "random weights",
        device,
        dtype,
    )
}
