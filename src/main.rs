//! The `spex` command line: a thin layer over the library (see `spex --help`). Each command in
//! `cli/` parses its flags into the library's option structs, calls the job in `spex::run`, and
//! prints; library errors name fields, and `cli::flags` puts the flag that sets each in front.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

fn main() -> ExitCode {
    spex::model::cpu::heap::keep_freed_buffers();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// spex: find the combinations of a model's parts (heads, tokens) that drive its behaviour.
#[derive(Debug, Parser)]
#[command(name = "spex", version, about, propagate_version = true)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Write the masks a decoder needs (masks.npy) and how to decode them (plan.json).
    Plan(cli::plan::PlanArgs),
    /// Decode the values of a plan's masks into sparse interactions (JSON).
    Solve(cli::solve::SolveArgs),
    /// Evaluate (a shard of) a plan's masks as head ablations of a model on a task; resumable.
    Run(cli::run::RunArgs),
    /// How far the shards of a plan folder got: done, partial (rows stored) or missing.
    Status(cli::status::StatusArgs),
    /// Which heads and pairs of heads drive a model's score on a task: plan, run, decode, graph.
    Heads(cli::heads::HeadsArgs),
    /// Which words or tokens of a prompt, and which pairs, drive a target's log-probability.
    Tokens(cli::tokens::TokensArgs),
    /// A pruning plan from `spex heads`' spectrum, checked by real evaluation runs.
    Prune(cli::prune::PruneArgs),
    /// Multiple-choice accuracy (MMLU, ARC, SciQ, SST-2), optionally with heads ablated.
    Eval(cli::eval::EvalArgs),
    /// Print the next-token distribution of a prompt, optionally with heads ablated.
    Logits(cli::logits::LogitsArgs),
}

/// Parses the command line and runs the chosen subcommand; errors name the flags at fault.
fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli::log::init();
    dispatch(&cli.command).map_err(cli::flags::name_flags)
}

fn dispatch(command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Plan(args) => cli::plan::run(args),
        Command::Solve(args) => cli::solve::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::Status(args) => cli::status::run(args),
        Command::Heads(args) => cli::heads::run(args),
        Command::Prune(args) => cli::prune::run(args),
        Command::Tokens(args) => cli::tokens::run(args),
        Command::Logits(args) => cli::logits::run(args),
        Command::Eval(args) => cli::eval::run(args),
    }
}
