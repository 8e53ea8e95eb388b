//! Head-interaction graphs: heads as nodes (first-order values), pairs of heads as edges
//! (second-order values), grouped by layer. Written as JSON (for Python), DOT (Graphviz, one
//! cluster per layer), a standalone SVG picture and an HTML page with the picture and tables.

use std::fmt::Write as _;
use std::ops::Range;

use serde::Serialize;

use super::escape;
use crate::sparse::{InteractionValues, Subset};

/// Fill of positive node values (keeping the head raises the value).
const POSITIVE: &str = "#2166ac";
/// Fill of negative node values (keeping the head lowers the value).
const NEGATIVE: &str = "#b2182b";
/// Stroke of positive pair values (synergy: the pair does more than its parts).
const SYNERGY: &str = "#1b9e77";
/// Stroke of negative pair values (redundancy: either head can stand in for the other).
const REDUNDANCY: &str = "#d95f02";
/// Side of one head's square in the SVG grid, in pixels.
const CELL: f64 = 28.0;

/// One head and its first-order value.
#[derive(Clone, Debug, Serialize)]
pub struct HeadNode {
    /// Layer (from 0).
    pub layer: usize,
    /// Query head within the layer (from 0).
    pub head: usize,
    /// Player index `(layer - first_layer) * heads + head`.
    pub player: usize,
    /// The index's value of this head alone.
    pub value: f64,
}

/// One pair of heads and its second-order value.
#[derive(Clone, Debug, Serialize)]
pub struct HeadEdge {
    /// `[layer, head]` of the first head (lower player index).
    pub a: [usize; 2],
    /// `[layer, head]` of the second head.
    pub b: [usize; 2],
    /// Player indices of the pair.
    pub players: [usize; 2],
    /// The index's value of the pair.
    pub value: f64,
}

/// One layer's share of the picture.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSummary {
    /// Layer (from 0).
    pub layer: usize,
    /// Sum of the layer's head values.
    pub total: f64,
    /// Sum of the absolute head values.
    pub total_abs: f64,
    /// The head with the largest absolute value.
    pub strongest_head: usize,
    /// Edges of `edges` with both heads in this layer.
    pub edges_within: usize,
    /// Edges of `edges` with one head in this layer and one elsewhere.
    pub edges_across: usize,
}

/// The graph written as `heads.json`.
#[derive(Clone, Debug, Serialize)]
pub struct HeadGraph {
    /// Index the values come from (`k-SII`, `FBII`, ...).
    pub index: String,
    /// Lowest layer whose heads are players (0 unless the run chose `--layers`).
    pub first_layer: usize,
    /// Layers whose heads are players (`first_layer..first_layer + layers`).
    pub layers: usize,
    /// Query heads per layer H.
    pub heads: usize,
    /// Value with every head removed.
    pub baseline_value: f64,
    /// Every head, in player order.
    pub nodes: Vec<HeadNode>,
    /// Every non-zero pair, largest |value| first.
    pub edges: Vec<HeadEdge>,
    /// Per layer, counting the `top_edges` strongest pairs.
    pub layer_summary: Vec<LayerSummary>,
    /// How many of the strongest pairs the pictures draw and the summary counts.
    pub top_edges: usize,
}

impl HeadGraph {
    /// Builds the graph of `values` (an index over the `heads` heads of each of `layers`, player
    /// 0 = head 0 of the first; order >= 2 for edges), drawing and summarising the `top_edges`
    /// strongest pairs.
    pub fn new(
        values: &InteractionValues,
        layers: Range<usize>,
        heads: usize,
        top_edges: usize,
    ) -> Self {
        let first_layer = layers.start;
        let at = |p: usize| [first_layer + p / heads, p % heads];
        let nodes: Vec<HeadNode> = (0..layers.len() * heads)
            .map(|p| HeadNode {
                layer: first_layer + p / heads,
                head: p % heads,
                player: p,
                value: values.get(&Subset::singleton(p as u32)),
            })
            .collect();
        let edges: Vec<HeadEdge> = values
            .sorted_by_magnitude()
            .into_iter()
            .filter(|(s, v)| s.len() == 2 && *v != 0.0)
            .map(|(s, v)| {
                let (i, j) = (s.indices()[0] as usize, s.indices()[1] as usize);
                HeadEdge {
                    a: at(i),
                    b: at(j),
                    players: [i, j],
                    value: v,
                }
            })
            .collect();
        let top_edges = top_edges.min(edges.len());
        let layer_summary = layers
            .clone()
            .map(|l| {
                let i = l - first_layer;
                let row = &nodes[i * heads..(i + 1) * heads];
                let strongest = row
                    .iter()
                    .max_by(|a, b| {
                        a.value
                            .abs()
                            .total_cmp(&b.value.abs())
                            .then(b.head.cmp(&a.head))
                    })
                    .map_or(0, |n| n.head);
                let (edges_within, edges_across) = edge_counts(&edges[..top_edges], l);
                LayerSummary {
                    layer: l,
                    total: row.iter().map(|n| n.value).sum(),
                    total_abs: row.iter().map(|n| n.value.abs()).sum(),
                    strongest_head: strongest,
                    edges_within,
                    edges_across,
                }
            })
            .collect();
        HeadGraph {
            index: values.index.to_string(),
            first_layer,
            layers: layers.len(),
            heads,
            baseline_value: values.baseline_value,
            nodes,
            edges,
            layer_summary,
            top_edges,
        }
    }

    /// The graph in Graphviz DOT: one cluster per layer, the `top_edges` strongest pairs.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "graph heads {{");
        let _ = writeln!(
            out,
            "  label=\"{} head interactions\"; labelloc=t;",
            self.index
        );
        let _ = writeln!(
            out,
            "  node [shape=circle, style=filled, fontcolor=white, fontsize=9];"
        );
        let max = self.max_node();
        for i in 0..self.layers {
            let l = self.first_layer + i;
            let _ = writeln!(out, "  subgraph cluster_layer_{l} {{");
            let _ = writeln!(out, "    label=\"layer {l}\";");
            for n in &self.nodes[i * self.heads..(i + 1) * self.heads] {
                let _ = writeln!(
                    out,
                    "    \"L{l}H{}\" [label=\"{l}.{}\\n{:.3}\", fillcolor=\"{}\", width={:.2}, tooltip=\"layer {l} head {}: {}\"];",
                    n.head,
                    n.head,
                    n.value,
                    node_color(n.value),
                    0.3 + 0.5 * ratio(n.value, max),
                    n.head,
                    n.value
                );
            }
            let _ = writeln!(out, "  }}");
        }
        let max = self.max_edge();
        for e in self.drawn_edges() {
            let _ = writeln!(
                out,
                "  \"L{}H{}\" -- \"L{}H{}\" [color=\"{}\", penwidth={:.2}, tooltip=\"{}\"];",
                e.a[0],
                e.a[1],
                e.b[0],
                e.b[1],
                edge_color(e.value),
                0.5 + 4.0 * ratio(e.value, max),
                e.value
            );
        }
        let _ = writeln!(out, "}}");
        out
    }

    /// A standalone SVG: heads on a grid (lowest layer at the top, heads left to right), node size
    /// and colour by value, the `top_edges` strongest pairs as curves; hover shows the numbers.
    pub fn to_svg(&self, title: &str) -> String {
        let (left, top, bottom) = (56.0, 64.0, 56.0);
        // Wide enough for the two title lines, whatever the head count.
        let width = (left + self.heads as f64 * CELL + 24.0).max(600.0);
        let height = top + self.layers as f64 * CELL + bottom;
        // Row of layer l: the first player layer at the top.
        let centre = |l: usize, h: usize| {
            (
                left + (h as f64 + 0.5) * CELL,
                top + ((l - self.first_layer) as f64 + 0.5) * CELL,
            )
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"10\">"
        );
        let _ = writeln!(out, "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>");
        let _ = writeln!(
            out,
            "<text x=\"8\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>",
            escape(title)
        );
        let _ = writeln!(
            out,
            "<text x=\"8\" y=\"34\">{} of {} heads ({} layers x {}); {} strongest of {} pairs drawn</text>",
            escape(&self.index),
            self.layers * self.heads,
            self.layers,
            self.heads,
            self.top_edges,
            self.edges.len()
        );
        for h in 0..self.heads {
            let (x, _) = centre(self.first_layer, h);
            let _ = writeln!(
                out,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">h{h}</text>",
                top - 6.0
            );
        }
        for l in self.first_layer..self.first_layer + self.layers {
            let (_, y) = centre(l, 0);
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">L{l}</text>",
                left - 8.0,
                y + 3.5
            );
        }
        let max = self.max_edge();
        for e in self.drawn_edges() {
            let (x1, y1) = centre(e.a[0], e.a[1]);
            let (x2, y2) = centre(e.b[0], e.b[1]);
            // Bend each curve sideways by a fifth of its length, between half a cell and a cell
            // and a half, so that pairs within a row or a column do not run over the heads
            // between them; alternate sides so that long curves do not all pile up on one.
            let (dx, dy) = (x2 - x1, y2 - y1);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let side = if (e.players[0] + e.players[1]) % 2 == 0 {
                1.0
            } else {
                -1.0
            };
            let bend = side * (0.2 * len).clamp(0.5 * CELL, 1.5 * CELL);
            let (cx, cy) = (
                (x1 + x2) / 2.0 - dy / len * bend,
                (y1 + y2) / 2.0 + dx / len * bend,
            );
            let _ = writeln!(
                out,
                "<path d=\"M{x1:.1},{y1:.1} Q{cx:.1},{cy:.1} {x2:.1},{y2:.1}\" fill=\"none\" stroke=\"{}\" stroke-opacity=\"0.75\" stroke-width=\"{:.2}\"><title>L{}.h{} x L{}.h{}: {}</title></path>",
                edge_color(e.value),
                0.5 + 4.0 * ratio(e.value, max),
                e.a[0],
                e.a[1],
                e.b[0],
                e.b[1],
                e.value
            );
        }
        let max = self.max_node();
        for n in &self.nodes {
            let (x, y) = centre(n.layer, n.head);
            let r = 1.5 + (0.5 * CELL - 3.0) * ratio(n.value, max).sqrt();
            let _ = writeln!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.2}\" fill=\"{}\" fill-opacity=\"0.85\"><title>layer {} head {}: {}</title></circle>",
                node_color(n.value),
                n.layer,
                n.head,
                n.value
            );
        }
        let y = top + self.layers as f64 * CELL + 22.0;
        let legend = [
            (POSITIVE, "head raises the value"),
            (NEGATIVE, "head lowers it"),
            (SYNERGY, "pair: synergy"),
            (REDUNDANCY, "pair: redundancy"),
        ];
        for (k, (color, text)) in legend.iter().enumerate() {
            let (row, col) = (k / 2, k % 2);
            let x = 12.0 + col as f64 * 150.0;
            let yy = y + row as f64 * 16.0;
            let _ = writeln!(
                out,
                "<rect x=\"{x:.0}\" y=\"{:.0}\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{:.0}\" y=\"{yy:.0}\">{text}</text>",
                yy - 9.0,
                x + 14.0
            );
        }
        let _ = writeln!(out, "</svg>");
        out
    }

    /// An HTML page: `summary` lines, the SVG, tables of the strongest heads and pairs, then
    /// `sections` (HTML fragments, e.g. the held-out comparison) in order.
    pub fn to_html(&self, title: &str, summary: &[String], sections: &[String]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;margin:24px}}table{{border-collapse:collapse;margin:8px 24px 8px 0;display:inline-table;vertical-align:top}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}</style></head><body>",
            escape(title)
        );
        let _ = writeln!(out, "<h1>{}</h1>\n<ul>", escape(title));
        for line in summary {
            let _ = writeln!(out, "<li>{}</li>", escape(line));
        }
        let _ = writeln!(out, "</ul>\n{}", self.to_svg(title));
        let heads = self.ranked_nodes();
        let _ = writeln!(
            out,
            "<table><tr><th>layer</th><th>head</th><th>{}</th></tr>",
            escape(&self.index)
        );
        for n in heads.iter().take(25) {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{:.5}</td></tr>",
                n.layer, n.head, n.value
            );
        }
        let _ = writeln!(
            out,
            "</table>\n<table><tr><th>head a</th><th>head b</th><th>{}</th></tr>",
            escape(&self.index)
        );
        for e in self.edges.iter().take(25) {
            let _ = writeln!(
                out,
                "<tr><td>L{}.h{}</td><td>L{}.h{}</td><td>{:.5}</td></tr>",
                e.a[0], e.a[1], e.b[0], e.b[1], e.value
            );
        }
        let _ = writeln!(out, "</table>");
        for section in sections {
            let _ = writeln!(out, "{section}");
        }
        let _ = writeln!(out, "</body></html>");
        out
    }

    /// The heads by |value|, largest first (ties in player order).
    pub fn ranked_nodes(&self) -> Vec<&HeadNode> {
        let mut nodes: Vec<&HeadNode> = self.nodes.iter().collect();
        nodes.sort_by(|a, b| {
            b.value
                .abs()
                .total_cmp(&a.value.abs())
                .then(a.player.cmp(&b.player))
        });
        nodes
    }

    fn drawn_edges(&self) -> &[HeadEdge] {
        &self.edges[..self.top_edges]
    }

    fn max_node(&self) -> f64 {
        self.nodes.iter().map(|n| n.value.abs()).fold(0.0, f64::max)
    }

    fn max_edge(&self) -> f64 {
        self.drawn_edges()
            .iter()
            .map(|e| e.value.abs())
            .fold(0.0, f64::max)
    }
}

/// `(within, across)`: edges with both heads in `layer`, and with exactly one.
fn edge_counts(edges: &[HeadEdge], layer: usize) -> (usize, usize) {
    let within = edges
        .iter()
        .filter(|e| e.a[0] == layer && e.b[0] == layer)
        .count();
    let touching = edges
        .iter()
        .filter(|e| e.a[0] == layer || e.b[0] == layer)
        .count();
    (within, touching - within)
}

/// `|v| / max` in `[0, 1]` (0 when `max` is 0).
fn ratio(v: f64, max: f64) -> f64 {
    if max > 0.0 {
        (v.abs() / max).min(1.0)
    } else {
        0.0
    }
}

fn node_color(v: f64) -> &'static str {
    if v >= 0.0 {
        POSITIVE
    } else {
        NEGATIVE
    }
}

fn edge_color(v: f64) -> &'static str {
    if v >= 0.0 {
        SYNERGY
    } else {
        REDUNDANCY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::indices::Index;
    use std::collections::BTreeMap;

    /// 3 layers x 2 heads: heads 1 and 4 matter, pairs (1, 4) synergistic and (0, 1) redundant.
    fn values() -> InteractionValues {
        let mut v = BTreeMap::new();
        v.insert(Subset::empty(), -1.0);
        v.insert(Subset::singleton(1), 0.8);
        v.insert(Subset::singleton(4), -0.4);
        v.insert(Subset::from_indices([1, 4]), 0.5);
        v.insert(Subset::from_indices([0, 1]), -0.1);
        v.insert(Subset::from_indices([2, 3]), 0.05);
        InteractionValues {
            index: Index::KSii,
            n_players: 6,
            max_order: 2,
            baseline_value: -1.0,
            values: v,
        }
    }

    #[test]
    fn nodes_edges_and_layer_summaries_follow_the_values() {
        let g = HeadGraph::new(&values(), 0..3, 2, 2);
        assert_eq!(g.nodes.len(), 6);
        assert_eq!(
            (g.nodes[1].layer, g.nodes[1].head, g.nodes[1].value),
            (0, 1, 0.8)
        );
        assert_eq!(
            (g.nodes[4].layer, g.nodes[4].head, g.nodes[4].value),
            (2, 0, -0.4)
        );
        let pairs: Vec<[usize; 2]> = g.edges.iter().map(|e| e.players).collect();
        assert_eq!(pairs, vec![[1, 4], [0, 1], [2, 3]]);
        assert_eq!((g.edges[0].a, g.edges[0].b), ([0, 1], [2, 0]));
        // Only the two strongest pairs count: (1, 4) crosses layers 0 and 2, (0, 1) stays in 0.
        let s = &g.layer_summary;
        assert_eq!(
            (s[0].edges_within, s[0].edges_across, s[0].strongest_head),
            (1, 1, 1)
        );
        assert_eq!((s[1].edges_within, s[1].edges_across), (0, 0));
        assert_eq!(
            (s[2].edges_within, s[2].edges_across, s[2].strongest_head),
            (0, 1, 0)
        );
        assert!((s[2].total + 0.4).abs() < 1e-12 && (s[0].total_abs - 0.8).abs() < 1e-12);
    }

    #[test]
    fn players_of_higher_layers_carry_their_own_layer_numbers() {
        let g = HeadGraph::new(&values(), 20..23, 2, 2);
        assert_eq!((g.first_layer, g.layers), (20, 3));
        assert_eq!(
            (g.nodes[4].layer, g.nodes[4].head, g.nodes[4].player),
            (22, 0, 4)
        );
        assert_eq!((g.edges[0].a, g.edges[0].b), ([20, 1], [22, 0]));
        let s = &g.layer_summary;
        assert_eq!(
            (s[0].layer, s[0].edges_within, s[0].edges_across),
            (20, 1, 1)
        );
        assert_eq!((s[2].layer, s[2].edges_across), (22, 1));
        let dot = g.to_dot();
        assert!(dot.contains("cluster_layer_22") && !dot.contains("cluster_layer_0 "));
        assert!(dot.contains("\"L20H1\" -- \"L22H0\""), "{dot}");
        let svg = g.to_svg("t");
        assert!(svg.contains(">L20<") && svg.contains(">L22<") && !svg.contains(">L0<"));
        // The top row is the first player layer, whatever its number.
        let same = HeadGraph::new(&values(), 0..3, 2, 2).to_svg("t");
        let circles = |svg: &str| -> Vec<String> {
            svg.lines()
                .filter(|l| l.starts_with("<circle"))
                .map(|l| l.split("><title>").next().unwrap_or("").to_string())
                .collect()
        };
        assert_eq!(circles(&svg), circles(&same));
    }

    #[test]
    fn pictures_draw_every_head_and_only_the_top_pairs() {
        let g = HeadGraph::new(&values(), 0..3, 2, 2);
        let dot = g.to_dot();
        assert_eq!(dot.matches("subgraph cluster_layer_").count(), 3);
        assert_eq!(dot.matches(" -- ").count(), 2);
        assert!(
            dot.contains("\"L0H1\" -- \"L2H0\" [color=\"#1b9e77\""),
            "{dot}"
        );
        let svg = g.to_svg("t <&>");
        assert_eq!(svg.matches("<circle").count(), 6);
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg.contains("t &lt;&amp;&gt;") && svg.ends_with("</svg>\n"));
        let html = g.to_html(
            "title",
            &["R^2 0.9".to_string()],
            &["<h2>more</h2>".to_string()],
        );
        assert!(html.contains("<h2>more</h2>\n</body>"));
        assert!(
            html.contains("<svg") && html.contains("<li>R^2 0.9</li>") && html.contains("L0.h1")
        );
    }
}
