//! A plan's shards on a cluster, without one: on a tiny random Llama (4 layers x 4 heads, three
//! questions, so 21 masks per evaluation batch), `spex plan --shards --emit` writes the Slurm
//! script and the Kubernetes Indexed Job (checked field by field), `spex run --shard auto` takes
//! its shard from the scheduler's variables as the job files set them (explicit `i/N` wins, a
//! count other than the recorded one is refused naming both), shards cut on batches give the
//! bytes of a one-machine run, `spex status` tells done / partial / missing, and `spex solve
//! --plan` refuses unfinished shards and disagreeing copies. The real Slurm run is
//! `tests/slurm/run_cluster_test.sh`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use spex::io::{read_values, write_values_npy};
use spex::run::shard::values_digest;

mod common;
use common::{ok, refused, stderr, tiny_model_and_task};

/// The scheduler variables `spex run --shard auto` reads, removed from every run unless set.
const SCHEDULER_VARS: [&str; 7] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
    "SPEX_SHARD_COUNT",
];

/// `spex ARGS` with only the scheduler variables in `env` set.
fn spex_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spex"));
    for var in SCHEDULER_VARS {
        cmd.env_remove(var);
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .env("SPEX_LOG", "warn,spex=debug")
        .output()
        .expect("the spex binary runs")
}

/// A tiny model and task, and plan folders beside them.
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

    /// `spex run`'s model and task flags.
    fn run_args(&self) -> Vec<String> {
        vec![
            "--model".into(),
            self.path("model").display().to_string(),
            "--task".into(),
            format!("jsonl:{}", self.path("task.jsonl").display()),
        ]
    }

    /// `spex plan` over the 16 heads, 120 masks, into `name`, plus `extra`.
    fn plan(&self, name: &str, extra: &[&str]) -> PathBuf {
        let dir = self.path(name);
        let mut args = vec!["plan", "--players", "16", "--budget", "120", "--seed", "1"];
        args.extend(["--out", dir.to_str().unwrap()]);
        args.extend_from_slice(extra);
        ok(spex_env(&args, &[]));
        dir
    }

    /// `spex run --plan PLAN --shard SHARD` with the scheduler variables `env`.
    fn run(&self, plan: &Path, shard: &str, env: &[(&str, &str)]) -> Output {
        let run_args = self.run_args();
        let mut args = vec!["run", "--plan", plan.to_str().unwrap(), "--shard", shard];
        args.extend(run_args.iter().map(String::as_str));
        spex_env(&args, env)
    }

    /// `spex solve --plan PLAN` (no `--values`) into `out.json`, `out-spectrum.json` and
    /// `out-values.npy` here.
    fn solve(&self, plan: &Path, out: &str) -> Output {
        let (json, spectrum, values) = self.outputs_paths(out);
        spex_env(
            &[
                "solve",
                "--plan",
                plan.to_str().unwrap(),
                "--out",
                json.to_str().unwrap(),
                "--spectrum",
                spectrum.to_str().unwrap(),
                "--values-out",
                values.to_str().unwrap(),
            ],
            &[],
        )
    }

    fn outputs_paths(&self, out: &str) -> (PathBuf, PathBuf, PathBuf) {
        (
            self.path(&format!("{out}.json")),
            self.path(&format!("{out}-spectrum.json")),
            self.path(&format!("{out}-values.npy")),
        )
    }

    /// The bytes of a solve's interactions, spectrum and values.
    fn outputs(&self, out: &str) -> [Vec<u8>; 3] {
        let (a, b, c) = self.outputs_paths(out);
        [a, b, c].map(|p| std::fs::read(p).unwrap())
    }

    /// `spex status --plan PLAN`'s report.
    fn status(&self, plan: &Path) -> String {
        let out = ok(spex_env(&["status", "--plan", plan.to_str().unwrap()], &[]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The variables of Slurm array task `id` of `--array=min-(min+count-1)`.
fn slurm(id: &str, min: &str, count: &str) -> [(&'static str, String); 3] {
    [
        ("SLURM_ARRAY_TASK_ID", id.to_string()),
        ("SLURM_ARRAY_TASK_MIN", min.to_string()),
        ("SLURM_ARRAY_TASK_COUNT", count.to_string()),
    ]
}

fn pairs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn the_k8s_manifest_is_an_indexed_job_over_the_plan_volume() {
    let fx = Fixture::new();
    let run_args = fx.run_args();
    let mut extra = vec!["--shards", "3", "--emit", "k8s", "--emit", "slurm"];
    extra.extend([
        "--image",
        "ghcr.io/me/spex:1",
        "--gpus",
        "1",
        "--claim",
        "plans",
    ]);
    extra.push("--");
    extra.extend(run_args.iter().map(String::as_str));
    let plan = fx.plan("plan", &extra);
    let abs = std::fs::canonicalize(&plan).unwrap().display().to_string();
    let job: Value =
        serde_json::from_str(&std::fs::read_to_string(plan.join("spex-job.json")).unwrap())
            .unwrap();
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(
        (spec["completions"].as_u64(), spec["parallelism"].as_u64()),
        (Some(3), Some(3))
    );
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["image"], "ghcr.io/me/spex:1");
    let mut command = vec!["spex", "run", "--plan", &abs, "--shard", "auto"];
    command.extend(run_args.iter().map(String::as_str));
    assert_eq!(c["command"], serde_json::json!(command));
    assert_eq!(
        c["env"],
        serde_json::json!([{"name": "SPEX_SHARD_COUNT", "value": "3"}])
    );
    assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], 1);
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0]["mountPath"], abs.as_str());
    let volumes = pod["volumes"].as_array().unwrap();
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0]["name"], mounts[0]["name"]);
    assert_eq!(volumes[0]["persistentVolumeClaim"]["claimName"], "plans");

    let script = std::fs::read_to_string(plan.join("spex.sbatch")).unwrap();
    assert!(script.contains("\n#SBATCH --array=0-2\n"), "{script}");
    assert!(script.contains("\n#SBATCH --gres=gpu:1\n"), "{script}");
    assert!(
        script.contains("--shard \"${1:-auto}\" --model "),
        "{script}"
    );
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(plan.join("shards.json")).unwrap()).unwrap();
    assert_eq!(record["count"], 3);

    // The run arguments are checked before anything is written, and k8s needs an image.
    let bad = spex_env(
        &[
            "plan",
            "--players",
            "16",
            "--budget",
            "120",
            "--out",
            fx.path("bad").to_str().unwrap(),
            "--shards",
            "2",
            "--emit",
            "slurm",
            "--",
            "--modle",
            "x",
        ],
        &[],
    );
    refused(bad, &["the run arguments after `--`", "--modle"]);
    assert!(!fx.path("bad").exists());
    let no_image = spex_env(
        &[
            "plan",
            "--players",
            "16",
            "--budget",
            "120",
            "--out",
            fx.path("bad").to_str().unwrap(),
            "--shards",
            "2",
            "--emit",
            "k8s",
        ],
        &[],
    );
    assert_eq!(no_image.status.code(), Some(2), "{}", stderr(&no_image));
    assert!(
        stderr(&no_image).contains("--image"),
        "{}",
        stderr(&no_image)
    );
}

#[test]
fn auto_shards_from_slurm_and_kubernetes_give_the_one_machine_bytes() {
    let fx = Fixture::new();
    let whole = fx.plan("whole", &[]);
    let one = ok(fx.run(&whole, "0/1", &[]));
    assert!(stderr(&one).contains("masks 0..120"), "{}", stderr(&one));
    ok(fx.solve(&whole, "whole"));
    assert_eq!(
        std::fs::read(fx.path("whole-values.npy")).unwrap(),
        std::fs::read(whole.join("values.npy")).unwrap()
    );

    // Slurm `--array=4-6`: task ids 4, 5, 6 are shards 0, 1, 2.
    let plan = fx.plan("slurm", &["--shards", "3"]);
    for (id, rows) in [("6", "84..120"), ("4", "0..42"), ("5", "42..84")] {
        let vars = slurm(id, "4", "3");
        let out = ok(fx.run(&plan, "auto", &pairs(&vars)));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "from Slurm: SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_MIN=4"
            )) && err.contains(&format!("masks {rows}")),
            "{err}"
        );
    }
    ok(fx.solve(&plan, "slurm"));
    assert_eq!(fx.outputs("slurm"), fx.outputs("whole"));

    // Kubernetes: the completion index of SPEX_SHARD_COUNT.
    let plan = fx.plan("k8s", &["--shards", "3"]);
    for i in ["0", "1", "2"] {
        let env = [("JOB_COMPLETION_INDEX", i), ("SPEX_SHARD_COUNT", "3")];
        let out = ok(fx.run(&plan, "auto", &env));
        assert!(stderr(&out).contains("from Kubernetes: JOB_COMPLETION_INDEX="));
    }
    ok(fx.solve(&plan, "k8s"));
    assert_eq!(fx.outputs("k8s"), fx.outputs("whole"));
}

#[test]
fn auto_shards_are_checked_against_the_recorded_count_and_explicit_wins() {
    let fx = Fixture::new();
    let plan = fx.plan("plan", &["--shards", "3"]);
    let vars = slurm("1", "0", "4");
    refused(
        fx.run(&plan, "auto", &pairs(&vars)),
        &["shards.json: records 3 shards, but SLURM_ARRAY_TASK_COUNT=4 makes 4"],
    );
    refused(
        fx.run(&plan, "1/2", &[]),
        &["records 3 shards, but shard 1/2 makes 2"],
    );
    let vars = slurm("2", "0", "3");
    let mut stepped = pairs(&vars);
    stepped.push(("SLURM_ARRAY_TASK_STEP", "2"));
    refused(
        fx.run(&plan, "auto", &stepped),
        &[
            "--shard",
            "`SLURM_ARRAY_TASK_STEP`: 2: an array with a step other than 1",
        ],
    );
    refused(
        fx.run(
            &plan,
            "auto",
            &[("JOB_COMPLETION_INDEX", "3"), ("SPEX_SHARD_COUNT", "3")],
        ),
        &["`JOB_COMPLETION_INDEX`: 3 is not below SPEX_SHARD_COUNT=3"],
    );
    refused(
        fx.run(
            &plan,
            "auto",
            &[("JOB_COMPLETION_INDEX", "one"), ("SPEX_SHARD_COUNT", "3")],
        ),
        &["`JOB_COMPLETION_INDEX`: `one` is not a whole number"],
    );
    refused(fx.run(&plan, "auto", &[]), &["neither SLURM_ARRAY_TASK_ID"]);
    // An explicit shard wins over the array's variables.
    let vars = slurm("0", "0", "3");
    let out = ok(fx.run(&plan, "2/3", &pairs(&vars)));
    assert!(!stderr(&out).contains("from Slurm"), "{}", stderr(&out));
    assert!(plan.join("values-2-of-3.npy").exists() && !plan.join("values-0-of-3.npy").exists());
}

/// `log` cut to its header and first `records` 24-byte records.
fn cut_log(log: &Path, records: usize) {
    let bytes = std::fs::read(log).unwrap();
    let header = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    std::fs::write(log, &bytes[..header + 24 * records]).unwrap();
}

/// The rows stored in a values log, in file order.
fn log_rows(log: &Path) -> Vec<u64> {
    let bytes = std::fs::read(log).unwrap();
    let header = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes[header..]
        .chunks_exact(24)
        .map(|r| u64::from_le_bytes(r[..8].try_into().unwrap()))
        .collect()
}

#[test]
fn status_and_solve_plan_name_partial_and_missing_shards_and_a_rerun_resumes() {
    let fx = Fixture::new();
    let plan = fx.plan(
        "plan",
        &["--shards", "3", "--emit", "slurm", "--", "--model", "m"],
    );
    let status = fx.status(&plan);
    assert!(
        status.contains("120 masks in 3 shard(s) (recorded in shards.json)"),
        "{status}"
    );
    assert!(status.contains("shard 0/3  rows ?  missing"), "{status}");
    assert!(status.contains("120 of 120 rows to evaluate"), "{status}");

    // Shard 0 done; shard 1 stopped after 5 rows (its log cut as a kill leaves it); 2 missing.
    ok(fx.run(&plan, "0/3", &[]));
    ok(fx.run(&plan, "1/3", &[]));
    for f in ["values-1-of-3.npy", "values-1-of-3.json"] {
        std::fs::remove_file(plan.join(f)).unwrap();
    }
    let log = plan.join("values-1-of-3.log");
    cut_log(&log, 5);
    let status = fx.status(&plan);
    for line in [
        "shard 0/3  rows 0..42  done (",
        "shard 1/3  rows 42..84  partial (5 of 42 rows stored, values not written)",
        "shard 2/3  rows 84..120  missing",
        "73 of 120 rows to evaluate",
        "to finish shard 2/3: `spex run --plan",
        "--shard 2/3` with the run's model and task flags, or `sbatch --array=0 ",
    ] {
        assert!(status.contains(line), "`{line}` missing from:\n{status}");
    }
    refused(
        fx.solve(&plan, "early"),
        &[
            "--plan",
            "2 of the 3 shards not done, 73 of 120 rows to evaluate",
            "shard 1/3  rows 42..84  partial (5 of 42 rows stored",
            "shard 2/3  rows 84..120  missing: finish it with `spex run --plan",
            "spex.sbatch 2/3`",
        ],
    );

    // The rerun evaluates the batch it cut whole and stores only the rows it lacked.
    let stored: Vec<u64> = log_rows(&log);
    let out = ok(fx.run(&plan, "1/3", &[]));
    assert!(
        stderr(&out).contains("resuming: 5 of 42 masks already in"),
        "{}",
        stderr(&out)
    );
    let rows = log_rows(&log);
    assert_eq!(&rows[..5], &stored[..], "stored rows are kept");
    let mut sorted = rows.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (42..84).collect::<Vec<u64>>(),
        "no row stored twice"
    );
    ok(fx.run(&plan, "2/3", &[]));
    assert!(fx.status(&plan).contains("0 of 120 rows to evaluate"));
    ok(fx.solve(&plan, "done"));

    let whole = fx.plan("whole", &[]);
    ok(fx.run(&whole, "0/1", &[]));
    ok(fx.solve(&whole, "whole"));
    assert_eq!(fx.outputs("done"), fx.outputs("whole"));
}

#[test]
fn solve_plan_uses_a_shard_run_twice_once_if_its_copies_agree_and_refuses_if_not() {
    let fx = Fixture::new();
    let plan = fx.plan("plan", &["--shards", "2"]);
    for i in 0..2 {
        ok(fx.run(&plan, &format!("{i}/2"), &[]));
    }
    ok(fx.solve(&plan, "once"));

    // A copy of shard 1 from its first run beside the requeued run's.
    let copy = plan.join("values-1-of-2.first-run.npy");
    std::fs::copy(plan.join("values-1-of-2.npy"), &copy).unwrap();
    std::fs::copy(plan.join("values-1-of-2.json"), copy.with_extension("json")).unwrap();
    let out = ok(fx.solve(&plan, "twice"));
    assert!(
        stderr(&out).contains("identical values: using it once"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fx.outputs("twice"), fx.outputs("once"));

    // The copies disagree (the copy's identity updated to match, as another run would write).
    let mut values = read_values(&copy).unwrap();
    values[2] += 0.5;
    write_values_npy(&copy, &values).unwrap();
    let id_path = copy.with_extension("json");
    let mut id: Value = serde_json::from_str(&std::fs::read_to_string(&id_path).unwrap()).unwrap();
    id["values_digest"] = Value::String(values_digest(&values));
    std::fs::write(&id_path, id.to_string()).unwrap();
    let start = id["rows"]["start"].as_u64().unwrap();
    refused(
        fx.solve(&plan, "disagree"),
        &[
            "values-1-of-2.first-run.npy (shard 1/2",
            "values-1-of-2.npy are the same shard",
            &format!("disagree at row(s) {} (", start + 2),
        ],
    );
}

#[test]
fn solve_plan_reads_a_whole_plans_plain_values_as_solve_values_does() {
    let fx = Fixture::new();
    let plan = fx.plan("plan", &[]);
    refused(
        fx.solve(&plan, "none"),
        &[
            "1 of the 1 shards not done, 120 of 120 rows to evaluate",
            "shard 0/1  rows 0..120  missing",
        ],
    );
    // Values from another tool: no identity, no log.
    let values: Vec<f64> = (0..120).map(|r| ((r * 7) % 11) as f64 / 3.0).collect();
    write_values_npy(&plan.join("values.npy"), &values).unwrap();
    assert!(fx.status(&plan).contains("shard 0/1  rows 0..120  done"));
    ok(fx.solve(&plan, "found"));
    let (json, spectrum, _) = fx.outputs_paths("given");
    ok(spex_env(
        &[
            "solve",
            "--plan",
            plan.to_str().unwrap(),
            "--values",
            plan.join("values.npy").to_str().unwrap(),
            "--out",
            json.to_str().unwrap(),
            "--spectrum",
            spectrum.to_str().unwrap(),
            "--values-out",
            fx.outputs_paths("given").2.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(fx.outputs("found"), fx.outputs("given"));
}
