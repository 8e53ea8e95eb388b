//! The `spex` command line: argument parsing and one module per subcommand.

use clap::{Parser, Subcommand};

pub mod ablation_args;
mod eval;
mod head_values;
mod heads;
mod held_out;
pub mod logits;
pub mod model_args;
mod plan;
mod plan_dir;
mod prune;
mod run;
mod solve;
pub mod task_args;
mod tokens;

/// spex: find the combinations of a model's parts (heads, tokens) that drive its behaviour.
#[derive(Debug, Parser)]
#[command(name = "spex", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the masks a decoder needs (masks.npy) and how to decode them (plan.json).
    Plan(plan::PlanArgs),
    /// Decode the values of a plan's masks into sparse interactions (JSON).
    Solve(solve::SolveArgs),
    /// Evaluate (a shard of) a plan's masks as head ablations of a model on a task; resumable.
    Run(run::RunArgs),
    /// Which heads and pairs of heads drive a model's score on a task: plan, run, decode, graph.
    Heads(heads::HeadsArgs),
    /// Which words or tokens of a prompt, and which pairs, drive a target's log-probability.
    Tokens(tokens::TokensArgs),
    /// A pruning plan from `spex heads`' spectrum, checked by real evaluation runs.
    Prune(prune::PruneArgs),
    /// Multiple-choice accuracy (MMLU, ARC, SciQ, SST-2), optionally with heads ablated.
    Eval(eval::EvalArgs),
    /// Print the next-token distribution of a prompt, optionally with heads ablated.
    Logits(logits::LogitsArgs),
}

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Plan(args) => plan::run(args),
        Command::Solve(args) => solve::run(args),
        Command::Run(args) => run::run(args),
        Command::Heads(args) => heads::run(args),
        Command::Prune(args) => prune::run(args),
        Command::Tokens(args) => tokens::run(args),
        Command::Logits(args) => logits::run(args),
        Command::Eval(args) => eval::run(args),
    }
}
