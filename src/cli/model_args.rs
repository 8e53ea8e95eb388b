//! Options shared by every command that runs a model: which model and on which device.

use anyhow::Context;
use clap::Args;

use spex::model::source::ModelSource;
use spex::model::{default_dtype, DeviceChoice, Model};

/// `--model` and `--device`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A Hugging Face folder (config.json, model.safetensors or a sharded index, tokenizer.json),
    /// an `org/name` in the local Hugging Face cache, or a .gguf file.
    /// Default: SmolLM2-135M-Instruct (GGUF) under $SPEX_HOME, fetched by `bash models/fetch.sh`.
    #[arg(long)]
    pub model: Option<String>,
    /// cpu, cuda, metal or auto (f32 on CPU, bf16 on CUDA, f16 on Metal).
    #[arg(long, default_value = "cpu")]
    pub device: String,
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
        let device = self.device.parse::<DeviceChoice>()?.open()?;
        let source = ModelSource::resolve(self.model.as_deref())?;
        Model::open(&source, &device, default_dtype(&device))
            .with_context(|| format!("loading the model {source:?}"))
    }
}
