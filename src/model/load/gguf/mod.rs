//! GGUF files (llama.cpp's format): the metadata with typed accessors ([`GgufMetadata`]), the
//! loader that turns a file into Hugging Face form ([`load_gguf`]), and a header scan that
//! explains, for error messages only, which tensor has a quantization type candle cannot read.

mod header_scan;
mod metadata;
mod read;

pub use metadata::GgufMetadata;
#[cfg(test)]
pub(crate) use read::read_gguf;
pub use read::{load_gguf, unpermute_rows, GgufModel};
