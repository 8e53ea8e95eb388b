//! `spex run`: evaluates (a shard of) a plan's masks as head masks of a model on a task, writing
//! values as it goes; a rerun of the same command resumes where the last one stopped.

use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use spex::ablate::Shard;
use spex::io::write_values_npy;

use super::head_values::{HeadValueArgs, HeadValues};
use super::plan_dir::{evaluate_stored, plan_identity};
use super::solve::{read_plan, read_plan_masks};

/// Arguments of `spex run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Folder written by `spex plan` (plan.json and masks.npy), with one player per head
    /// (`--players` = layers x heads, player `l * H + h` = head h of layer l; with `--layers A-B`,
    /// the heads of those layers only, player 0 = head 0 of layer A).
    #[arg(long)]
    pub plan: PathBuf,
    /// Evaluate only slice `i` of `N` contiguous slices of the masks (e.g. a Slurm array task).
    /// Writes PLAN/values-i-of-N.npy; `spex solve` takes the shards in order.
    #[arg(long, default_value = "0/1")]
    pub shard: Shard,
    /// The value function.
    #[command(flatten)]
    pub values: HeadValueArgs,
}

/// Checks that a plan over `n` players fits the players (the model's heads, or those of `--layers`).
pub fn check_head_players(hv: &HeadValues, n: usize, plan_arg: &str) -> anyhow::Result<()> {
    let players = &hv.players;
    if n != players.n() {
        let layers = players.layers();
        anyhow::bail!(
            "{plan_arg}: the plan is for {n} players but layers {players} hold {} layers x {} heads = {} heads; plan with --players {} (or choose --layers to match)",
            layers.len(),
            players.heads(),
            players.n(),
            players.n()
        );
    }
    Ok(())
}

/// Runs `spex run`.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let file = read_plan(&args.plan)?;
    let masks = read_plan_masks(&args.plan, &file.plan)?;
    let hv = args.values.load()?;
    check_head_players(
        &hv,
        file.plan.n_players(),
        &format!("--plan {}", args.plan.display()),
    )?;
    let rows = args.shard.rows(masks.len());
    let identity = hv.identity(&[
        ("plan", plan_identity(&file)?),
        ("shard", Value::String(args.shard.to_string())),
    ]);
    let stem = args.shard.stem();
    let store = args.plan.join(format!("{stem}.log"));
    let first = rows.start;
    let scorer = hv.scorer()?;
    let mut f = hv.value_function(&scorer);
    let values = evaluate_stored(
        &mut f,
        &masks,
        rows.clone(),
        &store,
        &identity,
        hv.per_batch(),
    )?;
    let out = args.plan.join(format!("{stem}.npy"));
    write_values_npy(&out, &values)?;
    eprintln!(
        "shard {}: masks {first}..{} ({} values) -> {}",
        args.shard,
        rows.end,
        values.len(),
        out.display()
    );
    Ok(())
}
