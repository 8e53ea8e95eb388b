//! ProxySPEX against shapiq's ProxySPEX (LightGBM) on identical samples.
//!
//! `benches/shapiq/proxyspex_compare.py DATA` writes, per point, `DATA/n{n}_b{budget}/`
//! `{masks,values,test_masks,test_values}.npy` and appends the reference's R^2 and decode time
//! to `DATA/reference.jsonl`. This driver decodes the same training samples with the reference
//! options and prints a markdown table: R^2 on the 1000 test masks and wall time, both sides.
//!
//! Usage: `cargo bench --bench proxyspex_compare -- DATA` (default DATA: target/proxy-bench).

mod proxy_data;

use std::time::Instant;

use spex::sparse::proxy::ProxyPlan;

fn main() -> spex::sparse::Result<()> {
    println!("| n | budget | R² spex | R² shapiq | spex s | shapiq s | speed-up | spex terms | shapiq terms |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for p in proxy_data::points(&proxy_data::data_dir())? {
        let (n, budget) = (p.n, p.budget);
        let plan = ProxyPlan::new(n, budget, 0)?;
        let start = Instant::now();
        let spectrum = plan.decode_masks(&p.masks, &p.values)?;
        let secs = start.elapsed().as_secs_f64();
        let r2 = spectrum.r2(&p.test_masks, &p.test_values);
        println!(
            "| {n} | {budget} | {r2:.4} | {:.4} | {secs:.2} | {:.1} | {:.0}x | {} | {} |",
            p.field("r2_test"),
            p.field("fit_s"),
            p.field("fit_s") / secs,
            spectrum.len(),
            p.field("n_coefs"),
        );
    }
    Ok(())
}
