//! [`Plan`]: which masks a decoder needs, with every parameter needed to decode them later.
//!
//! A plan is written as `plan.json` next to its `masks.npy`, so that the masks can be evaluated
//! anywhere (another machine, a cluster job) and decoded afterwards by `spex solve`.

use serde::{Deserialize, Serialize};

use super::proxy::ProxyPlan;
use super::spex::SpexPlan;
use super::{MaskBatch, Spectrum};
use crate::{Error, Result};

/// Version of the `plan.json` layout; bumped when a field changes meaning.
pub const PLAN_FORMAT: u32 = 1;

/// A decoder's query design, tagged by method in JSON (`"method": "spex" | "proxyspex"`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "method")]
pub enum Plan {
    /// SPEX: BCH-coded structured subsampling, decoded by peeling.
    #[serde(rename = "spex")]
    Spex(SpexPlan),
    /// ProxySPEX: uniform random masks, decoded through a boosted-tree proxy.
    #[serde(rename = "proxyspex")]
    ProxySpex(ProxyPlan),
}

/// `plan.json`: the plan plus the format and crate versions that wrote it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanFile {
    /// [`PLAN_FORMAT`] of the writer.
    pub format: u32,
    /// Version of spex that wrote the file.
    pub spex_version: String,
    /// Number of players (mask width).
    pub n_players: usize,
    /// Number of masks (rows of `masks.npy`, values expected by `spex solve`).
    pub queries: usize,
    /// The design itself.
    #[serde(flatten)]
    pub plan: Plan,
}

impl Plan {
    /// The method's name as the CLI spells it.
    pub fn method(&self) -> &'static str {
        match self {
            Plan::Spex(_) => "spex",
            Plan::ProxySpex(_) => "proxyspex",
        }
    }

    /// Number of players `n`.
    pub fn n_players(&self) -> usize {
        match self {
            Plan::Spex(p) => p.n,
            Plan::ProxySpex(p) => p.n,
        }
    }

    /// Number of masks the decoder needs values for.
    pub fn n_queries(&self) -> usize {
        match self {
            Plan::Spex(p) => p.n_queries(),
            Plan::ProxySpex(p) => p.n_queries(),
        }
    }

    /// The masks to evaluate, `[m, n]`, in the order the decoder expects their values.
    pub fn masks(&self) -> Result<MaskBatch> {
        match self {
            Plan::Spex(p) => p.masks(),
            Plan::ProxySpex(p) => Ok(p.masks()),
        }
    }

    /// Decodes one value per mask of [`Plan::masks`] into a Fourier spectrum.
    pub fn decode(&self, masks: &MaskBatch, values: &[f64]) -> Result<Spectrum> {
        if masks.n_players() != self.n_players() {
            return Err(Error::ValuesMismatch(format!(
                "the masks have {} players but the plan is for n = {}",
                masks.n_players(),
                self.n_players()
            )));
        }
        match self {
            Plan::Spex(p) => p.decode(values),
            Plan::ProxySpex(p) => p.decode_masks(masks, values),
        }
    }

    /// The plan decoding with ProxySPEX's centred refit (an unpenalised constant); an error
    /// naming `refit` for SPEX, whose decoder has no such refit.
    pub fn with_centred_refit(&self) -> Result<Plan> {
        match self {
            Plan::Spex(_) => Err(Error::invalid(
                "refit",
                "the centred refit is ProxySPEX's; SPEX decodes by peeling",
            )),
            Plan::ProxySpex(p) => Ok(Plan::ProxySpex(ProxyPlan {
                centred_refit: true,
                ..p.clone()
            })),
        }
    }

    /// Wraps the plan with its format header for `plan.json`.
    pub fn to_file(&self) -> PlanFile {
        PlanFile {
            format: PLAN_FORMAT,
            spex_version: env!("CARGO_PKG_VERSION").to_string(),
            n_players: self.n_players(),
            queries: self.n_queries(),
            plan: self.clone(),
        }
    }
}

impl PlanFile {
    /// Checks the header against the plan it carries; `source` names the file in errors.
    pub fn validate(&self, source: &std::path::Path) -> Result<()> {
        if self.format != PLAN_FORMAT {
            return Err(Error::file(
                source,
                format!(
                    "plan format {} is not supported (this spex reads format {PLAN_FORMAT})",
                    self.format
                ),
            ));
        }
        if self.n_players != self.plan.n_players() || self.queries != self.plan.n_queries() {
            return Err(Error::file(
                source,
                format!(
                    "header says n_players = {}, queries = {} but the plan gives n = {}, {} queries",
                    self.n_players,
                    self.queries,
                    self.plan.n_players(),
                    self.plan.n_queries()
                ),
            ));
        }
        Ok(())
    }
}
