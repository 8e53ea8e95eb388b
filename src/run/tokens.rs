//! The token attribution job (`spex tokens`): which words (or tokens) of a prompt, and which
//! pairs of them, drive the log-probability of a target continuation. Removed tokens are replaced
//! by a baseline token with positions unchanged. The one-shot job, then `tokens.{json,html}`.

use serde_json::json;

use super::evaluate::masks_per_stored_batch;
use super::one_shot::{one_shot, OneShot, OneShotOptions};
use crate::ablate::{token_players, Granularity, TokenPlayer, TokenScorer};
use crate::io::{write_json, write_text};
use crate::model::{Model, RunOptions};
use crate::progress::Watch;
use crate::report::token_report::TokenAttribution;
use crate::{Error, Result};

/// The prompt, the target and what a player is.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenOptions {
    /// The prompt text (tokenized with no special tokens added).
    pub prompt: String,
    /// The continuation whose log-probability is explained, e.g. `" Paris"`.
    pub target: String,
    /// Words or single tokens.
    pub granularity: Granularity,
    /// Token id that replaces removed tokens (`None`: the model's pad, unk or eos token).
    pub baseline_token: Option<u32>,
    /// Most prompt positions per forward batch (`None`: the device's default).
    pub max_batch_tokens: Option<usize>,
}

/// A finished token attribution.
pub struct TokensRun {
    /// The decoded one-shot run.
    pub done: OneShot,
    /// tokens.json.
    pub report: TokenAttribution,
    /// The players, in order.
    pub players: Vec<TokenPlayer>,
}

/// Runs the one-shot job over the prompt's players of `model` (named `model_label` in reports)
/// in `options.out` (resumable) and writes tokens.json and tokens.html; `watch` is told each
/// stored batch and may stop the run.
pub fn tokens(
    model: &Model,
    model_label: &str,
    token: &TokenOptions,
    options: &OneShotOptions,
    watch: &mut dyn Watch,
) -> Result<TokensRun> {
    let (ids, players) = token_players(model.tokenizer(), &token.prompt, token.granularity)?;
    let target = model.encode(&token.target)?;
    let info = model.info();
    let baseline = token.baseline_token.unwrap_or(info.baseline_token);
    if baseline as usize >= info.vocab {
        return Err(Error::invalid(
            "baseline_token",
            format!(
                "{baseline} is outside the vocabulary of {} tokens",
                info.vocab
            ),
        ));
    }
    let baseline_source = match token.baseline_token {
        Some(_) => "the baseline token asked for",
        None => info.baseline_source.as_str(),
    };
    let defaults = RunOptions::for_device(model.device());
    let run_options = RunOptions {
        max_batch_tokens: token.max_batch_tokens.unwrap_or(defaults.max_batch_tokens),
        baseline_token: Some(baseline),
        ..defaults
    };
    let positions: Vec<Vec<usize>> = players.iter().map(|p| p.positions.clone()).collect();
    let mut scorer = TokenScorer::new(model, ids.clone(), &target, positions, run_options)?;
    let granularity = token.granularity.name();
    tracing::info!(
        "players: {} {granularity} ({} prompt tokens; removed tokens become id {baseline}, from {baseline_source}); target of {} token(s)",
        players.len(),
        ids.len(),
        target.len()
    );
    let identity = json!({
        "players": granularity,
        "n_players": players.len(),
        "model": model_label,
        "dtype": model.dtype().as_str(),
        "prompt": token.prompt,
        "target": token.target,
        "baseline_token": baseline,
    });
    // One forward pass per mask: the prompt and the target's tokens run teacher-forced together.
    let per_batch = masks_per_stored_batch(1, 1, 1);
    let done = one_shot(options, &mut scorer, identity, per_batch, None, watch)?;
    let texts: Vec<(String, Vec<usize>)> = players
        .iter()
        .map(|p| (p.text.clone(), p.positions.clone()))
        .collect();
    let report = TokenAttribution::new(
        &done.pairs,
        &texts,
        &token.prompt,
        &token.target,
        granularity,
    );
    write_json(&options.out.join("tokens.json"), &report)?;
    let title = format!("{model_label}: log p({:?} | prompt)", token.target);
    let summary = vec![
        format!(
            "{}: {} masks over {} {granularity}, {}",
            done.plan.method(),
            done.masks.len(),
            players.len(),
            done.faithfulness()
        ),
        format!(
            "log p(target) with every {granularity} removed: {:.4}",
            report.baseline_value
        ),
    ];
    write_text(
        &options.out.join("tokens.html"),
        &report.to_html(&title, &summary, 25),
    )?;
    Ok(TokensRun {
        done,
        report,
        players,
    })
}
