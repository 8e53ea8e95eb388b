//! `spex run`: evaluates (a shard of) a plan's masks as head masks of a model on a task, writing
//! values as it goes; a rerun of the same command resumes where the last one stopped.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use spex::run::cluster::choose_shard;
use spex::run::shard::check_shard_count;
use spex::run::{run_shard, Shard};

use super::head_args::HeadValueArgs;

/// Arguments of `spex run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Folder written by `spex plan` (plan.json and masks.npy), with one player per head
    /// (`--players` = layers x heads, player `l * H + h` = head h of layer l; with `--layers A-B`,
    /// the heads of those layers only, player 0 = head 0 of layer A).
    #[arg(long)]
    pub plan: PathBuf,
    /// Evaluate only slice `i` of `N` contiguous slices of the masks, cut on evaluation batches.
    /// Writes PLAN/values-i-of-N.npy and its identity PLAN/values-i-of-N.json (plan, slice, rows,
    /// run), from which `spex solve` orders and checks the shards. `auto`: the shard of a Slurm
    /// array task (SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT) or of a
    /// Kubernetes Indexed Job (JOB_COMPLETION_INDEX of SPEX_SHARD_COUNT). N must be the count
    /// recorded by `spex plan --shards`, if any.
    #[arg(long, default_value = "0/1", value_name = "i/N|auto", value_parser = parse_shard)]
    pub shard: ShardArg,
    /// The value function.
    #[command(flatten)]
    pub values: HeadValueArgs,
}

/// Runs `spex run`.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    // The plan's player count is checked before the model runs (the mean ablation's means
    // included): a plan over other players fails in a second, not after the means.
    let plan = spex::run::read_plan(&args.plan)
        .with_context(|| format!("--plan {}", args.plan.display()))?;
    let explicit = match args.shard {
        ShardArg::Auto => None,
        ShardArg::Given(shard) => Some(shard),
    };
    let chosen = choose_shard(explicit, |name| std::env::var(name).ok()).map_err(|e| {
        // A variable at fault is named by the library; the flag that read it, here.
        let names_shard =
            matches!(&e, spex::Error::InvalidArgument { field, .. } if field == "shard");
        let e = anyhow::Error::new(e);
        if names_shard {
            e
        } else {
            e.context("--shard auto")
        }
    })?;
    if explicit.is_none() {
        eprintln!("shard {} from {}", chosen.shard, chosen.from);
    }
    let shard = chosen.shard;
    // Before the model loads: a count other than the plan's fails at once.
    check_shard_count(&args.plan, shard.count, &chosen.count_from)
        .with_context(|| format!("--plan {}", args.plan.display()))?;
    let n = plan.plan.n_players();
    let hv = args.values.load_checked(|players| {
        spex::run::check_players(n, players, &format!("--plan {}", args.plan.display()))
    })?;
    let done = run_shard(&args.plan, shard, &hv)
        .with_context(|| format!("--plan {}", args.plan.display()))?;
    eprintln!(
        "shard {}: masks {}..{} ({} values) -> {} (identity: {})",
        shard,
        done.rows.start,
        done.rows.end,
        done.rows.len(),
        done.path.display(),
        done.identity.display()
    );
    Ok(())
}

/// `--shard`: a shard given as `i/N`, or `auto` (from the scheduler's environment).
#[derive(Clone, Copy, Debug)]
pub enum ShardArg {
    /// From the scheduler's environment.
    Auto,
    /// Given as `i/N`.
    Given(Shard),
}

fn parse_shard(s: &str) -> Result<ShardArg, String> {
    match s {
        "auto" => Ok(ShardArg::Auto),
        _ => s
            .parse()
            .map(ShardArg::Given)
            .map_err(|e: spex::Error| format!("{e}, or `auto`")),
    }
}
