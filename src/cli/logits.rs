//! `spex logits`: the next-token distribution of a prompt, optionally with heads ablated.

use std::path::Path;

use anyhow::{bail, Context};
use spex::model::{logsumexp, HeadMask, Job, Readout, RunOptions};

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
    /// Zero or mean ablation of the masked heads (mean: over `--mean-prompts`, else the prompt).
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
    let model = args.model.load()?;
    let info = model.info();
    let mask = match &args.head_mask {
        None => None,
        Some(arg) => Some(parse_head_mask(arg, info.n_layers, info.n_heads)?),
    };
    let ids = model.encode(&args.prompt)?;
    let options = RunOptions {
        means: args.ablation.means(&model, &[args.prompt.as_str()])?,
        ..RunOptions::default()
    };
    let job = Job {
        prompt: 0,
        heads: mask.as_ref().map(|m| m.row(0).to_vec()),
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
    let ablated: Vec<(usize, usize)> = mask
        .as_ref()
        .map(|m| {
            (0..info.n_layers)
                .flat_map(|l| (0..info.n_heads).map(move |h| (l, h)))
                .filter(|&(l, h)| m.row(0)[l * info.n_heads + h] != 1.0)
                .collect()
        })
        .unwrap_or_default();
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

/// Parses `--head-mask`: an existing JSON file, else a `LAYER:HEAD,...` spec.
pub fn parse_head_mask(arg: &str, layers: usize, heads: usize) -> anyhow::Result<HeadMask> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path).with_context(|| format!("--head-mask {arg}"))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("--head-mask {arg}: not valid JSON"))?;
        return mask_from_json(&value, layers, heads).with_context(|| format!("--head-mask {arg}"));
    }
    let mut pairs = Vec::new();
    for item in arg.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (l, h) = item.split_once(':').with_context(|| {
            format!("--head-mask: `{item}` is not LAYER:HEAD (and no file {arg} exists)")
        })?;
        let l: usize = l
            .parse()
            .with_context(|| format!("--head-mask: layer `{l}` in `{item}`"))?;
        if h == "*" {
            pairs.extend((0..heads).map(|h| (l, h)));
        } else {
            let h: usize = h
                .parse()
                .with_context(|| format!("--head-mask: head `{h}` in `{item}`"))?;
            pairs.push((l, h));
        }
    }
    HeadMask::zeroing(layers, heads, &[pairs]).context("--head-mask")
}

fn mask_from_json(
    value: &serde_json::Value,
    layers: usize,
    heads: usize,
) -> anyhow::Result<HeadMask> {
    let rows = value.as_array().context("expected a JSON array")?;
    // A list of `[layer, head]` pairs, unless the same array is also a valid [L][H] matrix.
    let is_pairs = rows.iter().all(|r| {
        r.as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|v| v.is_u64()))
    });
    if is_pairs && !(rows.len() == layers && heads == 2) {
        let pairs = rows
            .iter()
            .map(|r| {
                (
                    r[0].as_u64().unwrap_or(0) as usize,
                    r[1].as_u64().unwrap_or(0) as usize,
                )
            })
            .collect::<Vec<_>>();
        return Ok(HeadMask::zeroing(layers, heads, &[pairs])?);
    }
    if rows.len() != layers {
        bail!("an [L][H] matrix needs {layers} rows, found {}", rows.len());
    }
    let mut values = Vec::with_capacity(layers * heads);
    for (l, row) in rows.iter().enumerate() {
        let row = row
            .as_array()
            .with_context(|| format!("row {l} is not an array"))?;
        if row.len() != heads {
            bail!(
                "row {l} has {} scales, the model has {heads} heads",
                row.len()
            );
        }
        for (h, v) in row.iter().enumerate() {
            values.push(
                v.as_f64()
                    .with_context(|| format!("[{l}][{h}] is not a number"))? as f32,
            );
        }
    }
    Ok(HeadMask::from_values(1, layers, heads, values)?)
}
