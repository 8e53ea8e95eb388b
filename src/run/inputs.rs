//! What a model job reads, from plain settings (the CLI's flags, the Python package's keyword
//! arguments): the model, the questions, and the head value function over them. Errors name the
//! settings' fields (`model`, `device`, `task`, `mean_prompts`); each caller names its own flag or
//! keyword for them.

use std::ops::Range;
use std::path::PathBuf;

use super::ablation::Ablation;
use super::head_values::{HeadValueOptions, HeadValues};
use crate::ablate::HeadPlayers;
use crate::model::{DTypeChoice, DeviceChoice, Model, ModelSource};
use crate::task::{load_task, LoadedTask, TaskSpec, ValueKind};
use crate::{Error, Result};

/// Which model, on which device, computing in which dtype.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// A Hugging Face folder, an `org/name` on the Hugging Face Hub (read from its cache,
    /// downloaded into it when missing), or a .gguf file (`None`: the default model under
    /// `$SPEX_HOME`).
    pub model: Option<String>,
    /// Branch, tag or commit of an `org/name` model (`None`: `main`).
    pub revision: Option<String>,
    /// `cpu`, `cuda`, `metal` or `auto`.
    pub device: String,
    /// `auto`, `f32`, `f16` or `bf16`.
    pub dtype: String,
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            model: None,
            revision: None,
            device: "auto".into(),
            dtype: "auto".into(),
        }
    }
}

impl ModelSpec {
    /// How the model was named (`org/name@revision` when a revision was asked), for reports
    /// and stored identities.
    pub fn label(&self) -> String {
        match (&self.model, &self.revision) {
            (Some(model), Some(revision)) => format!("{model}@{revision}"),
            (Some(model), None) => model.clone(),
            (None, _) => "SmolLM2-135M-Instruct (default)".to_string(),
        }
    }

    /// Resolves and loads the model on the chosen device, in the chosen dtype.
    pub fn load(&self) -> Result<Model> {
        let device = self
            .device
            .parse::<DeviceChoice>()
            .and_then(DeviceChoice::open)?;
        let dtype = self
            .dtype
            .parse::<DTypeChoice>()
            .and_then(|choice| choice.resolve(&device))?;
        let source = ModelSource::resolve_at(self.model.as_deref(), self.revision.as_deref())
            .map_err(|e| {
                let named = match &self.model {
                    Some(model) => model.clone(),
                    None => "the default model (`model` names another)".to_string(),
                };
                Error::invalid("model", format!("{named}: {e}"))
            })?;
        let model = Model::open(&source, &device, dtype)?;
        tracing::info!(
            "model: {} on {}, {}",
            self.label(),
            model.device_name(),
            model.dtype().as_str()
        );
        Ok(model)
    }
}

/// Loads the questions `spec` selects and builds their prompts; each malformed row skipped is a
/// warning, and selecting no question is an error naming `task`.
pub fn load_questions(spec: &TaskSpec) -> Result<LoadedTask> {
    let task = load_task(spec)?;
    for m in &task.malformed {
        tracing::warn!("skipped malformed row {m}");
    }
    if task.items.is_empty() {
        return Err(Error::invalid(
            "task",
            format!("{}: no questions selected", task.name),
        ));
    }
    Ok(task)
}

/// The head value function's settings: which model, which questions, the value, the ablation
/// and which layers' heads are the players.
#[derive(Clone, Debug)]
pub struct HeadValueSpec {
    /// The model.
    pub model: ModelSpec,
    /// The questions.
    pub task: TaskSpec,
    /// The number per ablation (`None`: [`ValueKind::default_for`] the task's format).
    pub value: Option<ValueKind>,
    /// What an ablated head outputs.
    pub ablation: Ablation,
    /// Reference prompts of the mean ablation, one per line (`None`: the scored prompts).
    pub mean_prompts: Option<PathBuf>,
    /// Most prompt positions per forward batch (`None`: the device's default).
    pub max_batch_tokens: Option<usize>,
    /// Only the heads of these layers are players (`None`: every layer).
    pub layers: Option<Range<usize>>,
}

impl HeadValueSpec {
    /// Loads the questions, then the model, and builds the head value function, calling `check`
    /// with the head players once the model is known and before any forward pass (the mean
    /// ablation's included), so that a bad design fails before the work.
    pub fn load_checked(
        &self,
        check: impl FnOnce(&HeadPlayers) -> Result<()>,
    ) -> Result<HeadValues> {
        self.ablation
            .check_mean_prompts(self.mean_prompts.as_deref())?;
        let task = load_questions(&self.task)?;
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
            ablation: self.ablation,
            mean_prompts: self.mean_prompts.clone(),
            max_batch_tokens: self.max_batch_tokens,
            layers: self.layers.clone(),
        };
        HeadValues::new(model, &self.model.label(), task, &self.task, &options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Split, Subjects, TaskName};

    fn sciq_in(dir: &std::path::Path) -> TaskSpec {
        TaskSpec {
            task: TaskName::Sciq,
            data_dir: dir.to_path_buf(),
            subjects: Subjects::All,
            split: Split::Validation,
            offset: 0,
            limit: None,
            shots: 0,
            strict: false,
            format: None,
        }
    }

    #[test]
    fn bad_settings_name_their_field() {
        let bad = |spec: ModelSpec| match spec.load() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{spec:?} loaded"),
        };
        let device = bad(ModelSpec {
            device: "tpu".into(),
            ..ModelSpec::default()
        });
        assert!(
            device.contains("device") && device.contains("tpu"),
            "{device}"
        );
        let dtype = bad(ModelSpec {
            dtype: "f8".into(),
            ..ModelSpec::default()
        });
        assert!(dtype.contains("dtype") && dtype.contains("f8"), "{dtype}");
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-model");
        let model = bad(ModelSpec {
            model: Some(missing.display().to_string()),
            ..ModelSpec::default()
        });
        assert!(
            model.starts_with("invalid `model`") && model.contains("no-such-model"),
            "{model}"
        );
    }

    #[test]
    fn no_question_selected_is_an_error_naming_the_task() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sciq")).unwrap();
        std::fs::write(dir.path().join("sciq/validation.jsonl"), "").unwrap();
        let err = load_questions(&sciq_in(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`task`") && err.contains("no questions selected"),
            "{err}"
        );
    }

    #[test]
    fn mean_prompts_without_the_mean_ablation_fails_before_loading() {
        let dir = tempfile::tempdir().unwrap();
        let prompts = dir.path().join("prompts.txt");
        std::fs::write(&prompts, "a prompt\n").unwrap();
        let spec = HeadValueSpec {
            model: ModelSpec {
                model: Some(dir.path().join("absent").display().to_string()),
                ..ModelSpec::default()
            },
            task: sciq_in(dir.path()),
            value: None,
            ablation: Ablation::Zero,
            mean_prompts: Some(prompts),
            max_batch_tokens: None,
            layers: None,
        };
        let err = match spec.load_checked(|_| Ok(())) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("loaded"),
        };
        assert!(err.contains("mean_prompts"), "{err}");
    }
}
