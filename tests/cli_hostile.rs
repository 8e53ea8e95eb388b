//! The command line against hostile input, on a tiny random Llama (4 layers x 4 heads) and JSONL
//! tasks the tests write themselves: every case exits with code 2 and a message naming the file,
//! field or flag, its value and what is expected, before any work that would be lost (no
//! `values.log` is started), and never panics or aborts. Also the cases that must now work:
//! ProxySPEX over three players or fewer, exactly.

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

mod common;
use common::{
    json, llama_config, llama_weights, ok, refused, spex, stderr, tiny_model_and_task, write_model,
    TINY_TASK_ROWS,
};

/// A tiny model folder, an MMLU-form JSONL task and a scratch folder.
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

    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// `spex COMMAND --model M` plus `--task jsonl:task.jsonl` for the task commands, then `extra`.
    fn run(&self, command: &str, extra: &[&str]) -> Output {
        let model = self.s("model");
        let task = format!("jsonl:{}", self.s("task.jsonl"));
        let mut args = vec![command, "--model", model.as_str()];
        if matches!(command, "heads" | "eval" | "prune" | "run") {
            args.extend(["--task", task.as_str()]);
        }
        args.extend_from_slice(extra);
        spex(&args)
    }
}

#[test]
fn budgets_beyond_memory_are_refused_with_both_figures() {
    let fx = Fixture::new();
    for (method, budget) in [
        ("proxyspex", "18446744073709551615"),
        ("proxyspex", "10000000000"),
        ("spex", "18446744073709551615"),
    ] {
        let out = fx.s(&format!("plan-{method}-{budget}"));
        let o = spex(&[
            "plan",
            "--method",
            method,
            "--players",
            "270",
            "--budget",
            budget,
            "--out",
            &out,
        ]);
        refused(
            o,
            &[
                "--budget",
                "of memory",
                "is available",
                "masks over 270 players",
            ],
        );
        assert!(!fx
            .path(&format!("plan-{method}-{budget}/masks.npy"))
            .exists());
    }
    // The held-out check's masks too, before the first forward pass.
    let o = fx.run(
        "heads",
        &[
            "--budget",
            "120",
            "--held-out",
            "100000000000000",
            "--out",
            &fx.s("held"),
        ],
    );
    refused(o, &["--held-out", "unseen masks", "of memory"]);
    assert!(!fx.path("held/values.log").exists());
}

#[test]
fn proxyspex_over_three_players_or_fewer_is_exact() {
    let fx = Fixture::new();
    for players in ["1", "2", "3"] {
        for (budget, keep) in [("100", "0.5"), ("8", "0.9")] {
            let dir = fx.path(&format!("p{players}-{budget}"));
            let d = dir.display().to_string();
            let o = spex(&[
                "plan",
                "--players",
                players,
                "--budget",
                budget,
                "--keep-prob",
                keep,
                "--out",
                &d,
            ]);
            ok(o);
            let plan = json(&dir.join("plan.json"));
            let n: usize = players.parse().unwrap();
            assert_eq!(plan["queries"], 1 << n, "{plan}");
            assert_eq!(plan["keep_probability"], 0.5, "every mask is queried");
            let masks = spex::io::read_masks_npy(&dir.join("masks.npy")).unwrap();
            // f = 1 + 2 x0 - 3 x0 x_last, evaluated on every mask.
            let values: Vec<f64> = (0..masks.len())
                .map(|r| {
                    let x = |i: usize| f64::from(u8::from(masks.get(r, i)));
                    1.0 + 2.0 * x(0) - 3.0 * x(0) * x(n - 1)
                })
                .collect();
            let v = dir.join("values.npy");
            spex::io::write_values_npy(&v, &values).unwrap();
            let out = dir.join("moebius.json");
            ok(spex(&[
                "solve",
                "--plan",
                &d,
                "--values",
                v.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--index",
                "moebius",
            ]));
            let report = json(&out);
            assert_eq!(report["r2_queried"], 1.0, "{report}");
            let terms: Vec<(Vec<u64>, f64)> = report["interactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let players = t["players"].as_array().unwrap();
                    (
                        players.iter().map(|p| p.as_u64().unwrap()).collect(),
                        t["value"].as_f64().unwrap(),
                    )
                })
                .collect();
            let find = |s: &[u64]| terms.iter().find(|(p, _)| p == s).map_or(0.0, |t| t.1);
            let last = n as u64 - 1;
            if n == 1 {
                assert!((find(&[0]) + 1.0).abs() < 1e-9, "{terms:?}");
            } else {
                assert!((find(&[0]) - 2.0).abs() < 1e-9, "{terms:?}");
                assert!((find(&[0, last]) + 3.0).abs() < 1e-9, "{terms:?}");
            }
            let baseline = report["baseline_value"].as_f64().unwrap();
            assert!((baseline - 1.0).abs() < 1e-9, "{report}");
        }
    }
    // Below 2^n (and below 100) no budget works: the smallest one is named.
    let o = spex(&[
        "plan",
        "--players",
        "3",
        "--budget",
        "5",
        "--out",
        &fx.s("p3-5"),
    ]);
    refused(o, &["--budget", "smallest budget that works is 8"]);
}

#[test]
fn tokens_on_prompts_of_one_to_three_words_are_exact() {
    let fx = Fixture::new();
    for prompt in ["w5", "w5 w6", "w5 w6 w7"] {
        let n = prompt.split(' ').count();
        let out = fx.path(&format!("tokens-{n}"));
        ok(fx.run(
            "tokens",
            &[
                "--prompt",
                prompt,
                "--target",
                " w9",
                "--budget",
                "100",
                "--out",
                out.to_str().unwrap(),
            ],
        ));
        let report = json(&out.join("interactions.json"));
        assert_eq!(report["queries"], 1 << n, "{report}");
        assert!(
            (report["r2_queried"].as_f64().unwrap() - 1.0).abs() < 1e-9,
            "{report}"
        );
        assert!(
            report["r2_held_out"].is_null(),
            "nothing is unseen: {report}"
        );
    }
}

#[test]
fn arguments_are_checked_before_the_first_forward_pass() {
    let fx = Fixture::new();
    // heads --max-order 0: refused before the model loads, nothing evaluated.
    let o = fx.run(
        "heads",
        &["--budget", "120", "--max-order", "0", "--out", &fx.s("h0")],
    );
    let err = refused(
        o,
        &[
            "--max-order",
            "k-SII needs an interaction order of at least 1",
        ],
    );
    assert!(
        !err.contains("model:"),
        "checked before the model loads: {err}"
    );
    assert!(!fx.path("h0/values.log").exists());
    // A budget too small for the model's 16 heads: before any evaluation.
    let o = fx.run("heads", &["--budget", "5", "--out", &fx.s("h5")]);
    refused(o, &["--budget", "smallest budget"]);
    assert!(!fx.path("h5/values.log").exists());
    // An output folder where a file is.
    std::fs::write(fx.path("taken"), "x").unwrap();
    let o = fx.run("heads", &["--budget", "120", "--out", &fx.s("taken")]);
    let err = refused(o, &["taken", "output folder"]);
    assert!(!err.contains("model:"), "{err}");
    let o = fx.run(
        "tokens",
        &[
            "--prompt",
            "w5 w6",
            "--target",
            " w9",
            "--budget",
            "100",
            "--out",
            &fx.s("taken"),
        ],
    );
    refused(o, &["taken", "output folder"]);
    // eval --json into a missing folder or onto a folder: refused before scoring.
    std::fs::create_dir(fx.path("a-folder")).unwrap();
    for (json_path, words) in [
        (
            fx.s("no/such/dir/eval.json"),
            vec!["--json", "cannot be written", "does not exist"],
        ),
        (fx.s("a-folder"), vec!["--json", "is a folder"]),
    ] {
        let o = fx.run("eval", &["--json", &json_path]);
        let err = refused(o, &words);
        assert!(!err.contains("scored"), "refused before scoring: {err}");
        assert!(
            !err.contains("model:"),
            "refused before the model loads: {err}"
        );
    }
    // --mean-prompts: a folder, or a missing file, before the model loads.
    for command in ["eval", "logits"] {
        let extra: &[&str] = if command == "logits" {
            &["--prompt", "w5"]
        } else {
            &[]
        };
        let mut args = vec![
            "--ablation",
            "mean",
            "--mean-prompts",
            fx.dir.path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let err = refused(fx.run(command, &args), &["--mean-prompts", "is a folder"]);
        assert!(!err.contains("model:"), "{err}");
        let missing = fx.s("missing.txt");
        let mut args = vec!["--ablation", "mean", "--mean-prompts", missing.as_str()];
        args.extend_from_slice(extra);
        refused(fx.run(command, &args), &["--mean-prompts", "missing.txt"]);
    }
}

#[test]
fn run_checks_the_plans_players_before_the_mean_ablation() {
    // The tiny model has 16 heads; a plan over 5 players must fail before the means are computed.
    let fx = Fixture::new();
    let plan = fx.s("plan5");
    ok(spex(&[
        "plan",
        "--players",
        "5",
        "--budget",
        "100",
        "--out",
        &plan,
    ]));
    let o = fx.run("run", &["--plan", &plan, "--ablation", "mean"]);
    let err = refused(o, &["plan5", "for 5 players", "16 heads"]);
    assert!(
        !err.contains("head means"),
        "checked before the means: {err}"
    );
    assert!(!fx.path("plan5/values.log").exists());
}

#[test]
fn edited_plan_json_names_the_file_the_field_and_the_range() {
    let fx = Fixture::new();
    let dir = fx.path("plan");
    let d = dir.display().to_string();
    ok(spex(&[
        "plan",
        "--players",
        "8",
        "--budget",
        "200",
        "--out",
        &d,
    ]));
    let original = json(&dir.join("plan.json"));
    let values = dir.join("values.txt");
    std::fs::write(&values, "0.5\n".repeat(200)).unwrap();
    let cases: [(&str, Value, &[&str]); 7] = [
        (
            "energy_fraction",
            2.0.into(),
            &["`energy_fraction`", "2 is outside (0, 1]", "0.95"],
        ),
        (
            "ridge_alpha_count",
            0.into(),
            &["`ridge_alpha_count`", "0 penalties", "100"],
        ),
        (
            "ridge_alpha_min",
            (-1.0).into(),
            &["`ridge_alpha_min`", "-1 is not a finite penalty > 0"],
        ),
        (
            "grid.folds",
            0.into(),
            &["`grid.folds`", "0 cross-validation folds", "at least 2"],
        ),
        (
            "grid.n_trees",
            serde_json::json!([]),
            &["`grid.n_trees`", "[] is empty"],
        ),
        (
            "grid.n_trees",
            serde_json::json!([1_000_000_000_000u64]),
            &["`grid.n_trees`", "between 1 and"],
        ),
        (
            "keep_probability",
            1.5.into(),
            &["`keep_probability`", "1.5"],
        ),
    ];
    for (field, value, words) in cases {
        let mut edited = original.clone();
        match field.split_once('.') {
            Some((outer, inner)) => edited[outer][inner] = value,
            None => edited[field] = value,
        }
        std::fs::write(dir.join("plan.json"), edited.to_string()).unwrap();
        let o = spex(&[
            "solve",
            "--plan",
            &d,
            "--values",
            values.to_str().unwrap(),
            "--out",
            &fx.s("o.json"),
        ]);
        let err = refused(o, words);
        assert!(err.contains("plan.json"), "{field}: {err}");
        assert!(!err.contains("invalid argument"), "{field}: {err}");
    }
    // A field of the wrong type is named too.
    let mut edited = original.clone();
    edited["grid"]["folds"] = (-3).into();
    std::fs::write(dir.join("plan.json"), edited.to_string()).unwrap();
    let o = spex(&[
        "solve",
        "--plan",
        &d,
        "--values",
        values.to_str().unwrap(),
        "--out",
        &fx.s("o.json"),
    ]);
    refused(o, &["plan.json", "folds"]);
}

#[test]
fn head_masks_name_layer_head_and_range() {
    let fx = Fixture::new();
    let cases: [(&str, &[&str]); 3] = [
        (
            "[[1, 1, 1, 1], [1e39, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]",
            &["layer 1, head 0", "f32's range", "3.4"],
        ),
        (
            "[[1, -0.5, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]",
            &["layer 0, head 1", "-0.5", "outside [0, 1]"],
        ),
        (
            "[[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 7, 1], [1, 1, 1, 1]]",
            &["layer 2, head 2", "outside [0, 1]"],
        ),
    ];
    for (i, (matrix, words)) in cases.iter().enumerate() {
        let file = fx.path(&format!("mask{i}.json"));
        std::fs::write(&file, matrix).unwrap();
        for command in ["eval", "logits"] {
            let extra: &[&str] = if command == "logits" {
                &["--prompt", "w5"]
            } else {
                &[]
            };
            let mut args = vec!["--head-mask", file.to_str().unwrap()];
            args.extend_from_slice(extra);
            let err = refused(fx.run(command, &args), words);
            assert!(err.contains("--head-mask"), "{err}");
        }
    }
    let folder = fx.dir.path().to_str().unwrap();
    let err = refused(
        fx.run("eval", &["--head-mask", folder]),
        &["--head-mask", "is a folder"],
    );
    assert!(!err.contains("is not LAYER:HEAD"), "{err}");
}

#[test]
fn jsonl_lines_that_are_not_utf8_are_malformed_rows() {
    let fx = Fixture::new();
    let mut bytes = Vec::new();
    bytes.extend(TINY_TASK_ROWS[0].as_bytes());
    bytes.extend(
        b"\n{\"question\": \"w5 \xff\xfe\", \"choices\": [\"w8\", \"w9\"], \"answer\": 0}\n",
    );
    bytes.extend(TINY_TASK_ROWS[1].as_bytes());
    bytes.push(b'\n');
    let bad = fx.path("bad.jsonl");
    std::fs::write(&bad, bytes).unwrap();
    let task = format!("jsonl:{}", bad.display());
    let model = fx.s("model");
    // eval: the two good rows are scored, line 2 is reported.
    let o = ok(spex(&["eval", "--model", &model, "--task", &task]));
    let err = stderr(&o);
    assert!(
        err.contains("bad.jsonl:2") && err.contains("invalid UTF-8"),
        "{err}"
    );
    assert!(err.contains("scored 2 questions"), "{err}");
    // --strict: an error naming the file and line.
    let o = spex(&["eval", "--model", &model, "--task", &task, "--strict"]);
    refused(o, &["bad.jsonl", "line 2", "invalid UTF-8"]);
    // heads: the same report (the run then stops at a budget too small, before evaluating).
    let o = spex(&[
        "heads",
        "--model",
        &model,
        "--task",
        &task,
        "--budget",
        "5",
        "--out",
        &fx.s("hb"),
    ]);
    let err = refused(o, &["--budget"]);
    assert!(
        err.contains("bad.jsonl:2") && err.contains("invalid UTF-8"),
        "{err}"
    );
}

#[test]
fn prune_from_a_layer_range_advises_prune_flags() {
    let fx = Fixture::new();
    let from = fx.path("h23");
    ok(fx.run(
        "heads",
        &[
            "--budget",
            "100",
            "--layers",
            "2-3",
            "--held-out",
            "0",
            "--out",
            from.to_str().unwrap(),
        ],
    ));
    for layers in [None, Some("1-2")] {
        let mut args = vec!["--from", from.to_str().unwrap()];
        if let Some(l) = layers {
            args.extend(["--layers", l]);
        }
        let err = refused(fx.run("prune", &args), &["pass --layers 2-3"]);
        assert!(!err.contains("--players"), "{err}");
        assert!(
            !err.contains("model:"),
            "checked before the model loads: {err}"
        );
    }
    // A bare spectrum.json over 8 heads: the advice names the layers to pass.
    let spectrum = from.join("spectrum.json");
    let o = fx.run("prune", &["--from", spectrum.to_str().unwrap()]);
    let err = refused(
        o,
        &["spectrum over 8 heads", "--layers", "2 layer(s) of 4 heads"],
    );
    assert!(!err.contains("--players"), "{err}");
    // An unwritable --out: before any evaluation.
    let o = fx.run(
        "prune",
        &[
            "--from",
            from.to_str().unwrap(),
            "--layers",
            "2-3",
            "--out",
            &fx.s("no/dir/p.json"),
        ],
    );
    let err = refused(o, &["--out", "does not exist"]);
    assert!(!err.contains("model:"), "{err}");
}

#[test]
fn a_folder_of_another_plan_says_which_setting_differs() {
    let fx = Fixture::new();
    let out = fx.s("runs");
    let base = ["--budget", "100", "--held-out", "0", "--out", out.as_str()];
    ok(fx.run("heads", &base));
    let mut other = base.to_vec();
    other.extend(["--seed", "7"]);
    refused(
        fx.run("heads", &other),
        &["`seed` is 0 there, 7 here", "--seed 0"],
    );
    let mut other = base.to_vec();
    other[1] = "120";
    refused(
        fx.run("heads", &other),
        &["`budget` is 100 there, 120 here", "--budget 100"],
    );
    // A swapped masks.npy is noticed when the run resumes.
    let elsewhere = fx.s("other-plan");
    ok(spex(&[
        "plan",
        "--players",
        "16",
        "--budget",
        "100",
        "--seed",
        "9",
        "--out",
        &elsewhere,
    ]));
    std::fs::copy(fx.path("other-plan/masks.npy"), fx.path("runs/masks.npy")).unwrap();
    refused(
        fx.run("heads", &base),
        &["masks.npy", "other masks than plan.json describes"],
    );
    // Deleted, it is written again.
    std::fs::remove_file(fx.path("runs/masks.npy")).unwrap();
    ok(fx.run("heads", &base));
    assert!(fx.path("runs/masks.npy").exists());
}

#[test]
fn model_load_errors_print_paths_not_rust_structs() {
    let fx = Fixture::new();
    let broken = fx.path("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(
        fx.path("model/tokenizer.json"),
        broken.join("tokenizer.json"),
    )
    .unwrap();
    std::fs::write(
        broken.join("config.json"),
        r#"{"model_type": "llama", "hidden_size": 0}"#,
    )
    .unwrap();
    let err = refused(
        spex(&[
            "logits",
            "--model",
            broken.to_str().unwrap(),
            "--prompt",
            "w5",
        ]),
        &["broken"],
    );
    for rust in ["Folder {", "config:", "PathBuf", "Some("] {
        assert!(!err.contains(rust), "{rust}: {err}");
    }
    // A context length whose RoPE tables no machine holds is refused, not allocated.
    let mut cfg = llama_config("llama");
    cfg["max_position_embeddings"] = serde_json::json!(1u64 << 50);
    write_model(&fx.path("huge"), &cfg, &llama_weights(&cfg, 3));
    refused(
        spex(&["logits", "--model", &fx.s("huge"), "--prompt", "w5"]),
        &["max_position_embeddings", "RoPE tables"],
    );
}
