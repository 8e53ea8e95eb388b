//! Gemma 2 (`gemma2`) and Gemma 3 text (`gemma3_text`) configs, read into the Llama-family
//! config with their variants: (1 + w) RMSNorms before and after each sublayer, the embedding
//! scaled by sqrt(hidden_size), `query_pre_attn_scalar`, GeGLU, soft-capped attention scores and
//! logits (Gemma 2), per-layer sliding windows (`layer_types`), q/k norms and a local RoPE base
//! for the sliding layers (Gemma 3).

use std::path::Path;

use serde_json::Value;

use super::config_fields::{deserialize, RopeFields, RopeScaling, SpecialIds};
use super::llama_config::{
    llama_from_raw, sliding_from_layer_types, BlockVariants, GateActivation, LlamaConfig,
    NormPlacement, QkNorm, RawLlama,
};
use crate::model::error::{ModelError, ModelResult};

/// Which Gemma generation a config is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Generation {
    Two,
    Three,
}

/// The Llama-family config of a `gemma2` or `gemma3_text` config.json `value`.
pub(super) fn gemma_from_json(
    value: &Value,
    model_type: String,
    special: SpecialIds,
    origin: &Path,
) -> ModelResult<LlamaConfig> {
    let generation = match model_type.as_str() {
        "gemma2" => Generation::Two,
        _ => Generation::Three,
    };
    if value.get("use_bidirectional_attention") == Some(&Value::Bool(true)) {
        return Err(ModelError::field(
            origin,
            "use_bidirectional_attention",
            "bidirectional attention is not supported (causal decoders only)",
        ));
    }
    let gate_activation = gate_activation(value, origin)?;
    // The activation is checked above; the generic reader knows only SiLU.
    let mut plain = value.clone();
    if let Some(fields) = plain.as_object_mut() {
        fields.remove("hidden_act");
    }
    let raw: RawLlama = deserialize(&plain, origin)?;
    let layer_types = raw.layer_types.clone();
    let (global, local) = match generation {
        Generation::Two => (RopeFields::read(value, origin, "rope_theta", None)?, None),
        Generation::Three => {
            let (global, local) = gemma3_ropes(value, origin)?;
            (global, Some((local.theta, local.scaling)))
        }
    };
    let mut cfg = llama_from_raw(raw, model_type, special, global, origin)?;
    let layers = cfg.num_hidden_layers;
    let window = optional_number(value, "sliding_window", origin)?;
    let sliding = sliding_layers(value, layer_types.as_deref(), generation, layers, origin)?;
    let layer_windows = match (sliding.iter().any(|&s| s), window) {
        (false, _) => Vec::new(),
        (true, Some(w)) if w >= 1.0 && w.fract() == 0.0 => {
            sliding.iter().map(|&s| s.then_some(w as usize)).collect()
        }
        (true, _) => {
            return Err(ModelError::field(
                origin,
                "sliding_window",
                "layer_types has sliding_attention layers: a positive whole window is needed",
            ))
        }
    };
    let softcap = |field: &str, default: Option<f64>| -> ModelResult<Option<f64>> {
        let cap = match value.get(field) {
            None => default,
            Some(_) => optional_number(value, field, origin)?,
        };
        match cap {
            Some(c) if !(c > 0.0 && c.is_finite()) => Err(ModelError::field(
                origin,
                field,
                format!("{c} is not a positive cap"),
            )),
            cap => Ok(cap),
        }
    };
    // transformers' defaults where the file omits them: Gemma 2 caps at 50 and 30, Gemma 3 not.
    let (attn_cap, final_cap) = match generation {
        Generation::Two => (Some(50.0), Some(30.0)),
        Generation::Three => (None, None),
    };
    let scalar = optional_number(value, "query_pre_attn_scalar", origin)?.unwrap_or(256.0);
    if !(scalar > 0.0 && scalar.is_finite()) {
        return Err(ModelError::field(
            origin,
            "query_pre_attn_scalar",
            format!("{scalar} is not positive"),
        ));
    }
    cfg.variants = BlockVariants {
        norm_offset: 1.0,
        embed_scale: Some((cfg.hidden_size as f64).sqrt()),
        query_pre_attn_scalar: Some(scalar),
        attn_softcap: softcap("attn_logit_softcapping", attn_cap)?,
        final_softcap: softcap("final_logit_softcapping", final_cap)?,
        gate_activation,
        layer_windows,
        local_rope: local,
    };
    cfg.norms = NormPlacement::Both;
    cfg.qk_norm = match generation {
        Generation::Two => QkNorm::None,
        Generation::Three => QkNorm::PerHead,
    };
    cfg.tie_word_embeddings = value
        .get("tie_word_embeddings")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    Ok(cfg)
}

/// A number field that may be absent or null; anything else is an error naming it.
fn optional_number(value: &Value, field: &str, origin: &Path) -> ModelResult<Option<f64>> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| ModelError::field(origin, field, format!("not a number: {v}"))),
    }
}

/// The MLP gate's activation from `hidden_activation` (or the older `hidden_act`).
fn gate_activation(value: &Value, origin: &Path) -> ModelResult<GateActivation> {
    let field = match value.get("hidden_activation").filter(|v| !v.is_null()) {
        Some(_) => "hidden_activation",
        None => "hidden_act",
    };
    match value.get(field).filter(|v| !v.is_null()) {
        None => Ok(GateActivation::GeluTanh),
        Some(Value::String(s)) if s == "gelu_pytorch_tanh" || s == "gelu_new" => {
            Ok(GateActivation::GeluTanh)
        }
        Some(other) => Err(ModelError::field(
            origin,
            field,
            format!("{other} is not supported (gelu_pytorch_tanh)"),
        )),
    }
}

/// Which layers use the sliding window: `layer_types` when given, else transformers' pattern
/// (Gemma 2: every other layer from the first; Gemma 3: all but every `sliding_window_pattern`-th,
/// default 6).
fn sliding_layers(
    value: &Value,
    layer_types: Option<&[String]>,
    generation: Generation,
    layers: usize,
    origin: &Path,
) -> ModelResult<Vec<bool>> {
    if let Some(types) = layer_types {
        return sliding_from_layer_types(types, layers, origin);
    }
    let period = match generation {
        Generation::Two => 2,
        Generation::Three => {
            let p = optional_number(value, "sliding_window_pattern", origin)?.unwrap_or(6.0);
            if !(p >= 1.0 && p.fract() == 0.0) {
                return Err(ModelError::field(
                    origin,
                    "sliding_window_pattern",
                    format!("{p} is not a positive whole number"),
                ));
            }
            p as usize
        }
    };
    Ok((0..layers).map(|i| (i + 1) % period != 0).collect())
}

/// Gemma 3's RoPE for its global and its sliding layers: transformers 5 writes
/// `rope_parameters.full_attention` and `rope_parameters.sliding_attention`; older files
/// `rope_theta` (default 1e6) with `rope_scaling` for the global layers and
/// `rope_local_base_freq` (default 1e4) for the sliding ones.
fn gemma3_ropes(value: &Value, origin: &Path) -> ModelResult<(RopeFields, RopeFields)> {
    let params = value.get("rope_parameters").filter(|v| !v.is_null());
    let read = |kind: &str, theta_key: &str, default_theta: f64| -> ModelResult<RopeFields> {
        let mut view = serde_json::Map::new();
        match params {
            Some(p) => {
                let mut own = p.get(kind).cloned().unwrap_or(Value::Null);
                if let Some(o) = own.as_object_mut() {
                    o.entry("rope_theta").or_insert(default_theta.into());
                } else {
                    own = serde_json::json!({"rope_theta": default_theta});
                }
                view.insert("rope_parameters".into(), own);
            }
            None => {
                let theta = value.get(theta_key).cloned();
                view.insert(theta_key.into(), theta.unwrap_or(default_theta.into()));
                if kind == "full_attention" {
                    if let Some(scaling) = value.get("rope_scaling") {
                        view.insert("rope_scaling".into(), scaling.clone());
                    }
                }
            }
        }
        RopeFields::read(&Value::Object(view), origin, theta_key, None).map_err(|e| match e {
            ModelError::Field {
                path,
                field,
                reason,
            } if params.is_some() => ModelError::Field {
                path,
                field: field.replacen("rope_parameters.", &format!("rope_parameters.{kind}."), 1),
                reason,
            },
            other => other,
        })
    };
    let global = read("full_attention", "rope_theta", 1_000_000.0)?;
    let local = read("sliding_attention", "rope_local_base_freq", 10_000.0)?;
    let unsupported_scaling =
        |f: &RopeFields| matches!(f.scaling, Some(RopeScaling::Llama3 { .. })) || f.partial != 1.0;
    if unsupported_scaling(&global) || unsupported_scaling(&local) {
        return Err(ModelError::field(
            origin,
            "rope_parameters",
            "Gemma 3 with llama3 scaling or partial rotary is not supported (default, linear)",
        ));
    }
    Ok((global, local))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn gemma2() -> Value {
        json!({"model_type": "gemma2", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64,
               "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
               "head_dim": 16, "rms_norm_eps": 1e-6, "sliding_window": 4,
               "query_pre_attn_scalar": 24, "hidden_activation": "gelu_pytorch_tanh"})
    }

    fn llama(v: &Value) -> ModelResult<LlamaConfig> {
        let model_type = v["model_type"].as_str().unwrap().to_string();
        gemma_from_json(
            v,
            model_type,
            SpecialIds::default(),
            Path::new("config.json"),
        )
    }

    #[test]
    fn gemma2_defaults_follow_transformers() {
        let c = llama(&gemma2()).unwrap();
        let v = &c.variants;
        assert_eq!(v.layer_windows, vec![Some(4), None, Some(4), None]);
        assert_eq!((v.attn_softcap, v.final_softcap), (Some(50.0), Some(30.0)));
        assert_eq!(v.query_pre_attn_scalar, Some(24.0));
        assert_eq!((v.norm_offset, v.embed_scale), (1.0, Some(32f64.sqrt())));
        assert_eq!(v.gate_activation, GateActivation::GeluTanh);
        assert!(c.tie_word_embeddings && c.norms == NormPlacement::Both);
        assert_eq!(c.qk_norm, QkNorm::None);
    }

    #[test]
    fn gemma3_reads_layer_types_and_both_ropes() {
        let mut v = gemma2();
        v["model_type"] = json!("gemma3_text");
        v["layer_types"] = json!([
            "sliding_attention",
            "sliding_attention",
            "full_attention",
            "sliding_attention"
        ]);
        v["rope_parameters"] = json!({
            "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
            "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}});
        let c = llama(&v).unwrap();
        assert_eq!(
            c.variants.layer_windows,
            vec![Some(4), Some(4), None, Some(4)]
        );
        assert_eq!(
            (c.rope_theta, c.rope_scaling.clone()),
            (1e6, Some(RopeScaling::Linear { factor: 8.0 }))
        );
        assert_eq!(c.variants.local_rope, Some((1e4, None)));
        assert_eq!(c.variants.attn_softcap, None);
        assert_eq!(c.qk_norm, QkNorm::PerHead);
        // transformers 4's spelling: top-level bases, the pattern instead of layer_types.
        let mut old = gemma2();
        old["model_type"] = json!("gemma3_text");
        old["sliding_window_pattern"] = json!(2);
        old["rope_local_base_freq"] = json!(5000.0);
        let c = llama(&old).unwrap();
        assert_eq!(c.rope_theta, 1e6);
        assert_eq!(c.variants.local_rope, Some((5000.0, None)));
        assert_eq!(c.variants.layer_windows, vec![Some(4), None, Some(4), None]);
    }

    #[test]
    fn unsupported_gemma_fields_are_named() {
        for (field, bad) in [
            ("hidden_activation", json!("relu")),
            ("layer_types", json!(["full_attention"])),
            ("layer_types", json!(["x", "x", "x", "x"])),
            ("sliding_window", json!(null)),
            ("attn_logit_softcapping", json!(-1.0)),
            ("query_pre_attn_scalar", json!(0)),
            ("use_bidirectional_attention", json!(true)),
        ] {
            let mut v = gemma2();
            v[field] = bad;
            let err = llama(&v).unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
        let mut v = gemma2();
        v["model_type"] = json!("gemma3_text");
        v["rope_parameters"] = json!({"full_attention": {"rope_type": "yarn", "factor": 2.0}});
        let err = llama(&v).unwrap_err().to_string();
        assert!(
            err.contains("rope_parameters.full_attention.rope_type"),
            "{err}"
        );
    }
}
