//! The task layer on the real data under `$SPEX_HOME/data` (run only when `data/.ready` exists)
//! and against the prompts lm-evaluation-harness built (`tests/data/lmeval_mmlu_prompt_*.txt`).

use spex::task::{default_data_dir, load_task, Format, Split, Subjects, TaskName, TaskSpec};
use std::path::{Path, PathBuf};

fn data_dir() -> Option<PathBuf> {
    let dir = default_data_dir();
    if dir.join(".ready").is_file() {
        Some(dir)
    } else {
        eprintln!("skip: {} not ready (run the fetch script)", dir.display());
        None
    }
}

fn spec(task: TaskName, dir: &Path, split: Split) -> TaskSpec {
    TaskSpec {
        task,
        data_dir: dir.to_path_buf(),
        subjects: Subjects::All,
        split,
        limit: None,
        offset: 0,
        shots: 0,
        strict: true,
        format: None,
    }
}

#[test]
fn all_of_mmlu_test_loads_without_malformed_rows() {
    let Some(dir) = data_dir() else { return };
    let t = load_task(&spec(TaskName::Mmlu, &dir, Split::Test)).unwrap();
    assert_eq!(t.items.len(), 14_042);
    let subjects: std::collections::BTreeSet<&str> =
        t.items.iter().map(|i| i.subject.as_str()).collect();
    assert_eq!(subjects.len(), 57);
    assert!(t
        .items
        .iter()
        .all(|i| i.continuations == [" A", " B", " C", " D"]));
    let mut s = spec(TaskName::Mmlu, &dir, Split::Validation);
    s.shots = 5;
    assert_eq!(load_task(&s).unwrap().items.len(), 1_531);
}

#[test]
fn other_data_sets_load() {
    let Some(dir) = data_dir() else { return };
    for (task, n) in [
        (TaskName::ArcEasy, 570),
        (TaskName::ArcChallenge, 299),
        (TaskName::Sciq, 1_000),
        (TaskName::Sst2, 872),
    ] {
        let mut s = spec(task.clone(), &dir, Split::Validation);
        s.strict = false;
        s.shots = 1;
        if task != TaskName::Sst2 {
            s.format = Some(Format::Letters);
        }
        let t = load_task(&s).unwrap();
        assert_eq!(t.items.len() + t.malformed.len(), n, "{task}");
        for m in &t.malformed {
            eprintln!("{task}: malformed {m}");
        }
    }
    let t = load_task(&spec(TaskName::Sst2, &dir, Split::Validation)).unwrap();
    let positives = t.golds().iter().filter(|&&g| g == 1).count();
    assert_eq!((t.items.len() - positives, positives), (428, 444));
}

/// Every cloze set's validation split renders through its harness template without a bad row.
#[test]
fn cloze_sets_load_whole() {
    let Some(dir) = data_dir() else { return };
    for (task, n) in [
        (TaskName::ArcEasy, 570),
        (TaskName::ArcChallenge, 299),
        (TaskName::Sciq, 1_000),
        (TaskName::OpenBookQa, 500),
        (TaskName::Piqa, 1_838),
        (TaskName::Hellaswag, 10_042),
        (TaskName::Winogrande, 1_267),
        (TaskName::Boolq, 3_270),
        (TaskName::Copa, 100),
    ] {
        let t = load_task(&spec(task.clone(), &dir, Split::Validation)).unwrap();
        assert_eq!((t.items.len(), t.format), (n, Format::Cloze), "{task}");
        assert!(t.items.iter().all(|i| i.check().is_ok()), "{task}");
    }
}

/// The harness's own context for the first `abstract_algebra` test row, byte for byte.
#[test]
fn prompts_match_the_harness() {
    let Some(dir) = data_dir() else { return };
    for shots in [0usize, 5] {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/data/lmeval_mmlu_prompt_{shots}shot.txt"));
        let Ok(expected) = std::fs::read_to_string(&file) else {
            eprintln!("skip: {} missing", file.display());
            continue;
        };
        let mut s = spec(TaskName::Mmlu, &dir, Split::Test);
        s.subjects = "abstract_algebra".parse().unwrap();
        s.limit = Some(1);
        s.shots = shots;
        let t = load_task(&s).unwrap();
        assert_eq!(t.items[0].prompt(), expected, "{shots}-shot prompt differs");
    }
}

/// The harness's sample (first 4 test rows of the first 50 subjects) is our selection too.
#[test]
fn selection_matches_the_harness_sample() {
    let Some(dir) = data_dir() else { return };
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lmeval_mmlu_sample.json");
    let Ok(text) = std::fs::read_to_string(&file) else {
        eprintln!("skip: {} missing", file.display());
        return;
    };
    let sample: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows: Vec<(String, u64)> = sample["shots"]["0"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["subject"].as_str().unwrap().to_string(),
                r["row"].as_u64().unwrap(),
            )
        })
        .collect();
    let all = load_task(&spec(TaskName::Mmlu, &dir, Split::Test)).unwrap();
    let first50: Vec<String> = {
        let set: std::collections::BTreeSet<&str> =
            all.items.iter().map(|i| i.subject.as_str()).collect();
        set.into_iter().take(50).map(str::to_string).collect()
    };
    let mut s = spec(TaskName::Mmlu, &dir, Split::Test);
    s.subjects = first50.join(",").parse().unwrap();
    s.limit = Some(4);
    let t = load_task(&s).unwrap();
    let ours: Vec<(String, u64)> = t
        .items
        .iter()
        .map(|i| (i.subject.clone(), i.row as u64))
        .collect();
    assert_eq!(ours, rows);
}
