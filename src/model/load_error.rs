//! Errors raised while finding and loading a model: each names the file and the field or tensor at fault.

use std::path::PathBuf;

/// A model could not be found or loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or folder the model needs does not exist.
    #[error("{path}: {what} not found{hint}")]
    Missing {
        /// The path that was looked for.
        path: PathBuf,
        /// What it should have been (e.g. `config.json`, `the default model`).
        what: String,
        /// Advice on how to get it, starting with "; " (empty when there is none).
        hint: String,
    },

    /// A file exists but could not be read or parsed.
    #[error("{path}: {reason}")]
    Unreadable {
        /// The file at fault.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A metadata field or JSON field is missing or has the wrong type or value.
    #[error("{path}: field `{field}`: {reason}")]
    Field {
        /// The file at fault.
        path: PathBuf,
        /// The field's key (e.g. `llama.block_count`, `weight_map`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The model's architecture is not one spex implements.
    #[error(
        "{path}: field `{field}`: unsupported architecture `{value}` (supported: {supported})"
    )]
    UnsupportedArchitecture {
        /// The file at fault.
        path: PathBuf,
        /// The field holding the architecture (e.g. `general.architecture`).
        field: String,
        /// The value found.
        value: String,
        /// The accepted values, comma separated.
        supported: String,
    },

    /// A GGUF tensor is stored in a quantization type spex cannot dequantize.
    #[error("{path}: tensor `{tensor}`: unsupported quantization type {dtype} (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K)")]
    UnsupportedQuantization {
        /// The file at fault.
        path: PathBuf,
        /// The tensor's name as stored in the file.
        tensor: String,
        /// The type's name and GGML id, e.g. `IQ2_XXS (id 16)`.
        dtype: String,
    },

    /// A tensor the architecture needs is absent.
    #[error("{path}: tensor `{tensor}` is missing")]
    MissingTensor {
        /// The file at fault.
        path: PathBuf,
        /// The tensor's name as stored in the file.
        tensor: String,
    },

    /// A tensor the architecture does not use is present (loading it silently could hide a wrong model).
    #[error("{path}: tensor `{tensor}` is not part of a supported {arch} model")]
    UnexpectedTensor {
        /// The file at fault.
        path: PathBuf,
        /// The tensor's name as stored in the file.
        tensor: String,
        /// The architecture the file declares.
        arch: String,
    },

    /// A tensor's shape disagrees with the model's configuration.
    #[error("{path}: tensor `{tensor}` has shape {found:?}, expected {expected:?}")]
    TensorShape {
        /// The file at fault.
        path: PathBuf,
        /// The tensor's name as stored in the file.
        tensor: String,
        /// The shape the configuration implies (row-major).
        expected: Vec<usize>,
        /// The shape in the file (row-major).
        found: Vec<usize>,
    },

    /// The tokenizer is unusable or disagrees with the model.
    #[error("{path}: tokenizer: {reason}")]
    Tokenizer {
        /// The file at fault (tokenizer.json or the GGUF).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// An `org/name` model id is not in the local Hugging Face cache.
    #[error("model `{repo}` is not in the Hugging Face cache at {cache}: {reason} (spex never downloads; pass a folder or a .gguf file, or download the model into that cache first)")]
    NotInCache {
        /// The model id as given.
        repo: String,
        /// The hub cache folder searched.
        cache: PathBuf,
        /// What is missing there.
        reason: String,
    },
}
