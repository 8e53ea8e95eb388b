//! Which boosting library should carry the ProxySPEX proxy: spex's own GBDT against forust-ml
//! (the pure-Rust library whose fitted trees can be read node by node), with LightGBM (through
//! shapiq) as the reference, on identical samples.
//!
//! Reads the data `benches/shapiq/proxyspex_compare.py DATA` writes. Per point, spex's
//! cross-validation picks the hyperparameters (the reference grid); then each library fits one
//! ensemble with them on the training samples, its trees go through the same exact Fourier
//! extraction, energy cut and ridge refit ([`ProxyPlan::refine`]), and the table gives the fit
//! time, the trees' own R² on the 1000 test masks and the final ProxySPEX R², next to the
//! LightGBM pipeline's (trees and final) from `DATA/reference.jsonl`. forust-ml runs with its
//! internal parallelism on; spex's fit is one thread.
//!
//! Usage: `cargo bench --bench proxy_libraries -- DATA` (default DATA: target/proxy-bench).

mod proxy_data;

use std::time::Instant;

use forust_ml::gradientbooster::GrowPolicy;
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};
use spex::sparse::proxy::binary_matrix::BinaryMatrix;
use spex::sparse::proxy::cv::{best_params, cross_validate};
use spex::sparse::proxy::gbdt::{fit, Ensemble, Node, Tree, TreeParams};
use spex::sparse::proxy::tree_fourier::ensemble_to_fourier;
use spex::sparse::proxy::ProxyPlan;
use spex::sparse::spectrum::r2_score;
use spex::sparse::MaskBatch;

/// Masks as forust's column-major f64 matrix data (`[n, m]`, 0.0 / 1.0).
fn column_major(masks: &MaskBatch) -> Vec<f64> {
    let (m, n) = (masks.len(), masks.n_players());
    let mut out = vec![0.0; m * n];
    for r in 0..m {
        for i in 0..n {
            out[i * m + r] = f64::from(u8::from(masks.get(r, i)));
        }
    }
    out
}

/// forust-ml set up as close to LightGBM's defaults as it allows: squared loss, no L2, leaf-wise
/// growth to 31 leaves, 20 rows (unit hessians) per leaf, mean initial score, no sampling.
fn forust_booster(params: &TreeParams, policy: GrowPolicy) -> GradientBooster {
    let mut b = GradientBooster::default()
        .set_objective_type(ObjectiveType::SquaredLoss)
        .set_iterations(params.n_trees)
        .set_learning_rate(params.learning_rate as f32)
        .set_max_depth(params.max_depth)
        .set_max_leaves(params.num_leaves)
        .set_l2(0.0)
        .set_min_leaf_weight(params.min_child_samples as f32)
        .set_initialize_base_score(true)
        .set_parallel(true);
    b.grow_policy = policy;
    b
}

/// A forust ensemble as spex trees (split on `x < split_value`: 0 goes left for a 0/1 feature).
fn forust_to_ensemble(booster: &GradientBooster) -> spex::sparse::Result<Ensemble> {
    let trees = booster
        .trees
        .iter()
        .map(|t| {
            let nodes = t
                .nodes
                .iter()
                .map(|node| {
                    if node.is_leaf {
                        Node::Leaf(f64::from(node.weight_value))
                    } else {
                        assert!(
                            node.split_value > 0.0 && node.split_value <= 1.0,
                            "a 0/1 split at {}",
                            node.split_value
                        );
                        Node::Split {
                            feature: node.split_feature as u32,
                            left: node.left_child,
                            right: node.right_child,
                        }
                    }
                })
                .collect();
            Tree::from_nodes(nodes)
        })
        .collect::<spex::sparse::Result<Vec<Tree>>>()?;
    Ok(Ensemble {
        bias: booster.base_score,
        trees,
    })
}

/// One library's row: fit seconds, the trees' test R², the refined spectrum's test R², its size.
struct Outcome {
    fit_s: f64,
    proxy_r2: f64,
    final_r2: f64,
    terms: usize,
}

fn evaluate(
    ensemble: &Ensemble,
    fit_s: f64,
    plan: &ProxyPlan,
    (masks, values): (&MaskBatch, &[f64]),
    (test_masks, test_values): (&MaskBatch, &[f64]),
) -> Outcome {
    let xt = BinaryMatrix::from_masks(test_masks);
    let proxy_r2 = r2_score(test_values, &ensemble.predict(&xt, ensemble.trees.len()));
    let refined = plan.refine(&ensemble_to_fourier(ensemble, plan.n), masks, values);
    Outcome {
        fit_s,
        proxy_r2,
        final_r2: refined.r2(test_masks, test_values),
        terms: refined.len(),
    }
}

fn main() -> spex::sparse::Result<()> {
    println!("| n | budget | params (depth, trees, lr) | library | fit s | proxy R² | ProxySPEX R² | terms |");
    println!("|---|---|---|---|---|---|---|---|");
    for p in proxy_data::points(&proxy_data::data_dir())? {
        let (n, budget) = (p.n, p.budget);
        let (masks, values) = (&p.masks, p.values.as_slice());
        let (test_masks, test_values) = (&p.test_masks, p.test_values.as_slice());
        let plan = ProxyPlan::new(n, budget, 0)?;
        let x = BinaryMatrix::from_masks(masks);
        let params = best_params(&cross_validate(&x, values, &plan.grid))
            .ok_or_else(|| spex::sparse::Error::invalid("grid", "empty"))?;
        let label = format!(
            "{}, {}, {}",
            params.max_depth, params.n_trees, params.learning_rate
        );
        let train = (masks, values);
        let test = (test_masks, test_values);
        let mut rows = Vec::new();

        let start = Instant::now();
        let ours = fit(&x, values, &params);
        rows.push((
            "spex gbdt",
            evaluate(&ours, start.elapsed().as_secs_f64(), &plan, train, test),
        ));

        let cols = column_major(masks);
        let matrix = Matrix::new(&cols, masks.len(), n);
        let weights = vec![1.0; masks.len()];
        for (name, policy) in [
            ("forust-ml 0.8.0 loss-guide", GrowPolicy::LossGuide),
            ("forust-ml 0.8.0 depth-wise", GrowPolicy::DepthWise),
        ] {
            let mut booster = forust_booster(&params, policy);
            let start = Instant::now();
            booster
                .fit(&matrix, values, &weights, None)
                .map_err(|e| spex::sparse::Error::invalid("forust-ml", e.to_string()))?;
            let fit_s = start.elapsed().as_secs_f64();
            let ensemble = forust_to_ensemble(&booster)?;
            // The conversion must reproduce forust's own predictions.
            let theirs = booster.predict(&matrix, true);
            let mine = ensemble.predict(&x, ensemble.trees.len());
            let worst = theirs
                .iter()
                .zip(&mine)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-6, "{name}: converted trees differ by {worst}");
            rows.push((name, evaluate(&ensemble, fit_s, &plan, train, test)));
        }
        for (name, o) in rows {
            println!(
                "| {n} | {budget} | {label} | {name} | {:.2} | {:.4} | {:.4} | {} |",
                o.fit_s, o.proxy_r2, o.final_r2, o.terms
            );
        }
        println!(
            "| {n} | {budget} | (its own CV) | LightGBM 4.7.0 via shapiq | | {:.4} | {:.4} | {} |",
            p.field("r2_trees_test"),
            p.field("r2_test"),
            p.field("n_coefs")
        );
    }
    Ok(())
}
