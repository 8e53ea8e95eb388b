//! Options shared by every command that runs a model: which model (and revision) and on which
//! device.

use clap::Args;

use spex::model::Model;
use spex::run::inputs::ModelSpec;

/// `--model`, `--revision`, `--device` and `--dtype`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A Hugging Face folder (config.json, model.safetensors or a sharded index, tokenizer.json),
    /// an `org/name` on the Hugging Face Hub (read from the shared cache, HF_HUB_CACHE or
    /// HF_HOME; what is missing is downloaded from HF_ENDPOINT with HF_TOKEN, unless
    /// HF_HUB_OFFLINE=1), or a .gguf file.
    /// Default: SmolLM2-135M-Instruct (GGUF) under $SPEX_HOME, fetched by `bash models/fetch.sh`.
    #[arg(long)]
    pub model: Option<String>,
    /// Branch, tag or commit hash of an `org/name` model (default: main).
    #[arg(long, requires = "model")]
    pub revision: Option<String>,
    /// cpu, cuda, metal or auto: CUDA, else Metal, else the CPU, as this build has them and the
    /// machine has them (a build without GPU features always takes the CPU).
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Compute dtype: auto (f32 on the CPU, bf16 on CUDA, f16 on Metal), f32, bf16 (on the CPU
    /// bf16 products with f32 norms and softmax: faster with AMX or on AMD Zen 4, slower than f32
    /// on Intel CPUs without AMX), or on GPUs f16. Recorded with the values, so a resumed run
    /// keeps it.
    #[arg(long, default_value = "auto")]
    pub dtype: String,
}

impl ModelArgs {
    /// The library's model settings.
    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            model: self.model.clone(),
            revision: self.revision.clone(),
            device: self.device.clone(),
            dtype: self.dtype.clone(),
        }
    }

    /// How the model was named on the command line, for reports.
    pub fn label(&self) -> String {
        self.spec().label()
    }

    /// Resolves and loads the model on the chosen device.
    pub fn load(&self) -> anyhow::Result<Model> {
        Ok(self.spec().load()?)
    }
}
