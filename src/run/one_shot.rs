//! The one-shot job behind `spex heads` and `spex tokens`: plan (or check the plan in the output
//! folder), evaluate every mask resumably, check the decoded spectrum on unseen masks, decode,
//! and write `interactions.json` and `spectrum.json`.

use std::path::PathBuf;

use serde_json::Value;

use super::compare::compare;
use super::decode::{decode, DecodeOptions, Decoded};
use super::design::Design;
use super::evaluate::evaluate_stored;
use super::held_out::{evaluate_held_out, held_out_count};
use super::plan_dir::{check_existing_plan, create_dir, plan_identity, write_or_check_plan};
use super::shard::Shard;
use crate::io::{check_writable_dir, write_json, write_values_npy};
use crate::progress::Watch;
use crate::report::comparison::Comparison;
use crate::report::spectrum_file::SpectrumFile;
use crate::sparse::indices::{interaction_values, InteractionValues};
use crate::sparse::memory::check_fits;
use crate::sparse::plan::Plan;
use crate::sparse::{MaskBatch, ValueFunction};
use crate::Result;

/// What every one-shot job shares: the design, the index and the output folder.
#[derive(Clone, Debug)]
pub struct OneShotOptions {
    /// The query design.
    pub design: Design,
    /// The index reported and ProxySPEX's refit.
    pub decode: DecodeOptions,
    /// Output folder (created if missing); the same job run again there resumes.
    pub out: PathBuf,
    /// Unseen masks that check the decoded spectrum out of sample (`None`: a tenth of the budget;
    /// none when the plan covers every mask; `Some(0)` skips the check).
    pub held_out: Option<usize>,
}

/// A finished one-shot run.
pub struct OneShot {
    /// The plan.
    pub plan: Plan,
    /// Its masks `[m, n]`.
    pub masks: MaskBatch,
    /// The decoded spectrum and the reported index.
    pub decoded: Decoded,
    /// The reported index up to order 2: the pictures' nodes and edges.
    pub pairs: InteractionValues,
    /// Every method on the unseen masks (`None` without a held-out check).
    pub comparison: Option<Comparison>,
}

impl OneShot {
    /// `R^2 on the queried masks X, on N unseen masks Y` (the second part when checked).
    pub fn faithfulness(&self) -> String {
        let report = &self.decoded.report;
        let mut text = format!("R^2 on the queried masks {:.4}", report.r2_queried);
        if let Some(r2) = report.r2_held_out {
            text += &format!(", on {} unseen masks {r2:.4}", report.held_out);
        }
        text
    }
}

/// What a one-shot job over `n` players checks before its first evaluation, and returns the plan:
/// the index and its order, the design and its size against the memory available (the plan's
/// masks and the held-out check's), and the output folder (created, writable, holding no other
/// plan).
pub fn check(options: &OneShotOptions, n: usize) -> Result<Plan> {
    options.decode.check()?;
    let plan = options.design.plan(n)?;
    check_fits(
        plan.bytes_needed(),
        || {
            format!(
                "{}'s {} masks over {n} players",
                plan.method(),
                plan.n_queries()
            )
        },
        "budget",
    )?;
    let count = held_out_count(options.held_out, plan.n_queries(), n);
    let words = n.div_ceil(64).max(1) as u128;
    check_fits(
        count as u128 * (8 * words + n as u128 + 24),
        || format!("the held-out check's {count} unseen masks over {n} players"),
        "held_out",
    )?;
    let out = options.out.as_path();
    create_dir(out)?;
    check_writable_dir(out)?;
    check_existing_plan(out, &plan.to_file())?;
    Ok(plan)
}

/// Plans `options.design` over `f`'s players in `options.out` (or checks the plan there),
/// evaluates every mask through `f`, `per_batch` masks per call, into `out/values.log` (header:
/// `identity` plus the plan), writes `values.npy`, evaluates the unseen masks of the held-out check
/// (`held_out.log`), decodes, and writes `interactions.json` (with both R^2) and `spectrum.json`,
/// and with unseen masks `comparison.json` (the default decoder, the reference ProxySPEX and the
/// baselines on them; energy splits by `group_of`, a player's layer, when given). `watch` is told
/// each stored batch and may stop the job between two ([`Error::Interrupted`](crate::Error)).
pub fn one_shot(
    options: &OneShotOptions,
    f: &mut impl ValueFunction,
    mut identity: Value,
    per_batch: usize,
    group_of: Option<&dyn Fn(u32) -> usize>,
    watch: &mut dyn Watch,
) -> Result<OneShot> {
    let plan = check(options, f.n_players())?;
    let out = options.out.as_path();
    let file = plan.to_file();
    let masks = plan.masks()?;
    write_or_check_plan(out, &file, &masks)?;
    tracing::info!(
        "{}: {} masks over {} players",
        plan.method(),
        masks.len(),
        f.n_players()
    );
    let shard = Shard::WHOLE;
    let base_identity = identity.clone();
    if let Some(map) = identity.as_object_mut() {
        map.insert("plan".into(), plan_identity(&file)?);
        map.insert("shard".into(), Value::String(shard.to_string()));
    }
    let stem = shard.stem();
    let store = out.join(format!("{stem}.log"));
    let values = evaluate_stored(
        f,
        &masks,
        shard.rows(masks.len(), per_batch),
        &store,
        &identity,
        per_batch,
        watch,
    )?;
    write_values_npy(&out.join(format!("{stem}.npy")), &values)?;
    let count = held_out_count(options.held_out, masks.len(), f.n_players());
    let design = &options.design;
    let held_out = (count > 0)
        .then(|| {
            let draw = (count, design.keep_probability, design.seed);
            evaluate_held_out(out, f, draw, &base_identity, per_batch, watch)
        })
        .transpose()?;
    let mut decoded = decode(&plan, &masks, &values, &options.decode)?;
    let mut comparison = None;
    if let Some(h) = &held_out {
        let (r2, low) = h.check(&decoded.spectrum, options.decode.reference_refit(&plan));
        decoded.report = decoded.report.with_held_out(r2, count);
        decoded.warnings.extend(low);
        let judged = compare(
            &plan,
            options.decode.refit,
            &decoded,
            (&masks, &values),
            h,
            group_of,
        )?;
        write_json(&out.join("comparison.json"), &judged)?;
        comparison = Some(judged);
    }
    write_json(&out.join("interactions.json"), &decoded.report)?;
    write_json(
        &out.join("spectrum.json"),
        &SpectrumFile::new(&decoded.spectrum),
    )?;
    let pairs = interaction_values(&decoded.spectrum, options.decode.index, 2)?;
    Ok(OneShot {
        plan,
        masks,
        decoded,
        pairs,
        comparison,
    })
}
