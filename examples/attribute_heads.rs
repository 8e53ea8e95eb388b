//! Attribute a model's heads from Rust: the library's head job (what `spex heads` runs) on the
//! default model, the heads of its last three layers as players, eight MMLU questions, and the
//! strongest heads and pairs with the spectrum's R^2 on unseen masks.
//!
//! `bash models/fetch.sh && cargo run --release --example attribute_heads -- [OUT_DIR]`

use spex::progress::TerminalBar;
use spex::run::inputs::{HeadValueSpec, ModelSpec};
use spex::run::{Ablation, Design, OneShotOptions};
use spex::task::{default_data_dir, Split, TaskName, TaskSpec};

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "runs/example-heads".into());
    let values = HeadValueSpec {
        model: ModelSpec::default(),
        task: TaskSpec {
            task: TaskName::Mmlu,
            data_dir: default_data_dir(),
            subjects: "high_school_geography".parse()?,
            split: Split::Test,
            limit: Some(8),
            offset: 0,
            shots: 0,
            strict: false,
            format: None,
        },
        value: None,
        ablation: Ablation::Zero,
        mean_prompts: None,
        max_batch_tokens: None,
        // The default model's last three of 30 layers.
        layers: Some(27..30),
    };
    let hv = values.load_checked(|_| Ok(()))?;
    let job = OneShotOptions {
        design: Design::proxyspex(300),
        decode: Default::default(),
        out: out.into(),
        held_out: Some(50),
    };
    let run = spex::run::heads(&hv, &job, 20, &mut TerminalBar::default())?;
    println!("{}", run.done.faithfulness());
    for node in run.graph.ranked_nodes().iter().take(5) {
        println!("L{}.h{}  {:+.4}", node.layer, node.head, node.value);
    }
    for edge in run.graph.edges.iter().take(5) {
        println!(
            "L{}.h{} x L{}.h{}  {:+.4}",
            edge.a[0], edge.a[1], edge.b[0], edge.b[1], edge.value
        );
    }
    Ok(())
}
