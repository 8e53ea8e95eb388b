//! Decode any black box with spex from Rust: a value function over 40 players whose output
//! depends on two single players and one pair, recovered by ProxySPEX from 1,000 evaluations
//! and reported as k-SII, with its R^2 on 200 masks it never saw.
//!
//! `cargo run --release --example decode_black_box`

use spex::sparse::indices::{interaction_values, Index};
use spex::sparse::plan::Plan;
use spex::sparse::proxy::sampling::iid_masks;
use spex::sparse::proxy::ProxyPlan;
use spex::sparse::MaskBatch;

/// The black box: `f(x) = 2 x3 - x17 + 3 x5 x9` over 40 players (x_i = 1 keeps player i). Any
/// function of a mask batch works: a model, a simulator, a remote service.
fn black_box(masks: &MaskBatch) -> Vec<f64> {
    (0..masks.len())
        .map(|r| {
            let x = |i: usize| f64::from(u8::from(masks.get(r, i)));
            2.0 * x(3) - x(17) + 3.0 * x(5) * x(9)
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let n = 40;
    // The plan says which masks to evaluate; a plan can be written to disk and evaluated anywhere.
    let plan = Plan::ProxySpex(ProxyPlan::new(n, 1000, 7)?);
    let masks = plan.masks()?;
    let values = black_box(&masks);
    let spectrum = plan.decode(&masks, &values)?;

    let unseen = iid_masks(n, 200, 0.5, 8);
    let r2 = spectrum.r2(&unseen, &black_box(&unseen));
    println!(
        "{} Fourier terms; R^2 on 200 unseen masks {r2:.4}",
        spectrum.len()
    );

    let ksii = interaction_values(&spectrum, Index::KSii, 2)?;
    let mut strongest: Vec<_> = ksii.values.iter().filter(|(_, v)| v.abs() > 1e-3).collect();
    strongest.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    println!("{:<12} {:>10}", "players", "k-SII");
    for (players, value) in strongest.iter().take(6) {
        println!("{:<12} {value:>10.4}", format!("{:?}", players.indices()));
    }
    Ok(())
}
