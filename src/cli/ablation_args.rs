//! `--ablation zero|mean` and `--mean-prompts FILE`: what an ablated head outputs.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use spex::model::{HeadMeans, Model, RunOptions};

/// What replaces an ablated head's output (its attention context before `o_proj`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Ablation {
    /// Zero: the head contributes nothing.
    Zero,
    /// The head's mean output over a reference prompt set (every position weighs the same).
    Mean,
}

/// `--ablation` and `--mean-prompts`.
#[derive(Debug, Args)]
pub struct AblationArgs {
    /// What an ablated head outputs: `zero`, or `mean` (its mean output over reference prompts).
    #[arg(long, value_enum, default_value = "zero")]
    pub ablation: Ablation,
    /// Reference prompts for `--ablation mean`, one per line (blank lines skipped). Default: the
    /// prompts being scored.
    #[arg(long, value_name = "FILE")]
    pub mean_prompts: Option<PathBuf>,
}

impl AblationArgs {
    /// `zero` or `mean`, for reports.
    pub fn label(&self) -> &'static str {
        match self.ablation {
            Ablation::Zero => "zero",
            Ablation::Mean => "mean",
        }
    }

    /// How `model` runs: the device's defaults, `max_batch_tokens` when given, and this
    /// ablation's targets (mean ablation over `scored` or `--mean-prompts`).
    pub fn run_options(
        &self,
        model: &Model,
        max_batch_tokens: Option<usize>,
        scored: &[&str],
    ) -> anyhow::Result<RunOptions> {
        let defaults = RunOptions::for_device(model.device());
        Ok(RunOptions {
            max_batch_tokens: max_batch_tokens.unwrap_or(defaults.max_batch_tokens),
            means: self.means(model, scored)?,
            ..defaults
        })
    }

    /// The mean-ablation targets, or `None` for zero ablation; `scored` (the prompts this run
    /// scores) is the reference set unless `--mean-prompts` names one.
    pub fn means(&self, model: &Model, scored: &[&str]) -> anyhow::Result<Option<HeadMeans>> {
        if self.ablation == Ablation::Zero {
            if let Some(path) = &self.mean_prompts {
                bail!(
                    "--mean-prompts {} needs --ablation mean (the default is zero)",
                    path.display()
                );
            }
            return Ok(None);
        }
        let owned: Vec<String>;
        let texts: Vec<&str> = match &self.mean_prompts {
            None => scored.to_vec(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("--mean-prompts {}", path.display()))?;
                owned = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string)
                    .collect();
                if owned.is_empty() {
                    bail!("--mean-prompts {}: no non-blank line", path.display());
                }
                owned.iter().map(String::as_str).collect()
            }
        };
        let ids = texts
            .iter()
            .map(|t| model.encode(t))
            .collect::<Result<Vec<_>, _>>()?;
        let means = model
            .head_means(&ids)
            .context("computing the mean-ablation targets")?;
        eprintln!("mean ablation: head means over {} prompt(s)", ids.len());
        Ok(Some(means))
    }
}
