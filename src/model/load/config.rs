//! Model configs mirroring Hugging Face `config.json`, by `model_type`: gpt2 here; the Llama
//! family (llama, mistral, qwen2, qwen3, olmo2, phi3), gemma2/gemma3_text and gpt_neox in their own
//! files. Validation errors name the field.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::config_fields::{deserialize, positive, RopeFields};
pub use super::config_fields::{RopeScaling, SpecialIds};
use super::gemma_config::gemma_from_json;
pub use super::gpt_neox_config::GptNeoxConfig;
use super::llama_config::{llama_from_raw, RawLlama};
pub use super::llama_config::{BlockVariants, GateActivation, LlamaConfig, NormPlacement, QkNorm};
use crate::model::error::{ModelError, ModelResult};

/// Config of GPT-2.
#[derive(Debug, Clone)]
pub struct Gpt2Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Residual width D.
    pub n_embd: usize,
    /// Number of blocks L.
    pub n_layer: usize,
    /// Heads H.
    pub n_head: usize,
    /// Learned positions (tokens).
    pub n_positions: usize,
    /// LayerNorm epsilon.
    pub layer_norm_epsilon: f64,
    /// MLP inner width (default 4 D).
    pub n_inner: usize,
    /// Whether the MLP activation is the exact (erf) GELU rather than the tanh approximation.
    pub gelu_erf: bool,
    /// Special token ids from config.json.
    pub special: SpecialIds,
}

/// A parsed config of one of the supported architectures.
#[derive(Debug, Clone)]
pub enum Config {
    /// llama, mistral, qwen2, qwen3, olmo2, phi3, gemma2, gemma3_text (boxed: the largest).
    Llama(Box<LlamaConfig>),
    /// gpt2.
    Gpt2(Gpt2Config),
    /// gpt_neox (Pythia).
    GptNeox(GptNeoxConfig),
}

#[derive(Deserialize)]
struct RawGpt2 {
    vocab_size: usize,
    n_embd: usize,
    n_layer: usize,
    n_head: usize,
    n_positions: usize,
    layer_norm_epsilon: Option<f64>,
    n_inner: Option<usize>,
    activation_function: Option<String>,
}

impl Config {
    /// Parses a config.json value; `origin` (a path) is named in errors.
    pub fn from_json(value: &Value, origin: impl AsRef<Path>) -> ModelResult<Config> {
        let origin = origin.as_ref();
        let model_type = match value.get("model_type") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(ModelError::field(origin, "model_type", "not a string")),
            None => return Err(ModelError::field(origin, "model_type", "missing")),
        };
        let special = special_ids(value, origin)?;
        match model_type.as_str() {
            "llama" | "mistral" | "qwen2" | "qwen3" | "olmo2" | "phi3" => {
                let raw: RawLlama = deserialize(value, origin)?;
                let rope =
                    RopeFields::read(value, origin, "rope_theta", Some("partial_rotary_factor"))?;
                if rope.partial != 1.0 && model_type != "phi3" {
                    return Err(ModelError::field(
                        origin,
                        "rope_parameters.partial_rotary_factor",
                        format!("{} is not supported for {model_type} (1.0)", rope.partial),
                    ));
                }
                Ok(Config::Llama(Box::new(llama_from_raw(
                    raw, model_type, special, rope, origin,
                )?)))
            }
            "gpt2" => {
                let raw: RawGpt2 = deserialize(value, origin)?;
                Ok(Config::Gpt2(gpt2_from_raw(raw, special, origin)?))
            }
            "gpt_neox" => Ok(Config::GptNeox(GptNeoxConfig::from_json(
                value, special, origin,
            )?)),
            "gemma2" | "gemma3_text" => Ok(Config::Llama(Box::new(gemma_from_json(
                value, model_type, special, origin,
            )?))),
            other => Err(ModelError::UnsupportedArchitecture {
                path: origin.to_path_buf(),
                field: "model_type".to_string(),
                value: other.to_string(),
                supported:
                    "llama, mistral, qwen2, qwen3, olmo2, phi3, gemma2, gemma3_text, gpt2, gpt_neox"
                        .to_string(),
            }),
        }
    }

    /// Reads and parses a config.json file.
    pub fn from_file(path: &Path) -> ModelResult<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| ModelError::File {
            path: path.to_path_buf(),
            reason: format!("not valid JSON: {e}"),
        })?;
        Config::from_json(&value, path)
    }
}

fn id_field(value: &Value, field: &str, origin: &Path) -> ModelResult<Option<u32>> {
    let as_id = |v: &Value| -> ModelResult<u32> {
        v.as_u64()
            .and_then(|x| u32::try_from(x).ok())
            .ok_or_else(|| ModelError::field(origin, field, format!("not a token id: {v}")))
    };
    match value.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items.first().map(as_id).transpose(),
        Some(v) => as_id(v).map(Some),
    }
}

fn special_ids(value: &Value, origin: &Path) -> ModelResult<SpecialIds> {
    Ok(SpecialIds {
        bos: id_field(value, "bos_token_id", origin)?,
        eos: id_field(value, "eos_token_id", origin)?,
        pad: id_field(value, "pad_token_id", origin)?,
    })
}

fn gpt2_from_raw(raw: RawGpt2, special: SpecialIds, origin: &Path) -> ModelResult<Gpt2Config> {
    let n_embd = positive(raw.n_embd, "n_embd", origin)?;
    let n_head = positive(raw.n_head, "n_head", origin)?;
    if n_embd % n_head != 0 {
        return Err(ModelError::field(
            origin,
            "n_embd",
            format!("{n_embd} is not a multiple of n_head = {n_head}"),
        ));
    }
    let gelu_erf = match raw.activation_function.as_deref() {
        None | Some("gelu_new") | Some("gelu_pytorch_tanh") => false,
        Some("gelu") => true,
        Some(other) => {
            return Err(ModelError::field(
                origin,
                "activation_function",
                format!("`{other}` is not supported (gelu_new, gelu_pytorch_tanh, gelu)"),
            ))
        }
    };
    Ok(Gpt2Config {
        vocab_size: positive(raw.vocab_size, "vocab_size", origin)?,
        n_embd,
        n_layer: positive(raw.n_layer, "n_layer", origin)?,
        n_head,
        n_positions: positive(raw.n_positions, "n_positions", origin)?,
        layer_norm_epsilon: raw.layer_norm_epsilon.unwrap_or(1e-5),
        n_inner: raw.n_inner.unwrap_or(4 * n_embd),
        gelu_erf,
        special,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smol() -> Value {
        json!({"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
               "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
               "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "tie_word_embeddings": true,
               "bos_token_id": 1, "eos_token_id": [2, 0], "pad_token_id": null})
    }

    #[test]
    fn parses_a_smollm2_like_config() {
        let Config::Llama(c) = Config::from_json(&smol(), "config.json").unwrap() else {
            panic!("expected llama")
        };
        assert_eq!(
            (c.head_dim, c.num_key_value_heads, c.tie_word_embeddings),
            (64, 3, true)
        );
        assert_eq!(
            c.special,
            SpecialIds {
                bos: Some(1),
                eos: Some(2),
                pad: None
            }
        );
        assert!(!c.qkv_bias && c.qk_norm == QkNorm::None && c.norms == NormPlacement::Inputs);
    }

    #[test]
    fn names_the_missing_field() {
        let mut v = smol();
        v.as_object_mut().unwrap().remove("hidden_size");
        let err = Config::from_json(&v, "x/config.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x/config.json") && err.contains("hidden_size"),
            "{err}"
        );
    }

    #[test]
    fn reads_transformers_5_rope_parameters() {
        let llama = |v: &Value| match Config::from_json(v, "config.json").unwrap() {
            Config::Llama(c) => c,
            other => panic!("{other:?}"),
        };
        let mut v = smol();
        v.as_object_mut().unwrap().remove("rope_theta");
        v["rope_parameters"] = json!({"rope_type": "default", "rope_theta": 100000.0});
        let c = llama(&v);
        assert_eq!((c.rope_theta, c.rope_scaling), (100000.0, None));
        v["rope_parameters"] =
            json!({"rope_type": "linear", "rope_theta": 500000.0, "factor": 4.0});
        let c = llama(&v);
        assert_eq!(c.rope_theta, 500000.0);
        assert_eq!(c.rope_scaling, Some(RopeScaling::Linear { factor: 4.0 }));
        for (params, field) in [
            (
                json!({"rope_type": "yarn", "factor": 4.0}),
                "rope_parameters.rope_type",
            ),
            (json!({"rope_type": "linear"}), "rope_parameters.factor"),
            (json!({"rope_theta": "big"}), "rope_parameters.rope_theta"),
            (
                json!({"partial_rotary_factor": 0.5}),
                "rope_parameters.partial_rotary_factor",
            ),
        ] {
            v["rope_parameters"] = params;
            let err = Config::from_json(&v, "config.json")
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn phi3_reads_partial_rotary_and_names_longrope() {
        let mut v = smol();
        v["model_type"] = json!("phi3");
        v["partial_rotary_factor"] = json!(0.75);
        match Config::from_json(&v, "config.json").unwrap() {
            Config::Llama(c) => assert_eq!((c.head_dim, c.rotary_dims), (64, 48)),
            other => panic!("{other:?}"),
        }
        v["rope_scaling"] =
            json!({"type": "longrope", "short_factor": [1.0], "long_factor": [2.0]});
        let err = Config::from_json(&v, "config.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rope_scaling.rope_type") && err.contains("longrope"),
            "{err}"
        );
        v["model_type"] = json!("llama");
        v["rope_scaling"] = Value::Null;
        let err = Config::from_json(&v, "config.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("partial_rotary_factor"), "{err}");
    }

    #[test]
    fn rejects_unknown_model_type_and_bad_gqa() {
        let mut v = smol();
        v["model_type"] = json!("mamba");
        let err = Config::from_json(&v, "c.json").unwrap_err();
        assert!(
            matches!(err, ModelError::UnsupportedArchitecture { ref field, ref value, .. } if field == "model_type" && value == "mamba")
        );
        let mut v = smol();
        v["num_key_value_heads"] = json!(2);
        let err = Config::from_json(&v, "c.json").unwrap_err().to_string();
        assert!(err.contains("num_key_value_heads"), "{err}");
    }

    #[test]
    fn sliding_windows_follow_transformers_per_model_type() {
        let windows = |v: &Value| match Config::from_json(v, "c").unwrap() {
            Config::Llama(c) => c.variants.layer_windows,
            other => panic!("{other:?}"),
        };
        let mut v = smol();
        v["num_hidden_layers"] = json!(3);
        v["sliding_window"] = json!(8);
        // Llama's attention has no window; Mistral and Phi-3 window every layer.
        assert!(windows(&v).is_empty());
        for every in ["mistral", "phi3"] {
            v["model_type"] = json!(every);
            assert_eq!(windows(&v), vec![Some(8); 3], "{every}");
        }
        // Qwen2/3: only with use_sliding_window, from max_window_layers on or as layer_types say.
        v["model_type"] = json!("qwen2");
        assert!(windows(&v).is_empty());
        v["use_sliding_window"] = json!(true);
        v["max_window_layers"] = json!(1);
        assert_eq!(windows(&v), vec![None, Some(8), Some(8)]);
        v["layer_types"] = json!(["sliding_attention", "full_attention", "sliding_attention"]);
        assert_eq!(windows(&v), vec![Some(8), None, Some(8)]);
        for (field, bad) in [
            ("layer_types", json!(["full_attention"])),
            ("layer_types", json!(["chunked_attention", "x", "y"])),
            ("sliding_window", json!(0)),
        ] {
            let mut b = v.clone();
            b[field] = bad;
            let err = Config::from_json(&b, "c").unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn qwen2_has_qkv_bias_and_qwen3_qk_norm() {
        let mut v = smol();
        v["model_type"] = json!("qwen2");
        let Config::Llama(c) = Config::from_json(&v, "c").unwrap() else {
            panic!()
        };
        assert!(c.qkv_bias && !c.o_bias && c.qk_norm == QkNorm::None);
        v["model_type"] = json!("qwen3");
        v["head_dim"] = json!(128);
        let Config::Llama(c) = Config::from_json(&v, "c").unwrap() else {
            panic!()
        };
        assert!(c.qk_norm == QkNorm::PerHead && !c.qkv_bias && c.head_dim == 128);
    }
}
