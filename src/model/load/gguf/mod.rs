//! GGUF files (llama.cpp's format): [`metadata`] with typed accessors, the loader in [`read`] that
//! turns a file into Hugging Face form, and a header scan that explains, for error messages only,
//! which tensor has a quantization type candle cannot read.

mod header_scan;
pub mod metadata;
pub mod read;

pub use metadata::GgufMetadata;
pub use read::{load_gguf, unpermute_rows, GgufModel};
