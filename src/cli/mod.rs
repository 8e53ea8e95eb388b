//! The `spex` command line: argument parsing and one module per subcommand.

use clap::{Parser, Subcommand};

pub mod logits;

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
    /// Print the next-token distribution of a prompt, optionally with heads ablated.
    Logits(logits::LogitsArgs),
}

/// Parses the command line and runs the chosen subcommand.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Logits(args) => logits::run(args),
    }
}
