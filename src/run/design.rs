//! [`Design`]: which masks to query (method, budget, degree, decoder, seed, keep probability), as
//! a plain option struct that builds the [`Plan`].

use crate::sparse::plan::Plan;
use crate::sparse::proxy::ProxyPlan;
use crate::sparse::spex::{Decoder, SpexPlan};
use crate::{Error, Result};

/// The sparse decoders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// SPEX: BCH-coded subsampling and peeling (Kang et al. 2025).
    Spex,
    /// ProxySPEX: boosted-tree proxy, about ten times fewer queries (Butler et al. 2025).
    ProxySpex,
}

/// How to design the queries.
#[derive(Clone, Debug, PartialEq)]
pub struct Design {
    /// The decoder the masks are designed for.
    pub method: Method,
    /// Most evaluations to spend; SPEX rounds down to its structured design size.
    pub budget: usize,
    /// SPEX only: largest interaction degree t the BCH code corrects (lowered to fit the budget).
    pub degree: usize,
    /// SPEX only: the singleton decoder.
    pub decoder: Decoder,
    /// Seed of every random choice in the design.
    pub seed: u64,
    /// ProxySPEX only: probability that a mask keeps each player (0.5: the whole cube uniformly).
    pub keep_probability: f64,
}

impl Design {
    /// ProxySPEX with `budget` uniform masks and seed 0: the defaults of `spex plan`.
    pub fn proxyspex(budget: usize) -> Design {
        Design {
            method: Method::ProxySpex,
            budget,
            degree: crate::sparse::spex::DEFAULT_DEGREE,
            decoder: Decoder::Soft,
            seed: 0,
            keep_probability: 0.5,
        }
    }

    /// The plan this design makes for `players` players; errors name the field at fault.
    pub fn plan(&self, players: usize) -> Result<Plan> {
        Ok(match self.method {
            Method::Spex => {
                if self.keep_probability != 0.5 {
                    return Err(Error::invalid(
                        "keep_probability",
                        "SPEX's masks are a structured design; a keep probability applies to ProxySPEX",
                    ));
                }
                Plan::Spex(
                    SpexPlan::new(players, self.budget, self.degree, self.seed)?
                        .with_decoder(self.decoder),
                )
            }
            Method::ProxySpex => Plan::ProxySpex(
                ProxyPlan::new(players, self.budget, self.seed)?
                    .with_keep_probability(self.keep_probability)?,
            ),
        })
    }
}
