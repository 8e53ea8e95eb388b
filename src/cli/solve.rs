//! `spex solve`: decodes the values of a plan's masks into sparse interactions.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};

use spex::io::{read_json, read_masks_npy, read_values, write_json};
use spex::report::interactions::InteractionsReport;
use spex::report::spectrum_file::SpectrumFile;
use spex::sparse::indices::{interaction_values, Index, InteractionValues};
use spex::sparse::plan::{Plan, PlanFile};
use spex::sparse::{MaskBatch, Spectrum};

use super::held_out::HeldOut;

/// R^2 (in-sample, or on unseen masks) under which a run warns that the spectrum explains too little to trust.
pub const LOW_R2: f64 = 0.5;

/// ProxySPEX's refit of the kept Fourier terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Refit {
    /// shapiq's ridge: the constant is a column like any other, penalised too.
    Reference,
    /// Ridge with an unpenalised constant (the columns centred): better when masks are sampled
    /// near the full model (`--keep-prob 0.9`).
    Centred,
}

impl Refit {
    /// The name `--refit` takes.
    pub fn name(self) -> &'static str {
        match self {
            Refit::Reference => "reference",
            Refit::Centred => "centred",
        }
    }
}

/// Which interaction index to report, up to which order, and how ProxySPEX refits.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// What to report: fourier, moebius, SII, k-SII, STII, FSII, FBII, BII, SV or BV.
    #[arg(long, default_value = "k-SII")]
    pub index: Index,
    /// Largest interaction order reported [default: 2; fourier and moebius: the whole spectrum].
    #[arg(long)]
    pub max_order: Option<usize>,
    /// ProxySPEX's refit: `reference` (shapiq's) or `centred` (unpenalised constant). It changes
    /// only the decoding: rerun in the same folder with the other refit to re-decode the values.
    #[arg(long, value_enum, default_value_t = Refit::Reference)]
    pub refit: Refit,
}

impl IndexArgs {
    /// Whether `plan` decodes through ProxySPEX's reference refit (so `--refit centred` is a lever).
    pub fn reference_refit(&self, plan: &Plan) -> bool {
        matches!(plan, Plan::ProxySpex(_)) && self.refit == Refit::Reference
    }
}

/// Arguments of `spex solve`.
#[derive(Debug, Args)]
pub struct SolveArgs {
    /// Folder written by `spex plan` (plan.json and masks.npy).
    #[arg(long)]
    pub plan: PathBuf,
    /// Values, one per mask: float32/float64 .npy of shape [m] or text with one number per line.
    /// Repeat for shards; they are concatenated in the order given.
    #[arg(long = "values", required = true, num_args = 1..)]
    pub values: Vec<PathBuf>,
    /// Output JSON file.
    #[arg(long)]
    pub out: PathBuf,
    /// The index reported.
    #[command(flatten)]
    pub index: IndexArgs,
    /// Also write the decoded spectrum (Fourier coefficients) to this JSON file.
    #[arg(long)]
    pub spectrum: Option<PathBuf>,
    /// Another plan's folder over the same players whose masks were evaluated too (e.g. `spex plan
    /// --budget 200 --seed 12345`), never decoded: the spectrum's R^2 on them is reported as
    /// `r2_held_out`. Needs `--held-out-values`.
    #[arg(long, requires = "held_out_values")]
    pub held_out_plan: Option<PathBuf>,
    /// Values of the `--held-out-plan` masks, shards in order as for `--values`.
    #[arg(long, num_args = 1.., requires = "held_out_plan")]
    pub held_out_values: Vec<PathBuf>,
}

/// A decoded run: the spectrum, its in-sample faithfulness and the chosen index.
pub struct Decoded {
    /// The Fourier spectrum.
    pub spectrum: Spectrum,
    /// The index values.
    pub interactions: InteractionValues,
    /// `interactions.json`.
    pub report: InteractionsReport,
}

/// Reads and concatenates the value shards, naming the file of any bad row.
fn read_value_shards(paths: &[PathBuf]) -> anyhow::Result<Vec<f64>> {
    let mut all = Vec::new();
    for path in paths {
        let values = read_values(path)?;
        if let Err(e) = spex::error::check_finite(&values) {
            return Err(anyhow::Error::new(e).context(format!(
                "{} (rows counted from 0 within this file)",
                path.display()
            )));
        }
        all.extend(values);
    }
    Ok(all)
}

/// Reads `plan.json` and checks its header.
pub fn read_plan(dir: &Path) -> anyhow::Result<PlanFile> {
    let path = dir.join("plan.json");
    let file: PlanFile = read_json(&path).context("cannot read the plan (made by `spex plan`)")?;
    file.validate(&path)?;
    Ok(file)
}

/// Reads `masks.npy` of the plan folder `dir` and checks that it holds the masks `plan` describes.
pub fn read_plan_masks(dir: &Path, plan: &Plan) -> anyhow::Result<MaskBatch> {
    let masks_path = dir.join("masks.npy");
    let masks = read_masks_npy(&masks_path)?;
    if masks.n_players() != plan.n_players() {
        anyhow::bail!(
            "{}: masks have {} players but plan.json is for n = {}: the two files come from different plans",
            masks_path.display(),
            masks.n_players(),
            plan.n_players()
        );
    }
    if masks != plan.masks()? {
        anyhow::bail!(
            "{}: the masks differ from the ones plan.json describes; re-run `spex plan` or use the matching folder",
            masks_path.display()
        );
    }
    Ok(masks)
}

/// Decodes `values` (one per row of `masks`) with `plan` and computes the chosen index.
pub fn decode(
    plan: &Plan,
    masks: &MaskBatch,
    values: &[f64],
    index: &IndexArgs,
) -> anyhow::Result<Decoded> {
    if values.len() != masks.len() {
        anyhow::bail!(
            "{} value(s) given but the plan has {} masks: pass every shard, in order",
            values.len(),
            masks.len()
        );
    }
    let spectrum = match index.refit {
        Refit::Reference => plan.decode(masks, values)?,
        Refit::Centred => plan.with_centred_refit()?.decode(masks, values)?,
    };
    let r2 = spectrum.r2(masks, values);
    if r2 < LOW_R2 {
        eprintln!(
            "warning: the decoded spectrum explains only R^2 = {r2:.3} of the queried values: its interactions are unreliable; raise --budget"
        );
    }
    let max_order = index.max_order.unwrap_or(match index.index {
        Index::Fourier | Index::Moebius => plan.n_players(),
        _ => 2,
    });
    let interactions = interaction_values(&spectrum, index.index, max_order)?;
    let mut report = InteractionsReport::new(&interactions, plan.method(), masks.len(), r2);
    if matches!(plan, Plan::ProxySpex(_)) {
        report = report.with_refit(index.refit.name());
    }
    Ok(Decoded {
        spectrum,
        interactions,
        report,
    })
}

/// Runs `spex solve`.
pub fn run(args: &SolveArgs) -> anyhow::Result<()> {
    let file = read_plan(&args.plan)?;
    let plan = &file.plan;
    let masks = read_plan_masks(&args.plan, plan)?;
    let values = read_value_shards(&args.values)?;
    let mut d = decode(plan, &masks, &values, &args.index)?;
    let mut held_out_text = String::new();
    if let Some(dir) = &args.held_out_plan {
        let held_out = read_held_out(dir, &args.held_out_values, plan.n_players())?;
        let r2 = held_out.r2(&d.spectrum, args.index.reference_refit(plan));
        held_out_text = format!(", on {} unseen masks {r2:.4}", held_out.values.len());
        d.report = d.report.with_held_out(r2, held_out.values.len());
    }
    write_json(&args.out, &d.report)?;
    if let Some(path) = &args.spectrum {
        write_json(path, &SpectrumFile::new(&d.spectrum))?;
    }
    eprintln!(
        "{}: {} interactions ({}, max order {}), R^2 on the queried masks {:.4}{held_out_text} -> {}",
        plan.method(),
        d.report.interactions.len(),
        d.interactions.index,
        d.interactions.max_order,
        d.report.r2_queried,
        args.out.display()
    );
    Ok(())
}

/// The masks of the plan in `dir` and their `values` (shards), checked to be over `n` players and
/// one value per mask; errors name `--held-out-plan` or `--held-out-values`.
fn read_held_out(dir: &Path, values: &[PathBuf], n: usize) -> anyhow::Result<HeldOut> {
    let file = read_plan(dir)?;
    if file.plan.n_players() != n {
        anyhow::bail!(
            "--held-out-plan {}: a plan over {} players, but the decoded plan has {n}",
            dir.display(),
            file.plan.n_players()
        );
    }
    let masks = read_plan_masks(dir, &file.plan)?;
    let values = read_value_shards(values)?;
    if values.len() != masks.len() {
        anyhow::bail!(
            "--held-out-values: {} value(s) for the {} masks of {}",
            values.len(),
            masks.len(),
            dir.display()
        );
    }
    let keep = match &file.plan {
        Plan::ProxySpex(p) => p.keep_probability,
        Plan::Spex(_) => 0.5,
    };
    Ok(HeldOut {
        masks,
        values,
        keep,
    })
}
