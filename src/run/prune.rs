//! The pruning job: pruning plans from a decoded head spectrum (the attribution job's), checked by
//! real evaluation runs, ideally on questions the attribution never saw (`--offset`). At each
//! level, the heads kept under:
//! - `maximise`: the ProxySPEX paper's selection, the surrogate maximised exactly under "keep
//!   exactly k heads" (branch and bound, [`crate::sparse::maximise`]; the optimality gap is
//!   reported when the node limit stops it);
//! - `greedy`, `single`, `random`: removal orders on the surrogate ([`Strategy`]);
//! - `lasso` (the k heads with the largest LASSO coefficients) and `ridge-pairs` (the ridge-over-
//!   pairs surrogate maximised exactly), both fitted to the attribution's samples;
//! - `best-of-N`: the best of N fresh head sets of exactly k heads, judged on the attribution's
//!   questions (N evaluations per level, reported).
//!
//! Each plan's accuracy comes with a bootstrap interval over the questions, and `maximise` is
//! compared with the best baseline by a paired bootstrap interval: a win only when it lies above
//! zero.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::head_values::{questions_digest, HeadValues};
use super::interval::{bootstrap, paired_bootstrap, Interval, RESAMPLES};
use super::prune_plans::{choose_plans, Candidate, ChoiceSettings};
use crate::ablate::HeadPlayers;
use crate::io::{check_writable, read_json, write_json, write_text};
use crate::report::page_section::{group_prune_key, prune_fragment, with_section, PRUNE};
use crate::report::prune::kept_mask;
use crate::report::prune_curves::{curves_svg, Point};
use crate::report::spectrum_file::SpectrumFile;
use crate::sparse::{MaskBatch, Spectrum};
use crate::task::ValueKind;
use crate::task::{load_task, LoadedTask, TaskItem, TaskSpec};
use crate::{Error, Result};

/// The pruning levels, the baselines' settings and the seed.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneOptions {
    /// Fractions of the heads to remove, each in `(0, 1]` and checked by a real evaluation run.
    pub levels: Vec<f64>,
    /// Seed of the random baselines (order, Best-of-N's draws) and of the bootstrap.
    pub seed: u64,
    /// Best-of-N's N: fresh head sets per level, evaluated on the attribution's questions (0: no
    /// Best-of-N).
    pub best_of: usize,
    /// Most branch-and-bound nodes of each exact selection (the gap is reported when hit).
    pub search_nodes: u64,
    /// Output JSON (`None`: prune.json beside the spectrum); one `prune-K-heads.json` head list
    /// per level is written next to it.
    pub out: Option<PathBuf>,
}

/// `maximise` against the best baseline of its level, on the same questions.
#[derive(Debug, Serialize)]
pub struct Versus {
    /// The baseline with the highest accuracy at this level.
    pub baseline: String,
    /// Accuracy of `maximise` minus the baseline's: mean and paired 95 % bootstrap interval.
    pub difference: Interval,
    /// Whether the interval lies above zero.
    pub win: bool,
}

/// One pruned model, measured.
#[derive(Debug, Serialize)]
pub struct Checked {
    /// `maximise`, `greedy`, `single`, `random`, `lasso`, `ridge-pairs`, `best-of-N`, or `none`
    /// for the full model.
    pub strategy: String,
    /// Heads removed, `[layer, head]`, in removal order.
    pub removed: Vec<[usize; 2]>,
    /// The spectrum's prediction of the value.
    pub predicted_value: f64,
    /// The value measured by the evaluation run.
    pub value: f64,
    /// Accuracy measured by the evaluation run (the harness's `acc`).
    pub accuracy: f64,
    /// Its 95 % bootstrap interval over the questions.
    pub accuracy_interval: Interval,
    /// The harness's `acc_norm` measured by the evaluation run (cloze tasks that report it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acc_norm: Option<f64>,
    /// `maximise`: whether the selection is proven optimal for the surrogate, and the gap
    /// (proven bound minus value) when the node limit stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optimal: Option<bool>,
    /// See `optimal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap: Option<f64>,
    /// `best-of-N`: evaluations spent on the attribution's questions to choose it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_evaluations: Option<usize>,
    /// `maximise`: against the best baseline of the level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versus_best_baseline: Option<Versus>,
}

/// One pruning level.
#[derive(Debug, Serialize)]
pub struct Level {
    /// Fraction removed, as asked for.
    pub fraction: f64,
    /// Heads removed (`round(fraction * players)`).
    pub heads_removed: usize,
    /// Heads kept.
    pub heads_kept: usize,
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
    /// Seed of the random baselines and the bootstrap.
    pub seed: u64,
    /// Baselines that could not run, and why (e.g. no samples beside a spectrum.json file).
    pub skipped: Vec<String>,
    /// The unpruned model.
    pub full: Checked,
    /// One entry per level.
    pub levels: Vec<Level>,
}

impl PruneReport {
    /// The pruning curves over `players` heads (prune.svg): accuracy against heads kept, one line
    /// per plan, with intervals; the unpruned model dashed.
    pub fn curves(&self, players: usize) -> String {
        let mut series: Vec<(String, Vec<Point>)> = Vec::new();
        for level in &self.levels {
            for c in &level.checked {
                let point = Point {
                    kept: level.heads_kept,
                    accuracy: c.accuracy,
                    low: c.accuracy_interval.low,
                    high: c.accuracy_interval.high,
                };
                match series.iter_mut().find(|(name, _)| *name == c.strategy) {
                    Some((_, points)) => points.push(point),
                    None => series.push((c.strategy.clone(), vec![point])),
                }
            }
        }
        let title = format!(
            "{} on {} ({} questions, {} ablation): accuracy after pruning",
            self.model, self.task, self.questions, self.ablation
        );
        curves_svg(&title, players, self.full.accuracy, &series)
    }
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

/// The baselines `maximise` is judged against, when present.
const BASELINES: [&str; 5] = ["lasso", "ridge-pairs", "best-of", "single", "random"];

/// The attribution's questions of the `spex heads` folder `from`: `spec`'s task from question
/// `offset`, as many as the folder's values.log names (or `limit`), checked against the digest
/// of the questions it recorded. Where Best-of-N chooses its head sets.
pub fn attribution_questions(
    from: &Path,
    spec: &TaskSpec,
    offset: usize,
    limit: Option<usize>,
) -> Result<LoadedTask> {
    let log = from.join("values.log");
    let text = std::fs::read(&log).map_err(|e| Error::file(&log, e))?;
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let header: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| Error::file(&log, format!("the header line is not JSON: {e}")))?;
    let run = header.get("run").unwrap_or(&header);
    let recorded = run.get("questions").and_then(serde_json::Value::as_u64);
    let Some(count) = limit.or(recorded.map(|q| q as usize)) else {
        return Err(Error::file(&log, "the header names no `questions` count"));
    };
    let task = load_task(&TaskSpec {
        offset,
        limit: Some(count),
        ..spec.clone()
    })?;
    let digest = run
        .get("questions_digest")
        .and_then(serde_json::Value::as_str);
    if digest != Some(questions_digest(&task).as_str()) {
        return Err(Error::invalid(
            "train_offset",
            format!(
                "questions {offset}..{} of `{}` are not the ones {} was attributed on",
                offset + count,
                task.name,
                log.display()
            ),
        ));
    }
    Ok(task)
}

/// Prunes the heads of `hv` by the spectrum in `from` (a `spex heads` folder or a spectrum.json
/// file) at each level of `options`, measures every plan and the full model on `hv`'s questions,
/// and writes prune.json and one `prune-K-heads.json` per level (the `maximise` plan).
/// `train` (the attribution's questions) is where Best-of-N chooses; without it, or with
/// `options.best_of = 0`, there is no Best-of-N.
pub fn prune(
    from: &Path,
    hv: &HeadValues,
    options: &PruneOptions,
    train: Option<&[TaskItem]>,
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
    let settings = ChoiceSettings {
        seed: options.seed,
        best_of: options.best_of,
        search_nodes: options.search_nodes,
    };
    let (levels_plans, skipped) = choose_plans(from, hv, &spectrum, &counts, settings, train)?;

    let measured = measure(hv, &spectrum, &levels_plans)?;
    let mut row = 1;
    let mut levels = Vec::with_capacity(counts.len());
    for ((&fraction, &removed), plans) in options.levels.iter().zip(&counts).zip(&levels_plans) {
        let mut checked: Vec<Checked> = plans
            .iter()
            .zip(row..)
            .map(|(c, r)| measured.checked(r, c, hv, options.seed))
            .collect();
        checked[0].versus_best_baseline = measured.versus_best_baseline(row, plans, options.seed);
        row += plans.len();
        levels.push(Level {
            fraction,
            heads_removed: removed,
            heads_kept: n - removed,
            checked,
        });
    }
    let full = Candidate::named("none", Vec::new());
    let report = PruneReport {
        spectrum: spectrum_path.display().to_string(),
        model: hv.model_label.clone(),
        task: hv.task.name.clone(),
        questions: hv.task.items.len(),
        value: hv.kind.name().to_string(),
        ablation: hv.ablation.label().to_string(),
        seed: options.seed,
        skipped,
        full: measured.checked(0, &full, hv, options.seed),
        levels,
    };

    write_json(&out, &report)?;
    let dir = out.parent().unwrap_or_else(|| Path::new("."));
    let svg = report.curves(n);
    write_text(&out.with_extension("svg"), &svg)?;
    if from.is_dir() && dir == from {
        add_curves_to_pages(from, &svg)?;
    }
    for level in &report.levels {
        let mask = dir.join(format!("prune-{}-heads.json", level.heads_removed));
        write_json(&mask, &level.checked[0].removed)?;
    }
    Ok((out, report))
}

/// Puts the pruning curves `svg` into the heads.html of the attribution folder `from` and, when
/// `from` is a group of a `spex heads --groups` sweep, into the sweep's groups.html (a page that
/// is not there, or a groups.html without this group's section, is left as it is).
fn add_curves_to_pages(from: &Path, svg: &str) -> Result<()> {
    let fragment = prune_fragment(svg);
    let heads = from.join("heads.html");
    if let Ok(page) = std::fs::read_to_string(&heads) {
        write_text(&heads, &with_section(&page, PRUNE, &fragment))?;
    }
    let (Some(sweep), Some(folder)) = (from.parent(), from.file_name().and_then(|f| f.to_str()))
    else {
        return Ok(());
    };
    let groups = sweep.join("groups.html");
    let key = group_prune_key(folder);
    if let Ok(page) = std::fs::read_to_string(&groups) {
        if page.contains(&format!("<!-- spex:{key} -->")) {
            write_text(&groups, &with_section(&page, &key, &fragment))?;
        }
    }
    Ok(())
}

/// The evaluation run of every plan: row 0 the full model, then each level's plans in order.
struct Measured {
    /// Players removed per row.
    removed: Vec<Vec<usize>>,
    /// The spectrum's prediction of each row's value.
    predicted: Vec<f64>,
    /// Each row's measured value.
    values: Vec<f64>,
    /// Per row, 1 or 0 per question: whether the pruned model answers it right.
    correct: Vec<Vec<f64>>,
    /// Per row, the harness's `acc_norm` (cloze tasks that report it).
    acc_norm: Option<Vec<f64>>,
}

/// Runs the full model and every plan of `levels` on `hv`'s questions in one scorer call.
fn measure(hv: &HeadValues, spectrum: &Spectrum, levels: &[Vec<Candidate>]) -> Result<Measured> {
    let n = hv.n_players();
    let mut removed: Vec<Vec<usize>> = vec![Vec::new()];
    removed.extend(levels.iter().flatten().map(|c| c.removed.clone()));
    let kept: Vec<Vec<bool>> = removed.iter().map(|r| kept_mask(n, r)).collect();
    let mut batch = MaskBatch::new(n);
    for row in &kept {
        batch.push_bools(row);
    }
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
    let acc_norm = match hv.task.reports_acc_norm {
        true => Some(ValueKind::AccNorm.values(&logits, &golds)?),
        false => None,
    };
    Ok(Measured {
        predicted: spectrum.eval(&batch),
        values: hv.kind.values(&logits, &golds)?,
        correct: ValueKind::Accuracy.per_question_values(&logits, &golds)?,
        acc_norm,
        removed,
    })
}

impl Measured {
    /// Row `row` (plan `c`) as prune.json reports it, its interval seeded by `seed`.
    fn checked(&self, row: usize, c: &Candidate, hv: &HeadValues, seed: u64) -> Checked {
        let correct = &self.correct[row];
        Checked {
            strategy: c.strategy.clone(),
            removed: self.removed[row]
                .iter()
                .map(|&p| hv.players.head(p))
                .collect(),
            predicted_value: self.predicted[row],
            value: self.values[row],
            accuracy: correct.iter().sum::<f64>() / correct.len().max(1) as f64,
            accuracy_interval: bootstrap(correct, RESAMPLES, seed),
            acc_norm: self.acc_norm.as_ref().map(|a| a[row]),
            optimal: c.optimal,
            gap: c.gap,
            train_evaluations: c.train_evaluations,
            versus_best_baseline: None,
        }
    }

    /// `maximise` (row `first`, the first of `plans`) against the level's baseline with the
    /// highest accuracy (the first on ties), by a paired bootstrap over the questions.
    fn versus_best_baseline(&self, first: usize, plans: &[Candidate], seed: u64) -> Option<Versus> {
        let accuracy = |i: usize| self.correct[first + i].iter().sum::<f64>();
        let best = (0..plans.len())
            .filter(|&i| BASELINES.iter().any(|b| plans[i].strategy.starts_with(b)))
            .max_by(|&a, &b| accuracy(a).total_cmp(&accuracy(b)).then(b.cmp(&a)))?;
        let difference = paired_bootstrap(
            &self.correct[first],
            &self.correct[first + best],
            RESAMPLES,
            seed,
        );
        Some(Versus {
            baseline: plans[best].strategy.clone(),
            win: difference.above_zero(),
            difference,
        })
    }
}
