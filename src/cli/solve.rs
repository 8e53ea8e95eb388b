//! `spex solve`: decodes the values of a plan's masks into sparse interactions.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use spex::io::{write_json, write_values_npy};
use spex::report::spectrum_file::SpectrumFile;
use spex::run::decode::{decode, read_value_shards};
use spex::run::held_out::read_held_out;
use spex::run::plan_dir::{read_plan, read_plan_masks};
use spex::run::shard::check_same_run;
use spex::run::status::{plan_values, shard_files};

use super::advice::warn_low_faithfulness;
use super::design_args::IndexArgs;

/// Arguments of `spex solve`.
#[derive(Debug, Args)]
pub struct SolveArgs {
    /// Folder written by `spex plan` (plan.json and masks.npy). Without `--values`, the values are
    /// the shards of `spex run` found in it, refused while any is partial or missing.
    #[arg(long)]
    pub plan: PathBuf,
    /// Values, one per mask: float32/float64 .npy of shape [m] or text with one number per line.
    /// Several files: the shards of `spex run --shard` (each with its .json identity) in any
    /// order, checked and put in row order; plain files are concatenated in the order given.
    #[arg(long = "values", num_args = 1..)]
    pub values: Vec<PathBuf>,
    /// Also write the values decoded (the shards joined, in row order) to this .npy file.
    #[arg(long, value_name = "FILE")]
    pub values_out: Option<PathBuf>,
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
    /// Values of the `--held-out-plan` masks, shards as for `--values`.
    #[arg(long, num_args = 1.., requires = "held_out_plan")]
    pub held_out_values: Vec<PathBuf>,
}

/// Runs `spex solve`.
pub fn run(args: &SolveArgs) -> anyhow::Result<()> {
    let file = read_plan(&args.plan).context("cannot read the plan (made by `spex plan`)")?;
    let plan = &file.plan;
    let masks = read_plan_masks(&args.plan, plan)?;
    let values = if args.values.is_empty() {
        plan_values(&args.plan, &file).context("--plan")?
    } else {
        read_value_shards(&args.plan, &file, &args.values, "values").context("--values")?
    };
    if let Some(path) = &args.values_out {
        write_values_npy(path, &values).context("--values-out")?;
    }
    let options = args.index.options();
    let mut d = decode(plan, &masks, &values, &options)?;
    let mut held_out_text = String::new();
    if let Some(dir) = &args.held_out_plan {
        check_same_run(
            &values_files(args)?,
            &args.held_out_values,
            "held_out_values",
        )?;
        let held_out = read_held_out(dir, &args.held_out_values, plan.n_players())
            .with_context(|| format!("--held-out-plan {}", dir.display()))?;
        let (r2, low) = held_out.check(&d.spectrum, options.reference_refit(plan));
        d.warnings.extend(low);
        held_out_text = format!(", on {} unseen masks {r2:.4}", held_out.values.len());
        d.report = d.report.with_held_out(r2, held_out.values.len());
    }
    warn_low_faithfulness(&d.warnings);
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

/// The values files decoded: `--values`, or the shards found in the `--plan` folder.
fn values_files(args: &SolveArgs) -> anyhow::Result<Vec<PathBuf>> {
    if !args.values.is_empty() {
        return Ok(args.values.clone());
    }
    Ok(shard_files(&args.plan)?)
}
