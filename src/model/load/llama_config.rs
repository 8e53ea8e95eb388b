//! The Llama-family config (llama, mistral, qwen2, qwen3, olmo2, phi3, and the base that
//! [`gemma_config`](super::gemma_config) extends): its fields, the block's variants, and how
//! config.json's fields become them, errors naming the field.

use std::path::Path;

use serde::Deserialize;

use super::config_fields::{positive, rope_tables_fit, RopeFields, RopeScaling, SpecialIds};
use crate::model::error::{ModelError, ModelResult};

/// Config of the generic Llama-style decoder (llama, mistral, qwen2, qwen3, olmo2, phi3, gemma2,
/// gemma3_text).
#[derive(Debug, Clone)]
pub struct LlamaConfig {
    /// `model_type` as written in config.json.
    pub model_type: String,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Residual width D.
    pub hidden_size: usize,
    /// MLP inner width.
    pub intermediate_size: usize,
    /// Number of decoder layers L.
    pub num_hidden_layers: usize,
    /// Query heads H.
    pub num_attention_heads: usize,
    /// Key/value heads (H for plain multi-head attention).
    pub num_key_value_heads: usize,
    /// Per-head width Dh.
    pub head_dim: usize,
    /// Dimensions of each head that RoPE rotates: Dh, or a fraction of it (Phi-3's
    /// `partial_rotary_factor`).
    pub rotary_dims: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// RoPE base.
    pub rope_theta: f64,
    /// Optional RoPE scaling.
    pub rope_scaling: Option<RopeScaling>,
    /// Longest supported position (tokens).
    pub max_position_embeddings: usize,
    /// Whether lm_head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Whether q/k/v projections carry a bias.
    pub qkv_bias: bool,
    /// Whether o_proj carries a bias.
    pub o_bias: bool,
    /// Whether the MLP projections carry a bias.
    pub mlp_bias: bool,
    /// How q and k are RMS-normalised before RoPE: not at all, per head (qwen3) or over the
    /// whole projection (olmo2).
    pub qk_norm: QkNorm,
    /// Where the blocks' RMSNorms sit.
    pub norms: NormPlacement,
    /// Where the block departs from Llama's (Gemma 2 and 3).
    pub variants: BlockVariants,
    /// Special token ids from config.json.
    pub special: SpecialIds,
}

/// Where a Llama-family block's RMSNorms sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormPlacement {
    /// On each sublayer's input (Llama: `input_layernorm`, `post_attention_layernorm`).
    Inputs,
    /// On each sublayer's output before it joins the residual (OLMo 2:
    /// `post_attention_layernorm`, `post_feedforward_layernorm`).
    Outputs,
    /// On both (Gemma 2 and 3: `input_layernorm`, `post_attention_layernorm`,
    /// `pre_feedforward_layernorm`, `post_feedforward_layernorm`).
    Both,
}

/// The activation on the MLP's gate projection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GateActivation {
    /// SiLU: the SwiGLU MLP of Llama.
    #[default]
    Silu,
    /// GELU, tanh approximation (`gelu_pytorch_tanh`): Gemma's GeGLU.
    GeluTanh,
}

/// Where Gemma 2 and 3 depart from the Llama block; `Default` is Llama's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockVariants {
    /// Added to every RMSNorm weight: 1 for Gemma's `normed x (1 + w)`, else 0.
    pub norm_offset: f64,
    /// Factor on the token embeddings (Gemma: sqrt(hidden_size)).
    pub embed_scale: Option<f64>,
    /// Attention scores are scaled by 1/sqrt(this) instead of 1/sqrt(head_dim)
    /// (`query_pre_attn_scalar`).
    pub query_pre_attn_scalar: Option<f64>,
    /// Soft cap c on the attention scores, `c tanh(s / c)` (`attn_logit_softcapping`).
    pub attn_softcap: Option<f64>,
    /// Soft cap on the final logits (`final_logit_softcapping`).
    pub final_softcap: Option<f64>,
    /// The MLP gate's activation.
    pub gate_activation: GateActivation,
    /// Each layer's sliding window (tokens), honoured in attention at any prompt length; empty
    /// where no layer has one. Mistral and Phi-3 window every layer, Qwen2/3 (with
    /// `use_sliding_window`) the layers from `max_window_layers` on, Gemma its sliding layers.
    pub layer_windows: Vec<Option<usize>>,
    /// The sliding-window layers' own RoPE (base, scaling) where it differs from the global
    /// layers' (Gemma 3's local base).
    pub local_rope: Option<(f64, Option<RopeScaling>)>,
}

/// How a Llama-family decoder normalises q and k before RoPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkNorm {
    /// No q/k norm.
    None,
    /// An RMSNorm over each head's `Dh` dimensions (qwen3).
    PerHead,
    /// An RMSNorm over the whole projection, `H Dh` (or `Hkv Dh`) dimensions (olmo2).
    Whole,
}

#[derive(Deserialize)]
pub(super) struct RawLlama {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: f64,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    hidden_act: Option<String>,
    sliding_window: Option<usize>,
    use_sliding_window: Option<bool>,
    max_window_layers: Option<usize>,
    pub(super) layer_types: Option<Vec<String>>,
}

/// The Llama-family config of `raw`, its RoPE read as `rope`; the block's variants are Llama's.
pub(super) fn llama_from_raw(
    raw: RawLlama,
    model_type: String,
    special: SpecialIds,
    rope: RopeFields,
    origin: &Path,
) -> ModelResult<LlamaConfig> {
    let heads = positive(raw.num_attention_heads, "num_attention_heads", origin)?;
    let kv_heads = positive(
        raw.num_key_value_heads.unwrap_or(heads),
        "num_key_value_heads",
        origin,
    )?;
    if heads % kv_heads != 0 {
        return Err(ModelError::field(
            origin,
            "num_key_value_heads",
            format!("{kv_heads} does not divide num_attention_heads = {heads}"),
        ));
    }
    let hidden = positive(raw.hidden_size, "hidden_size", origin)?;
    let head_dim = match raw.head_dim {
        Some(d) => positive(d, "head_dim", origin)?,
        None if hidden % heads == 0 => hidden / heads,
        None => {
            return Err(ModelError::field(
                origin,
                "hidden_size",
                format!("{hidden} is not a multiple of num_attention_heads = {heads} and no head_dim is given"),
            ))
        }
    };
    if head_dim % 2 != 0 {
        return Err(ModelError::field(
            origin,
            "head_dim",
            "must be even for RoPE",
        ));
    }
    let rotary_dims = rope.rotary_dims(head_dim, "partial_rotary_factor", origin)?;
    if let Some(act) = raw.hidden_act.as_deref() {
        if act != "silu" {
            return Err(ModelError::field(
                origin,
                "hidden_act",
                format!("`{act}` is not supported (silu)"),
            ));
        }
    }
    let vocab = positive(raw.vocab_size, "vocab_size", origin)?;
    let ffn = positive(raw.intermediate_size, "intermediate_size", origin)?;
    let positions = raw.max_position_embeddings.unwrap_or(4096);
    // Every weight's element count must be countable, and the RoPE tables (angles, cos, sin:
    // positions x head_dim / 2 f32 each) must be of a size a machine can hold: a context length
    // of 2^50 would otherwise abort in the allocator.
    for (field, a, b) in [
        ("num_attention_heads", heads, head_dim),
        ("vocab_size", vocab, hidden),
        ("intermediate_size", ffn, hidden),
        ("max_position_embeddings", positions, head_dim),
    ] {
        let elements = a
            .checked_mul(b)
            .and_then(|e| e.checked_mul(hidden.max(head_dim)));
        if elements.is_none() {
            return Err(ModelError::field(
                origin,
                field,
                format!(
                    "{a} x {b} x {} elements overflow a count of the weights",
                    hidden.max(head_dim)
                ),
            ));
        }
    }
    rope_tables_fit(positions, head_dim, origin)?;
    let is_qwen2 = model_type == "qwen2";
    let layers = positive(raw.num_hidden_layers, "num_hidden_layers", origin)?;
    let layer_windows = layer_windows(&raw, &model_type, layers, origin)?;
    Ok(LlamaConfig {
        vocab_size: vocab,
        hidden_size: hidden,
        intermediate_size: ffn,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        head_dim,
        rotary_dims,
        rms_norm_eps: raw.rms_norm_eps,
        rope_theta: rope.theta,
        rope_scaling: rope.scaling,
        max_position_embeddings: positions,
        tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
        // Qwen2 always has q/k/v biases (its config has no field for them).
        qkv_bias: is_qwen2 || raw.attention_bias.unwrap_or(false),
        o_bias: !is_qwen2 && raw.attention_bias.unwrap_or(false),
        mlp_bias: raw.mlp_bias.unwrap_or(false),
        qk_norm: match model_type.as_str() {
            "qwen3" => QkNorm::PerHead,
            "olmo2" => QkNorm::Whole,
            _ => QkNorm::None,
        },
        norms: match model_type.as_str() {
            "olmo2" => NormPlacement::Outputs,
            _ => NormPlacement::Inputs,
        },
        variants: BlockVariants {
            layer_windows,
            ..BlockVariants::default()
        },
        special,
        model_type,
    })
}

/// Each layer's sliding window as transformers applies it: every layer for mistral and phi3 when
/// `sliding_window` is set; for qwen2 and qwen3 with `use_sliding_window`, the layers that
/// `layer_types` marks `sliding_attention`, else those from `max_window_layers` (default 28) on;
/// none for the others (Llama's attention has no window). Empty where no layer has one.
fn layer_windows(
    raw: &RawLlama,
    model_type: &str,
    layers: usize,
    origin: &Path,
) -> ModelResult<Vec<Option<usize>>> {
    let Some(window) = raw.sliding_window else {
        return Ok(Vec::new());
    };
    let window = positive(window, "sliding_window", origin)?;
    let sliding: Vec<bool> = match model_type {
        "mistral" | "phi3" => vec![true; layers],
        "qwen2" | "qwen3" if raw.use_sliding_window == Some(true) => match &raw.layer_types {
            Some(types) => sliding_from_layer_types(types, layers, origin)?,
            None => {
                let first = raw.max_window_layers.unwrap_or(28);
                (0..layers).map(|l| l >= first).collect()
            }
        },
        _ => return Ok(Vec::new()),
    };
    Ok(match sliding.iter().any(|&s| s) {
        true => sliding.iter().map(|&s| s.then_some(window)).collect(),
        false => Vec::new(),
    })
}

/// Which layers `layer_types` (one entry per layer, `sliding_attention` or `full_attention`)
/// marks sliding; any other entry or length is an error naming the field.
pub(super) fn sliding_from_layer_types(
    types: &[String],
    layers: usize,
    origin: &Path,
) -> ModelResult<Vec<bool>> {
    if types.len() != layers {
        return Err(ModelError::field(
            origin,
            "layer_types",
            format!("{} entries for num_hidden_layers = {layers}", types.len()),
        ));
    }
    types
        .iter()
        .map(|t| match t.as_str() {
            "sliding_attention" => Ok(true),
            "full_attention" => Ok(false),
            other => Err(ModelError::field(
                origin,
                "layer_types",
                format!("`{other}` is not supported (sliding_attention, full_attention)"),
            )),
        })
        .collect()
}
