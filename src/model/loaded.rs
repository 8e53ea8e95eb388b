//! A loaded model: [`Model`] (decoder, tokenizer, device, dtype) and its [`ModelInfo`], opened
//! from the paths a [`ModelSource`] resolved, or built from parts already in memory.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Tensor};
use tokenizers::Tokenizer;

use crate::model::arch::decoder::Decoder;
use crate::model::arch::gpt2::Gpt2;
use crate::model::arch::gpt_neox::GptNeox;
use crate::model::arch::llama::Llama;
use crate::model::batching::BatchLimit;
use crate::model::cpu::features::{CpuFeatures, Products};
use crate::model::cpu::projection::Projection;
use crate::model::error::{ModelError, ModelResult};
use crate::model::load::config::{Config, SpecialIds};
use crate::model::load::gguf::load_gguf;
use crate::model::load::source::ModelSource;
use crate::model::load::tokenizer::load_tokenizer;
use crate::model::load::weights::Weights;

/// Shape and special tokens of a loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// `model_type` from the config (llama, mistral, qwen2, qwen3, olmo2, phi3, gemma2,
    /// gemma3_text, gpt2, gpt_neox).
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
    /// Whether [`Model::encode`] starts every text with the BOS token: for the Gemma family,
    /// which is unusable without it (lm-evaluation-harness adds it for them alone).
    pub bos_first: bool,
    /// The tokenizer's unknown token id, if any.
    pub unk: Option<u32>,
    /// The default baseline token that replaces removed tokens.
    pub baseline_token: u32,
    /// Where the baseline token comes from (`pad_token_id`, `unk`, `eos_token_id` or `id 0`).
    pub baseline_source: String,
}

/// A loaded maskable model; stateless between calls, so `&self` serves every batch.
pub struct Model {
    pub(super) decoder: Box<dyn Decoder>,
    pub(super) info: ModelInfo,
    pub(super) tokenizer: Tokenizer,
    pub(super) device: Device,
    pub(super) dtype: DType,
    /// The dtype of the model's tensors: `dtype`, except bf16 on the CPU, which holds f32
    /// tensors and multiplies the projections in bf16.
    pub(super) compute_dtype: DType,
    /// Positions per batch that fit on the device, learned from out-of-memory failures.
    pub(super) batch_limit: BatchLimit,
    /// Set from any thread to stop every run before its next batch.
    pub(super) stop: Arc<AtomicBool>,
    /// The features the CPU products may use (`SPEX_CPU_KERNELS` applied).
    pub(super) features: CpuFeatures,
    /// The whole unembedding `[V, D]` as an f32 product, built at the first readout that needs
    /// every logit (packed for the CPU kernels: the readout's largest product).
    pub(super) full_unembed: OnceLock<Projection>,
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

impl ModelInfo {
    /// The shape and special ids `config` states; what depends on the loaded decoder and
    /// tokenizer (longest prompt, `<unk>`, baseline token) is left for [`Model`] to fill in.
    fn of(config: &Config) -> ModelInfo {
        let (arch, n_layers, n_heads, n_kv_heads, head_dim, d_model, vocab, special) = match config
        {
            Config::Llama(c) => (
                c.model_type.clone(),
                c.num_hidden_layers,
                c.num_attention_heads,
                c.num_key_value_heads,
                c.head_dim,
                c.hidden_size,
                c.vocab_size,
                &c.special,
            ),
            Config::Gpt2(c) => (
                "gpt2".to_string(),
                c.n_layer,
                c.n_head,
                c.n_head,
                c.n_embd / c.n_head,
                c.n_embd,
                c.vocab_size,
                &c.special,
            ),
            Config::GptNeox(c) => (
                "gpt_neox".to_string(),
                c.num_hidden_layers,
                c.num_attention_heads,
                c.num_attention_heads,
                c.head_dim,
                c.hidden_size,
                c.vocab_size,
                &c.special,
            ),
        };
        let bos_first = arch.contains("gemma") && special.bos.is_some();
        ModelInfo {
            arch,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            d_model,
            vocab,
            max_positions: 0,
            bos_first,
            special: special.clone(),
            unk: None,
            baseline_token: 0,
            baseline_source: String::new(),
        }
    }
}

impl Model {
    /// Loads a model from exactly the files `source` resolved: a Hugging Face folder's config,
    /// tokenizer and safetensors (read tensor by tensor and converted to `dtype`), or a GGUF file
    /// (dequantized to f32 at load, then converted to `dtype`).
    pub fn open(source: &ModelSource, device: &Device, dtype: DType) -> ModelResult<Model> {
        match source {
            ModelSource::Folder {
                config,
                weights,
                tokenizer,
            } => {
                let config_value = Config::from_file(config)?;
                let tok = load_tokenizer(tokenizer)?;
                let (tensor_dtype, products) = numerics(device, dtype)?;
                let weights =
                    Weights::from_files(weights, tensor_dtype, device)?.with_products(products);
                Model::build(config_value, &weights, tok, tokenizer, device, dtype)
            }
            ModelSource::Gguf(path) => {
                let g = load_gguf(path, device)?;
                Model::from_parts(&g.config_json, g.tensors, g.tokenizer, path, device, dtype)
            }
        }
    }

    /// [`Model::open`] of the folder `dir` as [`ModelSource::from_folder`] resolves it (a Hugging
    /// Face folder, or a folder holding one `.gguf` file).
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> ModelResult<Model> {
        Model::open(&ModelSource::from_folder(dir)?, device, dtype)
    }

    /// Builds a model from parts already in memory: a config.json value, tensors keyed by Hugging Face
    /// names (e.g. dequantized from a GGUF file) and a tokenizer. `origin` is named in errors.
    pub fn from_parts(
        config_json: &serde_json::Value,
        tensors: HashMap<String, Tensor>,
        tokenizer: Tokenizer,
        origin: impl AsRef<Path>,
        device: &Device,
        dtype: DType,
    ) -> ModelResult<Model> {
        let origin = origin.as_ref();
        let config = Config::from_json(config_json, origin)?;
        let (tensor_dtype, products) = numerics(device, dtype)?;
        let weights =
            Weights::from_tensors(tensors, origin, tensor_dtype, device).with_products(products);
        Model::build(config, &weights, tokenizer, origin, device, dtype)
    }

    fn build(
        config: Config,
        weights: &Weights,
        tokenizer: Tokenizer,
        tokenizer_origin: &Path,
        device: &Device,
        dtype: DType,
    ) -> ModelResult<Model> {
        let mut info = ModelInfo::of(&config);
        let decoder: Box<dyn Decoder> = match config {
            Config::Llama(c) => Box::new(Llama::new(*c, weights, weights.dtype(), device)?),
            Config::Gpt2(c) => Box::new(Gpt2::new(c, weights)?),
            Config::GptNeox(c) => Box::new(GptNeox::new(c, weights, weights.dtype(), device)?),
        };
        let tok_vocab = tokenizer.get_vocab_size(true);
        if tok_vocab > info.vocab {
            return Err(ModelError::Tokenizer {
                path: tokenizer_origin.to_path_buf(),
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
            compute_dtype: weights.dtype(),
            batch_limit: BatchLimit::default(),
            stop: Arc::default(),
            features: weights.products().features,
            full_unembed: OnceLock::new(),
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

    /// The dtype asked for (`bf16` on the CPU: f32 tensors, bf16 projection products).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The most positions per batch (rows x widest row) that fit on the device, once an
    /// out-of-memory failure has lowered it; `None` while every batch has fit.
    pub fn batch_limit(&self) -> Option<usize> {
        Some(self.batch_limit.get()).filter(|&l| l != usize::MAX)
    }

    /// A flag that, once set (from any thread: a Ctrl-C handler, a UI), makes every run of this
    /// model stop before its next batch with [`ModelError::Interrupted`]; clear it to run again.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Token ids of `text` as lm-evaluation-harness encodes it: no special tokens added (as
    /// `add_special_tokens=False`), except the BOS token first where [`ModelInfo::bos_first`].
    pub fn encode(&self, text: &str) -> ModelResult<Vec<u32>> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| {
            ModelError::input("prompt", format!("the tokenizer cannot encode it: {e}"))
        })?;
        let bos = self.info.special.bos.filter(|_| self.info.bos_first);
        Ok(bos
            .into_iter()
            .chain(enc.get_ids().iter().copied())
            .collect())
    }
}

/// The dtype a model's tensors are held in, and how its projections multiply on the CPU, for
/// `dtype` on `device`: bf16 on the CPU keeps f32 tensors (norms, attention, softmax) and
/// multiplies the projections in bf16; the kernels may use what `SPEX_CPU_KERNELS` allows.
fn numerics(device: &Device, dtype: DType) -> ModelResult<(DType, Products)> {
    if !device.is_cpu() {
        return Ok((dtype, Products::f32_detected()));
    }
    let features = CpuFeatures::from_env()?;
    let bf16 = dtype == DType::BF16;
    let tensor_dtype = if bf16 { DType::F32 } else { dtype };
    Ok((tensor_dtype, Products { features, bf16 }))
}
