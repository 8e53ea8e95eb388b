//! [`Plan`]: which masks a decoder needs, with every parameter needed to decode them later.
//!
//! A plan is written as `plan.json` next to its `masks.npy`, so that the masks can be evaluated
//! anywhere (another machine, a cluster job) and decoded afterwards by `spex solve`.

use serde::{Deserialize, Serialize};

use super::proxy::ProxyPlan;
use super::spex::SpexPlan;
use super::{MaskBatch, Spectrum};
use crate::error::check_finite;
use crate::exact::exact_fourier;
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

    /// Checks every field a hand-edited plan.json could break; errors name the field.
    pub fn validate(&self) -> Result<()> {
        match self {
            Plan::Spex(p) => p.validate(),
            Plan::ProxySpex(p) => p.validate(),
        }
    }

    /// Bytes that building the masks and decoding their values hold at once, about.
    pub fn bytes_needed(&self) -> u128 {
        match self {
            Plan::Spex(p) => p.bytes_needed(),
            Plan::ProxySpex(p) => p.bytes_needed(),
        }
    }

    /// The masks to evaluate, `[m, n]`, in the order the decoder expects their values; an error
    /// before anything is allocated when they would not fit in memory.
    pub fn masks(&self) -> Result<MaskBatch> {
        match self {
            Plan::Spex(p) => p.masks(),
            Plan::ProxySpex(p) => p.masks(),
        }
    }

    /// Decodes one value per mask of [`Plan::masks`] into a Fourier spectrum. Masks that cover
    /// the whole cube (a budget of at least `2^n`) are transformed exactly, whatever the method.
    pub fn decode(&self, masks: &MaskBatch, values: &[f64]) -> Result<Spectrum> {
        self.validate()?;
        if masks.n_players() != self.n_players() {
            return Err(Error::ValuesMismatch(format!(
                "the masks have {} players but the plan is for n = {}",
                masks.n_players(),
                self.n_players()
            )));
        }
        if masks.len() == values.len() {
            check_finite(values)?;
            if let Some(exact) = exact_fourier(masks, values) {
                return Ok(exact);
            }
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

    /// The plan decoding with ProxySPEX's cross-validated refit ([`crate::proxy::cv_refit`]); an
    /// error naming `refit` for SPEX, whose decoder has no such refit.
    pub fn with_cv_refit(&self) -> Result<Plan> {
        match self {
            Plan::Spex(_) => Err(Error::invalid(
                "refit",
                "the cv refit is ProxySPEX's; SPEX decodes by peeling",
            )),
            Plan::ProxySpex(p) => Ok(Plan::ProxySpex(ProxyPlan {
                cv_refit: true,
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
    /// Checks the header against the plan it carries, and every field of the plan; errors name
    /// the file `source`, the field, its value and what is accepted.
    pub fn validate(&self, source: &std::path::Path) -> Result<()> {
        self.plan.validate().map_err(|e| match e {
            Error::InvalidArgument { field, reason } => {
                Error::file(source, format!("field `{field}`: {reason}"))
            }
            other => Error::file(source, other),
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::{ProxyPlan, ProxySpex};
    use crate::spex::Spex;
    use crate::value::FnValue;
    use crate::{Basis, Subset};

    /// `f = 1 + 2 x_0 - 3 x_0 x_{n-1}` on a batch of masks.
    fn game(n: usize) -> impl FnMut(&MaskBatch) -> Vec<f64> {
        move |m: &MaskBatch| {
            (0..m.len())
                .map(|r| {
                    let x = |i: usize| f64::from(u8::from(m.get(r, i)));
                    1.0 + 2.0 * x(0) - 3.0 * x(0) * x(n - 1)
                })
                .collect()
        }
    }

    #[track_caller]
    fn assert_exact(spectrum: &Spectrum, n: usize) {
        let moebius = spectrum.to_moebius();
        assert_eq!(moebius.basis(), Basis::Moebius);
        let close = |s: Subset, v: f64| assert!((moebius.get(&s) - v).abs() < 1e-9, "{s:?}");
        close(Subset::empty(), 1.0);
        if n == 1 {
            close(Subset::singleton(0), -1.0);
        } else {
            close(Subset::singleton(0), 2.0);
            close(Subset::from_indices([0, n as u32 - 1]), -3.0);
        }
    }

    #[test]
    fn proxyspex_over_three_players_or_fewer_is_the_exact_transform() {
        for n in 1..=3 {
            let plan = ProxyPlan::new(n, 100, 1).unwrap();
            assert_eq!(plan.n_queries(), 1 << n);
            let spectrum = ProxySpex::new(n)
                .budget(100)
                .explain(&mut FnValue::new(n, game(n)))
                .unwrap();
            assert_exact(&spectrum, n);
            // The whole cube is the smallest budget that works below 100 masks.
            assert!(ProxyPlan::new(n, 1 << n, 1).is_ok());
            match ProxyPlan::new(n, (1 << n) - 1, 1) {
                Err(Error::BudgetTooSmall { minimum, .. }) => assert_eq!(minimum, 1 << n),
                other => panic!("expected BudgetTooSmall, got {other:?}"),
            }
        }
        // A keep probability does not apply when every mask is queried.
        let near_full = ProxyPlan::new(3, 100, 1)
            .and_then(|p| p.with_keep_probability(0.9))
            .unwrap();
        assert_eq!(near_full.keep_probability, 0.5);
        assert!(ProxyPlan::new(3, 100, 1)
            .unwrap()
            .with_keep_probability(1.5)
            .is_err());
    }

    #[test]
    fn spex_masks_that_cover_the_cube_are_transformed_exactly() {
        let n = 3;
        let spectrum = Spex::new(n)
            .budget(1000)
            .seed(2)
            .explain(&mut FnValue::new(n, game(n)))
            .unwrap();
        assert_exact(&spectrum, n);
    }

    #[test]
    fn budgets_beyond_memory_are_refused_before_allocating() {
        for plan in [
            Plan::ProxySpex(ProxyPlan::new(270, 10_000_000_000, 0).unwrap()),
            Plan::ProxySpex(ProxyPlan::new(270, usize::MAX, 0).unwrap()),
            Plan::Spex(crate::spex::SpexPlan::new(270, usize::MAX, 5, 0).unwrap()),
        ] {
            match plan.masks() {
                Err(Error::InsufficientMemory {
                    field,
                    needed,
                    available,
                    ..
                }) => {
                    assert_eq!(field, "budget");
                    assert!(needed > available, "{needed} vs {available}");
                }
                other => panic!("expected InsufficientMemory, got {other:?}"),
            }
        }
    }

    #[test]
    fn hand_edited_plans_name_the_file_and_the_field() {
        let plan = Plan::ProxySpex(ProxyPlan::new(8, 200, 0).unwrap());
        let path = std::path::Path::new("runs/plan.json");
        type Edit = (&'static str, fn(&mut ProxyPlan));
        let edits: [Edit; 6] = [
            ("energy_fraction", |p| p.energy_fraction = 2.0),
            ("ridge_alpha_count", |p| p.ridge_alpha_count = 0),
            ("ridge_alpha_min", |p| p.ridge_alpha_min = -1.0),
            ("grid.folds", |p| p.grid.folds = 0),
            ("grid.n_trees", |p| p.grid.n_trees.clear()),
            ("n_queries", |p| p.n_queries = usize::MAX),
        ];
        for (field, edit) in edits {
            let mut file = plan.to_file();
            if let Plan::ProxySpex(p) = &mut file.plan {
                edit(p);
            }
            let err = file.validate(path).unwrap_err().to_string();
            assert!(
                err.contains("runs/plan.json") && err.contains(&format!("field `{field}`")),
                "{field}: {err}"
            );
        }
        let mut spex = crate::spex::SpexPlan::new(20, 1000, 5, 4).unwrap();
        spex.groups = usize::MAX;
        let err = Plan::Spex(spex.clone()).to_file().validate(path);
        assert!(err.unwrap_err().to_string().contains("field `groups`"));
        assert_eq!(spex.n_queries(), usize::MAX, "saturates, never overflows");
        spex.groups = 3;
        spex.t = usize::MAX;
        assert!(Plan::Spex(spex).validate().is_err());
    }
}
