//! `interactions.json`: an `InteractionValues`-like layout that pandas and shapiq users read easily.

use serde::{Deserialize, Serialize};

use crate::sparse::indices::InteractionValues;

/// One interaction: the players involved and its value.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InteractionEntry {
    /// Sorted player indices (empty for the baseline term).
    pub players: Vec<u32>,
    /// The index's value for this set of players.
    pub value: f64,
}

/// The JSON written by `spex solve`, entries sorted by |value| descending.
#[derive(Clone, Debug, Serialize)]
pub struct InteractionsReport {
    /// Index name as shapiq spells it (`k-SII`, `FBII`, `Fourier`, ...).
    pub index: String,
    /// Number of players.
    pub n_players: usize,
    /// Largest order reported.
    pub max_order: usize,
    /// Value with every player removed, f(0...0).
    pub baseline_value: f64,
    /// Decoder that produced the spectrum (`spex` or `proxyspex`).
    pub method: String,
    /// ProxySPEX's refit (`reference` or `centred`); `None` for SPEX.
    pub refit: Option<String>,
    /// Number of evaluations the decoder used.
    pub queries: usize,
    /// R^2 of the recovered spectrum on the queried masks (in-sample faithfulness).
    pub r2_queried: f64,
    /// R^2 of the spectrum on `held_out` unseen masks from the design's distribution (out-of-sample
    /// faithfulness); `None` when not checked.
    pub r2_held_out: Option<f64>,
    /// Number of unseen masks checked (0: not checked).
    pub held_out: usize,
    /// The interactions, largest |value| first.
    pub interactions: Vec<InteractionEntry>,
}

impl InteractionsReport {
    /// Builds the report from index values and the run's provenance.
    pub fn new(values: &InteractionValues, method: &str, queries: usize, r2_queried: f64) -> Self {
        InteractionsReport {
            index: values.index.to_string(),
            n_players: values.n_players,
            max_order: values.max_order,
            baseline_value: values.baseline_value,
            method: method.to_string(),
            refit: None,
            queries,
            r2_queried,
            r2_held_out: None,
            held_out: 0,
            interactions: values
                .sorted_by_magnitude()
                .into_iter()
                .map(|(s, v)| InteractionEntry {
                    players: s.indices().to_vec(),
                    value: v,
                })
                .collect(),
        }
    }

    /// The report naming ProxySPEX's refit.
    pub fn with_refit(mut self, refit: &str) -> Self {
        self.refit = Some(refit.to_string());
        self
    }

    /// The report with the out-of-sample check: R^2 `r2` on `count` unseen masks.
    pub fn with_held_out(mut self, r2: f64, count: usize) -> Self {
        self.r2_held_out = Some(r2);
        self.held_out = count;
        self
    }
}
