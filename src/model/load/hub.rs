//! Finds a model `org/name` in the local Hugging Face hub cache, and the settings under which a
//! missing one is downloaded ([`HubAccess`], read from the variables Hugging Face tools read).
//!
//! Layout: `<cache>/models--org--name/refs/<revision>` holds a commit hash and
//! `<cache>/models--org--name/snapshots/<hash>/` holds the files (symlinks into `blobs/`).

use std::path::{Path, PathBuf};

use crate::model::error::{ModelError, ModelResult};

/// The Hub that `HF_ENDPOINT` replaces.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How an `org/name` model is found: the cache, the revision, and whether and from where a
/// missing one is downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubAccess {
    /// The hub cache folder ([`hub_cache_dir`]); `None` when no variable locates one.
    pub cache: Option<PathBuf>,
    /// Branch, tag or commit hash (`main` unless asked).
    pub revision: String,
    /// The Hub's address (`HF_ENDPOINT`, else [`DEFAULT_ENDPOINT`]).
    pub endpoint: String,
    /// Access token for gated and private repositories (`HF_TOKEN`, else the token file that
    /// `hf auth login` writes).
    pub token: Option<String>,
    /// `HF_HUB_OFFLINE`: the cache only, never the network.
    pub offline: bool,
    /// Whether downloads draw a progress bar on stderr.
    pub progress: bool,
}

impl HubAccess {
    /// The settings the environment gives, at `revision` (default `main`).
    pub fn from_env(revision: Option<&str>) -> HubAccess {
        Self::from_env_with(revision, |key| {
            std::env::var(key).ok().filter(|v| !v.is_empty())
        })
    }

    /// [`HubAccess::from_env`] with the environment as a lookup function (for tests).
    pub fn from_env_with(
        revision: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> HubAccess {
        let path_env = |key: &str| env(key).map(PathBuf::from);
        let token_file = path_env("HF_TOKEN_PATH").or_else(|| {
            let home = path_env("HF_HOME").or_else(|| {
                let cache = path_env("XDG_CACHE_HOME")
                    .or_else(|| path_env("HOME").map(|h| h.join(".cache")))?;
                Some(cache.join("huggingface"))
            })?;
            Some(home.join("token"))
        });
        let token = env("HF_TOKEN").or_else(|| {
            let text = std::fs::read_to_string(token_file?).ok()?;
            Some(text.trim().to_string()).filter(|t| !t.is_empty())
        });
        // huggingface_hub's truthy spellings.
        let offline = env("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "on" | "yes" | "true")
        });
        HubAccess {
            cache: hub_cache_dir_from(path_env),
            revision: revision.unwrap_or("main").to_string(),
            endpoint: env("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
            token,
            offline,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }

    /// The cache at `cache` only, revision `main`: no download is ever tried.
    pub fn offline(cache: Option<&Path>) -> HubAccess {
        HubAccess {
            cache: cache.map(Path::to_path_buf),
            revision: "main".to_string(),
            endpoint: DEFAULT_ENDPOINT.to_string(),
            token: None,
            offline: true,
            progress: false,
        }
    }
}

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

/// The snapshot folder of `repo` (`org/name`) at `revision` inside the hub cache `cache`: the
/// commit that `refs/<revision>` names, a commit hash given as the revision, or (for `main`
/// without a ref) the only snapshot there is.
pub fn snapshot_dir(cache: &Path, repo: &str, revision: &str) -> ModelResult<PathBuf> {
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
    let ref_file = repo_dir.join("refs").join(revision);
    let is_commit = revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit());
    let hash = match std::fs::read_to_string(&ref_file) {
        Ok(text) => text.trim().to_string(),
        Err(_) if is_commit => revision.to_string(),
        Err(_) if revision != "main" => {
            return Err(not_in_cache(format!("no {}", ref_file.display())))
        }
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
        assert_eq!(snapshot_dir(tmp.path(), "org/name", "main").unwrap(), snap);
    }

    #[test]
    fn single_snapshot_is_used_without_refs_main() {
        let tmp = tempfile::tempdir().unwrap();
        let snap = fake_cache(tmp.path(), "0123abcd", false);
        assert_eq!(snapshot_dir(tmp.path(), "org/name", "main").unwrap(), snap);
    }

    #[test]
    fn missing_repo_and_missing_snapshot_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let err = snapshot_dir(tmp.path(), "org/other", "main")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("org/other") && err.contains("models--org--other"),
            "{err}"
        );

        fake_cache(tmp.path(), "0123abcd", true);
        std::fs::write(tmp.path().join("models--org--name/refs/main"), "deadbeef").unwrap();
        let err = snapshot_dir(tmp.path(), "org/name", "main")
            .unwrap_err()
            .to_string();
        assert!(err.contains("snapshots/deadbeef"), "{err}");
        let err = snapshot_dir(tmp.path(), "org/name", "v2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("refs/v2"), "{err}");
    }

    #[test]
    fn revisions_are_refs_or_commit_hashes() {
        let tmp = tempfile::tempdir().unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let snap = fake_cache(tmp.path(), commit, false);
        assert_eq!(snapshot_dir(tmp.path(), "org/name", commit).unwrap(), snap);
        let refs = tmp.path().join("models--org--name/refs");
        std::fs::create_dir_all(&refs).unwrap();
        std::fs::write(refs.join("v1"), commit).unwrap();
        assert_eq!(snapshot_dir(tmp.path(), "org/name", "v1").unwrap(), snap);
    }

    #[test]
    fn access_reads_the_hugging_face_variables() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("token"), "hf_file\n").unwrap();
        let home = tmp.path().to_str().unwrap().to_string();
        let env = |pairs: Vec<(&'static str, String)>| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
            }
        };
        let a = HubAccess::from_env_with(None, env(vec![("HF_HOME", home.clone())]));
        assert_eq!(a.token.as_deref(), Some("hf_file"));
        assert_eq!(a.cache, Some(tmp.path().join("hub")));
        assert_eq!((a.revision.as_str(), a.offline), ("main", false));
        assert_eq!(a.endpoint, DEFAULT_ENDPOINT);
        let a = HubAccess::from_env_with(
            Some("v1"),
            env(vec![
                ("HF_HOME", home),
                ("HF_TOKEN", "hf_env".into()),
                ("HF_HUB_OFFLINE", "TRUE".into()),
                ("HF_ENDPOINT", "http://127.0.0.1:9".into()),
            ]),
        );
        assert_eq!(a.token.as_deref(), Some("hf_env"));
        assert!(a.offline && a.revision == "v1" && a.endpoint == "http://127.0.0.1:9");
        for off in ["0", "no", "false"] {
            let a = HubAccess::from_env_with(None, env(vec![("HF_HUB_OFFLINE", off.into())]));
            assert!(!a.offline, "{off}");
        }
    }
}
