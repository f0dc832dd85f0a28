//! Trees laid out for walking many rows at once.
//!
//! A saved [`Tree`] is a list of rich nodes (rules with category lists, gains, counts): right for
//! reading and saving, slow to walk row after row, because every step branches on the rule's
//! kind, on missing values and on the comparison, and those branches differ from row to row.
//!
//! A [`Forest`] removes the branches:
//! - a block of rows is first *binned* with the model's own cut points: per feature, a present
//!   numeric value's bin is 1 + the number of the forest's thresholds below it, a category's bin
//!   is 1 + its code, and bin 0 is "missing";
//! - every split then becomes the same test, "is this bin's bit set in the node's bitset", with
//!   the missing value's direction as bit 0;
//! - leaves point to themselves, so a block walks exactly `depth` levels with no test of where
//!   each row is.
//!
//! The routing is the saved trees' exactly: a value equal to a threshold goes left, missing
//! values and values of the wrong kind take the default direction, unseen categories go right.

use crate::booster::Booster;
use crate::dataset::{Column, Dataset, FeatureKind, MISSING_CATEGORY};
use crate::tree::{Node, SplitRule, Tree};

/// One node, as routing sees it: the bitset of the bins that go left, and the children.
#[derive(Clone, Copy, Debug)]
struct Step {
    feature: u32,
    /// First word of the node's bitset in [`Forest::bits`].
    offset: u32,
    /// Left and right child, each marked with [`AT_END`] when it is a leaf (or no node), so that
    /// a walk knows a row is done without reading the child's step; a leaf's are itself, marked.
    child: [u32; 2],
}

impl Step {
    /// Whether this step is a split of the tree whose node `at` it is (a leaf's children are
    /// itself).
    #[inline]
    fn splits(&self, at: u32) -> bool {
        self.child[0] & !AT_END != at
    }
}

/// One tree, flattened; node indices are the saved tree's.
#[derive(Clone, Debug)]
struct FlatTree {
    steps: Vec<Step>,
    /// Leaf outputs by node index (0 for splits).
    values: Vec<f64>,
    /// Longest root-to-leaf path, in splits.
    depth: usize,
}

/// Marks a child that ends a walk ([`Step::child`]).
const AT_END: u32 = 1 << 31;

/// Rows that walk a tree side by side.
const LANES: usize = 8;

/// How one feature's values become bins.
#[derive(Clone, Debug)]
enum Bins {
    /// No split uses the feature.
    Unused,
    /// The forest's thresholds on the feature, sorted, without duplicates.
    Numeric(Vec<f64>),
    /// The largest code any split lists; larger codes share one bin that no set holds.
    Categorical(u32),
}

impl Bins {
    fn count(&self) -> usize {
        match self {
            Bins::Unused => 1,
            Bins::Numeric(cuts) => cuts.len() + 2,
            Bins::Categorical(max) => *max as usize + 3,
        }
    }

    fn bin(&self, column: &Column, row: usize) -> u32 {
        match (self, column) {
            (Bins::Numeric(cuts), Column::Numeric(values)) => match values.get(row) {
                Some(&x) if !x.is_nan() => 1 + cuts.partition_point(|&c| c < x) as u32,
                _ => 0,
            },
            (Bins::Categorical(max), Column::Categorical(codes)) => match codes.get(row) {
                Some(&code) if code != MISSING_CATEGORY => 1 + code.min(max + 1),
                _ => 0,
            },
            _ => 0,
        }
    }
}

/// A block of rows binned for [`Forest::leaves`] (reused from block to block).
#[derive(Clone, Debug, Default)]
pub struct Block {
    bins: BlockBins,
}

/// A block's bins, row-major (`bins[row * features + feature]`), in the narrowest integer that
/// holds every feature's bins: the smaller the block, the more of it stays in the fastest cache
/// while rows walk the trees.
#[derive(Clone, Debug)]
enum BlockBins {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Default for BlockBins {
    fn default() -> Self {
        BlockBins::U8(Vec::new())
    }
}

impl BlockBins {
    /// The bin at `index` (0, missing, past the end).
    #[inline]
    fn get(&self, index: usize) -> u32 {
        match self {
            BlockBins::U8(bins) => bins.get(index).map_or(0, |&bin| bin.into()),
            BlockBins::U16(bins) => bins.get(index).map_or(0, |&bin| bin.into()),
            BlockBins::U32(bins) => bins.get(index).copied().unwrap_or(0),
        }
    }
}

/// A bin as a block holds it.
trait BinInt: Copy + Default + Into<u32> + TryFrom<u32> {
    /// The block's vector, to reuse, if it holds this integer (else a new one).
    fn reuse(bins: BlockBins) -> Vec<Self>;
    /// The vector as a block's bins.
    fn hold(bins: Vec<Self>) -> BlockBins;
}

impl BinInt for u8 {
    fn reuse(bins: BlockBins) -> Vec<Self> {
        if let BlockBins::U8(bins) = bins { bins } else { Vec::new() }
    }
    fn hold(bins: Vec<Self>) -> BlockBins {
        BlockBins::U8(bins)
    }
}

impl BinInt for u16 {
    fn reuse(bins: BlockBins) -> Vec<Self> {
        if let BlockBins::U16(bins) = bins { bins } else { Vec::new() }
    }
    fn hold(bins: Vec<Self>) -> BlockBins {
        BlockBins::U16(bins)
    }
}

impl BinInt for u32 {
    fn reuse(bins: BlockBins) -> Vec<Self> {
        if let BlockBins::U32(bins) = bins { bins } else { Vec::new() }
    }
    fn hold(bins: Vec<Self>) -> BlockBins {
        BlockBins::U32(bins)
    }
}

/// The trees of a model, flattened for walking blocks of rows ([`Forest::leaves`]).
#[derive(Clone, Debug)]
pub struct Forest {
    trees: Vec<FlatTree>,
    features: Vec<Bins>,
    /// Every node's bitset, one after another; the first words are all zero (the leaves').
    bits: Vec<u64>,
    /// The most bins any feature has.
    most_bins: usize,
}

impl Forest {
    /// Flattens the model's trees.
    pub fn new(booster: &Booster) -> Self {
        let kinds = booster.feature_kinds();
        let features = feature_bins(booster.trees(), kinds);
        let most_bins = features.iter().map(Bins::count).max().unwrap_or(1);
        let mut bits = vec![0u64; most_bins.div_ceil(64)];
        let trees = booster.trees().iter().map(|tree| flatten(tree, &features, kinds, &mut bits)).collect();
        Forest { trees, features, bits, most_bins }
    }

    /// Bins rows `first..first + rows` of `data` into `block` (rows past the end are missing).
    pub fn bin(&self, data: &Dataset, first: usize, rows: usize, block: &mut Block) {
        if self.most_bins <= 1 << 8 {
            self.bin_as::<u8>(data, first, rows, block);
        } else if self.most_bins <= 1 << 16 {
            self.bin_as::<u16>(data, first, rows, block);
        } else {
            self.bin_as::<u32>(data, first, rows, block);
        }
    }

    /// [`Forest::bin`] into integers that hold every bin ([`Forest::most_bins`]).
    fn bin_as<B: BinInt>(&self, data: &Dataset, first: usize, rows: usize, block: &mut Block) {
        let width = self.features.len();
        let mut out = B::reuse(std::mem::take(&mut block.bins));
        out.clear();
        out.resize(rows * width, B::default());
        for (feature, (bins, column)) in self.features.iter().zip(&data.columns).enumerate() {
            if matches!(bins, Bins::Unused) {
                continue;
            }
            for (offset, row) in out.chunks_mut(width).enumerate() {
                // A bin is below its feature's count, which `B` holds.
                row[feature] = B::try_from(bins.bin(column, first + offset)).unwrap_or_default();
            }
        }
        block.bins = B::hold(out);
    }

    /// The leaf of tree `tree` that each row of `block` reaches, as a node index of that tree,
    /// into `out` (one per row). A row of a malformed tree that ends on no leaf gets `u32::MAX`;
    /// a loaded [`Booster`]'s trees are checked, so this does not occur.
    pub fn leaves(&self, tree: usize, block: &Block, out: &mut [u32]) {
        let Some(flat) = self.trees.get(tree) else {
            out.fill(u32::MAX);
            return;
        };
        match &block.bins {
            BlockBins::U8(bins) => self.walk(flat, bins, out),
            BlockBins::U16(bins) => self.walk(flat, bins, out),
            BlockBins::U32(bins) => self.walk(flat, bins, out),
        }
    }

    /// [`Forest::leaves`] of one tree on a block's bins.
    ///
    /// [`LANES`] rows walk side by side, each a level further at every turn, until all of them
    /// are on a leaf: a row on a leaf stays there (a leaf's children are itself, and its bitset
    /// is all zero), so the turn needs no test of where each row is, and the lanes' reads do
    /// not wait for one another.
    fn walk<B: BinInt>(&self, flat: &FlatTree, bins: &[B], out: &mut [u32]) {
        let width = self.features.len();
        let steps = &flat.steps;
        if steps.first().is_some_and(|step| !step.splits(0)) {
            // A tree of one leaf: every row is on its root.
            out.fill(0);
            return;
        }
        for (chunk, out) in out.chunks_mut(LANES).enumerate() {
            let mut at = [u32::MAX; LANES];
            at[..out.len()].fill(0);
            let first = chunk * LANES;
            for _ in 0..flat.depth {
                let mut done = AT_END;
                for (lane, at) in at.iter_mut().enumerate() {
                    let next = match steps.get((*at & !AT_END) as usize) {
                        Some(step) => {
                            let bin: u32 = bins.get((first + lane) * width + step.feature as usize).map_or(0, |&bin| bin.into());
                            // [`Forest::direction`]'s test, written out: calling it with the step
                            // copied walks slower (`docs/performance.md`, tried and dropped).
                            let word = self.bits.get(step.offset as usize + (bin / 64) as usize).copied().unwrap_or(0);
                            step.child[usize::from(word >> (bin % 64) & 1 == 0)]
                        }
                        None => u32::MAX,
                    };
                    *at = next;
                    done &= next;
                }
                if done != 0 {
                    break;
                }
            }
            for (out, &at) in out.iter_mut().zip(&at) {
                let node = at & !AT_END;
                *out = if at & AT_END != 0 && steps.get(node as usize).is_some_and(|step| !step.splits(node)) { node } else { u32::MAX };
            }
        }
    }

    /// Calls `visit(row, node)` for every node of tree `tree` below its root that row `row` of
    /// `block` (of `rows` rows) passes through, down to `depth` splits from the root: level by
    /// level, the rows in order within a level. Nodes are the saved tree's indices; a row that
    /// reaches a leaf earlier visits no more nodes. `at` is scratch space.
    pub fn visits(&self, tree: usize, block: &Block, rows: usize, depth: usize, at: &mut Vec<u32>, mut visit: impl FnMut(usize, u32)) {
        let width = self.features.len();
        let Some(flat) = self.trees.get(tree) else { return };
        at.clear();
        at.resize(rows, 0);
        for _ in 0..depth.min(flat.depth) {
            for (row, at) in at.iter_mut().enumerate() {
                let Some(step) = flat.steps.get(*at as usize).copied() else { continue };
                let bin = block.bins.get(row * width + step.feature as usize);
                let next = step.child[self.direction(step, bin)] & !AT_END;
                if next != *at {
                    *at = next;
                    visit(row, next);
                }
            }
        }
    }

    /// 0 (left) where `bin` is set in the step's bit set, 1 (right) otherwise.
    #[inline]
    fn direction(&self, step: Step, bin: u32) -> usize {
        let word = self.bits.get(step.offset as usize + (bin / 64) as usize).copied().unwrap_or(0);
        usize::from(word >> (bin % 64) & 1 == 0)
    }

    /// Adds tree by tree the outputs of the rows of `block` to `margins` (each row adds the
    /// trees in model order). `leaves` is scratch space, one per row.
    pub fn add_outputs(&self, block: &Block, margins: &mut [f64], leaves: &mut [u32]) {
        for (tree, flat) in self.trees.iter().enumerate() {
            self.leaves(tree, block, leaves);
            for (margin, &leaf) in margins.iter_mut().zip(leaves.iter()) {
                *margin += flat.values.get(leaf as usize).copied().unwrap_or(0.0);
            }
        }
    }
}

/// Per feature, the bins its splits need.
fn feature_bins(trees: &[Tree], kinds: &[FeatureKind]) -> Vec<Bins> {
    let mut cuts: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let mut max_code: Vec<Option<u32>> = vec![None; kinds.len()];
    for node in trees.iter().flat_map(|tree| &tree.nodes) {
        if let Node::Split { feature, rule, .. } = node {
            match (rule, kinds.get(*feature)) {
                (SplitRule::Threshold(t), Some(FeatureKind::Numeric)) if !t.is_nan() => cuts[*feature].push(*t),
                (SplitRule::Categories(codes), Some(FeatureKind::Categorical)) => {
                    let top = codes.iter().copied().filter(|&c| c != MISSING_CATEGORY).max();
                    max_code[*feature] = max_code[*feature].max(top).or(Some(0));
                }
                _ => {}
            }
        }
    }
    kinds
        .iter()
        .zip(cuts)
        .zip(max_code)
        .map(|((kind, mut cuts), max)| match kind {
            FeatureKind::Numeric if !cuts.is_empty() => {
                cuts.sort_by(f64::total_cmp);
                cuts.dedup();
                Bins::Numeric(cuts)
            }
            FeatureKind::Categorical if max.is_some() => Bins::Categorical(max.unwrap_or(0)),
            _ => Bins::Unused,
        })
        .collect()
}

fn flatten(tree: &Tree, features: &[Bins], kinds: &[FeatureKind], bits: &mut Vec<u64>) -> FlatTree {
    let steps: Vec<Step> = tree
        .nodes
        .iter()
        .enumerate()
        .map(|(index, node)| match node {
            Node::Leaf { .. } => Step { feature: 0, offset: 0, child: [index as u32; 2] },
            Node::Split { feature, rule, default_left, left, right, .. } => {
                let bins = features.get(*feature).unwrap_or(&Bins::Unused);
                let count = bins.count();
                let mut set = vec![0u64; count.div_ceil(64)];
                let mut put = |bin: usize| set[bin / 64] |= 1 << (bin % 64);
                match (rule, bins, kinds.get(*feature)) {
                    (SplitRule::Threshold(t), Bins::Numeric(cuts), Some(FeatureKind::Numeric)) => {
                        if !t.is_nan() {
                            // Present values `x <= t`: the bins of values at or below t's cut.
                            let last = cuts.partition_point(|c| c < t) + 1;
                            (1..=last).for_each(&mut put);
                        }
                        if *default_left {
                            put(0);
                        }
                    }
                    (SplitRule::Categories(codes), Bins::Categorical(_), Some(FeatureKind::Categorical)) => {
                        codes.iter().filter(|&&c| c != MISSING_CATEGORY).for_each(|&c| put(c as usize + 1));
                        if *default_left {
                            put(0);
                        }
                    }
                    // A rule of the wrong kind sends every row the default way.
                    _ => {
                        if *default_left {
                            (0..count).for_each(&mut put);
                        }
                    }
                }
                let offset = bits.len() as u32;
                bits.extend(set);
                Step { feature: *feature as u32, offset, child: [*left, *right] }
            }
        })
        .collect();
    let values = tree.nodes.iter().map(|node| if let Node::Leaf { value, .. } = node { *value } else { 0.0 }).collect();
    // A leaf points to itself; a child past the last node (a malformed tree) ends the walk too.
    let ends = |child: u32| steps.get(child as usize).is_none_or(|step: &Step| step.child[0] == child);
    let marked: Vec<[u32; 2]> = steps
        .iter()
        .map(|step| {
            step.child.map(|child| {
                if child >= AT_END {
                    u32::MAX
                } else if ends(child) {
                    child | AT_END
                } else {
                    child
                }
            })
        })
        .collect();
    let steps = steps.into_iter().zip(marked).map(|(step, child)| Step { child, ..step }).collect();
    FlatTree { depth: tree.depth(), steps, values }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Params;

    /// A model of one tree over `data`'s features.
    fn one_tree(data: &Dataset, tree: Tree) -> Booster {
        Booster {
            format_version: crate::MODEL_FORMAT_VERSION,
            feature_names: data.names.clone(),
            feature_kinds: data.columns.iter().map(Column::kind).collect(),
            init_score: 0.0,
            trees: vec![tree],
            best_iteration: 1,
            valid_history: Vec::new(),
            params: Params::default(),
        }
    }

    fn walk(forest: &Forest, data: &Dataset, first: usize, rows: usize) -> Vec<u32> {
        let mut block = Block::default();
        forest.bin(data, first, rows, &mut block);
        let mut out = vec![0; rows];
        forest.leaves(0, &block, &mut out);
        out
    }

    #[test]
    fn leaves_match_the_saved_trees() {
        let tree = Tree {
            nodes: vec![
                Node::Split { feature: 0, rule: SplitRule::Threshold(1.5), default_left: false, left: 1, right: 2, gain: 1.0, count: 10.0 },
                Node::Split {
                    feature: 1,
                    rule: SplitRule::Categories(vec![2, 70]),
                    default_left: true,
                    left: 3,
                    right: 4,
                    gain: 1.0,
                    count: 6.0,
                },
                Node::Leaf { value: 1.0, count: 4.0 },
                Node::Leaf { value: 2.0, count: 3.0 },
                Node::Leaf { value: 3.0, count: 3.0 },
            ],
        };
        let x = vec![1.0, 1.5, 1.0, f64::NAN, 2.0, 1.0, 1.0, f64::NEG_INFINITY];
        let c = vec![2, 70, 3, 2, 2, MISSING_CATEGORY, 500, 71];
        let data = Dataset::new(vec!["x".into(), "c".into()], vec![Column::Numeric(x), Column::Categorical(c)]).unwrap();
        let booster = one_tree(&data, tree.clone());
        let forest = Forest::new(&booster);
        let out = walk(&forest, &data, 0, 8);
        let expected: Vec<u32> = (0..8).map(|row| tree.leaf_index(&data.columns, row).unwrap() as u32).collect();
        assert_eq!(out, expected);
        assert_eq!(out, vec![3, 3, 4, 2, 2, 3, 4, 4]);
        assert_eq!(walk(&forest, &data, 4, 3), vec![2, 3, 4]);
    }

    #[test]
    fn blocks_of_wide_bins_walk_as_narrow_ones() {
        // A split listing code 300 needs 16-bit bins, one listing code 70,000 32-bit bins.
        for top in [30, 300, 70_000] {
            let tree = Tree {
                nodes: vec![
                    Node::Split {
                        feature: 0,
                        rule: SplitRule::Categories(vec![1, top]),
                        default_left: false,
                        left: 1,
                        right: 2,
                        gain: 1.0,
                        count: 9.0,
                    },
                    Node::Leaf { value: 1.0, count: 4.0 },
                    Node::Split {
                        feature: 1,
                        rule: SplitRule::Threshold(0.5),
                        default_left: true,
                        left: 3,
                        right: 4,
                        gain: 1.0,
                        count: 5.0,
                    },
                    Node::Leaf { value: 2.0, count: 2.0 },
                    Node::Leaf { value: 3.0, count: 3.0 },
                ],
            };
            let c = vec![1, top, top + 1, 2, MISSING_CATEGORY, 0, top - 1, 1, 5, top];
            let x = vec![0.0, 1.0, 0.2, f64::NAN, 0.9, 0.5, 0.6, 0.1, f64::NAN, 0.7];
            let data = Dataset::new(vec!["c".into(), "x".into()], vec![Column::Categorical(c), Column::Numeric(x)]).unwrap();
            let booster = one_tree(&data, tree.clone());
            let forest = Forest::new(&booster);
            let expected: Vec<u32> = (0..10).map(|row| tree.leaf_index(&data.columns, row).unwrap() as u32).collect();
            assert_eq!(walk(&forest, &data, 0, 10), expected, "codes up to {top}");
            assert_eq!(expected, vec![1, 1, 3, 3, 4, 3, 4, 1, 3, 1]);
        }
    }

    #[test]
    fn visits_are_the_paths_of_the_saved_trees() {
        let n = 2_000;
        let x: Vec<f64> = (0..n).map(|i| if i % 13 == 0 { f64::NAN } else { f64::from(i % 90) / 3.0 }).collect();
        let c: Vec<u32> = (0..n).map(|i| if i % 29 == 0 { MISSING_CATEGORY } else { (i % 35) as u32 }).collect();
        let y: Vec<f64> = (0..n).map(|i| f64::from(u8::from((i % 90 > 50) ^ (i % 35 < 7)))).collect();
        let data = Dataset::new(vec!["x".into(), "c".into()], vec![Column::Numeric(x), Column::Categorical(c)]).unwrap();
        let params = Params { n_trees: 12, early_stopping_rounds: None, min_data_in_leaf: 5, ..Params::default() };
        let booster = Booster::train(&data, &y, None, None, &params).unwrap();
        let forest = Forest::new(&booster);
        let (mut block, mut at) = (Block::default(), Vec::new());
        forest.bin(&data, 0, n as usize, &mut block);
        for depth in [0, 1, 2, 3, 10] {
            for (t, tree) in booster.trees().iter().enumerate() {
                let mut seen = vec![Vec::new(); n as usize];
                forest.visits(t, &block, n as usize, depth, &mut at, |row, node| seen[row].push(node as usize));
                for (row, seen) in seen.iter().enumerate() {
                    // The saved tree's path, one node after another from the root.
                    let mut path = Vec::new();
                    let mut node = 0;
                    while let Node::Split { feature, rule, default_left, left, right, .. } = &tree.nodes[node] {
                        if path.len() == depth {
                            break;
                        }
                        node = if rule.goes_left(&data.columns[*feature], row, *default_left) { *left } else { *right } as usize;
                        path.push(node);
                    }
                    assert_eq!(seen, &path, "tree {t}, row {row}, depth {depth}");
                }
            }
        }
    }

    #[test]
    fn a_child_past_the_last_node_ends_on_no_leaf() {
        let tree = Tree {
            nodes: vec![
                Node::Split { feature: 0, rule: SplitRule::Threshold(1.5), default_left: false, left: 1, right: 9, gain: 1.0, count: 4.0 },
                Node::Leaf { value: 1.0, count: 2.0 },
            ],
        };
        let data = Dataset::new(vec!["x".into()], vec![Column::Numeric(vec![1.0, 2.0, f64::NAN, 0.5])]).unwrap();
        let booster = one_tree(&data, tree);
        assert_eq!(walk(&Forest::new(&booster), &data, 0, 4), vec![1, u32::MAX, u32::MAX, 1]);
    }

    #[test]
    fn a_single_leaf_tree_is_its_root() {
        let data = Dataset::new(vec!["x".into()], vec![Column::Numeric(vec![1.0, f64::NAN])]).unwrap();
        let booster = one_tree(&data, Tree { nodes: vec![Node::Leaf { value: 0.5, count: 2.0 }] });
        assert_eq!(walk(&Forest::new(&booster), &data, 0, 2), vec![0, 0]);
    }

    #[test]
    fn a_trained_model_scores_as_its_trees_do() {
        let n = 3_000;
        let x: Vec<f64> = (0..n).map(|i| if i % 17 == 0 { f64::NAN } else { f64::from(i % 100) / 7.0 }).collect();
        let c: Vec<u32> = (0..n).map(|i| if i % 23 == 0 { MISSING_CATEGORY } else { (i % 40) as u32 }).collect();
        let y: Vec<f64> = (0..n).map(|i| f64::from(u8::from((i % 100 > 60) ^ (i % 40 < 9)))).collect();
        let data = Dataset::new(vec!["x".into(), "c".into()], vec![Column::Numeric(x), Column::Categorical(c)]).unwrap();
        let params = Params { n_trees: 30, early_stopping_rounds: None, min_data_in_leaf: 5, ..Params::default() };
        let booster = Booster::train(&data, &y, None, None, &params).unwrap();
        let forest = Forest::new(&booster);
        let mut block = Block::default();
        let mut out = vec![0; 500];
        for first in (0..n as usize).step_by(500) {
            forest.bin(&data, first, 500, &mut block);
            for (t, tree) in booster.trees().iter().enumerate() {
                forest.leaves(t, &block, &mut out);
                for (offset, leaf) in out.iter().enumerate() {
                    assert_eq!(Some(*leaf as usize), tree.leaf_index(&data.columns, first + offset));
                }
            }
        }
    }
}
