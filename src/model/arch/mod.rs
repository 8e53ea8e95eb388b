//! The architectures: the `Decoder` interface the engine drives, the Llama family
//! (llama, mistral, qwen2, qwen3), GPT-2 and GPT-NeoX, the plain tensor-op attention, rotary
//! position tables, and the ragged-batch helpers the blocks use to skip padding.

pub(super) mod attention;
pub(super) mod decoder;
pub(super) mod gpt2;
pub(super) mod gpt_neox;
pub(super) mod head_op;
pub(super) mod llama;
pub(super) mod ragged;
pub(super) mod rope;
