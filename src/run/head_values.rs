//! The head value function of the attribution, shard and pruning jobs: a model, a question set,
//! a value kind and an ablation, turned into one number per head mask.

use std::borrow::Cow;
use std::ops::Range;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::ablation::Ablation;
use super::evaluate::masks_per_stored_batch;
use crate::ablate::{HeadPlayers, TaskScorer};
use crate::model::{Model, RunOptions};
use crate::sparse::ValueFunction;
use crate::task::{Format, LoadedTask, Scoring, TaskItem, TaskSpec, ValueKind};
use crate::{Error, Result};

/// What defines `f(mask)` over the heads besides the model and the questions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadValueOptions {
    /// The number per ablation, averaged over the questions.
    pub value: ValueKind,
    /// What an ablated head outputs.
    pub ablation: Ablation,
    /// Reference prompts of the mean ablation, one per line (`None`: the scored prompts).
    pub mean_prompts: Option<PathBuf>,
    /// Most prompt positions per forward batch (`None`: the device's default).
    pub max_batch_tokens: Option<usize>,
    /// Only the heads of these layers are players (`None`: every layer); the others stay kept.
    pub layers: Option<Range<usize>>,
}

/// A loaded model and question set, and which of its heads are the players.
pub struct HeadValues {
    /// The model.
    pub model: Model,
    /// The model as the user named it, for reports.
    pub model_label: String,
    /// The players: every head, or those of the chosen layers.
    pub players: HeadPlayers,
    /// The questions.
    pub task: LoadedTask,
    /// How the forward passes run (batch size, ablation targets).
    pub options: RunOptions,
    /// The value kind.
    pub kind: ValueKind,
    /// What an ablated head outputs.
    pub ablation: Ablation,
    identity: Value,
}

impl HeadValues {
    /// Takes the loaded `model` (named `model_label` in reports) and the questions `task` loaded
    /// from `spec`, chooses the players and computes the mean-ablation targets if asked.
    pub fn new(
        model: Model,
        model_label: &str,
        task: LoadedTask,
        spec: &TaskSpec,
        options: &HeadValueOptions,
    ) -> Result<HeadValues> {
        if task.items.is_empty() {
            return Err(Error::invalid(
                "task",
                format!("{}: no questions selected", task.name),
            ));
        }
        let prompts: Vec<&str> = task.items.iter().map(TaskItem::prompt).collect();
        let run_options = options.ablation.run_options(
            &model,
            options.mean_prompts.as_deref(),
            options.max_batch_tokens,
            &prompts,
        )?;
        let info = model.info();
        let players = choose_players(options.layers.as_ref(), info.n_layers, info.n_heads)?;
        let mut identity = json!({
            "players": "heads",
            "n_players": players.n(),
            "model": model_label,
            "dtype": model.dtype().as_str(),
            "task": task.name,
            "split": format!("{:?}", spec.split).to_lowercase(),
            "shots": spec.shots,
            "questions": task.items.len(),
            "questions_digest": questions_digest(&task),
            "value": options.value.name(),
            "ablation": options.ablation.label(),
            "mean_prompts": options.mean_prompts.as_ref().map(|p| p.display().to_string()),
        });
        // Absent for every head and for letters, so earlier stores keep their header.
        if !players.is_all() {
            identity["layers"] = json!(players.to_string());
        }
        if task.format != Format::Letters {
            identity["format"] = json!(task.format.name());
        }
        Ok(HeadValues {
            model,
            model_label: model_label.to_string(),
            players,
            task,
            options: run_options,
            kind: options.value,
            ablation: options.ablation,
            identity,
        })
    }

    /// Makes the heads of `layers` the players (every layer with `None`), as if built with them:
    /// a layer-group sweep loads the model, the questions and the means once.
    pub fn set_layers(&mut self, layers: Option<Range<usize>>) -> Result<()> {
        let info = self.model.info();
        self.players = choose_players(layers.as_ref(), info.n_layers, info.n_heads)?;
        match self.players.is_all() {
            true => self.identity.as_object_mut().map(|m| m.remove("layers")),
            false => {
                self.identity["layers"] = json!(self.players.to_string());
                None
            }
        };
        self.identity["n_players"] = json!(self.players.n());
        Ok(())
    }

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

    /// Whether the value runs the gold choice alone ([`ValueKind::reads_gold_only`] on a task
    /// scored by answer log-likelihoods).
    fn gold_only(&self) -> bool {
        self.kind.reads_gold_only() && self.task.scoring == Scoring::Continuation
    }

    /// The questions the value function runs: each with its gold choice alone where the value
    /// reads nothing else (a copy), else as loaded (borrowed).
    fn value_items(&self) -> Cow<'_, [TaskItem]> {
        match self.gold_only() {
            true => Cow::Owned(self.task.items.iter().map(TaskItem::gold_only).collect()),
            false => Cow::Borrowed(&self.task.items),
        }
    }

    /// The scorer of the value function ([`HeadValues::value_function`]).
    pub fn value_scorer(&self) -> Result<TaskScorer<'_>> {
        self.scorer_of(&self.value_items())
    }

    /// The value function over the players, through `scorer` ([`HeadValues::value_scorer`]).
    pub fn value_function<'s>(&'s self, scorer: &'s TaskScorer<'s>) -> impl ValueFunction + 's {
        let golds = self.value_items().iter().map(|q| q.gold).collect();
        scorer.players_value_function(self.players.clone(), self.kind, golds)
    }

    /// A scorer of the questions (no progress bar of its own), rescaling under the rescale
    /// ablation.
    pub fn scorer(&self) -> Result<TaskScorer<'_>> {
        self.scorer_of(&self.task.items)
    }

    /// A scorer of other questions of the same task (`items`, e.g. the attribution's questions
    /// when this job evaluates held-out ones), with this job's model, options and ablation.
    pub fn scorer_of<'s>(&'s self, items: &[TaskItem]) -> Result<TaskScorer<'s>> {
        Ok(
            TaskScorer::new(&self.model, items, self.task.scoring, self.options.clone())?
                .with_rescale(self.ablation.rescales()),
        )
    }

    /// Masks per stored batch ([`masks_per_stored_batch`]): a mask takes one forward pass per
    /// question, or per choice in the cloze format, and players above layer 0 reuse the layers
    /// below. Fixed by the questions and the players, which the stores' identity names, so a
    /// resumed run batches as the first one did.
    pub fn per_batch(&self) -> usize {
        let passes = match self.task.scoring {
            Scoring::FirstToken => self.task.items.len(),
            Scoring::Continuation => self.value_items().iter().map(TaskItem::n_choices).sum(),
        };
        let layers = self.model.info().n_layers;
        masks_per_stored_batch(passes, layers - self.players.layers().start, layers)
    }

    /// Checks that a plan or spectrum over `n` players (read from `source`) fits the players.
    pub fn check_players(&self, n: usize, source: &str) -> Result<()> {
        check_players(n, &self.players, source)
    }
}

/// Checks that a plan or spectrum over `n` players (read from `source`) fits `players`: callable
/// before the model runs (the mean ablation's means included).
pub fn check_players(n: usize, players: &HeadPlayers, source: &str) -> Result<()> {
    if n != players.n() {
        return Err(Error::PlayersMismatch {
            source_name: source.to_string(),
            found: n,
            expected: players.n(),
            layers: players.to_string(),
        });
    }
    Ok(())
}

/// The heads of `layers` (every head with `None`) of a model of `n_layers x n_heads`.
fn choose_players(
    layers: Option<&Range<usize>>,
    n_layers: usize,
    n_heads: usize,
) -> Result<HeadPlayers> {
    Ok(match layers {
        Some(range) => HeadPlayers::in_layers(range.clone(), n_layers, n_heads, "layers")?,
        None => HeadPlayers::all(n_layers, n_heads),
    })
}

/// FNV-1a (64-bit) over every context, continuation and gold: names the exact question set.
pub(crate) fn questions_digest(task: &LoadedTask) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes.iter().chain(&[0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for item in &task.items {
        for c in &item.contexts {
            eat(c.as_bytes());
        }
        for c in &item.continuations {
            eat(c.as_bytes());
        }
        eat(&(item.gold as u64).to_le_bytes());
    }
    format!("{h:016x}")
}
