//! Load time of the default model's GGUF (dequantize every tensor to f32, un-permute q/k,
//! rebuild the tokenizer); prints the process's peak RSS afterwards. Skips when the file is absent.

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion};
use spex::model::gguf::load_gguf;
use spex::model::source::default_model_path;

fn gguf_load(c: &mut Criterion) {
    let Some(path) = default_model_path().filter(|p| p.is_file()) else {
        eprintln!("skipping: the default GGUF is not there (run `bash models/fetch.sh`)");
        return;
    };
    let mut group = c.benchmark_group("gguf_load");
    group.sample_size(10);
    group.bench_function("smollm2_135m_q4_1_to_f32", |b| {
        b.iter(|| load_gguf(&path, &Device::Cpu).expect("default GGUF loads"))
    });
    group.finish();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines().filter(|l| l.starts_with("VmHWM")) {
            eprintln!("peak RSS of the bench process: {line}");
        }
    }
}

criterion_group!(benches, gguf_load);
criterion_main!(benches);
