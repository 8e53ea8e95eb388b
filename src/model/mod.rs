//! The maskable transformer runtime: our own decoders (Llama-style and GPT-2) on Candle, written so
//! that every query head's output can be scaled per batch row before `o_proj`, and input tokens
//! replaced per row by a baseline token.
//!
//! - [`Model`]: one loaded model (weights, tokenizer, device), stateless between calls.
//! - [`HeadMask`] `[B, L, H]` and [`TokenMask`] `[B, T]`: one ablation per row.
//! - [`Model::forward_ablated`]: B ablations of one prompt -> last-position logits `[B][K]`.
//! - [`Model::run`]: many (prompt, ablation) jobs, batched under a token budget, with layer reuse
//!   (layers below a job's lowest masked layer come from one clean run per prompt) and key/value
//!   prefix reuse (positions before the first replaced token).

mod batching;
mod config;
mod cpu_attention;
mod cpu_f32;
mod decoder;
mod device;
mod engine;
mod error;
pub mod gguf;
mod gpt2;
#[cfg(any(feature = "cuda", feature = "metal"))]
pub mod head_mask;
pub mod hub;
#[cfg(test)]
mod kernels_on_host;
mod llama;
mod load_error;
mod masks;
#[cfg(test)]
mod oom_retry_tests;
mod projection;
mod ragged;
mod safetensors_reader;
#[cfg(test)]
mod seeded;
#[cfg(target_arch = "x86_64")]
pub mod sgemm;
pub mod source;
mod swiglu;
#[cfg(test)]
pub(crate) mod tiny_gguf;
pub mod tokenizer;
mod weights;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use tokenizers::Tokenizer;

pub use config::{Config, Gpt2Config, LlamaConfig, RopeScaling, SpecialIds};
pub use device::{default_dtype, DTypeChoice, DeviceChoice};
pub use engine::{logsumexp, HeadMeans, Job, RunOptions};
pub use error::{ModelError, ModelResult};
pub use load_error::LoadError;
pub use masks::{HeadMask, TokenMask};
pub use weights::{safetensors_files, Weights};

use batching::BatchLimit;
use decoder::Decoder;

/// What to read out at each row's last prompt position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readout {
    /// The whole vocabulary: `[B][V]` logits.
    Full,
    /// Only these token ids, in this order: `[B][K]` logits.
    Tokens(Vec<u32>),
    /// These token ids' logits, then the full-vocabulary logsumexp: `[B][K + 1]` (nats).
    TokensAndLogsumexp(Vec<u32>),
}

/// Shape and special tokens of a loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// `model_type` from the config (llama, mistral, qwen2, qwen3, gpt2).
    pub arch: String,
    /// Decoder layers L.
    pub n_layers: usize,
    /// Query heads per layer H.
    pub n_heads: usize,
    /// Key/value heads per layer (H without grouped-query attention).
    pub n_kv_heads: usize,
    /// Per-head width Dh.
    pub head_dim: usize,
    /// Residual width D.
    pub d_model: usize,
    /// Vocabulary size V (rows of the unembedding).
    pub vocab: usize,
    /// Longest prompt in tokens.
    pub max_positions: usize,
    /// Special token ids from the config (and the tokenizer's `<unk>` when it has one).
    pub special: SpecialIds,
    /// The tokenizer's unknown token id, if any.
    pub unk: Option<u32>,
    /// The default baseline token that replaces removed tokens.
    pub baseline_token: u32,
    /// Where the baseline token comes from (`pad_token_id`, `unk`, `eos_token_id` or `id 0`).
    pub baseline_source: String,
}

/// A loaded maskable model; stateless between calls, so `&self` serves every batch.
pub struct Model {
    decoder: Box<dyn Decoder>,
    info: ModelInfo,
    tokenizer: Tokenizer,
    device: Device,
    dtype: DType,
    /// Positions per batch that fit on the device, learned from out-of-memory failures.
    batch_limit: BatchLimit,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("info", &self.info)
            .field("device", &self.device)
            .field("dtype", &self.dtype)
            .finish()
    }
}

impl Model {
    /// Loads a Hugging Face folder: `config.json`, `tokenizer.json`, and `model.safetensors` or a
    /// sharded `model.safetensors.index.json`. Weights are memory-mapped and converted to `dtype`.
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> ModelResult<Model> {
        if !dir.is_dir() {
            return Err(ModelError::MissingFile {
                path: dir.to_path_buf(),
                what: "model folder".into(),
            });
        }
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            return Err(ModelError::MissingFile {
                path: config_path,
                what: "config.json".into(),
            });
        }
        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.is_file() {
            return Err(ModelError::MissingFile {
                path: tokenizer_path,
                what: "tokenizer.json".into(),
            });
        }
        let config = Config::from_file(&config_path)?;
        let tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| ModelError::Tokenizer {
                path: tokenizer_path.display().to_string(),
                reason: e.to_string(),
            })?;
        let weights = Weights::from_folder(dir, dtype, device)?;
        Model::build(
            config,
            &weights,
            tokenizer,
            &tokenizer_path.display().to_string(),
            device,
            dtype,
        )
    }

    /// Loads a model from wherever `source` points: a Hugging Face folder (memory-mapped
    /// safetensors) or a GGUF file (dequantized to f32 at load, then converted to `dtype`).
    pub fn open(
        source: &source::ModelSource,
        device: &Device,
        dtype: DType,
    ) -> crate::Result<Model> {
        match source {
            source::ModelSource::Folder { config, .. } => {
                let dir = config.parent().unwrap_or_else(|| Path::new("."));
                Ok(Model::load(dir, device, dtype)?)
            }
            source::ModelSource::Gguf(path) => {
                let g = gguf::load_gguf(path, device)?;
                let origin = path.display().to_string();
                Ok(Model::from_parts(
                    &g.config_json,
                    g.tensors,
                    g.tokenizer,
                    &origin,
                    device,
                    dtype,
                )?)
            }
        }
    }

    /// Builds a model from parts already in memory: a config.json value, tensors keyed by Hugging Face
    /// names (e.g. dequantized from a GGUF file) and a tokenizer. `origin` is named in errors.
    pub fn from_parts(
        config_json: &serde_json::Value,
        tensors: HashMap<String, Tensor>,
        tokenizer: Tokenizer,
        origin: &str,
        device: &Device,
        dtype: DType,
    ) -> ModelResult<Model> {
        let config = Config::from_json(config_json, origin)?;
        let weights = Weights::from_tensors(tensors, dtype, device);
        Model::build(config, &weights, tokenizer, origin, device, dtype)
    }

    fn build(
        config: Config,
        weights: &Weights,
        tokenizer: Tokenizer,
        tokenizer_origin: &str,
        device: &Device,
        dtype: DType,
    ) -> ModelResult<Model> {
        let (decoder, mut info): (Box<dyn Decoder>, ModelInfo) = match config {
            Config::Llama(c) => {
                let info = ModelInfo {
                    arch: c.model_type.clone(),
                    n_layers: c.num_hidden_layers,
                    n_heads: c.num_attention_heads,
                    n_kv_heads: c.num_key_value_heads,
                    head_dim: c.head_dim,
                    d_model: c.hidden_size,
                    vocab: c.vocab_size,
                    max_positions: 0,
                    special: c.special.clone(),
                    unk: None,
                    baseline_token: 0,
                    baseline_source: String::new(),
                };
                (
                    Box::new(llama::Llama::new(c, weights, dtype, device)?),
                    info,
                )
            }
            Config::Gpt2(c) => {
                let info = ModelInfo {
                    arch: "gpt2".into(),
                    n_layers: c.n_layer,
                    n_heads: c.n_head,
                    n_kv_heads: c.n_head,
                    head_dim: c.n_embd / c.n_head,
                    d_model: c.n_embd,
                    vocab: c.vocab_size,
                    max_positions: 0,
                    special: c.special.clone(),
                    unk: None,
                    baseline_token: 0,
                    baseline_source: String::new(),
                };
                (Box::new(gpt2::Gpt2::new(c, weights)?), info)
            }
        };
        let tok_vocab = tokenizer.get_vocab_size(true);
        if tok_vocab > info.vocab {
            return Err(ModelError::Tokenizer {
                path: tokenizer_origin.to_string(),
                reason: format!(
                    "{tok_vocab} tokens but the model's vocab_size is {}: the tokenizer does not belong to this model",
                    info.vocab
                ),
            });
        }
        info.max_positions = decoder.max_positions();
        info.unk = tokenizer.token_to_id("<unk>");
        let (id, source) = match (info.special.pad, info.unk, info.special.eos) {
            (Some(p), _, _) => (p, "pad_token_id"),
            (None, Some(u), _) => (u, "unk"),
            (None, None, Some(e)) => (e, "eos_token_id"),
            (None, None, None) => (0, "id 0"),
        };
        info.baseline_token = id;
        info.baseline_source = source.to_string();
        Ok(Model {
            decoder,
            info,
            tokenizer,
            device: device.clone(),
            dtype,
            batch_limit: BatchLimit::default(),
        })
    }

    /// Shape and special tokens.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The tokenizer loaded with the model.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The most positions per batch (rows x widest row) that fit on the device, once an
    /// out-of-memory failure has lowered it; `None` while every batch has fit.
    pub fn batch_limit(&self) -> Option<usize> {
        Some(self.batch_limit.get()).filter(|&l| l != usize::MAX)
    }

    /// Token ids of `text` with no special tokens added (as `add_special_tokens=False`).
    pub fn encode(&self, text: &str) -> ModelResult<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| ModelError::Tokenizer {
                path: "tokenizer".into(),
                reason: format!("cannot encode the prompt: {e}"),
            })?;
        Ok(enc.get_ids().to_vec())
    }
}
