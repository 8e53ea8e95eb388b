//! Decoding a plan's values: the spectrum, its faithfulness on the queried masks, and the
//! reported interaction index (`interactions.json`).

use std::path::{Path, PathBuf};

use super::shard::{join_shards, IdentifiedValues, ShardIdentity};
use crate::io::read_values;
use crate::report::interactions::InteractionsReport;
use crate::sparse::indices::{interaction_values, Index, InteractionValues};
use crate::sparse::plan::{Plan, PlanFile};
use crate::sparse::proxy::{Proxied, ProxyPlan, Trees};
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

/// ProxySPEX's refit of the trees' Fourier terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Refit {
    /// The default: the trees' terms united with every single player and pair the samples
    /// afford, fitted by an l1 (or ridge) fit chosen by 5-fold cross-validation on the samples
    /// ([`crate::sparse::proxy::cv_refit`]). Keeps the pair interactions the 95 % energy cut
    /// drops. SPEX plans keep their own decoder.
    #[default]
    Cv,
    /// shapiq's: the 95 % energy cut, then ridge where the constant is a column like any other,
    /// penalised too.
    Reference,
    /// Ridge with an unpenalised constant (the columns centred): better when masks are sampled
    /// near the full model (keep probability 0.9).
    Centred,
}

impl Refit {
    /// `plan` decoding with this refit.
    pub fn applied_to(self, plan: &ProxyPlan) -> ProxyPlan {
        ProxyPlan {
            centred_refit: self == Refit::Centred,
            cv_refit: self == Refit::Cv,
            ..plan.clone()
        }
    }

    /// The refit's name in `interactions.json` (`cv`, `reference` or `centred`).
    pub fn name(self) -> &'static str {
        match self {
            Refit::Cv => "cv",
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
            refit: Refit::Cv,
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
    /// ProxySPEX's fitted trees before any refit (`None` for SPEX, or samples that cover the
    /// cube): what the held-out comparison refines the other way.
    pub trees: Option<Trees>,
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
    let (spectrum, trees) = match (plan, options.refit) {
        (Plan::Spex(_), Refit::Centred) => {
            (plan.with_centred_refit()?.decode(masks, values)?, None)
        }
        (Plan::Spex(_), _) => (plan.decode(masks, values)?, None),
        (Plan::ProxySpex(p), refit) => {
            let p = refit.applied_to(p);
            match p.proxy_spectrum(masks, values)? {
                Proxied::Exact(exact) => (exact, None),
                Proxied::Trees(trees) => (p.refine_trees(&trees, masks, values), Some(trees)),
            }
        }
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
        trees,
        interactions,
        report,
        warnings,
    })
}

/// Reads the values of the plan in `plan_dir` (`plan`, its plan.json) from `paths`, naming the
/// file of any non-finite row.
///
/// Shards written by `spex run --shard` (a [`ShardIdentity`] beside each `.npy`) may come in any
/// order: [`join_shards`] checks them against the plan and each other and orders them by their
/// rows. Plain files (other tools' `.npy`, text) are concatenated in the order given, with a warning
/// when there are several, since nothing tells their order; one file given twice is an error.
/// Shards and plain files cannot be mixed. `field` names the argument the paths came from.
pub fn read_value_shards(
    plan_dir: &Path,
    plan: &PlanFile,
    paths: &[PathBuf],
    field: &str,
) -> Result<Vec<f64>> {
    let mut identified = Vec::new();
    let mut plain = Vec::new();
    for path in paths {
        let values = read_values(path)?;
        if let Err(e) = sparse::error::check_finite(&values) {
            return Err(Error::file(
                path,
                format!("{e} (rows counted from 0 within this file)"),
            ));
        }
        match ShardIdentity::read_beside(path)? {
            Some(identity) => identified.push(IdentifiedValues {
                path: path.clone(),
                identity,
                values,
            }),
            None => plain.push((path, values)),
        }
    }
    if identified.is_empty() {
        return concat_plain(plain, field);
    }
    if !plain.is_empty() {
        let with: Vec<String> = identified
            .iter()
            .map(|s| s.path.display().to_string())
            .collect();
        let without: Vec<String> = plain.iter().map(|(p, _)| p.display().to_string()).collect();
        return Err(Error::invalid(
            field,
            format!(
                "{} carry a shard identity (the .json `spex run --shard` writes beside them) but {} do not, so spex cannot place them among the shards: pass only shards of `spex run`, or only plain files in order",
                with.join(", "),
                without.join(", ")
            ),
        ));
    }
    join_shards(plan_dir, plan, identified, field)
}

/// Plain values files, concatenated in the order given: one file given twice is an error, and
/// several files are concatenated with a warning that their order cannot be checked.
fn concat_plain(files: Vec<(&PathBuf, Vec<f64>)>, field: &str) -> Result<Vec<f64>> {
    let mut seen: Vec<(PathBuf, &PathBuf)> = Vec::with_capacity(files.len());
    for &(path, _) in &files {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == real) {
            return Err(Error::invalid(
                field,
                format!(
                    "{} is given twice (as {} and {}): plain values files are concatenated, so its rows would count twice",
                    real.display(),
                    first.display(),
                    path.display()
                ),
            ));
        }
        seen.push((real, path));
    }
    if files.len() > 1 {
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        tracing::warn!(
            "{} carry no shard identity (no .json from `spex run --shard` beside them): concatenated in the order given, which spex cannot check",
            names.join(", ")
        );
    }
    Ok(files.into_iter().flat_map(|(_, v)| v).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{write_json, write_values_npy};
    use crate::run::shard::{plan_id, Shard};
    use crate::run::Design;
    use serde_json::json;

    /// A plan of 100 masks, and a folder with its four shards written as `spex run` writes them
    /// (values-i-of-4.npy and .json) and the same values without identity (plain-i.npy).
    fn setup() -> (tempfile::TempDir, PlanFile, Vec<f64>) {
        let dir = tempfile::tempdir().unwrap();
        let plan = Design::proxyspex(100).plan(8).unwrap().to_file();
        let all: Vec<f64> = (0..plan.queries).map(|r| r as f64 / 7.0).collect();
        for index in 0..4 {
            let s = Shard { index, count: 4 };
            let values = &all[s.rows(plan.queries, 1)];
            write_values_npy(&dir.path().join(format!("{}.npy", s.stem())), values).unwrap();
            write_values_npy(&dir.path().join(format!("plain-{index}.npy")), values).unwrap();
            let id = ShardIdentity::new(
                &plan_id(&plan).unwrap(),
                (s, 1),
                plan.queries,
                values,
                json!({"value": "logprob"}),
            );
            write_json(&dir.path().join(format!("{}.json", s.stem())), &id).unwrap();
        }
        (dir, plan, all)
    }

    fn paths(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
        names.iter().map(|n| dir.join(n)).collect()
    }

    #[test]
    fn shards_are_ordered_by_their_identity_and_plain_files_by_the_caller() {
        let (dir, plan, all) = setup();
        let d = dir.path();
        let shards = [3, 1, 0, 2].map(|i| format!("values-{i}-of-4.npy"));
        let shards: Vec<&str> = shards.iter().map(String::as_str).collect();
        let got = read_value_shards(d, &plan, &paths(d, &shards), "values").unwrap();
        assert_eq!(got, all);
        let plain = ["plain-0.npy", "plain-1.npy", "plain-2.npy", "plain-3.npy"];
        assert_eq!(
            read_value_shards(d, &plan, &paths(d, &plain), "values").unwrap(),
            all
        );
        // Plain files keep the order given: reversed, their values are reversed blocks.
        let reversed: Vec<&str> = plain.iter().rev().copied().collect();
        let got = read_value_shards(d, &plan, &paths(d, &reversed), "values").unwrap();
        assert_ne!(got, all);
    }

    #[test]
    fn a_plain_file_twice_and_a_mix_of_shards_and_plain_files_are_refused() {
        let (dir, plan, _) = setup();
        let d = dir.path();
        let twice = paths(d, &["plain-0.npy", "plain-1.npy", "plain-0.npy"]);
        let e = read_value_shards(d, &plan, &twice, "values")
            .unwrap_err()
            .to_string();
        assert!(e.contains("plain-0.npy is given twice"), "{e}");

        let mixed = paths(d, &["values-0-of-4.npy", "plain-1.npy"]);
        let e = read_value_shards(d, &plan, &mixed, "held_out_values")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid `held_out_values`")
                && e.contains("values-0-of-4.npy carry a shard identity")
                && e.contains("plain-1.npy do not"),
            "{e}"
        );
    }

    #[test]
    fn a_non_finite_value_names_its_file() {
        let (dir, plan, _) = setup();
        let d = dir.path();
        write_values_npy(&d.join("nan.npy"), &[1.0, f64::NAN]).unwrap();
        let e = read_value_shards(d, &plan, &paths(d, &["nan.npy"]), "values")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nan.npy") && e.contains("row(s) 1"), "{e}");
    }
}
