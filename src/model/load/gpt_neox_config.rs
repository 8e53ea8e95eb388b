//! The config of GPT-NeoX (the Pythia suite) as Hugging Face's `config.json` states it, in the
//! field names of transformers 4 (`rotary_pct`, `rotary_emb_base`) or 5 (`rope_parameters`).

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::config_fields::{deserialize, positive, rope_tables_fit, RopeFields, SpecialIds};
use crate::model::error::{ModelError, ModelResult};

/// Config of a GPT-NeoX decoder.
#[derive(Debug, Clone)]
pub struct GptNeoxConfig {
    /// Vocabulary size (rows of the embedding and of the output matrix).
    pub vocab_size: usize,
    /// Residual width D.
    pub hidden_size: usize,
    /// Number of blocks L.
    pub num_hidden_layers: usize,
    /// Heads H (no grouped-query attention).
    pub num_attention_heads: usize,
    /// Per-head width Dh = D / H.
    pub head_dim: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Dimensions of each head that RoPE rotates (even, at most Dh).
    pub rotary_dims: usize,
    /// RoPE base.
    pub rope_theta: f64,
    /// Longest supported position (tokens).
    pub max_position_embeddings: usize,
    /// Attention and MLP read the same input and add to the residual together (Pythia); else the
    /// MLP reads the residual after attention.
    pub use_parallel_residual: bool,
    /// Whether the MLP activation is the exact (erf) GELU rather than the tanh approximation.
    pub gelu_erf: bool,
    /// Whether the attention projections carry biases.
    pub attention_bias: bool,
    /// Whether the output matrix is the embedding.
    pub tie_word_embeddings: bool,
    /// Special token ids from config.json.
    pub special: SpecialIds,
}

#[derive(Deserialize)]
struct RawGptNeox {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    layer_norm_eps: Option<f64>,
    max_position_embeddings: Option<usize>,
    use_parallel_residual: Option<bool>,
    hidden_act: Option<String>,
    attention_bias: Option<bool>,
    tie_word_embeddings: Option<bool>,
}

impl GptNeoxConfig {
    /// Parses a `gpt_neox` config.json value; `origin` (a path) is named in errors.
    pub fn from_json(
        value: &Value,
        special: SpecialIds,
        origin: &Path,
    ) -> ModelResult<GptNeoxConfig> {
        let raw: RawGptNeox = deserialize(value, origin)?;
        let hidden = positive(raw.hidden_size, "hidden_size", origin)?;
        let heads = positive(raw.num_attention_heads, "num_attention_heads", origin)?;
        if hidden % heads != 0 {
            return Err(ModelError::field(
                origin,
                "hidden_size",
                format!("{hidden} is not a multiple of num_attention_heads = {heads}"),
            ));
        }
        let head_dim = hidden / heads;
        let rope = RopeFields::read(value, origin, "rotary_emb_base", Some("rotary_pct"))?;
        if rope.scaling.is_some() {
            let object = match value.get("rope_parameters").is_some_and(|v| !v.is_null()) {
                true => "rope_parameters",
                false => "rope_scaling",
            };
            return Err(ModelError::field(
                origin,
                &format!("{object}.rope_type"),
                "RoPE scaling is not supported for gpt_neox (default)",
            ));
        }
        let rotary_dims = rope.rotary_dims(head_dim, "rotary_pct", origin)?;
        let gelu_erf = match raw.hidden_act.as_deref() {
            None | Some("gelu") => true,
            Some("gelu_new") | Some("gelu_pytorch_tanh") | Some("gelu_fast") => false,
            Some(other) => {
                return Err(ModelError::field(
                    origin,
                    "hidden_act",
                    format!(
                        "`{other}` is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast)"
                    ),
                ))
            }
        };
        let positions = positive(
            raw.max_position_embeddings.unwrap_or(2048),
            "max_position_embeddings",
            origin,
        )?;
        rope_tables_fit(positions, head_dim, origin)?;
        Ok(GptNeoxConfig {
            vocab_size: positive(raw.vocab_size, "vocab_size", origin)?,
            hidden_size: hidden,
            num_hidden_layers: positive(raw.num_hidden_layers, "num_hidden_layers", origin)?,
            num_attention_heads: heads,
            head_dim,
            intermediate_size: positive(raw.intermediate_size, "intermediate_size", origin)?,
            layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-5),
            rotary_dims,
            rope_theta: rope.theta,
            max_position_embeddings: positions,
            use_parallel_residual: raw.use_parallel_residual.unwrap_or(true),
            gelu_erf,
            attention_bias: raw.attention_bias.unwrap_or(true),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            special,
        })
    }

    /// Inverse RoPE frequencies (radians per position) for the rotated pairs.
    pub fn inv_freq(&self) -> Vec<f64> {
        let dims = self.rotary_dims;
        (0..dims / 2)
            .map(|i| 1.0 / self.rope_theta.powf((2 * i) as f64 / dims as f64))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pythia() -> Value {
        // Pythia-70m's config.json as the Hub has it (transformers 4 field names).
        json!({"model_type": "gpt_neox", "vocab_size": 50304, "hidden_size": 512,
               "num_hidden_layers": 6, "num_attention_heads": 8, "intermediate_size": 2048,
               "hidden_act": "gelu", "rotary_pct": 0.25, "rotary_emb_base": 10000,
               "max_position_embeddings": 2048, "layer_norm_eps": 1e-5,
               "use_parallel_residual": true, "tie_word_embeddings": false,
               "bos_token_id": 0, "eos_token_id": 0})
    }

    fn parse(v: &Value) -> ModelResult<GptNeoxConfig> {
        GptNeoxConfig::from_json(v, SpecialIds::default(), Path::new("config.json"))
    }

    #[test]
    fn reads_both_generations_of_field_names() {
        let old = parse(&pythia()).unwrap();
        assert_eq!((old.head_dim, old.rotary_dims), (64, 16));
        assert!(old.use_parallel_residual && old.gelu_erf && old.attention_bias);
        let mut new = pythia();
        let obj = new.as_object_mut().unwrap();
        obj.remove("rotary_pct");
        obj.remove("rotary_emb_base");
        obj.insert(
            "rope_parameters".into(),
            json!({"rope_type": "default", "rope_theta": 500.0, "partial_rotary_factor": 0.5}),
        );
        let new = parse(&new).unwrap();
        assert_eq!((new.rotary_dims, new.rope_theta), (32, 500.0));
        assert_eq!(new.inv_freq().len(), 16);
    }

    #[test]
    fn unsupported_fields_are_named() {
        for (key, val, field) in [
            ("hidden_act", json!("relu"), "hidden_act"),
            ("rotary_pct", json!(0.01), "rotary_pct"),
            ("rotary_pct", json!(1.5), "rotary_pct"),
            ("hidden_size", json!(500), "hidden_size"),
            (
                "max_position_embeddings",
                json!(1u64 << 40),
                "max_position_embeddings",
            ),
            (
                "rope_scaling",
                json!({"rope_type": "linear", "factor": 2.0}),
                "rope_scaling.rope_type",
            ),
            (
                "rope_scaling",
                json!({"rope_type": "yarn", "factor": 2.0}),
                "rope_scaling.rope_type",
            ),
        ] {
            let mut v = pythia();
            v[key] = val;
            let err = parse(&v).unwrap_err().to_string();
            assert!(err.contains(field), "{key}: {err}");
        }
    }
}
