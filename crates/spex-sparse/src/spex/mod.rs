//! SPEX (Kang et al., ICML 2025): sparse Fourier recovery of `f: {0,1}^n -> R` from structured
//! samples.
//!
//! Each of `C = 3` groups hashes the frequencies `k` into `2^b` bins through a seeded random
//! matrix `M_c` (`[n, b]` bits); `P` delays taken from a shortened BCH code's parity part make
//! the signs of a singleton bin spell out the codeword of its index, which syndrome decoding
//! recovers. Peeling found coefficients out of the other groups' bins resolves collisions.
//!
//! - [`SpexPlan`]: the design (budget rule, masks, decoding options); serialisable to `plan.json`.
//! - [`Spex`]: the one-call builder for library users.

mod bch;
mod decode;
mod design;
mod fwht;
mod gf2m;

pub use bch::BchParams;
pub use design::{Decoder, SpexPlan, DEFAULT_DEGREE, GROUPS, MAX_BITS, MAX_GROUPS, MIN_BITS};

use crate::{Error, Result};
use crate::{Spectrum, ValueFunction};

impl SpexPlan {
    /// Decodes `values` (`[n_queries]`, one per mask of [`SpexPlan::masks`], same order) into a
    /// [`crate::Basis::Fourier`] spectrum.
    ///
    /// Uses the plan's [`Decoder`] and, when `refit` is on (the default), a least-squares refit of
    /// the found coefficients on all samples.
    pub fn decode(&self, values: &[f64]) -> Result<Spectrum> {
        decode::decode(self, values)
    }
}

/// Builder: `Spex::new(n).budget(b).degree(t).seed(s).decoder(d).explain(&mut f)`.
#[derive(Clone, Debug)]
pub struct Spex {
    n: usize,
    budget: Option<usize>,
    degree: usize,
    seed: u64,
    decoder: Decoder,
    refit: bool,
}

impl Spex {
    /// SPEX over `n` players: degree bound 5, seed 0, soft decoder, refit on; a budget is required.
    pub fn new(n: usize) -> Self {
        Spex {
            n,
            budget: None,
            degree: DEFAULT_DEGREE,
            seed: 0,
            decoder: Decoder::default(),
            refit: true,
        }
    }

    /// The most evaluations of the value function to spend.
    pub fn budget(mut self, budget: usize) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The degree bound `t` (highest interaction order found; lowered to fit the budget).
    pub fn degree(mut self, t: usize) -> Self {
        self.degree = t;
        self
    }

    /// The seed of the subsampling matrices.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The singleton decoder.
    pub fn decoder(mut self, decoder: Decoder) -> Self {
        self.decoder = decoder;
        self
    }

    /// Whether to refit the found coefficients by least squares on all samples.
    pub fn refit(mut self, refit: bool) -> Self {
        self.refit = refit;
        self
    }

    /// The plan these settings give.
    pub fn plan(&self) -> Result<SpexPlan> {
        let budget = self.budget.ok_or_else(|| {
            Error::invalid("budget", "SPEX needs a budget (number of evaluations)")
        })?;
        Ok(SpexPlan::new(self.n, budget, self.degree, self.seed)?
            .with_decoder(self.decoder)
            .with_refit(self.refit))
    }

    /// Plans, queries `f` once with all `n_queries` masks, and decodes its Fourier spectrum
    /// (exactly, by the Walsh-Hadamard transform, when the masks cover the whole cube).
    pub fn explain(&self, f: &mut impl ValueFunction) -> Result<Spectrum> {
        if f.n_players() != self.n {
            return Err(Error::invalid(
                "value function",
                format!(
                    "it has {} players but SPEX was set up for n = {}",
                    f.n_players(),
                    self.n
                ),
            ));
        }
        let plan = self.plan()?;
        let masks = plan.masks()?;
        let values = f.values(&masks)?;
        if values.len() == masks.len() {
            crate::error::check_finite(&values)?;
            // Masks that happen to cover the whole cube are transformed exactly.
            if let Some(exact) = crate::exact::exact_fourier(&masks, &values) {
                return Ok(exact);
            }
        }
        plan.decode(&values)
    }
}
