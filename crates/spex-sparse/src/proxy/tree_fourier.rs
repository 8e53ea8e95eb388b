//! Exact Fourier (Walsh-Hadamard) coefficients of boosted trees on binary inputs.
//!
//! A leaf with value `v` is `{∅: v}`. A split on player `i` with children `L` (`x_i = 0`) and
//! `R` (`x_i = 1`) is `f = (L + R)/2 + (L - R)/2 · (-1)^{x_i}`, so for every `S`:
//! `F(S) += (L(S) + R(S))/2` and `F(S Δ {i}) += (L(S) - R(S))/2`.

use std::collections::HashMap;

use super::gbdt::{Ensemble, Node, Tree};
use crate::{Basis, Spectrum, Subset};

/// The Fourier coefficients of one tree: a map subset -> coefficient (at most `2^depth` terms).
pub fn tree_to_fourier(tree: &Tree) -> HashMap<Subset, f64> {
    node_to_fourier(tree.nodes(), 0)
}

fn node_to_fourier(nodes: &[Node], k: usize) -> HashMap<Subset, f64> {
    match nodes[k] {
        Node::Leaf(v) => HashMap::from([(Subset::empty(), v)]),
        Node::Split {
            feature,
            left,
            right,
        } => {
            let l = node_to_fourier(nodes, left);
            let r = node_to_fourier(nodes, right);
            let mut out: HashMap<Subset, f64> = HashMap::with_capacity(2 * (l.len() + r.len()));
            for (s, lv) in &l {
                let rv = r.get(s).copied().unwrap_or(0.0);
                *out.entry(s.clone()).or_insert(0.0) += (lv + rv) / 2.0;
                *out.entry(s.toggle(feature)).or_insert(0.0) += (lv - rv) / 2.0;
            }
            for (s, rv) in r.iter().filter(|(s, _)| !l.contains_key(*s)) {
                *out.entry(s.clone()).or_insert(0.0) += rv / 2.0;
                *out.entry(s.toggle(feature)).or_insert(0.0) -= rv / 2.0;
            }
            out
        }
    }
}

/// The Fourier spectrum of a whole ensemble over `n` players (bias on `∅`), summed tree by tree.
///
/// Terms whose sum is exactly zero are dropped.
pub fn ensemble_to_fourier(ensemble: &Ensemble, n: usize) -> Spectrum {
    let mut total: HashMap<Subset, f64> = HashMap::new();
    *total.entry(Subset::empty()).or_insert(0.0) += ensemble.bias;
    for tree in &ensemble.trees {
        // Sorted per tree so the floating-point sums do not depend on hash order.
        let mut terms: Vec<(Subset, f64)> = tree_to_fourier(tree).into_iter().collect();
        terms.sort_by(|a, b| a.0.cmp(&b.0));
        for (s, v) in terms {
            *total.entry(s).or_insert(0.0) += v;
        }
    }
    Spectrum::from_terms(
        n,
        Basis::Fourier,
        total.into_iter().filter(|(_, v)| *v != 0.0),
    )
}

#[cfg(test)]
mod tests {
    use super::super::binary_matrix::BinaryMatrix;
    use super::super::gbdt::{fit, TreeParams};
    use super::*;
    use crate::proxy::sampling::distinct_uniform_masks;
    use crate::MaskBatch;

    fn all_masks(n: usize) -> MaskBatch {
        let mut m = MaskBatch::new(n);
        for w in 0..1u64 << n {
            m.push_words(&[w]);
        }
        m
    }

    #[test]
    fn hand_built_depth_two_tree_matches_on_the_whole_cube() {
        // Root splits on 1; its x1 = 0 child splits on 3, its x1 = 1 child on 0.
        let tree = Tree::from_nodes(vec![
            Node::Split {
                feature: 1,
                left: 1,
                right: 2,
            },
            Node::Split {
                feature: 3,
                left: 3,
                right: 4,
            },
            Node::Split {
                feature: 0,
                left: 5,
                right: 6,
            },
            Node::Leaf(1.5),
            Node::Leaf(-2.0),
            Node::Leaf(0.25),
            Node::Leaf(4.0),
        ])
        .unwrap();
        let masks = all_masks(5);
        let x = BinaryMatrix::from_masks(&masks);
        let ens = Ensemble {
            bias: 0.5,
            trees: vec![tree],
        };
        let spectrum = ensemble_to_fourier(&ens, 5);
        assert!(spectrum.max_degree() <= 2);
        for (got, want) in spectrum.eval(&masks).iter().zip(ens.predict(&x, 1)) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn boosted_ensemble_matches_its_predictions_on_all_masks() {
        let n = 8;
        let train = distinct_uniform_masks(n, 200, 4);
        let xt = BinaryMatrix::from_masks(&train);
        let y: Vec<f64> = (0..200)
            .map(|r| {
                let row = xt.row(r);
                f64::from(row[0]) * 2.0 - f64::from(row[1] & row[2])
                    + 0.3 * f64::from(row[5])
                    + (r % 7) as f64 * 0.01
            })
            .collect();
        let ens = fit(
            &xt,
            &y,
            &TreeParams {
                max_depth: 5,
                num_leaves: 31,
                min_child_samples: 5,
                learning_rate: 0.1,
                n_trees: 50,
            },
        );
        let masks = all_masks(n);
        let x = BinaryMatrix::from_masks(&masks);
        let spectrum = ensemble_to_fourier(&ens, n);
        assert!(spectrum.max_degree() <= 5);
        for (got, want) in spectrum.eval(&masks).iter().zip(ens.predict(&x, 50)) {
            assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        }
    }
}
