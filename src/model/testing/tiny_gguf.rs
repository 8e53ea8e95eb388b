//! Test support: writes a tiny llama GGUF (2 layers, d = 64, 4 query / 2 KV heads, a 15-token
//! byte-level BPE tokenizer) whose Hugging Face-layout weights are known.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Hidden size.
pub const HIDDEN: usize = 64;
/// Query heads.
pub const HEADS: usize = 4;
/// Key/value heads.
pub const KV_HEADS: usize = 2;
/// Head dimension.
pub const HEAD_DIM: usize = 16;
/// MLP width.
pub const FFN: usize = 96;
/// Layers.
pub const LAYERS: usize = 2;
/// The tokenizer's tokens, by id: 0..=2 are CONTROL tokens.
pub const TOKENS: [&str; 15] = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "a",
    "b",
    "c",
    "Ġ",
    "1",
    "2",
    "ab",
    "Ġa",
    "Ġab",
    "abc",
    "Ċ",
    "12",
];
/// The merges, by rank.
pub const MERGES: [&str; 5] = ["a b", "Ġ a", "Ġa b", "ab c", "1 2"];

/// A tiny model: the metadata and the tensors as stored in the GGUF, and the HF-layout truth.
pub struct Tiny {
    /// GGUF metadata.
    pub metadata: BTreeMap<String, Value>,
    /// GGUF tensors: f32 values (already permuted where llama.cpp permutes) and storage type.
    pub gguf: BTreeMap<String, (Tensor, GgmlDType)>,
    /// What loading must give: HF name -> f32 tensor (before quantization).
    pub hf: BTreeMap<String, Tensor>,
}

fn random(rng: &mut ChaCha8Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(data, shape, &Device::Cpu).expect("shape matches data")
}

/// llama.cpp's q/k permutation written out by index: within each head, HF row `j * half + i`
/// (rotary half `j`, pair `i`) is stored at GGUF row `2 * i + j`.
pub fn permute_rows_by_hand(hf: &Tensor, heads: usize) -> Tensor {
    let rows = hf.dims()[0];
    let head_dim = rows / heads;
    let half = head_dim / 2;
    let mut source = vec![0u32; rows];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                source[h * head_dim + 2 * i + j] = (h * head_dim + j * half + i) as u32;
            }
        }
    }
    let index = Tensor::new(source.as_slice(), &Device::Cpu).expect("index");
    hf.index_select(&index, 0).expect("rows in range")
}

impl Tiny {
    /// The tiny llama; `quantized` stores the embedding as Q8_0 and the MLP as Q4_1 (else all F32).
    pub fn llama(quantized: bool) -> Tiny {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (embed_type, mlp_type) = if quantized {
            (GgmlDType::Q8_0, GgmlDType::Q4_1)
        } else {
            (GgmlDType::F32, GgmlDType::F32)
        };
        let mut tiny = Tiny {
            metadata: BTreeMap::new(),
            gguf: BTreeMap::new(),
            hf: BTreeMap::new(),
        };
        let mut put = |tiny: &mut Tiny,
                       gguf: String,
                       hf: String,
                       shape: &[usize],
                       dtype: GgmlDType,
                       heads: Option<usize>| {
            let value = random(&mut rng, shape);
            let stored = match heads {
                Some(h) => permute_rows_by_hand(&value, h),
                None => value.clone(),
            };
            tiny.gguf.insert(gguf, (stored, dtype));
            tiny.hf.insert(hf, value);
        };
        let f32 = GgmlDType::F32;
        let q = HEADS * HEAD_DIM;
        let kv = KV_HEADS * HEAD_DIM;
        let vocab = TOKENS.len() + 1; // one spare row, as padded vocabularies have
        put(
            &mut tiny,
            "token_embd.weight".into(),
            "model.embed_tokens.weight".into(),
            &[vocab, HIDDEN],
            embed_type,
            None,
        );
        put(
            &mut tiny,
            "output_norm.weight".into(),
            "model.norm.weight".into(),
            &[HIDDEN],
            f32,
            None,
        );
        for l in 0..LAYERS {
            let g = |s: &str| format!("blk.{l}.{s}");
            let h = |s: &str| format!("model.layers.{l}.{s}");
            put(
                &mut tiny,
                g("attn_norm.weight"),
                h("input_layernorm.weight"),
                &[HIDDEN],
                f32,
                None,
            );
            put(
                &mut tiny,
                g("ffn_norm.weight"),
                h("post_attention_layernorm.weight"),
                &[HIDDEN],
                f32,
                None,
            );
            put(
                &mut tiny,
                g("attn_q.weight"),
                h("self_attn.q_proj.weight"),
                &[q, HIDDEN],
                f32,
                Some(HEADS),
            );
            put(
                &mut tiny,
                g("attn_k.weight"),
                h("self_attn.k_proj.weight"),
                &[kv, HIDDEN],
                f32,
                Some(KV_HEADS),
            );
            put(
                &mut tiny,
                g("attn_v.weight"),
                h("self_attn.v_proj.weight"),
                &[kv, HIDDEN],
                f32,
                None,
            );
            put(
                &mut tiny,
                g("attn_output.weight"),
                h("self_attn.o_proj.weight"),
                &[HIDDEN, q],
                f32,
                None,
            );
            put(
                &mut tiny,
                g("ffn_gate.weight"),
                h("mlp.gate_proj.weight"),
                &[FFN, HIDDEN],
                mlp_type,
                None,
            );
            put(
                &mut tiny,
                g("ffn_up.weight"),
                h("mlp.up_proj.weight"),
                &[FFN, HIDDEN],
                mlp_type,
                None,
            );
            put(
                &mut tiny,
                g("ffn_down.weight"),
                h("mlp.down_proj.weight"),
                &[HIDDEN, FFN],
                mlp_type,
                None,
            );
        }
        let strings = |items: &[&str]| {
            Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect())
        };
        let types: Vec<Value> = (0..TOKENS.len())
            .map(|i| Value::I32(if i < 3 { 3 } else { 1 }))
            .collect();
        let meta = [
            ("general.architecture", Value::String("llama".into())),
            ("general.name", Value::String("Tiny Llama".into())),
            ("llama.block_count", Value::U32(LAYERS as u32)),
            ("llama.embedding_length", Value::U32(HIDDEN as u32)),
            ("llama.attention.head_count", Value::U32(HEADS as u32)),
            ("llama.attention.head_count_kv", Value::U32(KV_HEADS as u32)),
            ("llama.feed_forward_length", Value::U32(FFN as u32)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
            ("llama.rope.freq_base", Value::F32(100000.0)),
            ("llama.context_length", Value::U32(128)),
            ("tokenizer.ggml.model", Value::String("gpt2".into())),
            ("tokenizer.ggml.pre", Value::String("smollm".into())),
            ("tokenizer.ggml.tokens", strings(&TOKENS)),
            ("tokenizer.ggml.merges", strings(&MERGES)),
            ("tokenizer.ggml.token_type", Value::Array(types)),
            ("tokenizer.ggml.bos_token_id", Value::U32(1)),
            ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ];
        tiny.metadata = meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        tiny
    }

    /// Writes the GGUF file.
    pub fn write(&self, path: &Path) {
        let quantized: Vec<(&str, QTensor)> = self
            .gguf
            .iter()
            .map(|(name, (t, dtype))| {
                (
                    name.as_str(),
                    QTensor::quantize(t, *dtype).expect("quantize"),
                )
            })
            .collect();
        let tensors: Vec<(&str, &QTensor)> = quantized.iter().map(|(n, q)| (*n, q)).collect();
        let metadata: Vec<(&str, &Value)> =
            self.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut file = std::fs::File::create(path).expect("create gguf");
        gguf_file::write(&mut file, &metadata, &tensors).expect("write gguf");
    }
}
