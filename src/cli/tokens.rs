//! `spex tokens`: which words (or tokens) of a prompt, and which pairs of them, drive the
//! log-probability of a target continuation (the library's token job), and the top table.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use spex::ablate::Granularity;
use spex::progress::TerminalBar;
use spex::run::TokenOptions;

use super::advice::warn_low_faithfulness;
use super::design_args::OneShotArgs;
use super::model_args::ModelArgs;

/// What a player is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlayersArg {
    /// Whitespace-separated words (a word's tokens are removed together).
    Words,
    /// Single tokens.
    Tokens,
}

/// Arguments of `spex tokens`.
#[derive(Debug, Args)]
pub struct TokensArgs {
    /// Which model, on which device.
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt text.
    #[arg(
        long,
        required_unless_present = "prompt_file",
        conflicts_with = "prompt_file"
    )]
    pub prompt: Option<String>,
    /// Read the prompt from this file (used as is, trailing newline included).
    #[arg(long, value_name = "FILE")]
    pub prompt_file: Option<PathBuf>,
    /// The continuation whose log-probability is explained, e.g. " Paris" (mind the space).
    #[arg(long)]
    pub target: String,
    /// What a player is.
    #[arg(long, value_enum, default_value = "words")]
    pub players: PlayersArg,
    /// Token id that replaces removed tokens [default: the model's pad, unk or eos token].
    #[arg(long)]
    pub baseline_token: Option<u32>,
    /// Design, index and output folder.
    #[command(flatten)]
    pub run: OneShotArgs,
    /// Most prompt tokens per forward batch (bounds memory) [default: 1024 on the CPU, 8192 on GPUs;
    /// a batch that runs out of GPU memory is retried in halves].
    #[arg(long)]
    pub max_batch_tokens: Option<usize>,
}

/// Runs `spex tokens`.
pub fn run(args: &TokensArgs) -> anyhow::Result<()> {
    let prompt = match (&args.prompt, &args.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("--prompt-file {}", path.display()))?,
        (None, None) => anyhow::bail!("--prompt or --prompt-file is required"),
    };
    let options = args.run.checked_options()?;
    let model = args.model.load()?;
    let token = TokenOptions {
        prompt,
        target: args.target.clone(),
        granularity: match args.players {
            PlayersArg::Words => Granularity::Words,
            PlayersArg::Tokens => Granularity::Tokens,
        },
        baseline_token: args.baseline_token,
        max_batch_tokens: args.max_batch_tokens,
    };
    let run = spex::run::tokens(
        &model,
        &args.model.label(),
        &token,
        &options,
        &mut TerminalBar::default(),
    )?;
    warn_low_faithfulness(&run.done.decoded.warnings);
    let report = &run.report;
    let granularity_name = token.granularity.name();
    let mut ranked: Vec<_> = report.players.iter().collect();
    ranked.sort_by(|a, b| {
        b.value
            .abs()
            .total_cmp(&a.value.abs())
            .then(a.player.cmp(&b.player))
    });
    println!("{:<24} {:>12}", granularity_name, report.index);
    for p in ranked.iter().take(10) {
        println!("{:<24} {:>12.5}", format!("{:?}", p.text), p.value);
    }
    println!("\n{:<40} {:>12}", "pair", report.index);
    for p in report.pairs.iter().take(10) {
        println!(
            "{:<40} {:>12.5}",
            format!("{:?} x {:?}", p.texts[0], p.texts[1]),
            p.value
        );
    }
    eprintln!(
        "{}; wrote interactions.json, spectrum.json, tokens.json, tokens.html, values.npy in {}",
        run.done.faithfulness(),
        args.run.out.display()
    );
    Ok(())
}
