//! `spex heads`: which heads, and which pairs of heads, drive a model's score on a task: `spex
//! plan` + `spex run` + `spex solve` in one process, then the head-interaction graph.

use std::ops::Range;

use clap::Args;

use spex::ablate::parse_layer_range;
use spex::progress::TerminalBar;
use spex::run::groups::{check_groups, head_groups};
use spex::run::OneShotOptions;

use spex::report::head_graph::HeadGraph;

use super::advice::warn_low_faithfulness;
use super::design_args::OneShotArgs;
use super::head_args::HeadValueArgs;

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
    /// Layer groups, each its own game over its heads, e.g. `0-2,14-16,27-29` (the ProxySPEX
    /// paper's early, middle and late groups): run one after the other into OUT/layers-A-B/, then
    /// side by side in OUT/groups.json and OUT/groups.html.
    #[arg(long, value_delimiter = ',', value_parser = parse_layer_range, conflicts_with = "layers")]
    pub groups: Vec<Range<usize>>,
}

/// Runs `spex heads`.
pub fn run(args: &HeadsArgs) -> anyhow::Result<()> {
    let options = args.run.checked_options()?;
    if !args.groups.is_empty() {
        return run_groups(args, &options);
    }
    let hv = args
        .values
        .load_checked(|players| spex::run::one_shot::check(&options, players.n()).map(drop))?;
    let run = spex::run::heads(&hv, &options, args.top_edges, &mut TerminalBar::default())?;
    warn_low_faithfulness(&run.done.decoded.warnings);
    print_top(&run.graph);
    if let Some(c) = &run.done.comparison {
        println!("\non {} unseen masks (* = reported):", c.unseen_masks);
        for line in c.table() {
            println!("{line}");
        }
    }
    eprintln!(
        "{}; wrote interactions.json, spectrum.json, heads.{{json,dot,svg,html}}, values.npy in {}",
        run.done.faithfulness(),
        args.run.out.display()
    );
    Ok(())
}

/// Runs `spex heads --groups`: every group, then their held-out tables.
fn run_groups(args: &HeadsArgs, options: &OneShotOptions) -> anyhow::Result<()> {
    let mut hv = args.values.load_checked(|players| {
        check_groups(options, &args.groups, players.layers().end, players.heads())
    })?;
    let (runs, path) = head_groups(
        &mut hv,
        &args.groups,
        options,
        args.top_edges,
        &mut TerminalBar::default(),
    )?;
    for (g, run) in args.groups.iter().zip(&runs) {
        println!(
            "\nlayers {}-{}: {}",
            g.start,
            g.end - 1,
            run.done.faithfulness()
        );
        warn_low_faithfulness(&run.done.decoded.warnings);
        if let Some(c) = &run.done.comparison {
            for line in c.table() {
                println!("{line}");
            }
        }
    }
    eprintln!(
        "wrote {} and groups.html; each group's outputs in its layers-A-B folder",
        path.display()
    );
    Ok(())
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
