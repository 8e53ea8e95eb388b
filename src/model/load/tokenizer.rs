//! Tokenizers: read from `tokenizer.json`, or rebuilt from a GGUF's `tokenizer.ggml.*` metadata
//! (byte-level BPE), plus the special-token ids (bos/eos/pad/unk).

use std::collections::HashMap;
use std::path::Path;

use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::model::error::{ModelError, ModelResult};
use crate::model::load::gguf::GgufMetadata;

/// GGUF token type of control tokens (`<|im_start|>`, ...): added as special tokens.
const TOKEN_TYPE_CONTROL: i64 = 3;
/// GGUF token type of user-defined tokens: added as plain (non-special) added tokens.
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// Qwen2's pre-tokenizer split (from its tokenizer.json), applied before a regex-free ByteLevel.
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Ids of the special tokens a model uses (all optional).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning-of-sequence id.
    pub bos: Option<u32>,
    /// End-of-sequence id.
    pub eos: Option<u32>,
    /// Padding id (falls back to `eos` when not given).
    pub pad: Option<u32>,
    /// Unknown-token id.
    pub unk: Option<u32>,
    /// Whether prompts should start with `bos` (`add_bos_token`; false when not given).
    pub add_bos: bool,
}

/// Reads a Hugging Face `tokenizer.json`.
pub fn load_tokenizer(path: &Path) -> ModelResult<Tokenizer> {
    if !path.is_file() {
        return Err(ModelError::MissingFile {
            path: path.to_path_buf(),
            what: "tokenizer.json".to_string(),
            hint: String::new(),
        });
    }
    Tokenizer::from_file(path).map_err(|e| ModelError::Tokenizer {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Rebuilds the byte-level BPE tokenizer stored in a GGUF's metadata: vocab and merges,
/// the pre-tokenizer named by `tokenizer.ggml.pre`, ByteLevel decoder and post-processor,
/// CONTROL tokens as special tokens.
pub fn tokenizer_from_gguf(metadata: &GgufMetadata) -> ModelResult<Tokenizer> {
    let fail = |reason: String| -> ModelError {
        ModelError::Tokenizer {
            path: metadata.path.clone(),
            reason,
        }
    };
    let kind = metadata.string("tokenizer.ggml.model")?;
    if kind != "gpt2" {
        return Err(fail(format!(
            "field `tokenizer.ggml.model`: `{kind}` is not supported (only byte-level BPE, `gpt2`)"
        )));
    }
    let tokens = metadata.strings("tokenizer.ggml.tokens")?;
    let mut vocab = Vocab::with_capacity(tokens.len());
    for (id, token) in tokens.iter().enumerate() {
        let id = u32::try_from(id).map_err(|_| fail("more than 2^32 tokens".to_string()))?;
        if let Some(first) = vocab.insert(token.to_string(), id) {
            return Err(fail(format!(
                "field `tokenizer.ggml.tokens`: `{token}` appears at ids {first} and {id}"
            )));
        }
    }
    let merges = metadata
        .strings("tokenizer.ggml.merges")?
        .iter()
        .enumerate()
        .map(|(i, merge)| {
            merge
                .split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| {
                    metadata.field_error(
                        "tokenizer.ggml.merges",
                        &format!("item {i} `{merge}` is not two tokens separated by a space"),
                    )
                })
        })
        .collect::<ModelResult<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| fail(format!("BPE model: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);

    let pre = metadata
        .opt_string("tokenizer.ggml.pre")?
        .unwrap_or("default");
    match pre {
        "smollm" | "starcoder" | "refact" => {
            let digits_then_bytes = Sequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ]);
            tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(digits_then_bytes)));
        }
        "default" | "gpt2" | "gpt-2" => {
            tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        }
        "qwen2" => {
            let split = Split::new(
                SplitPattern::Regex(QWEN2_SPLIT.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| fail(format!("qwen2 split pattern: {e}")))?;
            let split_then_bytes = Sequence::new(vec![
                split.into(),
                ByteLevel::new(false, false, false).into(),
            ]);
            tokenizer
                .with_normalizer(Some(NFC))
                .map_err(|e| fail(format!("NFC normalizer: {e}")))?;
            tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(split_then_bytes)));
        }
        other => {
            return Err(fail(format!(
                "field `tokenizer.ggml.pre`: pre-tokenizer `{other}` is not supported \
                 (supported: smollm, starcoder, refact, gpt2, default, qwen2)"
            )))
        }
    }
    tokenizer.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));
    tokenizer.with_post_processor(Some(PostProcessorWrapper::ByteLevel(ByteLevel::new(
        false, false, true,
    ))));

    if metadata.values.contains_key("tokenizer.ggml.token_type") {
        let types = metadata.integers("tokenizer.ggml.token_type")?;
        if types.len() != tokens.len() {
            return Err(metadata.field_error(
                "tokenizer.ggml.token_type",
                &format!("{} entries for {} tokens", types.len(), tokens.len()),
            ));
        }
        let added = |wanted: i64, special: bool| -> Vec<AddedToken> {
            tokens
                .iter()
                .zip(&types)
                .filter(|(_, t)| **t == wanted)
                .map(|(token, _)| AddedToken::from(token.to_string(), special).normalized(false))
                .collect()
        };
        tokenizer
            .add_special_tokens(added(TOKEN_TYPE_CONTROL, true))
            .map_err(|e| fail(format!("special tokens: {e}")))?;
        tokenizer
            .add_tokens(added(TOKEN_TYPE_USER_DEFINED, false))
            .map_err(|e| fail(format!("user-defined tokens: {e}")))?;
    }
    Ok(tokenizer)
}

impl SpecialTokens {
    /// Reads `tokenizer.ggml.{bos,eos,padding,unknown}_token_id` and `add_bos_token`; every id
    /// must index `tokenizer.ggml.tokens`.
    pub fn from_gguf(metadata: &GgufMetadata) -> ModelResult<SpecialTokens> {
        let count = metadata.strings("tokenizer.ggml.tokens")?.len();
        let id = |key: &str| -> ModelResult<Option<u32>> {
            let Some(id) = metadata.opt_usize(key)? else {
                return Ok(None);
            };
            match u32::try_from(id) {
                Ok(id32) if id < count => Ok(Some(id32)),
                _ => {
                    Err(metadata.field_error(key, &format!("id {id} is not below {count} tokens")))
                }
            }
        };
        let eos = id("tokenizer.ggml.eos_token_id")?;
        Ok(SpecialTokens {
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos,
            pad: id("tokenizer.ggml.padding_token_id")?.or(eos),
            unk: id("tokenizer.ggml.unknown_token_id")?,
            add_bos: metadata
                .opt_bool("tokenizer.ggml.add_bos_token")?
                .unwrap_or(false),
        })
    }

    /// Reads `bos_token`/`eos_token`/`pad_token`/`unk_token` (strings or `{"content": ..}`) and
    /// `add_bos_token` from a `tokenizer_config.json`, as ids of `tokenizer`.
    pub fn from_tokenizer_config(path: &Path, tokenizer: &Tokenizer) -> ModelResult<SpecialTokens> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::MissingFile {
                path: path.to_path_buf(),
                what: "tokenizer_config.json".to_string(),
                hint: String::new(),
            },
            _ => ModelError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
        })?;
        let json: HashMap<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| ModelError::File {
                path: path.to_path_buf(),
                reason: format!("invalid JSON object: {e}"),
            })?;
        let field_error = |field: &str, reason: String| -> ModelError {
            ModelError::Field {
                path: path.to_path_buf(),
                field: field.to_string(),
                reason,
            }
        };
        let id = |field: &str| -> ModelResult<Option<u32>> {
            let token = match json.get(field) {
                None | Some(serde_json::Value::Null) => return Ok(None),
                Some(serde_json::Value::String(s)) => s.as_str(),
                Some(serde_json::Value::Object(o)) => {
                    o.get("content").and_then(|c| c.as_str()).ok_or_else(|| {
                        field_error(field, "object without a `content` string".into())
                    })?
                }
                Some(_) => return Err(field_error(field, "not a string or object".into())),
            };
            tokenizer
                .token_to_id(token)
                .map(Some)
                .ok_or_else(|| ModelError::Tokenizer {
                    path: path.to_path_buf(),
                    reason: format!("{field} `{token}` is not in the tokenizer's vocabulary"),
                })
        };
        let add_bos = match json.get("add_bos_token") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(_) => return Err(field_error("add_bos_token", "not a boolean".into())),
        };
        let eos = id("eos_token")?;
        Ok(SpecialTokens {
            bos: id("bos_token")?,
            eos,
            pad: id("pad_token")?.or(eos),
            unk: id("unk_token")?,
            add_bos,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::tiny_gguf::Tiny;
    use candle_core::quantized::gguf_file::Value;
    use std::path::PathBuf;

    fn metadata(tiny: &Tiny) -> GgufMetadata {
        GgufMetadata {
            path: PathBuf::from("tiny.gguf"),
            values: tiny.metadata.clone().into_iter().collect(),
        }
    }

    fn ids(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
        tokenizer.encode(text, false).unwrap().get_ids().to_vec()
    }

    #[test]
    fn smollm_pre_tokenizer_splits_digits_and_keeps_control_tokens_whole() {
        let tokenizer = tokenizer_from_gguf(&metadata(&Tiny::llama(false))).unwrap();
        // "<|im_start|>" is one CONTROL token; "ab" merges; " abc" -> Ġ + abc (the "a b" merge
        // outranks "Ġ a"); "\n" -> Ċ; digits are split one by one, so the "1 2" merge never fires.
        let text = "<|im_start|>ab abc\n12";
        assert_eq!(ids(&tokenizer, text), vec![1, 9, 6, 12, 13, 7, 8]);
        let decoded = tokenizer.decode(&[1, 9, 6, 12, 13, 7, 8], false).unwrap();
        assert_eq!(decoded, text);
        assert_eq!(tokenizer.decode(&[1, 9], true).unwrap(), "ab");
    }

    #[test]
    fn gpt2_pre_tokenizer_keeps_digit_runs_together() {
        let mut tiny = Tiny::llama(false);
        tiny.metadata
            .insert("tokenizer.ggml.pre".into(), Value::String("gpt2".into()));
        let tokenizer = tokenizer_from_gguf(&metadata(&tiny)).unwrap();
        assert_eq!(ids(&tokenizer, "12"), vec![14]);
        // " ab" -> Ġ a b: "a b" (rank 0) outranks "Ġ a" (rank 1), so Ġ + ab, never Ġab.
        assert_eq!(ids(&tokenizer, " ab"), vec![6, 9]);
    }

    #[test]
    fn unsupported_tokenizers_are_named() {
        let mut tiny = Tiny::llama(false);
        tiny.metadata.insert(
            "tokenizer.ggml.pre".into(),
            Value::String("llama-bpe".into()),
        );
        let err = tokenizer_from_gguf(&metadata(&tiny))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tokenizer.ggml.pre") && err.contains("llama-bpe"),
            "{err}"
        );

        let mut tiny = Tiny::llama(false);
        tiny.metadata
            .insert("tokenizer.ggml.model".into(), Value::String("llama".into()));
        let err = tokenizer_from_gguf(&metadata(&tiny))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tokenizer.ggml.model") && err.contains("llama"),
            "{err}"
        );

        let mut tiny = Tiny::llama(false);
        let bad = Value::Array(vec![Value::String("ab".into())]);
        tiny.metadata.insert("tokenizer.ggml.merges".into(), bad);
        let err = tokenizer_from_gguf(&metadata(&tiny))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tokenizer.ggml.merges") && err.contains("item 0"),
            "{err}"
        );

        let mut tiny = Tiny::llama(false);
        let short = Value::Array(vec![Value::I32(1)]);
        tiny.metadata
            .insert("tokenizer.ggml.token_type".into(), short);
        let err = tokenizer_from_gguf(&metadata(&tiny))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tokenizer.ggml.token_type"), "{err}");
    }

    #[test]
    fn special_ids_from_gguf_fall_back_to_eos_for_padding() {
        let mut tiny = Tiny::llama(false);
        let special = SpecialTokens::from_gguf(&metadata(&tiny)).unwrap();
        let want = SpecialTokens {
            bos: Some(1),
            eos: Some(2),
            pad: Some(2),
            unk: None,
            add_bos: false,
        };
        assert_eq!(special, want);
        tiny.metadata
            .insert("tokenizer.ggml.padding_token_id".into(), Value::U32(0));
        tiny.metadata
            .insert("tokenizer.ggml.add_bos_token".into(), Value::Bool(true));
        let special = SpecialTokens::from_gguf(&metadata(&tiny)).unwrap();
        assert_eq!((special.pad, special.add_bos), (Some(0), true));
        tiny.metadata
            .insert("tokenizer.ggml.eos_token_id".into(), Value::U32(99));
        let err = SpecialTokens::from_gguf(&metadata(&tiny))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tokenizer.ggml.eos_token_id") && err.contains("99"),
            "{err}"
        );
    }

    #[test]
    fn tokenizer_json_round_trip_and_special_ids_from_tokenizer_config() {
        let tokenizer = tokenizer_from_gguf(&metadata(&Tiny::llama(false))).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        tokenizer.save(&path, false).unwrap();
        let loaded = load_tokenizer(&path).unwrap();
        let text = "<|im_end|> ab\n12abc";
        assert_eq!(ids(&loaded, text), ids(&tokenizer, text));

        let config = dir.path().join("tokenizer_config.json");
        let json = r#"{"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"},
                       "unk_token": null, "add_bos_token": false}"#;
        std::fs::write(&config, json).unwrap();
        let special = SpecialTokens::from_tokenizer_config(&config, &loaded).unwrap();
        let want = SpecialTokens {
            bos: Some(1),
            eos: Some(2),
            pad: Some(2),
            unk: None,
            add_bos: false,
        };
        assert_eq!(special, want);

        std::fs::write(&config, r#"{"eos_token": "<|nope|>"}"#).unwrap();
        let err = SpecialTokens::from_tokenizer_config(&config, &loaded)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("eos_token") && err.contains("<|nope|>"),
            "{err}"
        );
    }

    #[test]
    fn missing_or_broken_tokenizer_json_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let err = load_tokenizer(&path).unwrap_err().to_string();
        assert!(
            err.contains("tokenizer.json") && err.contains("not found"),
            "{err}"
        );
        std::fs::write(&path, "{").unwrap();
        let err = load_tokenizer(&path).unwrap_err().to_string();
        assert!(
            err.contains("tokenizer.json") && err.contains("tokenizer"),
            "{err}"
        );
    }
}
