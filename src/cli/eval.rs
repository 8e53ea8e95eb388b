//! `spex eval`: multiple-choice accuracy of a model, optionally with heads ablated.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use spex::io::{check_writable, write_json};
use spex::run::accuracy::{accuracy, AccuracyOptions};

use super::ablation_args::AblationArgs;
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

/// Runs `spex eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    args.ablation.check()?;
    if let Some(path) = &args.json {
        check_writable(path).context("--json")?;
    }
    let task = args.task.load()?;
    let model = args.model.load()?;
    let options = AccuracyOptions {
        head_mask: args.head_mask.clone(),
        ablation: args.ablation.ablation(),
        mean_prompts: args.ablation.mean_prompts.clone(),
        max_batch_tokens: args.max_batch_tokens,
        progress: true,
    };
    let report = accuracy(
        &model,
        &args.model.label(),
        &task,
        &args.task.spec(),
        &options,
    )?;
    print!("{}", report.table());
    eprintln!(
        "scored {} questions in {:.2} s ({:.2} questions/s)",
        task.items.len(),
        report.seconds,
        task.items.len() as f64 / report.seconds
    );
    if let Some(path) = &args.json {
        write_json(path, &report)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
