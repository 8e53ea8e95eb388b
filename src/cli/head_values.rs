//! The head value function of `spex run`, `spex heads` and `spex prune`: a model, a question set,
//! a value kind and an ablation, turned into one number per head mask, evaluated resumably.

use std::ops::Range;

use clap::Args;
use serde_json::{json, Value};

use spex::ablate::{parse_layer_range, HeadPlayers, TaskScorer};
use spex::model::{Model, RunOptions};
use spex::task::{LoadedTask, ValueKind};

use super::ablation_args::AblationArgs;
use super::model_args::ModelArgs;
use super::task_args::TaskArgs;

/// Forward passes (mask x question) per stored batch: a crash loses at most this much work.
pub const PASSES_PER_BATCH: usize = 1024;

/// Which model, questions, value and ablation define `f(mask)` over the `L x H` heads.
#[derive(Debug, Args)]
pub struct HeadValueArgs {
    /// Which model, on which device.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Which questions, prompted how.
    #[command(flatten)]
    pub task: TaskArgs,
    /// The number per ablation, averaged over the questions: logprob (of the gold letter among
    /// the candidates), margin, accuracy, target-logprob (over the whole vocabulary), logit-diff.
    #[arg(long, default_value = "logprob", value_parser = parse_value_kind)]
    pub value: ValueKind,
    /// Zero or mean ablation of the removed heads.
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

/// A loaded model and question set, and which of its heads are the players.
pub struct HeadValues {
    /// The model.
    pub model: Model,
    /// The players: every head, or those of `--layers`.
    pub players: HeadPlayers,
    /// The questions.
    pub task: LoadedTask,
    /// How the forward passes run (batch size, ablation targets).
    pub options: RunOptions,
    /// The value kind.
    pub kind: ValueKind,
    identity: Value,
}

impl HeadValueArgs {
    /// Loads the model and the questions and computes the mean-ablation targets if asked.
    pub fn load(&self) -> anyhow::Result<HeadValues> {
        let model = self.model.load()?;
        let task = self.task.load()?;
        let prompts: Vec<&str> = task.items.iter().map(|it| it.prompt.as_str()).collect();
        let options = self
            .ablation
            .run_options(&model, self.max_batch_tokens, &prompts)?;
        let info = model.info();
        let players = match &self.layers {
            Some(range) => {
                HeadPlayers::in_layers(range.clone(), info.n_layers, info.n_heads, "--layers")?
            }
            None => HeadPlayers::all(info.n_layers, info.n_heads),
        };
        let mut identity = json!({
            "players": "heads",
            "n_players": players.n(),
            "model": self.model.label(),
            "dtype": model.dtype().as_str(),
            "task": task.name,
            "split": format!("{:?}", self.task.split).to_lowercase(),
            "shots": self.task.shots,
            "questions": task.items.len(),
            "questions_digest": questions_digest(&task),
            "value": self.value.name(),
            "ablation": self.ablation.label(),
            "mean_prompts": self.ablation.mean_prompts.as_ref().map(|p| p.display().to_string()),
        });
        // Absent for every head, so the stores of runs over all heads keep their header.
        if !players.is_all() {
            identity["layers"] = json!(players.to_string());
        }
        Ok(HeadValues {
            model,
            players,
            task,
            options,
            kind: self.value,
            identity,
        })
    }
}

impl HeadValues {
    /// Number of head players.
    pub fn n_players(&self) -> usize {
        self.players.n()
    }

    /// What determines the values, plus `extra` fields (e.g. the plan): a store's header.
    pub fn identity(&self, extra: &[(&str, Value)]) -> Value {
        let mut id = self.identity.clone();
        if let Some(map) = id.as_object_mut() {
            for (k, v) in extra {
                map.insert((*k).to_string(), v.clone());
            }
        }
        id
    }

    /// The value function over the players.
    pub fn value_function<'s>(
        &'s self,
        scorer: &'s TaskScorer<'s>,
    ) -> impl spex::sparse::ValueFunction + 's {
        scorer.players_value_function(self.players.clone(), self.kind, self.task.golds())
    }

    /// A scorer of the questions (no progress bar of its own).
    pub fn scorer(&self) -> anyhow::Result<TaskScorer<'_>> {
        Ok(TaskScorer::new(
            &self.model,
            &self.task.items,
            self.options.clone(),
        )?)
    }

    /// Masks per stored batch: about [`PASSES_PER_BATCH`] forward passes.
    pub fn per_batch(&self) -> usize {
        (PASSES_PER_BATCH / self.task.items.len().max(1)).max(1)
    }
}

/// FNV-1a (64-bit) over every prompt, continuation and gold: names the exact question set.
fn questions_digest(task: &LoadedTask) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for item in &task.items {
        eat(item.prompt.as_bytes());
        for c in &item.continuations {
            eat(c.as_bytes());
        }
        eat(&(item.gold as u64).to_le_bytes());
    }
    format!("{h:016x}")
}

fn parse_value_kind(s: &str) -> Result<ValueKind, String> {
    s.parse().map_err(|e: spex::Error| e.to_string())
}
