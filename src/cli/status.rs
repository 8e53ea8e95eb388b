//! `spex status`: how far the shards of a plan folder got, and the rows still to evaluate.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use spex::run::plan_dir::read_plan;
use spex::run::status::plan_status;

/// Arguments of `spex status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Folder written by `spex plan`, where `spex run --shard` writes its shards.
    #[arg(long)]
    pub plan: PathBuf,
}

/// Runs `spex status`: one line per shard (done, partial with its rows stored, or missing) on
/// stdout, then the rows to evaluate and the commands that finish the rest.
pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let context = || format!("--plan {}", args.plan.display());
    let file = read_plan(&args.plan).with_context(context)?;
    let status = plan_status(&args.plan, &file).with_context(context)?;
    let split = if status.recorded {
        "recorded in shards.json"
    } else {
        "from the shard files found"
    };
    println!(
        "{}: {} masks in {} shard(s) ({split})",
        args.plan.display(),
        status.masks,
        status.shards.len()
    );
    for shard in &status.shards {
        println!("{shard}");
    }
    println!(
        "{} of {} rows to evaluate",
        status.to_evaluate, status.masks
    );
    for shard in status.unfinished() {
        println!(
            "to finish shard {}: {}",
            shard.shard,
            status.finish_command(shard.shard)
        );
    }
    Ok(())
}
