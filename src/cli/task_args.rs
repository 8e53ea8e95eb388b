//! `--task ... --subjects ... --split ... --limit ... --shots ... --strict`: the task options
//! shared by `spex eval` and the attribution commands.

use spex::run::inputs::load_questions;
use spex::task::{default_data_dir, Format, LoadedTask, Split, Subjects, TaskName, TaskSpec};
use std::path::PathBuf;

/// Which questions to evaluate and how to prompt them.
#[derive(Debug, Clone, clap::Args)]
pub struct TaskArgs {
    /// Data set: mmlu, arc-easy, arc-challenge, sciq, openbookqa, piqa, hellaswag, winogrande,
    /// boolq, copa, sst2, or jsonl:PATH (MMLU-form rows).
    #[arg(long, default_value = "mmlu", value_parser = parse_task)]
    pub task: TaskName,

    /// Data directory [default: $SPEX_HOME/data, SPEX_HOME defaulting to ~/.cache/spex]; for
    /// mmlu also the original CSV layout ({dev,val,test}/<subject>_<split>.csv).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// MMLU subjects, comma separated, or `all`.
    #[arg(long, default_value = "all", value_parser = parse_subjects)]
    pub subjects: Subjects,

    /// Split to evaluate: test, validation (val) or dev [default: test for mmlu and jsonl:,
    /// validation for the other sets, whose data ships only that split].
    #[arg(long, value_parser = parse_split)]
    pub split: Option<Split>,

    /// Skip the first N questions of each subject (then `--limit` counts): disjoint question sets
    /// of one split, e.g. attribute on `--limit 40` and judge pruning on `--offset 40 --limit 100`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: usize,

    /// At most this many questions per subject (the first ones after `--offset`).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Few-shot examples per prompt (the first N of dev, as lm-eval's first_n sampler).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=5))]
    pub shots: u8,

    /// Make malformed rows an error (by default they are reported with file and line, then skipped).
    #[arg(long)]
    pub strict: bool,

    /// Prompt format: `cloze` (lm-evaluation-harness's task template: each answer's text scored
    /// by its log-likelihood; acc and acc_norm) or `letters` (the MMLU layout, one letter per
    /// choice) [default: letters for mmlu and jsonl:, cloze for the others].
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
}

impl TaskArgs {
    /// The library's task selection for these arguments.
    pub fn spec(&self) -> TaskSpec {
        TaskSpec {
            task: self.task.clone(),
            data_dir: self.data_dir.clone().unwrap_or_else(default_data_dir),
            subjects: self.subjects.clone(),
            split: self.split.unwrap_or_else(|| self.task.default_split()),
            offset: self.offset,
            limit: self.limit,
            shots: usize::from(self.shots),
            strict: self.strict,
            format: self.format,
        }
    }

    /// Loads the questions and builds their prompts; warns of each skipped malformed row.
    pub fn load(&self) -> anyhow::Result<LoadedTask> {
        Ok(load_questions(&self.spec())?)
    }
}

fn parse_task(s: &str) -> Result<TaskName, String> {
    s.parse().map_err(|e: spex::Error| e.to_string())
}

fn parse_subjects(s: &str) -> Result<Subjects, String> {
    s.parse().map_err(|e: spex::Error| e.to_string())
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse().map_err(|e: spex::Error| e.to_string())
}

fn parse_split(s: &str) -> Result<Split, String> {
    s.parse().map_err(|e: spex::Error| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Probe {
        #[command(flatten)]
        task: TaskArgs,
    }

    #[test]
    fn defaults_and_parsing() {
        let p = Probe::try_parse_from(["x"]).unwrap().task;
        assert_eq!(p.task, TaskName::Mmlu);
        assert_eq!(p.subjects, Subjects::All);
        assert_eq!(
            (p.spec().split, p.limit, p.shots, p.strict),
            (Split::Test, None, 0, false)
        );
        assert_eq!(p.spec().data_dir, default_data_dir());

        let p = Probe::try_parse_from([
            "x",
            "--task",
            "sst2",
            "--split",
            "val",
            "--subjects",
            "b,a",
            "--limit",
            "3",
            "--shots",
            "5",
            "--strict",
            "--data-dir",
            "/d",
        ])
        .unwrap()
        .task;
        let spec = p.spec();
        assert_eq!(spec.task, TaskName::Sst2);
        assert_eq!(spec.split, Split::Validation);
        assert_eq!(spec.subjects, "a,b".parse().unwrap());
        assert_eq!((spec.limit, spec.shots, spec.strict), (Some(3), 5, true));
        assert_eq!(spec.data_dir, PathBuf::from("/d"));
    }

    #[test]
    fn bad_values_are_rejected() {
        for args in [
            ["x", "--shots", "6"],
            ["x", "--task", "boolq2"],
            ["x", "--split", "train"],
            ["x", "--format", "mc"],
        ] {
            assert!(Probe::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn load_reports_missing_data() {
        let dir = tempfile::tempdir().unwrap();
        let args = Probe::try_parse_from([
            "x",
            "--task",
            "sciq",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .unwrap()
        .task;
        // SciQ ships a validation split only: the default, and a missing one is named.
        let err = format!("{:#}", args.load().unwrap_err());
        assert!(
            err.contains("sciq") && err.contains("validation.jsonl"),
            "{err}"
        );
        std::fs::create_dir_all(dir.path().join("sciq")).unwrap();
        std::fs::write(dir.path().join("sciq/validation.jsonl"), "").unwrap();
        let test = Probe::try_parse_from([
            "x",
            "--task",
            "sciq",
            "--split",
            "test",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .unwrap()
        .task;
        let err = format!("{:#}", test.load().unwrap_err());
        assert!(
            err.contains("test.jsonl") && err.contains("the splits here are validation"),
            "{err}"
        );
    }
}
