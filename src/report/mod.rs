//! Outputs for people and for Python: interaction tables, the decoded spectrum, head graphs, pruning orders, token attributions.

pub mod head_graph;
pub mod interactions;
pub mod prune;
pub mod spectrum_file;
pub mod token_report;
