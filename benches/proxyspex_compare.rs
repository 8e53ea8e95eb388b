//! ProxySPEX against shapiq's ProxySPEX (LightGBM) on identical samples.
//!
//! `benches/shapiq/proxyspex_compare.py DATA` writes, per point, `DATA/n{n}_b{budget}/`
//! `{masks,values,test_masks,test_values}.npy` and appends the reference's R^2 and decode time
//! to `DATA/reference.jsonl`. This driver decodes the same training samples with the reference
//! options and prints a markdown table: R^2 on the 1000 test masks and wall time, both sides.
//!
//! Usage: `cargo bench --bench proxyspex_compare -- DATA` (default DATA: target/proxy-bench).

use std::path::PathBuf;
use std::time::Instant;

use spex::io::{read_masks_npy, read_values};
use spex::sparse::proxy::ProxyPlan;

fn main() -> spex::Result<()> {
    let data = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or_else(|| PathBuf::from("target/proxy-bench"), PathBuf::from);
    let reference = data.join("reference.jsonl");
    let text = std::fs::read_to_string(&reference).map_err(|e| spex::Error::file(&reference, e))?;
    println!("| n | budget | R² spex | R² shapiq | spex s | shapiq s | speed-up | spex terms | shapiq terms |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let rec: serde_json::Value =
            serde_json::from_str(line).map_err(|e| spex::Error::file(&reference, e))?;
        let field = |k: &str| rec[k].as_f64().unwrap_or(f64::NAN);
        let (n, budget) = (field("n") as usize, field("budget") as usize);
        let dir = data.join(format!("n{n}_b{budget}"));
        let masks = read_masks_npy(&dir.join("masks.npy"))?;
        let values = read_values(&dir.join("values.npy"))?;
        let test_masks = read_masks_npy(&dir.join("test_masks.npy"))?;
        let test_values = read_values(&dir.join("test_values.npy"))?;
        let plan = ProxyPlan::new(n, budget, 0)?;
        let start = Instant::now();
        let spectrum = plan.decode_masks(&masks, &values)?;
        let secs = start.elapsed().as_secs_f64();
        let r2 = spectrum.r2(&test_masks, &test_values);
        println!(
            "| {n} | {budget} | {r2:.4} | {:.4} | {secs:.2} | {:.1} | {:.0}x | {} | {} |",
            field("r2_test"),
            field("fit_s"),
            field("fit_s") / secs,
            spectrum.len(),
            field("n_coefs"),
        );
    }
    Ok(())
}
