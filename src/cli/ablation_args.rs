//! `--ablation zero|mean|rescale` and `--mean-prompts FILE`: what an ablated head outputs.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use spex::model::{HeadMeans, HeadScales, Model};
use spex::run::Ablation;

/// What replaces an ablated head's output (its attention context before `o_proj`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AblationArg {
    /// Zero: the head contributes nothing.
    Zero,
    /// The head's mean output over a reference prompt set (every position weighs the same).
    Mean,
    /// Zero, and each layer's kept heads scaled by (heads in the layer) / (heads kept in it), as
    /// the ProxySPEX paper does; a layer keeping no head contributes nothing.
    Rescale,
}

/// `--ablation` and `--mean-prompts`.
#[derive(Debug, Args)]
pub struct AblationArgs {
    /// What an ablated head outputs: `zero`, `mean` (its mean output over reference prompts), or
    /// `rescale` (zero, and each layer's kept heads scaled by heads / kept heads, as in the
    /// ProxySPEX paper; a layer keeping no head contributes nothing).
    #[arg(long, value_enum, default_value = "zero")]
    pub ablation: AblationArg,
    /// Reference prompts for `--ablation mean`, one per line (blank lines skipped). Default: the
    /// prompts being scored.
    #[arg(long, value_name = "FILE")]
    pub mean_prompts: Option<PathBuf>,
}

impl AblationArgs {
    /// The library's ablation.
    pub fn ablation(&self) -> Ablation {
        match self.ablation {
            AblationArg::Zero => Ablation::Zero,
            AblationArg::Mean => Ablation::Mean,
            AblationArg::Rescale => Ablation::Rescale,
        }
    }

    /// The scales a run under `--ablation` applies for `scales` ([`Ablation::head_scales`]).
    pub fn head_scales(&self, scales: HeadScales) -> HeadScales {
        self.ablation().head_scales(scales)
    }

    /// `zero`, `mean` or `rescale`, for reports.
    pub fn label(&self) -> &'static str {
        self.ablation().label()
    }

    /// Checks that the flags go together (`--mean-prompts` only with `--ablation mean`) and that
    /// the `--mean-prompts` file can be read, before any model is loaded.
    pub fn check(&self) -> anyhow::Result<()> {
        if let (AblationArg::Zero | AblationArg::Rescale, Some(path)) =
            (self.ablation, &self.mean_prompts)
        {
            anyhow::bail!(
                "--mean-prompts {} needs --ablation mean (this run's is {}; the default is zero)",
                path.display(),
                self.label()
            );
        }
        Ok(self
            .ablation()
            .check_mean_prompts(self.mean_prompts.as_deref())?)
    }

    /// The mean-ablation targets over `scored` (or `--mean-prompts`), or `None` for zero and
    /// rescale ablation.
    pub fn means(&self, model: &Model, scored: &[&str]) -> anyhow::Result<Option<HeadMeans>> {
        self.check()?;
        Ok(self
            .ablation()
            .means(model, self.mean_prompts.as_deref(), scored)?)
    }
}
