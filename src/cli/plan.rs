//! `spex plan`: writes the masks a decoder needs (`masks.npy`) and how to decode them (`plan.json`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};

use spex::io::{write_json, write_masks_npy};
use spex::sparse::plan::Plan;
use spex::sparse::proxy::ProxyPlan;
use spex::sparse::spex::{Decoder, SpexPlan};

/// The sparse decoders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// SPEX: BCH-coded subsampling and peeling (Kang et al. 2025).
    Spex,
    /// ProxySPEX: boosted-tree proxy, about ten times fewer queries (Butler et al. 2025).
    Proxyspex,
}

/// SPEX's singleton decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DecoderArg {
    /// Chase soft decoding when hard decoding fails (the reference's default).
    Soft,
    /// Hard BCH syndrome decoding only.
    Hard,
}

/// How to design the queries: method, budget, degree, decoder and seed.
#[derive(Debug, Args)]
pub struct DesignArgs {
    /// Decoder the masks are designed for.
    #[arg(long, value_enum, default_value_t = Method::Proxyspex)]
    pub method: Method,
    /// Most evaluations to spend; SPEX rounds down to its structured design size.
    #[arg(long)]
    pub budget: usize,
    /// SPEX only: largest interaction degree t the BCH code corrects (lowered to fit the budget).
    #[arg(long, default_value_t = 5)]
    pub degree: usize,
    /// SPEX only: singleton decoder.
    #[arg(long, value_enum, default_value_t = DecoderArg::Soft)]
    pub decoder: DecoderArg,
    /// Seed of every random choice in the design.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// ProxySPEX only: probability that a mask keeps each player. 0.5 samples the whole cube
    /// uniformly (the reference); 0.9 samples near the full model, where ablating half of a
    /// small model's heads at once would only measure a broken model.
    #[arg(long, default_value_t = 0.5)]
    pub keep_prob: f64,
}

impl DesignArgs {
    /// The plan these arguments describe for `players` players.
    pub fn build(&self, players: usize) -> spex::Result<Plan> {
        if self.method == Method::Spex && self.keep_prob != 0.5 {
            return Err(spex::Error::invalid(
                "--keep-prob",
                "SPEX's masks are a structured design; --keep-prob applies to --method proxyspex",
            ));
        }
        Ok(match self.method {
            Method::Spex => {
                let decoder = match self.decoder {
                    DecoderArg::Soft => Decoder::Soft,
                    DecoderArg::Hard => Decoder::Hard,
                };
                Plan::Spex(
                    SpexPlan::new(players, self.budget, self.degree, self.seed)?
                        .with_decoder(decoder),
                )
            }
            Method::Proxyspex => Plan::ProxySpex(
                ProxyPlan::new(players, self.budget, self.seed)?
                    .with_keep_probability(self.keep_prob)?,
            ),
        })
    }
}

/// Arguments of `spex plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Number of players n (mask width): heads, tokens or any features.
    #[arg(long)]
    pub players: usize,
    /// The query design.
    #[command(flatten)]
    pub design: DesignArgs,
    /// Output folder for masks.npy and plan.json (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// Runs `spex plan`.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let plan = args.design.build(args.players)?;
    let masks = plan.masks()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output folder {}", args.out.display()))?;
    write_masks_npy(&args.out.join("masks.npy"), &masks)?;
    write_json(&args.out.join("plan.json"), &plan.to_file())?;
    eprintln!(
        "{}: {} masks over {} players -> {}",
        plan.method(),
        masks.len(),
        masks.n_players(),
        args.out.display()
    );
    Ok(())
}
