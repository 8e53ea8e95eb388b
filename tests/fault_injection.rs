//! Fault injection on `spex heads` (a tiny random Llama, a three-question JSONL task): kill -9 at
//! 20 seeded random moments chained through one run, after which every output is byte-identical
//! to an uninterrupted run's and no stored batch was evaluated again; damaged value logs (a torn
//! tail, a repeated, zeroed, foreign or corrupted record); two runs at once on one log.
//!
//! Evaluations are counted from the runs' own reports (`SPEX_LOG=spex=debug`: each batch of masks
//! as it starts and once it is stored) and from the rows in the logs (format 2: a header line,
//! then 24-byte records whose first 8 bytes are the row, little-endian). No test hook changes
//! what the binary does.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;
use common::tiny_model_and_task;

/// Masks per stored batch: 64 forward passes per batch, 3 questions (one pass each) per mask.
const GRAIN: usize = 64 / 3;

/// Bytes per record of a values log.
const RECORD: usize = 24;

/// The run's budget: 600 masks in `values.log`, 60 unseen ones in `held_out.log`.
const BUDGET: &str = "600";

/// The logs a `spex heads` run writes.
const LOGS: [&str; 2] = ["values.log", "held_out.log"];

/// A tiny model folder and a three-question JSONL task.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            dir: tiny_model_and_task(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `spex heads` into `out`, reporting each batch on stderr.
    fn heads(&self, out: &Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spex"));
        cmd.args(["heads", "--model"])
            .arg(self.path("model"))
            .arg("--task")
            .arg(format!("jsonl:{}", self.path("task.jsonl").display()))
            .args(["--budget", BUDGET, "--seed", "1", "--out"])
            .arg(out)
            .env("SPEX_LOG", "warn,spex=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `spex heads` into `out` to its end: exit status and stderr.
    fn run(&self, out: &Path) -> (ExitStatus, String) {
        let out = self.heads(out).output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A started run and the thread that collects its stderr.
struct Running {
    child: Child,
    stderr: JoinHandle<String>,
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        Running { child, stderr }
    }

    fn finished(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    fn wait(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        (status, self.stderr.join().unwrap())
    }
}

/// Returns once every thread of process `pid` is stopped (`kill -STOP` only queues the signal: a
/// thread on another core can write on for a moment). Reads Linux's /proc; elsewhere waits 0.5 s.
fn wait_until_stopped(pid: u32) {
    if !Path::new("/proc/self").exists() {
        std::thread::sleep(Duration::from_millis(500));
        return;
    }
    let tasks = PathBuf::from(format!("/proc/{pid}/task"));
    let start = Instant::now();
    loop {
        // A thread's state is the first field after its name's closing parenthesis.
        let all_stopped = std::fs::read_dir(&tasks).unwrap().all(|task| {
            let stat =
                std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            matches!(state, Some("T" | "t"))
        });
        if all_stopped {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "pid {pid} did not stop within 30 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The rows stored in the log at `path` (whole records only), in file order.
fn rows(path: &Path) -> Vec<u64> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let Some(end) = bytes.iter().position(|&b| b == b'\n') else {
        return Vec::new();
    };
    bytes[end + 1..]
        .chunks_exact(RECORD)
        .map(|rec| u64::from_le_bytes(rec[..8].try_into().unwrap()))
        .collect()
}

/// Rows stored in each log of the run in `out`.
fn stored(out: &Path) -> BTreeMap<&'static str, BTreeSet<u64>> {
    LOGS.iter()
        .map(|log| (*log, rows(&out.join(log)).into_iter().collect()))
        .collect()
}

/// Total rows stored in the logs of the run in `out`.
fn stored_count(out: &Path) -> usize {
    LOGS.iter().map(|log| rows(&out.join(log)).len()).sum()
}

/// The batches a run reported (`verb`: `evaluating` or `stored`), as (log, first row, end row).
fn batches(stderr: &str, verb: &str) -> Vec<(String, u64, u64)> {
    let marker = format!(": {verb} masks ");
    stderr
        .lines()
        .filter_map(|line| {
            let (path, rest) = line.split_once(&marker)?;
            let log = Path::new(path).file_name()?.to_str()?.to_string();
            let range = rest.split_whitespace().next()?;
            let (a, b) = range.split_once("..")?;
            Some((log, a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

/// Every file of the folder `dir`, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// Asserts that the folders hold the same files with the same bytes.
fn assert_same_files(expected: &Path, got: &Path) {
    let (a, b) = (files(expected), files(got));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (name, bytes) in &a {
        assert!(&b[name] == bytes, "{name} differs");
    }
}

/// Stored batches `[k * GRAIN, (k + 1) * GRAIN)` cut to `rows` rows.
fn batch_count(rows: usize) -> usize {
    rows.div_ceil(GRAIN)
}

/// An uninterrupted run into `out`: its stderr, and how long it ran after its last value was
/// stored (decoding and writing the outputs).
fn uninterrupted(fx: &Fixture, out: &Path) -> (String, Duration) {
    let mut run = Running::start(fx.heads(out));
    let mut last = (0, Instant::now());
    while !run.finished() {
        let n = stored_count(out);
        if n != last.0 {
            last = (n, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let tail = last.1.elapsed();
    let (status, stderr) = run.wait();
    assert!(status.success(), "{stderr}");
    (stderr, tail)
}

#[test]
fn killed_at_20_random_moments_a_run_ends_with_the_same_bytes_and_no_batch_evaluated_twice() {
    let fx = Fixture::new();
    let reference = fx.path("reference");
    let (stderr, tail) = uninterrupted(&fx, &reference);
    let rows_of: BTreeMap<&str, usize> = LOGS
        .iter()
        .map(|log| (*log, rows(&reference.join(log)).len()))
        .collect();
    assert_eq!((rows_of["values.log"], rows_of["held_out.log"]), (600, 60));
    let total: usize = rows_of.values().sum();
    // The uninterrupted run evaluates each aligned batch once.
    let evaluated = batches(&stderr, "evaluating");
    for log in LOGS {
        let starts: Vec<u64> = evaluated
            .iter()
            .filter(|(l, ..)| l == log)
            .map(|&(_, a, b)| {
                assert_eq!(b, (a + GRAIN as u64).min(rows_of[log] as u64));
                a
            })
            .collect();
        let aligned: Vec<u64> = (0..rows_of[log] as u64).step_by(GRAIN).collect();
        assert_eq!(starts, aligned, "{log}: {stderr}");
    }

    // The chain: each kill comes once the logs hold `target` rows (some of them stored before the
    // run started, so the kill falls in its start), after a random delay of up to a few batches;
    // targets past the last row fall in decoding and writing the outputs. The first target is at
    // least one row, so that the first run has written plan.json.
    let out = fx.path("killed");
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    let mut targets: Vec<usize> = (0..20)
        .map(|_| rng.random_range(1..=total + total / 8))
        .collect();
    targets.sort_unstable();
    let mut kills = 0;
    let mut mid_evaluation = 0;
    // Per run: the rows its logs held at its start, its stderr, and whether it was killed.
    let mut runs = Vec::new();
    for &target in &targets {
        let before = stored(&out);
        let mut run = Running::start(fx.heads(&out));
        while !run.finished() && stored_count(&out) < target.min(total) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let delay = if target > total {
            tail.mul_f64(rng.random_range(0.0..1.0))
        } else {
            Duration::from_micros(rng.random_range(0..20_000))
        };
        std::thread::sleep(delay);
        let killed = !run.finished();
        if killed {
            run.child.kill().unwrap();
            kills += 1;
        }
        let (status, stderr) = run.wait();
        if killed {
            if stored_count(&out) < total {
                mid_evaluation += 1;
            }
        } else {
            assert!(status.success(), "{stderr}");
        }
        runs.push((before, stderr, killed));
    }
    let before = stored(&out);
    let (status, stderr) = fx.run(&out);
    assert!(status.success(), "{stderr}");
    runs.push((before, stderr, false));
    eprintln!("{kills} kills landed, {mid_evaluation} while values were evaluated");
    assert!(
        kills >= 15 && mid_evaluation >= 10,
        "{kills} kills landed, {mid_evaluation} while values were evaluated"
    );

    assert_same_files(&reference, &out);

    // Every run evaluated the aligned batches of an uninterrupted run, never one whose rows were
    // all stored when it started; a run evaluated at most one batch it did not store (the one in
    // flight when it was killed); in all, at most one batch per kill was evaluated again.
    let mut evaluations: BTreeMap<String, usize> = BTreeMap::new();
    for (before, stderr, killed) in &runs {
        let started = batches(stderr, "evaluating");
        for (log, a, b) in &started {
            let end = (a + GRAIN as u64).min(rows_of[log.as_str()] as u64);
            assert!(
                a % GRAIN as u64 == 0 && *b == end,
                "{log}: masks {a}..{b} is not a batch of an uninterrupted run"
            );
            assert!(
                (*a..*b).any(|r| !before[log.as_str()].contains(&r)),
                "{log}: masks {a}..{b} were all stored, yet evaluated again"
            );
            *evaluations.entry(log.clone()).or_default() += 1;
        }
        let unfinished = started.len() - batches(stderr, "stored").len();
        assert!(unfinished <= usize::from(*killed), "{stderr}");
    }
    let mut redone = 0;
    for log in LOGS {
        let (n, batches) = (
            evaluations.get(log).copied().unwrap_or(0),
            batch_count(rows_of[log]),
        );
        assert!(n >= batches, "{log}: {n} evaluations for {batches} batches");
        redone += n - batches;
    }
    assert!(
        redone <= kills,
        "{redone} batches evaluated again for {kills} kills"
    );
}

/// A copy of the finished run `from` in a new folder `to`.
fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for (name, bytes) in files(from) {
        std::fs::write(to.join(name), bytes).unwrap();
    }
}

/// Copies the finished run `reference` into `name`, applies `edit` to its values.log (given the
/// header's length), runs `spex heads` on it, and checks that it fails with exit code 2 naming
/// the log and `words` (the record, what is wrong, where to cut), evaluating nothing and leaving
/// the log as it was.
fn refused(
    fx: &Fixture,
    reference: &Path,
    name: &str,
    edit: impl Fn(&mut Vec<u8>, usize),
    words: &[String],
) {
    let out = fx.path(name);
    copy_run(reference, &out);
    let log = out.join("values.log");
    let mut bytes = std::fs::read(&log).unwrap();
    let header = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    edit(&mut bytes, header);
    std::fs::write(&log, &bytes).unwrap();
    let (status, stderr) = fx.run(&out);
    assert_eq!(status.code(), Some(2), "{name}: {stderr}");
    assert!(
        stderr.contains(&format!("{}: record ", log.display())),
        "{name}: {stderr}"
    );
    for w in words {
        assert!(stderr.contains(w.as_str()), "{name}: no `{w}` in {stderr}");
    }
    assert!(batches(&stderr, "evaluating").is_empty(), "{stderr}");
    assert_eq!(
        std::fs::read(&log).unwrap(),
        bytes,
        "{name}: the log is left as it was"
    );
}

#[test]
fn damaged_logs_are_cut_or_refused_and_two_runs_cannot_share_a_log() {
    let fx = Fixture::new();
    let reference = fx.path("reference");
    let (status, stderr) = fx.run(&reference);
    assert!(status.success(), "{stderr}");
    let log_len = std::fs::read(reference.join("values.log")).unwrap().len();
    let header = log_len - 600 * RECORD;

    // A torn tail (the last record cut short): cut with a warning, its batch (masks 588..600)
    // evaluated again, the same bytes.
    let torn = fx.path("torn");
    copy_run(&reference, &torn);
    std::fs::OpenOptions::new()
        .write(true)
        .open(torn.join("values.log"))
        .unwrap()
        .set_len((log_len - RECORD + 5) as u64)
        .unwrap();
    let (status, stderr) = fx.run(&torn);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("values.log: the last record was cut short (5 of 24 bytes"),
        "{stderr}"
    );
    assert_eq!(
        batches(&stderr, "evaluating"),
        [("values.log".to_string(), 588, 600)],
        "{stderr}"
    );
    assert_same_files(&reference, &torn);

    // A repeated record (even with its value), a zeroed one (what a power loss can leave), one
    // copied from another run's log (the held-out masks'), one with a flipped bit.
    let at = |k: usize| format!("record {k} (bytes {}..", header + k * RECORD);
    let cut = |k: usize| format!("truncate -s {} ", header + k * RECORD);
    refused(
        &fx,
        &reference,
        "repeated",
        |b, h| {
            let rec = b[h + 3 * RECORD..h + 4 * RECORD].to_vec();
            b.extend_from_slice(&rec);
        },
        &[
            at(600),
            "repeats row 3, which record 3 stores already".into(),
            cut(600),
        ],
    );
    refused(
        &fx,
        &reference,
        "zeroed",
        |b, _| b.extend_from_slice(&[0; RECORD]),
        &[at(600), "all zero bytes".into(), cut(600)],
    );
    let held_out = std::fs::read(reference.join("held_out.log")).unwrap();
    let theirs = held_out[held_out.len() - RECORD..].to_vec();
    refused(
        &fx,
        &reference,
        "foreign",
        |b, h| b[h + 10 * RECORD..h + 11 * RECORD].copy_from_slice(&theirs),
        &[
            at(10),
            "(row 59) belongs to another run's log".into(),
            cut(10),
            "the 589 after it are evaluated again".into(),
        ],
    );
    refused(
        &fx,
        &reference,
        "flipped",
        |b, h| b[h + 7 * RECORD + 12] ^= 1,
        &[at(7), "fails its checksum (it claims row 7)".into(), cut(7)],
    );
    // The advice works: cut where the message says, the run ends with the same bytes, evaluating
    // nothing again (the records before the cut hold every row).
    let repeated = fx.path("repeated");
    std::fs::OpenOptions::new()
        .write(true)
        .open(repeated.join("values.log"))
        .unwrap()
        .set_len(log_len as u64)
        .unwrap();
    let (status, stderr) = fx.run(&repeated);
    assert!(status.success(), "{stderr}");
    assert!(batches(&stderr, "evaluating").is_empty(), "{stderr}");
    assert_same_files(&reference, &repeated);

    // Two runs at once on one log: the first, paused while it holds values.log, is named by its
    // pid; the second changes nothing, and the first then ends as an uninterrupted run.
    let shared = fx.path("shared");
    let mut first = Running::start(fx.heads(&shared));
    while !first.finished() && rows(&shared.join("values.log")).is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let pid = first.child.id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success(), "kill {sig} {pid}");
    };
    signal("-STOP");
    wait_until_stopped(first.child.id());
    let log = std::fs::read(shared.join("values.log")).unwrap();
    assert!(
        rows(&shared.join("values.log")).len() < 600,
        "the first run still evaluates"
    );
    let (status, stderr) = fx.run(&shared);
    // Read before the first run goes on: once continued, it appends again.
    let after_second = std::fs::read(shared.join("values.log")).unwrap();
    signal("-CONT");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: is in use by another spex run (pid {pid}",
            shared.join("values.log").display()
        )),
        "{stderr}"
    );
    assert!(
        after_second == log,
        "the refused run changed values.log ({} bytes before it, {} after)",
        log.len(),
        after_second.len()
    );
    let (status, stderr) = first.wait();
    assert!(status.success(), "{stderr}");
    assert_same_files(&reference, &shared);
}

/// A small head job on the default model (all 270 heads, two MMLU questions, so that the run
/// spans several stored batches): killed at three seeded moments while it evaluates, it ends with the bytes of an uninterrupted run, and no run evaluated a batch whose
/// rows were all stored. Skipped when the default model is not fetched.
#[test]
fn killed_three_times_the_default_model_job_ends_with_the_same_bytes() {
    if spex::model::ModelSource::resolve(None).is_err() {
        eprintln!("skipped: default model not fetched (bash models/fetch.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let heads = |out: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spex"));
        cmd.args([
            "heads",
            "--task",
            "mmlu",
            "--subjects",
            "high_school_geography",
            "--limit",
            "2",
            "--budget",
            "100",
            "--held-out",
            "10",
            "--keep-prob",
            "0.9",
            "--out",
        ])
        .arg(out)
        .env("SPEX_LOG", "warn,spex=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        cmd
    };
    let reference = dir.path().join("reference");
    let (status, _) = Running::start(heads(&reference)).wait();
    assert!(status.success());
    let total = stored_count(&reference);
    assert_eq!(total, 110);

    let out = dir.path().join("killed");
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut targets: Vec<usize> = (0..3).map(|_| rng.random_range(1..total)).collect();
    targets.sort_unstable();
    let mut kills = 0;
    let mut evaluated_again = 0;
    for &target in &targets {
        let before = stored(&out);
        let mut run = Running::start(heads(&out));
        while !run.finished() && stored_count(&out) < target {
            std::thread::sleep(Duration::from_millis(5));
        }
        let killed = !run.finished();
        if killed {
            run.child.kill().unwrap();
            kills += 1;
        }
        let (status, stderr) = run.wait();
        assert!(killed || status.success(), "{stderr}");
        for (log, a, b) in batches(&stderr, "evaluating") {
            let stored_before = &before[log.as_str()];
            assert!(
                (a..b).any(|r| !stored_before.contains(&r)),
                "{log}: masks {a}..{b} were all stored, yet evaluated again"
            );
            evaluated_again += usize::from((a..b).any(|r| stored_before.contains(&r)));
        }
    }
    let (status, stderr) = Running::start(heads(&out)).wait();
    assert!(status.success(), "{stderr}");
    assert!(kills >= 2, "only {kills} kills landed");
    assert!(evaluated_again <= kills, "{evaluated_again} batches redone");
    assert_same_files(&reference, &out);
}
