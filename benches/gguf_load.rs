//! Load time of the default model, each loader against a candle baseline in the same run:
//! - the GGUF (spex: dequantize every tensor to f32, un-permute q/k, rebuild the tokenizer)
//!   against candle reading the same file and dequantizing every tensor, nothing else;
//! - the f32 Hugging Face folder (spex: each tensor read and converted on its own) against
//!   candle's memory-mapped `safetensors::load`.
//!
//! Prints the process's peak RSS at the end. Skips what `bash models/fetch.sh` has not written.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use spex::home::{default_model_path, spex_home};
use spex::model::{load_gguf, ModelSource, Weights};

/// Folder with the default model's weights as f32 safetensors, under `$SPEX_HOME`.
const HF_FOLDER: &str = "models/smollm2-135m-instruct-hf";

/// Candle's own path for a GGUF: read the header, dequantize every tensor to f32 and hold them
/// all, as a loader must.
fn candle_gguf_dequantize(path: &Path) -> Vec<Tensor> {
    let mut reader = BufReader::new(File::open(path).expect("GGUF opens"));
    let content = Content::read(&mut reader).expect("GGUF header reads");
    content
        .tensor_infos
        .keys()
        .map(|name| {
            content
                .tensor(&mut reader, name, &Device::Cpu)
                .expect("tensor reads")
                .dequantize(&Device::Cpu)
                .expect("tensor dequantizes")
        })
        .collect()
}

fn gguf_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("model_load");
    group.sample_size(10);
    match Some(default_model_path()).filter(|p| p.is_file()) {
        Some(path) => {
            group.bench_function("gguf/spex_load_gguf", |b| {
                b.iter(|| load_gguf(&path, &Device::Cpu).expect("default GGUF loads"))
            });
            group.bench_function("gguf/candle_dequantize_baseline", |b| {
                b.iter(|| candle_gguf_dequantize(&path))
            });
        }
        None => eprintln!("skipping the GGUF: not there (run `bash models/fetch.sh`)"),
    }
    match ModelSource::from_folder(&spex_home().join(HF_FOLDER)) {
        Ok(ModelSource::Folder { weights: files, .. }) => {
            group.bench_function("folder/spex_read_by_tensor", |b| {
                b.iter(|| Weights::from_files(&files, DType::F32, &Device::Cpu).expect("loads"))
            });
            group.bench_function("folder/candle_mmap_baseline", |b| {
                b.iter(|| {
                    files
                        .iter()
                        .map(|f| candle_core::safetensors::load(f, &Device::Cpu).expect("loads"))
                        .collect::<Vec<_>>()
                })
            });
        }
        _ => eprintln!("skipping the folder: not there (run `bash models/fetch.sh`)"),
    }
    group.finish();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines().filter(|l| l.starts_with("VmHWM")) {
            eprintln!("peak RSS of the bench process: {line}");
        }
    }
}

criterion_group!(benches, gguf_load);
criterion_main!(benches);
