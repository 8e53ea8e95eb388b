//! Layer-group sweeps (`spex heads --groups 0-2,14-16,27-29`): each group of consecutive layers
//! is its own game over its heads, run one after the other in `OUT/layers-A-B/` (a `spex heads`
//! folder each, resumable on its own), with the model, the questions and the ablation loaded once;
//! then `OUT/groups.json` and `OUT/groups.html` put the groups side by side. A group is sharded
//! like any run: `spex plan --players N`, then `spex run --layers A-B --shard i/K`.

use std::fmt::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::head_values::HeadValues;
use super::heads::{heads, HeadsRun};
use super::one_shot::{check, OneShotOptions};
use crate::io::{write_json, write_text};
use crate::progress::Watch;
use crate::report::comparison::Comparison;
use crate::report::escape;
use crate::report::page_section::{group_prune_key, prune_fragment, section};
use crate::{Error, Result};

/// One group's line in groups.json.
#[derive(Debug, Serialize)]
pub struct GroupSummary {
    /// The layers, `A-B` inclusive.
    pub layers: String,
    /// Its folder, relative to the sweep's.
    pub folder: String,
    /// Head players.
    pub players: usize,
    /// Masks evaluated (the plan's).
    pub masks: usize,
    /// Every method on the group's unseen masks (`None` without a held-out check).
    pub comparison: Option<Comparison>,
}

/// `groups.json`.
#[derive(Debug, Serialize)]
pub struct GroupsReport {
    /// The model as the user named it.
    pub model: String,
    /// The task.
    pub task: String,
    /// Questions per mask.
    pub questions: usize,
    /// The value kind.
    pub value: String,
    /// The ablation.
    pub ablation: String,
    /// One entry per group, in the order given.
    pub groups: Vec<GroupSummary>,
}

/// `layers-A-B`: a group's folder name.
pub fn group_folder(layers: &Range<usize>) -> String {
    format!("layers-{}-{}", layers.start, layers.end.saturating_sub(1))
}

/// The options of one group: `options` with its folder under `options.out`.
fn group_options(options: &OneShotOptions, layers: &Range<usize>) -> OneShotOptions {
    OneShotOptions {
        out: options.out.join(group_folder(layers)),
        ..options.clone()
    }
}

/// What can be checked before the first evaluation: groups given, none empty or repeated, each
/// inside a model of `n_layers` of `heads_per_layer` heads, and each group's folder (the design's
/// size, no other plan there).
pub fn check_groups(
    options: &OneShotOptions,
    groups: &[Range<usize>],
    n_layers: usize,
    heads_per_layer: usize,
) -> Result<()> {
    if groups.is_empty() {
        return Err(Error::invalid("groups", "no layer group given"));
    }
    for (i, g) in groups.iter().enumerate() {
        if g.is_empty() || g.end > n_layers {
            return Err(Error::invalid(
                "groups",
                format!(
                    "group {} ({}) is not inside the model's layers 0-{}",
                    i + 1,
                    group_folder(g),
                    n_layers.saturating_sub(1)
                ),
            ));
        }
        if groups[..i].contains(g) {
            return Err(Error::invalid(
                "groups",
                format!("group {} is given twice", group_folder(g)),
            ));
        }
        check(&group_options(options, g), g.len() * heads_per_layer)?;
    }
    Ok(())
}

/// Runs every group of `groups` as its own head game through `hv` (its players changed to each
/// group in turn), in `options.out/layers-A-B/`, and writes groups.json and groups.html; `watch`
/// is told each stored batch of every group and may stop the runs.
pub fn head_groups(
    hv: &mut HeadValues,
    groups: &[Range<usize>],
    options: &OneShotOptions,
    top_edges: usize,
    watch: &mut dyn Watch,
) -> Result<(Vec<HeadsRun>, PathBuf)> {
    let info = hv.model.info();
    check_groups(options, groups, info.n_layers, info.n_heads)?;
    let mut runs = Vec::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        tracing::info!(
            "group {} of {}: layers {}",
            i + 1,
            groups.len(),
            group_folder(g)
        );
        hv.set_layers(Some(g.clone()))?;
        runs.push(heads(hv, &group_options(options, g), top_edges, watch)?);
    }
    let report = GroupsReport {
        model: hv.model_label.clone(),
        task: hv.task.name.clone(),
        questions: hv.task.items.len(),
        value: hv.kind.name().to_string(),
        ablation: hv.ablation.label().to_string(),
        groups: groups
            .iter()
            .zip(&runs)
            .map(|(g, r)| GroupSummary {
                layers: format!("{}-{}", g.start, g.end - 1),
                folder: group_folder(g),
                players: r.done.plan.n_players(),
                masks: r.done.masks.len(),
                comparison: r.done.comparison.clone(),
            })
            .collect(),
    };
    let path = options.out.join("groups.json");
    write_json(&path, &report)?;
    let prunes: Vec<String> = report
        .groups
        .iter()
        .map(|g| group_prune_section(&options.out.join(&g.folder), &g.folder))
        .collect();
    write_text(&options.out.join("groups.html"), &report.to_html(&prunes))?;
    Ok((runs, path))
}

/// Group folder `folder`'s (at `dir`) pruning curves as its groups.html section: its prune.svg
/// when `spex prune` ran there, else the empty section that `spex prune` fills.
pub fn group_prune_section(dir: &Path, folder: &str) -> String {
    let svg = std::fs::read_to_string(dir.join("prune.svg")).ok();
    section(
        &group_prune_key(folder),
        &svg.map(|s| prune_fragment(&s)).unwrap_or_default(),
    )
}

impl GroupsReport {
    /// One page: per group, a link to its heads.html, its held-out table and energy bars, then
    /// `prunes[i]` (group `i`'s pruning section, [`group_prune_section`]).
    pub fn to_html(&self, prunes: &[String]) -> String {
        let title = format!(
            "{} on {} ({}, {} ablation): layer groups",
            self.model, self.task, self.value, self.ablation
        );
        let mut out = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title>\n<style>body{{font-family:sans-serif;margin:24px}}table{{border-collapse:collapse;margin:8px 0}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style></head><body>\n<h1>{0}</h1>\n<p>{1} question(s) per mask.</p>\n",
            escape(&title),
            self.questions
        );
        for (i, g) in self.groups.iter().enumerate() {
            let _ = writeln!(
                out,
                "<h2>Layers {} ({} heads, {} masks): <a href=\"{}/heads.html\">heads.html</a></h2>",
                escape(&g.layers),
                g.players,
                g.masks,
                escape(&g.folder)
            );
            match &g.comparison {
                Some(c) => out.push_str(&c.to_html()),
                None => out.push_str("<p>No unseen masks were evaluated (--held-out 0).</p>\n"),
            }
            out.push_str(prunes.get(i).map_or("", String::as_str));
        }
        out.push_str("</body></html>\n");
        out
    }
}
