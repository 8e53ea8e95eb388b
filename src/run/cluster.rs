//! A plan's shards on a cluster: the shard of a Slurm array task or a Kubernetes Indexed Job, read
//! from its environment ([`choose_shard`], behind `spex run --shard auto`), and the job files that
//! run every shard ([`emit_slurm`]: an `sbatch --array` script; [`emit_k8s`]: an Indexed Job
//! manifest). The shard count is recorded with the plan
//! ([`record_shard_count`](super::shard::record_shard_count)).
//!
//! The environment is passed in as a function from a variable's name to its value, so that the
//! library never reads the process's environment itself and tests pass their own.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::plan_dir::read_plan;
#[cfg(doc)]
use super::shard::record_shard_count;
use super::shard::{plan_id, Shard};
use crate::io::{write_json, write_text};
use crate::{Error, Result};

/// The variable the emitted Kubernetes manifest sets to the shard count: an Indexed Job gives
/// each pod its index (`JOB_COMPLETION_INDEX`) but not the number of completions.
pub const SHARD_COUNT_VAR: &str = "SPEX_SHARD_COUNT";

/// The Slurm array script [`emit_slurm`] writes into the plan folder.
pub const SLURM_FILE: &str = "spex.sbatch";

/// The Kubernetes Indexed Job manifest [`emit_k8s`] writes into the plan folder (JSON, which is
/// also YAML: `kubectl apply -f` reads it).
pub const K8S_FILE: &str = "spex-job.json";

/// Where a shard came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardSource {
    /// Given as `i/N`.
    Given,
    /// A Slurm array task's `SLURM_ARRAY_TASK_*` variables.
    Slurm,
    /// A Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` and [`SHARD_COUNT_VAR`].
    Kubernetes,
}

/// The shard a run evaluates and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChosenShard {
    /// The shard.
    pub shard: Shard,
    /// Who chose it.
    pub source: ShardSource,
    /// The variables (or argument) it was read from, `NAME=value, ...`: what a run prints.
    pub from: String,
    /// What set the shard count, `NAME=value` (or `shard i/N`): what a mismatch names.
    pub count_from: String,
}

/// The shard given (`explicit`, which wins), else the one the scheduler's environment names
/// (`var(name)` is the variable's value): a Slurm array task (`i = SLURM_ARRAY_TASK_ID -
/// SLURM_ARRAY_TASK_MIN`, `N = SLURM_ARRAY_TASK_COUNT`, step 1 only) or a Kubernetes Indexed Job
/// (`i = JOB_COMPLETION_INDEX`, `N =` [`SHARD_COUNT_VAR`]).
///
/// Errors name the variable at fault: a value that is not a whole number, an index outside the
/// count, an array with a step other than 1 or with gaps, a missing variable, or no scheduler.
pub fn choose_shard(
    explicit: Option<Shard>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<ChosenShard> {
    if let Some(shard) = explicit {
        return Ok(ChosenShard {
            shard,
            source: ShardSource::Given,
            from: format!("shard {shard}"),
            count_from: format!("shard {shard}"),
        });
    }
    let read = |name: &str| -> Result<Option<usize>> {
        let Some(text) = var(name) else {
            return Ok(None);
        };
        text.trim().parse().map(Some).map_err(|_| {
            Error::invalid(
                name,
                format!("`{text}` is not a whole number (0, 1, 2, ...)"),
            )
        })
    };
    let need = |name: &str, why: &str| -> Result<usize> {
        read(name)?.ok_or_else(|| Error::invalid(name, format!("not set, but {why}")))
    };
    if let Some(id) = read("SLURM_ARRAY_TASK_ID")? {
        let why = "SLURM_ARRAY_TASK_ID is: a Slurm array task has both";
        let min = need("SLURM_ARRAY_TASK_MIN", why)?;
        let count = need("SLURM_ARRAY_TASK_COUNT", why)?;
        if let Some(step) = read("SLURM_ARRAY_TASK_STEP")?.filter(|&s| s != 1) {
            return Err(Error::invalid(
                "SLURM_ARRAY_TASK_STEP",
                format!(
                    "{step}: an array with a step other than 1 leaves gaps between the shards; submit `--array=0-{}` (step 1), as `spex plan --emit slurm` writes",
                    count.saturating_sub(1)
                ),
            ));
        }
        if let Some(max) = read("SLURM_ARRAY_TASK_MAX")? {
            if max.checked_sub(min).and_then(|d| d.checked_add(1)) != Some(count) {
                return Err(Error::invalid(
                    "SLURM_ARRAY_TASK_COUNT",
                    format!(
                        "{count} tasks, but SLURM_ARRAY_TASK_MIN={min} and SLURM_ARRAY_TASK_MAX={max}: the array has gaps (e.g. `--array=1,3`), so task ids are not shard indices; to run shard i of N alone pass `--shard i/N` (the emitted script takes it as its argument)"
                    ),
                ));
            }
        }
        let index = id.checked_sub(min).filter(|&i| i < count).ok_or_else(|| {
            Error::invalid(
                "SLURM_ARRAY_TASK_ID",
                format!(
                    "{id} is outside the array SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_COUNT={count}"
                ),
            )
        })?;
        return Ok(ChosenShard {
            shard: Shard { index, count },
            source: ShardSource::Slurm,
            from: format!(
                "Slurm: SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_COUNT={count}"
            ),
            count_from: format!("SLURM_ARRAY_TASK_COUNT={count}"),
        });
    }
    if let Some(index) = read("JOB_COMPLETION_INDEX")? {
        let count = need(
            SHARD_COUNT_VAR,
            "JOB_COMPLETION_INDEX is: a Kubernetes Indexed Job does not expose its completions, so the manifest `spex plan --emit k8s` writes sets it",
        )?;
        if index >= count {
            return Err(Error::invalid(
                "JOB_COMPLETION_INDEX",
                format!("{index} is not below {SHARD_COUNT_VAR}={count}"),
            ));
        }
        return Ok(ChosenShard {
            shard: Shard { index, count },
            source: ShardSource::Kubernetes,
            from: format!("Kubernetes: JOB_COMPLETION_INDEX={index}, {SHARD_COUNT_VAR}={count}"),
            count_from: format!("{SHARD_COUNT_VAR}={count}"),
        });
    }
    Err(Error::invalid(
        "shard",
        "`auto`, but neither SLURM_ARRAY_TASK_ID (a Slurm array task) nor JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set: give the shard as i/N",
    ))
}

/// What the job files run and ask for.
#[derive(Clone, Debug)]
pub struct EmitOptions {
    /// How many shards (array tasks, completions).
    pub shards: usize,
    /// GPUs per task, 0 for none.
    pub gpus: usize,
    /// The spex program the tasks run (a path on the cluster's nodes, or in the image).
    pub program: String,
    /// The arguments after `spex run --plan PLAN --shard auto`: the model, task and value flags.
    pub run_args: Vec<String>,
    /// The container image (Kubernetes).
    pub image: String,
    /// The persistent volume claim that holds the plan folder, mounted at the plan folder's path
    /// (Kubernetes).
    pub claim: String,
}

/// The plan folder as an absolute path (what the tasks' command lines name) and the job's name,
/// `spex-` and the first 8 digits of the plan id.
fn job_target(plan_dir: &Path) -> Result<(String, String)> {
    let id = plan_id(&read_plan(plan_dir)?)?;
    let abs = std::fs::canonicalize(plan_dir).map_err(|e| Error::file(plan_dir, e))?;
    let dir = abs.to_str().ok_or_else(|| {
        Error::file(
            &abs,
            "the plan folder's path is not UTF-8: a job file cannot name it",
        )
    })?;
    Ok((dir.to_string(), format!("spex-{}", &id[..8])))
}

/// Writes `PLAN/spex.sbatch`: a Slurm array script with one task per shard (`--array=0-(N-1)`),
/// each running `spex run --plan PLAN --shard auto` with the run arguments (or the shard given as
/// the script's first argument), `--gres=gpu:G` when GPUs are asked for, logs per task in
/// `PLAN/logs/`, requeueable. Returns the script.
pub fn emit_slurm(plan_dir: &Path, options: &EmitOptions) -> Result<PathBuf> {
    let (dir, name) = job_target(plan_dir)?;
    if dir.contains(|c: char| c.is_whitespace() || c == '%') {
        return Err(Error::file(
            plan_dir,
            "the plan folder's path holds a space or `%`, which #SBATCH lines cannot quote: move the plan folder",
        ));
    }
    let logs = plan_dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::file(&logs, e))?;
    let n = options.shards.max(1);
    let gres = match options.gpus {
        0 => String::new(),
        g => format!("#SBATCH --gres=gpu:{g}\n"),
    };
    let run = command_line(options, &dir, "\"${1:-auto}\"");
    let text = format!(
        "#!/bin/bash\n\
         # Written by `spex plan --emit slurm`: one Slurm array task per shard of the plan in\n\
         # {dir} ({n} shards). Relative paths below are relative to where sbatch runs.\n\
         #   submit:        sbatch {dir}/{SLURM_FILE}\n\
         #   progress:      spex status --plan {dir}\n\
         #   decode:        spex solve --plan {dir} --out interactions.json\n\
         #   one shard alone (here the last): sbatch --array=0 {dir}/{SLURM_FILE} {last}/{n}\n\
         #SBATCH --job-name={name}\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --output={dir}/logs/%x-%A_%a.out\n\
         #SBATCH --open-mode=append\n\
         #SBATCH --requeue\n\
         {gres}\
         set -euo pipefail\n\
         exec {run}\n",
        last = n - 1,
    );
    let path = plan_dir.join(SLURM_FILE);
    write_text(&path, &text)?;
    Ok(path)
}

/// Writes `PLAN/spex-job.json`: a Kubernetes Indexed Job (`completionMode: Indexed`, one
/// completion per shard, all in parallel) whose pods run `spex run --plan PLAN --shard auto` with
/// the run arguments and [`SHARD_COUNT_VAR`] set, the claim mounted at the plan folder's path,
/// and `nvidia.com/gpu` limits when GPUs are asked for. Returns the manifest.
pub fn emit_k8s(plan_dir: &Path, options: &EmitOptions) -> Result<PathBuf> {
    let (dir, name) = job_target(plan_dir)?;
    let n = options.shards.max(1);
    let mut command: Vec<String> = vec![
        options.program.clone(),
        "run".into(),
        "--plan".into(),
        dir.clone(),
        "--shard".into(),
        "auto".into(),
    ];
    command.extend(options.run_args.iter().cloned());
    let mut container = json!({
        "name": "spex",
        "image": options.image,
        "command": command,
        "env": [{"name": SHARD_COUNT_VAR, "value": n.to_string()}],
        "volumeMounts": [{"name": "plan", "mountPath": dir}],
    });
    if options.gpus > 0 {
        container["resources"] = json!({"limits": {"nvidia.com/gpu": options.gpus}});
    }
    let manifest: Value = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "completionMode": "Indexed",
            "completions": n,
            "parallelism": n,
            "backoffLimit": 3 * n,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [{
                        "name": "plan",
                        "persistentVolumeClaim": {"claimName": options.claim},
                    }],
                }
            }
        }
    });
    let path = plan_dir.join(K8S_FILE);
    write_json(&path, &manifest)?;
    Ok(path)
}

/// `PROGRAM run --plan DIR --shard SHARD ARGS...`, each word quoted for a POSIX shell but `shard`
/// (shell text, inserted as it is).
fn command_line(options: &EmitOptions, dir: &str, shard: &str) -> String {
    let mut words = vec![
        shell_quote(&options.program),
        "run".into(),
        "--plan".into(),
        shell_quote(dir),
        "--shard".into(),
        shard.to_string(),
    ];
    words.extend(options.run_args.iter().map(|a| shell_quote(a)));
    words.join(" ")
}

/// `word` as one word of a POSIX shell: as it is when it holds only safe characters, else in
/// single quotes (a `'` written `'\''`).
fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::shard::tests::plan_folder;
    use std::collections::HashMap;

    /// The environment `pairs` as the function [`choose_shard`] reads.
    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn slurm(id: &str, min: &str, count: &str) -> Vec<(&'static str, String)> {
        vec![
            ("SLURM_ARRAY_TASK_ID", id.into()),
            ("SLURM_ARRAY_TASK_MIN", min.into()),
            ("SLURM_ARRAY_TASK_COUNT", count.into()),
        ]
    }

    fn chosen(pairs: &[(&str, &str)]) -> Result<ChosenShard> {
        choose_shard(None, env(pairs))
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        chosen(pairs).unwrap_err().to_string()
    }

    #[test]
    fn a_slurm_array_task_is_its_id_less_the_arrays_first() {
        let c = chosen(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_MAX", "8"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_STEP", "1"),
        ])
        .unwrap();
        assert_eq!(c.shard, Shard { index: 2, count: 4 });
        assert_eq!(c.source, ShardSource::Slurm);
        assert!(
            c.from.starts_with("Slurm: SLURM_ARRAY_TASK_ID=7"),
            "{}",
            c.from
        );
        assert_eq!(c.count_from, "SLURM_ARRAY_TASK_COUNT=4");
        let plain: Vec<(&str, String)> = slurm("0", "0", "1");
        let pairs: Vec<(&str, &str)> = plain.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(chosen(&pairs).unwrap().shard, Shard::WHOLE);
    }

    #[test]
    fn a_kubernetes_pod_is_its_completion_index_of_the_manifests_count() {
        let c = chosen(&[("JOB_COMPLETION_INDEX", "3"), (SHARD_COUNT_VAR, "5")]).unwrap();
        assert_eq!(
            (c.shard, c.source),
            (Shard { index: 3, count: 5 }, ShardSource::Kubernetes)
        );
        assert_eq!(c.count_from, "SPEX_SHARD_COUNT=5");
        let e = err(&[("JOB_COMPLETION_INDEX", "3")]);
        assert!(e.starts_with("invalid `SPEX_SHARD_COUNT`: not set"), "{e}");
        let e = err(&[("JOB_COMPLETION_INDEX", "5"), (SHARD_COUNT_VAR, "5")]);
        assert!(e.starts_with("invalid `JOB_COMPLETION_INDEX`: 5"), "{e}");
        let e = err(&[("JOB_COMPLETION_INDEX", "1"), (SHARD_COUNT_VAR, "many")]);
        assert!(
            e.contains("`SPEX_SHARD_COUNT`: `many` is not a whole number"),
            "{e}"
        );
    }

    #[test]
    fn an_explicit_shard_wins_over_the_environment() {
        let given = Shard { index: 1, count: 3 };
        let c = choose_shard(
            Some(given),
            env(&[("SLURM_ARRAY_TASK_ID", "x"), ("JOB_COMPLETION_INDEX", "9")]),
        )
        .unwrap();
        assert_eq!((c.shard, c.source), (given, ShardSource::Given));
    }

    #[test]
    fn bad_slurm_arrays_are_errors_naming_the_variable() {
        let step = err(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ]);
        assert!(
            step.starts_with(
                "invalid `SLURM_ARRAY_TASK_STEP`: 2: an array with a step other than 1"
            ),
            "{step}"
        );
        let gaps = err(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ]);
        assert!(gaps.contains("the array has gaps"), "{gaps}");
        let e = err(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert!(
            e.starts_with("invalid `SLURM_ARRAY_TASK_ID`: 4 is outside"),
            "{e}"
        );
        let e = err(&[
            ("SLURM_ARRAY_TASK_ID", "-1"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert!(
            e.contains("`SLURM_ARRAY_TASK_ID`: `-1` is not a whole number"),
            "{e}"
        );
        let e = err(&[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_MIN", "0")]);
        assert!(
            e.starts_with("invalid `SLURM_ARRAY_TASK_COUNT`: not set"),
            "{e}"
        );
        let e = err(&[]);
        assert!(
            e.contains("neither SLURM_ARRAY_TASK_ID") && e.contains("i/N"),
            "{e}"
        );
    }

    #[test]
    fn the_slurm_script_runs_one_task_per_shard_with_quoted_arguments() {
        let dir = plan_folder(1);
        let options = EmitOptions {
            shards: 3,
            gpus: 1,
            program: "/opt/spex/bin/spex".into(),
            run_args: vec!["--model".into(), "/m/it's here".into()],
            image: "unused".into(),
            claim: "unused".into(),
        };
        let path = emit_slurm(dir.path(), &options).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let abs = std::fs::canonicalize(dir.path()).unwrap();
        let abs = abs.display();
        for line in [
            "#!/bin/bash\n",
            "\n#SBATCH --array=0-2\n",
            "\n#SBATCH --gres=gpu:1\n",
            &format!("\n#SBATCH --output={abs}/logs/%x-%A_%a.out\n"),
            &format!(
                "\nexec /opt/spex/bin/spex run --plan {abs} --shard \"${{1:-auto}}\" --model '/m/it'\\''s here'\n"
            ),
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(dir.path().join("logs").is_dir());
        let no_gpu = EmitOptions { gpus: 0, ..options };
        let text = std::fs::read_to_string(emit_slurm(dir.path(), &no_gpu).unwrap()).unwrap();
        assert!(!text.contains("--gres"), "{text}");
    }
}
