//! Gradient-boosted regression trees specialised to binary features (the ProxySPEX proxy).
//!
//! Squared loss, leaf-wise (best-first) growth as in LightGBM with its defaults: the initial
//! score is the mean target, a tree grows to at most `num_leaves` leaves and `max_depth` levels,
//! every child keeps at least `min_child_samples` rows, no L2 penalty, no subsampling. With
//! binary features each split is `x_i = 0` (left) against `x_i = 1` (right), and a histogram is
//! one gradient sum and one count per feature over the rows with `x_i = 1`.

use serde::{Deserialize, Serialize};

use super::binary_matrix::BinaryMatrix;
use super::histogram::Histogram;

/// Shape and learning rate of one boosted ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeParams {
    /// Maximum depth of a tree (levels of splits).
    pub max_depth: usize,
    /// Maximum leaves per tree (LightGBM `num_leaves`, default 31).
    pub num_leaves: usize,
    /// Minimum rows in a leaf (LightGBM `min_child_samples`, default 20).
    pub min_child_samples: usize,
    /// Shrinkage applied to every leaf value.
    pub learning_rate: f64,
    /// Number of boosting rounds (trees).
    pub n_trees: usize,
}

/// One node of a fitted tree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Node {
    /// A leaf adding `value` (shrinkage included) to the prediction.
    Leaf(f64),
    /// A split: rows with `x[feature] = 0` go to node `left`, rows with 1 to node `right`.
    Split {
        /// The player tested.
        feature: u32,
        /// Index (in the tree's node list) of the `x = 0` child.
        left: usize,
        /// Index of the `x = 1` child.
        right: usize,
    },
}

/// A fitted regression tree; node 0 is the root.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    /// A tree from explicit nodes, root first, e.g. one read from another boosting library.
    ///
    /// Errors ([`crate::Error::InvalidArgument`] naming `tree`): no nodes, or a split whose
    /// child index is not after the split's own (which rules out cycles) or past the end.
    pub fn from_nodes(nodes: Vec<Node>) -> crate::Result<Self> {
        if nodes.is_empty() {
            return Err(crate::Error::invalid(
                "tree",
                "a tree needs at least one node",
            ));
        }
        for (k, node) in nodes.iter().enumerate() {
            if let Node::Split { left, right, .. } = *node {
                if left <= k || right <= k || left >= nodes.len() || right >= nodes.len() {
                    return Err(crate::Error::invalid(
                        "tree",
                        format!(
                            "node {k} has children {left} and {right}: each must be after it and below {}",
                            nodes.len()
                        ),
                    ));
                }
            }
        }
        Ok(Tree { nodes })
    }

    /// Levels of splits on the longest path from the root (0 for a single leaf).
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(0usize, 0usize)];
        while let Some((k, level)) = stack.pop() {
            match self.nodes[k] {
                Node::Split { left, right, .. } => {
                    stack.push((left, level + 1));
                    stack.push((right, level + 1));
                }
                Node::Leaf(_) => deepest = deepest.max(level),
            }
        }
        deepest
    }

    /// The nodes, root first; children are referenced by index.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The tree's output on one row of `n` bytes.
    pub fn predict_row(&self, x: &[u8]) -> f64 {
        let mut k = 0;
        loop {
            match self.nodes[k] {
                Node::Leaf(v) => return v,
                Node::Split {
                    feature,
                    left,
                    right,
                } => {
                    // Branch-free: random 0/1 features defeat the branch predictor.
                    let go_right = usize::from(x[feature as usize] != 0);
                    k = left + go_right * (right - left);
                }
            }
        }
    }
}

/// A boosted ensemble: `f(x) = bias + sum_t tree_t(x)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ensemble {
    /// The initial score (mean training target).
    pub bias: f64,
    /// The trees in boosting order.
    pub trees: Vec<Tree>,
}

impl Ensemble {
    /// Predictions `[m]` on every row of `x` using the first `n_trees` trees.
    pub fn predict(&self, x: &BinaryMatrix, n_trees: usize) -> Vec<f64> {
        self.predict_prefixes(x, &[n_trees]).remove(0)
    }

    /// [`Self::predict`] for each count in `n_trees` (`[counts.len()][m]`), in one pass over the
    /// trees: a shorter ensemble's prediction is a running sum on the way to a longer one's.
    pub fn predict_prefixes(&self, x: &BinaryMatrix, n_trees: &[usize]) -> Vec<Vec<f64>> {
        let stops: Vec<usize> = n_trees.iter().map(|&t| t.min(self.trees.len())).collect();
        let last = stops.iter().copied().max().unwrap_or(0);
        let trees: Vec<Layout> = self.trees[..last].iter().map(Layout::of).collect();
        let mut out = vec![vec![0.0; x.n_rows()]; stops.len()];
        // partial[t]: the sum of the first t trees' outputs on the current row.
        let mut partial = vec![0.0; last + 1];
        for r in 0..x.n_rows() {
            let row = x.row(r);
            for (t, tree) in trees.iter().enumerate() {
                partial[t + 1] = partial[t] + tree.predict_row(row);
            }
            for (o, &stop) in out.iter_mut().zip(&stops) {
                o[r] = self.bias + partial[stop];
            }
        }
        out
    }
}

/// Deepest tree padded to a complete one for prediction (2^12 leaves); deeper ones are walked.
const MAX_COMPLETE_DEPTH: usize = 12;

/// A tree laid out for fast prediction.
enum Layout<'a> {
    /// Padded to a complete tree of depth `depth` in heap order (node `k`'s children are
    /// `2k + 1` for `x = 0` and `2k + 2` for `x = 1`): every row takes exactly `depth` steps and
    /// no leaf test, so there is no branch to mispredict. `features` has `2^depth - 1` entries,
    /// `leaves` `2^depth`; a leaf above the bottom is copied to all its padded descendants.
    Complete {
        depth: usize,
        features: Vec<u32>,
        leaves: Vec<f64>,
    },
    /// Too deep to pad: walked node by node.
    Walked(&'a Tree),
}

impl<'a> Layout<'a> {
    fn of(tree: &'a Tree) -> Self {
        let depth = tree.depth();
        if depth > MAX_COMPLETE_DEPTH {
            return Layout::Walked(tree);
        }
        let mut features = vec![0u32; (1 << depth) - 1];
        let mut leaves = vec![0.0; 1 << depth];
        // (source node, heap slot, level)
        let mut stack = vec![(0usize, 0usize, 0usize)];
        while let Some((src, slot, level)) = stack.pop() {
            match tree.nodes[src] {
                Node::Split {
                    feature,
                    left,
                    right,
                } => {
                    features[slot] = feature;
                    stack.push((left, 2 * slot + 1, level + 1));
                    stack.push((right, 2 * slot + 2, level + 1));
                }
                Node::Leaf(v) => {
                    // The heap slots below `slot` at the bottom level form one contiguous run.
                    let span = 1 << (depth - level);
                    let first = (slot + 1) * span - 1 - ((1 << depth) - 1);
                    leaves[first..first + span].fill(v);
                }
            }
        }
        Layout::Complete {
            depth,
            features,
            leaves,
        }
    }

    fn predict_row(&self, x: &[u8]) -> f64 {
        match self {
            Layout::Complete {
                depth,
                features,
                leaves,
            } => {
                let mut k = 0;
                for _ in 0..*depth {
                    k = 2 * k + 1 + usize::from(x[features[k] as usize] != 0);
                }
                leaves[k - features.len()]
            }
            Layout::Walked(tree) => tree.predict_row(x),
        }
    }
}

/// A leaf under construction: its rows, gradient sums and best split.
struct GrowingLeaf {
    node: usize,
    depth: usize,
    rows: Vec<u32>,
    sum_g: f64,
    hist: Histogram,
    best: Option<SplitChoice>,
}

#[derive(Clone, Copy)]
struct SplitChoice {
    feature: usize,
    gain: f64,
}

impl GrowingLeaf {
    /// The best split by squared-loss gain, if any keeps `min_child` rows per side and gains.
    fn find_best(&mut self, params: &TreeParams, min_gain: f64) {
        self.best = None;
        let count = self.rows.len();
        if self.depth >= params.max_depth || count < 2 * params.min_child_samples {
            return;
        }
        let parent = self.sum_g * self.sum_g / count as f64;
        let min_child = params.min_child_samples as u32;
        // Two passes: the gains with no branch (they vectorise, divisions included), then the
        // first feature with the largest gain above `min_gain`.
        let gains: Vec<f64> = self
            .hist
            .grad
            .iter()
            .zip(&self.hist.count)
            .map(|(&g_right, &c_right)| {
                let c_left = count as u32 - c_right;
                let g_left = self.sum_g - g_right;
                let gain = g_left * g_left / f64::from(c_left)
                    + g_right * g_right / f64::from(c_right)
                    - parent;
                let allowed = c_right >= min_child && c_left >= min_child;
                if allowed {
                    gain
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect();
        let mut best: Option<SplitChoice> = None;
        let mut best_gain = min_gain;
        for (i, &gain) in gains.iter().enumerate() {
            if gain > best_gain {
                best_gain = gain;
                best = Some(SplitChoice { feature: i, gain });
            }
        }
        self.best = best;
    }
}

/// Trees between exact rebuilds of the root histogram (see [`fit`]); bounds rounding drift.
const ROOT_REBUILD_EVERY: usize = 32;

/// Fits `params.n_trees` trees to targets `y` (`[m]`) on the rows of `x` (`[m, n]`).
///
/// The root's histogram is carried from tree to tree instead of rescanned: a tree adds its leaf
/// value `v` to the gradient of every row in the leaf, so each feature's gradient sum grows by
/// `v` times the leaf's count for that feature. It is rebuilt exactly every
/// `ROOT_REBUILD_EVERY` trees.
pub fn fit(x: &BinaryMatrix, y: &[f64], params: &TreeParams) -> Ensemble {
    fit_rebuilding_every(x, y, params, ROOT_REBUILD_EVERY)
}

/// [`fit`] with the root histogram rebuilt exactly every `every` trees (1: every tree).
fn fit_rebuilding_every(
    x: &BinaryMatrix,
    y: &[f64],
    params: &TreeParams,
    every: usize,
) -> Ensemble {
    debug_assert_eq!(x.n_rows(), y.len());
    let m = y.len();
    let bias = if m == 0 {
        0.0
    } else {
        y.iter().sum::<f64>() / m as f64
    };
    let all_rows: Vec<u32> = (0..m as u32).collect();
    // Residuals are known to about 1e-16 of the targets' scale (and the carried root histogram
    // to a few hundred times that): SSE reductions below this floor are rounding, not structure.
    let scale = y.iter().fold(bias.abs(), |a, v| a.max(v.abs()));
    let noise_floor = m as f64 * (1e-13 * scale).powi(2);
    let mut pred = vec![bias; m];
    let mut grad = vec![0.0; m];
    let mut trees = Vec::with_capacity(params.n_trees);
    let mut carried: Option<Histogram> = None;
    for t in 0..params.n_trees {
        for ((g, p), yi) in grad.iter_mut().zip(&pred).zip(y) {
            *g = p - yi;
        }
        let root_hist = match carried.take() {
            Some(h) if t % every != 0 => h,
            _ => Histogram::build(x, &all_rows, &grad),
        };
        let (tree, next) = grow_tree(x, &grad, root_hist, params, noise_floor, &mut pred);
        trees.push(tree);
        carried = Some(next);
    }
    Ensemble { bias, trees }
}

/// Grows one tree on gradients `grad` (whose all-rows histogram is `root_hist`), adds its output
/// to `pred`, and returns it with the all-rows histogram of the updated gradients. Splits must
/// gain more than `noise_floor` and more than 1e-12 of the gradients' sum of squares.
fn grow_tree(
    x: &BinaryMatrix,
    grad: &[f64],
    root_hist: Histogram,
    params: &TreeParams,
    noise_floor: f64,
    pred: &mut [f64],
) -> (Tree, Histogram) {
    let rows: Vec<u32> = (0..grad.len() as u32).collect();
    let (sum_g, sum_sq) = sum_and_squares(grad);
    let min_gain = (1e-12 * sum_sq).max(noise_floor).max(f64::MIN_POSITIVE);
    let mut next = Histogram {
        grad: root_hist.grad.clone(),
        count: root_hist.count.clone(),
    };
    let mut root = GrowingLeaf {
        node: 0,
        depth: 0,
        sum_g,
        hist: root_hist,
        rows,
        best: None,
    };
    root.find_best(params, min_gain);
    let mut nodes = vec![Node::Leaf(0.0)];
    let mut leaves = vec![root];
    while leaves.len() < params.num_leaves {
        let pick = leaves
            .iter()
            .enumerate()
            .filter_map(|(k, l)| l.best.map(|b| (k, b.gain)))
            .fold(None, |acc: Option<(usize, f64)>, (k, g)| match acc {
                Some((_, best)) if best >= g => acc,
                _ => Some((k, g)),
            });
        let Some((k, _)) = pick else { break };
        let parent = leaves.swap_remove(k);
        let (left, right) = split_leaf(x, grad, parent, &mut nodes, params, min_gain);
        leaves.push(left);
        leaves.push(right);
    }
    for leaf in &leaves {
        let value = if leaf.rows.is_empty() {
            0.0
        } else {
            -params.learning_rate * leaf.sum_g / leaf.rows.len() as f64
        };
        nodes[leaf.node] = Node::Leaf(value);
        for &r in &leaf.rows {
            pred[r as usize] += value;
        }
        for (g, &c) in next.grad.iter_mut().zip(&leaf.hist.count) {
            *g += value * f64::from(c);
        }
    }
    (Tree { nodes }, next)
}

/// `(sum v, sum v^2)` in four interleaved lanes (no serial add chain), lanes added at the end.
fn sum_and_squares(v: &[f64]) -> (f64, f64) {
    let (mut s, mut q) = ([0.0f64; 4], [0.0f64; 4]);
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        for k in 0..4 {
            s[k] += c[k];
            q[k] += c[k] * c[k];
        }
    }
    for (k, &x) in chunks.remainder().iter().enumerate() {
        s[k] += x;
        q[k] += x * x;
    }
    ((s[0] + s[1]) + (s[2] + s[3]), (q[0] + q[1]) + (q[2] + q[3]))
}

/// Splits `rows` into those with `column[r] == 0` and the rest, order kept, given that `ones`
/// of them have `column[r] == 1` (the parent histogram's count). Each row is written once, to
/// a cursor picked without a branch (random 0/1 features defeat the branch predictor). Not
/// inlined, so that its cursors stay in registers.
#[inline(never)]
fn partition_rows(rows: &[u32], column: &[u8], ones: usize) -> (Vec<u32>, Vec<u32>) {
    let zeros = rows.len() - ones;
    let mut out = vec![0u32; rows.len()];
    let (mut next_zero, mut next_one) = (0usize, zeros);
    for &r in rows {
        let one = column[r as usize] != 0;
        let slot = if one { next_one } else { next_zero };
        out[slot] = r;
        next_zero += usize::from(!one);
        next_one += usize::from(one);
    }
    debug_assert_eq!((next_zero, next_one), (zeros, rows.len()));
    let right = out.split_off(zeros);
    (out, right)
}

/// Splits `parent` on its best feature; returns the `x = 0` and `x = 1` children.
fn split_leaf(
    x: &BinaryMatrix,
    grad: &[f64],
    parent: GrowingLeaf,
    nodes: &mut Vec<Node>,
    params: &TreeParams,
    min_gain: f64,
) -> (GrowingLeaf, GrowingLeaf) {
    let feature = parent.best.map_or(0, |b| b.feature);
    let ones = parent.hist.count[feature] as usize;
    let (rows_left, rows_right) = partition_rows(&parent.rows, x.column(feature), ones);
    let left_node = nodes.len();
    nodes.push(Node::Leaf(0.0));
    nodes.push(Node::Leaf(0.0));
    nodes[parent.node] = Node::Split {
        feature: feature as u32,
        left: left_node,
        right: left_node + 1,
    };
    // Scan the smaller child; the larger one's histogram is the parent's minus it. Children at
    // the depth limit are never split: they need only the counts (for the carried root
    // histogram), not the gradient sums.
    let scan = |rows: &[u32]| {
        if parent.depth + 1 >= params.max_depth {
            Histogram::counts(x, rows)
        } else {
            Histogram::build(x, rows, grad)
        }
    };
    let sum_right = parent.hist.grad[feature];
    let (hist_left, hist_right) = if rows_left.len() <= rows_right.len() {
        let h = scan(&rows_left);
        let other = parent.hist.minus(&h);
        (h, other)
    } else {
        let h = scan(&rows_right);
        let other = parent.hist.minus(&h);
        (other, h)
    };
    let mut left = GrowingLeaf {
        node: left_node,
        depth: parent.depth + 1,
        rows: rows_left,
        sum_g: parent.sum_g - sum_right,
        hist: hist_left,
        best: None,
    };
    let mut right = GrowingLeaf {
        node: left_node + 1,
        depth: parent.depth + 1,
        rows: rows_right,
        sum_g: sum_right,
        hist: hist_right,
        best: None,
    };
    left.find_best(params, min_gain);
    right.find_best(params, min_gain);
    (left, right)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::sampling::distinct_uniform_masks;

    fn params(depth: usize, trees: usize, lr: f64) -> TreeParams {
        TreeParams {
            max_depth: depth,
            num_leaves: 31,
            min_child_samples: 20,
            learning_rate: lr,
            n_trees: trees,
        }
    }

    #[test]
    fn one_tree_of_depth_one_splits_on_the_only_signal() {
        let masks = distinct_uniform_masks(8, 256, 0);
        let x = BinaryMatrix::from_masks(&masks);
        let y: Vec<f64> = (0..256).map(|r| 3.0 * f64::from(x.row(r)[5])).collect();
        let e = fit(&x, &y, &params(1, 1, 1.0));
        assert!((e.bias - 1.5).abs() < 1e-12);
        match e.trees[0].nodes()[0] {
            Node::Split { feature, .. } => assert_eq!(feature, 5),
            other => panic!("expected a split, got {other:?}"),
        }
        let p = e.predict(&x, 1);
        for (a, b) in p.iter().zip(&y) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn boosting_fits_an_and_of_two_players() {
        let masks = distinct_uniform_masks(10, 1024, 1);
        let x = BinaryMatrix::from_masks(&masks);
        let y: Vec<f64> = (0..1024)
            .map(|r| f64::from(x.row(r)[2] & x.row(r)[7]) - 0.5 * f64::from(x.row(r)[0]))
            .collect();
        let e = fit(&x, &y, &params(3, 200, 0.1));
        let p = e.predict(&x, 200);
        let err: f64 = p.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / 1024.0;
        assert!(err < 1e-6, "mse {err}");
        assert!(e.trees.iter().all(|t| t.nodes().len() <= 2 * 31));
    }

    #[test]
    fn carried_root_histogram_grows_the_same_trees_as_rescanning() {
        let masks = distinct_uniform_masks(40, 600, 5);
        let x = BinaryMatrix::from_masks(&masks);
        let y: Vec<f64> = (0..600)
            .map(|r| {
                let b = |i: usize| f64::from(x.row(r)[i]);
                1.5 * b(3) - b(7) + 2.0 * b(1) * b(2) - 0.7 * b(5) * b(9) * b(11)
            })
            .collect();
        let p = params(5, 300, 0.1);
        let carried = fit(&x, &y, &p);
        let rescanned = fit_rebuilding_every(&x, &y, &p, 1);
        let split_features = |e: &Ensemble| -> Vec<Vec<u32>> {
            e.trees
                .iter()
                .map(|t| {
                    t.nodes()
                        .iter()
                        .filter_map(|n| match n {
                            Node::Split { feature, .. } => Some(*feature),
                            Node::Leaf(_) => None,
                        })
                        .collect()
                })
                .collect()
        };
        assert_eq!(split_features(&carried), split_features(&rescanned));
        for (a, b) in carried
            .predict(&x, 300)
            .iter()
            .zip(rescanned.predict(&x, 300))
        {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }

    #[test]
    fn padded_and_walked_layouts_predict_like_the_tree() {
        // A chain splitting on features 0, 1, 2, ...: leaf value = index of the first 0 bit.
        // Depth 4 is padded to a complete tree; depth 14 is past MAX_COMPLETE_DEPTH and walked.
        for depth in [4usize, 14] {
            let mut nodes = Vec::new();
            for level in 0..depth {
                let k = nodes.len();
                nodes.push(Node::Split {
                    feature: level as u32,
                    left: k + 1,
                    right: k + 2,
                });
                nodes.push(Node::Leaf(level as f64));
            }
            nodes.push(Node::Leaf(depth as f64));
            let tree = Tree::from_nodes(nodes).unwrap();
            assert_eq!(tree.depth(), depth);
            let layout = Layout::of(&tree);
            assert_eq!(
                matches!(layout, Layout::Walked(_)),
                depth > MAX_COMPLETE_DEPTH
            );
            let masks = distinct_uniform_masks(depth, 200, 4);
            let x = BinaryMatrix::from_masks(&masks);
            for r in 0..x.n_rows() {
                let first_zero = x.row(r).iter().position(|&b| b == 0).unwrap_or(depth);
                assert_eq!(layout.predict_row(x.row(r)), first_zero as f64);
                assert_eq!(tree.predict_row(x.row(r)), first_zero as f64);
            }
        }
    }

    #[test]
    fn trees_from_nodes_reject_cycles_and_dangling_children() {
        let split = |left, right| Node::Split {
            feature: 0,
            left,
            right,
        };
        assert!(Tree::from_nodes(vec![]).is_err());
        assert!(Tree::from_nodes(vec![split(0, 1), Node::Leaf(1.0)]).is_err());
        assert!(Tree::from_nodes(vec![split(1, 3), Node::Leaf(1.0), Node::Leaf(2.0)]).is_err());
        let tree = Tree::from_nodes(vec![split(1, 2), Node::Leaf(1.0), Node::Leaf(2.0)]).unwrap();
        assert_eq!(tree.predict_row(&[0]), 1.0);
        assert_eq!(tree.predict_row(&[1]), 2.0);
    }

    #[test]
    fn constant_targets_grow_no_split() {
        let masks = distinct_uniform_masks(6, 64, 2);
        let x = BinaryMatrix::from_masks(&masks);
        let e = fit(&x, &[0.3; 64], &params(5, 10, 0.1));
        assert!(e
            .trees
            .iter()
            .all(|t| matches!(t.nodes(), [Node::Leaf(v)] if v.abs() < 1e-15)));
    }

    #[test]
    fn min_child_samples_and_depth_are_respected() {
        let masks = distinct_uniform_masks(12, 100, 3);
        let x = BinaryMatrix::from_masks(&masks);
        let y: Vec<f64> = (0..100).map(|r| r as f64).collect();
        let e = fit(&x, &y, &params(2, 5, 0.5));
        for t in &e.trees {
            assert!(t.nodes().len() <= 7, "depth 2 has at most 4 leaves");
            // Every leaf gets >= 20 rows: count them.
            let mut counts = vec![0usize; t.nodes().len()];
            for r in 0..x.n_rows() {
                let mut k = 0;
                while let Node::Split {
                    feature,
                    left,
                    right,
                } = t.nodes()[k]
                {
                    k = if x.row(r)[feature as usize] == 0 {
                        left
                    } else {
                        right
                    };
                }
                counts[k] += 1;
            }
            for (k, node) in t.nodes().iter().enumerate() {
                if matches!(node, Node::Leaf(_)) {
                    assert!(counts[k] >= 20, "leaf {k} has {} rows", counts[k]);
                }
            }
        }
    }
}
