//! Token attributions: the prompt's players (words or tokens) with their first-order values and
//! the strongest pairs, as JSON (`tokens.json`) and as an HTML page that colours the prompt.

use std::fmt::Write as _;

use serde::Serialize;

use super::escape;
use crate::sparse::{InteractionValues, Subset};

/// One player of the prompt.
#[derive(Clone, Debug, Serialize)]
pub struct TokenEntry {
    /// Player index.
    pub player: usize,
    /// The prompt text it covers.
    pub text: String,
    /// Its token positions in the prompt.
    pub positions: Vec<usize>,
    /// The index's value of this player alone.
    pub value: f64,
}

/// One pair of players.
#[derive(Clone, Debug, Serialize)]
pub struct TokenPair {
    /// Player indices.
    pub players: [usize; 2],
    /// Their texts.
    pub texts: [String; 2],
    /// The index's value of the pair.
    pub value: f64,
}

/// `tokens.json`.
#[derive(Clone, Debug, Serialize)]
pub struct TokenAttribution {
    /// The prompt.
    pub prompt: String,
    /// The continuation whose log-probability is explained.
    pub target: String,
    /// `words` or `tokens`.
    pub granularity: String,
    /// Index the values come from.
    pub index: String,
    /// Value with every player removed.
    pub baseline_value: f64,
    /// Every player, in prompt order.
    pub players: Vec<TokenEntry>,
    /// Every non-zero pair, largest |value| first.
    pub pairs: Vec<TokenPair>,
}

impl TokenAttribution {
    /// Builds the attribution from index values over `players` (text and positions per player).
    pub fn new(
        values: &InteractionValues,
        players: &[(String, Vec<usize>)],
        prompt: &str,
        target: &str,
        granularity: &str,
    ) -> Self {
        let entries = players
            .iter()
            .enumerate()
            .map(|(i, (text, positions))| TokenEntry {
                player: i,
                text: text.clone(),
                positions: positions.clone(),
                value: values.get(&Subset::singleton(i as u32)),
            })
            .collect();
        let text_of = |i: usize| players.get(i).map_or_else(String::new, |p| p.0.clone());
        let pairs = values
            .sorted_by_magnitude()
            .into_iter()
            .filter(|(s, v)| s.len() == 2 && *v != 0.0)
            .map(|(s, v)| {
                let (i, j) = (s.indices()[0] as usize, s.indices()[1] as usize);
                TokenPair {
                    players: [i, j],
                    texts: [text_of(i), text_of(j)],
                    value: v,
                }
            })
            .collect();
        TokenAttribution {
            prompt: prompt.to_string(),
            target: target.to_string(),
            granularity: granularity.to_string(),
            index: values.index.to_string(),
            baseline_value: values.baseline_value,
            players: entries,
            pairs,
        }
    }

    /// An HTML page: `summary` lines, the prompt with each player shaded by its value (blue
    /// raises the target's log-probability, red lowers it; hover for numbers), then the target
    /// and the `top` strongest pairs.
    pub fn to_html(&self, title: &str, summary: &[String], top: usize) -> String {
        let max = self
            .players
            .iter()
            .map(|p| p.value.abs())
            .fold(0.0, f64::max);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;margin:24px;max-width:60em}}.prompt{{font-family:monospace;white-space:pre-wrap;line-height:1.9;border:1px solid #ccc;padding:12px}}.p{{border-radius:3px;padding:1px 0}}.target{{font-weight:bold;border-bottom:2px solid #333}}td,th{{border:1px solid #ccc;padding:2px 8px}}table{{border-collapse:collapse}}</style></head><body>",
            escape(title)
        );
        let _ = writeln!(out, "<h1>{}</h1>\n<ul>", escape(title));
        for line in summary {
            let _ = writeln!(out, "<li>{}</li>", escape(line));
        }
        let _ = write!(out, "</ul>\n<div class=\"prompt\">");
        for p in &self.players {
            let alpha = if max > 0.0 {
                0.85 * p.value.abs() / max
            } else {
                0.0
            };
            let rgb = if p.value >= 0.0 {
                "33,102,172"
            } else {
                "178,24,43"
            };
            let _ = write!(
                out,
                "<span class=\"p\" style=\"background:rgba({rgb},{alpha:.3})\" title=\"player {}: {}\">{}</span>",
                p.player,
                p.value,
                escape(&p.text)
            );
        }
        let _ = writeln!(
            out,
            "<span class=\"target\">{}</span></div>",
            escape(&self.target)
        );
        let _ = writeln!(
            out,
            "<h2>Strongest pairs</h2>\n<table><tr><th>a</th><th>b</th><th>{}</th></tr>",
            escape(&self.index)
        );
        for pair in self.pairs.iter().take(top) {
            let _ = writeln!(
                out,
                "<tr><td>{} ({})</td><td>{} ({})</td><td>{:.5}</td></tr>",
                escape(&pair.texts[0]),
                pair.players[0],
                escape(&pair.texts[1]),
                pair.players[1],
                pair.value
            );
        }
        let _ = writeln!(out, "</table>\n</body></html>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::indices::Index;
    use std::collections::BTreeMap;

    #[test]
    fn players_and_pairs_carry_their_text_and_the_page_shades_them() {
        let mut v = BTreeMap::new();
        v.insert(Subset::empty(), -5.0);
        v.insert(Subset::singleton(2), 1.5);
        v.insert(Subset::singleton(0), -0.5);
        v.insert(Subset::from_indices([0, 2]), 0.75);
        let values = InteractionValues {
            index: Index::KSii,
            n_players: 3,
            max_order: 2,
            baseline_value: -5.0,
            values: v,
        };
        let players = vec![
            ("The".to_string(), vec![0]),
            (" <capital>".to_string(), vec![1, 2]),
            (" France".to_string(), vec![3]),
        ];
        let a = TokenAttribution::new(&values, &players, "The <capital> France", " Paris", "words");
        assert_eq!(a.players.len(), 3);
        assert_eq!((a.players[1].value, a.players[2].value), (0.0, 1.5));
        assert_eq!(a.players[1].positions, vec![1, 2]);
        assert_eq!(a.pairs.len(), 1);
        assert_eq!(a.pairs[0].texts, ["The".to_string(), " France".to_string()]);
        let html = a.to_html("t", &[], 10);
        assert_eq!(html.matches("class=\"p\"").count(), 3);
        assert!(html.contains("rgba(33,102,172,0.850)") && html.contains("rgba(178,24,43,0.283)"));
        assert!(
            html.contains(" &lt;capital&gt;")
                && html.contains("<span class=\"target\"> Paris</span>")
        );
    }
}
