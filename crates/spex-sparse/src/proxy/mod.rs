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
pub mod cv_refit;
pub mod energy;
pub mod fixed_size;
pub mod gbdt;
mod histogram;
pub mod ridge;
pub mod sampling;
pub mod tree_fourier;

use serde::{Deserialize, Serialize};

pub use cv::{ProxyGrid, MAX_TREES};

use crate::error::check_finite;
use crate::exact::exact_fourier;
use crate::memory::check_fits;
use crate::{Basis, MaskBatch, Spectrum, ValueFunction};
use crate::{Error, Result};

/// Method name used in plans and errors.
pub const METHOD: &str = "proxyspex";

/// Smallest budget accepted: 5 folds of 20 rows, so that every fold can hold a split of two
/// `min_child_samples = 20` leaves in its training part (80 rows). Over `n <= 6` players the
/// whole cube (`2^n < 100` masks) is enough: it is transformed exactly, without a proxy.
pub const MIN_BUDGET: usize = 100;

/// Most ridge penalties a plan may try (the reference tries 100).
pub const MAX_RIDGE_ALPHAS: usize = 100_000;

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
    /// existed read as 0.5. A plan whose budget covers the whole cube queries every mask once
    /// and records 0.5, whatever probability was asked for.
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
    /// Refit by [`cv_refit`] (a lasso over singles, pairs and the trees' terms, its penalty
    /// chosen on the proxy's folds) instead of the energy cut and ridge; `centred_refit` then
    /// does not apply. A decoding choice, not part of the design: never in plan.json.
    #[serde(skip)]
    pub cv_refit: bool,
}

/// What the proxy step gives: the trees' full Fourier spectrum, to refine, or the exact
/// transform of samples that cover the cube (nothing to refine).
#[derive(Clone, Debug, PartialEq)]
pub enum Proxied {
    /// The boosted trees' exact Fourier spectrum (every coefficient, before any cut).
    Trees(Trees),
    /// The exact Walsh-Hadamard transform of the whole cube.
    Exact(Spectrum),
}

/// The fitted proxy: its exact Fourier spectrum and the hyperparameters cross-validation chose
/// (the cv refit fits the trees again on part of the samples with them).
#[derive(Clone, Debug, PartialEq)]
pub struct Trees {
    /// Every Fourier coefficient of the trees, before any cut.
    pub spectrum: Spectrum,
    /// The chosen hyperparameters.
    pub params: gbdt::TreeParams,
}

/// The reference's keep probability: uniform masks.
fn uniform_keep() -> f64 {
    0.5
}

impl ProxyPlan {
    /// A plan with the reference options: `budget` masks over `n` players drawn with `seed`.
    ///
    /// Errors: `n = 0`; `budget` below [`ProxyPlan::min_budget`] ([`Error::BudgetTooSmall`]). A
    /// budget above `2^n` is clamped to `2^n` (see `n_queries`): every mask is then queried once
    /// and decoding is the exact Walsh-Hadamard transform.
    pub fn new(n: usize, budget: usize, seed: u64) -> Result<ProxyPlan> {
        if n == 0 {
            return Err(Error::invalid("n", "ProxySPEX needs at least one player"));
        }
        let minimum = Self::min_budget(n);
        if budget < minimum {
            return Err(Error::BudgetTooSmall {
                method: METHOD.into(),
                n,
                budget,
                minimum,
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
            cv_refit: false,
        })
    }

    /// The smallest budget for `n` players: [`MIN_BUDGET`], or the whole cube `2^n` when smaller.
    pub fn min_budget(n: usize) -> usize {
        MIN_BUDGET.min(sampling::cube_size(n))
    }

    /// Whether the plan queries every mask of the cube (its budget is at least `2^n`).
    pub fn covers_cube(&self) -> bool {
        self.n_queries == sampling::cube_size(self.n)
    }

    /// The same plan with each player kept with probability `p` in `(0, 1)` (see
    /// [`ProxyPlan::keep_probability`]); errors name `keep_probability`. A plan that covers the
    /// cube keeps 0.5: it queries every mask once, so no probability applies.
    pub fn with_keep_probability(mut self, p: f64) -> Result<ProxyPlan> {
        if !(p > 0.0 && p < 1.0) {
            return Err(Error::invalid(
                "keep_probability",
                format!("{p} is not a probability strictly between 0 and 1"),
            ));
        }
        if !self.covers_cube() {
            self.keep_probability = p;
        }
        Ok(self)
    }

    /// Bytes that drawing the masks and decoding their values hold at once, about: the packed
    /// masks, the set of drawn rows, the trees' three views of the masks and a fold's copy, and
    /// the values (`u128`, so that no budget overflows it).
    pub fn bytes_needed(&self) -> u128 {
        let words = self.n.div_ceil(64).max(1) as u128;
        let per_row = 24 * words + 4 * self.n as u128 + 112;
        self.n_queries as u128 * per_row
    }

    /// The masks to evaluate: `n_queries` rows, row 0 = ∅, row 1 = `[n]`, seeded; distinct and
    /// uniform at keep probability 0.5, i.i.d. Bernoulli otherwise.
    ///
    /// Errors: an inconsistent plan ([`ProxyPlan::validate`]); more memory than the machine has
    /// ([`Error::InsufficientMemory`], checked before anything is allocated).
    pub fn masks(&self) -> Result<MaskBatch> {
        self.validate()?;
        check_fits(
            self.bytes_needed(),
            || {
                format!(
                    "ProxySPEX's {} masks over {} players",
                    self.n_queries, self.n
                )
            },
            "budget",
        )?;
        Ok(if self.keep_probability == uniform_keep() {
            sampling::distinct_uniform_masks(self.n, self.n_queries, self.seed)
        } else {
            sampling::bernoulli_masks(self.n, self.n_queries, self.keep_probability, self.seed)
        })
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
        self.decode_masks(&self.masks()?, values)
    }

    /// Decodes any samples: `values[r]` is `f(masks[r])` (`[m]` values, `[m, n]` masks). Samples
    /// that cover the whole cube (a budget of at least `2^n`) are transformed exactly
    /// ([`exact_fourier`]) instead of going through the proxy.
    ///
    /// Errors: width of `masks` differs from `n`, lengths differ, fewer rows than twice the
    /// folds ([`Error::ValuesMismatch`]); non-finite values ([`Error::NonFiniteValues`]);
    /// an invalid plan ([`ProxyPlan::validate`]).
    pub fn decode_masks(&self, masks: &MaskBatch, values: &[f64]) -> Result<Spectrum> {
        Ok(match self.proxy_spectrum(masks, values)? {
            Proxied::Exact(exact) => exact,
            Proxied::Trees(trees) => self.refine_trees(&trees, masks, values),
        })
    }

    /// Steps 2 and 3 of [`ProxyPlan::decode_masks`] (checks included): the trees' full Fourier
    /// spectrum, or the exact transform when the samples cover the cube. Decoders that refine the
    /// same trees differently ([`ProxyPlan::refine`] with and without the cv refit) share it.
    pub fn proxy_spectrum(&self, masks: &MaskBatch, values: &[f64]) -> Result<Proxied> {
        self.validate()?;
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
        check_finite(values)?;
        if let Some(exact) = exact_fourier(masks, values) {
            return Ok(Proxied::Exact(exact));
        }
        if values.len() / 2 < self.grid.folds {
            return Err(Error::ValuesMismatch(format!(
                "{} samples cannot be split into {} cross-validation folds of two or more",
                values.len(),
                self.grid.folds
            )));
        }
        let x = binary_matrix::BinaryMatrix::from_masks(masks);
        let scores = cv::cross_validate(&x, values, &self.grid);
        let params = cv::best_params(&scores)
            .ok_or_else(|| Error::invalid("grid", "the hyperparameter grid is empty"))?;
        let model = gbdt::fit(&x, values, &params);
        let full = tree_fourier::ensemble_to_fourier(&model, self.n);
        Ok(Proxied::Trees(Trees {
            spectrum: full,
            params,
        }))
    }

    /// Steps 4 and 5 on fitted `trees`: [`ProxyPlan::refine`], except that the cv refit chooses
    /// its candidate honestly ([`cv_refit::fit_honest`]: the trees fitted again without the
    /// rows that judge the candidates).
    pub fn refine_trees(&self, trees: &Trees, masks: &MaskBatch, values: &[f64]) -> Spectrum {
        if self.cv_refit {
            return cv_refit::refit_honest(self, trees, masks, values);
        }
        self.refine(&trees.spectrum, masks, values)
    }

    /// Steps 4 and 5 on any proxy's Fourier spectrum `full`: the coefficients holding
    /// `energy_fraction` of its non-constant energy, refitted by ridge regression on the samples
    /// (`values[r] = f(masks[r])`). With no non-constant energy, the proxy's constant alone.
    /// With [`ProxyPlan::cv_refit`], [`cv_refit::refit`] instead.
    pub fn refine(&self, full: &Spectrum, masks: &MaskBatch, values: &[f64]) -> Spectrum {
        if self.cv_refit {
            return cv_refit::refit(self, full, masks, values);
        }
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

    /// Checks every field a hand-edited plan.json could break; errors name the field, its value
    /// and what is accepted.
    pub fn validate(&self) -> Result<()> {
        if self.n == 0 {
            return Err(Error::invalid(
                "n",
                "0 players: ProxySPEX needs at least one",
            ));
        }
        let minimum = Self::min_budget(self.n);
        if self.budget < minimum {
            return Err(Error::invalid(
                "budget",
                format!(
                    "{} is below the smallest budget for n = {}, {minimum}",
                    self.budget, self.n
                ),
            ));
        }
        let expected = self.budget.min(sampling::cube_size(self.n));
        if self.n_queries != expected {
            return Err(Error::invalid(
                "n_queries",
                format!(
                    "{} masks, but budget {} over n = {} players draws {expected}",
                    self.n_queries, self.budget, self.n
                ),
            ));
        }
        if !(self.keep_probability > 0.0 && self.keep_probability < 1.0) {
            return Err(Error::invalid(
                "keep_probability",
                format!(
                    "{} is not a probability strictly between 0 and 1",
                    self.keep_probability
                ),
            ));
        }
        self.grid.validate()?;
        if !(self.energy_fraction > 0.0 && self.energy_fraction <= 1.0) {
            return Err(Error::invalid(
                "energy_fraction",
                format!(
                    "{} is outside (0, 1]: the share of the proxy's non-constant Fourier energy kept (the reference keeps 0.95)",
                    self.energy_fraction
                ),
            ));
        }
        let (lo, hi) = (self.ridge_alpha_min, self.ridge_alpha_max);
        if !(lo > 0.0 && lo.is_finite()) {
            return Err(Error::invalid(
                "ridge_alpha_min",
                format!("{lo} is not a finite penalty > 0 (the reference's is 1e-6)"),
            ));
        }
        if !(hi >= lo && hi.is_finite()) {
            return Err(Error::invalid(
                "ridge_alpha_max",
                format!("{hi} is not a finite penalty >= ridge_alpha_min = {lo} (the reference's is 1e6)"),
            ));
        }
        if !(1..=MAX_RIDGE_ALPHAS).contains(&self.ridge_alpha_count) {
            return Err(Error::invalid(
                "ridge_alpha_count",
                format!(
                    "{} penalties: between 1 and {MAX_RIDGE_ALPHAS} are tried (the reference tries 100)",
                    self.ridge_alpha_count
                ),
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
        let masks = plan.masks()?;
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
