//! `--ablation rescale`, the ProxySPEX paper's head ablation: removed heads output zero and each
//! layer's kept heads are scaled by (heads in the layer) / (heads kept in it); a layer keeping no
//! head contributes nothing. Checked on a tiny random Llama (4 layers x 4 heads) against runs
//! whose scales are set by hand, and through the binary (`spex heads`, `spex logits`).

use std::path::Path;

use candle_core::{DType, Device};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spex::ablate::TaskScorer;
use spex::io::{read_masks_npy, read_values};
use spex::model::{HeadMask, HeadScales, Job, Model, Readout, RunOptions};
use spex::sparse::ValueFunction;
use spex::task::{evaluate, load_task, LoadedTask, Split, Subjects, TaskName, TaskSpec, ValueKind};

mod common;
use common::{ok, random_prompt, spex, stderr, tiny_model_and_task, VOCAB};

/// A tiny model folder (4 layers x 4 heads) and a three-question JSONL task.
fn fixture() -> tempfile::TempDir {
    tiny_model_and_task()
}

fn load(dir: &Path) -> Model {
    Model::load(&dir.join("model"), &Device::Cpu, DType::F32).unwrap()
}

fn task(dir: &Path) -> LoadedTask {
    load_task(&TaskSpec {
        task: TaskName::Jsonl(dir.join("task.jsonl")),
        data_dir: dir.to_path_buf(),
        subjects: Subjects::All,
        split: Split::Test,
        offset: 0,
        limit: None,
        shots: 0,
        strict: true,
        format: None,
    })
    .unwrap()
}

fn no_reuse() -> RunOptions {
    RunOptions {
        reuse: false,
        ..RunOptions::default()
    }
}

/// Full logits of `ids` under each scale row (`None`: the unmasked model).
fn logits(m: &Model, ids: &[u32], rows: &[Option<HeadScales>], opts: &RunOptions) -> Vec<Vec<f32>> {
    let jobs: Vec<Job> = rows
        .iter()
        .map(|heads| Job {
            prompt: 0,
            heads: heads.clone(),
            tokens: None,
        })
        .collect();
    m.run(&[ids.to_vec()], &jobs, &Readout::Full, opts).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f32::max)
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    let d = max_diff(a, b);
    assert!(d <= 1e-5, "{what}: differ by {d}");
}

#[test]
fn every_head_kept_is_the_unmasked_model() {
    let dir = fixture();
    let m = load(dir.path());
    let ids = random_prompt(9, VOCAB, 2);
    let kept = HeadScales::ones(4, 4).rescaled();
    assert_eq!(kept, HeadScales::ones(4, 4));
    for opts in [RunOptions::default(), no_reuse()] {
        let out = logits(&m, &ids, &[None, Some(kept.clone())], &opts);
        assert_eq!(out[0], out[1], "all heads kept under rescale");
    }
}

#[test]
fn one_head_of_four_removed_scales_the_other_three_by_four_thirds() {
    let dir = fixture();
    let m = load(dir.path());
    let ids = random_prompt(10, VOCAB, 4);
    let zeroed = HeadScales::zeroing(4, 4, &[(1, 2)]).unwrap();
    let rescaled = zeroed.rescaled();
    let mut values = vec![1.0; 16];
    values[4..8].copy_from_slice(&[4.0 / 3.0, 4.0 / 3.0, 0.0, 4.0 / 3.0]);
    let by_hand = HeadScales::new_amplifying(4, 4, values).unwrap();
    for opts in [RunOptions::default(), no_reuse()] {
        let out = logits(
            &m,
            &ids,
            &[
                Some(rescaled.clone()),
                Some(by_hand.clone()),
                Some(zeroed.clone()),
                None,
            ],
            &opts,
        );
        assert_close(&out[0], &out[1], "rescaled vs scales set by hand");
        assert!(out[0].iter().all(|v| v.is_finite()));
        assert!(
            max_diff(&out[0], &out[2]) > 1e-4,
            "rescale must differ from zero ablation"
        );
        assert!(
            max_diff(&out[0], &out[3]) > 1e-4,
            "rescale must change the output"
        );
    }
}

#[test]
fn a_layer_keeping_no_head_is_zero_ablation_of_that_layer() {
    let dir = fixture();
    let m = load(dir.path());
    let ids = random_prompt(8, VOCAB, 6);
    let empty = HeadScales::zeroing(4, 4, &[(2, 0), (2, 1), (2, 2), (2, 3)]).unwrap();
    let rescaled = empty.rescaled();
    assert_eq!(rescaled, empty, "nothing to rescale: the layer stays 0");
    let out = logits(&m, &ids, &[Some(rescaled), Some(empty), None], &no_reuse());
    assert!(out[0].iter().all(|v| v.is_finite()), "no NaN, no infinity");
    assert_eq!(out[0], out[1]);
    assert!(
        max_diff(&out[0], &out[2]) > 1e-4,
        "the layer's attention is gone"
    );
    // With another layer partly kept, only that layer is rescaled.
    let mut pairs: Vec<(usize, usize)> = (0..4).map(|h| (2, h)).collect();
    pairs.push((0, 1));
    let both = HeadScales::zeroing(4, 4, &pairs).unwrap().rescaled();
    assert_eq!(both.layer(2), &[0.0; 4]);
    assert_eq!(both.layer(0), &[4.0 / 3.0, 0.0, 4.0 / 3.0, 4.0 / 3.0]);
    assert_eq!(both.layer(1), &[1.0; 4]);
    let out = logits(&m, &ids, &[Some(both)], &no_reuse());
    assert!(out[0].iter().all(|v| v.is_finite()));
}

#[test]
fn rescaled_batch_rows_equal_single_runs() {
    let dir = fixture();
    let m = load(dir.path());
    let ids = random_prompt(11, VOCAB, 8);
    // Six random keep-masks of 0s and 1s (some layers full, some partial, some empty).
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut mask = HeadMask::ones(6, 4, 4);
    for b in 0..6 {
        for l in 0..4 {
            let p_removed = [0.0, 0.3, 0.6, 1.0][(b + l) % 4];
            for h in 0..4 {
                if rng.random::<f64>() < p_removed {
                    mask.set(b, l, h, 0.0).unwrap();
                }
            }
        }
    }
    let mask = mask.rescaled();
    assert!((0..6).any(|b| mask.row(b).iter().any(|&v| v > 1.0)));
    let batched = m
        .forward_ablated(&ids, Some(&mask), None, &Readout::Full)
        .unwrap();
    for opts in [RunOptions::default(), no_reuse()] {
        let rows: Vec<Option<HeadScales>> = (0..6).map(|b| Some(mask.row(b).clone())).collect();
        let batch = logits(&m, &ids, &rows, &opts);
        for b in 0..6 {
            let single = logits(&m, &ids, &rows[b..=b], &opts);
            assert_close(&batch[b], &single[0], &format!("row {b}"));
            assert_close(&batched[b], &single[0], &format!("forward_ablated row {b}"));
        }
    }
}

#[test]
fn the_scorer_rescales_kept_sets_and_mean_ablation_refuses_rescaled_scales() {
    let dir = fixture();
    let m = load(dir.path());
    let t = task(dir.path());
    let plain = TaskScorer::new(&m, &t.items, t.scoring, RunOptions::default()).unwrap();
    let rescaling = TaskScorer::new(&m, &t.items, t.scoring, RunOptions::default())
        .unwrap()
        .with_rescale(true);
    let zeroed = HeadScales::zeroing(4, 4, &[(1, 2), (3, 0), (3, 1)]).unwrap();
    let a = rescaling.score(&[Some(zeroed.clone())], true).unwrap();
    let b = plain.score(&[Some(zeroed.rescaled())], true).unwrap();
    let z = plain.score(&[Some(zeroed)], true).unwrap();
    let gold = ValueKind::CorrectLogProb;
    let (va, vb, vz) = (
        gold.values(&a, &t.golds()).unwrap(),
        gold.values(&b, &t.golds()).unwrap(),
        gold.values(&z, &t.golds()).unwrap(),
    );
    assert_eq!(va, vb);
    assert_ne!(va, vz, "rescale must differ from zero ablation");
    // Every head kept: the same as the unmasked model.
    let ones = rescaling
        .score(&[Some(HeadScales::ones(4, 4))], true)
        .unwrap();
    let none = plain.score(&[None], true).unwrap();
    assert_eq!(
        gold.values(&ones, &t.golds()).unwrap(),
        gold.values(&none, &t.golds()).unwrap()
    );
    // Mean ablation blends, and cannot blend a scale above 1.
    let prompts: Vec<Vec<u32>> = vec![random_prompt(6, VOCAB, 1)];
    let means = RunOptions {
        means: Some(m.head_means(&prompts).unwrap()),
        ..RunOptions::default()
    };
    let mean = TaskScorer::new(&m, &t.items, t.scoring, means)
        .unwrap()
        .with_rescale(true);
    let err = mean
        .score(&[Some(HeadScales::zeroing(4, 4, &[(1, 2)]).unwrap())], true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("head_mask[1][0]") && err.contains("above 1"),
        "{err}"
    );
}

#[test]
fn cli_heads_eval_and_logits_run_under_rescale() {
    let dir = fixture();
    let model = dir.path().join("model").display().to_string();
    let task_arg = format!("jsonl:{}", dir.path().join("task.jsonl").display());
    let out = dir.path().join("heads");
    let out_s = out.display().to_string();
    let common = [
        "--model", &model, "--task", &task_arg, "--budget", "100", "--seed", "1",
    ];
    let mut args = vec!["heads"];
    args.extend_from_slice(&common);
    args.extend_from_slice(&["--out", &out_s, "--ablation", "rescale"]);
    ok(spex(&args));
    // The values' store names the ablation in its header (the run's identity).
    let log = std::fs::read(out.join("values.log")).unwrap();
    let header = String::from_utf8_lossy(&log[..log.iter().position(|&b| b == b'\n').unwrap()]);
    assert!(header.contains(r#""ablation":"rescale""#), "{header}");
    // The stored values are the library's under rescale, not under zero ablation.
    let masks = read_masks_npy(&out.join("masks.npy")).unwrap();
    let values = read_values(&out.join("values.npy")).unwrap();
    let m = load(dir.path());
    let t = task(dir.path());
    let score = |rescale: bool| {
        let scorer = TaskScorer::new(&m, &t.items, t.scoring, RunOptions::default())
            .unwrap()
            .with_rescale(rescale);
        let mut f = scorer.head_value_function(ValueKind::CorrectLogProb, t.golds());
        f.values(&masks).unwrap()
    };
    let (rescaled, zeroed) = (score(true), score(false));
    for (i, (v, r)) in values.iter().zip(&rescaled).enumerate() {
        assert!((v - r).abs() <= 1e-5, "mask {i}: stored {v}, library {r}");
    }
    assert!(
        values
            .iter()
            .zip(&zeroed)
            .any(|(v, z)| (v - z).abs() > 1e-4),
        "the stored values must not be zero ablation's"
    );
    // The stored identity tells a rescale run from a zero run: a zero run into the same folder
    // is refused, naming the ablation.
    let mut args = vec!["heads"];
    args.extend_from_slice(&common);
    args.extend_from_slice(&["--out", &out_s]);
    let again = spex(&args);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains(r#"ablation: "rescale" in the file, "zero" now"#),
        "{}",
        stderr(&again)
    );

    // `spex logits --head-mask 1:2 --ablation rescale`: the library's logits of the rescaled mask.
    let json = |extra: &[&str]| -> serde_json::Value {
        let mut a = vec![
            "logits", "--model", &model, "--prompt", "w5 w6 w7", "--json",
        ];
        a.extend_from_slice(extra);
        serde_json::from_slice(&ok(spex(&a)).stdout).unwrap()
    };
    let cli = json(&["--head-mask", "1:2", "--ablation", "rescale"]);
    assert_eq!(cli["ablation"], "rescale");
    let ids = m.encode("w5 w6 w7").unwrap();
    let lib = logits(
        &m,
        &ids,
        &[Some(
            HeadScales::zeroing(4, 4, &[(1, 2)]).unwrap().rescaled(),
        )],
        &RunOptions::default(),
    );
    let top = &cli["top"][0];
    let id = top["id"].as_u64().unwrap() as usize;
    let best = lib[0].iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert_eq!(lib[0][id], best, "the CLI's top token is the library's");
    assert!((top["logit"].as_f64().unwrap() - f64::from(best)).abs() < 1e-4);
    let zero = json(&["--head-mask", "1:2"]);
    assert_ne!(
        zero["top"][0]["logit"], top["logit"],
        "rescale differs from zero"
    );

    // `spex eval --head-mask 1:2 --ablation rescale`: the library's scores of the rescaled mask.
    let eval = |extra: &[&str], name: &str| -> serde_json::Value {
        let path = dir.path().join(name).display().to_string();
        let mut a = vec![
            "eval", "--model", &model, "--task", &task_arg, "--json", &path,
        ];
        a.extend_from_slice(extra);
        ok(spex(&a));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    let cli = eval(
        &["--head-mask", "1:2", "--ablation", "rescale"],
        "rescale.json",
    );
    let zero = eval(&["--head-mask", "1:2"], "zero.json");
    assert_eq!(cli["ablation"], "rescale");
    let scorer = TaskScorer::new(&m, &t.items, t.scoring, RunOptions::default())
        .unwrap()
        .with_rescale(true);
    let lib_logits = scorer
        .score(&[Some(HeadScales::zeroing(4, 4, &[(1, 2)]).unwrap())], true)
        .unwrap();
    let lib = evaluate(&t.items, &lib_logits, 0).unwrap();
    for (q, want) in lib.questions.iter().enumerate() {
        let got = &cli["questions"][q]["logprobs"];
        for (k, w) in want.logprobs.iter().enumerate() {
            let g = got[k].as_f64().unwrap();
            assert!((g - w).abs() < 1e-5, "question {q} choice {k}: {g} vs {w}");
        }
    }
    assert_ne!(
        cli["questions"], zero["questions"],
        "rescale differs from zero"
    );
}

#[test]
fn mean_prompts_with_rescale_exit_2_naming_the_flag() {
    let dir = fixture();
    let model = dir.path().join("model").display().to_string();
    let task_arg = format!("jsonl:{}", dir.path().join("task.jsonl").display());
    let prompts = dir.path().join("prompts.txt");
    std::fs::write(&prompts, "w5 w6\n").unwrap();
    let p = prompts.display().to_string();
    let out_s = dir.path().join("heads").display().to_string();
    let heads = [
        "heads",
        "--model",
        &model,
        "--task",
        &task_arg,
        "--budget",
        "100",
        "--out",
        &out_s,
        "--ablation",
        "rescale",
        "--mean-prompts",
        &p,
    ];
    let logits = [
        "logits",
        "--model",
        &model,
        "--prompt",
        "w5",
        "--ablation",
        "rescale",
        "--mean-prompts",
        &p,
    ];
    for args in [&heads[..], &logits[..]] {
        let out = spex(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("--mean-prompts")
                && err.contains("--ablation mean")
                && err.contains("rescale"),
            "{err}"
        );
    }
}
