//! The head value function's flags (`spex run`, `spex heads`, `spex prune`): model, questions,
//! value kind, ablation, batch size and layers.

use std::ops::Range;

use clap::Args;

use spex::ablate::{parse_layer_range, HeadPlayers};
use spex::run::{HeadValueOptions, HeadValues};
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
    /// Loads the model and the questions and builds the library's head value function, calling
    /// `check` with the head players once the model is known and before any forward pass (the
    /// mean ablation's included): the questions load first, the model second.
    pub fn load_checked(
        &self,
        check: impl FnOnce(&HeadPlayers) -> anyhow::Result<()>,
    ) -> anyhow::Result<HeadValues> {
        self.ablation.check()?;
        let task = self.task.load()?;
        let model = self.model.load()?;
        let info = model.info();
        let players = match &self.layers {
            Some(range) => {
                HeadPlayers::in_layers(range.clone(), info.n_layers, info.n_heads, "layers")?
            }
            None => HeadPlayers::all(info.n_layers, info.n_heads),
        };
        check(&players)?;
        let options = HeadValueOptions {
            value: self
                .value
                .unwrap_or_else(|| ValueKind::default_for(task.format)),
            ablation: self.ablation.ablation(),
            mean_prompts: self.ablation.mean_prompts.clone(),
            max_batch_tokens: self.max_batch_tokens,
            layers: self.layers.clone(),
        };
        Ok(HeadValues::new(
            model,
            &self.model.label(),
            task,
            &self.task.spec(),
            &options,
        )?)
    }
}

fn parse_value_kind(s: &str) -> Result<ValueKind, String> {
    s.parse().map_err(|e: spex::Error| e.to_string())
}
