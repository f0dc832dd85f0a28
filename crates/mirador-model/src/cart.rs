//! The random forest challenger's forest: smartcore's `RandomForestRegressor` (bootstrap
//! samples, CART trees on the variance criterion, `m` random features tried at each node),
//! grown here with the trees in parallel.
//!
//! smartcore grows its trees one after another on one core; the forest is the slowest part of the
//! challengers, and the fraud model's other work waits for it. Every choice here is smartcore's
//! own, in the same order and with the same arithmetic, so that the forest is the same one:
//! - the bootstrap samples are drawn one tree after another from one generator seeded with the
//!   forest's seed (rand's `SmallRng`, as smartcore draws them), before any tree is grown;
//! - tree `t` draws its features from its own generator seeded with `seed + t`;
//! - each column's row order is smartcore's own argsort (its ties order the sums);
//! - nodes are grown depth first, the second child first, a node's statistics summed in the
//!   order smartcore sums them.
//!
//! A test checks that its predictions are smartcore's to the bit.

use rand_smartcore::SeedableRng;
use rand_smartcore::rngs::SmallRng;
use rand_smartcore::seq::SliceRandom;
use rand_smartcore::{Rng, RngExt};
use rayon::prelude::*;
use smartcore::linalg::basic::arrays::MutArrayView1;

/// How a forest grows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub(crate) trees: usize,
    /// Levels of nodes, the root's included (smartcore's `max_depth`).
    pub(crate) max_depth: u16,
    pub(crate) min_samples_leaf: usize,
    pub(crate) min_samples_split: usize,
    /// Features tried at each node.
    pub(crate) m: usize,
    pub(crate) seed: u64,
}

/// One node: a split (`x[feature] <= threshold` goes to `children[0]`) or a leaf.
#[derive(Debug, Clone, Copy)]
struct Node {
    output: f64,
    feature: usize,
    threshold: f64,
    /// The best proxy improvement found so far, while the tree grows (`None`: no split).
    score: Option<f64>,
    children: Option<[usize; 2]>,
}

impl Node {
    fn leaf(output: f64) -> Self {
        Node { output, feature: 0, threshold: f64::NAN, score: None, children: None }
    }
}

/// A fitted forest.
#[derive(Debug, Clone)]
pub(crate) struct Forest {
    /// The trees, laid out for prediction ([`Step`]).
    trees: Vec<Vec<Step>>,
}

/// A node as prediction reads it, in a third of a grown [`Node`]'s room: a tree of depth twelve
/// then stays in a core's cache while a run of rows goes down it.
#[derive(Debug, Clone, Copy)]
struct Step {
    /// The split's threshold, or the leaf's output.
    value: f64,
    /// The split's feature, or [`LEAF`].
    feature: u32,
    left: u32,
    right: u32,
}

/// Marks a leaf ([`Step::feature`]).
const LEAF: u32 = u32::MAX;

/// Rows that go down every tree before the next rows do ([`Forest::predict`]).
const PREDICT_ROWS: usize = 512;

impl Step {
    fn of(tree: &[Node]) -> Vec<Step> {
        tree.iter()
            .map(|node| match node.children {
                Some([left, right]) => Step {
                    value: node.threshold,
                    feature: u32::try_from(node.feature).unwrap_or(LEAF - 1),
                    left: u32::try_from(left).unwrap_or(u32::MAX),
                    right: u32::try_from(right).unwrap_or(u32::MAX),
                },
                None => Step { value: node.output, feature: LEAF, left: 0, right: 0 },
            })
            .collect()
    }
}

/// Sums of a node's targets and masses (smartcore's `MeanStats`).
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    sum: f64,
    mass: f64,
}

impl Stats {
    #[inline]
    fn add(&mut self, target: f64, mass: f64) {
        self.mass += mass;
        self.sum += target * mass;
    }

    fn difference(parent: &Stats, part: &Stats) -> Stats {
        Stats { mass: parent.mass - part.mass, sum: parent.sum - part.sum }
    }

    fn leaf_value(&self) -> f64 {
        if self.mass > 0.0 { self.sum / self.mass } else { 0.0 }
    }

    #[inline]
    fn proxy_improvement(true_side: &Stats, false_side: &Stats) -> f64 {
        if true_side.mass <= 0.0 || false_side.mass <= 0.0 {
            return 0.0;
        }
        let d = true_side.sum * false_side.mass - false_side.sum * true_side.mass;
        (d * d) / (true_side.mass * false_side.mass)
    }
}

/// A row in a node: its index and how many times the bootstrap drew it.
#[derive(Debug, Clone, Copy, Default)]
struct Element {
    row: u32,
    count: u32,
}

impl Element {
    #[inline]
    fn mass(self) -> f64 {
        f64::from(self.count)
    }
}

/// A node waiting to be split: its rows are `start..end` of every column's order.
struct Visitor {
    node: usize,
    start: usize,
    end: usize,
    level: u16,
    stats: Stats,
}

/// What growing one tree reads.
struct Data<'a> {
    /// Column-major: `columns[j][row]`.
    columns: &'a [Vec<f64>],
    target: &'a [f64],
    params: &'a Params,
}

/// What growing one tree writes as it goes.
struct Workspace {
    in_true_branch: Vec<bool>,
    buffer: Vec<Element>,
    sorted: Vec<Vec<Element>>,
    variables: Vec<usize>,
}

impl Forest {
    /// Fits the forest on `rows` rows of `x` (row-major, `width` columns) and their 0/1 targets.
    pub(crate) fn fit(x: &[f64], width: usize, target: &[f64], params: &Params) -> Result<Forest, String> {
        let rows = target.len();
        if rows == 0 || width == 0 || x.len() != rows * width {
            return Err(format!("{} values for {rows} rows of {width} columns: nothing to fit a forest on", x.len()));
        }
        if u32::try_from(rows).is_err() {
            return Err(format!("{rows} rows: a forest takes at most {} rows", u32::MAX));
        }
        let columns: Vec<Vec<f64>> = (0..width).map(|j| x.iter().skip(j).step_by(width).copied().collect()).collect();
        // smartcore's argsort: its order of tied values decides the order of the sums.
        let order: Vec<Vec<u32>> = columns.par_iter().map(|c| c.clone().argsort_mut().into_iter().map(|i| i as u32).collect()).collect();
        let mut rng = SmallRng::seed_from_u64(params.seed);
        let samples: Vec<Vec<u32>> = (0..params.trees)
            .map(|_| {
                let mut counts = vec![0u32; rows];
                for _ in 0..rows {
                    counts[rng.random_range(0..rows)] += 1;
                }
                counts
            })
            .collect();
        let data = Data { columns: &columns, target, params };
        let trees = samples
            .into_par_iter()
            .enumerate()
            .map(|(t, counts)| Step::of(&grow(&data, &order, &counts, params.seed.wrapping_add(t as u64))))
            .collect();
        Ok(Forest { trees })
    }

    /// The mean of the trees' outputs for each row of `x` (row-major, `width` columns), as
    /// smartcore's forest predicts.
    pub(crate) fn predict(&self, x: &[f64], width: usize) -> Vec<f64> {
        let n = self.trees.len() as f64;
        let rows: Vec<&[f64]> = x.chunks(width.max(1)).collect();
        let mut sums = vec![0.0; rows.len()];
        // A run of rows goes down one tree after another (each row adds the trees' outputs in
        // order, as a row going down every tree would), so that a tree's nodes are read from
        // cache rather than memory.
        for (run, sums) in rows.chunks(PREDICT_ROWS).zip(sums.chunks_mut(PREDICT_ROWS)) {
            for tree in &self.trees {
                for (row, sum) in run.iter().zip(sums.iter_mut()) {
                    let mut at = 0;
                    let output = loop {
                        let Some(step) = tree.get(at) else { break 0.0 };
                        if step.feature == LEAF {
                            break step.value;
                        }
                        let x = row.get(step.feature as usize).copied().unwrap_or(f64::NAN);
                        at = (if x <= step.value { step.left } else { step.right }) as usize;
                    };
                    *sum += output;
                }
            }
        }
        sums.into_iter().map(|sum| sum / n).collect()
    }
}

/// Grows one tree on the bootstrap `counts` (by row), its features drawn with `seed`.
fn grow(data: &Data<'_>, order: &[Vec<u32>], counts: &[u32], seed: u64) -> Vec<Node> {
    let params = data.params;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut n = 0usize;
    let mut root = Stats::default();
    for (i, &c) in counts.iter().enumerate() {
        root.add(data.target[i], f64::from(c));
        n += c as usize;
    }
    let mut nodes = vec![Node::leaf(root.leaf_value())];
    let kept = counts.iter().filter(|&&c| c > 0).count();
    // Each column's drawn rows in its order; written without a branch (a row is drawn or not
    // at random, which a branch would mispredict a third of the time).
    let sorted: Vec<Vec<Element>> = order
        .iter()
        .map(|column| {
            let mut out = vec![Element::default(); kept + 1];
            let mut w = 0;
            for &i in column {
                let count = counts[i as usize];
                out[w] = Element { row: i, count };
                w += usize::from(count > 0);
            }
            out.truncate(kept);
            out
        })
        .collect();
    let mut work = Workspace {
        in_true_branch: vec![false; counts.len()],
        buffer: vec![Element::default(); kept],
        sorted,
        variables: (0..data.columns.len()).collect(),
    };
    let visitor = Visitor { node: 0, start: 0, end: kept, level: 1, stats: root };
    let mut stack = Vec::new();
    if params.max_depth > 1
        && kept > 0
        && n >= params.min_samples_split
        && find_best_cutoff(data, &mut nodes, &visitor, n, &mut rng, &mut work)
    {
        stack.push(visitor);
    }
    while let Some(visitor) = stack.pop() {
        if visitor.level < params.max_depth {
            split(data, &mut nodes, &visitor, &mut stack, &mut rng, &mut work);
        }
    }
    nodes
}

fn find_best_cutoff(data: &Data<'_>, nodes: &mut [Node], visitor: &Visitor, n: usize, rng: &mut impl Rng, work: &mut Workspace) -> bool {
    work.variables.shuffle(rng);
    for k in 0..data.params.m.min(work.variables.len()) {
        let j = work.variables[k];
        find_best_split(data, &mut nodes[visitor.node], visitor, n, j, &work.sorted[j]);
    }
    nodes[visitor.node].score.is_some()
}

// Values are compared exactly, as smartcore compares them: equal values are one cut.
#[allow(clippy::float_cmp)]
fn find_best_split(data: &Data<'_>, node: &mut Node, visitor: &Visitor, n: usize, j: usize, sorted: &[Element]) {
    let column = &data.columns[j];
    let min_leaf = data.params.min_samples_leaf;
    let mut true_count = 0usize;
    let mut true_stats = Stats::default();
    let mut prev = column[sorted[visitor.start].row as usize];
    for &e in &sorted[visitor.start..visitor.end] {
        let x = column[e.row as usize];
        let target = data.target[e.row as usize];
        if x == prev {
            true_count += e.count as usize;
            true_stats.add(target, e.mass());
            continue;
        }
        let false_count = n - true_count;
        if true_count < min_leaf || false_count < min_leaf {
            prev = x;
            true_count += e.count as usize;
            true_stats.add(target, e.mass());
            continue;
        }
        let false_stats = Stats::difference(&visitor.stats, &true_stats);
        let proxy = Stats::proxy_improvement(&true_stats, &false_stats);
        if node.score.is_none_or(|best| proxy > best) {
            // The midpoint, unless it rounds up to `x`.
            let mid = prev + (x - prev) / 2.0;
            node.feature = j;
            node.threshold = if mid < x { mid } else { prev };
            node.score = Some(proxy);
        }
        prev = x;
        true_count += e.count as usize;
        true_stats.add(target, e.mass());
    }
}

fn split(data: &Data<'_>, nodes: &mut Vec<Node>, visitor: &Visitor, stack: &mut Vec<Visitor>, rng: &mut impl Rng, work: &mut Workspace) {
    let params = data.params;
    let Node { feature, threshold, .. } = nodes[visitor.node];
    let column = &data.columns[feature];
    let mut parent = Stats::default();
    let (mut true_count, mut false_count) = (0usize, 0usize);
    let sorted = &work.sorted[feature][visitor.start..visitor.end];
    let mut n_true = 0;
    for &e in sorted {
        // The true branch holds `x <= threshold`.
        if !matches!(column[e.row as usize].partial_cmp(&threshold), Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)) {
            break;
        }
        work.in_true_branch[e.row as usize] = true;
        true_count += e.count as usize;
        parent.add(data.target[e.row as usize], e.mass());
        n_true += 1;
    }
    let true_stats = parent;
    let mut false_stats = Stats::default();
    for &e in &sorted[n_true..] {
        work.in_true_branch[e.row as usize] = false;
        false_count += e.count as usize;
        parent.add(data.target[e.row as usize], e.mass());
        false_stats.add(data.target[e.row as usize], e.mass());
    }
    if true_count < params.min_samples_leaf || false_count < params.min_samples_leaf {
        let node = &mut nodes[visitor.node];
        node.feature = 0;
        node.threshold = f64::NAN;
        node.score = None;
        return;
    }
    let split_at = visitor.start + n_true;
    let (true_child, false_child) = (nodes.len(), nodes.len() + 1);
    nodes.push(Node::leaf(true_stats.leaf_value()));
    nodes.push(Node::leaf(false_stats.leaf_value()));
    nodes[visitor.node].children = Some([true_child, false_child]);
    let level = visitor.level + 1;
    let true_can_split = level < params.max_depth && true_count >= params.min_samples_split;
    let false_can_split = level < params.max_depth && false_count >= params.min_samples_split;
    if !true_can_split && !false_can_split {
        return;
    }
    for sorted in &mut work.sorted {
        stable_partition(&mut sorted[visitor.start..visitor.end], &mut work.buffer, &work.in_true_branch);
    }
    let true_visitor = Visitor { node: true_child, start: visitor.start, end: split_at, level, stats: true_stats };
    if true_can_split && find_best_cutoff(data, nodes, &true_visitor, true_count, rng, work) {
        stack.push(true_visitor);
    }
    let false_visitor = Visitor { node: false_child, start: split_at, end: visitor.end, level, stats: false_stats };
    if false_can_split && find_best_cutoff(data, nodes, &false_visitor, false_count, rng, work) {
        stack.push(false_visitor);
    }
}

/// Moves the elements of the true branch first, each side in its order.
fn stable_partition(slice: &mut [Element], scratch: &mut [Element], is_true: &[bool]) {
    let scratch = &mut scratch[..slice.len()];
    let (mut w, mut f) = (0usize, 0usize);
    for i in 0..slice.len() {
        let e = slice[i];
        let t = is_true[e.row as usize];
        slice[w] = e;
        scratch[f] = e;
        w += usize::from(t);
        f += usize::from(!t);
    }
    slice[w..].copy_from_slice(&scratch[..f]);
}

#[cfg(test)]
mod tests {
    use smartcore::ensemble::random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters};
    use smartcore::linalg::basic::matrix::DenseMatrix;

    use super::*;

    /// Rows with ties, a constant column, a duplicated column and a label that depends on some
    /// of them, noisily.
    fn problem(n: usize, width: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut x = Vec::with_capacity(n * width);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: Vec<f64> = (0..width)
                .map(|j| match j % 4 {
                    0 => uniform() * 2.0 - 1.0,
                    1 => (uniform() * 5.0).floor() - 2.0,
                    2 => f64::from(u8::from(uniform() < 0.3)),
                    _ => 0.25,
                })
                .collect();
            let mut row = row;
            if width > 5 {
                row[5] = row[0];
            }
            let z = row[0] * 2.0 + row[1.min(width - 1)] - 0.5;
            y.push(f64::from(u8::from(uniform() < 1.0 / (1.0 + (-z).exp()))));
            x.extend(row);
        }
        (x, y)
    }

    #[test]
    fn the_forest_is_smartcores_to_the_bit() {
        for (n, width, trees, depth, leaf, seed) in
            [(600, 9, 12, 12, 5, 42), (1_500, 66, 6, 12, 5, 7), (300, 3, 20, 4, 1, 1), (50, 7, 5, 30, 2, 3), (2_000, 12, 4, 8, 20, 11)]
        {
            let (x, y) = problem(n, width, seed);
            let m = ((width as f64).sqrt() as usize).max(1);
            let params = Params { trees, max_depth: depth, min_samples_leaf: leaf, min_samples_split: 2 * leaf, m, seed };
            let ours = Forest::fit(&x, width, &y, &params).unwrap();
            let matrix = DenseMatrix::new(n, width, x.clone(), false).unwrap();
            let reference = RandomForestRegressor::fit(
                &matrix,
                &y,
                RandomForestRegressorParameters::default()
                    .with_n_trees(trees)
                    .with_max_depth(depth)
                    .with_min_samples_leaf(leaf)
                    .with_min_samples_split(2 * leaf)
                    .with_m(m)
                    .with_seed(seed),
            )
            .unwrap();
            // New rows as well as the training ones.
            let (fresh, _) = problem(400, width, seed + 100);
            for x in [&x, &fresh] {
                let rows = x.len() / width;
                let expected = reference.predict(&DenseMatrix::new(rows, width, x.clone(), false).unwrap()).unwrap();
                let got = ours.predict(x, width);
                assert_eq!(
                    got.iter().map(|p| p.to_bits()).collect::<Vec<_>>(),
                    expected.iter().map(|p| p.to_bits()).collect::<Vec<_>>(),
                    "n {n} width {width} trees {trees} depth {depth} leaf {leaf}"
                );
                assert!(got.iter().any(|p| p.to_bits() != got[0].to_bits()), "a constant forest proves little");
            }
        }
    }

    #[test]
    fn nothing_to_fit_is_an_error() {
        let params = Params { trees: 2, max_depth: 3, min_samples_leaf: 1, min_samples_split: 2, m: 1, seed: 1 };
        assert!(Forest::fit(&[], 1, &[], &params).is_err());
        assert!(Forest::fit(&[1.0, 2.0], 2, &[1.0, 0.0], &params).is_err());
    }
}
