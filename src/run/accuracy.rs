//! The eval job (`spex eval`): a model's accuracy on a task, optionally with heads ablated for the
//! whole run, as the per-question report `--json` writes.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::ablation::Ablation;
use crate::ablate::TaskScorer;
use crate::model::{HeadScales, Model};
use crate::task::{evaluate, Evaluation, LoadedTask, TaskItem, TaskSpec};
use crate::Result;

/// How the eval job runs besides the model and the questions.
#[derive(Clone, Debug, Default)]
pub struct AccuracyOptions {
    /// Heads ablated for the whole run, as given (`LAYER:HEAD,...`, `LAYER:*`, or a JSON file of
    /// pairs or an `[L][H]` scale matrix); `None` keeps every head.
    pub head_mask: Option<String>,
    /// What an ablated head outputs.
    pub ablation: Ablation,
    /// Reference prompts of the mean ablation, one per line (`None`: the scored prompts).
    pub mean_prompts: Option<PathBuf>,
    /// Most prompt positions per forward batch (`None`: the device's default).
    pub max_batch_tokens: Option<usize>,
    /// Draw a progress bar over the forward passes on a terminal.
    pub progress: bool,
}

/// What `spex eval --json` writes: the run's settings, the accuracies and every question's scores.
#[derive(Clone, Debug, Serialize)]
pub struct AccuracyReport {
    /// The model as the user named it.
    pub model: String,
    /// The task's name.
    pub task: String,
    /// The split scored (`validation`, `test`, `dev`).
    pub split: String,
    /// `cloze` or `letters`.
    pub format: &'static str,
    /// Few-shot examples per prompt.
    pub shots: usize,
    /// The heads ablated, as given.
    pub head_mask: Option<String>,
    /// `zero`, `mean` or `rescale`.
    pub ablation: &'static str,
    /// The harness's `acc` over every question.
    pub accuracy: f64,
    /// The harness's `acc_norm`, where the harness reports it for this task and format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc_norm: Option<f64>,
    /// Whether the task reports `acc_norm` (the table's column).
    #[serde(skip)]
    pub reports_acc_norm: bool,
    /// Every question's scores and the per-subject accuracies.
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// Wall-clock seconds the forward passes took.
    #[serde(skip)]
    pub seconds: f64,
}

impl AccuracyReport {
    /// The per-subject table `spex eval` prints.
    pub fn table(&self) -> String {
        self.evaluation.render_table(self.reports_acc_norm)
    }
}

/// Scores every question of `task` (loaded from `spec`) on `model` (named `model_label`) under
/// `options`: the harness's acc (and acc_norm where it reports it) and per-question scores.
pub fn accuracy(
    model: &Model,
    model_label: &str,
    task: &LoadedTask,
    spec: &TaskSpec,
    options: &AccuracyOptions,
) -> Result<AccuracyReport> {
    let info = model.info();
    let heads = match &options.head_mask {
        None => None,
        Some(mask) => Some(
            HeadScales::parse(mask, info.n_layers, info.n_heads)
                .map_err(|e| crate::Error::invalid("head_mask", format!("{mask}: {e}")))?,
        ),
    };
    let prompts: Vec<&str> = task.items.iter().map(TaskItem::prompt).collect();
    let run_options = options.ablation.run_options(
        model,
        options.mean_prompts.as_deref(),
        options.max_batch_tokens,
        &prompts,
    )?;
    let scorer = TaskScorer::new(model, &task.items, task.scoring, run_options)?
        .with_progress(options.progress)
        .with_rescale(options.ablation.rescales());
    // Every logit is read (continuations, or letters with their logsumexp): the unembedding is
    // made ready with the model's other weights, before the clock starts.
    model.prepare_full_readout()?;
    let start = Instant::now();
    let logits = scorer.score(&[heads], true)?;
    let seconds = start.elapsed().as_secs_f64();
    let evaluation = evaluate(&task.items, &logits, 0)?;
    Ok(AccuracyReport {
        model: model_label.to_string(),
        task: task.name.to_string(),
        split: format!("{:?}", spec.split).to_lowercase(),
        format: task.format.name(),
        shots: spec.shots,
        head_mask: options.head_mask.clone(),
        ablation: options.ablation.label(),
        accuracy: evaluation.total.accuracy,
        acc_norm: evaluation.total.acc_norm.filter(|_| task.reports_acc_norm),
        reports_acc_norm: task.reports_acc_norm,
        evaluation,
        seconds,
    })
}
