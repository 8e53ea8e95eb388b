//! Property tests of every parser of untrusted input: plan.json, values files (`.npy` and text),
//! masks files, head-mask specs (string and JSON), JSONL rows (MMLU-form and the cloze
//! templates) and GGUF headers. Each parser gets generated inputs, from random bytes to valid
//! files with hostile fields, and must answer with a value or an error: never a panic, never an
//! abort in the allocator.
//!
//! `cargo test` runs [`CASES`] inputs per parser; `PROPTEST_CASES=N` sets another count
//! (`benches/fuzz_parsers.sh` runs a million).

use std::io::{BufReader, Cursor};
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use crate::model::HeadScales;
use crate::sparse::plan::{Plan, PlanFile};
use crate::sparse::proxy::ProxyPlan;
use crate::sparse::spex::SpexPlan;
use crate::task::cloze::{cloze_from_lines, ClozeTemplate};
use crate::task::read::{mc_from_lines, parse_jsonl, Schema};

/// Generated inputs per parser under `cargo test`.
const CASES: u32 = 100_000;

/// Runs `test` on `CASES` (or `PROPTEST_CASES`) inputs of `strategy`, failing with the input
/// that made it fail (a panic counts as a failure).
fn fuzz<S: Strategy>(strategy: S, test: impl Fn(S::Value)) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, |v| {
        test(v);
        Ok(())
    }) {
        panic!("{e}");
    }
}

/// Numbers a hostile file would hold: edges of every integer and float range, and the usual.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..8).prop_map(|v| json!(v)),
        any::<u64>().prop_map(|v| json!(v)),
        any::<i64>().prop_map(|v| json!(v)),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |v| v.is_finite())
            .prop_map(|v| json!(v)),
        prop::sample::select(vec![
            0.0,
            -0.0,
            -1.0,
            0.5,
            0.95,
            1.0,
            2.0,
            1e-300,
            1e39,
            -1e39,
            3.4e38,
            f64::MAX,
            f64::MIN,
            9.007_199_254_740_993e15,
            1.8446744073709552e19,
        ])
        .prop_map(|v| json!(v)),
    ]
}

/// Short strings, with blanks, underscores, letters, digits and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ a-zA-Z0-9_.,:?!\n\t-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(12).collect()),
        prop::sample::select(vec![
            "", " ", "_", "A", "D", "1", "2", "cause", "effect", "yes"
        ])
        .prop_map(str::to_string),
    ]
}

/// Any JSON value whose object keys come from `keys` (so that parsers meet their own fields).
fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(keys), inner), 0..8).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// Edits of a JSON document: `(dotted path, new value or None to delete)`.
type Edits = Vec<(Vec<String>, Option<Value>)>;

/// Applies `edits` to `doc`, creating objects along a path where needed.
fn apply_edits(doc: &mut Value, edits: &Edits) {
    for (path, new) in edits {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let mut at = &mut *doc;
        for key in parents {
            if !at.is_object() {
                *at = json!({});
            }
            at = at
                .as_object_mut()
                .map(|m| m.entry(key.clone()).or_insert(json!({})))
                .expect("made an object above");
        }
        if let Some(map) = at.as_object_mut() {
            match new {
                Some(v) => {
                    map.insert(last.clone(), v.clone());
                }
                None => {
                    map.remove(last);
                }
            }
        }
    }
}

/// Every field of a plan.json, as dotted paths.
const PLAN_FIELDS: &[&str] = &[
    "format",
    "spex_version",
    "n_players",
    "queries",
    "method",
    "n",
    "budget",
    "n_queries",
    "seed",
    "keep_probability",
    "grid.max_depth",
    "grid.n_trees",
    "grid.learning_rate",
    "grid.num_leaves",
    "grid.min_child_samples",
    "grid.folds",
    "energy_fraction",
    "ridge_alpha_min",
    "ridge_alpha_max",
    "ridge_alpha_count",
    "max_degree",
    "b",
    "t",
    "groups",
    "decoder",
    "refit",
    "bch.m",
    "bch.nc",
    "bch.kc",
    "bch.shortening",
    "bch.p",
    "bch.delays",
];

/// Valid plan.json documents of both methods, small and large.
fn valid_plans() -> Vec<Value> {
    let plans = [
        Plan::ProxySpex(ProxyPlan::new(3, 100, 1).expect("plan")),
        Plan::ProxySpex(ProxyPlan::new(270, 2000, 2).expect("plan")),
        Plan::ProxySpex(
            ProxyPlan::new(40, 500, 3)
                .and_then(|p| p.with_keep_probability(0.9))
                .expect("plan"),
        ),
        Plan::Spex(SpexPlan::new(20, 1000, 5, 4).expect("plan")),
        Plan::Spex(SpexPlan::new(270, 100_000, 3, 5).expect("plan")),
    ];
    plans
        .iter()
        .map(|p| serde_json::to_value(p.to_file()).expect("serialises"))
        .collect()
}

/// Parses `bytes` as plan.json and checks it as `spex solve` does; a plan that passes is asked
/// its size and, when small, its masks.
fn check_plan_bytes(bytes: &[u8]) {
    let path = Path::new("plan.json");
    let Ok(file) = crate::io::json_from_bytes::<PlanFile>(path, bytes) else {
        return;
    };
    if file.validate(path).is_err() {
        return;
    }
    let plan = &file.plan;
    let _ = plan.bytes_needed();
    if plan.n_queries() <= 256 && plan.n_players() <= 512 {
        let masks = plan.masks().expect("a valid small plan has masks");
        assert_eq!(masks.len(), plan.n_queries());
    }
}

#[test]
fn plan_json_never_panics() {
    let plans = valid_plans();
    let edit = (
        prop::sample::select(PLAN_FIELDS),
        prop::option::weighted(
            0.9,
            prop_oneof![
                3 => number(),
                1 => prop::collection::vec(number(), 0..3).prop_map(Value::Array),
                1 => json_value(&["max_depth", "n_trees", "m", "p"]),
            ],
        ),
    )
        .prop_map(|(path, v)| {
            let path: Vec<String> = path.split('.').map(str::to_string).collect();
            (path, v)
        });
    let strategy = (
        prop::sample::select(plans),
        prop::collection::vec(edit, 1..4),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    );
    fuzz(strategy, |(mut doc, edits, flips): (Value, Edits, _)| {
        apply_edits(&mut doc, &edits);
        let mut bytes = serde_json::to_vec(&doc).expect("serialises");
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        check_plan_bytes(&bytes);
    });
}

/// A `.npy` file: version, header text (often well-formed, with hostile fields), header length
/// field (right or not) and data bytes.
fn npy_bytes() -> impl Strategy<Value = Vec<u8>> {
    let descr = prop_oneof![
        prop::sample::select(vec![
            "<f8", "<f4", "|u1", "|b1", "<i8", ">f8", "<c16", "|O", "<U3"
        ])
        .prop_map(|d| format!("'{d}'")),
        "[ -~]{0,10}".prop_map(|d| format!("'{d}'")),
        Just("[('a', '<f8', (1099511627776, 1099511627776))]".to_string()),
        Just("[('shape', '<f8')]".to_string()),
    ];
    let dim = prop_oneof![0u64..4, 0u64..1000, any::<u64>(), Just(1u64 << 32)];
    let shape = prop::collection::vec(dim, 0..4).prop_map(|dims| {
        let inner: Vec<String> = dims.iter().map(u64::to_string).collect();
        match inner.len() {
            1 => format!("({},)", inner[0]),
            _ => format!("({})", inner.join(", ")),
        }
    });
    let header = prop_oneof![
        4 => (descr, any::<bool>(), shape).prop_map(|(d, f, s)| {
            let fortran = if f { "True" } else { "False" };
            format!("{{'descr': {d}, 'fortran_order': {fortran}, 'shape': {s}, }}")
        }),
        1 => "[ -~]{0,40}",
        1 => Just("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_string()),
    ];
    (
        prop::sample::select(vec![1u8, 2, 3, 0, 9]),
        header,
        prop::option::weighted(0.2, any::<u32>()),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(version, header, claimed, data)| {
            let mut bytes = b"\x93NUMPY".to_vec();
            bytes.extend([version, 0]);
            let text = format!("{header}\n");
            let len = claimed.unwrap_or(text.len() as u32);
            if version == 1 {
                bytes.extend((len as u16).to_le_bytes());
            } else {
                bytes.extend(len.to_le_bytes());
            }
            bytes.extend(text.as_bytes());
            bytes.extend(data);
            bytes
        })
}

/// Text values: numbers, garbage, comments, and bytes that are not UTF-8.
fn values_text() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        any::<f64>().prop_map(|v| v.to_string().into_bytes()),
        "[ #a-z0-9.eE+-]{0,12}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..8),
        Just(b"nan".to_vec()),
        Just(b"inf".to_vec()),
        Just(b"1e999".to_vec()),
    ];
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join(&b'\n'))
}

#[test]
fn values_and_masks_files_never_panic() {
    let strategy = prop_oneof![
        3 => npy_bytes(),
        2 => values_text(),
        1 => prop::collection::vec(any::<u8>(), 0..80),
    ];
    fuzz(strategy, |bytes| {
        let path = Path::new("values.npy");
        if let Ok(values) = crate::io::values_from_bytes(path, &bytes) {
            assert!(values.len() <= bytes.len());
        }
        if let Ok(masks) = crate::io::masks_from_npy(path, &bytes) {
            assert!(masks.len() <= bytes.len());
        }
    });
}

#[test]
fn head_mask_specs_never_panic() {
    let spec = prop_oneof![
        "[0-9:*, x-]{0,16}",
        any::<String>().prop_map(|s| s.chars().take(16).collect()),
        (any::<u64>(), any::<u64>()).prop_map(|(l, h)| format!("{l}:{h}")),
    ];
    let matrix = prop_oneof![
        json_value(&["layers"]),
        prop::collection::vec(prop::collection::vec(number(), 0..5), 0..5)
            .prop_map(|rows| json!(rows)),
    ];
    fuzz(
        (spec, matrix, 0usize..6, 0usize..6),
        |(spec, matrix, layers, heads)| {
            if let Ok(s) = HeadScales::parse(&spec, layers, heads) {
                assert!(s.iter().all(|v| (0.0..=1.0).contains(v)));
            }
            if let Ok(s) = HeadScales::from_json(&matrix, layers, heads) {
                assert_eq!(s.len(), layers * heads);
                assert!(s.iter().all(|v| (0.0..=1.0).contains(v)));
            }
        },
    );
}

/// Field names of the MMLU-form rows and of every cloze template.
const ROW_FIELDS: &[&str] = &[
    "question",
    "question_stem",
    "subject",
    "topic",
    "choices",
    "text",
    "label",
    "answer",
    "answerKey",
    "correct_answer",
    "A",
    "B",
    "C",
    "D",
    "answer_a",
    "answer_b",
    "distractor1",
    "distractor2",
    "distractor3",
    "support",
    "goal",
    "sol1",
    "sol2",
    "activity_label",
    "ctx_a",
    "ctx_b",
    "endings",
    "sentence",
    "option1",
    "option2",
    "passage",
    "premise",
    "choice1",
    "choice2",
];

/// JSONL bytes: rows of JSON objects with the data sets' fields, raw garbage, bytes that are
/// not UTF-8, blank lines and `\r\n` endings.
fn jsonl_bytes() -> impl Strategy<Value = Vec<u8>> {
    let row = prop_oneof![
        6 => json_value(ROW_FIELDS).prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..16),
        1 => Just(b"\xff\xfe{\"question\": \"q\"}".to_vec()),
        1 => Just(b"\r".to_vec()),
    ];
    prop::collection::vec(row, 0..6).prop_map(|rows| rows.join(&b'\n'))
}

#[test]
fn jsonl_rows_never_panic() {
    let templates = vec![
        ClozeTemplate::Arc,
        ClozeTemplate::OpenBookQa,
        ClozeTemplate::Sciq,
        ClozeTemplate::Piqa,
        ClozeTemplate::Hellaswag,
        ClozeTemplate::Winogrande,
        ClozeTemplate::Boolq,
        ClozeTemplate::Copa,
    ];
    let strategy = (
        jsonl_bytes(),
        prop::sample::select(templates),
        any::<bool>(),
    );
    fuzz(strategy, |(bytes, template, sciq)| {
        let path = Path::new("rows.jsonl");
        let lines = parse_jsonl(&bytes);
        let count = lines.len();
        let schema = if sciq { Schema::Sciq } else { Schema::Generic };
        let mut report = Vec::new();
        let questions = mc_from_lines(path, lines.clone(), schema, "s", 2..=26, &mut report);
        assert_eq!(questions.len() + report.len(), count);
        let mut report = Vec::new();
        let items = cloze_from_lines(path, lines, template, "s", &mut report);
        assert_eq!(items.len() + report.len(), count);
    });
}

/// A GGUF value of type `kind`: little-endian bytes, strings and arrays length-prefixed
/// (`u64`; `u32` in version 1).
fn gguf_value(kind: u32, wide: bool, payload: &[u8], len: u64) -> Vec<u8> {
    let prefix = |n: u64| -> Vec<u8> {
        if wide {
            n.to_le_bytes().to_vec()
        } else {
            (n as u32).to_le_bytes().to_vec()
        }
    };
    let width = match kind {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => 0,
    };
    let mut out = Vec::new();
    match kind {
        8 => {
            out.extend(prefix(len));
            out.extend(payload);
        }
        9 => {
            out.extend(4u32.to_le_bytes());
            out.extend(prefix(len));
            out.extend(payload);
        }
        _ => out.extend(payload.iter().copied().cycle().take(width)),
    }
    out
}

/// A metadata entry the loaders read, with its proper GGUF type and a hostile value:
/// `(key, type, value bytes)`.
fn typed_gguf_entry() -> impl Strategy<Value = (String, u32, Vec<u8>)> {
    let string = |s: &str| {
        let mut b = (s.len() as u64).to_le_bytes().to_vec();
        b.extend(s.as_bytes());
        b
    };
    let strings = |items: &[String]| {
        let mut b = 8u32.to_le_bytes().to_vec();
        b.extend((items.len() as u64).to_le_bytes());
        for s in items {
            b.extend((s.len() as u64).to_le_bytes());
            b.extend(s.as_bytes());
        }
        b
    };
    let arch = prop::sample::select(vec!["llama", "qwen2", "gpt2", ""]);
    let int_key = prop::sample::select(vec![
        "block_count",
        "embedding_length",
        "attention.head_count",
        "attention.head_count_kv",
        "attention.key_length",
        "feed_forward_length",
        "context_length",
        "vocab_size",
    ]);
    let small = prop_oneof![0u32..5, Just(2u32), Just(4), Just(8), any::<u32>()];
    let words = prop::collection::vec("[a-z<>/ ]{0,4}", 0..6);
    prop_oneof![
        arch.clone()
            .prop_map(move |a| ("general.architecture".to_string(), 8, string(a))),
        (arch.clone(), int_key, small.clone())
            .prop_map(|(a, k, v)| { (format!("{a}.{k}"), 4, v.to_le_bytes().to_vec()) }),
        (arch, any::<f32>()).prop_map(|(a, v)| {
            (
                format!("{a}.attention.layer_norm_rms_epsilon"),
                6,
                v.to_le_bytes().to_vec(),
            )
        }),
        prop::sample::select(vec!["gpt2", "llama", "bert", ""]).prop_map(move |m| (
            "tokenizer.ggml.model".to_string(),
            8,
            string(m)
        )),
        words
            .clone()
            .prop_map(move |w| ("tokenizer.ggml.tokens".to_string(), 9, strings(&w))),
        words.prop_map(move |w| ("tokenizer.ggml.merges".to_string(), 9, strings(&w))),
        (
            prop::sample::select(vec!["bos", "eos", "unknown", "padding"]),
            small
        )
            .prop_map(|(k, v)| (
                format!("tokenizer.ggml.{k}_token_id"),
                4,
                v.to_le_bytes().to_vec()
            )),
    ]
}

/// A whole llama header: every key the loader needs, with small, zero or huge sizes, a
/// byte-level tokenizer of a few tokens and merges, and the tensor infos of one layer
/// `(name, dims, GGML type, offset)` over those sizes.
type Header = (
    Vec<(String, u32, Vec<u8>)>,
    Vec<(String, Vec<u64>, u32, u64)>,
);

fn llama_header() -> impl Strategy<Value = Header> {
    let size = prop_oneof![4 => 1u32..9, 1 => Just(0u32), 1 => any::<u32>()];
    let tokens = prop::collection::vec("[a-z]{1,3}|<unk>", 1..8);
    let merges = prop::collection::vec("[a-z] [a-z]|[a-z]", 0..4);
    (
        prop::collection::vec(size, 7),
        tokens,
        merges,
        prop::sample::select(vec!["gpt2", "llama", "x"]),
        any::<u32>(),
    )
        .prop_map(|(sizes, tokens, merges, model, type_noise)| {
            let u32_entry = |k: &str, v: u32| (k.to_string(), 4u32, v.to_le_bytes().to_vec());
            let string = |s: &str| {
                let mut b = (s.len() as u64).to_le_bytes().to_vec();
                b.extend(s.as_bytes());
                b
            };
            let strings = |items: &[String]| {
                let mut b = 8u32.to_le_bytes().to_vec();
                b.extend((items.len() as u64).to_le_bytes());
                for s in items {
                    b.extend(string(s));
                }
                b
            };
            let [layers, d, heads, kv, ffn, ctx, vocab] =
                <[u32; 7]>::try_from(sizes).expect("seven sizes");
            // Mostly consistent sizes (heads divide the width, KV heads divide the heads), so
            // that the tokenizer and the tensor infos are reached too.
            let kv = if kv % 2 == 0 { heads } else { kv };
            let d = if d % 2 == 0 {
                heads.saturating_mul(2)
            } else {
                d
            };
            let entries = vec![
                ("general.architecture".to_string(), 8, string("llama")),
                u32_entry("llama.block_count", layers),
                u32_entry("llama.embedding_length", d),
                u32_entry("llama.attention.head_count", heads),
                u32_entry("llama.attention.head_count_kv", kv),
                u32_entry("llama.feed_forward_length", ffn),
                u32_entry("llama.context_length", ctx),
                (
                    "llama.attention.layer_norm_rms_epsilon".to_string(),
                    6,
                    1e-5f32.to_le_bytes().to_vec(),
                ),
                ("tokenizer.ggml.model".to_string(), 8, string(model)),
                ("tokenizer.ggml.tokens".to_string(), 9, strings(&tokens)),
                ("tokenizer.ggml.merges".to_string(), 9, strings(&merges)),
            ];
            let (d, v, f) = (u64::from(d), u64::from(vocab), u64::from(ffn));
            let kind = if type_noise % 8 == 0 {
                type_noise % 40
            } else {
                0
            };
            let mut tensors = vec![
                ("token_embd.weight".to_string(), vec![d, v], kind, 0),
                ("output_norm.weight".to_string(), vec![d], 0, 0),
            ];
            for name in ["attn_norm", "ffn_norm"] {
                tensors.push((format!("blk.0.{name}.weight"), vec![d], 0, 0));
            }
            for (name, dims) in [
                ("attn_q", vec![d, d]),
                ("attn_k", vec![d, d]),
                ("attn_v", vec![d, d]),
                ("attn_output", vec![d, d]),
                ("ffn_gate", vec![d, f]),
                ("ffn_up", vec![d, f]),
                ("ffn_down", vec![f, d]),
            ] {
                tensors.push((format!("blk.0.{name}.weight"), dims, 0, 0));
            }
            (entries, tensors)
        })
}

/// An edit of a header's entry list: `(which entry, drop it or move it first)`.
fn entry_index_edit() -> impl Strategy<Value = (prop::sample::Index, bool)> {
    (any::<prop::sample::Index>(), any::<bool>())
}

/// GGUF files: header fields from the llama and qwen2 loaders' own keys with hostile values,
/// tensor infos with hostile shapes and types, and random tails.
fn gguf_bytes() -> impl Strategy<Value = Vec<u8>> {
    let keys = prop::sample::select(vec![
        "general.architecture",
        "general.alignment",
        "general.name",
        "llama.block_count",
        "llama.embedding_length",
        "llama.attention.head_count",
        "llama.attention.head_count_kv",
        "llama.attention.key_length",
        "llama.feed_forward_length",
        "llama.context_length",
        "llama.attention.layer_norm_rms_epsilon",
        "llama.rope.freq_base",
        "llama.vocab_size",
        "qwen2.block_count",
        "tokenizer.ggml.model",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.bos_token_id",
    ]);
    let length = prop_oneof![0u64..6, any::<u64>(), Just(1u64 << 30), Just(u64::MAX)];
    let entry = (
        keys,
        prop_oneof![9 => 0u32..13, 1 => any::<u32>()],
        prop::collection::vec(any::<u8>(), 0..12),
        length,
    );
    let tensor = (
        prop::sample::select(vec![
            "token_embd.weight",
            "output_norm.weight",
            "blk.0.attn_q.weight",
            "blk.0.attn_norm.weight",
        ]),
        prop::collection::vec(prop_oneof![1u64..8, any::<u64>()], 0..6),
        prop_oneof![0u32..16, any::<u32>()],
        any::<u64>(),
    );
    let entry = prop_oneof![
        1 => entry.prop_map(|(key, kind, payload, len)| {
            let len = if payload.is_empty() {
                len
            } else {
                payload.len() as u64
            };
            (key.to_string(), kind, Some(len), payload)
        }),
        3 => typed_gguf_entry().prop_map(|(key, kind, value)| (key, kind, None, value)),
    ];
    let tensor =
        tensor.prop_map(|(name, dims, kind, offset)| (name.to_string(), dims, kind, offset));
    let parts = prop_oneof![
        1 => (prop::collection::vec(entry, 0..12), prop::collection::vec(tensor, 0..4)),
        2 => (
            llama_header(),
            prop::collection::vec(entry_index_edit(), 0..3),
        )
            .prop_map(|((mut entries, tensors), edits)| {
                for (at, drop) in edits {
                    let i = at.index(entries.len());
                    if drop {
                        entries.remove(i);
                    } else {
                        entries.swap(0, i);
                    }
                }
                let entries = entries
                    .into_iter()
                    .map(|(key, kind, value)| (key, kind, None, value))
                    .collect();
                (entries, tensors)
            }),
    ];
    (
        prop::sample::select(vec![3u32, 3, 3, 2, 1, 7]),
        prop::option::weighted(0.05, any::<u64>()),
        parts,
        prop::collection::vec(any::<u8>(), 0..64),
        prop::bool::weighted(0.95),
    )
        .prop_map(|(version, counts, (entries, tensors), tail, magic)| {
            let wide = version != 1;
            let count = |n: u64| -> Vec<u8> {
                if wide {
                    n.to_le_bytes().to_vec()
                } else {
                    (n as u32).to_le_bytes().to_vec()
                }
            };
            let mut b = if magic {
                b"GGUF".to_vec()
            } else {
                b"FUGG".to_vec()
            };
            b.extend(version.to_le_bytes());
            b.extend(count(counts.unwrap_or(tensors.len() as u64)));
            b.extend(count(counts.unwrap_or(entries.len() as u64)));
            for (key, kind, len, payload) in &entries {
                b.extend(count(key.len() as u64));
                b.extend(key.as_bytes());
                b.extend(kind.to_le_bytes());
                match len {
                    Some(len) => b.extend(gguf_value(*kind, wide, payload, *len)),
                    // Typed entries are written as version 2/3 lay them out.
                    None => b.extend(payload),
                }
            }
            for (name, dims, kind, offset) in &tensors {
                b.extend(count(name.len() as u64));
                b.extend(name.as_bytes());
                b.extend((dims.len() as u32).to_le_bytes());
                for d in dims {
                    b.extend(count(*d));
                }
                b.extend(kind.to_le_bytes());
                b.extend(offset.to_le_bytes());
            }
            b.extend(tail);
            b
        })
}

#[test]
fn gguf_headers_never_panic() {
    let device = candle_core::Device::Cpu;
    fuzz(gguf_bytes(), |bytes| {
        let mut reader = BufReader::new(Cursor::new(bytes));
        let _ = crate::model::load::gguf::read_gguf(&mut reader, Path::new("m.gguf"), &device);
    });
}

#[test]
fn the_generators_reach_the_parsers_happy_paths() {
    // Valid inputs of each generator's shape parse: the properties above test more than errors.
    let plans = valid_plans();
    for doc in &plans {
        let bytes = serde_json::to_vec(doc).unwrap();
        let file: PlanFile = crate::io::json_from_bytes(Path::new("plan.json"), &bytes).unwrap();
        file.validate(Path::new("plan.json")).unwrap();
    }
    let mut npy = Vec::new();
    {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[3])
            .writer(&mut npy)
            .begin_nd()
            .unwrap();
        w.extend([1.0f64, 2.0, 3.0]).unwrap();
        w.finish().unwrap();
    }
    let path = Path::new("v.npy");
    assert_eq!(
        crate::io::values_from_bytes(path, &npy).unwrap(),
        [1.0, 2.0, 3.0]
    );
    assert_eq!(
        crate::io::values_from_bytes(path, b"1\n# c\n2.5\n").unwrap(),
        [1.0, 2.5]
    );
    let rows = br#"{"question": "q", "choices": ["a", "b"], "answer": 1}"#;
    let mut report = Vec::new();
    let qs = mc_from_lines(
        Path::new("r.jsonl"),
        parse_jsonl(rows),
        Schema::Generic,
        "s",
        2..=4,
        &mut report,
    );
    assert_eq!((qs.len(), report.len()), (1, 0));
}

#[test]
fn gguf_with_a_zero_alignment_is_an_error_not_a_division_by_zero() {
    // candle divides the data offset by general.alignment without checking it.
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes()); // tensors
    b.extend(1u64.to_le_bytes()); // metadata entries
    let key = b"general.alignment";
    b.extend((key.len() as u64).to_le_bytes());
    b.extend(key);
    b.extend(4u32.to_le_bytes()); // U32
    b.extend(0u32.to_le_bytes());
    let mut reader = BufReader::new(Cursor::new(b));
    let device = candle_core::Device::Cpu;
    let err = crate::model::load::gguf::read_gguf(&mut reader, Path::new("m.gguf"), &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("general.alignment") && err.contains("m.gguf"),
        "{err}"
    );
}
