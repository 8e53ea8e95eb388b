//! Where spex keeps the assets it fetches (models, data, wheels): `SPEX_HOME`.
//!
//! `$SPEX_HOME` when set and not empty, else `$HOME/.cache/spex`, else (neither set) `.spex` in
//! the current folder. The last case is the same for every reader, models and data alike, so a
//! process without `HOME` (some containers and CI runners) still finds what it fetched there, and
//! the error for a missing file names the relative path it looked at.

use std::ffi::OsString;
use std::path::PathBuf;

/// The default model's GGUF file, relative to [`spex_home`].
pub const DEFAULT_MODEL_FILE: &str = "models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The assets folder: `$SPEX_HOME`, else `$HOME/.cache/spex`, else `.spex` (relative).
pub fn spex_home() -> PathBuf {
    spex_home_from(|key| std::env::var_os(key))
}

/// [`spex_home`] with the environment given as a lookup function (for tests).
pub fn spex_home_from(env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let var = |key: &str| env(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("SPEX_HOME")
        .or_else(|| var("HOME").map(|home| home.join(".cache").join("spex")))
        .unwrap_or_else(|| PathBuf::from(".spex"))
}

/// The default model's GGUF path, [`DEFAULT_MODEL_FILE`] under [`spex_home`].
pub fn default_model_path() -> PathBuf {
    spex_home().join(DEFAULT_MODEL_FILE)
}

/// The data folder, `data` under [`spex_home`].
pub fn default_data_dir() -> PathBuf {
    spex_home().join("data")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn spex_home_prefers_spex_home_then_home_then_a_relative_folder() {
        let both = env_of(&[("SPEX_HOME", "/s"), ("HOME", "/h")]);
        assert_eq!(spex_home_from(both), PathBuf::from("/s"));
        let home = env_of(&[("SPEX_HOME", ""), ("HOME", "/h")]);
        assert_eq!(spex_home_from(home), PathBuf::from("/h/.cache/spex"));
        assert_eq!(
            spex_home_from(env_of(&[("HOME", "")])),
            PathBuf::from(".spex")
        );
        assert_eq!(spex_home_from(env_of(&[])), PathBuf::from(".spex"));
    }
}
