//! The one error type of `model/`: finding, loading and running a model; each variant names the
//! file, field, tensor or argument at fault (never a command-line flag: the CLI adds those).

use std::path::PathBuf;

/// Errors raised while finding, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file or folder the model needs does not exist.
    #[error("{path}: {what} not found{hint}")]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
        /// What it should have been (e.g. `config.json`, `the default model`).
        what: String,
        /// Advice on how to get it, starting with "; " (empty when there is none).
        hint: String,
    },

    /// A file exists but could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file at fault.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A field of a config, index or metadata file is missing, of the wrong type or out of range.
    #[error("{path}: field `{field}`: {reason}")]
    Field {
        /// The file at fault (config.json, a GGUF file, an index).
        path: PathBuf,
        /// The field's key (e.g. `hidden_size`, `llama.block_count`, `weight_map`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The model's architecture is not one this runtime implements.
    #[error(
        "{path}: field `{field}`: unsupported architecture `{value}` (supported: {supported})"
    )]
    UnsupportedArchitecture {
        /// The file at fault.
        path: PathBuf,
        /// The field holding the architecture (`model_type`, `general.architecture`).
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

    /// A weight the architecture needs is not in the checkpoint.
    #[error("{path}: tensor `{tensor}` is missing")]
    MissingWeight {
        /// The checkpoint (model folder or GGUF file).
        path: PathBuf,
        /// The tensor's name in the checkpoint.
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

    /// A weight has a shape other than the config implies.
    #[error("{path}: tensor `{tensor}` has shape {got:?}, expected {expected:?} from the config")]
    WeightShape {
        /// The checkpoint (model folder or GGUF file).
        path: PathBuf,
        /// The tensor's name in the checkpoint.
        tensor: String,
        /// The shape the config implies (row-major).
        expected: Vec<usize>,
        /// The shape found in the checkpoint (row-major).
        got: Vec<usize>,
    },

    /// The tokenizer could not be loaded, does not fit the model or cannot encode a text.
    #[error("{path}: tokenizer: {reason}")]
    Tokenizer {
        /// The tokenizer's file (tokenizer.json or the GGUF).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// An `org/name` model id is not in the local Hugging Face cache.
    #[error("model `{repo}` is not in the Hugging Face cache at {cache}: {reason}")]
    NotInCache {
        /// The model id as given.
        repo: String,
        /// The hub cache folder searched.
        cache: PathBuf,
        /// What is missing there.
        reason: String,
    },
    /// A file of an `org/name` model could not be had from the Hugging Face Hub.
    #[error("model `{repo}` (revision {revision}): cannot get {file} from the Hugging Face Hub: {reason}")]
    Hub {
        /// The model id as given.
        repo: String,
        /// The branch, tag or commit asked for.
        revision: String,
        /// The file in the repository.
        file: String,
        /// What went wrong.
        reason: String,
    },

    /// A device was asked for that this build or machine cannot provide.
    #[error("device `{device}`: {reason}")]
    Device {
        /// The device asked for.
        device: String,
        /// Why it is not available.
        reason: String,
    },

    /// A mask, prompt, readout or option does not fit the model.
    #[error("invalid `{arg}`: {reason}")]
    InvalidInput {
        /// The field's or argument's name (e.g. `head_mask[3][1]`, `jobs[2].heads`, `dtype`).
        arg: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },

    /// One job's forward pass does not fit in the device's memory, even alone in its batch.
    #[error("{device}: one forward pass of {positions} positions does not fit in memory ({reason}); use shorter prompts or a device with more memory")]
    OutOfMemory {
        /// The device (`cuda`, `metal`, `cpu`).
        device: String,
        /// Positions in the failing batch (one row).
        positions: usize,
        /// The device's error.
        reason: String,
    },

    /// The run was stopped through [`Model::stop_flag`](crate::model::Model::stop_flag) before
    /// its next batch.
    #[error("stopped by the caller before the next batch")]
    Interrupted,

    /// A tensor operation failed.
    #[error("tensor operation failed: {}", candle_message(.0))]
    Candle(#[from] candle_core::Error),
}

/// A candle error's message without the backtrace candle attaches when `RUST_BACKTRACE` is set
/// (a user's error should be one line of cause, and equal from run to run).
pub fn candle_message(err: &candle_core::Error) -> String {
    use candle_core::Error;
    match err {
        Error::WithBacktrace { inner, .. } => candle_message(inner),
        Error::WithPath { inner, path } => format!("path: {path:?} {}", candle_message(inner)),
        Error::Context { inner, context } => format!("{context}\n{}", candle_message(inner)),
        other => other.to_string(),
    }
}

impl ModelError {
    /// Shorthand for [`ModelError::InvalidInput`].
    pub fn input(arg: impl Into<String>, reason: impl Into<String>) -> Self {
        ModelError::InvalidInput {
            arg: arg.into(),
            reason: reason.into(),
        }
    }

    /// Whether a tensor operation failed because the device ran out of memory: CUDA
    /// (`CUDA_ERROR_OUT_OF_MEMORY`), cuBLAS (`CUBLAS_STATUS_ALLOC_FAILED`) or Metal (a buffer
    /// that could not be created, a command buffer out of memory), as candle reports them.
    pub fn is_out_of_memory(&self) -> bool {
        const SIGNS: [&str; 5] = [
            "OUT_OF_MEMORY",
            "out of memory",
            "ALLOC_FAILED",
            "Failed to create metal resource: Buffer",
            "Insufficient Memory",
        ];
        match self {
            ModelError::Candle(e) => {
                let text = candle_message(e);
                SIGNS.iter().any(|s| text.contains(s))
            }
            _ => false,
        }
    }

    /// Shorthand for [`ModelError::Field`]: field `field` of the file `path`.
    pub fn field(path: impl Into<PathBuf>, field: &str, reason: impl Into<String>) -> Self {
        ModelError::Field {
            path: path.into(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ModelError::MissingFile`] without a hint.
    pub fn missing(path: impl Into<PathBuf>, what: &str) -> Self {
        ModelError::MissingFile {
            path: path.into(),
            what: what.to_string(),
            hint: String::new(),
        }
    }

    /// Shorthand for [`ModelError::File`].
    pub fn file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ModelError::File {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias for the model runtime.
pub type ModelResult<T> = std::result::Result<T, ModelError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn candle(text: &str) -> ModelError {
        ModelError::Candle(candle_core::Error::Msg(text.to_string()))
    }

    #[test]
    fn candle_backtraces_stay_out_of_messages() {
        let with_trace = candle_core::Error::WithBacktrace {
            inner: Box::new(candle_core::Error::Msg("shape mismatch".into())),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert!(with_trace.to_string().len() > "shape mismatch".len());
        let wrapped = with_trace.with_path("w.safetensors");
        assert_eq!(
            ModelError::Candle(wrapped).to_string(),
            "tensor operation failed: path: \"w.safetensors\" shape mismatch"
        );
    }

    #[test]
    fn out_of_memory_is_recognised_as_each_backend_reports_it() {
        for text in [
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")",
            "CublasError(CUBLAS_STATUS_ALLOC_FAILED)",
            "Failed to create metal resource: Buffer",
            "Command buffer had following error: Insufficient Memory (00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory)",
        ] {
            assert!(candle(text).is_out_of_memory(), "{text}");
        }
        assert!(!candle("shape mismatch in matmul").is_out_of_memory());
        assert!(!ModelError::input("prompt", "out of memory").is_out_of_memory());
    }
}
