//! `spex plan`: writes the masks a decoder needs (`masks.npy`) and how to decode them (`plan.json`).

use std::path::PathBuf;

use clap::Args;

use spex::run::plan_dir::write_plan;

use super::design_args::DesignArgs;

/// Arguments of `spex plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Number of players n (mask width): heads, tokens or any features.
    #[arg(long)]
    pub players: usize,
    /// The query design.
    #[command(flatten)]
    pub design: DesignArgs,
    /// Output folder for masks.npy and plan.json (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `spex plan`.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let plan = args.design.design().plan(args.players)?;
    let masks = write_plan(&args.out, &plan)?;
    eprintln!(
        "{}: {} masks over {} players -> {}",
        plan.method(),
        masks.len(),
        masks.n_players(),
        args.out.display()
    );
    Ok(())
}
