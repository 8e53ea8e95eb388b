//! The `spex` command line: argument parsing and one module per subcommand.

use clap::{Parser, Subcommand};

pub mod ablation_args;
mod eval;
pub mod logits;
pub mod model_args;
mod plan;
mod solve;
pub mod task_args;

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
        Command::Logits(args) => logits::run(args),
        Command::Eval(args) => eval::run(args),
    }
}
