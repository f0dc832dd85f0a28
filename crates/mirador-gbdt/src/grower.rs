//! Leaf-wise (best-first) growth of one tree on binned data.
//!
//! The rows of every leaf are a contiguous range of one index buffer, partitioned stably in place
//! when the leaf splits. Only the smaller child's histogram is built from its rows; the larger
//! child's is the parent's minus the smaller's.

use std::ops::Range;

use rayon::prelude::*;

use crate::binning::{BinMapper, BinnedData};
use crate::histogram::{BinStats, GradPair, Histogram};
use crate::params::Params;
use crate::split::{BinSet, Decision, SplitCandidate, SplitConfig, best_split};
use crate::tree::{Node, SplitRule, Tree};

/// A tree over bin indices, used to score binned training and validation rows.
pub(crate) struct BinTree {
    nodes: Vec<BinNode>,
}

enum BinNode {
    Split { feature: usize, left_bins: BinSet, left: u32, right: u32 },
    Leaf { value: f64 },
}

impl BinTree {
    /// Output for row `row` of binned data laid out like the training data.
    pub(crate) fn predict(&self, data: &BinnedData, row: usize) -> f64 {
        let mut index = 0;
        loop {
            match &self.nodes[index] {
                BinNode::Leaf { value } => return *value,
                BinNode::Split { feature, left_bins, left, right } => {
                    let bin = data.columns[*feature][row];
                    index = if left_bins.contains(bin) { *left } else { *right } as usize;
                }
            }
        }
    }
}

/// A grown tree: raw-value form, bin form, and each leaf's value with its rows' index range.
pub(crate) struct GrownTree {
    pub(crate) tree: Tree,
    pub(crate) bin_tree: BinTree,
    pub(crate) leaves: Vec<(f64, Range<usize>)>,
}

struct LeafState {
    node: usize,
    rows: Range<usize>,
    sums: BinStats,
    depth: usize,
    histogram: Option<Histogram>,
    best: Option<SplitCandidate>,
}

/// Grows trees on one binned training set, reusing buffers between trees.
pub(crate) struct TreeGrower<'a> {
    data: &'a BinnedData,
    mappers: &'a [BinMapper],
    config: SplitConfig,
    num_leaves: usize,
    max_depth: usize,
    learning_rate: f64,
    indices: Vec<u32>,
    scratch: Vec<u32>,
    ordered: Vec<GradPair>,
    pool: Vec<Histogram>,
}

/// What every split of one tree shares.
#[derive(Clone, Copy)]
struct SplitContext<'a> {
    grads: &'a [GradPair],
    features: &'a [usize],
    active: &'a [bool],
    room: bool,
}

/// Trees under construction: raw-value nodes and bin nodes, index-aligned.
struct Nodes {
    tree: Vec<Node>,
    bins: Vec<BinNode>,
}

impl<'a> TreeGrower<'a> {
    pub(crate) fn new(data: &'a BinnedData, mappers: &'a [BinMapper], params: &Params) -> Self {
        Self {
            data,
            mappers,
            config: SplitConfig::new(params),
            num_leaves: params.num_leaves,
            max_depth: params.depth_limit(),
            learning_rate: params.learning_rate,
            indices: Vec::new(),
            scratch: Vec::new(),
            ordered: Vec::new(),
            pool: Vec::new(),
        }
    }

    /// Row indices of the last grown tree; each leaf's range indexes into this.
    pub(crate) fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Grows one tree on the rows in `bag` using the features in `features` (ascending).
    pub(crate) fn grow(&mut self, grads: &[GradPair], bag: &[u32], features: &[usize]) -> GrownTree {
        let mut active = vec![false; self.data.columns.len()];
        for &feature in features {
            active[feature] = true;
        }
        self.indices.clear();
        self.indices.extend_from_slice(bag);
        let sums = BinStats::of_rows(&self.indices, grads);
        let mut nodes = Nodes { tree: vec![Node::Leaf { value: 0.0, count: f64::from(sums.n) }], bins: vec![BinNode::Leaf { value: 0.0 }] };
        let mut root = LeafState { node: 0, rows: 0..self.indices.len(), sums, depth: 0, histogram: None, best: None };
        if self.splittable(&root) {
            let histogram = self.build_histogram(root.rows.clone(), grads, &active);
            root.best = best_split(&histogram, root.sums, self.mappers, features, &self.config);
            root.histogram = Some(histogram);
        }
        let mut leaves = vec![root];
        while leaves.len() < self.num_leaves {
            let mut chosen: Option<(usize, f64)> = None;
            for (position, leaf) in leaves.iter().enumerate() {
                if let Some(best) = &leaf.best
                    && chosen.is_none_or(|(_, gain)| best.gain > gain)
                {
                    chosen = Some((position, best.gain));
                }
            }
            let Some((position, _)) = chosen else { break };
            let mut parent = leaves.swap_remove(position);
            let Some(candidate) = parent.best.take() else {
                leaves.push(parent);
                break;
            };
            let room = leaves.len() + 2 < self.num_leaves;
            let context = SplitContext { grads, features, active: &active, room };
            let (left, right) = self.split_leaf(parent, &candidate, &mut nodes, &context);
            leaves.push(left);
            leaves.push(right);
        }
        let mut leaf_rows = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            let value = self.config.leaf_value(leaf.sums) * self.learning_rate;
            nodes.tree[leaf.node] = Node::Leaf { value, count: f64::from(leaf.sums.n) };
            nodes.bins[leaf.node] = BinNode::Leaf { value };
            leaf_rows.push((value, leaf.rows));
            self.pool.extend(leaf.histogram);
        }
        GrownTree { tree: Tree { nodes: nodes.tree }, bin_tree: BinTree { nodes: nodes.bins }, leaves: leaf_rows }
    }

    fn splittable(&self, leaf: &LeafState) -> bool {
        leaf.depth < self.max_depth && leaf.sums.n >= self.config.min_data.saturating_mul(2) && leaf.sums.h >= 2.0 * self.config.min_hessian
    }

    fn build_histogram(&mut self, rows: Range<usize>, grads: &[GradPair], active: &[bool]) -> Histogram {
        let n_features = self.data.columns.len();
        let mut histogram = self.pool.pop().unwrap_or_else(|| Histogram::new(n_features));
        let rows = &self.indices[rows];
        if rows.len() == grads.len() {
            // Bags hold distinct rows in ascending order, so this is every row: stream the columns.
            histogram.build_all_rows(self.data, grads, active);
        } else {
            self.ordered.clear();
            if rows.len() >= PARALLEL_ROWS {
                self.ordered.par_extend(rows.par_iter().map(|&row| grads[row as usize]));
            } else {
                self.ordered.extend(rows.iter().map(|&row| grads[row as usize]));
            }
            histogram.build(self.data, rows, &self.ordered, active);
        }
        histogram
    }

    /// Applies `candidate` to `parent`; children get split candidates only when `room` remains.
    fn split_leaf(
        &mut self,
        mut parent: LeafState,
        candidate: &SplitCandidate,
        nodes: &mut Nodes,
        context: &SplitContext<'_>,
    ) -> (LeafState, LeafState) {
        let SplitContext { grads, features, active, room } = *context;
        let mapper = &self.mappers[candidate.feature];
        let left_bins = candidate.decision.left_bins(mapper.missing_bin());
        let rows = &mut self.indices[parent.rows.clone()];
        let n_left = partition(rows, &self.data.columns[candidate.feature], left_bins, &mut self.scratch);
        let (rule, default_left) = match &candidate.decision {
            Decision::Threshold { bin, default_left } => (SplitRule::Threshold(mapper.upper_bound(*bin)), *default_left),
            Decision::Categories { left } => {
                let mut codes: Vec<u32> = left.iter().filter_map(|&bin| mapper.category(bin)).collect();
                codes.sort_unstable();
                (SplitRule::Categories(codes), false)
            }
        };
        let left_node = nodes.tree.len();
        let (left_index, right_index) = (left_node as u32, left_node as u32 + 1);
        nodes.tree[parent.node] = Node::Split {
            feature: candidate.feature,
            rule,
            default_left,
            left: left_index,
            right: right_index,
            gain: candidate.gain,
            count: f64::from(parent.sums.n),
        };
        nodes.bins[parent.node] = BinNode::Split { feature: candidate.feature, left_bins, left: left_index, right: right_index };
        for _ in 0..2 {
            nodes.tree.push(Node::Leaf { value: 0.0, count: 0.0 });
            nodes.bins.push(BinNode::Leaf { value: 0.0 });
        }
        let middle = parent.rows.start + n_left;
        let child = |node: usize, rows: Range<usize>, sums: BinStats| LeafState {
            node,
            rows,
            sums,
            depth: parent.depth + 1,
            histogram: None,
            best: None,
        };
        let mut left = child(left_node, parent.rows.start..middle, candidate.left);
        let mut right = child(left_node + 1, middle..parent.rows.end, candidate.right);

        let left_ok = room && self.splittable(&left);
        let right_ok = room && self.splittable(&right);
        if left_ok || right_ok {
            let left_is_small = left.rows.len() <= right.rows.len();
            let (small, large, small_ok, large_ok) =
                if left_is_small { (&mut left, &mut right, left_ok, right_ok) } else { (&mut right, &mut left, right_ok, left_ok) };
            let small_histogram = self.build_histogram(small.rows.clone(), grads, active);
            if large_ok {
                let large_histogram = match parent.histogram.take() {
                    Some(mut histogram) => {
                        histogram.subtract(&small_histogram, active);
                        histogram
                    }
                    None => self.build_histogram(large.rows.clone(), grads, active),
                };
                large.best = best_split(&large_histogram, large.sums, self.mappers, features, &self.config);
                large.histogram = Some(large_histogram);
            }
            if small_ok {
                small.best = best_split(&small_histogram, small.sums, self.mappers, features, &self.config);
                small.histogram = Some(small_histogram);
            } else {
                self.pool.push(small_histogram);
            }
        }
        self.pool.extend(parent.histogram);
        (left, right)
    }
}

/// Nodes with at least this many rows gather gradients and partition rows in parallel; below it
/// the bookkeeping costs more than it saves.
const PARALLEL_ROWS: usize = 1 << 16;

/// Stable in-place partition of `rows` by whether their bin goes left; returns the left count.
///
/// Branch-free: every row is written to both sides and only the matching cursor advances, since
/// the direction of a row is unpredictable. Large nodes are cut into blocks partitioned in
/// parallel and stitched back in block order, which gives the same, stable, result.
fn partition(rows: &mut [u32], column: &[u8], left_bins: BinSet, scratch: &mut Vec<u32>) -> usize {
    if rows.len() >= PARALLEL_ROWS {
        let block = rows.len().div_ceil(4 * rayon::current_num_threads()).max(PARALLEL_ROWS / 4);
        let parts: Vec<(Vec<u32>, Vec<u32>)> = rows
            .par_chunks(block)
            .map(|rows| {
                let mut scratch = Vec::new();
                let mut rows = rows.to_vec();
                let n_left = partition_in_order(&mut rows, column, left_bins, &mut scratch);
                let right = rows.split_off(n_left);
                (rows, right)
            })
            .collect();
        let mut at = 0;
        for part in parts.iter().map(|(left, _)| left).chain(parts.iter().map(|(_, right)| right)) {
            rows[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        return parts.iter().map(|(left, _)| left.len()).sum();
    }
    partition_in_order(rows, column, left_bins, scratch)
}

fn partition_in_order(rows: &mut [u32], column: &[u8], left_bins: BinSet, scratch: &mut Vec<u32>) -> usize {
    scratch.clear();
    scratch.resize(rows.len(), 0);
    let (mut n_left, mut n_right) = (0, 0);
    for i in 0..rows.len() {
        let row = rows[i];
        let goes_left = left_bins.contains(column[row as usize]);
        rows[n_left] = row;
        scratch[n_right] = row;
        n_left += usize::from(goes_left);
        n_right += usize::from(!goes_left);
    }
    rows[n_left..].copy_from_slice(&scratch[..n_right]);
    n_left
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    use super::*;
    use crate::binning::{bin_dataset, fit_mappers};
    use crate::dataset::{Column, Dataset, MISSING_CATEGORY};

    fn random_dataset(rng: &mut Xoshiro256PlusPlus, n: usize) -> Dataset {
        let numeric: Vec<f64> = (0..n)
            .map(|_| match rng.gen_range(0..10) {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::from(rng.gen_range(0..5)),
                _ => rng.gen_range(-3.0..3.0),
            })
            .collect();
        let codes: Vec<u32> = (0..n)
            .map(|_| match rng.gen_range(0..20) {
                0 => MISSING_CATEGORY,
                1 => rng.gen_range(100..110),
                _ => rng.gen_range(0..12),
            })
            .collect();
        Dataset::new(vec!["x".into(), "c".into()], vec![Column::Numeric(numeric), Column::Categorical(codes)]).unwrap()
    }

    /// A tree read through bins and the same tree read through raw values agree on every row,
    /// for the training rows and for new rows binned with the training mappers.
    #[test]
    fn bin_tree_and_raw_tree_route_rows_alike() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let train = random_dataset(&mut rng, 3000);
        let params = Params { max_bins: 8, num_leaves: 40, max_depth: 0, min_data_in_leaf: 5, min_data_per_group: 5, ..Params::default() };
        let mappers = fit_mappers(&train, params.max_bins, 1);
        let binned = bin_dataset(&train, &mappers);
        let grads: Vec<GradPair> =
            (0..train.n_rows()).map(|_| GradPair { g: rng.gen_range(-1.0..1.0), h: rng.gen_range(0.1..0.3) }).collect();
        let bag: Vec<u32> = (0..train.n_rows() as u32).collect();
        let mut grower = TreeGrower::new(&binned, &mappers, &params);
        let grown = grower.grow(&grads, &bag, &[0, 1]);
        assert!(grown.tree.n_leaves() > 10);
        let has_categorical = grown.tree.nodes.iter().any(|node| matches!(node, Node::Split { rule: SplitRule::Categories(_), .. }));
        assert!(has_categorical);
        for data in [train.clone(), random_dataset(&mut rng, 2000)] {
            let binned = bin_dataset(&data, &mappers);
            for row in 0..data.n_rows() {
                let from_bins = grown.bin_tree.predict(&binned, row);
                let from_values = grown.tree.predict_row(&data.columns, row);
                assert!(from_bins.to_bits() == from_values.to_bits(), "row {row}");
            }
        }
        // Each leaf's rows are exactly the training rows routed to it.
        for (value, rows) in &grown.leaves {
            for &row in &grower.indices()[rows.clone()] {
                assert!(grown.tree.predict_row(&train.columns, row as usize).to_bits() == value.to_bits());
            }
        }
    }

    #[test]
    fn partition_is_stable() {
        let column = vec![0u8, 1, 0, 1, 0, 1];
        let mut rows = vec![5, 4, 3, 2, 1, 0];
        let mut left = BinSet::default();
        left.insert(0);
        let n_left = partition(&mut rows, &column, left, &mut Vec::new());
        assert_eq!(n_left, 3);
        assert_eq!(rows, vec![4, 2, 0, 5, 3, 1]);
    }

    #[test]
    fn parallel_partition_equals_the_sequential_one() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let column: Vec<u8> = (0..300_000).map(|_| rng.gen_range(0..=255)).collect();
        let mut rows: Vec<u32> = (0..300_000u32).filter(|_| rng.gen_bool(0.7)).collect();
        rows.reverse();
        let mut left = BinSet::default();
        for bin in (0..=255u8).filter(|b| b % 3 == 0) {
            left.insert(bin);
        }
        let mut expected = rows.clone();
        let n_expected = partition_in_order(&mut expected, &column, left, &mut Vec::new());
        assert!(rows.len() >= PARALLEL_ROWS);
        let n = partition(&mut rows, &column, left, &mut Vec::new());
        assert_eq!(n, n_expected);
        assert_eq!(rows, expected);
    }
}
