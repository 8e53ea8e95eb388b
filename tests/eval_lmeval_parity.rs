//! Per-question agreement of `spex eval`'s scoring with lm-evaluation-harness on the default
//! model: 200 MMLU test questions (the first 4 rows of the first 50 subjects), 0-shot and 5-shot.
//! The harness's predictions and log-likelihoods are stored in tests/data/lmeval_mmlu_sample.json
//! (made by tests/reference/make_lmeval_reference.sh). Runs when the fetched model and data exist.

use std::collections::BTreeSet;
use std::path::PathBuf;

use spex::ablate::TaskScorer;
use spex::model::ModelSource;
use spex::model::{Model, RunOptions};
use spex::task::{default_data_dir, evaluate, load_task, Split, Subjects, TaskName, TaskSpec};

fn reference() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/lmeval_mmlu_sample.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn zero_shot_predictions_agree_with_the_harness() {
    agree_with_the_harness(0);
}

#[test]
fn five_shot_predictions_agree_with_the_harness() {
    agree_with_the_harness(5);
}

/// At least 99% of predictions equal the harness's, and every letter log-likelihood is within
/// 1e-3 nats of its value, for `shots`-shot prompts.
fn agree_with_the_harness(shots: usize) {
    let data = default_data_dir();
    let Ok(source) = ModelSource::resolve(None) else {
        println!("skipped: default model not fetched (bash models/fetch.sh)");
        return;
    };
    if !data.join(".ready").exists() {
        println!("skipped: data not fetched (bash models/fetch.sh)");
        return;
    }
    let reference = reference();
    let rows = reference["shots"][shots.to_string()]
        .as_array()
        .unwrap_or_else(|| panic!("no {shots}-shot rows in lmeval_mmlu_sample.json"));
    let subjects: BTreeSet<String> = rows
        .iter()
        .map(|r| r["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects.len(), 50);
    let task = load_task(&TaskSpec {
        task: TaskName::Mmlu,
        data_dir: data,
        subjects: Subjects::List(subjects),
        split: Split::Test,
        limit: Some(4),
        offset: 0,
        shots,
        strict: true,
        format: None,
    })
    .unwrap();
    assert_eq!(task.items.len(), rows.len());

    let device = candle_core::Device::Cpu;
    let model = Model::open(&source, &device, candle_core::DType::F32).unwrap();
    let scorer = TaskScorer::new(
        &model,
        &task.items,
        task.scoring,
        RunOptions::for_device(&device),
    )
    .unwrap();
    let logits = scorer.score(&[None], true).unwrap();
    let ours = evaluate(&task.items, &logits, 0).unwrap();

    let mut agree = 0;
    let mut worst = 0f64;
    for (q, r) in ours.questions.iter().zip(rows) {
        assert_eq!(q.subject, r["subject"].as_str().unwrap());
        assert_eq!(q.row as u64, r["row"].as_u64().unwrap());
        agree += usize::from(q.pred as u64 == r["pred"].as_u64().unwrap());
        let ll = q.loglikelihoods.as_ref().unwrap();
        for (a, b) in ll.iter().zip(r["loglikelihoods"].as_array().unwrap()) {
            worst = worst.max((a - b.as_f64().unwrap()).abs());
        }
    }
    println!(
        "{shots}-shot: agreement {agree}/{}, worst |loglikelihood difference| {worst:.2e} nats",
        rows.len()
    );
    assert!(
        agree * 100 >= rows.len() * 99,
        "only {agree}/{} agree",
        rows.len()
    );
    assert!(worst < 1e-3, "log-likelihoods differ by up to {worst}");
}
