//! Finds a model `org/name` in the local Hugging Face hub cache (never the network).
//!
//! Layout: `<cache>/models--org--name/refs/main` holds a commit hash and
//! `<cache>/models--org--name/snapshots/<hash>/` holds the files (symlinks into `blobs/`).

use std::path::{Path, PathBuf};

use crate::model::error::{ModelError, ModelResult};

/// The hub cache folder: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`; `None` without any of them.
pub fn hub_cache_dir() -> Option<PathBuf> {
    hub_cache_dir_from(|key| {
        std::env::var_os(key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// [`hub_cache_dir`] with the environment given as a lookup function (for tests).
pub fn hub_cache_dir_from(env: impl Fn(&str) -> Option<PathBuf>) -> Option<PathBuf> {
    if let Some(dir) = env("HF_HUB_CACHE") {
        return Some(dir);
    }
    if let Some(home) = env("HF_HOME") {
        return Some(home.join("hub"));
    }
    let cache = env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|h| h.join(".cache")))?;
    Some(cache.join("huggingface").join("hub"))
}

/// Whether `arg` has the shape of a hub model id (`name` or `org/name`, letters, digits, `-_.`).
pub fn looks_like_repo_id(arg: &str) -> bool {
    let parts: Vec<&str> = arg.split('/').collect();
    let part_ok = |p: &str| {
        !p.is_empty()
            && p != "."
            && p != ".."
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (parts.len() == 1 || parts.len() == 2) && parts.iter().all(|p| part_ok(p))
}

/// The snapshot folder of `repo` (`org/name`) at `refs/main` inside the hub cache `cache`.
pub fn snapshot_dir(cache: &Path, repo: &str) -> ModelResult<PathBuf> {
    let not_in_cache = |reason: String| ModelError::NotInCache {
        repo: repo.to_string(),
        cache: cache.to_path_buf(),
        reason,
    };
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    if !repo_dir.is_dir() {
        return Err(not_in_cache(format!("no folder {}", repo_dir.display())));
    }
    let snapshots = repo_dir.join("snapshots");
    let ref_file = repo_dir.join("refs").join("main");
    let hash = match std::fs::read_to_string(&ref_file) {
        Ok(text) => text.trim().to_string(),
        Err(_) => only_snapshot(&snapshots).ok_or_else(|| {
            not_in_cache(format!(
                "no {} and not exactly one folder in {}",
                ref_file.display(),
                snapshots.display()
            ))
        })?,
    };
    let valid_hash = !hash.is_empty() && hash.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid_hash {
        return Err(ModelError::Field {
            path: ref_file,
            field: "commit hash".to_string(),
            reason: format!("`{hash}` is not a commit hash"),
        });
    }
    let dir = snapshots.join(&hash);
    if !dir.is_dir() {
        return Err(not_in_cache(format!(
            "snapshot {} is missing",
            dir.display()
        )));
    }
    Ok(dir)
}

/// The name of the single folder in `snapshots`, if there is exactly one.
fn only_snapshot(snapshots: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(snapshots)
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    if names.len() == 1 {
        names.pop()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<PathBuf> {
        let map: BTreeMap<String, PathBuf> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn cache_dir_follows_the_hugging_face_precedence() {
        let all = [
            ("HF_HUB_CACHE", "/a"),
            ("HF_HOME", "/b"),
            ("XDG_CACHE_HOME", "/c"),
            ("HOME", "/d"),
        ];
        assert_eq!(hub_cache_dir_from(env_of(&all)), Some(PathBuf::from("/a")));
        assert_eq!(
            hub_cache_dir_from(env_of(&all[1..])),
            Some(PathBuf::from("/b/hub"))
        );
        assert_eq!(
            hub_cache_dir_from(env_of(&all[2..])),
            Some(PathBuf::from("/c/huggingface/hub"))
        );
        assert_eq!(
            hub_cache_dir_from(env_of(&all[3..])),
            Some(PathBuf::from("/d/.cache/huggingface/hub"))
        );
        assert_eq!(hub_cache_dir_from(env_of(&[])), None);
    }

    #[test]
    fn repo_ids_are_recognised() {
        for ok in ["HuggingFaceTB/SmolLM2-135M", "gpt2", "Qwen/Qwen2.5-0.5B"] {
            assert!(looks_like_repo_id(ok), "{ok}");
        }
        for bad in [
            "./model",
            "/abs/path",
            "a/b/c",
            "../x",
            "a//b",
            "",
            "org/na me",
        ] {
            assert!(!looks_like_repo_id(bad), "{bad}");
        }
    }

    /// Writes `models--org--name/{refs/main, snapshots/<hash>/config.json}` as the hub does.
    fn fake_cache(root: &Path, hash: &str, write_ref: bool) -> PathBuf {
        let repo = root.join("models--org--name");
        let snap = repo.join("snapshots").join(hash);
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(snap.join("config.json"), "{}").unwrap();
        if write_ref {
            std::fs::create_dir_all(repo.join("refs")).unwrap();
            std::fs::write(repo.join("refs").join("main"), format!("{hash}\n")).unwrap();
        }
        snap
    }

    #[test]
    fn snapshot_is_found_through_refs_main() {
        let tmp = tempfile::tempdir().unwrap();
        let snap = fake_cache(tmp.path(), "0123abcd", true);
        // A second, older snapshot must not confuse the lookup.
        std::fs::create_dir_all(tmp.path().join("models--org--name/snapshots/ffff0000")).unwrap();
        assert_eq!(snapshot_dir(tmp.path(), "org/name").unwrap(), snap);
    }

    #[test]
    fn single_snapshot_is_used_without_refs_main() {
        let tmp = tempfile::tempdir().unwrap();
        let snap = fake_cache(tmp.path(), "0123abcd", false);
        assert_eq!(snapshot_dir(tmp.path(), "org/name").unwrap(), snap);
    }

    #[test]
    fn missing_repo_and_missing_snapshot_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let err = snapshot_dir(tmp.path(), "org/other")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("org/other") && err.contains("models--org--other"),
            "{err}"
        );

        fake_cache(tmp.path(), "0123abcd", true);
        std::fs::write(tmp.path().join("models--org--name/refs/main"), "deadbeef").unwrap();
        let err = snapshot_dir(tmp.path(), "org/name")
            .unwrap_err()
            .to_string();
        assert!(err.contains("snapshots/deadbeef"), "{err}");
    }
}
