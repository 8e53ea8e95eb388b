//! `spex prune`: a pruning plan from a decoded head spectrum (`spex heads`), checked by real
//! evaluation runs: for each pruning level, the heads to remove under three orders (greedy on the
//! interactions, one-at-a-time, random), the value the spectrum predicts, and the value and
//! accuracy the pruned model actually gets.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use spex::ablate::HeadPlayers;
use spex::io::{read_json, write_json};
use spex::report::prune::{kept_mask, removal_order, Strategy};
use spex::report::spectrum_file::SpectrumFile;
use spex::sparse::{MaskBatch, Spectrum};
use spex::task::ValueKind;

use super::head_values::HeadValueArgs;
use super::run::check_head_players;

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

/// One pruned model, measured.
#[derive(Serialize)]
struct Checked {
    /// `interactions`, `single`, `random`, or `none` for the full model.
    strategy: &'static str,
    /// Heads removed, `[layer, head]`, in removal order.
    removed: Vec<[usize; 2]>,
    /// The spectrum's prediction of the value.
    predicted_value: f64,
    /// The value measured by the evaluation run.
    value: f64,
    /// Accuracy measured by the evaluation run.
    accuracy: f64,
}

/// One pruning level.
#[derive(Serialize)]
struct Level {
    /// Fraction asked for.
    fraction: f64,
    /// Heads removed (`round(fraction * players)`).
    heads_removed: usize,
    /// The level under each strategy.
    checked: Vec<Checked>,
}

/// `prune.json`.
#[derive(Serialize)]
struct PruneReport {
    spectrum: String,
    model: String,
    task: String,
    questions: usize,
    value: String,
    ablation: String,
    seed: u64,
    full: Checked,
    levels: Vec<Level>,
}

/// Reads the spectrum from a `spex heads` folder or a spectrum.json file.
fn read_spectrum(from: &Path) -> anyhow::Result<(PathBuf, Spectrum)> {
    let path = if from.is_dir() {
        from.join("spectrum.json")
    } else {
        from.to_path_buf()
    };
    let file: SpectrumFile = read_json(&path)?;
    let spectrum = file.to_spectrum(&path)?;
    Ok((path, spectrum))
}

/// With a `spex heads` folder, checks that its players (heads.json's `first_layer` and `layers`)
/// are `players`: a spectrum over other layers of the same size would prune the wrong heads.
fn check_layers_match(from: &Path, players: &HeadPlayers) -> anyhow::Result<()> {
    let path = from.join("heads.json");
    if !from.is_dir() || !path.is_file() {
        return Ok(());
    }
    let graph: serde_json::Value = read_json(&path)?;
    let field = |name: &str| graph.get(name).and_then(serde_json::Value::as_u64);
    let first = field("first_layer").unwrap_or(0) as usize;
    let Some(count) = field("layers") else {
        anyhow::bail!("{}: no `layers` field", path.display());
    };
    let theirs = first..first + count as usize;
    if theirs != players.layers() {
        anyhow::bail!(
            "--layers: {} is over the heads of layers {}-{}, but this run's players are layers {players}; pass --layers {}-{}",
            path.display(),
            theirs.start,
            theirs.end.saturating_sub(1),
            theirs.start,
            theirs.end.saturating_sub(1)
        );
    }
    Ok(())
}

/// Runs `spex prune`.
pub fn run(args: &PruneArgs) -> anyhow::Result<()> {
    if let Some(bad) = args.levels.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
        anyhow::bail!("--levels: {bad} is not a fraction in (0, 1]");
    }
    let (spectrum_path, spectrum) = read_spectrum(&args.from)?;
    let hv = args.values.load()?;
    let n = hv.n_players();
    check_head_players(
        &hv,
        spectrum.n_players(),
        &spectrum_path.display().to_string(),
    )?;
    check_layers_match(&args.from, &hv.players)?;
    let counts: Vec<usize> = args
        .levels
        .iter()
        .map(|f| ((f * n as f64).round() as usize).clamp(1, n))
        .collect();
    let deepest = counts.iter().copied().max().unwrap_or(0);
    let orders: Vec<Vec<usize>> = Strategy::ALL
        .iter()
        .map(|&s| removal_order(&spectrum, s, deepest, args.seed))
        .collect();

    // Row 0: the full model; then each level under each strategy.
    let mut removed_sets: Vec<&[usize]> = vec![&[]];
    for &k in &counts {
        removed_sets.extend(orders.iter().map(|o| &o[..k]));
    }
    let kept: Vec<Vec<bool>> = removed_sets.iter().map(|r| kept_mask(n, r)).collect();
    let mut batch = MaskBatch::new(n);
    for row in &kept {
        batch.push_bools(row);
    }
    let predicted = spectrum.eval(&batch);
    let rows: Vec<Option<spex::model::HeadScales>> = kept
        .iter()
        .map(|k| Some(hv.players.scales(|p| k[p])))
        .collect();
    eprintln!(
        "checking {} pruned models and the full one on {} question(s)",
        rows.len() - 1,
        hv.task.items.len()
    );
    let logits = hv
        .scorer()?
        .with_progress(true)
        .score(&rows, hv.kind.needs_logsumexp())?;
    let golds = hv.task.golds();
    let values = hv.kind.values(&logits, &golds)?;
    let accuracy = ValueKind::Accuracy.values(&logits, &golds)?;

    let checked = |row: usize, strategy: &'static str| Checked {
        strategy,
        removed: removed_sets[row]
            .iter()
            .map(|&p| hv.players.head(p))
            .collect(),
        predicted_value: predicted[row],
        value: values[row],
        accuracy: accuracy[row],
    };
    let levels: Vec<Level> = args
        .levels
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(l, (&fraction, &k))| Level {
            fraction,
            heads_removed: k,
            checked: Strategy::ALL
                .iter()
                .enumerate()
                .map(|(s, strategy)| checked(1 + l * Strategy::ALL.len() + s, strategy.name()))
                .collect(),
        })
        .collect();
    let report = PruneReport {
        spectrum: spectrum_path.display().to_string(),
        model: args.values.model.label(),
        task: hv.task.name.clone(),
        questions: hv.task.items.len(),
        value: hv.kind.name().to_string(),
        ablation: args.values.ablation.label().to_string(),
        seed: args.seed,
        full: checked(0, "none"),
        levels,
    };

    let out = args.out.clone().unwrap_or_else(|| {
        spectrum_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("prune.json")
    });
    write_json(&out, &report)?;
    let dir = out.parent().unwrap_or_else(|| Path::new("."));
    for level in &report.levels {
        let mask = dir.join(format!("prune-{}-heads.json", level.heads_removed));
        write_json(&mask, &level.checked[0].removed)?;
    }
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
