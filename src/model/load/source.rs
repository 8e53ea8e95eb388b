//! Where a model comes from: a folder, an `org/name` in the Hugging Face cache, a `.gguf` file,
//! or the default model (SmolLM2-135M-Instruct as a GGUF under [`spex_home`](crate::home::spex_home)).
//! Resolved once: [`Model::open`](crate::model::Model::open) reads exactly the paths found here.

use std::path::{Path, PathBuf};

use super::download::download_snapshot;
use super::hub::{self, HubAccess};
use super::safetensors::index_shards;
use crate::home::default_model_path;
use crate::model::error::{ModelError, ModelResult};

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

impl ModelSource {
    /// Resolves a model argument: a folder, a `.gguf` file, an `org/name` at its `main` revision
    /// (see [`ModelSource::resolve_at`]), or (for `None`) the default model.
    pub fn resolve(arg: Option<&str>) -> ModelResult<ModelSource> {
        Self::resolve_at(arg, None)
    }

    /// [`ModelSource::resolve`], an `org/name` taken at `revision` (default `main`): from the hub
    /// cache, or downloaded into it as the environment allows ([`HubAccess::from_env`]).
    pub fn resolve_at(arg: Option<&str>, revision: Option<&str>) -> ModelResult<ModelSource> {
        match arg {
            None => Self::default_model(),
            Some(arg) => Self::resolve_with(arg, &HubAccess::from_env(revision)),
        }
    }

    /// The default model ([`default_model_path`]), or an error that says how to fetch it.
    pub fn default_model() -> ModelResult<ModelSource> {
        let path = default_model_path();
        if !path.is_file() {
            return Err(ModelError::MissingFile {
                path,
                what: "the default model (SmolLM2-135M-Instruct GGUF)".to_string(),
                hint: "; run `bash models/fetch.sh` to fetch it, or name another model".to_string(),
            });
        }
        Ok(ModelSource::Gguf(path))
    }

    /// [`ModelSource::resolve`] for a given argument under explicit hub settings: a complete
    /// snapshot in the cache is used as it is; otherwise, unless offline, the missing files are
    /// downloaded.
    pub fn resolve_with(arg: &str, access: &HubAccess) -> ModelResult<ModelSource> {
        let path = Path::new(arg);
        if path.is_dir() {
            return Self::from_folder(path);
        }
        if path.is_file() {
            if is_gguf(path) {
                return Ok(ModelSource::Gguf(path.to_path_buf()));
            }
            return Err(ModelError::file(
                path,
                "a model is a folder, a .gguf file or an org/name id",
            ));
        }
        if is_gguf(path) || !hub::looks_like_repo_id(arg) {
            return Err(ModelError::missing(path, "model (folder or .gguf file)"));
        }
        let cache = access
            .cache
            .as_deref()
            .ok_or_else(|| ModelError::NotInCache {
                repo: arg.to_string(),
                cache: PathBuf::from("~/.cache/huggingface/hub"),
                reason: "no HF_HUB_CACHE, HF_HOME or HOME is set".to_string(),
            })?;
        let cached =
            hub::snapshot_dir(cache, arg, &access.revision).and_then(|dir| Self::from_folder(&dir));
        match cached {
            Ok(source) => Ok(source),
            Err(ModelError::NotInCache {
                repo,
                cache,
                reason,
            }) if access.offline => Err(ModelError::NotInCache {
                repo,
                cache,
                reason: format!("{reason}; HF_HUB_OFFLINE is set, so nothing is downloaded"),
            }),
            Err(e) if access.offline => Err(e),
            Err(_) => Self::from_folder(&download_snapshot(cache, arg, access)?),
        }
    }

    /// A Hugging Face folder (config.json, tokenizer.json, safetensors) or a folder holding a
    /// single `.gguf` file and no config.json.
    pub fn from_folder(dir: &Path) -> ModelResult<ModelSource> {
        if !dir.is_dir() {
            return Err(ModelError::missing(dir, "model folder"));
        }
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
            return Err(ModelError::MissingFile {
                path: config,
                what: "config.json".to_string(),
                hint,
            });
        }
        let tokenizer = dir.join("tokenizer.json");
        if !tokenizer.is_file() {
            return Err(ModelError::missing(tokenizer, "tokenizer.json"));
        }
        let weights = safetensors_files(dir)?;
        Ok(ModelSource::Folder {
            config,
            weights,
            tokenizer,
        })
    }
}

fn is_gguf(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gguf"))
}

/// The `.gguf` files directly inside `dir`, sorted.
fn gguf_files(dir: &Path) -> ModelResult<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| ModelError::File {
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
fn safetensors_files(dir: &Path) -> ModelResult<Vec<PathBuf>> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if !index.is_file() {
        return Err(ModelError::missing(
            single,
            "model.safetensors (nor model.safetensors.index.json)",
        ));
    }
    let mut weights = Vec::new();
    for name in index_shards(&index)? {
        let shard = dir.join(&name);
        if !shard.is_file() {
            return Err(ModelError::missing(
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
        let src =
            ModelSource::resolve_with(tmp.path().to_str().unwrap(), &HubAccess::offline(None))
                .unwrap();
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
            ModelSource::resolve_with(arg, &HubAccess::offline(None)).unwrap(),
            ModelSource::Gguf(file.clone())
        );
        let folder = tmp.path().to_str().unwrap();
        assert_eq!(
            ModelSource::resolve_with(folder, &HubAccess::offline(None)).unwrap(),
            ModelSource::Gguf(file)
        );
        let err = ModelSource::resolve_with("/no/such/model.gguf", &HubAccess::offline(None))
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
        let src = ModelSource::resolve_with(
            "HuggingFaceTB/SmolLM2-135M",
            &HubAccess::offline(Some(tmp.path())),
        )
        .unwrap();
        let ModelSource::Folder { config, .. } = src else {
            panic!("expected a folder source");
        };
        assert_eq!(config, snap.join("config.json"));
        let err =
            ModelSource::resolve_with("HuggingFaceTB/other", &HubAccess::offline(Some(tmp.path())))
                .unwrap_err()
                .to_string();
        assert!(err.contains("HuggingFaceTB/other"), "{err}");
    }
}
