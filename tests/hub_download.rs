//! `--model org/name` against a Hugging Face Hub served by the test itself on 127.0.0.1 (the
//! `resolve` endpoint with ranges, ETag and X-Repo-Commit, as the Hub answers): the first run
//! downloads into the cache, the second reads the cache without a request, an offline run reads
//! the cache, `--revision` picks another commit, a sharded index is followed, a gated repository
//! needs HF_TOKEN, and a missing file or an offline miss is an error naming the repository and
//! the file. No test reaches the internet.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{ok, refused};

const COMMIT_MAIN: &str = "1111111111111111111111111111111111111111";
const COMMIT_V1: &str = "2222222222222222222222222222222222222222";
const TOKEN: &str = "hf_secret";

/// One revision of a repository: its commit and its files.
struct Revision {
    commit: &'static str,
    files: HashMap<String, Vec<u8>>,
}

/// The repositories the test Hub serves, keyed by (`org/name`, revision).
struct Hub {
    repos: HashMap<(String, String), Revision>,
    /// Repositories that answer 401 without `Authorization: Bearer TOKEN`.
    gated: Vec<String>,
    requests: AtomicUsize,
}

fn tiny_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny_models/gemma2")
}

fn files_of(dir: &Path, names: &[&str]) -> HashMap<String, Vec<u8>> {
    names
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap()))
        .collect()
}

/// The tiny model as one shard behind a `model.safetensors.index.json`.
fn sharded_files() -> HashMap<String, Vec<u8>> {
    let mut files = files_of(&tiny_model(), &["config.json", "tokenizer.json"]);
    let weights = std::fs::read(tiny_model().join("model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&weights[8..8 + header_len]).unwrap();
    let shard = "model-00001-of-00001.safetensors";
    let map: serde_json::Map<String, serde_json::Value> = header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .map(|k| (k.clone(), shard.into()))
        .collect();
    let index = serde_json::json!({"metadata": {}, "weight_map": map});
    files.insert(
        "model.safetensors.index.json".into(),
        index.to_string().into_bytes(),
    );
    files.insert(shard.into(), weights);
    files
}

fn hub() -> Hub {
    let plain = || {
        files_of(
            &tiny_model(),
            &["config.json", "tokenizer.json", "model.safetensors"],
        )
    };
    let mut repos = HashMap::new();
    for (repo, rev, commit, files) in [
        ("org/tiny", "main", COMMIT_MAIN, plain()),
        ("org/tiny", "v1", COMMIT_V1, plain()),
        ("org/sharded", "main", COMMIT_MAIN, sharded_files()),
        ("org/gated", "main", COMMIT_MAIN, plain()),
    ] {
        repos.insert(
            (repo.to_string(), rev.to_string()),
            Revision { commit, files },
        );
    }
    let mut no_tokenizer = plain();
    no_tokenizer.remove("tokenizer.json");
    repos.insert(
        ("org/untokenized".into(), "main".into()),
        Revision {
            commit: COMMIT_MAIN,
            files: no_tokenizer,
        },
    );
    Hub {
        repos,
        gated: vec!["org/gated".into()],
        requests: AtomicUsize::new(0),
    }
}

/// Starts the Hub on a free port; returns its address.
fn serve(hub: Arc<Hub>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let hub = Arc::clone(&hub);
            std::thread::spawn(move || answer(&hub, stream));
        }
    });
    address
}

/// Answers one request and closes the connection.
fn answer(hub: &Hub, mut stream: TcpStream) {
    hub.requests.fetch_add(1, Ordering::SeqCst);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap() == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut reply = |status: &str, extra: &[(String, String)], body: &[u8]| {
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        let _ = stream.write_all(&out);
    };
    // /{org}/{name}/resolve/{revision}/{file}
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    let [org, name, "resolve", rev, file] = parts[..] else {
        return reply("404 Not Found", &[], b"not found");
    };
    let repo = format!("{org}/{name}");
    let rev = rev.replace("%2F", "/");
    if hub.gated.contains(&repo) && headers.get("authorization") != Some(&format!("Bearer {TOKEN}"))
    {
        return reply("401 Unauthorized", &[], b"gated");
    }
    let Some((revision, body)) = hub
        .repos
        .get(&(repo, rev))
        .and_then(|r| r.files.get(file).map(|b| (r, b)))
    else {
        return reply("404 Not Found", &[], b"Entry not found");
    };
    let etag = format!(
        "\"{:016x}{:08x}\"",
        body.iter()
            .fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64)
                .wrapping_mul(0x100000001b3)),
        body.len()
    );
    let mut extra = vec![
        ("ETag".to_string(), etag),
        ("X-Repo-Commit".to_string(), revision.commit.to_string()),
    ];
    let range = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'));
    match range {
        Some((start, end)) => {
            let start: usize = start.parse().unwrap();
            let end = match end {
                "" => body.len() - 1,
                e => e.parse::<usize>().unwrap().min(body.len() - 1),
            };
            extra.push((
                "Content-Range".into(),
                format!("bytes {start}-{end}/{}", body.len()),
            ));
            reply("206 Partial Content", &extra, &body[start..=end]);
        }
        None => reply("200 OK", &extra, body),
    }
}

/// `spex logits` of `model` with only the Hugging Face variables given here set.
fn logits(model: &[&str], cache: &Path, envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spex"));
    cmd.args([
        "logits",
        "--prompt",
        "w3 w17 w40 w5 w9 w11",
        "--json",
        "--model",
    ])
    .args(model);
    for var in [
        "HF_HUB_CACHE",
        "HF_HOME",
        "HF_TOKEN",
        "HF_TOKEN_PATH",
        "HF_HUB_OFFLINE",
        "HF_ENDPOINT",
        "XDG_CACHE_HOME",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HF_HUB_CACHE", cache)
        .env("HF_HOME", cache.join("home"));
    cmd.envs(envs.iter().copied()).output().unwrap()
}

/// The logits a `spex logits --json` run printed (its JSON less the `model` label).
fn printed(out: Output) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&ok(out).stdout).unwrap();
    v.as_object_mut().unwrap().remove("model");
    v
}

/// An address where nothing listens.
fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

#[test]
fn downloads_once_then_reads_the_cache_online_and_offline() {
    let hub = Arc::new(hub());
    let endpoint = serve(Arc::clone(&hub));
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let folder = tiny_model();
    let want = printed(logits(&[folder.to_str().unwrap()], &cache, &[]));
    let online = [("HF_ENDPOINT", endpoint.as_str())];

    let first = printed(logits(&["org/tiny"], &cache, &online));
    assert_eq!(first, want, "downloaded model's logits");
    let after_first = hub.requests.load(Ordering::SeqCst);
    assert!(after_first >= 3, "only {after_first} requests");
    let repo = cache.join("models--org--tiny");
    let snapshot = repo.join("snapshots").join(COMMIT_MAIN);
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        assert!(snapshot.join(file).is_file(), "{file} not in the cache");
    }
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        COMMIT_MAIN
    );

    let second = printed(logits(&["org/tiny"], &cache, &online));
    assert_eq!(second, want);
    assert_eq!(
        hub.requests.load(Ordering::SeqCst),
        after_first,
        "the second run asked the Hub"
    );

    let dead = dead_endpoint();
    let offline = [("HF_ENDPOINT", dead.as_str()), ("HF_HUB_OFFLINE", "1")];
    let third = printed(logits(&["org/tiny"], &cache, &offline));
    assert_eq!(third, want, "offline run from the cache");

    // Another revision is another commit in the same cache.
    let v1 = printed(logits(&["org/tiny", "--revision", "v1"], &cache, &online));
    assert_eq!(v1, want);
    assert!(repo
        .join("snapshots")
        .join(COMMIT_V1)
        .join("config.json")
        .is_file());
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/v1")).unwrap(),
        COMMIT_V1
    );

    // A sharded checkpoint: the index, then the shards it names.
    let sharded = printed(logits(&["org/sharded"], &cache, &online));
    assert_eq!(sharded, want, "sharded download");
}

#[test]
fn misses_gates_and_outages_are_named_errors() {
    let hub = Arc::new(hub());
    let endpoint = serve(Arc::clone(&hub));
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("hub");
    let online = [("HF_ENDPOINT", endpoint.as_str())];

    refused(
        logits(&["org/absent"], &cache, &online),
        &["--model", "org/absent", "config.json", "404"],
    );
    refused(
        logits(&["org/untokenized"], &cache, &online),
        &["org/untokenized", "tokenizer.json", "404"],
    );
    refused(
        logits(&["org/tiny", "--revision", "v9"], &cache, &online),
        &["org/tiny", "v9", "config.json"],
    );
    refused(
        logits(&["org/gated"], &cache, &online),
        &["org/gated", "HF_TOKEN", "401"],
    );
    let with_token = [("HF_ENDPOINT", endpoint.as_str()), ("HF_TOKEN", TOKEN)];
    ok(logits(&["org/gated"], &cache, &with_token));

    let dead = dead_endpoint();
    refused(
        logits(&["org/tiny"], &cache, &[("HF_ENDPOINT", dead.as_str())]),
        &["org/tiny", "config.json", "HF_HUB_OFFLINE"],
    );
    refused(
        logits(
            &["org/tiny"],
            &cache,
            &[("HF_ENDPOINT", dead.as_str()), ("HF_HUB_OFFLINE", "1")],
        ),
        &[
            "org/tiny",
            "not in the Hugging Face cache",
            "HF_HUB_OFFLINE",
        ],
    );
}
