//! Criterion timing of the ProxySPEX decode (CV grid + proxy fit + tree->Fourier + energy cut +
//! ridge refit) on a hierarchical function, reference grid, n = 128, budget 1000.
//!
//! The side-by-side comparison with shapiq on identical samples is `benches/proxyspex_compare.rs`.

use criterion::{criterion_group, criterion_main, Criterion};
use spex::sparse::proxy::binary_matrix::BinaryMatrix;
use spex::sparse::proxy::gbdt::{fit, TreeParams};
use spex::sparse::proxy::ProxyPlan;
use spex::sparse::{Basis, Spectrum, Subset};

/// 20 main effects on players 0..20, pairs (i, i+1) and triples (i, i+1, i+2) for even i < 10.
fn hierarchical(n: usize) -> Spectrum {
    let mut terms: Vec<(Subset, f64)> = (0..20u32)
        .map(|i| (Subset::singleton(i), 1.0 + 0.05 * f64::from(i)))
        .collect();
    for i in (0..10u32).step_by(2) {
        terms.push((Subset::from_indices([i, i + 1]), -0.8));
        terms.push((Subset::from_indices([i + 1, i + 2]), 0.7));
        terms.push((Subset::from_indices([i, i + 2]), 0.6));
        terms.push((Subset::from_indices([i, i + 1, i + 2]), 1.2));
    }
    Spectrum::from_terms(n, Basis::Moebius, terms)
}

fn decode(c: &mut Criterion) {
    let n = 128;
    let plan = ProxyPlan::new(n, 1000, 0).expect("valid plan");
    let masks = plan.masks().expect("masks fit in memory");
    let values = hierarchical(n).eval(&masks);
    let mut group = c.benchmark_group("proxyspex_decode");
    group.sample_size(10);
    group.bench_function("n128_budget1000_reference_grid", |b| {
        b.iter(|| plan.decode_masks(&masks, &values).expect("decodes"))
    });
    group.finish();
}

/// One boosted fit of 200 depth-3 trees on 800 rows (a CV fold's training part at budget 1000),
/// the proxy's inner loop, for n = 128 and n = 1000 players.
fn gbdt_fit(c: &mut Criterion) {
    let mut group = c.benchmark_group("gbdt_fit");
    group.sample_size(10);
    for n in [128, 1000] {
        let plan = ProxyPlan::new(n, 800, 1).expect("valid plan");
        let masks = plan.masks().expect("masks fit in memory");
        let values = hierarchical(n).eval(&masks);
        let x = BinaryMatrix::from_masks(&masks);
        let params = TreeParams {
            max_depth: 3,
            num_leaves: 31,
            min_child_samples: 20,
            learning_rate: 0.1,
            n_trees: 200,
        };
        group.bench_function(format!("n{n}_rows800_trees200_depth3"), |b| {
            b.iter(|| fit(&x, &values, &params))
        });
    }
    group.finish();
}

criterion_group!(benches, gbdt_fit, decode);
criterion_main!(benches);
