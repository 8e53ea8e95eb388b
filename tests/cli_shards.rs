//! Shards that cannot be mixed up: `spex run --shard i/N` on a tiny random Llama (4 layers x 4
//! heads) writes each shard's identity beside its values, and `spex solve` puts the shards in
//! order itself (whatever order a shell glob gives), uses identical copies once, and refuses with
//! exit code 2 and the files named: a missing shard, two copies that disagree, a shard of another
//! plan, of another split or of another run, and shards mixed with plain files.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use spex::io::{read_values, write_values_npy};
use spex::run::shard::values_digest;

mod common;
use common::{ok, refused, spex, stderr, tiny_model_and_task};

/// A tiny model, a three-question JSONL task, and plan folders in one temporary folder.
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

    /// `spex plan` over the 16 heads, 120 masks, into `name`.
    fn plan(&self, name: &str, seed: &str) -> PathBuf {
        let dir = self.path(name);
        ok(spex(&[
            "plan",
            "--players",
            "16",
            "--budget",
            "120",
            "--seed",
            seed,
            "--out",
            dir.to_str().unwrap(),
        ]));
        dir
    }

    /// `spex run --plan PLAN --shard i/N` plus `extra`: returns the values file.
    fn run(&self, plan: &Path, shard: &str, extra: &[&str]) -> PathBuf {
        let (model, task) = (
            self.path("model").display().to_string(),
            format!("jsonl:{}", self.path("task.jsonl").display()),
        );
        let mut args = vec!["run", "--plan", plan.to_str().unwrap(), "--shard", shard];
        args.extend(["--model", &model, "--task", &task]);
        args.extend_from_slice(extra);
        let out = ok(spex(&args));
        let (i, n) = shard.split_once('/').unwrap();
        let values = plan.join(format!("values-{i}-of-{n}.npy"));
        assert!(stderr(&out).contains(values.to_str().unwrap()));
        assert!(values.with_extension("json").exists());
        values
    }

    /// `spex solve --plan PLAN --values ...` into `out.json` and `out-spectrum.json` here.
    fn solve(&self, plan: &Path, values: &[&Path], out: &str) -> Output {
        let (json, spectrum) = (
            self.path(&format!("{out}.json")),
            self.path(&format!("{out}-spectrum.json")),
        );
        let mut args = vec!["solve", "--plan", plan.to_str().unwrap(), "--values"];
        args.extend(values.iter().map(|v| v.to_str().unwrap()));
        args.extend(["--out", json.to_str().unwrap()]);
        args.extend(["--spectrum", spectrum.to_str().unwrap()]);
        spex(&args)
    }

    /// The bytes of a solve's interactions and spectrum.
    fn outputs(&self, out: &str) -> (Vec<u8>, Vec<u8>) {
        (
            std::fs::read(self.path(&format!("{out}.json"))).unwrap(),
            std::fs::read(self.path(&format!("{out}-spectrum.json"))).unwrap(),
        )
    }
}

/// Copies `values` (and its identity, if `with_identity`) into the folder `to`, created if
/// missing; returns the copy.
fn copy(values: &Path, to: &Path, with_identity: bool) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    let dest = to.join(values.file_name().unwrap());
    std::fs::copy(values, &dest).unwrap();
    if with_identity {
        std::fs::copy(values.with_extension("json"), dest.with_extension("json")).unwrap();
    }
    dest
}

#[test]
fn shards_in_any_order_decode_to_the_same_bytes_as_in_order() {
    let fx = Fixture::new();
    let plan = fx.plan("plan", "1");
    let shards: Vec<PathBuf> = (0..12)
        .map(|i| fx.run(&plan, &format!("{i}/12"), &[]))
        .collect();
    let in_order: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();
    let quiet = ok(fx.solve(&plan, &in_order, "in-order"));
    let note = stderr(&quiet);
    assert!(
        !note.contains("no shard identity") && !note.contains("using it once"),
        "{note}"
    );
    let expected = fx.outputs("in-order");

    // What `plan/values-*-of-12.npy` expands to: values-10-of-12 before values-2-of-12.
    let mut glob = in_order.clone();
    glob.sort_by_key(|p| p.file_name().unwrap().to_owned());
    assert_eq!(glob[2].file_name().unwrap(), "values-10-of-12.npy");
    let reversed: Vec<&Path> = in_order.iter().rev().copied().collect();
    let shuffled: Vec<&Path> = [7, 2, 11, 0, 5, 9, 1, 10, 4, 8, 3, 6]
        .iter()
        .map(|&i| in_order[i])
        .collect();
    for (name, order) in [
        ("glob", &glob),
        ("reversed", &reversed),
        ("shuffled", &shuffled),
    ] {
        ok(fx.solve(&plan, order, name));
        assert_eq!(
            fx.outputs(name),
            expected,
            "{name} order decodes differently"
        );
    }

    // The same values without identity are plain files: taken in the order given, with a
    // warning; in glob order they are the wrong values for most masks.
    let plain: Vec<PathBuf> = glob
        .iter()
        .map(|p| copy(p, &fx.path("plain"), false))
        .collect();
    let plain: Vec<&Path> = plain.iter().map(PathBuf::as_path).collect();
    let warned = ok(fx.solve(&plan, &plain, "plain-glob"));
    assert!(
        stderr(&warned).contains("concatenated in the order given, which spex cannot check"),
        "{}",
        stderr(&warned)
    );
    assert_ne!(fx.outputs("plain-glob"), expected);
}

#[test]
fn the_same_shard_twice_is_used_once_if_identical_and_refused_if_not() {
    let fx = Fixture::new();
    let plan = fx.plan("plan", "1");
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| fx.run(&plan, &format!("{i}/3"), &[]))
        .collect();
    let s: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();
    ok(fx.solve(&plan, &s, "once"));

    // The same file twice, and a copy of it from another folder (a collected results folder).
    let copied = copy(s[1], &fx.path("collected"), true);
    for (name, twice) in [
        ("same-path", vec![s[0], s[1], s[2], s[1]]),
        ("copied", vec![copied.as_path(), s[0], s[1], s[2]]),
    ] {
        let out = ok(fx.solve(&plan, &twice, name));
        assert!(
            stderr(&out).contains("identical values: using it once"),
            "{}",
            stderr(&out)
        );
        assert_eq!(fx.outputs(name), fx.outputs("once"), "{name}");
    }

    // A copy whose values differ (its identity updated to match, as another run would write).
    let mut values = read_values(&copied).unwrap();
    values[3] += 0.25;
    write_values_npy(&copied, &values).unwrap();
    let id_path = copied.with_extension("json");
    let mut id: Value = serde_json::from_str(&std::fs::read_to_string(&id_path).unwrap()).unwrap();
    id["values_digest"] = Value::String(values_digest(&values));
    std::fs::write(&id_path, id.to_string()).unwrap();
    // Shard 1/3 of 120 masks in batches of 21 (3 questions, 64 passes a batch) starts at row 42.
    let row = 42 + 3;
    refused(
        fx.solve(&plan, &[s[0], s[1], copied.as_path(), s[2]], "disagree"),
        &[
            "--values",
            s[1].to_str().unwrap(),
            copied.to_str().unwrap(),
            "same shard",
            &format!("disagree at row(s) {row} ("),
        ],
    );

    // A values file changed behind its identity's back.
    id["values_digest"] = Value::String("0000000000000000".into());
    std::fs::write(&id_path, id.to_string()).unwrap();
    refused(
        fx.solve(&plan, &[s[0], copied.as_path(), s[2]], "stale"),
        &[copied.to_str().unwrap(), "was replaced"],
    );

    // A plain file given twice would count its rows twice.
    let plain = copy(s[0], &fx.path("plain"), false);
    refused(
        fx.solve(&plan, &[plain.as_path(), plain.as_path()], "plain-twice"),
        &["given twice", "values-0-of-3.npy"],
    );
}

#[test]
fn a_missing_shard_is_named_with_its_rows_and_file() {
    let fx = Fixture::new();
    let plan = fx.plan("plan", "1");
    let shards: Vec<PathBuf> = (0..3)
        .map(|i| fx.run(&plan, &format!("{i}/3"), &[]))
        .collect();
    let missing = plan.join("values-1-of-3.npy");
    refused(
        fx.solve(&plan, &[&shards[2], &shards[0]], "gap"),
        &[
            "--values",
            "1 of the 3 shards missing",
            "1/3 (rows 42..84",
            missing.to_str().unwrap(),
            "--shard i/3",
        ],
    );
    // Shards and plain files cannot be placed among each other.
    let plain = copy(&shards[1], &fx.path("plain"), false);
    refused(
        fx.solve(&plan, &[&shards[0], &plain, &shards[2]], "mixed"),
        &["carry a shard identity", plain.to_str().unwrap()],
    );
}

#[test]
fn shards_of_another_plan_split_or_run_are_refused() {
    let fx = Fixture::new();
    let plan = fx.plan("plan", "1");
    let a0 = fx.run(&plan, "0/2", &[]);
    let a1 = fx.run(&plan, "1/2", &[]);
    ok(fx.solve(&plan, &[&a1, &a0], "whole"));

    // Another seed, another plan: its shard 1/2 has the right name and size, not the right masks.
    let other = fx.plan("other", "2");
    let b1 = fx.run(&other, "1/2", &[]);
    refused(
        fx.solve(&plan, &[&a0, &b1], "other-plan"),
        &[
            b1.with_extension("json").to_str().unwrap(),
            "another plan",
            plan.join("plan.json").to_str().unwrap(),
        ],
    );

    // Halves and quarters of one plan overlap.
    let q1 = fx.run(&plan, "1/4", &[]);
    refused(
        fx.solve(&plan, &[&a0, &a1, &q1], "mixed-split"),
        &[
            "different splits",
            "values-0-of-2.npy (shard 0/2, rows 0..63)",
            "values-1-of-4.npy (shard 1/4, rows 21..63)",
        ],
    );

    // The same plan evaluated with another value function, in a copy of the plan folder.
    let copy_dir = fx.path("margin");
    std::fs::create_dir_all(&copy_dir).unwrap();
    for f in ["plan.json", "masks.npy"] {
        std::fs::copy(plan.join(f), copy_dir.join(f)).unwrap();
    }
    let m1 = fx.run(&copy_dir, "1/2", &["--value", "margin"]);
    refused(
        fx.solve(&plan, &[&a0, &m1], "other-run"),
        &[
            a0.to_str().unwrap(),
            m1.to_str().unwrap(),
            "different runs",
            r#"value: "logprob" vs "margin""#,
        ],
    );
}

#[test]
fn held_out_values_of_another_run_are_refused() {
    let fx = Fixture::new();
    let plan = fx.plan("p", "1");
    let unseen = fx.plan("unseen", "2");
    // Every plan in two shards: one run's values, and the unseen masks evaluated by the same run
    // and (same seed, another folder) by a run with another value kind.
    let both = |dir: &Path, extra: &[&str]| -> Vec<String> {
        ["0/2", "1/2"]
            .iter()
            .map(|s| fx.run(dir, s, extra).display().to_string())
            .collect()
    };
    let values = both(&plan, &[]);
    let other_run = both(&fx.plan("unseen-acc", "2"), &["--value", "accuracy"]);
    let same_run = both(&unseen, &[]);
    let (plan_s, unseen_s, out) = (
        plan.display().to_string(),
        unseen.display().to_string(),
        fx.path("i.json").display().to_string(),
    );
    let solve = |held_out: &[String]| {
        let mut args = vec!["solve", "--plan", &plan_s, "--values"];
        args.extend(values.iter().map(String::as_str));
        args.extend([
            "--out",
            &out,
            "--held-out-plan",
            &unseen_s,
            "--held-out-values",
        ]);
        args.extend(held_out.iter().map(String::as_str));
        spex(&args)
    };
    let err = refused(
        solve(&other_run),
        &["--held-out-values", "different runs", "value"],
    );
    assert!(!fx.path("i.json").exists(), "nothing written: {err}");
    ok(solve(&same_run));
    assert!(fx.path("i.json").exists());
}
