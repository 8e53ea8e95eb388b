//! The one-shot attribution jobs end to end on a tiny random Llama (4 layers x 4 heads) and a
//! JSONL question set that the test writes itself: `spex heads` (resumed after a crash),
//! `spex plan` + sharded `spex run` + `spex solve`, `spex prune` and `spex tokens`. Values are
//! checked against the library's own passes, never against numbers written down here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use serde_json::Value;
use spex::ablate::TaskScorer;
use spex::io::{read_masks_npy, read_values};
use spex::model::{Job, Model, Readout, RunOptions};
use spex::sparse::{MaskBatch, ValueFunction};
use spex::task::{load_task, Split, Subjects, TaskName, TaskSpec, ValueKind};

mod common;
use common::{json, ok, spex, stderr, tiny_model_and_task};

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

    fn model(&self) -> String {
        self.dir.path().join("model").display().to_string()
    }

    fn task(&self) -> String {
        format!("jsonl:{}", self.dir.path().join("task.jsonl").display())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `--model M --task T` plus `extra`.
    fn args<'a>(&'a self, owned: &'a [String; 2], extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--model", owned[0].as_str(), "--task", owned[1].as_str()];
        v.extend_from_slice(extra);
        v
    }

    fn owned(&self) -> [String; 2] {
        [self.model(), self.task()]
    }

    fn load_model(&self) -> Model {
        Model::load(&self.dir.path().join("model"), &Device::Cpu, DType::F32).unwrap()
    }

    /// The library's head values of `masks` (mask bit = keep head `l * H + h`).
    fn head_values(&self, masks: &MaskBatch, kind: ValueKind) -> Vec<f64> {
        let model = self.load_model();
        let task = load_task(&TaskSpec {
            task: TaskName::Jsonl(self.path("task.jsonl")),
            data_dir: self.dir.path().to_path_buf(),
            subjects: Subjects::All,
            split: Split::Test,
            limit: None,
            offset: 0,
            shots: 0,
            strict: true,
            format: None,
        })
        .unwrap();
        let scorer =
            TaskScorer::new(&model, &task.items, task.scoring, RunOptions::default()).unwrap();
        let mut f = scorer.head_value_function(kind, task.golds());
        f.values(masks).unwrap()
    }

    /// Reads the `masks` and `values` files (`.npy`) in `dir`, checks that the masks cover all 16
    /// heads and that every value is the library's head value (gold log-prob) of its mask.
    fn stored_values(&self, dir: &Path, (masks, values): (&str, &str)) -> (MaskBatch, Vec<f64>) {
        let masks = read_masks_npy(&dir.join(masks)).unwrap();
        assert_eq!(masks.n_players(), 16);
        let values = read_values(&dir.join(values)).unwrap();
        assert_close(
            &values,
            &self.head_values(&masks, ValueKind::CorrectLogProb),
            1e-5,
        );
        (masks, values)
    }
}

fn read_spectrum(path: &Path) -> spex::sparse::Spectrum {
    let file: spex::report::spectrum_file::SpectrumFile = spex::io::read_json(path).unwrap();
    file.to_spectrum(path).unwrap()
}

fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "row {i}: {x} vs {y}");
    }
}

/// Outputs of `spex heads` that a resumed run must write byte for byte again.
const RESUMED_OUTPUTS: [&str; 6] = [
    "interactions.json",
    "comparison.json",
    "values.npy",
    "heads.json",
    "heads.svg",
    "held_out_values.npy",
];

#[test]
fn heads_writes_the_graph_and_a_crashed_run_resumes_to_the_same_bytes() {
    let fx = Fixture::new();
    let owned = fx.owned();
    let out = fx.path("heads");
    let out_s = out.display().to_string();
    let run = |extra: &[&str]| {
        let mut a = vec!["heads"];
        a.extend(fx.args(&owned, &["--budget", "120", "--out", &out_s]));
        a.extend_from_slice(extra);
        spex(&a)
    };
    ok(run(&["--seed", "1"]));
    for f in [
        "plan.json",
        "masks.npy",
        "values.log",
        "values.npy",
        "interactions.json",
        "spectrum.json",
        "heads.json",
        "heads.dot",
        "heads.svg",
        "heads.html",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // The stored values are the library's head values of the plan's masks.
    let (masks, _) = fx.stored_values(&out, ("masks.npy", "values.npy"));
    assert_eq!(masks.len(), 120);
    let graph = json(&out.join("heads.json"));
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 16);
    assert_eq!(
        (graph["layers"].as_u64(), graph["heads"].as_u64()),
        (Some(4), Some(4))
    );
    let svg = std::fs::read_to_string(out.join("heads.svg")).unwrap();
    assert_eq!(svg.matches("<circle").count(), 16);

    // The held-out check: a tenth of the budget in unseen masks, their values the library's, and
    // the reported R^2 the spectrum's on them.
    let (unseen, unseen_values) =
        fx.stored_values(&out, ("held_out_masks.npy", "held_out_values.npy"));
    assert_eq!(unseen.len(), 12);
    let report = json(&out.join("interactions.json"));
    assert_eq!(report["held_out"].as_u64(), Some(12));
    let spectrum = read_spectrum(&out.join("spectrum.json"));
    let r2 = spectrum.r2(&unseen, &unseen_values);
    assert!((report["r2_held_out"].as_f64().unwrap() - r2).abs() < 1e-9);
    // Every method on the same unseen masks: the reported one (the cv refit) first, with the
    // R^2 interactions.json reports; energy splits over the 4 layers sum to 1.
    let comparison = json(&out.join("comparison.json"));
    let methods = comparison["methods"].as_array().unwrap();
    let names: Vec<&str> = methods
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "proxyspex-cv",
            "proxyspex",
            "linear",
            "lasso-linear",
            "lasso-pairs",
            "ridge-pairs"
        ]
    );
    assert_eq!(methods[0]["reported"], Value::Bool(true));
    assert!((methods[0]["r2_held_out"].as_f64().unwrap() - r2).abs() < 1e-9);
    assert_eq!(comparison["unseen_masks"].as_u64(), Some(12));
    for m in methods {
        let e = &m["energy"];
        let total: f64 = ["single", "within", "across"]
            .iter()
            .map(|k| e[k].as_f64().unwrap())
            .sum();
        assert!((total - 1.0).abs() < 1e-9 || total == 0.0, "{m}");
    }
    let html = std::fs::read_to_string(out.join("heads.html")).unwrap();
    assert!(html.contains("On 12 unseen masks") && html.contains("ridge-pairs"));

    let first: Vec<Vec<u8>> = RESUMED_OUTPUTS
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();
    // A crash after 50 masks, in the middle of the 51st record (24 bytes each).
    let log = std::fs::read(out.join("values.log")).unwrap();
    let header = log.iter().position(|&b| b == b'\n').unwrap() + 1;
    std::fs::write(out.join("values.log"), &log[..header + 50 * 24 + 5]).unwrap();
    let again = ok(run(&["--seed", "1"]));
    assert!(
        stderr(&again).contains("resuming: 50 of 120 masks"),
        "{}",
        stderr(&again)
    );
    for (f, bytes) in RESUMED_OUTPUTS.iter().zip(&first) {
        assert_eq!(
            &std::fs::read(out.join(f)).unwrap(),
            bytes,
            "{f} differs after resuming"
        );
    }

    // Another design is another plan; another value kind cannot reuse the stored values.
    let err = run(&["--seed", "2"]);
    assert_eq!(err.status.code(), Some(2));
    assert!(
        stderr(&err).contains("plan.json") && stderr(&err).contains("another plan"),
        "{}",
        stderr(&err)
    );
    let err = run(&["--seed", "1", "--value", "margin"]);
    assert_eq!(err.status.code(), Some(2));
    assert!(
        stderr(&err).contains("values.log")
            && stderr(&err).contains("value: \"logprob\" in the file"),
        "{}",
        stderr(&err)
    );
}

#[test]
fn sharded_runs_then_solve_equal_the_one_shot_job() {
    let fx = Fixture::new();
    let owned = fx.owned();
    let plan = fx.path("plan");
    let plan_s = plan.display().to_string();
    ok(spex(&[
        "plan",
        "--players",
        "16",
        "--budget",
        "120",
        "--seed",
        "1",
        "--out",
        &plan_s,
    ]));
    for shard in ["0/2", "1/2"] {
        let mut a = vec!["run", "--plan", &plan_s, "--shard", shard];
        a.extend(fx.args(&owned, &[]));
        ok(spex(&a));
    }
    let solved = fx.path("solved.json");
    let (v0, v1) = (
        plan.join("values-0-of-2.npy"),
        plan.join("values-1-of-2.npy"),
    );
    ok(spex(&[
        "solve",
        "--plan",
        &plan_s,
        "--values",
        v0.to_str().unwrap(),
        v1.to_str().unwrap(),
        "--out",
        solved.to_str().unwrap(),
    ]));
    let heads = fx.path("heads");
    let mut a = vec![
        "heads",
        "--budget",
        "120",
        "--seed",
        "1",
        "--out",
        heads.to_str().unwrap(),
    ];
    a.extend(fx.args(&owned, &[]));
    ok(spex(&a));
    // The shards batch their masks differently from the one-shot run, which may move the last
    // bits of a value: equal to rounding, not byte for byte.
    let shards: Vec<f64> = [v0, v1]
        .iter()
        .flat_map(|p| read_values(p).unwrap())
        .collect();
    assert_close(
        &shards,
        &read_values(&heads.join("values.npy")).unwrap(),
        1e-6,
    );
    let by_players = |v: Value| -> BTreeMap<String, f64> {
        v["interactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["players"].to_string(), e["value"].as_f64().unwrap()))
            .collect()
    };
    let (a, b) = (
        by_players(json(&solved)),
        by_players(json(&heads.join("interactions.json"))),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, x) in &a {
        assert!((x - b[k]).abs() < 1e-5, "{k}: {x} vs {}", b[k]);
    }

    // A plan over another number of players does not fit this model's 16 heads.
    let wrong = fx.path("wrong");
    let wrong_s = wrong.display().to_string();
    ok(spex(&[
        "plan",
        "--players",
        "10",
        "--budget",
        "100",
        "--out",
        &wrong_s,
    ]));
    let mut a = vec!["run", "--plan", &wrong_s];
    a.extend(fx.args(&owned, &[]));
    let err = spex(&a);
    assert_eq!(err.status.code(), Some(2));
    assert!(
        stderr(&err).contains("--plan") && stderr(&err).contains("--players 16"),
        "{}",
        stderr(&err)
    );
    let mut a = vec!["run", "--plan", &plan_s, "--shard", "2/2"];
    a.extend(fx.args(&owned, &[]));
    let err = spex(&a);
    assert_eq!(err.status.code(), Some(2));
    assert!(stderr(&err).contains("--shard"), "{}", stderr(&err));
}

#[test]
fn prune_checks_every_level_with_real_runs() {
    let fx = Fixture::new();
    let owned = fx.owned();
    let heads = fx.path("heads");
    let heads_s = heads.display().to_string();
    let mut a = vec!["heads", "--budget", "150", "--out", &heads_s];
    a.extend(fx.args(&owned, &[]));
    ok(spex(&a));
    let mut a = vec!["prune", "--from", &heads_s, "--levels", "0.25,0.5"];
    a.extend(fx.args(&owned, &[]));
    let out = ok(spex(&a));
    assert!(String::from_utf8_lossy(&out.stdout).contains("maximise"));

    let report = json(&heads.join("prune.json"));
    let levels = report["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2);
    // Measured values are the library's values of the same masks.
    let mut masks = MaskBatch::new(16);
    let mut reported = Vec::new();
    for (level, removed) in levels.iter().zip([4usize, 8]) {
        assert_eq!(level["heads_removed"].as_u64(), Some(removed as u64));
        let strategies: Vec<&str> = level["checked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["strategy"].as_str().unwrap())
            .collect();
        assert_eq!(
            strategies,
            [
                "maximise",
                "greedy",
                "single",
                "random",
                "lasso",
                "ridge-pairs"
            ]
        );
        // The exact selection is at least as high on the surrogate as the greedy order.
        let checked = level["checked"].as_array().unwrap();
        let predicted = |i: usize| checked[i]["predicted_value"].as_f64().unwrap();
        assert!(predicted(0) >= predicted(1) - 1e-9);
        assert_eq!(checked[0]["optimal"], Value::Bool(true));
        let versus = &checked[0]["versus_best_baseline"];
        assert!(
            versus["difference"]["low"].as_f64().unwrap()
                <= versus["difference"]["mean"].as_f64().unwrap()
        );
        for c in level["checked"].as_array().unwrap() {
            let heads: Vec<usize> = c["removed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|lh| (lh[0].as_u64().unwrap() * 4 + lh[1].as_u64().unwrap()) as usize)
                .collect();
            assert_eq!(heads.len(), removed);
            let mut kept = vec![true; 16];
            heads.iter().for_each(|&h| kept[h] = false);
            masks.push_bools(&kept);
            reported.push(c["value"].as_f64().unwrap());
        }
    }
    assert_close(
        &reported,
        &fx.head_values(&masks, ValueKind::CorrectLogProb),
        1e-5,
    );

    // The written head mask runs through `spex eval` to the accuracy prune measured.
    let eval_json = fx.path("eval.json");
    let mask = heads.join("prune-4-heads.json");
    let mut a = vec![
        "eval",
        "--head-mask",
        mask.to_str().unwrap(),
        "--json",
        eval_json.to_str().unwrap(),
    ];
    a.extend(fx.args(&owned, &[]));
    ok(spex(&a));
    assert_eq!(
        json(&eval_json)["accuracy"].as_f64(),
        levels[0]["checked"][0]["accuracy"].as_f64()
    );

    let mut a = vec!["prune", "--from", &heads_s, "--levels", "0,1.5"];
    a.extend(fx.args(&owned, &[]));
    let err = spex(&a);
    assert_eq!(err.status.code(), Some(2));
    assert!(stderr(&err).contains("--levels"), "{}", stderr(&err));
}

#[test]
fn prune_on_held_out_questions_against_best_of_n_chosen_on_the_attribution_questions() {
    let fx = Fixture::new();
    let owned = fx.owned();
    let heads = fx.path("heads");
    let heads_s = heads.display().to_string();
    // Attribution on the first two questions; pruning judged on the third.
    let mut a = vec![
        "heads", "--budget", "150", "--limit", "2", "--out", &heads_s,
    ];
    a.extend(fx.args(&owned, &[]));
    ok(spex(&a));
    let mut a = vec!["prune", "--from", &heads_s, "--keep", "0.5,0.75"];
    a.extend(["--best-of", "6", "--offset", "2"]);
    a.extend(fx.args(&owned, &[]));
    ok(spex(&a));
    let report = json(&heads.join("prune.json"));
    assert_eq!(report["questions"].as_u64(), Some(1));
    // The curves: one line per plan (6 methods, best-of-6 included), the unpruned model dashed.
    let svg = std::fs::read_to_string(heads.join("prune.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 7);
    assert_eq!(svg.matches("stroke-dasharray").count(), 1);
    let levels = report["levels"].as_array().unwrap();
    let kept: Vec<u64> = levels
        .iter()
        .map(|l| l["heads_kept"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, [8, 12]);
    for level in levels {
        let checked = level["checked"].as_array().unwrap();
        let best_of = checked.last().unwrap();
        assert_eq!(best_of["strategy"], "best-of-6");
        assert_eq!(best_of["train_evaluations"].as_u64(), Some(6));
        // Best-of-N keeps exactly the level's heads.
        let removed = best_of["removed"].as_array().unwrap().len() as u64;
        assert_eq!(removed + level["heads_kept"].as_u64().unwrap(), 16);
    }
    // The training questions are checked against the attribution's: another offset is refused.
    let mut a = vec!["prune", "--from", &heads_s, "--keep", "0.5"];
    a.extend(["--best-of", "2", "--train-offset", "1", "--offset", "2"]);
    a.extend(fx.args(&owned, &[]));
    let err = spex(&a);
    assert_eq!(err.status.code(), Some(2), "{}", stderr(&err));
    assert!(stderr(&err).contains("--train-offset"), "{}", stderr(&err));
}

#[test]
fn tokens_values_are_teacher_forced_log_probs_of_the_masked_prompt() {
    let fx = Fixture::new();
    let model_s = fx.model();
    let out = fx.path("tokens");
    let out_s = out.display().to_string();
    // Five words, so the budget of 100 covers all 2^5 masks.
    ok(spex(&[
        "tokens",
        "--model",
        &model_s,
        "--prompt",
        "w5 w6 w7 w8 w9",
        "--target",
        " w10 w11",
        "--budget",
        "100",
        "--out",
        &out_s,
    ]));
    let report = json(&out.join("tokens.json"));
    let texts: Vec<&str> = report["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["w5", "w6", "w7", "w8", "w9"]);
    assert!(out.join("tokens.html").exists());

    // Each value is log p(w10 | prompt') + log p(w11 | prompt' w10), prompt' = the prompt with the
    // removed words replaced by the baseline token, computed here from full-vocabulary passes.
    let model = fx.load_model();
    let baseline = model.info().baseline_token;
    let masks = read_masks_npy(&out.join("masks.npy")).unwrap();
    let values = read_values(&out.join("values.npy")).unwrap();
    assert_eq!(values.len(), 32);
    let prompt = model.encode("w5 w6 w7 w8 w9").unwrap();
    let target = model.encode(" w10 w11").unwrap();
    let log_prob = |ids: &[u32], next: u32| {
        let row = &model
            .run(
                &[ids.to_vec()],
                &[Job {
                    prompt: 0,
                    heads: None,
                    tokens: None,
                }],
                &Readout::Full,
                &RunOptions::default(),
            )
            .unwrap()[0];
        f64::from(row[next as usize]) - spex::model::logsumexp(row)
    };
    for r in [0, 1, 7, 20] {
        let ids: Vec<u32> = (0..5)
            .map(|i| if masks.get(r, i) { prompt[i] } else { baseline })
            .collect();
        let with_first: Vec<u32> = ids.iter().copied().chain([target[0]]).collect();
        let expect = log_prob(&ids, target[0]) + log_prob(&with_first, target[1]);
        assert!(
            (values[r] - expect).abs() < 1e-4,
            "mask {r}: {} vs {expect}",
            values[r]
        );
    }

    let err = spex(&[
        "tokens", "--model", &model_s, "--prompt", "w5", "--target", "", "--budget", "100",
        "--out", &out_s,
    ]);
    assert_eq!(err.status.code(), Some(2));
    assert!(stderr(&err).contains("--target"), "{}", stderr(&err));
}

#[test]
fn heads_with_spex_decodes_its_structured_design() {
    let fx = Fixture::new();
    let owned = fx.owned();
    let out = fx.path("spex");
    let mut a = vec![
        "heads", "--method", "spex", "--degree", "2", "--budget", "400", "--out",
    ];
    let out_s = out.display().to_string();
    a.push(&out_s);
    a.extend(fx.args(&owned, &[]));
    ok(spex(&a));
    let plan = json(&out.join("plan.json"));
    assert_eq!(plan["method"], "spex");
    fx.stored_values(&out, ("masks.npy", "values.npy"));
    let interactions = json(&out.join("interactions.json"));
    assert_eq!(interactions["method"], "spex");
    assert_eq!(
        json(&out.join("heads.json"))["nodes"]
            .as_array()
            .unwrap()
            .len(),
        16
    );
}

#[test]
fn heads_over_a_layer_range_ablate_only_those_layers_and_prune_them() {
    let fx = Fixture::new();
    let owned = fx.owned();
    let out = fx.path("top");
    let out_s = out.display().to_string();
    let mut a = vec![
        "heads", "--layers", "2-3", "--budget", "100", "--out", &out_s,
    ];
    a.extend(fx.args(&owned, &[]));
    ok(spex(&a));
    // Players are the 8 heads of layers 2 and 3; every value is the library's value of the
    // whole-model mask that keeps layers 0 and 1.
    let masks = read_masks_npy(&out.join("masks.npy")).unwrap();
    assert_eq!((masks.len(), masks.n_players()), (100, 8));
    let mut whole = MaskBatch::new(16);
    for r in 0..masks.len() {
        let row: Vec<bool> = (0..16).map(|i| i < 8 || masks.get(r, i - 8)).collect();
        whole.push_bools(&row);
    }
    let values = read_values(&out.join("values.npy")).unwrap();
    assert_close(
        &values,
        &fx.head_values(&whole, ValueKind::CorrectLogProb),
        1e-5,
    );
    let graph = json(&out.join("heads.json"));
    assert_eq!(
        (graph["first_layer"].as_u64(), graph["layers"].as_u64()),
        (Some(2), Some(2))
    );
    let layers: Vec<u64> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["layer"].as_u64().unwrap())
        .collect();
    assert_eq!(layers, vec![2, 2, 2, 2, 3, 3, 3, 3]);

    // Pruning that spectrum needs the same players; then it removes heads of layers 2-3 only,
    // and measures the whole-model masks.
    let mut a = vec!["prune", "--from", &out_s, "--levels", "0.5"];
    a.extend(fx.args(&owned, &[]));
    let err = spex(&a);
    assert_eq!(err.status.code(), Some(2));
    assert!(stderr(&err).contains("--layers"), "{}", stderr(&err));
    // As many players over other layers would prune the wrong heads.
    let mut wrong = a.clone();
    wrong.extend(["--layers", "0-1"]);
    let err = spex(&wrong);
    assert_eq!(err.status.code(), Some(2));
    assert!(
        stderr(&err).contains("heads.json") && stderr(&err).contains("--layers 2-3"),
        "{}",
        stderr(&err)
    );
    a.extend(["--layers", "2-3"]);
    ok(spex(&a));
    let report = json(&out.join("prune.json"));
    let level = &report["levels"][0];
    assert_eq!(level["heads_removed"].as_u64(), Some(4));
    let mut pruned = MaskBatch::new(16);
    let mut reported = Vec::new();
    for c in level["checked"].as_array().unwrap() {
        let mut kept = vec![true; 16];
        for lh in c["removed"].as_array().unwrap() {
            let (l, h) = (lh[0].as_u64().unwrap(), lh[1].as_u64().unwrap());
            assert!(l >= 2, "removed a head of layer {l}");
            kept[(l * 4 + h) as usize] = false;
        }
        pruned.push_bools(&kept);
        reported.push(c["value"].as_f64().unwrap());
    }
    assert_close(
        &reported,
        &fx.head_values(&pruned, ValueKind::CorrectLogProb),
        1e-5,
    );

    // A range outside the model is a usage error naming the argument.
    let mut a = vec![
        "heads", "--layers", "3-9", "--budget", "100", "--out", &out_s,
    ];
    a.extend(fx.args(&owned, &[]));
    let err = spex(&a);
    assert_eq!(err.status.code(), Some(2));
    assert!(stderr(&err).contains("--layers"), "{}", stderr(&err));
}

/// `spex heads` on a cloze task (PIQA's template: each answer's text scored by its
/// log-likelihood) with the length-normalised gold log-likelihood as the value: the stored values
/// are the library's, and the library's are sums of per-token log-probabilities of the masked
/// model, each computed from its own prefix.
#[test]
fn heads_on_a_cloze_task_score_answer_log_likelihoods() {
    let fx = Fixture::new();
    let data = fx.path("data");
    std::fs::create_dir_all(data.join("piqa")).unwrap();
    let rows = [
        r#"{"goal": "w5 w6 w7", "sol1": "w8 w9", "sol2": "w10 w11 w12", "label": 1}"#,
        r#"{"goal": "w13 w14", "sol1": "w15", "sol2": "w16 w17", "label": 0}"#,
    ];
    std::fs::write(data.join("piqa/validation.jsonl"), rows.join("\n") + "\n").unwrap();
    let out = fx.path("cloze-heads");
    let (out_s, data_s, model_s) = (
        out.display().to_string(),
        data.display().to_string(),
        fx.model(),
    );
    ok(spex(&[
        "heads",
        "--model",
        &model_s,
        "--task",
        "piqa",
        "--data-dir",
        &data_s,
        "--value",
        "loglik-norm",
        "--budget",
        "100",
        "--out",
        &out_s,
    ]));
    let masks = read_masks_npy(&out.join("masks.npy")).unwrap();
    let values = read_values(&out.join("values.npy")).unwrap();
    // On a cloze task loglik-norm is the default value.
    let by_default = fx.path("cloze-heads-default");
    let by_default_s = by_default.display().to_string();
    ok(spex(&[
        "heads",
        "--model",
        &model_s,
        "--task",
        "piqa",
        "--data-dir",
        &data_s,
        "--budget",
        "100",
        "--out",
        &by_default_s,
    ]));
    assert_eq!(
        std::fs::read(by_default.join("values.npy")).unwrap(),
        std::fs::read(out.join("values.npy")).unwrap()
    );

    let model = fx.load_model();
    let task = load_task(&TaskSpec {
        task: TaskName::Piqa,
        data_dir: data.clone(),
        subjects: Subjects::All,
        split: Split::Validation,
        limit: None,
        offset: 0,
        shots: 0,
        strict: true,
        format: None,
    })
    .unwrap();
    let scorer = TaskScorer::new(&model, &task.items, task.scoring, RunOptions::default()).unwrap();
    let mut f = scorer.head_value_function(ValueKind::LoglikNorm, task.golds());
    assert_close(&values, &f.values(&masks).unwrap(), 1e-5);

    // Mask 0 by hand: the gold answer's tokens, each scored by a full pass over its prefix.
    let heads = Some(spex::ablate::HeadPlayers::all(4, 4).scales(|p| masks.get(0, p)));
    let by_hand: f64 = task
        .items
        .iter()
        .map(|item| {
            let (context, answer) = spex::ablate::task_scorer::encode_pair(
                &model,
                item.context(item.gold),
                item.continuation(item.gold),
            )
            .unwrap();
            let mut ll = 0.0;
            for (j, &target) in answer.iter().enumerate() {
                let prefix = [&context[..], &answer[..j]].concat();
                let job = Job {
                    prompt: 0,
                    heads: heads.clone(),
                    tokens: None,
                };
                let row = model
                    .run(&[prefix], &[job], &Readout::Full, &RunOptions::default())
                    .unwrap()
                    .remove(0);
                let lse = spex::model::logsumexp(&row);
                ll += f64::from(row[target as usize]) - lse;
            }
            ll / item.choices[item.gold].chars().count() as f64
        })
        .sum::<f64>()
        / task.items.len() as f64;
    assert!(
        (values[0] - by_hand).abs() < 1e-4,
        "{} vs {by_hand}",
        values[0]
    );
}

/// `spex eval --task piqa --json`: per question the gold, both predictions, one log-likelihood
/// per choice and the answer lengths, as the library scores them; a bad row is skipped with its
/// file and line, and under `--strict` it is an error with exit code 2.
#[test]
fn eval_on_a_cloze_task_writes_per_choice_log_likelihoods() {
    let fx = Fixture::new();
    let data = fx.path("data");
    std::fs::create_dir_all(data.join("piqa")).unwrap();
    let rows = [
        r#"{"goal": "w5 w6 w7", "sol1": "w8 w9", "sol2": "w10 w11 w12", "label": 1}"#,
        r#"{"goal": "w13 w14", "sol1": "w15", "sol2": "w16 w17", "label": 0}"#,
        r#"{"goal": "w13 w14", "sol1": "w15", "label": 0}"#,
    ];
    let file = data.join("piqa/validation.jsonl");
    std::fs::write(&file, rows.join("\n") + "\n").unwrap();
    let (data_s, model_s) = (data.display().to_string(), fx.model());
    let out = fx.path("eval.json");
    let out_s = out.display().to_string();
    let base = [
        "eval",
        "--model",
        &model_s,
        "--task",
        "piqa",
        "--data-dir",
        &data_s,
    ];
    let run = ok(spex(&[&base[..], &["--json", &out_s]].concat()));
    let warn = stderr(&run);
    assert!(
        warn.contains(&format!("{}:3: missing field `sol2`", file.display())),
        "{warn}"
    );
    let report = json(&out);
    assert_eq!(
        (report["format"].as_str(), report["split"].as_str()),
        (Some("cloze"), Some("validation"))
    );
    let questions = report["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 2);
    assert_eq!(questions[1]["lengths"], serde_json::json!([3, 7]));
    assert!(questions[0]["pred_norm"].is_u64());

    let model = fx.load_model();
    let task = load_task(&TaskSpec {
        task: TaskName::Piqa,
        data_dir: data.clone(),
        subjects: Subjects::All,
        split: Split::Validation,
        limit: None,
        offset: 0,
        shots: 0,
        strict: false,
        format: None,
    })
    .unwrap();
    let scorer = TaskScorer::new(&model, &task.items, task.scoring, RunOptions::default()).unwrap();
    let scores = scorer.score(&[None], false).unwrap();
    for (q, stored) in questions.iter().enumerate() {
        assert_eq!(stored["gold"].as_u64(), Some(task.items[q].gold as u64));
        let lls: Vec<f64> = stored["loglikelihoods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let ours: Vec<f64> = scores.get(0, q).iter().map(|&x| f64::from(x)).collect();
        assert_close(&lls, &ours, 1e-6);
        assert!(lls.iter().all(|&l| l < 0.0));
    }

    let strict = spex(&[&base[..], &["--strict"]].concat());
    assert_eq!(strict.status.code(), Some(2), "{}", stderr(&strict));
    let msg = stderr(&strict);
    assert!(
        msg.contains("validation.jsonl") && msg.contains("line 3"),
        "{msg}"
    );
}

#[test]
fn layer_groups_are_separate_games_equal_to_their_own_runs() {
    let fx = Fixture::new();
    let owned = fx.owned();
    let (sweep, alone) = (fx.path("sweep"), fx.path("alone"));
    let (sweep_s, alone_s) = (sweep.display().to_string(), alone.display().to_string());
    let mut a = vec!["heads", "--groups", "0-1,2-3", "--budget", "100"];
    a.extend(["--held-out", "10", "--out", &sweep_s]);
    a.extend(fx.args(&owned, &[]));
    ok(spex(&a));
    let report = json(&sweep.join("groups.json"));
    let groups = report["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    for (g, (layers, folder)) in groups
        .iter()
        .zip([("0-1", "layers-0-1"), ("2-3", "layers-2-3")])
    {
        assert_eq!(
            (g["layers"].as_str(), g["folder"].as_str()),
            (Some(layers), Some(folder))
        );
        assert_eq!(g["players"].as_u64(), Some(8));
        assert_eq!(g["comparison"]["unseen_masks"].as_u64(), Some(10));
        let graph = json(&sweep.join(folder).join("heads.json"));
        assert_eq!(
            graph["first_layer"].as_u64(),
            Some(layers[..1].parse().unwrap())
        );
    }
    let html = std::fs::read_to_string(sweep.join("groups.html")).unwrap();
    assert!(html.contains("layers-2-3/heads.html"));
    // Pruning a group puts its curves into that group's section of groups.html and into its
    // heads.html; a second prune replaces them, and a resumed sweep keeps them.
    let group = sweep.join("layers-2-3");
    let group_s = group.display().to_string();
    for levels in ["0.5", "0.25,0.5"] {
        let mut p = vec![
            "prune", "--from", &group_s, "--layers", "2-3", "--levels", levels,
        ];
        p.extend(fx.args(&owned, &[]));
        ok(spex(&p));
    }
    let svg = std::fs::read_to_string(group.join("prune.svg")).unwrap();
    let section = |page: &str, key: &str| -> String {
        let (open, close) = (
            format!("<!-- spex:{key} -->"),
            format!("<!-- /spex:{key} -->"),
        );
        assert_eq!(page.matches(&open).count(), 1, "{key}");
        let start = page.find(&open).unwrap() + open.len();
        page[start..start + page[start..].find(&close).unwrap()].to_string()
    };
    let heads_html = std::fs::read_to_string(group.join("heads.html")).unwrap();
    assert!(section(&heads_html, "prune").contains(svg.trim_end()));
    ok(spex(&a));
    for page in [
        std::fs::read_to_string(sweep.join("groups.html")).unwrap(),
        std::fs::read_to_string(group.join("heads.html")).unwrap(),
    ] {
        let key = match page.contains("<!-- spex:prune-layers-2-3 -->") {
            true => "prune-layers-2-3",
            false => "prune",
        };
        assert!(section(&page, key).contains(svg.trim_end()), "{key}");
    }
    let groups_html = std::fs::read_to_string(sweep.join("groups.html")).unwrap();
    assert!(!section(&groups_html, "prune-layers-0-1").contains("<svg"));
    assert!(
        groups_html.find("layers-2-3/heads.html")
            < groups_html.find("<!-- spex:prune-layers-2-3 -->")
    );
    // The second group's values are those of a run over its layers alone.
    let mut b = vec!["heads", "--layers", "2-3", "--budget", "100"];
    b.extend(["--held-out", "10", "--out", &alone_s]);
    b.extend(fx.args(&owned, &[]));
    ok(spex(&b));
    for f in ["values.npy", "held_out_values.npy", "spectrum.json"] {
        assert_eq!(
            std::fs::read(sweep.join("layers-2-3").join(f)).unwrap(),
            std::fs::read(alone.join(f)).unwrap(),
            "{f}"
        );
    }
    // Groups outside the model, or given twice, are refused before any evaluation.
    for (groups, words) in [("2-5", "not inside"), ("0-1,0-1", "twice")] {
        let bad = fx.path(&format!("bad{}", groups.len()));
        let bad_s = bad.display().to_string();
        let mut c = vec![
            "heads", "--groups", groups, "--budget", "100", "--out", &bad_s,
        ];
        c.extend(fx.args(&owned, &[]));
        let err = spex(&c);
        assert_eq!(err.status.code(), Some(2), "{}", stderr(&err));
        assert!(
            stderr(&err).contains("--groups") && stderr(&err).contains(words),
            "{}",
            stderr(&err)
        );
    }
}
