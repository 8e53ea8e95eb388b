//! What an ablated head outputs (zero, its mean output over reference prompts, or zero with the
//! layer's kept heads rescaled) and the run options that carry it to the model.

use std::path::Path;

use crate::model::{HeadMeans, HeadScales, Model, RunOptions};
use crate::{Error, Result};

/// What replaces an ablated head's output (its attention context before `o_proj`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ablation {
    /// Zero: the head contributes nothing.
    #[default]
    Zero,
    /// The head's mean output over a reference prompt set (every position weighs the same).
    Mean,
    /// Zero, and each layer's kept heads scaled by (heads in the layer) / (heads kept in it), as
    /// the ProxySPEX paper ablates heads ([`HeadScales::rescaled`]); a layer keeping no head
    /// contributes nothing, as under zero ablation.
    Rescale,
}

impl Ablation {
    /// `zero`, `mean` or `rescale`, for reports and stored identities.
    pub fn label(self) -> &'static str {
        match self {
            Ablation::Zero => "zero",
            Ablation::Mean => "mean",
            Ablation::Rescale => "rescale",
        }
    }

    /// Whether the model runs each kept set's scales rescaled ([`HeadScales::rescaled`]).
    pub fn rescales(self) -> bool {
        self == Ablation::Rescale
    }

    /// The scales a run under this ablation applies for `scales`: rescaled under
    /// [`Ablation::Rescale`], else unchanged. Every path from a kept set to a forward pass
    /// goes through here or through a scorer built with [`Ablation::rescales`].
    pub fn head_scales(self, scales: HeadScales) -> HeadScales {
        match self {
            Ablation::Rescale => scales.rescaled(),
            Ablation::Zero | Ablation::Mean => scales,
        }
    }

    /// Checks, before any model is loaded, that `mean_prompts` goes with this ablation (only the
    /// mean ablation reads reference prompts) and names a file that can be read.
    pub fn check_mean_prompts(self, mean_prompts: Option<&Path>) -> Result<()> {
        let Some(path) = mean_prompts else {
            return Ok(());
        };
        if self != Ablation::Mean {
            return Err(Error::invalid(
                "mean_prompts",
                format!(
                    "{} needs the mean ablation (this run's is {}; the default is zero)",
                    path.display(),
                    self.label()
                ),
            ));
        }
        if path.is_dir() {
            return Err(Error::invalid(
                "mean_prompts",
                format!(
                    "{}: is a folder; a file of prompts, one per line, is needed",
                    path.display()
                ),
            ));
        }
        std::fs::File::open(path)
            .map_err(|e| Error::invalid("mean_prompts", format!("{}: {e}", path.display())))?;
        Ok(())
    }

    /// How `model` runs: the device's defaults, `max_batch_tokens` (prompt positions per batch)
    /// when given, and this ablation's targets (the mean over `scored`, or over the lines of
    /// `mean_prompts`).
    pub fn run_options(
        self,
        model: &Model,
        mean_prompts: Option<&Path>,
        max_batch_tokens: Option<usize>,
        scored: &[&str],
    ) -> Result<RunOptions> {
        let defaults = RunOptions::for_device(model.device());
        Ok(RunOptions {
            max_batch_tokens: max_batch_tokens.unwrap_or(defaults.max_batch_tokens),
            means: self.means(model, mean_prompts, scored)?,
            ..defaults
        })
    }

    /// The mean-ablation targets, or `None` for zero and rescale ablation (where `mean_prompts`
    /// is an error); `scored` (the prompts this run scores) is the reference set unless
    /// `mean_prompts` names a file of one prompt per line (blank lines skipped).
    pub fn means(
        self,
        model: &Model,
        mean_prompts: Option<&Path>,
        scored: &[&str],
    ) -> Result<Option<HeadMeans>> {
        self.check_mean_prompts(mean_prompts)?;
        if self != Ablation::Mean {
            return Ok(None);
        }
        let owned: Vec<String>;
        let texts: Vec<&str> = match mean_prompts {
            None => scored.to_vec(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
                owned = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string)
                    .collect();
                if owned.is_empty() {
                    return Err(Error::file(path, "no non-blank line (mean_prompts)"));
                }
                owned.iter().map(String::as_str).collect()
            }
        };
        let ids = texts
            .iter()
            .map(|t| model.encode(t))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let means = model.head_means(&ids)?;
        tracing::info!("mean ablation: head means over {} prompt(s)", ids.len());
        Ok(Some(means))
    }
}
