//! The decoders' read-out block (only the positions the readout reads) against the full block,
//! for Llama (grouped-query attention, f32 and bf16) and GPT-2.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::model::arch::decoder::{BlockAt, Decoder, HeadOp, Kv, Starts};
use crate::model::arch::gpt2::Gpt2;
use crate::model::arch::llama::Llama;
use crate::model::arch::ragged::Ragged;
use crate::model::load::config::{Gpt2Config, LlamaConfig, NormPlacement, QkNorm, SpecialIds};
use crate::model::load::weights::Weights;
use crate::model::testing::seeded::SeededNormal;

const D: usize = 32;
const VOCAB: usize = 40;
const POSITIONS: usize = 64;

/// Random weights of the given names and shapes; norm scales near 1.
fn weights(shapes: &[(String, Vec<usize>)], dtype: DType, seed: u64) -> Weights {
    let mut rng = SeededNormal::new(seed);
    let tensors: HashMap<String, Tensor> = shapes
        .iter()
        .map(|(name, shape)| {
            let mean = if name.contains("norm") || name.contains("ln_") {
                1.0
            } else {
                0.0
            };
            let t = rng.tensor(shape.as_slice(), mean, 0.2);
            (name.clone(), t.to_dtype(dtype).unwrap())
        })
        .collect();
    Weights::from_tensors(tensors, std::path::Path::new("random"), dtype, &Device::Cpu)
}

/// A two-layer qwen3-style decoder (grouped-query attention, qkv bias, q/k norms).
fn llama(dtype: DType) -> Llama {
    let cfg = LlamaConfig {
        model_type: "qwen3".into(),
        vocab_size: VOCAB,
        hidden_size: D,
        intermediate_size: 48,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 8,
        rotary_dims: 8,
        rms_norm_eps: 1e-6,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: POSITIONS,
        tie_word_embeddings: true,
        qkv_bias: true,
        o_bias: false,
        mlp_bias: false,
        qk_norm: QkNorm::PerHead,
        norms: NormPlacement::Inputs,
        variants: Default::default(),
        special: SpecialIds::default(),
    };
    let mut shapes = vec![
        ("model.embed_tokens.weight".to_string(), vec![VOCAB, D]),
        ("model.norm.weight".to_string(), vec![D]),
    ];
    for l in 0..2 {
        let p = format!("model.layers.{l}");
        for (name, shape) in [
            ("self_attn.q_proj.weight", vec![32, D]),
            ("self_attn.q_proj.bias", vec![32]),
            ("self_attn.k_proj.weight", vec![16, D]),
            ("self_attn.k_proj.bias", vec![16]),
            ("self_attn.v_proj.weight", vec![16, D]),
            ("self_attn.v_proj.bias", vec![16]),
            ("self_attn.o_proj.weight", vec![D, 32]),
            ("self_attn.q_norm.weight", vec![8]),
            ("self_attn.k_norm.weight", vec![8]),
            ("mlp.gate_proj.weight", vec![48, D]),
            ("mlp.up_proj.weight", vec![48, D]),
            ("mlp.down_proj.weight", vec![D, 48]),
            ("input_layernorm.weight", vec![D]),
            ("post_attention_layernorm.weight", vec![D]),
        ] {
            shapes.push((format!("{p}.{name}"), shape));
        }
    }
    Llama::new(cfg, &weights(&shapes, dtype, 3), dtype, &Device::Cpu).unwrap()
}

/// A two-layer GPT-2 with 4 heads.
fn gpt2() -> Gpt2 {
    let cfg = Gpt2Config {
        vocab_size: VOCAB,
        n_embd: D,
        n_layer: 2,
        n_head: 4,
        n_positions: POSITIONS,
        layer_norm_epsilon: 1e-5,
        n_inner: 64,
        gelu_erf: false,
        special: SpecialIds::default(),
    };
    let mut shapes = vec![
        ("wte.weight".to_string(), vec![VOCAB, D]),
        ("wpe.weight".to_string(), vec![POSITIONS, D]),
        ("ln_f.weight".to_string(), vec![D]),
        ("ln_f.bias".to_string(), vec![D]),
    ];
    for l in 0..2 {
        for (name, shape) in [
            ("ln_1.weight", vec![D]),
            ("ln_1.bias", vec![D]),
            ("attn.c_attn.weight", vec![D, 3 * D]),
            ("attn.c_attn.bias", vec![3 * D]),
            ("attn.c_proj.weight", vec![D, D]),
            ("attn.c_proj.bias", vec![D]),
            ("ln_2.weight", vec![D]),
            ("ln_2.bias", vec![D]),
            ("mlp.c_fc.weight", vec![D, 64]),
            ("mlp.c_fc.bias", vec![64]),
            ("mlp.c_proj.weight", vec![64, D]),
            ("mlp.c_proj.bias", vec![D]),
        ] {
            shapes.push((format!("h.{l}.{name}"), shape));
        }
    }
    Gpt2::new(cfg, &weights(&shapes, DType::F32, 4)).unwrap()
}

fn max_gap(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// The read-out block at row r equals the full block at `(r, last[r])`, with and without
/// padding, a shared key/value prefix and a head op.
fn readout_equals_the_full_block(model: &dyn Decoder, kv_heads: usize, dtype: DType, tol: f64) {
    let (n, t, past_len) = (3, 7, 3);
    let mut rng = SeededNormal::new(9);
    let x = rng.tensor((n, t, D), 0.0, 1.0).to_dtype(dtype).unwrap();
    let head_dim = 8;
    let past = Kv {
        k: rng
            .tensor((1, kv_heads, past_len, head_dim), 0.0, 1.0)
            .to_dtype(dtype)
            .unwrap(),
        v: rng
            .tensor((1, kv_heads, past_len, head_dim), 0.0, 1.0)
            .to_dtype(dtype)
            .unwrap(),
    };
    let scale = Tensor::from_vec(
        vec![1f32, 0., 1., 1., 0., 0., 1., 1., 1., 1., 1., 0.],
        (n, 4, 1, 1),
        &Device::Cpu,
    )
    .unwrap()
    .to_dtype(dtype)
    .unwrap();
    let op = HeadOp { scale, mean: None };
    for lens in [[7, 4, 6], [7, 7, 7]] {
        let last: Vec<usize> = lens.iter().map(|&len| len - 1).collect();
        let ragged = Ragged::new(&lens, t, &Device::Cpu).unwrap();
        assert_eq!(ragged.is_some(), lens != [7, 7, 7], "padding is skipped");
        for (with_past, with_op) in [(false, false), (true, false), (false, true), (true, true)] {
            let full_at = BlockAt {
                starts: Starts::Shared(if with_past { past_len } else { 0 }),
                op: with_op.then_some(&op),
                past: with_past.then_some(&past),
                ragged: ragged.as_ref(),
                readout: None,
            };
            let part_at = BlockAt {
                readout: Some(&last),
                ..full_at
            };
            let l = 1;
            let full = model.block(l, &x, full_at).unwrap();
            let part = model.block(l, &x, part_at).unwrap();
            let want = part_at.residual_at_queries(&full.x).unwrap();
            let what = format!("lens {lens:?}, past {with_past}, op {with_op}");
            assert_eq!(part.x.dims(), &[n, 1, D], "{what}");
            let gap = max_gap(&part.x, &want);
            assert!(gap < tol, "{what}: read-out block differs by {gap}");
            assert!(
                max_gap(&part.kv.k, &full.kv.k) == 0.0,
                "{what}: keys differ"
            );
        }
    }
}

#[test]
fn llama_readout_block_equals_the_full_block() {
    readout_equals_the_full_block(&llama(DType::F32), 2, DType::F32, 1e-5);
    // bf16 runs candle's bias-and-softmax attention, the path GPUs take.
    readout_equals_the_full_block(&llama(DType::BF16), 2, DType::BF16, 0.05);
}

#[test]
fn gpt2_readout_block_equals_the_full_block() {
    readout_equals_the_full_block(&gpt2(), 4, DType::F32, 1e-5);
}
