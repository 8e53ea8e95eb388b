//! `--method --budget --degree --decoder --seed --keep-prob` (the design), `--index --max-order
//! --refit` (the report) and `--out --held-out` (a one-shot job's folder), as the library's option
//! structs.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use spex::io::check_writable_dir;
use spex::run::plan_dir::create_dir;
use spex::run::{DecodeOptions, Design, Method, OneShotOptions, Refit};
use spex::sparse::indices::Index;
use spex::sparse::spex::Decoder;

/// The sparse decoders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
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

/// ProxySPEX's refit of the trees' Fourier terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RefitArg {
    /// The trees' terms plus every single player and pair the samples afford, fitted by l1 (or
    /// ridge) chosen by 5-fold cross-validation on the samples: keeps the pairs the 95 % energy
    /// cut drops.
    Cv,
    /// shapiq's: the 95 % energy cut, then ridge where the constant is penalised too.
    Reference,
    /// Ridge with an unpenalised constant (the columns centred): better when masks are sampled
    /// near the full model (`--keep-prob 0.9`).
    Centred,
}

/// How to design the queries: method, budget, degree, decoder and seed.
#[derive(Debug, Args)]
pub struct DesignArgs {
    /// Decoder the masks are designed for.
    #[arg(long, value_enum, default_value_t = MethodArg::Proxyspex)]
    pub method: MethodArg,
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
    /// The library's design.
    pub fn design(&self) -> Design {
        Design {
            method: match self.method {
                MethodArg::Spex => Method::Spex,
                MethodArg::Proxyspex => Method::ProxySpex,
            },
            budget: self.budget,
            degree: self.degree,
            decoder: match self.decoder {
                DecoderArg::Soft => Decoder::Soft,
                DecoderArg::Hard => Decoder::Hard,
            },
            seed: self.seed,
            keep_probability: self.keep_prob,
        }
    }
}

/// Which interaction index to report, up to which order, and how ProxySPEX refits.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// What to report: fourier, moebius, SII, k-SII, STII, FSII, FBII, BII, SV or BV.
    #[arg(long, default_value = "k-SII")]
    pub index: Index,
    /// Largest interaction order reported [default: 2; fourier and moebius: the whole spectrum].
    #[arg(long)]
    pub max_order: Option<usize>,
    /// ProxySPEX's refit: `cv` (l1 over the trees' terms and the pairs the samples afford, over
    /// pairs, or over single heads, ridge over pairs or the reference, chosen by cross-validation), `reference` (shapiq's: 95 % energy cut, ridge) or `centred` (the
    /// reference with an unpenalised constant). It changes only the decoding: rerun in the same
    /// folder with another refit to re-decode the values.
    #[arg(long, value_enum, default_value_t = RefitArg::Cv)]
    pub refit: RefitArg,
}

impl IndexArgs {
    /// The library's decode options.
    pub fn options(&self) -> DecodeOptions {
        DecodeOptions {
            index: self.index,
            max_order: self.max_order,
            refit: match self.refit {
                RefitArg::Cv => Refit::Cv,
                RefitArg::Reference => Refit::Reference,
                RefitArg::Centred => Refit::Centred,
            },
        }
    }
}

/// The options every one-shot command shares: the design, the index and the output folder.
#[derive(Debug, Args)]
pub struct OneShotArgs {
    /// The query design.
    #[command(flatten)]
    pub design: DesignArgs,
    /// The index reported.
    #[command(flatten)]
    pub index: IndexArgs,
    /// Output folder (created if missing). Rerunning the same command there resumes the run.
    #[arg(long)]
    pub out: PathBuf,
    /// Unseen masks that check the decoded spectrum out of sample (R^2 reported, never decoded):
    /// i.i.d. draws keeping each player with the design's probability (0.5 for SPEX), seeded from
    /// `--seed` [default: a tenth of the budget; none when the plan covers every mask]. 0 skips.
    #[arg(long)]
    pub held_out: Option<usize>,
}

impl OneShotArgs {
    /// The library's one-shot options, after the checks that need no model: the index and its
    /// order, and an output folder that exists (created) and can be written.
    pub fn checked_options(&self) -> anyhow::Result<OneShotOptions> {
        let options = self.options();
        options.decode.check()?;
        create_dir(&options.out)?;
        check_writable_dir(&options.out)?;
        Ok(options)
    }

    /// The library's one-shot options.
    pub fn options(&self) -> OneShotOptions {
        OneShotOptions {
            design: self.design.design(),
            decode: self.index.options(),
            out: self.out.clone(),
            held_out: self.held_out,
        }
    }
}
