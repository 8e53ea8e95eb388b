//! `spex eval`: multiple-choice accuracy of a model, optionally with heads ablated.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use spex::ablate::TaskScorer;
use spex::io::{check_writable, write_json};
use spex::task::{evaluate, Evaluation, TaskItem};

use super::ablation_args::AblationArgs;
use super::logits::parse_head_mask;
use super::model_args::ModelArgs;
use super::task_args::TaskArgs;

/// Arguments of `spex eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Which model, on which device.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Which questions, prompted how.
    #[command(flatten)]
    pub task: TaskArgs,
    /// Heads to zero for the whole run: `LAYER:HEAD,...` (`LAYER:*` for a layer), or a JSON file
    /// holding `[[layer, head], ...]` or an `[L][H]` matrix of scales (1 keep, 0 ablate).
    #[arg(long)]
    pub head_mask: Option<String>,
    /// Zero, mean or rescale ablation of the masked heads.
    #[command(flatten)]
    pub ablation: AblationArgs,
    /// Write per-question predictions (gold, pred, pred_norm), log-likelihoods per choice, answer
    /// lengths and the accuracies to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Most prompt tokens per forward batch (bounds memory). Default: 1024 on the CPU, where
    /// small batches stay in cache and measured fastest, 8192 on GPUs (a batch that runs out of GPU
    /// memory is retried in halves).
    #[arg(long)]
    pub max_batch_tokens: Option<usize>,
}

/// The JSON written by `--json`.
#[derive(Serialize)]
struct EvalReport<'a> {
    model: String,
    task: String,
    split: String,
    format: &'static str,
    shots: u8,
    head_mask: Option<&'a str>,
    ablation: &'a str,
    accuracy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    acc_norm: Option<f64>,
    #[serde(flatten)]
    evaluation: &'a Evaluation,
}

/// Runs `spex eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    args.ablation.check()?;
    if let Some(path) = &args.json {
        check_writable(path).context("--json")?;
    }
    let task = args.task.load()?;
    let model = args.model.load()?;
    let info = model.info();
    let heads = match &args.head_mask {
        None => None,
        Some(spec) => Some(parse_head_mask(spec, info.n_layers, info.n_heads)?),
    };
    let prompts: Vec<&str> = task.items.iter().map(TaskItem::prompt).collect();
    let options = args
        .ablation
        .run_options(&model, args.max_batch_tokens, &prompts)?;
    let scorer = TaskScorer::new(&model, &task.items, task.scoring, options)?
        .with_progress(true)
        .with_rescale(args.ablation.ablation().rescales());
    let start = Instant::now();
    let logits = scorer.score(&[heads], true)?;
    let seconds = start.elapsed().as_secs_f64();
    let evaluation = evaluate(&task.items, &logits, 0)?;
    print!("{}", evaluation.render_table(task.reports_acc_norm));
    eprintln!(
        "scored {} questions in {seconds:.2} s ({:.2} questions/s)",
        task.items.len(),
        task.items.len() as f64 / seconds
    );
    if let Some(path) = &args.json {
        let report = EvalReport {
            model: args.model.label(),
            task: task.name.to_string(),
            split: format!("{:?}", args.task.spec().split).to_lowercase(),
            format: task.format.name(),
            shots: args.task.shots,
            head_mask: args.head_mask.as_deref(),
            ablation: args.ablation.label(),
            accuracy: evaluation.total.accuracy,
            acc_norm: evaluation.total.acc_norm.filter(|_| task.reports_acc_norm),
            evaluation: &evaluation,
        };
        write_json(path, &report)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
