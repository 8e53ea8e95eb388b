//! ProxySPEX (Butler et al., NeurIPS 2025): boosted trees fitted to random ablations, their exact
//! Fourier coefficients, an energy cut and a ridge refit.
//!
//! 1. [`ProxyPlan::masks`]: `budget` distinct uniform random masks (∅ and `[n]` included).
//! 2. A gradient-boosted tree proxy ([`gbdt`]) with hyperparameters chosen by 5-fold
//!    cross-validated R^2 ([`cv`]) over [`ProxyGrid`].
//! 3. The trees' exact Fourier spectrum ([`tree_fourier`]).
//! 4. The fewest coefficients holding 95% of the non-constant energy ([`energy`]), refitted by
//!    ridge regression in the Fourier basis with the penalty chosen by leave-one-out ([`ridge`]).

pub mod binary_matrix;
pub mod cv;
pub mod energy;
pub mod gbdt;
mod histogram;
pub mod ridge;
pub mod sampling;
pub mod tree_fourier;

use serde::{Deserialize, Serialize};

pub use cv::ProxyGrid;

use crate::error::check_finite;
use crate::exact::exact_fourier;
use crate::{Basis, MaskBatch, Spectrum, ValueFunction};
use crate::{Error, Result};

/// Method name used in plans and errors.
pub const METHOD: &str = "proxyspex";

/// Smallest budget accepted: 5 folds of 20 rows, so that every fold can hold a split of two
/// `min_child_samples = 20` leaves in its training part (80 rows).
pub const MIN_BUDGET: usize = 100;

/// Everything ProxySPEX needs to regenerate its masks and decode their values (plan.json).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyPlan {
    /// Number of players.
    pub n: usize,
    /// Budget asked for (evaluations).
    pub budget: usize,
    /// Masks actually drawn: `min(budget, 2^n)` (the cube has only `2^n` distinct masks).
    pub n_queries: usize,
    /// Seed of the mask draw.
    pub seed: u64,
    /// Probability that a mask keeps each player. 0.5 (the reference's design): distinct masks,
    /// uniform over the cube. Otherwise i.i.d. Bernoulli draws, which sample the region near the
    /// full model (p > 0.5) where pruning decisions are made; plans written before this field
    /// existed read as 0.5.
    #[serde(default = "uniform_keep")]
    pub keep_probability: f64,
    /// Proxy hyperparameter grid and tree options.
    pub grid: ProxyGrid,
    /// Fraction of the non-constant Fourier energy kept before the refit.
    pub energy_fraction: f64,
    /// Ridge penalties tried: `ridge_alpha_count` values log-spaced in `[min, max]`.
    pub ridge_alpha_min: f64,
    /// Largest ridge penalty.
    pub ridge_alpha_max: f64,
    /// Number of ridge penalties.
    pub ridge_alpha_count: usize,
    /// Refit with an unpenalised constant ([`ridge::ridge_loo_centred`]) instead of the
    /// reference's ridge. A decoding choice, not part of the design: never in plan.json.
    #[serde(skip)]
    pub centred_refit: bool,
}

/// The reference's keep probability: uniform masks.
fn uniform_keep() -> f64 {
    0.5
}

impl ProxyPlan {
    /// A plan with the reference options: `budget` masks over `n` players drawn with `seed`.
    ///
    /// Errors: `n = 0`; `budget < MIN_BUDGET` ([`Error::BudgetTooSmall`]). A budget above `2^n`
    /// is clamped to `2^n` (see `n_queries`).
    pub fn new(n: usize, budget: usize, seed: u64) -> Result<ProxyPlan> {
        if n == 0 {
            return Err(Error::invalid("n", "ProxySPEX needs at least one player"));
        }
        if budget < MIN_BUDGET {
            return Err(Error::BudgetTooSmall {
                method: METHOD.into(),
                n,
                budget,
                minimum: MIN_BUDGET,
            });
        }
        Ok(ProxyPlan {
            n,
            budget,
            n_queries: budget.min(sampling::cube_size(n)),
            seed,
            keep_probability: uniform_keep(),
            grid: ProxyGrid::default(),
            energy_fraction: 0.95,
            ridge_alpha_min: 1e-6,
            ridge_alpha_max: 1e6,
            ridge_alpha_count: 100,
            centred_refit: false,
        })
    }

    /// The same plan with each player kept with probability `p` in `(0, 1)` (see
    /// [`ProxyPlan::keep_probability`]); errors name `keep_probability`.
    pub fn with_keep_probability(mut self, p: f64) -> Result<ProxyPlan> {
        if !(p > 0.0 && p < 1.0) {
            return Err(Error::invalid(
                "keep_probability",
                format!("{p} is not a probability strictly between 0 and 1"),
            ));
        }
        self.keep_probability = p;
        Ok(self)
    }

    /// The masks to evaluate: `n_queries` rows, row 0 = ∅, row 1 = `[n]`, seeded; distinct and
    /// uniform at keep probability 0.5, i.i.d. Bernoulli otherwise.
    pub fn masks(&self) -> MaskBatch {
        if self.keep_probability == uniform_keep() {
            sampling::distinct_uniform_masks(self.n, self.n_queries, self.seed)
        } else {
            sampling::bernoulli_masks(self.n, self.n_queries, self.keep_probability, self.seed)
        }
    }

    /// Number of evaluations the plan needs.
    pub fn n_queries(&self) -> usize {
        self.n_queries
    }

    /// Decodes `values` (`[n_queries]`, one per row of [`Self::masks`]) into a Fourier spectrum.
    pub fn decode(&self, values: &[f64]) -> Result<Spectrum> {
        if values.len() != self.n_queries {
            return Err(Error::ValuesMismatch(format!(
                "the plan has {} masks but {} values were given",
                self.n_queries,
                values.len()
            )));
        }
        self.decode_masks(&self.masks(), values)
    }

    /// Decodes any samples: `values[r]` is `f(masks[r])` (`[m]` values, `[m, n]` masks). Samples
    /// that cover the whole cube once (a budget of at least `2^n`) are transformed exactly
    /// ([`exact_fourier`]) instead of going through the proxy.
    ///
    /// Errors: width of `masks` differs from `n`, lengths differ, fewer rows than twice the
    /// folds ([`Error::ValuesMismatch`]); non-finite values ([`Error::NonFiniteValues`]);
    /// an invalid grid ([`Error::InvalidArgument`]).
    pub fn decode_masks(&self, masks: &MaskBatch, values: &[f64]) -> Result<Spectrum> {
        self.validate_options()?;
        if masks.n_players() != self.n {
            return Err(Error::ValuesMismatch(format!(
                "masks have {} players but the plan has n = {}",
                masks.n_players(),
                self.n
            )));
        }
        if masks.len() != values.len() {
            return Err(Error::ValuesMismatch(format!(
                "{} masks but {} values",
                masks.len(),
                values.len()
            )));
        }
        if values.len() < 2 * self.grid.folds {
            return Err(Error::ValuesMismatch(format!(
                "{} samples cannot be split into {} cross-validation folds of two or more",
                values.len(),
                self.grid.folds
            )));
        }
        check_finite(values)?;
        if let Some(exact) = exact_fourier(masks, values) {
            return Ok(exact);
        }
        let x = binary_matrix::BinaryMatrix::from_masks(masks);
        let scores = cv::cross_validate(&x, values, &self.grid);
        let params = cv::best_params(&scores)
            .ok_or_else(|| Error::invalid("grid", "the hyperparameter grid is empty"))?;
        let model = gbdt::fit(&x, values, &params);
        let full = tree_fourier::ensemble_to_fourier(&model, self.n);
        Ok(self.refine(&full, masks, values))
    }

    /// Steps 4 and 5 on any proxy's Fourier spectrum `full`: the coefficients holding
    /// `energy_fraction` of its non-constant energy, refitted by ridge regression on the samples
    /// (`values[r] = f(masks[r])`). With no non-constant energy, the proxy's constant alone.
    pub fn refine(&self, full: &Spectrum, masks: &MaskBatch, values: &[f64]) -> Spectrum {
        let support = energy::energy_support(full, self.energy_fraction);
        if support.len() == 1 {
            // No non-constant energy: the trees' constant is the answer (a ridge would shrink it).
            let constant = full.get(&support[0]);
            return Spectrum::from_terms(
                self.n,
                Basis::Fourier,
                support.into_iter().map(|s| (s, constant)),
            );
        }
        let alphas = ridge::log_grid(
            self.ridge_alpha_min,
            self.ridge_alpha_max,
            self.ridge_alpha_count,
        );
        let fit = if self.centred_refit {
            ridge::ridge_loo_centred(masks, &support, values, &alphas)
        } else {
            ridge::ridge_loo(masks, &support, values, &alphas)
        };
        Spectrum::from_terms(
            self.n,
            Basis::Fourier,
            support.into_iter().zip(fit.coefficients),
        )
    }

    /// Checks the options a hand-edited plan.json could break.
    fn validate_options(&self) -> Result<()> {
        let g = &self.grid;
        if g.max_depth.is_empty() || g.n_trees.is_empty() || g.learning_rate.is_empty() {
            return Err(Error::invalid(
                "grid",
                "max_depth, n_trees and learning_rate each need at least one value",
            ));
        }
        if g.max_depth.contains(&0) || g.n_trees.contains(&0) {
            return Err(Error::invalid("grid", "max_depth and n_trees must be >= 1"));
        }
        if g.learning_rate
            .iter()
            .any(|lr| !(lr.is_finite() && *lr > 0.0))
        {
            return Err(Error::invalid(
                "grid.learning_rate",
                "must be finite and > 0",
            ));
        }
        if g.num_leaves < 2 || g.min_child_samples == 0 || g.folds < 2 {
            return Err(Error::invalid(
                "grid",
                "num_leaves >= 2, min_child_samples >= 1 and folds >= 2 are required",
            ));
        }
        if !(self.energy_fraction > 0.0 && self.energy_fraction <= 1.0) {
            return Err(Error::invalid("energy_fraction", "must be in (0, 1]"));
        }
        let (lo, hi) = (self.ridge_alpha_min, self.ridge_alpha_max);
        if !(lo > 0.0 && hi >= lo && hi.is_finite()) || self.ridge_alpha_count == 0 {
            return Err(Error::invalid(
                "ridge_alpha_min/max/count",
                "need 0 < min <= max < inf and count >= 1",
            ));
        }
        Ok(())
    }
}

/// Builder for a one-shot ProxySPEX run on a [`ValueFunction`].
#[derive(Clone, Debug)]
pub struct ProxySpex {
    n: usize,
    budget: usize,
    seed: u64,
}

impl ProxySpex {
    /// ProxySPEX over `n` players with budget 1000 and seed 0.
    pub fn new(n: usize) -> Self {
        ProxySpex {
            n,
            budget: 1000,
            seed: 0,
        }
    }

    /// Sets the number of evaluations.
    pub fn budget(mut self, budget: usize) -> Self {
        self.budget = budget;
        self
    }

    /// Sets the seed of the mask draw.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The plan this builder describes.
    pub fn plan(&self) -> Result<ProxyPlan> {
        ProxyPlan::new(self.n, self.budget, self.seed)
    }

    /// Queries `f` on the plan's masks in one batch and decodes: the Fourier spectrum of `f`.
    pub fn explain(&self, f: &mut impl ValueFunction) -> Result<Spectrum> {
        if f.n_players() != self.n {
            return Err(Error::invalid(
                "n",
                format!(
                    "ProxySPEX was set up for {} players but the value function has {}",
                    self.n,
                    f.n_players()
                ),
            ));
        }
        let plan = self.plan()?;
        let masks = plan.masks();
        let values = f.values(&masks)?;
        if values.len() != masks.len() {
            return Err(Error::ValuesMismatch(format!(
                "the value function returned {} values for {} masks",
                values.len(),
                masks.len()
            )));
        }
        plan.decode_masks(&masks, &values)
    }
}
