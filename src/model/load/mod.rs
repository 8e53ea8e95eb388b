//! Finding and loading a model: [`source`] resolves where it is once (a Hugging Face folder, an
//! `org/name` in the [`hub`] cache or [`download`]ed into it, a GGUF file or the default model); the config, the weights
//! (safetensors through [`weights`], or [`gguf`]) and the [`tokenizer`] are read from exactly
//! the paths it found.

pub mod config;
mod config_fields;
pub mod download;
mod gemma_config;
pub mod gguf;
mod gpt_neox_config;
pub mod hub;
mod llama_config;
pub(super) mod safetensors;
pub mod source;
pub mod tokenizer;
pub mod weights;
