//! Outputs for people and for Python: interaction tables, the decoded spectrum, head graphs, pruning orders, token attributions.

pub mod comparison;
pub mod head_graph;
pub mod interactions;
pub mod page_section;
pub mod prune;
pub mod prune_curves;
pub mod spectrum_file;
pub mod token_report;

/// Escapes text for XML and HTML (`&`, `<`, `>`, `"`).
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
