//! `spex prune`: a pruning plan from a decoded head spectrum (`spex heads`), checked by real
//! evaluation runs (the library's pruning job), and its table.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use spex::run::prune::{
    attribution_questions, check_from, check_levels, check_output, check_spectrum_players, Checked,
};
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
    /// Fractions of the heads to keep instead, e.g. `0.5,0.66,0.83` (the ProxySPEX paper's).
    #[arg(long, value_delimiter = ',', conflicts_with = "levels")]
    pub keep: Vec<f64>,
    /// Best-of-N baseline: N fresh head sets of exactly the kept size per level, evaluated on the
    /// attribution's questions (`--train-offset`), the best one judged with the others [default:
    /// 0, none; costs N evaluations per level].
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub best_of: usize,
    /// First question of the attribution run (`spex heads --offset`); how many it had is read
    /// from the --from folder's values.log, and the questions are checked against it.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub train_offset: usize,
    /// Most branch-and-bound nodes of each exact selection; the optimality gap is reported when
    /// it stops the search.
    #[arg(long, default_value_t = 1_000_000)]
    pub search_nodes: u64,
    /// Seed of the random baselines and of the bootstrap intervals.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output JSON [default: prune.json beside the spectrum]; one `prune-K-heads.json` head mask
    /// per level (for `spex eval --head-mask`) is written next to it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The evaluation run: model, questions (questions the attribution never saw: another split,
    /// or `--offset` past the attribution's), value and ablation.
    #[command(flatten)]
    pub values: HeadValueArgs,
}

/// Runs `spex prune`.
pub fn run(args: &PruneArgs) -> anyhow::Result<()> {
    let levels: Vec<f64> = match args.keep.is_empty() {
        true => args.levels.clone(),
        false => args.keep.iter().map(|k| 1.0 - k).collect(),
    };
    check_levels(&levels).context(match args.keep.is_empty() {
        true => "--levels",
        false => "--keep (each kept fraction in [0, 1))",
    })?;
    let options = PruneOptions {
        levels,
        best_of: args.best_of,
        search_nodes: args.search_nodes,
        seed: args.seed,
        out: args.out.clone(),
    };
    let (n, spectrum) = check_from(&args.from, args.values.layers.as_ref())
        .with_context(|| format!("--from {}", args.from.display()))?;
    check_output(&args.from, &options).context("--out")?;
    let hv = args
        .values
        .load_checked(|players| check_spectrum_players(n, &spectrum, players))?;
    let train = match args.best_of {
        0 => None,
        _ => Some(
            attribution_questions(
                &args.from,
                &args.values.task.spec(),
                args.train_offset,
                None,
            )
            .with_context(|| format!("--from {}", args.from.display()))?,
        ),
    };
    let train_items = train.as_ref().map(|t| t.items.as_slice());
    let (out, report) = spex::run::prune(&args.from, &hv, &options, train_items)?;
    print_table(&report);
    eprintln!(
        "wrote {} and one prune-K-heads.json per level (use with `spex eval --head-mask FILE`)",
        out.display()
    );
    Ok(())
}

fn print_table(r: &PruneReport) {
    println!(
        "{:>5} {:>5}  {:<14} {:>10} {:>10} {:>9} {:>17}  maximise vs best baseline",
        "kept", "share", "plan", "predicted", r.value, "accuracy", "95 % interval"
    );
    let line = |kept: usize, share: f64, c: &Checked| {
        let versus = c.versus_best_baseline.as_ref().map_or(String::new(), |v| {
            format!(
                "{:+.3} [{:+.3}, {:+.3}] vs {}{}",
                v.difference.mean,
                v.difference.low,
                v.difference.high,
                v.baseline,
                if v.win { ": win" } else { "" }
            )
        });
        let gap = c.gap.map_or(String::new(), |g| format!(" (gap {g:.3})"));
        println!(
            "{kept:>5} {:>4.0}%  {:<14} {:>10.4} {:>10.4} {:>9.4}  [{:.3}, {:.3}]  {versus}{gap}",
            100.0 * share,
            c.strategy,
            c.predicted_value,
            c.value,
            c.accuracy,
            c.accuracy_interval.low,
            c.accuracy_interval.high
        );
    };
    let n = r.full.removed.len()
        + r.levels
            .first()
            .map_or(0, |l| l.heads_removed + l.heads_kept);
    line(n, 1.0, &r.full);
    for level in &r.levels {
        let share = level.heads_kept as f64 / (level.heads_kept + level.heads_removed) as f64;
        for c in &level.checked {
            line(level.heads_kept, share, c);
        }
    }
    for s in &r.skipped {
        println!("skipped {s}");
    }
}
