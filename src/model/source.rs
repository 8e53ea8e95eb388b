//! Where a model comes from: a folder, an `org/name` in the Hugging Face cache, a `.gguf` file,
//! or the default model (SmolLM2-135M-Instruct as a GGUF under `SPEX_HOME`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{hub, LoadError};
use crate::Result;

/// The default model's file, relative to [`spex_home`].
pub const DEFAULT_MODEL_FILE: &str = "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";

/// A located model: every path exists (the files are not parsed yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A Hugging Face style folder.
    Folder {
        /// `config.json`.
        config: PathBuf,
        /// `model.safetensors`, or the shards named by `model.safetensors.index.json` (sorted).
        weights: Vec<PathBuf>,
        /// `tokenizer.json`.
        tokenizer: PathBuf,
    },
    /// A single GGUF file (weights, configuration and tokenizer in one).
    Gguf(PathBuf),
}

/// The folder holding fetched assets: `$SPEX_HOME`, else `~/.cache/spex`; `None` without `HOME`.
pub fn spex_home() -> Option<PathBuf> {
    let env = |key: &str| {
        std::env::var_os(key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("SPEX_HOME").or_else(|| env("HOME").map(|home| home.join(".cache").join("spex")))
}

/// The default model's GGUF path under [`spex_home`].
pub fn default_model_path() -> Option<PathBuf> {
    spex_home().map(|home| home.join(DEFAULT_MODEL_FILE))
}

impl ModelSource {
    /// Resolves `--model`: a folder, a `.gguf` file, an `org/name` in the hub cache, or (for
    /// `None`) the default model.
    pub fn resolve(arg: Option<&str>) -> Result<ModelSource> {
        match arg {
            None => Self::default_model(),
            Some(arg) => Self::resolve_with_cache(arg, hub::hub_cache_dir().as_deref()),
        }
    }

    /// The default model, or an error that says how to fetch it.
    pub fn default_model() -> Result<ModelSource> {
        let hint =
            "; run `bash models/fetch.sh` to fetch it (or pass --model DIR|org/name|FILE.gguf)";
        let path = default_model_path().ok_or_else(|| LoadError::Missing {
            path: PathBuf::from("$SPEX_HOME"),
            what: "SPEX_HOME and HOME are both unset, so the default model".to_string(),
            hint: hint.to_string(),
        })?;
        if !path.is_file() {
            return Err(LoadError::Missing {
                path,
                what: "the default model (SmolLM2-135M-Instruct GGUF)".to_string(),
                hint: hint.to_string(),
            }
            .into());
        }
        Ok(ModelSource::Gguf(path))
    }

    /// [`ModelSource::resolve`] for a given argument with an explicit hub cache folder.
    pub fn resolve_with_cache(arg: &str, cache: Option<&Path>) -> Result<ModelSource> {
        let path = Path::new(arg);
        if path.is_dir() {
            return Self::from_folder(path);
        }
        if path.is_file() {
            if is_gguf(path) {
                return Ok(ModelSource::Gguf(path.to_path_buf()));
            }
            return Err(LoadError::Unreadable {
                path: path.to_path_buf(),
                reason: "--model must be a folder, a .gguf file or an org/name id".to_string(),
            }
            .into());
        }
        if is_gguf(path) || !hub::looks_like_repo_id(arg) {
            return Err(LoadError::Missing {
                path: path.to_path_buf(),
                what: "--model".to_string(),
                hint: String::new(),
            }
            .into());
        }
        let cache = cache.ok_or_else(|| LoadError::NotInCache {
            repo: arg.to_string(),
            cache: PathBuf::from("~/.cache/huggingface/hub"),
            reason: "no HF_HUB_CACHE, HF_HOME or HOME is set".to_string(),
        })?;
        Self::from_folder(&hub::snapshot_dir(cache, arg)?)
    }

    /// A Hugging Face folder (config.json, tokenizer.json, safetensors) or a folder holding a
    /// single `.gguf` file and no config.json.
    pub fn from_folder(dir: &Path) -> Result<ModelSource> {
        let config = dir.join("config.json");
        if !config.is_file() {
            let ggufs = gguf_files(dir)?;
            if ggufs.len() == 1 {
                return Ok(ModelSource::Gguf(ggufs[0].clone()));
            }
            let hint = if ggufs.is_empty() {
                String::new()
            } else {
                "; the folder holds several .gguf files: pass one of them".to_string()
            };
            return Err(LoadError::Missing {
                path: config,
                what: "config.json".to_string(),
                hint,
            }
            .into());
        }
        let tokenizer = dir.join("tokenizer.json");
        if !tokenizer.is_file() {
            return Err(missing(tokenizer, "tokenizer.json"));
        }
        let weights = safetensors_files(dir)?;
        Ok(ModelSource::Folder {
            config,
            weights,
            tokenizer,
        })
    }
}

fn missing(path: PathBuf, what: &str) -> crate::Error {
    LoadError::Missing {
        path,
        what: what.to_string(),
        hint: String::new(),
    }
    .into()
}

fn is_gguf(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gguf"))
}

/// The `.gguf` files directly inside `dir`, sorted.
fn gguf_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError::Unreadable {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && is_gguf(path))
        .collect();
    found.sort();
    Ok(found)
}

/// `model.safetensors`, else the shards listed in `model.safetensors.index.json` (sorted, unique).
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(missing(
            single,
            "model.safetensors (nor model.safetensors.index.json)",
        ));
    }
    let text = std::fs::read_to_string(&index).map_err(|e| LoadError::Unreadable {
        path: index.clone(),
        reason: e.to_string(),
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| LoadError::Unreadable {
            path: index.clone(),
            reason: format!("invalid JSON: {e}"),
        })?;
    let field_error = |reason: &str| LoadError::Field {
        path: index.clone(),
        field: "weight_map".to_string(),
        reason: reason.to_string(),
    };
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| field_error("missing or not an object"))?;
    let mut shards = BTreeSet::new();
    for value in map.values() {
        let name = value
            .as_str()
            .ok_or_else(|| field_error("a value is not a file name"))?;
        let plain = Path::new(name).file_name().is_some_and(|f| f == name);
        if !plain {
            return Err(field_error(&format!("`{name}` is not a plain file name")).into());
        }
        shards.insert(name.to_string());
    }
    if shards.is_empty() {
        return Err(field_error("lists no shard").into());
    }
    let mut weights = Vec::with_capacity(shards.len());
    for name in shards {
        let shard = dir.join(&name);
        if !shard.is_file() {
            return Err(missing(
                shard,
                "safetensors shard named by model.safetensors.index.json",
            ));
        }
        weights.push(shard);
    }
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn hf_folder(dir: &Path) {
        touch(&dir.join("config.json"), "{}");
        touch(&dir.join("tokenizer.json"), "{}");
        touch(&dir.join("model.safetensors"), "");
    }

    #[test]
    fn folder_with_single_safetensors() {
        let tmp = tempfile::tempdir().unwrap();
        hf_folder(tmp.path());
        let src = ModelSource::resolve_with_cache(tmp.path().to_str().unwrap(), None).unwrap();
        assert_eq!(
            src,
            ModelSource::Folder {
                config: tmp.path().join("config.json"),
                weights: vec![tmp.path().join("model.safetensors")],
                tokenizer: tmp.path().join("tokenizer.json"),
            }
        );
    }

    #[test]
    fn folder_with_sharded_index() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        touch(&dir.join("config.json"), "{}");
        touch(&dir.join("tokenizer.json"), "{}");
        let index = r#"{"metadata": {}, "weight_map": {
            "b": "model-00002-of-00002.safetensors",
            "a": "model-00001-of-00002.safetensors",
            "c": "model-00002-of-00002.safetensors"}}"#;
        touch(&dir.join("model.safetensors.index.json"), index);
        touch(&dir.join("model-00001-of-00002.safetensors"), "");
        let err = ModelSource::from_folder(dir).unwrap_err().to_string();
        assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");
        touch(&dir.join("model-00002-of-00002.safetensors"), "");
        let ModelSource::Folder { weights, .. } = ModelSource::from_folder(dir).unwrap() else {
            panic!("expected a folder source");
        };
        assert_eq!(
            weights,
            vec![
                dir.join("model-00001-of-00002.safetensors"),
                dir.join("model-00002-of-00002.safetensors")
            ]
        );
    }

    #[test]
    fn index_with_a_path_outside_the_folder_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        touch(&dir.join("config.json"), "{}");
        touch(&dir.join("tokenizer.json"), "{}");
        touch(
            &dir.join("model.safetensors.index.json"),
            r#"{"weight_map": {"a": "../x.safetensors"}}"#,
        );
        let err = ModelSource::from_folder(dir).unwrap_err().to_string();
        assert!(
            err.contains("weight_map") && err.contains("../x.safetensors"),
            "{err}"
        );
    }

    #[test]
    fn missing_files_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let err = ModelSource::from_folder(dir).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        touch(&dir.join("config.json"), "{}");
        let err = ModelSource::from_folder(dir).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
        touch(&dir.join("tokenizer.json"), "{}");
        let err = ModelSource::from_folder(dir).unwrap_err().to_string();
        assert!(err.contains("model.safetensors"), "{err}");
    }

    #[test]
    fn gguf_file_and_folder_holding_one_gguf() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("m.Q4_1.GGUF");
        touch(&file, "");
        let arg = file.to_str().unwrap();
        assert_eq!(
            ModelSource::resolve_with_cache(arg, None).unwrap(),
            ModelSource::Gguf(file.clone())
        );
        let folder = tmp.path().to_str().unwrap();
        assert_eq!(
            ModelSource::resolve_with_cache(folder, None).unwrap(),
            ModelSource::Gguf(file)
        );
        let err = ModelSource::resolve_with_cache("/no/such/model.gguf", None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/no/such/model.gguf") && err.contains("not found"),
            "{err}"
        );
    }

    #[test]
    fn repo_id_resolves_in_the_hub_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("models--HuggingFaceTB--SmolLM2-135M");
        let snap = repo.join("snapshots").join("abc123");
        hf_folder(&snap);
        touch(&repo.join("refs").join("main"), "abc123");
        // Run from a folder where no `HuggingFaceTB/SmolLM2-135M` path exists.
        let src = ModelSource::resolve_with_cache("HuggingFaceTB/SmolLM2-135M", Some(tmp.path()))
            .unwrap();
        let ModelSource::Folder { config, .. } = src else {
            panic!("expected a folder source");
        };
        assert_eq!(config, snap.join("config.json"));
        let err = ModelSource::resolve_with_cache("HuggingFaceTB/other", Some(tmp.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("HuggingFaceTB/other"), "{err}");
    }
}
