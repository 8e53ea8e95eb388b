//! The head value function's flags (`spex run`, `spex heads`, `spex prune`): model, questions,
//! value kind, ablation, batch size and layers.

use std::ops::Range;

use clap::Args;

use spex::ablate::{parse_layer_range, HeadPlayers};
use spex::run::inputs::HeadValueSpec;
use spex::run::HeadValues;
use spex::task::ValueKind;

use super::ablation_args::AblationArgs;
use super::model_args::ModelArgs;
use super::task_args::TaskArgs;

/// Which model, questions, value and ablation define `f(mask)` over the `L x H` heads.
#[derive(Debug, Args)]
pub struct HeadValueArgs {
    /// Which model, on which device.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Which questions, prompted how.
    #[command(flatten)]
    pub task: TaskArgs,
    /// The number per ablation, averaged over the questions: logprob (of the gold choice among
    /// the choices), margin (gold minus the best other), accuracy (acc), target-logprob (the gold
    /// answer's log-likelihood over the whole vocabulary), logit-diff (two choices); on cloze
    /// tasks also loglik-norm (per answer character) and acc-norm (acc_norm) [default: loglik-norm
    /// on cloze tasks, logprob on letter-format ones].
    #[arg(long, value_parser = parse_value_kind)]
    pub value: Option<ValueKind>,
    /// Zero, mean or rescale ablation of the removed heads.
    #[command(flatten)]
    pub ablation: AblationArgs,
    /// Most prompt tokens per forward batch (bounds memory) [default: 1024 on the CPU, 8192 on GPUs;
    /// a batch that runs out of GPU memory is retried in halves].
    #[arg(long)]
    pub max_batch_tokens: Option<usize>,
    /// Only the heads of these layers are players, e.g. `20-29` (inclusive) or `25`; the others
    /// stay kept, and the layers below the range run once per question [default: every layer].
    #[arg(long, value_parser = parse_layer_range)]
    pub layers: Option<Range<usize>>,
}

impl HeadValueArgs {
    /// The library's head value settings.
    pub fn spec(&self) -> HeadValueSpec {
        HeadValueSpec {
            model: self.model.spec(),
            task: self.task.spec(),
            value: self.value,
            ablation: self.ablation.ablation(),
            mean_prompts: self.ablation.mean_prompts.clone(),
            max_batch_tokens: self.max_batch_tokens,
            layers: self.layers.clone(),
        }
    }

    /// Loads the model and the questions and builds the library's head value function, calling
    /// `check` with the head players once the model is known and before any forward pass (the
    /// mean ablation's included): the questions load first, the model second.
    pub fn load_checked(
        &self,
        check: impl FnOnce(&HeadPlayers) -> spex::Result<()>,
    ) -> anyhow::Result<HeadValues> {
        self.ablation.check()?;
        Ok(self.spec().load_checked(check)?)
    }
}

fn parse_value_kind(s: &str) -> Result<ValueKind, String> {
    s.parse().map_err(|e: spex::Error| e.to_string())
}
