//! `spex prune`: a pruning plan from a decoded head spectrum (`spex heads`), checked by real
//! evaluation runs (the library's pruning job), and its table.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use spex::run::prune::{check_from, check_levels, check_output, check_spectrum_players, Checked};
use spex::run::{PruneOptions, PruneReport};

use super::head_args::HeadValueArgs;

/// Arguments of `spex prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Output folder of `spex heads` (its spectrum.json is read), or a spectrum.json file.
    #[arg(long)]
    pub from: PathBuf,
    /// Fractions of the heads to remove, each checked by a real evaluation run.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.2,0.3,0.5")]
    pub levels: Vec<f64>,
    /// Seed of the random-order baseline.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output JSON [default: prune.json beside the spectrum]; one `prune-K-heads.json` head mask
    /// per level (for `spex eval --head-mask`) is written next to it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The evaluation run: model, questions (use another split than the attribution run's to
    /// check generalisation), value and ablation.
    #[command(flatten)]
    pub values: HeadValueArgs,
}

/// Runs `spex prune`.
pub fn run(args: &PruneArgs) -> anyhow::Result<()> {
    check_levels(&args.levels)?;
    let options = PruneOptions {
        levels: args.levels.clone(),
        seed: args.seed,
        out: args.out.clone(),
    };
    let (n, spectrum) = check_from(&args.from, args.values.layers.as_ref())
        .with_context(|| format!("--from {}", args.from.display()))?;
    check_output(&args.from, &options).context("--out")?;
    let hv = args
        .values
        .load_checked(|players| Ok(check_spectrum_players(n, &spectrum, players)?))?;
    let (out, report) = spex::run::prune(&args.from, &hv, &options)?;
    print_table(&report);
    eprintln!(
        "wrote {} and one prune-K-heads.json per level (use with `spex eval --head-mask FILE`)",
        out.display()
    );
    Ok(())
}

fn print_table(r: &PruneReport) {
    println!(
        "{:>8} {:>7}  {:<13} {:>10} {:>10} {:>9}",
        "removed", "share", "order", "predicted", r.value, "accuracy"
    );
    let line = |k: usize, f: f64, c: &Checked| {
        println!(
            "{k:>8} {:>6.1}%  {:<13} {:>10.4} {:>10.4} {:>9.4}",
            100.0 * f,
            c.strategy,
            c.predicted_value,
            c.value,
            c.accuracy
        );
    };
    line(0, 0.0, &r.full);
    for level in &r.levels {
        for c in &level.checked {
            line(level.heads_removed, level.fraction, c);
        }
    }
}
