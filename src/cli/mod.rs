//! The `spex` command line: argument parsing and one module per subcommand.

use clap::{Parser, Subcommand};

#[allow(dead_code)] // Wired into `spex eval` by the lead once the model lands.
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
pub enum Command {}

/// Parses the command line and runs the chosen subcommand.
#[allow(unreachable_code, unused_variables)] // Removed once the first subcommand lands.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {}
}
