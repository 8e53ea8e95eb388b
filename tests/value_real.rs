//! The head value function on the real default model: each mask row's value equals the value
//! computed by hand from an independent full-vocabulary forward pass with the same heads zeroed.
//! Runs when `bash models/fetch.sh` has fetched the model and the data.

use std::collections::BTreeSet;

use candle_core::{DType, Device};
use spex::ablate::TaskScorer;
use spex::model::{HeadScales, Job, Model, ModelSource, Readout, RunOptions};
use spex::sparse::{MaskBatch, ValueFunction};
use spex::task::{default_data_dir, load_task, Split, Subjects, TaskName, TaskSpec, ValueKind};

/// Heads `(layer, head)` removed by each test mask (the first mask keeps every head).
fn removed_sets() -> Vec<Vec<(usize, usize)>> {
    vec![
        vec![],
        (0..9).map(|h| (0, h)).collect(),
        vec![(3, 1), (3, 2), (12, 0), (17, 8), (29, 4)],
    ]
}

/// Natural-log softmax of `x` at `k`, in f64.
fn log_softmax_at(x: &[f64], k: usize) -> f64 {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + x.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
    x[k] - lse
}

#[test]
fn head_values_match_hand_computed_values_from_full_logits() {
    let data = default_data_dir();
    let Ok(source) = ModelSource::resolve(None) else {
        println!("skipped: default model not fetched (bash models/fetch.sh)");
        return;
    };
    if !data.join(".ready").exists() {
        println!("skipped: data not fetched (bash models/fetch.sh)");
        return;
    }
    let task = load_task(&TaskSpec {
        task: TaskName::Mmlu,
        data_dir: data,
        subjects: Subjects::List(BTreeSet::from(["high_school_geography".to_string()])),
        split: Split::Test,
        limit: Some(6),
        offset: 0,
        shots: 0,
        strict: true,
        format: None,
    })
    .unwrap();
    let golds = task.golds();
    let model = Model::open(&source, &Device::Cpu, DType::F32).unwrap();
    let (layers, heads) = (model.info().n_layers, model.info().n_heads);
    assert_eq!((layers, heads), (30, 9));

    // The value function under test: players are heads, index layer * H + head, bit 1 = kept.
    let scorer = TaskScorer::new(
        &model,
        &task.items,
        task.scoring,
        RunOptions::for_device(&Device::Cpu),
    )
    .unwrap();
    let mut masks = MaskBatch::new(layers * heads);
    for removed in removed_sets() {
        let mut kept = vec![true; layers * heads];
        for &(l, h) in &removed {
            kept[l * heads + h] = false;
        }
        masks.push_bools(&kept);
    }
    let mut logprob = scorer.head_value_function(ValueKind::CorrectLogProb, golds.clone());
    let mut accuracy = scorer.head_value_function(ValueKind::Accuracy, golds.clone());
    let got_logprob = logprob.values(&masks).unwrap();
    let got_accuracy = accuracy.values(&masks).unwrap();

    // By hand: full logits at the last position, letters' first tokens, log-softmax over them.
    let prompts: Vec<Vec<u32>> = task
        .items
        .iter()
        .map(|it| model.encode(it.prompt()).unwrap())
        .collect();
    let letters: Vec<u32> = [" A", " B", " C", " D"]
        .iter()
        .map(|c| model.encode(c).unwrap()[0])
        .collect();
    for (m, removed) in removed_sets().iter().enumerate() {
        let flat = HeadScales::zeroing(layers, heads, removed).unwrap();
        let jobs: Vec<Job> = (0..prompts.len())
            .map(|p| Job {
                prompt: p,
                heads: Some(flat.clone()),
                tokens: None,
            })
            .collect();
        let opts = RunOptions {
            reuse: false,
            ..RunOptions::default()
        };
        let rows = model.run(&prompts, &jobs, &Readout::Full, &opts).unwrap();
        let (mut lp, mut acc) = (0.0, 0.0);
        for (row, &gold) in rows.iter().zip(&golds) {
            let l: Vec<f64> = letters
                .iter()
                .map(|&t| f64::from(row[t as usize]))
                .collect();
            lp += log_softmax_at(&l, gold);
            let best = (0..4).fold(0, |b, k| if l[k] > l[b] { k } else { b });
            acc += f64::from(u8::from(best == gold));
        }
        let n = golds.len() as f64;
        let (want_lp, want_acc) = (lp / n, acc / n);
        println!(
            "mask {m}: logprob {:.6} (hand {want_lp:.6}), accuracy {} (hand {want_acc})",
            got_logprob[m], got_accuracy[m]
        );
        assert!(
            (got_logprob[m] - want_lp).abs() < 1e-4,
            "mask {m}: {} vs {want_lp}",
            got_logprob[m]
        );
        assert_eq!(got_accuracy[m], want_acc, "mask {m}");
    }
    // Zeroing all of layer 0 must move the value: the mask reaches the model.
    assert!(
        (got_logprob[1] - got_logprob[0]).abs() > 1e-3,
        "{got_logprob:?}"
    );
}
