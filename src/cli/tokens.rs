//! `spex tokens`: which words (or tokens) of a prompt, and which pairs of them, drive the
//! log-probability of a target continuation. Removed tokens are replaced by a baseline token with
//! positions unchanged. Plans, runs (resumably), decodes and writes the attribution.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::json;

use spex::ablate::{token_players, Granularity, TokenScorer};
use spex::io::write_json;
use spex::model::RunOptions;
use spex::report::token_report::TokenAttribution;

use super::head_values::PASSES_PER_BATCH;
use super::model_args::ModelArgs;
use super::plan_dir::{one_shot, write_text, OneShotArgs};

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
    let model = args.model.load()?;
    let granularity = match args.players {
        PlayersArg::Words => Granularity::Words,
        PlayersArg::Tokens => Granularity::Tokens,
    };
    let (ids, players) = token_players(model.tokenizer(), &prompt, granularity)?;
    let target = model.encode(&args.target)?;
    let info = model.info();
    let baseline = args.baseline_token.unwrap_or(info.baseline_token);
    if baseline as usize >= info.vocab {
        anyhow::bail!(
            "--baseline-token {baseline} is outside the vocabulary of {} tokens",
            info.vocab
        );
    }
    let baseline_source = match args.baseline_token {
        Some(_) => "--baseline-token".to_string(),
        None => info.baseline_source.clone(),
    };
    let defaults = RunOptions::for_device(model.device());
    let options = RunOptions {
        max_batch_tokens: args.max_batch_tokens.unwrap_or(defaults.max_batch_tokens),
        baseline_token: Some(baseline),
        ..defaults
    };
    let positions: Vec<Vec<usize>> = players.iter().map(|p| p.positions.clone()).collect();
    let mut scorer = TokenScorer::new(&model, ids.clone(), &target, positions, options)?;

    let granularity_name = args
        .players
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string());
    eprintln!(
        "players: {} {granularity_name} ({} prompt tokens; removed tokens become id {baseline}, from {baseline_source}); target of {} token(s)",
        players.len(),
        ids.len(),
        target.len()
    );
    let identity = json!({
        "players": granularity_name,
        "n_players": players.len(),
        "model": args.model.label(),
        "dtype": model.dtype().as_str(),
        "prompt": prompt,
        "target": args.target,
        "baseline_token": baseline,
    });
    let per_batch = (PASSES_PER_BATCH / target.len()).max(1);
    let done = one_shot(&args.run, &mut scorer, identity, per_batch)?;
    let texts: Vec<(String, Vec<usize>)> = players
        .iter()
        .map(|p| (p.text.clone(), p.positions.clone()))
        .collect();
    let report = TokenAttribution::new(
        &done.pairs,
        &texts,
        &prompt,
        &args.target,
        &granularity_name,
    );
    write_json(&args.run.out.join("tokens.json"), &report)?;
    let title = format!("{}: log p({:?} | prompt)", args.model.label(), args.target);
    let summary = vec![
        format!(
            "{}: {} masks over {} {granularity_name}, {}",
            done.plan.method(),
            done.masks.len(),
            players.len(),
            done.faithfulness()
        ),
        format!(
            "log p(target) with every {granularity_name} removed: {:.4}",
            report.baseline_value
        ),
    ];
    let page = args.run.out.join("tokens.html");
    write_text(&page, &report.to_html(&title, &summary, 25))?;

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
        done.faithfulness(),
        args.run.out.display()
    );
    Ok(())
}
