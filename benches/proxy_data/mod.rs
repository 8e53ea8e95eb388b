//! The samples `benches/shapiq/proxyspex_compare.py DATA` writes, read back for the Rust benches:
//! one [`Point`] per line of `DATA/reference.jsonl`, with its `.npy` files from
//! `DATA/n{n}_b{budget}/`.

use std::path::{Path, PathBuf};

use spex::io::{read_masks_npy, read_values};
use spex::sparse::MaskBatch;

/// One (n, budget) point: training and test samples and the reference's record.
pub struct Point {
    /// Players.
    pub n: usize,
    /// Budget (training samples asked for).
    pub budget: usize,
    /// Training masks `[m, n]` and values `[m]`.
    pub masks: MaskBatch,
    /// Training values.
    pub values: Vec<f64>,
    /// Test masks `[1000, n]` and values `[1000]`.
    pub test_masks: MaskBatch,
    /// Test values.
    pub test_values: Vec<f64>,
    /// The reference's record (r2_test, r2_trees_test, fit_s, n_coefs, ...).
    pub reference: serde_json::Value,
}

impl Point {
    /// A number from the reference's record (NaN when missing).
    pub fn field(&self, key: &str) -> f64 {
        self.reference[key].as_f64().unwrap_or(f64::NAN)
    }
}

/// The DATA folder: the first argument that is not a flag (default `target/proxy-bench`).
pub fn data_dir() -> PathBuf {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(|| PathBuf::from("target/proxy-bench"), PathBuf::from)
}

/// Every point listed in `data/reference.jsonl`, in file order.
pub fn points(data: &Path) -> spex::sparse::Result<Vec<Point>> {
    let reference = data.join("reference.jsonl");
    let text = std::fs::read_to_string(&reference)
        .map_err(|e| spex::sparse::Error::file(&reference, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let rec: serde_json::Value =
                serde_json::from_str(line).map_err(|e| spex::sparse::Error::file(&reference, e))?;
            let n = rec["n"].as_u64().unwrap_or(0) as usize;
            let budget = rec["budget"].as_u64().unwrap_or(0) as usize;
            let dir = data.join(format!("n{n}_b{budget}"));
            Ok(Point {
                n,
                budget,
                masks: read_masks_npy(&dir.join("masks.npy"))?,
                values: read_values(&dir.join("values.npy"))?,
                test_masks: read_masks_npy(&dir.join("test_masks.npy"))?,
                test_values: read_values(&dir.join("test_values.npy"))?,
                reference: rec,
            })
        })
        .collect()
}
