//! The head attribution job (`spex heads`): which heads, and which pairs of heads, drive a
//! model's score on a task. The one-shot job over the head value function, then the
//! head-interaction graph: `heads.{json,dot,svg,html}` beside `interactions.json` and
//! `spectrum.json`.

use std::path::Path;

use super::head_values::HeadValues;
use super::one_shot::{one_shot, OneShot, OneShotOptions};
use crate::io::{write_json, write_text};
use crate::progress::Watch;
use crate::report::head_graph::HeadGraph;
use crate::report::page_section::{prune_fragment, section, PRUNE};
use crate::sparse::{MaskBatch, Spectrum};
use crate::Result;

/// A finished head attribution.
pub struct HeadsRun {
    /// The decoded one-shot run.
    pub done: OneShot,
    /// The head-interaction graph written as heads.json.
    pub graph: HeadGraph,
}

/// Runs the one-shot job over `hv`'s heads in `options.out` (resumable) and writes the graph with
/// the `top_edges` strongest pairs drawn; `watch` is told each stored batch and may stop the run.
pub fn heads(
    hv: &HeadValues,
    options: &OneShotOptions,
    top_edges: usize,
    watch: &mut dyn Watch,
) -> Result<HeadsRun> {
    let players = &hv.players;
    tracing::info!(
        "players: {} heads (layers {players}, {} per layer); {} question(s) per mask",
        players.n(),
        players.heads(),
        hv.task.items.len()
    );
    let scorer = hv.value_scorer()?;
    let mut f = hv.value_function(&scorer);
    let per_layer = players.heads() as u32;
    let layer_of = |p: u32| (p / per_layer.max(1)) as usize;
    let done = one_shot(
        options,
        &mut f,
        hv.identity(&[]),
        hv.per_batch(),
        Some(&layer_of),
        watch,
    )?;
    let graph = HeadGraph::new(&done.pairs, players.layers(), players.heads(), top_edges);
    let title = format!(
        "{} on {} ({}): head interactions",
        hv.model_label, hv.task.name, hv.kind
    );
    let summary = vec![
        format!(
            "value: {} over {} question(s), {} ablation",
            hv.kind,
            hv.task.items.len(),
            hv.ablation.label()
        ),
        format!(
            "{}: {} masks, {}",
            done.plan.method(),
            done.masks.len(),
            done.faithfulness()
        ),
        format!(
            "decoded f(all heads kept) = {:.4}, f(all removed) = {:.4}",
            all_kept(&done.decoded.spectrum),
            graph.baseline_value
        ),
    ];
    let out = &options.out;
    write_json(&out.join("heads.json"), &graph)?;
    write_text(&out.join("heads.dot"), &graph.to_dot())?;
    write_text(&out.join("heads.svg"), &graph.to_svg(&title))?;
    let mut sections: Vec<String> = done.comparison.iter().map(|c| c.to_html()).collect();
    sections.push(prune_section(out));
    write_text(
        &out.join("heads.html"),
        &graph.to_html(&title, &summary, &sections),
    )?;
    Ok(HeadsRun { done, graph })
}

/// The pruning curves of an earlier `spex prune` in `dir` (its prune.svg) as heads.html's prune
/// section, or the empty section that `spex prune` fills.
pub(super) fn prune_section(dir: &Path) -> String {
    let svg = std::fs::read_to_string(dir.join("prune.svg")).ok();
    section(PRUNE, &svg.map(|s| prune_fragment(&s)).unwrap_or_default())
}

/// The spectrum's value with every player kept.
fn all_kept(spectrum: &Spectrum) -> f64 {
    let mut all = MaskBatch::new(spectrum.n_players());
    all.push_bools(&vec![true; spectrum.n_players()]);
    spectrum.eval(&all)[0]
}
