//! `spex logits`: the next-token distribution of a prompt, optionally with heads ablated.

use anyhow::Context;
use spex::model::{logsumexp, HeadScales, Job, Readout, RunOptions};

use super::ablation_args::AblationArgs;
use super::model_args::ModelArgs;

/// Print the next-token distribution of a prompt, optionally with some heads ablated.
#[derive(Debug, clap::Args)]
pub struct LogitsArgs {
    /// Which model, on which device.
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt text (tokenized with no special tokens added).
    #[arg(long)]
    pub prompt: String,
    /// Heads to zero: `LAYER:HEAD,...` (`LAYER:*` for a whole layer), or a JSON file holding
    /// `[[layer, head], ...]` or an `[L][H]` matrix of scales (1 keep, 0 ablate).
    #[arg(long)]
    pub head_mask: Option<String>,
    /// Zero, mean or rescale ablation of the masked heads (mean: over `--mean-prompts`, else the
    /// prompt).
    #[command(flatten)]
    pub ablation: AblationArgs,
    /// How many top tokens to print.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: &LogitsArgs) -> anyhow::Result<()> {
    args.ablation.check()?;
    let model = args.model.load()?;
    let info = model.info();
    let mask = match &args.head_mask {
        None => None,
        Some(arg) => Some(parse_head_mask(arg, info.n_layers, info.n_heads)?),
    };
    let ids = model.encode(&args.prompt)?;
    if ids.is_empty() {
        anyhow::bail!("--prompt {:?}: encodes to no token", args.prompt);
    }
    let options = RunOptions {
        means: args.ablation.means(&model, &[args.prompt.as_str()])?,
        ..RunOptions::default()
    };
    let job = Job {
        prompt: 0,
        heads: mask.clone().map(|m| args.ablation.head_scales(m)),
        tokens: None,
    };
    let logits = model
        .run(std::slice::from_ref(&ids), &[job], &Readout::Full, &options)?
        .pop()
        .context("the model returned no row")?;
    let lse = logsumexp(&logits);
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let top: Vec<serde_json::Value> = order
        .iter()
        .take(args.top)
        .map(|&i| {
            let token = model
                .tokenizer()
                .decode(&[i as u32], false)
                .unwrap_or_default();
            serde_json::json!({"id": i, "token": token, "logit": logits[i],
                               "prob": (logits[i] as f64 - lse).exp()})
        })
        .collect();
    let ablated: Vec<(usize, usize)> = mask.as_ref().map(HeadScales::masked).unwrap_or_default();
    if args.json {
        let out = serde_json::json!({"model": args.model.label(), "prompt": args.prompt,
            "input_ids": ids, "masked_heads": ablated, "ablation": args.ablation.label(),
            "logsumexp": lse, "top": top});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} tokens, {} masked head(s), logsumexp {lse:.4}",
            ids.len(),
            ablated.len()
        );
        println!(
            "{:>4}  {:>6}  {:>10}  {:>8}  token",
            "rank", "id", "logit", "prob"
        );
        for (rank, t) in top.iter().enumerate() {
            println!(
                "{:>4}  {:>6}  {:>10.4}  {:>8.5}  {:?}",
                rank + 1,
                t["id"],
                t["logit"].as_f64().unwrap_or(f64::NAN),
                t["prob"].as_f64().unwrap_or(f64::NAN),
                t["token"].as_str().unwrap_or("")
            );
        }
    }
    Ok(())
}

/// Parses `--head-mask` ([`HeadScales::parse`]: an existing JSON file, else a `LAYER:HEAD,...`
/// spec), naming the flag in errors.
pub fn parse_head_mask(arg: &str, layers: usize, heads: usize) -> anyhow::Result<HeadScales> {
    HeadScales::parse(arg, layers, heads).with_context(|| format!("--head-mask {arg}"))
}
