//! Agreement of `spex eval`'s cloze scoring with lm-evaluation-harness 0.4.13 (HF backend, f32)
//! on the default model, validation split: the harness's requests, log-likelihoods and
//! predictions for the first 200 rows of each set (copa: all 100) are stored in
//! tests/data/lmeval_cloze_sample.json (made by tests/reference/make_lmeval_cloze_reference.sh).
//!
//! The prompts are compared on every stored row (no model needed); the log-likelihoods on the
//! first [`ROWS`] rows per set, or on every stored row with `SPEX_CLOZE_PARITY_ROWS=all`
//! (tests/reference/compare_cloze_parity.sh). Runs when the fetched model and data exist.

use std::path::PathBuf;

use spex::ablate::TaskScorer;
use spex::model::{Model, ModelSource, RunOptions};
use spex::task::{
    default_data_dir, evaluate, load_task, LoadedTask, Split, Subjects, TaskName, TaskSpec,
};

/// Rows per set whose log-likelihoods `cargo test` compares.
const ROWS: usize = 25;

/// The harness's set names and ours.
const SETS: [(&str, TaskName); 9] = [
    ("arc_easy", TaskName::ArcEasy),
    ("arc_challenge", TaskName::ArcChallenge),
    ("sciq", TaskName::Sciq),
    ("openbookqa", TaskName::OpenBookQa),
    ("piqa", TaskName::Piqa),
    ("hellaswag", TaskName::Hellaswag),
    ("winogrande", TaskName::Winogrande),
    ("boolq", TaskName::Boolq),
    ("copa", TaskName::Copa),
];

fn reference() -> serde_json::Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/lmeval_cloze_sample.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The stored rows of set `name`.
fn rows<'a>(reference: &'a serde_json::Value, name: &str) -> &'a [serde_json::Value] {
    reference["tasks"][name]["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows of {name} in lmeval_cloze_sample.json"))
}

/// The first `limit` validation rows of `task`, in the default (cloze) format.
fn load(task: &TaskName, limit: usize) -> Option<LoadedTask> {
    let data = default_data_dir();
    if !data.join(".ready").exists() {
        println!("skipped: data not fetched (bash models/fetch.sh)");
        return None;
    }
    let spec = TaskSpec {
        task: task.clone(),
        data_dir: data,
        subjects: Subjects::All,
        split: Split::Validation,
        limit: Some(limit),
        offset: 0,
        shots: 0,
        strict: true,
        format: None,
    };
    Some(load_task(&spec).unwrap())
}

/// The first index of the largest value (`np.argmax`).
fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Every stored row's contexts and continuations are the harness's, byte for byte, and so is its
/// gold choice.
#[test]
fn templates_render_the_harness_requests() {
    let reference = reference();
    for (name, task) in SETS {
        let rows = rows(&reference, name);
        let Some(loaded) = load(&task, rows.len()) else {
            return;
        };
        assert_eq!(loaded.items.len(), rows.len(), "{name}");
        for (item, r) in loaded.items.iter().zip(rows) {
            let doc = r["doc_id"].as_u64().unwrap() as usize;
            assert_eq!(item.row, doc, "{name}: rows in order");
            assert_eq!(item.contexts, strings(&r["contexts"]), "{name} row {doc}");
            assert_eq!(
                item.continuations,
                strings(&r["continuations"]),
                "{name} row {doc}"
            );
            assert_eq!(
                item.gold as u64,
                r["gold"].as_u64().unwrap(),
                "{name} row {doc}"
            );
        }
    }
}

/// On the first [`ROWS`] rows per set (all with `SPEX_CLOZE_PARITY_ROWS=all`): every
/// continuation log-likelihood within 1e-3 nats of the harness's, and every prediction (acc and
/// acc_norm) the harness's unless its top two are within 1e-3.
#[test]
fn loglikelihoods_and_predictions_agree_with_the_harness() {
    let Ok(source) = ModelSource::resolve(None) else {
        println!("skipped: default model not fetched (bash models/fetch.sh)");
        return;
    };
    let all = std::env::var("SPEX_CLOZE_PARITY_ROWS").is_ok_and(|v| v == "all");
    let reference = reference();
    let device = candle_core::Device::Cpu;
    let model = Model::open(&source, &device, candle_core::DType::F32).unwrap();
    let mut failures = Vec::new();
    for (name, task) in SETS {
        let rows = rows(&reference, name);
        let n = if all {
            rows.len()
        } else {
            ROWS.min(rows.len())
        };
        let Some(loaded) = load(&task, n) else { return };
        let options = RunOptions::for_device(&device);
        let scorer = TaskScorer::new(&model, &loaded.items, loaded.scoring, options).unwrap();
        let ours = evaluate(&loaded.items, &scorer.score(&[None], false).unwrap(), 0).unwrap();
        let (mut worst, mut agree, mut agree_norm, mut ties) = (0f64, 0, 0, 0);
        for (q, r) in ours.questions.iter().zip(rows) {
            let theirs: Vec<f64> = r["loglikelihoods"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let ll = q.loglikelihoods.as_ref().unwrap();
            assert_eq!(ll.len(), theirs.len(), "{name} row {}", q.row);
            for (a, b) in ll.iter().zip(&theirs) {
                worst = worst.max((a - b).abs());
            }
            let close_call = |scores: &[f64]| {
                let mut s = scores.to_vec();
                s.sort_by(|a, b| b.total_cmp(a));
                s.len() > 1 && s[0] - s[1] < 1e-3
            };
            // The harness's prediction is the first argmax of its log-likelihoods (its logged
            // per-sample acc says whether that is the gold choice).
            let their_pred = argmax(&theirs);
            let acc = r["acc"].as_f64().unwrap();
            assert_eq!(acc == 1.0, their_pred == q.gold, "{name} row {}", q.row);
            let ok = q.pred == their_pred;
            agree += usize::from(ok);
            ties += usize::from(!ok && close_call(&theirs));
            if let Some(norm) = r["acc_norm"].as_f64() {
                let lengths = q.lengths.as_ref().unwrap();
                let per: Vec<f64> = theirs
                    .iter()
                    .zip(lengths)
                    .map(|(l, &n)| l / n as f64)
                    .collect();
                let their_norm = argmax(&per);
                assert_eq!(norm == 1.0, their_norm == q.gold, "{name} row {}", q.row);
                let ok = q.pred_norm == Some(their_norm);
                agree_norm += usize::from(ok);
                ties += usize::from(!ok && close_call(&per));
            }
        }
        let norm = ours.total.acc_norm.filter(|_| loaded.reports_acc_norm);
        println!(
            "{name}: {n} rows, acc {:.4}, acc_norm {}, acc agreement {agree}/{n}, acc_norm \
             agreement {agree_norm}, disagreements at a near tie {ties}, worst |loglikelihood \
             difference| {worst:.2e} nats",
            ours.total.accuracy,
            norm.map_or("-".to_string(), |a| format!("{a:.4}"))
        );
        let disagreements = (n - agree)
            + if loaded.reports_acc_norm {
                n - agree_norm
            } else {
                0
            };
        if worst >= 1e-3 || disagreements > ties {
            failures.push(format!(
                "{name}: worst difference {worst:.2e}, {disagreements} disagreement(s), {ties} at a near tie"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
