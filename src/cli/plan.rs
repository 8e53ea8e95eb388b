//! `spex plan`: writes the masks a decoder needs (`masks.npy`) and how to decode them (`plan.json`),
//! and with `--shards` the split its shards run in, and the cluster job files that run them.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use spex::run::cluster::{emit_k8s, emit_slurm, EmitOptions};
use spex::run::plan_dir::write_plan;
use spex::run::shard::record_shard_count;

use super::design_args::DesignArgs;
use super::run::RunArgs;

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
    /// Cut the masks into this many shards (on evaluation batches), recorded in OUT/shards.json:
    /// `spex run --shard i/N` must then use this N.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Write a job file beside the plan that runs every shard with `spex run --shard auto` and
    /// the run arguments after `--`: slurm (OUT/spex.sbatch, an `sbatch --array` script) or k8s
    /// (OUT/spex-job.json, an Indexed Job manifest). Repeat for both.
    #[arg(long, value_enum, requires = "shards")]
    pub emit: Vec<Emit>,
    /// GPUs each shard's task asks for (`--gres=gpu:G`; `nvidia.com/gpu` on Kubernetes).
    #[arg(long, value_name = "G", default_value_t = 0, requires = "emit")]
    pub gpus: usize,
    /// The spex program the tasks run [default: this spex's path for slurm, `spex` for k8s].
    #[arg(long, value_name = "PATH", requires = "emit")]
    pub spex_bin: Option<String>,
    /// The container image of the k8s job's pods (spex on its PATH, unless `--spex-bin`).
    #[arg(long, required_if_eq("emit", "k8s"), requires = "emit")]
    pub image: Option<String>,
    /// The persistent volume claim that holds the plan folder, mounted in each pod at the
    /// folder's absolute path (k8s).
    #[arg(
        long,
        value_name = "NAME",
        default_value = "spex-plan",
        requires = "emit"
    )]
    pub claim: String,
    /// `spex run`'s model, task and value flags for the job files, after `--` (e.g. `-- --model
    /// DIR --task arc-easy --layers 27-29`).
    #[arg(last = true, value_name = "RUN ARGS", requires = "emit")]
    pub run_args: Vec<String>,
}

/// The job files `spex plan --emit` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// An `sbatch --array` script, one task per shard.
    Slurm,
    /// A Kubernetes Indexed Job manifest, one completion per shard.
    K8s,
}

/// Runs `spex plan`.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    if !args.emit.is_empty() {
        check_run_args(&args.run_args)?;
    }
    let plan = args.design.design().plan(args.players)?;
    let masks = write_plan(&args.out, &plan)?;
    eprintln!(
        "{}: {} masks over {} players -> {}",
        plan.method(),
        masks.len(),
        masks.n_players(),
        args.out.display()
    );
    let Some(shards) = args.shards else {
        return Ok(());
    };
    let record = record_shard_count(&args.out, shards).context("--shards")?;
    eprintln!("{shards} shards -> {}", record.display());
    for emit in &args.emit {
        let program = match (&args.spex_bin, emit) {
            (Some(path), _) => path.clone(),
            (None, Emit::Slurm) => std::env::current_exe()
                .context("cannot find this spex's path for the job file; pass --spex-bin")?
                .display()
                .to_string(),
            (None, Emit::K8s) => "spex".to_string(),
        };
        let options = EmitOptions {
            shards,
            gpus: args.gpus,
            program,
            run_args: args.run_args.clone(),
            image: args.image.clone().unwrap_or_default(),
            claim: args.claim.clone(),
        };
        let path = match emit {
            Emit::Slurm => emit_slurm(&args.out, &options)?,
            Emit::K8s => emit_k8s(&args.out, &options)?,
        };
        eprintln!("{emit:?} job, {shards} tasks -> {}", path.display());
    }
    Ok(())
}

/// Checks that `run_args` are flags `spex run` takes besides `--plan` and `--shard`, so a job
/// file never fails on every node at once.
fn check_run_args(run_args: &[String]) -> anyhow::Result<()> {
    let cmd = <RunArgs as Args>::augment_args(clap::Command::new("spex run").no_binary_name(true));
    let words = ["--plan", "PLAN", "--shard", "auto"]
        .into_iter()
        .map(String::from)
        .chain(run_args.iter().cloned());
    cmd.try_get_matches_from(words).map(|_| ()).map_err(|e| {
        let what = e.render().to_string();
        let first = what.lines().next().unwrap_or("").trim_start_matches("error: ");
        anyhow::anyhow!(
            "the run arguments after `--` ({}): {first}; give `spex run`'s model, task and value flags, without --plan and --shard",
            run_args.join(" ")
        )
    })
}
