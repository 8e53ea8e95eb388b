//! Model loading: where a model comes from ([`source`], [`hub`]), GGUF files ([`gguf`]) and
//! tokenizers ([`tokenizer`]).

pub mod error;
pub mod gguf;
pub mod hub;
pub mod source;
pub mod tokenizer;

pub use error::LoadError;

#[cfg(test)]
pub(crate) mod tiny_gguf;
