//! Downloads the files of a model `org/name` that the cache lacks, through the `hf-hub` crate's
//! blocking client, into the shared Hugging Face cache (the layout transformers reads): the
//! config, the tokenizer and the safetensors weights (one file or the shards an index names).

use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use super::hub::HubAccess;
use super::safetensors::index_shards;
use crate::model::error::{ModelError, ModelResult};

/// The snapshot folder of `repo` at `access.revision` in the cache `cache`, with config.json,
/// tokenizer.json and the safetensors weights in it, downloading whichever are missing.
pub fn download_snapshot(cache: &Path, repo: &str, access: &HubAccess) -> ModelResult<PathBuf> {
    let failed = |file: &str, reason: String| ModelError::Hub {
        repo: repo.to_string(),
        revision: access.revision.clone(),
        file: file.to_string(),
        reason,
    };
    let api = ApiBuilder::from_cache(Cache::new(cache.to_path_buf()))
        .with_endpoint(access.endpoint.trim_end_matches('/').to_string())
        .with_token(access.token.clone())
        .with_progress(access.progress)
        .with_retries(2)
        .build()
        .map_err(|e| failed("config.json", e.to_string()))?;
    let remote = api.repo(Repo::with_revision(
        repo.to_string(),
        RepoType::Model,
        access.revision.clone(),
    ));
    let get = |file: &str| -> ModelResult<Option<PathBuf>> {
        match remote.get(file) {
            Ok(path) => Ok(Some(path)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(failed(file, describe(&e, access))),
        }
    };
    let required = |file: &str| -> ModelResult<PathBuf> {
        get(file)?
            .ok_or_else(|| failed(file, format!("{} has no such file (404)", remote.url(file))))
    };
    let config = required("config.json")?;
    required("tokenizer.json")?;
    match get("model.safetensors.index.json")? {
        Some(index) => {
            for shard in index_shards(&index)? {
                required(&shard)?;
            }
        }
        None => {
            required("model.safetensors")?;
        }
    }
    let folder = config
        .parent()
        .ok_or_else(|| failed("config.json", "the cache gave no folder".to_string()))?;
    Ok(folder.to_path_buf())
}

/// The HTTP status of a failed request, if the server answered.
fn status(e: &ApiError) -> Option<u16> {
    match e {
        ApiError::RequestError(inner) => match inner.as_ref() {
            ureq::Error::Status(code, _) => Some(*code),
            ureq::Error::Transport(_) => None,
        },
        ApiError::TooManyRetries(inner) => status(inner),
        _ => None,
    }
}

/// What went wrong, and what the user can do about it.
fn describe(e: &ApiError, access: &HubAccess) -> String {
    match status(e) {
        Some(401 | 403) => format!(
            "{e}: the repository is gated or private; accept its terms on the Hub and set HF_TOKEN (or run `hf auth login`){}",
            if access.token.is_some() { " with a token that may read it" } else { "" }
        ),
        Some(_) => e.to_string(),
        None => format!(
            "{e} (no connection to {}? HF_HUB_OFFLINE=1 uses the cache only)",
            access.endpoint
        ),
    }
}
