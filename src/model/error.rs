//! Errors of the model runtime: each variant names the file, field, tensor or argument at fault.

use std::path::PathBuf;

/// Errors raised while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file the model needs is absent.
    #[error("{path}: missing {what}")]
    MissingFile {
        /// The path that was looked for.
        path: PathBuf,
        /// What the file is (e.g. `config.json`).
        what: String,
    },

    /// A file exists but could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file at fault.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A config field is missing, of the wrong type or out of range.
    #[error("{path}: field `{field}`: {reason}")]
    Config {
        /// The config file (or its origin, e.g. a GGUF file).
        path: String,
        /// The field at fault.
        field: String,
        /// What is wrong.
        reason: String,
    },

    /// The config's `model_type` is not one this runtime implements.
    #[error("{path}: field `model_type`: unknown model type `{model_type}` (supported: llama, mistral, qwen2, qwen3, gpt2)")]
    UnknownModelType {
        /// The config file.
        path: String,
        /// The value found.
        model_type: String,
    },

    /// A weight the architecture needs is not in the checkpoint.
    #[error("weights: missing tensor `{tensor}`")]
    MissingWeight {
        /// The tensor's checkpoint name.
        tensor: String,
    },

    /// A weight has a shape other than the config implies.
    #[error("weights: tensor `{tensor}` has shape {got:?}, expected {expected:?} from the config")]
    WeightShape {
        /// The tensor's checkpoint name.
        tensor: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape found in the checkpoint.
        got: Vec<usize>,
    },

    /// The tokenizer could not be loaded or does not fit the model.
    #[error("{path}: tokenizer: {reason}")]
    Tokenizer {
        /// The tokenizer file (or its origin).
        path: String,
        /// What is wrong.
        reason: String,
    },

    /// A device was asked for that this build or machine cannot provide.
    #[error("--device {device}: {reason}")]
    Device {
        /// The device asked for.
        device: String,
        /// Why it is not available.
        reason: String,
    },

    /// A mask, prompt or readout argument does not fit the model.
    #[error("invalid `{arg}`: {reason}")]
    InvalidInput {
        /// The argument's name.
        arg: String,
        /// What is wrong.
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

    /// Shorthand for [`ModelError::Config`].
    pub fn config(path: &str, field: &str, reason: impl Into<String>) -> Self {
        ModelError::Config {
            path: path.to_string(),
            field: field.to_string(),
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
