//! Decoding a plan's values: the spectrum, its faithfulness on the queried masks, and the
//! reported interaction index (`interactions.json`).

use std::path::PathBuf;

use crate::io::read_values;
use crate::report::interactions::InteractionsReport;
use crate::sparse::indices::{interaction_values, Index, InteractionValues};
use crate::sparse::plan::Plan;
use crate::sparse::{self, MaskBatch, Spectrum};
use crate::{Error, Result};

/// R^2 (in-sample, or on unseen masks) under which a run warns that the spectrum explains too
/// little to trust.
pub const LOW_R2: f64 = 0.5;

/// What would make a spectrum that explains too little more trustworthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lever {
    /// Query more masks.
    Budget,
    /// Average the value over more questions (a smoother function).
    MoreQuestions,
    /// Re-decode the same values with ProxySPEX's centred refit (seconds, no new evaluation).
    CentredRefit,
    /// Sample masks nearer the full model (keep probability 0.9).
    KeepNearFull,
}

/// A spectrum that explains less than [`LOW_R2`] of the values it was checked on: the caller
/// decides how to tell its user (the CLI prints a warning naming the flags of the levers).
#[derive(Clone, Debug, PartialEq)]
pub struct LowFaithfulness {
    /// The R^2.
    pub r2: f64,
    /// `None`: on the queried masks; `Some(k)`: on `k` unseen masks.
    pub unseen: Option<usize>,
    /// What would help, most general first.
    pub levers: Vec<Lever>,
}

/// ProxySPEX's refit of the kept Fourier terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Refit {
    /// shapiq's ridge: the constant is a column like any other, penalised too.
    #[default]
    Reference,
    /// Ridge with an unpenalised constant (the columns centred): better when masks are sampled
    /// near the full model (keep probability 0.9).
    Centred,
}

impl Refit {
    /// The refit's name in `interactions.json` (`reference` or `centred`).
    pub fn name(self) -> &'static str {
        match self {
            Refit::Reference => "reference",
            Refit::Centred => "centred",
        }
    }
}

/// Which interaction index to report, up to which order, and how ProxySPEX refits.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodeOptions {
    /// What to report.
    pub index: Index,
    /// Largest interaction order reported (`None`: 2; for fourier and moebius the whole spectrum).
    pub max_order: Option<usize>,
    /// ProxySPEX's refit (changes only the decoding, never the plan).
    pub refit: Refit,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            index: Index::KSii,
            max_order: None,
            refit: Refit::Reference,
        }
    }
}

impl DecodeOptions {
    /// Whether `plan` decodes through ProxySPEX's reference refit (so the centred one is a lever).
    pub fn reference_refit(&self, plan: &Plan) -> bool {
        matches!(plan, Plan::ProxySpex(_)) && self.refit == Refit::Reference
    }

    /// The largest order reported for a spectrum over `n` players.
    pub fn order(&self, n: usize) -> usize {
        self.max_order.unwrap_or(match self.index {
            Index::Fourier | Index::Moebius => n,
            _ => 2,
        })
    }

    /// Checks what can be checked before any evaluation: the order the index needs.
    pub fn check(&self) -> Result<()> {
        if self.max_order == Some(0) && !matches!(self.index, Index::Fourier | Index::Moebius) {
            return Err(Error::invalid(
                "max_order",
                format!("{} needs an interaction order of at least 1", self.index),
            ));
        }
        Ok(())
    }
}

/// A decoded run: the spectrum, its in-sample faithfulness and the chosen index.
pub struct Decoded {
    /// The Fourier spectrum.
    pub spectrum: Spectrum,
    /// The index values.
    pub interactions: InteractionValues,
    /// `interactions.json`.
    pub report: InteractionsReport,
    /// Checks the spectrum failed: on the queried masks, then (one-shot jobs) on unseen ones.
    pub warnings: Vec<LowFaithfulness>,
}

/// Decodes `values` (one per row of `masks`) with `plan` and computes the chosen index; a
/// [`LowFaithfulness`] in `warnings` when the spectrum explains less than [`LOW_R2`] of them.
pub fn decode(
    plan: &Plan,
    masks: &MaskBatch,
    values: &[f64],
    options: &DecodeOptions,
) -> Result<Decoded> {
    if values.len() != masks.len() {
        return Err(sparse::Error::ValuesMismatch(format!(
            "{} value(s) given but the plan has {} masks: pass every shard, in order",
            values.len(),
            masks.len()
        ))
        .into());
    }
    let spectrum = match options.refit {
        Refit::Reference => plan.decode(masks, values)?,
        Refit::Centred => plan.with_centred_refit()?.decode(masks, values)?,
    };
    let r2 = spectrum.r2(masks, values);
    let warnings = (r2 < LOW_R2)
        .then(|| LowFaithfulness {
            r2,
            unseen: None,
            levers: vec![Lever::Budget],
        })
        .into_iter()
        .collect();
    let interactions =
        interaction_values(&spectrum, options.index, options.order(plan.n_players()))?;
    let mut report = InteractionsReport::new(&interactions, plan.method(), masks.len(), r2);
    if matches!(plan, Plan::ProxySpex(_)) {
        report = report.with_refit(options.refit.name());
    }
    Ok(Decoded {
        spectrum,
        interactions,
        report,
        warnings,
    })
}

/// Reads and concatenates value files (shards, in the order given), naming the file of any
/// non-finite row.
pub fn read_value_shards(paths: &[PathBuf]) -> Result<Vec<f64>> {
    let mut all = Vec::new();
    for path in paths {
        let values = read_values(path)?;
        if let Err(e) = sparse::error::check_finite(&values) {
            return Err(Error::file(
                path,
                format!("{e} (rows counted from 0 within this file)"),
            ));
        }
        all.extend(values);
    }
    Ok(all)
}
