//! Options shared by every command that runs a model: which model and on which device.

use anyhow::Context;
use clap::Args;

use spex::model::{DTypeChoice, DeviceChoice, Model, ModelSource};

/// `--model`, `--device` and `--dtype`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A Hugging Face folder (config.json, model.safetensors or a sharded index, tokenizer.json),
    /// an `org/name` in the local Hugging Face cache, or a .gguf file.
    /// Default: SmolLM2-135M-Instruct (GGUF) under $SPEX_HOME, fetched by `bash models/fetch.sh`.
    #[arg(long)]
    pub model: Option<String>,
    /// cpu, cuda, metal or auto: CUDA, else Metal, else the CPU, as this build has them and the
    /// machine has them (a build without GPU features always takes the CPU).
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Compute dtype: auto (f32 on the CPU, bf16 on CUDA, f16 on Metal), f32, or on GPUs f16 or
    /// bf16. Recorded with the values, so a resumed run keeps it.
    #[arg(long, default_value = "auto")]
    pub dtype: String,
}

impl ModelArgs {
    /// How the model was named on the command line, for reports.
    pub fn label(&self) -> String {
        self.model
            .clone()
            .unwrap_or_else(|| "SmolLM2-135M-Instruct (default)".to_string())
    }

    /// Resolves and loads the model on the chosen device.
    pub fn load(&self) -> anyhow::Result<Model> {
        let device = (self.device.parse::<DeviceChoice>())
            .and_then(DeviceChoice::open)
            .with_context(|| format!("--device {}", self.device))?;
        let dtype = (self.dtype.parse::<DTypeChoice>())
            .and_then(|choice| choice.resolve(&device))
            .with_context(|| format!("--dtype {}", self.dtype))?;
        let source =
            ModelSource::resolve(self.model.as_deref()).with_context(|| match &self.model {
                Some(model) => format!("--model {model}"),
                None => "the default model (--model names another)".to_string(),
            })?;
        let model = Model::open(&source, &device, dtype)
            .with_context(|| format!("loading the model {}", self.label()))?;
        eprintln!(
            "model: {} on {}, {}",
            self.label(),
            model.device_name(),
            model.dtype().as_str()
        );
        Ok(model)
    }
}
