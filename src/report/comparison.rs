//! The held-out comparison as people read it: `comparison.json`'s layout, the terminal table, and
//! the HTML section of heads.html (the R^2 table and one energy-split bar per method).

use std::fmt::Write;

use serde::Serialize;

use super::escape;
use crate::sparse::linear::Baseline;
use crate::sparse::structure::EnergySplit;
use crate::sparse::Spectrum;

/// One method's spectrum, judged.
#[derive(Clone, Debug, Serialize)]
pub struct Judged {
    /// `proxyspex-cv` (the default), `proxyspex` (the reference), `spex`, or a baseline's name.
    pub method: String,
    /// Whether this is the spectrum the run reports.
    pub reported: bool,
    /// Non-zero Fourier coefficients.
    pub terms: usize,
    /// R^2 on the unseen masks.
    pub r2_held_out: f64,
    /// R^2 on the masks it was fitted to.
    pub r2_queried: f64,
    /// Shares of the non-constant energy (head players only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy: Option<EnergySplit>,
    /// The spectrum (not written).
    #[serde(skip)]
    pub spectrum: Spectrum,
}

/// `comparison.json`: every method on the same unseen masks.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Unseen masks.
    pub unseen_masks: usize,
    /// Samples every method was fitted to.
    pub samples: usize,
    /// Cross-validation folds of the baselines and the cv refit.
    pub folds: usize,
    /// The methods, the reported one first.
    pub methods: Vec<Judged>,
}

impl Comparison {
    /// The best baseline's R^2 on the unseen masks (NaN without baselines).
    pub fn best_baseline(&self) -> Option<&Judged> {
        self.methods
            .iter()
            .filter(|m| Baseline::ALL.iter().any(|b| b.name() == m.method))
            .max_by(|a, b| a.r2_held_out.total_cmp(&b.r2_held_out))
    }

    /// The reported method.
    pub fn reported(&self) -> Option<&Judged> {
        self.methods.iter().find(|m| m.reported)
    }
}

impl Comparison {
    /// The lines of the terminal table: method, terms, R^2 on unseen and on queried masks, and
    /// the energy split where there is one.
    pub fn table(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{:<18} {:>6} {:>10} {:>10}  {}",
            "method", "terms", "R2 unseen", "R2 fitted", "energy single/within/across"
        )];
        for m in &self.methods {
            let energy = m.energy.map_or(String::new(), |e| {
                format!(
                    "{:.0}/{:.0}/{:.0} %",
                    100.0 * e.single,
                    100.0 * e.within,
                    100.0 * e.across
                )
            });
            lines.push(format!(
                "{:<18} {:>6} {:>10.4} {:>10.4}  {energy}",
                format!("{}{}", m.method, if m.reported { " *" } else { "" }),
                m.terms,
                m.r2_held_out,
                m.r2_queried
            ));
        }
        lines
    }

    /// The HTML section: the table, then one horizontal bar per method with an energy split
    /// (single heads, within a layer, across layers), as inline SVG.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "<h2>On {} unseen masks</h2>\n<p>Every method fitted to the same {} samples; the baselines and the cv refit tuned by the same {} cross-validation folds. * = reported.</p>\n<table><tr><th>method</th><th>terms</th><th>R&sup2; unseen</th><th>R&sup2; fitted</th><th>single</th><th>within layer</th><th>across layers</th></tr>",
            self.unseen_masks, self.samples, self.folds
        );
        for m in &self.methods {
            let share = |f: fn(&EnergySplit) -> f64| {
                m.energy
                    .as_ref()
                    .map_or("-".to_string(), |e| format!("{:.1} %", 100.0 * f(e)))
            };
            let _ = writeln!(
                out,
                "<tr><td style=\"text-align:left\">{}{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&m.method),
                if m.reported { " *" } else { "" },
                m.terms,
                m.r2_held_out,
                m.r2_queried,
                share(|e| e.single),
                share(|e| e.within),
                share(|e| e.across)
            );
        }
        let _ = writeln!(out, "</table>");
        let bars: Vec<&Judged> = self.methods.iter().filter(|m| m.energy.is_some()).collect();
        if !bars.is_empty() {
            let _ = writeln!(out, "{}", energy_bars(&bars));
        }
        out
    }
}

/// Colours of the three energy classes: single, within a layer, across layers.
const CLASS_COLOURS: [&str; 3] = ["#4c72b0", "#dd8452", "#55a868"];

/// One 400-pixel bar per method: the shares of single / within / across, left to right.
fn energy_bars(methods: &[&Judged]) -> String {
    let (label_w, bar_w, row_h) = (150.0, 400.0, 22.0);
    let height = row_h * (methods.len() as f64 + 1.5);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">",
        label_w + bar_w + 20.0
    );
    for (i, m) in methods.iter().enumerate() {
        let y = row_h * i as f64 + 4.0;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\">{}</text>",
            y + 13.0,
            escape(&m.method)
        );
        let e = m.energy.unwrap_or_default();
        let mut x = label_w;
        for (share, colour) in [e.single, e.within, e.across].iter().zip(CLASS_COLOURS) {
            let w = bar_w * share.clamp(0.0, 1.0);
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"{colour}\"><title>{:.1} %</title></rect>",
                100.0 * share
            );
            x += w;
        }
    }
    let y = row_h * methods.len() as f64 + 14.0;
    for (k, (name, colour)) in ["single heads", "within a layer", "across layers"]
        .iter()
        .zip(CLASS_COLOURS)
        .enumerate()
    {
        let x = label_w + 130.0 * k as f64;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"{y}\">{name}</text>",
            y - 10.0,
            x + 16.0
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::Basis;

    fn judged(method: &str, r2: f64, energy: Option<EnergySplit>) -> Judged {
        Judged {
            method: method.into(),
            reported: method == "proxyspex-cv",
            terms: 3,
            r2_held_out: r2,
            r2_queried: 1.0,
            energy,
            spectrum: Spectrum::new(2, Basis::Fourier),
        }
    }

    #[test]
    fn the_best_baseline_and_the_reported_method_are_found_and_drawn() {
        let split = EnergySplit {
            single: 0.5,
            within: 0.25,
            across: 0.25,
        };
        let c = Comparison {
            unseen_masks: 100,
            samples: 500,
            folds: 5,
            methods: vec![
                judged("proxyspex-cv", 0.95, Some(split)),
                judged("proxyspex", 0.9, Some(split)),
                judged("linear", 0.8, None),
                judged("ridge-pairs", 0.97, None),
            ],
        };
        assert_eq!(c.best_baseline().unwrap().method, "ridge-pairs");
        assert_eq!(c.reported().unwrap().method, "proxyspex-cv");
        assert_eq!(c.table().len(), 5);
        assert!(c.table()[1].contains("50/25/25 %"));
        let html = c.to_html();
        // Two bars of three classes each, plus the legend's three swatches.
        assert_eq!(html.matches("<rect").count(), 2 * 3 + 3);
        assert!(
            html.contains("width=\"200.0\""),
            "half of the 400-pixel bar"
        );
        assert!(html.contains("On 100 unseen masks"));
    }
}
