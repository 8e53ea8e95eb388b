//! Outputs for people and for Python: interaction tables, graphs, pruning plans.

pub mod interactions;
