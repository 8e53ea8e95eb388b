//! How long loading and prompting a task takes: all of MMLU test (14,042 questions, 0 and
//! 5 shots) from `$SPEX_HOME/data`. Skips when the data is not fetched.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spex::task::{default_data_dir, load_task, Split, Subjects, TaskName, TaskSpec};

fn mmlu_test(c: &mut Criterion) {
    let dir = default_data_dir();
    if !dir.join(".ready").is_file() {
        eprintln!("skip: {} not ready", dir.display());
        return;
    }
    let mut group = c.benchmark_group("load_task");
    group.sample_size(10);
    for shots in [0, 5] {
        let spec = TaskSpec {
            task: TaskName::Mmlu,
            data_dir: dir.clone(),
            subjects: Subjects::All,
            split: Split::Test,
            limit: None,
            offset: 0,
            shots,
            strict: true,
            format: None,
        };
        let n = load_task(&spec).map(|t| t.items.len()).unwrap_or(0);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("mmlu_test_{shots}shot"), |b| {
            b.iter(|| load_task(&spec).map(|t| t.items.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, mmlu_test);
criterion_main!(benches);
