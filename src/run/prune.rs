//! The pruning job: a pruning plan from a decoded head spectrum (the attribution job's), checked
//! by real evaluation runs: for each pruning level, the heads to remove under three orders (greedy on the
//! interactions, one-at-a-time, random), the value the spectrum predicts, and the value and
//! accuracy the pruned model actually gets.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::head_values::HeadValues;
use crate::ablate::HeadPlayers;
use crate::io::{check_writable, read_json, write_json};
use crate::report::prune::{kept_mask, removal_order, Strategy};
use crate::report::spectrum_file::SpectrumFile;
use crate::sparse::{MaskBatch, Spectrum};
use crate::task::ValueKind;
use crate::{Error, Result};

/// The pruning levels and the random baseline's seed.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneOptions {
    /// Fractions of the heads to remove, each in `(0, 1]` and checked by a real evaluation run.
    pub levels: Vec<f64>,
    /// Seed of the random-order baseline.
    pub seed: u64,
    /// Output JSON (`None`: prune.json beside the spectrum); one `prune-K-heads.json` head list
    /// per level is written next to it.
    pub out: Option<PathBuf>,
}

/// One pruned model, measured.
#[derive(Debug, Serialize)]
pub struct Checked {
    /// `interactions`, `single`, `random`, or `none` for the full model.
    pub strategy: &'static str,
    /// Heads removed, `[layer, head]`, in removal order.
    pub removed: Vec<[usize; 2]>,
    /// The spectrum's prediction of the value.
    pub predicted_value: f64,
    /// The value measured by the evaluation run.
    pub value: f64,
    /// Accuracy measured by the evaluation run (the harness's `acc`).
    pub accuracy: f64,
    /// The harness's `acc_norm` measured by the evaluation run (cloze tasks that report it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc_norm: Option<f64>,
}

/// One pruning level.
#[derive(Debug, Serialize)]
pub struct Level {
    /// Fraction asked for.
    pub fraction: f64,
    /// Heads removed (`round(fraction * players)`).
    pub heads_removed: usize,
    /// The level under each strategy.
    pub checked: Vec<Checked>,
}

/// `prune.json`.
#[derive(Debug, Serialize)]
pub struct PruneReport {
    /// The spectrum file pruned from.
    pub spectrum: String,
    /// The model as the user named it.
    pub model: String,
    /// The evaluation task.
    pub task: String,
    /// Questions evaluated.
    pub questions: usize,
    /// The value kind.
    pub value: String,
    /// `zero` or `mean`.
    pub ablation: String,
    /// Seed of the random baseline.
    pub seed: u64,
    /// The unpruned model.
    pub full: Checked,
    /// One entry per level.
    pub levels: Vec<Level>,
}

/// Reads the spectrum from a `spex heads` folder or a spectrum.json file.
fn read_spectrum(from: &Path) -> Result<(PathBuf, Spectrum)> {
    let path = if from.is_dir() {
        from.join("spectrum.json")
    } else {
        from.to_path_buf()
    };
    let file: SpectrumFile = read_json(&path)?;
    let spectrum = file.to_spectrum(&path)?;
    Ok((path, spectrum))
}

/// The layers a `spex heads` folder's players cover (heads.json's `first_layer` and `layers`);
/// `None` for a spectrum.json file or a folder without heads.json.
fn recorded_layers(from: &Path) -> Result<Option<Range<usize>>> {
    let path = from.join("heads.json");
    if !from.is_dir() || !path.is_file() {
        return Ok(None);
    }
    let graph: serde_json::Value = read_json(&path)?;
    let field = |name: &str| graph.get(name).and_then(serde_json::Value::as_u64);
    let first = field("first_layer").unwrap_or(0) as usize;
    let Some(count) = field("layers") else {
        return Err(Error::file(&path, "no `layers` field"));
    };
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    Ok(Some(first..first.saturating_add(count)))
}

/// `a-b` for the layers `range` (inclusive, as `--layers` takes them).
fn layer_span(range: &Range<usize>) -> String {
    format!("{}-{}", range.start, range.end.saturating_sub(1))
}

/// With a `spex heads` folder, checks that its players (heads.json's `first_layer` and `layers`)
/// are `players`: a spectrum over other layers of the same size would prune the wrong heads.
fn check_layers_match(from: &Path, players: &HeadPlayers) -> Result<()> {
    match recorded_layers(from)? {
        Some(theirs) if theirs != players.layers() => Err(Error::LayersMismatch {
            source_name: from.join("heads.json").display().to_string(),
            theirs: layer_span(&theirs),
            ours: players.to_string(),
        }),
        _ => Ok(()),
    }
}

/// What can be checked of `from` before a model is loaded: the spectrum reads, and when `from`
/// is a `spex heads` folder, its layers are `layers` (`None`: every layer, so from layer 0).
/// Returns the spectrum's number of players and the file it was read from.
pub fn check_from(from: &Path, layers: Option<&Range<usize>>) -> Result<(usize, PathBuf)> {
    let (path, spectrum) = read_spectrum(from)?;
    let found = (spectrum.n_players(), path);
    let Some(theirs) = recorded_layers(from)? else {
        return Ok(found);
    };
    let differs = match layers {
        Some(ours) => *ours != theirs,
        None => theirs.start != 0,
    };
    if differs {
        return Err(Error::LayersMismatch {
            source_name: from.join("heads.json").display().to_string(),
            theirs: layer_span(&theirs),
            ours: layers.map_or("from 0 (every layer)".to_string(), layer_span),
        });
    }
    Ok(found)
}

/// Where the report goes: `options.out`, else prune.json beside the spectrum read from `from`.
pub fn output_path(from: &Path, options: &PruneOptions) -> PathBuf {
    options.out.clone().unwrap_or_else(|| {
        let spectrum = if from.is_dir() {
            from.join("spectrum.json")
        } else {
            from.to_path_buf()
        };
        spectrum
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("prune.json")
    })
}

/// Checks that the report and its head masks can be written, before any evaluation.
pub fn check_output(from: &Path, options: &PruneOptions) -> Result<PathBuf> {
    let out = output_path(from, options);
    check_writable(&out)?;
    Ok(out)
}

/// Checks that a spectrum over `n` players (read from `path`) is over the job's head `players`.
pub fn check_spectrum_players(n: usize, path: &Path, players: &HeadPlayers) -> Result<()> {
    if n != players.n() {
        return Err(Error::SpectrumPlayersMismatch {
            source_name: path.display().to_string(),
            found: n,
            expected: players.n(),
            layers: players.to_string(),
            heads_per_layer: players.heads(),
        });
    }
    Ok(())
}

/// Checks the levels before anything is loaded: each a fraction in `(0, 1]`.
pub fn check_levels(levels: &[f64]) -> Result<()> {
    if let Some(bad) = levels.iter().find(|f| !(**f > 0.0 && **f <= 1.0)) {
        return Err(Error::invalid(
            "levels",
            format!("{bad} is not a fraction in (0, 1]"),
        ));
    }
    Ok(())
}

/// Prunes the heads of `hv` by the spectrum in `from` (a `spex heads` folder or a spectrum.json
/// file) at each level of `options` under every [`Strategy`], measures every pruned model and the
/// full one on `hv`'s questions, and writes prune.json and one `prune-K-heads.json` per level.
pub fn prune(
    from: &Path,
    hv: &HeadValues,
    options: &PruneOptions,
) -> Result<(PathBuf, PruneReport)> {
    check_levels(&options.levels)?;
    let out = check_output(from, options)?;
    let (spectrum_path, spectrum) = read_spectrum(from)?;
    let n = hv.n_players();
    check_layers_match(from, &hv.players)?;
    check_spectrum_players(spectrum.n_players(), &spectrum_path, &hv.players)?;
    let counts: Vec<usize> = options
        .levels
        .iter()
        .map(|f| ((f * n as f64).round() as usize).clamp(1, n))
        .collect();
    let deepest = counts.iter().copied().max().unwrap_or(0);
    let orders: Vec<Vec<usize>> = Strategy::ALL
        .iter()
        .map(|&s| removal_order(&spectrum, s, deepest, options.seed))
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
    let rows: Vec<Option<crate::model::HeadScales>> = kept
        .iter()
        .map(|k| Some(hv.players.scales(|p| k[p])))
        .collect();
    tracing::info!(
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
    let acc_norm = match hv.task.reports_acc_norm {
        true => Some(ValueKind::AccNorm.values(&logits, &golds)?),
        false => None,
    };

    let checked = |row: usize, strategy: &'static str| Checked {
        strategy,
        removed: removed_sets[row]
            .iter()
            .map(|&p| hv.players.head(p))
            .collect(),
        predicted_value: predicted[row],
        value: values[row],
        accuracy: accuracy[row],
        acc_norm: acc_norm.as_ref().map(|a| a[row]),
    };
    let levels: Vec<Level> = options
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
        model: hv.model_label.clone(),
        task: hv.task.name.clone(),
        questions: hv.task.items.len(),
        value: hv.kind.name().to_string(),
        ablation: hv.ablation.label().to_string(),
        seed: options.seed,
        full: checked(0, "none"),
        levels,
    };

    write_json(&out, &report)?;
    let dir = out.parent().unwrap_or_else(|| Path::new("."));
    for level in &report.levels {
        let mask = dir.join(format!("prune-{}-heads.json", level.heads_removed));
        write_json(&mask, &level.checked[0].removed)?;
    }
    Ok((out, report))
}
