//! `spex heads`: which heads, and which pairs of heads, drive a model's score on a task. Plans the
//! ablations, runs them (resumably), decodes the spectrum and writes the interactions and the
//! head-interaction graph: `spex plan` + `spex run` + `spex solve` in one process.

use clap::Args;

use spex::io::write_json;
use spex::report::head_graph::HeadGraph;
use spex::sparse::{MaskBatch, Spectrum};

use super::head_values::HeadValueArgs;
use super::plan_dir::{one_shot, write_text, OneShotArgs};

/// Arguments of `spex heads`.
#[derive(Debug, Args)]
pub struct HeadsArgs {
    /// The value function: model, task, value and ablation.
    #[command(flatten)]
    pub values: HeadValueArgs,
    /// Design, index and output folder.
    #[command(flatten)]
    pub run: OneShotArgs,
    /// Strongest pairs drawn in the pictures (heads.json lists every pair).
    #[arg(long, default_value_t = 40)]
    pub top_edges: usize,
}

/// Runs `spex heads`.
pub fn run(args: &HeadsArgs) -> anyhow::Result<()> {
    let hv = args.values.load()?;
    let players = &hv.players;
    eprintln!(
        "players: {} heads (layers {players}, {} per layer); {} question(s) per mask",
        players.n(),
        players.heads(),
        hv.task.items.len()
    );
    let scorer = hv.scorer()?;
    let mut f = hv.value_function(&scorer);
    let done = one_shot(&args.run, &mut f, hv.identity(&[]), hv.per_batch())?;
    let graph = HeadGraph::new(
        &done.pairs,
        players.layers(),
        players.heads(),
        args.top_edges,
    );
    let title = format!(
        "{} on {} ({}): head interactions",
        args.values.model.label(),
        hv.task.name,
        hv.kind
    );
    let summary = vec![
        format!(
            "value: {} over {} question(s), {} ablation",
            hv.kind,
            hv.task.items.len(),
            args.values.ablation.label()
        ),
        format!(
            "{}: {} masks, {}",
            done.plan.method(),
            done.masks.len(),
            done.faithfulness()
        ),
        format!(
            "decoded f(all heads kept) = {:.4}, f(all removed) = {:.4}",
            all_kept(&done.decoded.spectrum),
            graph.baseline_value
        ),
    ];
    write_json(&args.run.out.join("heads.json"), &graph)?;
    write_text(&args.run.out.join("heads.dot"), &graph.to_dot())?;
    write_text(&args.run.out.join("heads.svg"), &graph.to_svg(&title))?;
    write_text(
        &args.run.out.join("heads.html"),
        &graph.to_html(&title, &summary),
    )?;

    print_top(&graph);
    eprintln!(
        "{}; wrote interactions.json, spectrum.json, heads.{{json,dot,svg,html}}, values.npy in {}",
        done.faithfulness(),
        args.run.out.display()
    );
    Ok(())
}

/// The spectrum's value with every player kept.
fn all_kept(spectrum: &Spectrum) -> f64 {
    let mut all = MaskBatch::new(spectrum.n_players());
    all.push_bools(&vec![true; spectrum.n_players()]);
    spectrum.eval(&all)[0]
}

/// Prints the ten strongest heads and pairs.
fn print_top(graph: &HeadGraph) {
    println!("{:<10} {:>12}", "head", graph.index);
    for n in graph.ranked_nodes().iter().take(10) {
        println!(
            "{:<10} {:>12.5}",
            format!("L{}.h{}", n.layer, n.head),
            n.value
        );
    }
    println!("\n{:<20} {:>12}", "pair", graph.index);
    for e in graph.edges.iter().take(10) {
        println!(
            "{:<20} {:>12.5}",
            format!("L{}.h{} x L{}.h{}", e.a[0], e.a[1], e.b[0], e.b[1]),
            e.value
        );
    }
}
