//! The `spex` command line: a thin layer over the library (see `spex --help`).

use std::process::ExitCode;

fn main() -> ExitCode {
    match spex_cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

mod spex_cli {
    pub fn run() -> anyhow::Result<()> {
        Ok(())
    }
}
