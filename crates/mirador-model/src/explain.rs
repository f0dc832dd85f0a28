//! Why a declaration scored high, and what the model learnt, in words an auditor reads.
//!
//! - Per declaration: the features with the largest positive contributions to its log-odds
//!   (path attribution, [`path_contributions`]), with the declaration's own value (`importer past fraud rate 0.62 (+1.35)`).
//! - For the model: rules read off the trees' top splits (paths of up to `max_conditions`
//!   conditions from a root), each measured on the training rows and on the held-out test rows
//!   (support and fraud rate), kept when they lift the fraud rate well above the base rate.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use mirador_gbdt::{Block, Booster, Column as Feature, Dataset, Forest, Node, SplitRule};
use mirador_schema::catalog::{fraud_rules, fraud_scores};
use polars::prelude::*;
use rayon::prelude::*;

use crate::features::FeatureSpec;

/// Human-readable feature name.
pub fn label(feature: &str) -> String {
    let l = feature.replace("_past_", " past ").replace('_', " ");
    l.replace("usd per kg", "(USD/kg)").replace(" usd", " (USD)").replace(" pct", " (%)").replace(" kg", " (kg)")
}

/// Writes a row's value of a feature, as [`TopReasons`] keeps it: a numeric feature's value,
/// or a categorical feature's code as a float, read in `categories` (its vocabulary by code).
fn write_value(out: &mut String, categorical: bool, categories: &[&str], value: f64) {
    if categorical {
        // Codes are `u32`, exact as floats; the missing code reads as no category.
        out.push_str(categories.get(value as u32 as usize).copied().unwrap_or("unseen"));
    } else if value.is_finite() {
        write_number(out, value);
    } else {
        out.push_str("missing");
    }
}

/// A row's value of a feature as [`TopReasons`] keeps it (NaN for a row past the end).
fn value_of(column: &Feature, row: usize) -> f64 {
    match column {
        Feature::Numeric(v) => v.get(row).copied().unwrap_or(f64::NAN),
        Feature::Categorical(v) => f64::from(v.get(row).copied().unwrap_or(mirador_gbdt::MISSING_CATEGORY)),
    }
}

fn write_number(out: &mut String, x: f64) {
    let decimals = if x.abs() >= 1_000.0 {
        0
    } else if x.abs() >= 1.0 {
        2
    } else {
        3
    };
    write_fixed(out, x, decimals);
}

/// Writes `x` with `decimals` digits after the point, exactly as `{x:.decimals$}` does, without
/// its exact decimal expansion where the rounding is clear (every value but a near-tie): most of
/// the reasons' text is such numbers, two or more per reason.
fn write_fixed(out: &mut String, x: f64, decimals: usize) {
    const SCALE: [f64; 4] = [1.0, 10.0, 100.0, 1_000.0];
    const UNIT: [u64; 4] = [1, 10, 100, 1_000];
    if decimals < SCALE.len() && x.is_finite() && x.is_sign_positive() {
        let y = x * SCALE[decimals];
        let rounded = y.round();
        // The product's rounding error is far below 0.01 here, so a value at least 0.01 from a
        // tie rounds the same before and after the product.
        if y < 1e14 && (y - rounded).abs() < 0.49 {
            let n = rounded as u64;
            push_digits(out, n / UNIT[decimals], 1);
            if decimals > 0 {
                out.push('.');
                push_digits(out, n % UNIT[decimals], decimals);
            }
            return;
        }
    }
    // Writing to a String cannot fail.
    let _ = write!(out, "{x:.decimals$}");
}

/// Writes `n` in decimal, with leading zeros to at least `width` digits.
fn push_digits(out: &mut String, mut n: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    while n > 0 || len < width {
        digits[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
    }
    out.extend(digits[..len].iter().rev().map(|&d| char::from(d)));
}

fn format_number(x: f64) -> String {
    let mut s = String::new();
    write_number(&mut s, x);
    s
}

/// Path attribution (Saabas): walking a row down each tree, every split moves the expected
/// margin from the node's cover-weighted mean to the child's; the move is credited to the split's
/// feature. Contributions plus the bias sum exactly to the margin. It costs one walk per tree, so
/// every declaration of a nightly run can be explained; [`Booster::contributions`] (exact
/// TreeSHAP) is the consistent but much slower alternative.
///
/// The credit depends only on the leaf a row reaches, so it is tabulated once per leaf
/// ([`PathTable`]); rows then walk the trees in cache-friendly blocks, as in prediction.
pub fn path_contributions(booster: &Booster, data: &Dataset) -> Vec<Vec<f64>> {
    let table = PathTable::new(booster);
    let width = data.n_features() + 1;
    let mut flat = vec![0.0; data.n_rows() * width];
    flat.par_chunks_mut(BLOCK * width).enumerate().for_each_init(Scratch::default, |scratch, (block, out)| {
        scratch.margins.resize(out.len() / width, 0.0);
        table.fill(data, block * BLOCK, out, width, scratch);
    });
    flat.chunks(width).map(<[f64]>::to_vec).collect()
}

/// Rows explained together: one tree's nodes stay in cache while a block walks it.
const BLOCK: usize = 256;

/// Per tree, per leaf: the features its path credits and by how much, and the leaf's value;
/// plus the bias.
struct PathTable {
    bias: f64,
    init_score: f64,
    forest: Forest,
    /// Per tree, the credits of the path to each leaf, one leaf after another (nodes in
    /// order): node `n`'s are `credits[offsets[n]..offsets[n + 1]]`, none for a split.
    leaves: Vec<Credits>,
    /// `values[tree][node]`: the output of `node` when it is a leaf (0 for a split).
    values: Vec<Vec<f64>>,
}

impl PathTable {
    fn new(booster: &Booster) -> Self {
        let mut bias = booster.init_score();
        let leaves = booster
            .trees()
            .iter()
            .map(|tree| {
                let means = node_means(&tree.nodes);
                bias += means.first().copied().unwrap_or(0.0);
                let mut credits: Vec<Vec<(usize, f64)>> = vec![Vec::new(); tree.nodes.len()];
                let mut stack = vec![(0usize, Vec::<(usize, f64)>::new())];
                while let Some((at, path)) = stack.pop() {
                    match tree.nodes.get(at) {
                        Some(Node::Split { feature, left, right, .. }) => {
                            for child in [*left as usize, *right as usize] {
                                // Children come after parents; anything else is a malformed tree.
                                if child > at && child < tree.nodes.len() {
                                    let mut p = path.clone();
                                    match p.iter_mut().find(|(f, _)| f == feature) {
                                        Some((_, d)) => *d += means[child] - means[at],
                                        None => p.push((*feature, means[child] - means[at])),
                                    }
                                    stack.push((child, p));
                                }
                            }
                        }
                        Some(Node::Leaf { .. }) => credits[at] = path,
                        None => {}
                    }
                }
                Credits::of(credits)
            })
            .collect();
        let values = booster
            .trees()
            .iter()
            .map(|tree| tree.nodes.iter().map(|node| if let Node::Leaf { value, .. } = node { *value } else { 0.0 }).collect())
            .collect();
        PathTable { bias, init_score: booster.init_score(), forest: Forest::new(booster), leaves, values }
    }

    /// Contributions of rows `first..first + out.len() / width` into `out` (row-major, the bias
    /// last), and in the same walk their margins into `scratch.margins` (one per row, already
    /// sized): the initial score plus the leaves' values tree by tree, in model order, exactly as
    /// [`Booster::predict_margin`] sums them. `scratch` is reused from block to block.
    fn fill(&self, data: &Dataset, first: usize, out: &mut [f64], width: usize, scratch: &mut Scratch) {
        for row in out.chunks_mut(width) {
            row.fill(0.0);
            row[width - 1] = self.bias;
        }
        let Scratch { block, reached, margins, .. } = scratch;
        margins.fill(self.init_score);
        reached.resize(out.len() / width, 0);
        self.forest.bin(data, first, reached.len(), block);
        for (tree, (credits, values)) in self.leaves.iter().zip(&self.values).enumerate() {
            self.forest.leaves(tree, block, reached);
            for ((row, margin), &leaf) in out.chunks_mut(width).zip(margins.iter_mut()).zip(reached.iter()) {
                *margin += values.get(leaf as usize).copied().unwrap_or(0.0);
                for &(feature, delta) in credits.of_node(leaf) {
                    row[feature as usize] += delta;
                }
            }
        }
    }
}

/// One tree's path credits by leaf, in one array ([`PathTable::leaves`]).
struct Credits {
    offsets: Vec<u32>,
    credits: Vec<(u32, f64)>,
}

impl Credits {
    /// From each node's credits (none for a split).
    fn of(by_node: Vec<Vec<(usize, f64)>>) -> Self {
        let mut offsets = Vec::with_capacity(by_node.len() + 1);
        let mut credits = Vec::new();
        offsets.push(0);
        for node in by_node {
            // Feature indices fit in `u32`: a dataset has far fewer features.
            credits.extend(node.into_iter().map(|(feature, delta)| (feature as u32, delta)));
            offsets.push(credits.len() as u32);
        }
        Credits { offsets, credits }
    }

    /// The credits of node `node` (none past the last node).
    #[inline]
    fn of_node(&self, node: u32) -> &[(u32, f64)] {
        let node = node as usize;
        match (self.offsets.get(node), self.offsets.get(node + 1)) {
            (Some(&start), Some(&end)) => &self.credits[start as usize..end as usize],
            _ => &[],
        }
    }
}

/// Buffers one thread reuses from block to block: allocating them per block costs more in fresh
/// pages than the walk itself.
#[derive(Default)]
struct Scratch {
    block: Block,
    reached: Vec<u32>,
    margins: Vec<f64>,
    contributions: Vec<f64>,
    /// One row's reasons text, its feature names and the features' indices.
    line: String,
    names: String,
    best: Vec<usize>,
}

fn node_means(nodes: &[Node]) -> Vec<f64> {
    let mut sum = vec![0.0; nodes.len()];
    let mut cover = vec![0.0; nodes.len()];
    // Children come after their parents: accumulate bottom-up.
    for i in (0..nodes.len()).rev() {
        match &nodes[i] {
            Node::Leaf { value, count } => {
                sum[i] = value * count.max(1e-12);
                cover[i] = count.max(1e-12);
            }
            Node::Split { left, right, .. } => {
                let (l, r) = (*left as usize, *right as usize);
                sum[i] = sum[l] + sum[r];
                cover[i] = cover[l] + cover[r];
            }
        }
    }
    sum.iter().zip(&cover).map(|(s, c)| s / c).collect()
}

fn sigmoid(margin: f64) -> f64 {
    1.0 / (1.0 + (-margin).exp())
}

/// Every row's fraud probability with its top `k` positive contributions.
#[derive(Debug, Clone)]
pub struct Explained {
    /// Probability of fraud (the sigmoid of the contributions' sum, which is the model's margin).
    pub probability: Vec<f64>,
    /// The reasons, as text (`importer past fraud rate 0.62 (+1.35); ...`).
    pub reasons: StringChunked,
    /// The reasons' feature names, `;`-separated.
    pub top: StringChunked,
}

/// Scores and explains every row in one pass over the trees. Rows go a block at a time, in
/// parallel, so memory stays at one block of contributions per thread whatever the number of
/// rows.
pub fn explain(booster: &Booster, spec: &FeatureSpec, data: &Dataset, k: usize) -> Result<Explained, crate::ModelError> {
    let explainer = Explainer::new(booster, spec, k)?;
    let mut walked = Walked::with_capacity(data.n_rows(), k);
    explainer.walk(data, &mut walked, &mut vec![f64::NAN; data.n_rows()])?;
    let (reasons, top) = explainer.text(&walked.reasons, 0..data.n_rows())?;
    Ok(Explained { probability: walked.probability, reasons, top })
}

/// Every row's top `k` positive contributions, kept compact (18 bytes a reason) until their
/// text is written ([`Explainer::text`]): the text of every row of a nightly run would not fit
/// in memory, and the rows' order in the inspection lists is known only once all are scored.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopReasons {
    /// `k` slots per row, largest first: the feature (`u16::MAX` past the row's last reason).
    pub(crate) feature: Vec<u16>,
    /// The slot's contribution.
    pub(crate) contribution: Vec<f64>,
    /// The row's value of the slot's feature ([`value_of`]).
    pub(crate) value: Vec<f64>,
}

/// What one walk of the trees gives for a run of rows, appended block by block.
#[derive(Debug, Clone, Default)]
pub(crate) struct Walked {
    /// The explanation's probability (the sigmoid of the contributions' sum), which
    /// `fraud_scores` holds; it may differ at rounding from the model's probability, which the
    /// inspection lists rank by ([`Explainer::walk`]).
    pub(crate) probability: Vec<f64>,
    /// The reasons.
    pub(crate) reasons: TopReasons,
}

impl Walked {
    /// No rows yet, with room for `rows` rows of `k` reasons.
    pub(crate) fn with_capacity(rows: usize, k: usize) -> Self {
        Walked {
            probability: Vec::with_capacity(rows),
            reasons: TopReasons {
                feature: Vec::with_capacity(rows * k),
                contribution: Vec::with_capacity(rows * k),
                value: Vec::with_capacity(rows * k),
            },
        }
    }
}

/// Walks rows down the trees once, giving both probabilities and the top reasons
/// ([`Explainer::walk`]), and writes the reasons' text ([`Explainer::text`]).
pub(crate) struct Explainer<'b> {
    table: PathTable,
    booster: &'b Booster,
    k: usize,
    /// By feature: its label, whether it is categorical, and its vocabulary by code.
    labels: Vec<String>,
    categorical: Vec<bool>,
    categories: Vec<Vec<&'b str>>,
}

impl<'b> Explainer<'b> {
    /// The explainer of `booster`'s features (their vocabularies from `spec`), giving `k` reasons
    /// a row.
    pub(crate) fn new(booster: &'b Booster, spec: &'b FeatureSpec, k: usize) -> Result<Self, crate::ModelError> {
        let names = booster.feature_names();
        if names.len() >= usize::from(u16::MAX) {
            return Err(crate::ModelError::Data(format!("{} features: reasons name at most {} features", names.len(), u16::MAX - 1)));
        }
        Ok(Explainer {
            table: PathTable::new(booster),
            booster,
            k,
            labels: names.iter().map(|n| label(n)).collect(),
            categorical: booster.feature_kinds().iter().map(|k| *k == mirador_gbdt::FeatureKind::Categorical).collect(),
            categories: names.iter().map(|n| spec.categories(n)).collect(),
        })
    }

    /// Walks every row of `data` down the trees once, appending to `out` its explanation (its
    /// probability and top reasons), and giving in `predicted` (one slot per row of `data`) the
    /// model's probability as [`Booster::predict_proba`] computes it (the leaves' values summed
    /// tree by tree) where the slot is not already a finite probability. Rows go a block at a
    /// time, in parallel.
    pub(crate) fn walk(&self, data: &Dataset, out: &mut Walked, predicted: &mut [f64]) -> Result<(), crate::ModelError> {
        self.booster.check_schema(data)?;
        if predicted.len() != data.n_rows() {
            return Err(crate::ModelError::Data(format!("{} rows to explain, {} to predict", data.n_rows(), predicted.len())));
        }
        let (k, width) = (self.k, data.n_features() + 1);
        let features = data.n_features();
        let blocks: Vec<(Vec<f64>, Walked)> = (0..data.n_rows().div_ceil(BLOCK))
            .into_par_iter()
            .map_init(Scratch::default, |scratch, block| {
                let first = block * BLOCK;
                let rows = BLOCK.min(data.n_rows() - first);
                let mut c = std::mem::take(&mut scratch.contributions);
                c.resize(rows * width, 0.0);
                scratch.margins.resize(rows, 0.0);
                self.table.fill(data, first, &mut c, width, scratch);
                let predicted = scratch.margins.iter().map(|&m| sigmoid(m)).collect();
                let mut walked = Walked {
                    probability: Vec::with_capacity(rows),
                    reasons: TopReasons {
                        feature: Vec::with_capacity(rows * k),
                        contribution: Vec::with_capacity(rows * k),
                        value: Vec::with_capacity(rows * k),
                    },
                };
                let best = &mut scratch.best;
                for (offset, c) in c.chunks(width).enumerate() {
                    walked.probability.push(sigmoid(c.iter().sum::<f64>()));
                    top_positive(&c[..features], k, best);
                    let r = &mut walked.reasons;
                    for slot in 0..k {
                        match best.get(slot) {
                            Some(&j) => {
                                // At most `u16::MAX - 1` features ([`Explainer::new`]).
                                r.feature.push(j as u16);
                                r.contribution.push(c[j]);
                                r.value.push(value_of(&data.columns[j], first + offset));
                            }
                            None => {
                                r.feature.push(u16::MAX);
                                r.contribution.push(0.0);
                                r.value.push(0.0);
                            }
                        }
                    }
                }
                scratch.contributions = c;
                (predicted, walked)
            })
            .collect();
        for (slots, (p, block)) in predicted.chunks_mut(BLOCK).zip(blocks) {
            for (slot, p) in slots.iter_mut().zip(p) {
                if !slot.is_finite() {
                    *slot = p;
                }
            }
            out.probability.extend(block.probability);
            out.reasons.feature.extend(block.reasons.feature);
            out.reasons.contribution.extend(block.reasons.contribution);
            out.reasons.value.extend(block.reasons.value);
        }
        Ok(())
    }

    /// The text of the reasons of rows `rows` of `reasons` (`top_reasons` and `top_features`),
    /// a block of rows at a time, in parallel.
    pub(crate) fn text(&self, reasons: &TopReasons, rows: std::ops::Range<usize>) -> PolarsResult<(StringChunked, StringChunked)> {
        let k = self.k;
        let names = self.booster.feature_names();
        let first = rows.start;
        let blocks: Vec<(StringChunked, StringChunked)> = (0..rows.len().div_ceil(BLOCK))
            .into_par_iter()
            .map_init(Scratch::default, |scratch, block| {
                let start = first + block * BLOCK;
                let end = (start + BLOCK).min(rows.end);
                let mut text = StringChunkedBuilder::new(fraud_scores::TOP_REASONS.into(), end - start);
                let mut top = StringChunkedBuilder::new(fraud_scores::TOP_FEATURES.into(), end - start);
                let (line, names_line) = (&mut scratch.line, &mut scratch.names);
                for row in start..end {
                    line.clear();
                    names_line.clear();
                    for slot in row * k..(row + 1) * k {
                        let j = usize::from(reasons.feature[slot]);
                        if j == usize::from(u16::MAX) {
                            break;
                        }
                        if slot > row * k {
                            line.push_str("; ");
                            names_line.push(';');
                        }
                        line.push_str(&self.labels[j]);
                        line.push(' ');
                        write_value(line, self.categorical[j], &self.categories[j], reasons.value[slot]);
                        line.push_str(" (+");
                        write_fixed(line, reasons.contribution[slot], 2);
                        line.push(')');
                        names_line.push_str(&names[j]);
                    }
                    text.append_value(line.as_str());
                    top.append_value(names_line.as_str());
                }
                (text.finish(), top.finish())
            })
            .collect();
        let mut text = StringChunked::new(fraud_scores::TOP_REASONS.into(), Vec::<&str>::new());
        let mut top = StringChunked::new(fraud_scores::TOP_FEATURES.into(), Vec::<&str>::new());
        for (t, f) in blocks {
            text.append_owned(t)?;
            top.append_owned(f)?;
        }
        text.rechunk_mut();
        top.rechunk_mut();
        Ok((text, top))
    }
}

/// The indices of the `k` largest positive values of `c`, largest first (ties: lower index
/// first), into `best`.
fn top_positive(c: &[f64], k: usize, best: &mut Vec<usize>) {
    best.clear();
    for (j, &v) in c.iter().enumerate() {
        if v <= 0.0 {
            continue;
        }
        // Insertion into a list of at most k: k is a handful.
        let at = best.iter().position(|&b| v > c[b]).unwrap_or(best.len());
        if at < k {
            best.insert(at, j);
            best.truncate(k);
        }
    }
}

/// A categorical feature's vocabulary by code.
#[derive(Default)]
struct ByCode<'s> {
    /// By code, the rank of the category's label in sorted order (`u32::MAX`: no category).
    rank: Vec<u32>,
    /// The labels, sorted.
    sorted: Vec<&'s str>,
}

impl<'s> ByCode<'s> {
    /// The vocabulary of a feature (category → code). Codes a split may list are below
    /// [`mirador_gbdt::MAX_CATEGORY_CODE`], so larger ones are left out.
    fn new(vocab: &'s std::collections::HashMap<String, u32, foldhash::fast::FixedState>) -> Self {
        let mut entries: Vec<(&str, u32)> =
            vocab.iter().filter(|(_, c)| **c < mirador_gbdt::MAX_CATEGORY_CODE).map(|(k, &c)| (k.as_str(), c)).collect();
        entries.sort_unstable();
        let mut rank = vec![u32::MAX; entries.iter().map(|e| e.1 as usize + 1).max().unwrap_or(0)];
        for (r, (_, code)) in entries.iter().enumerate() {
            rank[*code as usize] = r as u32;
        }
        ByCode { rank, sorted: entries.into_iter().map(|e| e.0).collect() }
    }
}

/// A condition on one feature, read off a split.
#[derive(Debug, Clone, PartialEq)]
struct Condition {
    feature: usize,
    rule: SplitRule,
    left: bool,
    missing_matches: bool,
}

impl Condition {
    #[cfg(test)]
    fn holds(&self, data: &Dataset, row: usize) -> bool {
        self.rule.goes_left(&data.columns[self.feature], row, self.missing_matches == self.left) == self.left
    }

    /// The condition in words; `categories[feature]` is the feature's vocabulary by code.
    fn text(&self, categories: &[ByCode<'_>], names: &[String]) -> String {
        let name = &names[self.feature];
        let mut t = match &self.rule {
            SplitRule::Threshold(th) => format!("{} {} {}", label(name), if self.left { "≤" } else { ">" }, format_number(*th)),
            SplitRule::Categories(codes) => {
                // The first four labels in sorted order, and how many more.
                let by_code = categories.get(self.feature);
                let mut ranks: Vec<u32> = codes
                    .iter()
                    .filter_map(|&c| by_code.and_then(|b| b.rank.get(c as usize)).copied().filter(|&r| r != u32::MAX))
                    .collect();
                let more = ranks.len().saturating_sub(4);
                if more > 0 {
                    ranks.select_nth_unstable(3);
                    ranks.truncate(4);
                }
                ranks.sort_unstable();
                let cats: Vec<&str> = ranks.iter().filter_map(|&r| by_code.and_then(|b| b.sorted.get(r as usize)).copied()).collect();
                let list = if more > 0 { format!("{} …+{more}", cats.join(", ")) } else { cats.join(", ") };
                format!("{} {} {{{list}}}", label(name), if self.left { "in" } else { "not in" })
            }
        };
        if self.missing_matches {
            t.push_str(" or missing");
        }
        t
    }
}

/// Rules read off the first `trees` trees. Returns the `fraud_rules` frame, best first.
pub fn rules(
    booster: &Booster,
    spec: &FeatureSpec,
    train: (&Dataset, &[bool]),
    test: Option<(&Dataset, &[bool])>,
    trees: usize,
    max_conditions: usize,
    min_support: usize,
    keep: usize,
) -> PolarsResult<DataFrame> {
    // Each candidate is the path from a root to a node, so the rows it holds for are the rows
    // that reach that node: one walk of the trees per row measures every candidate.
    let trees = trees.min(booster.n_trees());
    let mut candidates: Vec<(usize, u32, Vec<Condition>)> = Vec::new();
    for (t, tree) in booster.trees().iter().take(trees).enumerate() {
        let mut found = Vec::new();
        walk(&tree.nodes, 0, &mut Vec::new(), max_conditions, &mut found);
        candidates.extend(found.into_iter().map(|(node, conds)| (t, node, conds)));
    }
    let base = train.1.iter().filter(|l| **l).count() as f64 / train.1.len().max(1) as f64;
    let forest = Forest::new(booster);
    let reached = |data: &Dataset, labels: &[bool]| reached(&forest, booster, trees, max_conditions, data, labels);
    let reached_train = reached(train.0, train.1);
    let reached_test = test.map(|(d, l)| reached(d, l));
    let measure = |counts: &[Vec<(usize, usize)>], t: usize, node: u32| -> (usize, f64) {
        let (n, f) = counts.get(t).and_then(|c| c.get(node as usize)).copied().unwrap_or((0, 0));
        (n, if n > 0 { f as f64 / n as f64 } else { 0.0 })
    };
    // Each distinct rule is measured once (its first path). Category labels are looked up by
    // code in a table built once: a vocabulary searched for each code is slow for large ones.
    let categories: Vec<ByCode<'_>> = train
        .0
        .names
        .iter()
        .enumerate()
        .map(|(feature, name)| {
            let split_on = candidates
                .iter()
                .any(|(.., conds)| conds.iter().any(|c| c.feature == feature && matches!(c.rule, SplitRule::Categories(_))));
            spec.vocab.get(name).filter(|_| split_on).map(ByCode::new).unwrap_or_default()
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut scored: Vec<(String, usize, f64, Option<(usize, f64)>)> = candidates
        .iter()
        .filter_map(|(t, node, conds)| {
            let text = conds.iter().map(|c| c.text(&categories, &train.0.names)).collect::<Vec<_>>().join(" ∧ ");
            if !seen.insert(text.clone()) {
                return None;
            }
            let (n, rate) = measure(&reached_train, *t, *node);
            (n >= min_support && rate >= (2.0 * base).min(0.5 + base / 2.0)).then(|| {
                let test = reached_test.as_ref().map(|counts| measure(counts, *t, *node));
                (text, n, rate, test)
            })
        })
        .collect();
    // Best first: the most fraud caught above the base rate (support × excess rate).
    scored.sort_by(|a, b| ((b.2 - base) * b.1 as f64).total_cmp(&((a.2 - base) * a.1 as f64)).then(a.0.cmp(&b.0)));
    scored.truncate(keep);
    DataFrame::new_infer_height(vec![
        Column::new(
            fraud_rules::RULE.into(),
            scored.iter().map(|s| format!("{} → fraud rate {:.0} % in training", s.0, s.2 * 100.0)).collect::<Vec<_>>(),
        ),
        Column::new(fraud_rules::SUPPORT_TRAIN.into(), scored.iter().map(|s| s.1 as u32).collect::<Vec<_>>()),
        Column::new(fraud_rules::FRAUD_RATE_TRAIN.into(), scored.iter().map(|s| s.2).collect::<Vec<_>>()),
        Column::new(fraud_rules::LIFT_TRAIN.into(), scored.iter().map(|s| if base > 0.0 { s.2 / base } else { 0.0 }).collect::<Vec<_>>()),
        Column::new(fraud_rules::SUPPORT_TEST.into(), scored.iter().map(|s| s.3.map(|t| t.0 as u32)).collect::<Vec<_>>()),
        Column::new(fraud_rules::FRAUD_RATE_TEST.into(), scored.iter().map(|s| s.3.map(|t| t.1)).collect::<Vec<_>>()),
    ])
}

/// Every path of up to `max` conditions from node `at` (whose own path is `path`), with the node
/// it ends on.
fn walk(nodes: &[Node], at: usize, path: &mut Vec<Condition>, max: usize, out: &mut Vec<(u32, Vec<Condition>)>) {
    if !path.is_empty() {
        out.push((at as u32, path.clone()));
    }
    if path.len() == max {
        return;
    }
    if let Some(Node::Split { feature, rule, default_left, left, right, .. }) = nodes.get(at) {
        for (child, is_left) in [(*left, true), (*right, false)] {
            path.push(Condition { feature: *feature, rule: rule.clone(), left: is_left, missing_matches: *default_left == is_left });
            walk(nodes, child as usize, path, max, out);
            path.pop();
        }
    }
}

/// By tree (the first `trees`) and node, how many rows of `data` reach the node within `depth`
/// splits of the root, and how many of them are labelled fraud; blocks of rows in parallel.
fn reached(forest: &Forest, booster: &Booster, trees: usize, depth: usize, data: &Dataset, labels: &[bool]) -> Vec<Vec<(usize, usize)>> {
    let empty = || booster.trees().iter().take(trees).map(|t| vec![(0usize, 0usize); t.nodes.len()]).collect::<Vec<_>>();
    let n = data.n_rows().min(labels.len());
    (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .fold(
            || (empty(), Block::default(), Vec::new()),
            |(mut counts, mut block, mut at), b| {
                let first = b * BLOCK;
                let rows = BLOCK.min(n - first);
                forest.bin(data, first, rows, &mut block);
                for (t, counts) in counts.iter_mut().enumerate() {
                    forest.visits(t, &block, rows, depth, &mut at, |row, node| {
                        if let Some(c) = counts.get_mut(node as usize) {
                            c.0 += 1;
                            c.1 += usize::from(labels[first + row]);
                        }
                    });
                }
                (counts, block, at)
            },
        )
        .map(|(counts, ..)| counts)
        .reduce(empty, |mut a, b| {
            for (a, b) in a.iter_mut().zip(b) {
                for (a, b) in a.iter_mut().zip(b) {
                    a.0 += b.0;
                    a.1 += b.1;
                }
            }
            a
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_numbers_read_as_the_formatter_writes_them() {
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut values =
            vec![0.0, 0.005, 0.015, 0.125, 0.0005, 0.9995, 1.005, 2.675, 999.995, 1e13, 1e15, 123_456.5, -0.0, -1.25, f64::NAN];
        for _ in 0..200_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let unit = (rng >> 11) as f64 / (1u64 << 53) as f64;
            values.push(unit * 10f64.powi((rng % 9) as i32 - 3));
            // Exact ties of every precision, and their neighbours.
            let tie = ((rng >> 20) % 100_000) as f64 / 1_000.0 + 0.0005;
            values.extend([tie, f64::from_bits(tie.to_bits() + 1), f64::from_bits(tie.to_bits() - 1)]);
        }
        for x in values {
            for decimals in 0..=3 {
                let mut fast = String::new();
                write_fixed(&mut fast, x, decimals);
                assert_eq!(fast, format!("{x:.decimals$}"), "{x:e} with {decimals} decimals");
            }
        }
    }

    #[test]
    fn path_contributions_sum_to_the_margin() {
        use mirador_gbdt::{Column as F, Params};
        let n = 400;
        let x: Vec<f64> = (0..n).map(|i| f64::from(i % 20)).collect();
        let c: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        let y: Vec<f64> = (0..n).map(|i| f64::from(u8::from(i % 20 > 12 || i % 3 == 0))).collect();
        let data = Dataset::new(vec!["x".into(), "c".into()], vec![F::Numeric(x), F::Categorical(c)]).unwrap();
        let params = Params { n_trees: 20, early_stopping_rounds: None, min_data_in_leaf: 5, ..Params::default() };
        let booster = Booster::train(&data, &y, None, None, &params).unwrap();
        let margin = booster.predict_margin(&data).unwrap();
        for (row, c) in path_contributions(&booster, &data).iter().enumerate() {
            assert!((c.iter().sum::<f64>() - margin[row]).abs() < 1e-9);
        }
    }

    fn trained(n: u32, trees: usize) -> (Booster, Dataset, Vec<bool>) {
        use mirador_gbdt::{Column as F, MISSING_CATEGORY, Params};
        let x: Vec<f64> = (0..n).map(|i| if i % 11 == 0 { f64::NAN } else { f64::from(i % 20) * 0.37 }).collect();
        let z: Vec<f64> = (0..n).map(|i| f64::from(i % 7) * 1_234.5 - 300.0).collect();
        let c: Vec<u32> = (0..n).map(|i| if i % 13 == 0 { MISSING_CATEGORY } else { i % 5 }).collect();
        let y: Vec<bool> = (0..n).map(|i| i % 20 > 12 || i % 5 == 0 || i % 7 == 3).collect();
        let data = Dataset::new(vec!["x".into(), "z".into(), "c".into()], vec![F::Numeric(x), F::Numeric(z), F::Categorical(c)]).unwrap();
        let params = Params { n_trees: trees, early_stopping_rounds: None, min_data_in_leaf: 5, ..Params::default() };
        let labels: Vec<f64> = y.iter().map(|&b| f64::from(u8::from(b))).collect();
        (Booster::train(&data, &labels, None, None, &params).unwrap(), data, y)
    }

    #[test]
    fn one_walk_gives_the_prediction_and_the_explanation_of_separate_walks() {
        let (booster, data, _) = trained(1_500, 25);
        let vocab = [("ka", 0), ("kb", 1), ("kc", 2)].into_iter().map(|(k, c)| (k.to_owned(), c)).collect();
        let spec = FeatureSpec {
            vocab: [("c".to_owned(), vocab)].into_iter().collect(),
            reference_price: Default::default(),
            signals: Vec::new(),
            excluded: Vec::new(),
        };
        let categories = ["ka", "kb", "kc"];
        for k in [0, 1, 3] {
            let explainer = Explainer::new(&booster, &spec, k).unwrap();
            let mut walked = Walked::default();
            let mut predicted = vec![f64::NAN; data.n_rows()];
            // Two runs of rows, appended.
            for (first, rows) in [(0, 700), (700, 800)] {
                let names = data.names.clone();
                let columns = data
                    .columns
                    .iter()
                    .map(|c| match c {
                        Feature::Numeric(v) => Feature::Numeric(v[first..first + rows].to_vec()),
                        Feature::Categorical(v) => Feature::Categorical(v[first..first + rows].to_vec()),
                    })
                    .collect();
                explainer.walk(&Dataset::new(names, columns).unwrap(), &mut walked, &mut predicted[first..first + rows]).unwrap();
            }
            assert_eq!(
                predicted.iter().map(|p| p.to_bits()).collect::<Vec<_>>(),
                booster.predict_proba(&data).unwrap().iter().map(|p| p.to_bits()).collect::<Vec<_>>()
            );
            let (text, top) = explainer.text(&walked.reasons, 0..data.n_rows()).unwrap();
            let mut best = Vec::new();
            for (row, c) in path_contributions(&booster, &data).iter().enumerate() {
                assert_eq!(walked.probability[row].to_bits(), sigmoid(c.iter().sum::<f64>()).to_bits());
                top_positive(&c[..data.n_features()], k, &mut best);
                let words: Vec<String> = best
                    .iter()
                    .map(|&j| {
                        let value = match &data.columns[j] {
                            Feature::Numeric(v) if v[row].is_finite() => format_number(v[row]),
                            Feature::Numeric(_) => "missing".into(),
                            Feature::Categorical(v) => categories.get(v[row] as usize).copied().unwrap_or("unseen").into(),
                        };
                        format!("{} {value} (+{:.2})", label(&data.names[j]), c[j])
                    })
                    .collect();
                let names: Vec<&str> = best.iter().map(|&j| data.names[j].as_str()).collect();
                assert_eq!(text.get(row), Some(words.join("; ").as_str()));
                assert_eq!(top.get(row), Some(names.join(";").as_str()));
            }
        }
    }

    #[test]
    fn rules_are_measured_on_the_rows_their_conditions_hold_for() {
        let (booster, data, y) = trained(2_000, 8);
        let forest = Forest::new(&booster);
        for depth in [1, 2, 3] {
            let counts = reached(&forest, &booster, 6, depth, &data, &y);
            let mut checked = 0;
            for (t, tree) in booster.trees().iter().take(6).enumerate() {
                let mut found = Vec::new();
                walk(&tree.nodes, 0, &mut Vec::new(), depth, &mut found);
                for (node, conds) in found {
                    let rows: Vec<usize> = (0..data.n_rows()).filter(|&r| conds.iter().all(|c| c.holds(&data, r))).collect();
                    let fraud = rows.iter().filter(|&&r| y[r]).count();
                    assert_eq!(counts[t][node as usize], (rows.len(), fraud), "tree {t}, node {node}");
                    checked += 1;
                }
            }
            assert!(checked > 6);
        }
    }

    #[test]
    fn category_conditions_name_the_first_labels_in_sorted_order() {
        let words = ["pear", "apple", "fig", "kiwi", "date", "lime", "plum", "sloe"];
        let vocab: std::collections::HashMap<String, u32, foldhash::fast::FixedState> =
            words.iter().enumerate().map(|(c, w)| ((*w).to_owned(), c as u32)).collect();
        let spec = FeatureSpec {
            vocab: [("c".to_owned(), vocab.clone())].into_iter().collect(),
            reference_price: Default::default(),
            signals: Vec::new(),
            excluded: Vec::new(),
        };
        let table = vec![ByCode::default(), ByCode::new(&vocab)];
        let names = vec!["x".to_owned(), "c".to_owned()];
        for codes in [vec![], vec![3], vec![0, 2, 5], vec![0, 1, 2, 3, 4], vec![0, 1, 2, 3, 4, 5, 6, 7, 40], vec![7, 9, 6, 1]] {
            for left in [true, false] {
                let c = Condition { feature: 1, rule: SplitRule::Categories(codes.clone()), left, missing_matches: left };
                // As the vocabulary is read code by code.
                let mut cats: Vec<&str> = codes.iter().filter_map(|&code| spec.category("c", code)).collect();
                cats.sort_unstable();
                let more = cats.len().saturating_sub(4);
                cats.truncate(4);
                let list = if more > 0 { format!("{} …+{more}", cats.join(", ")) } else { cats.join(", ") };
                let expected = format!("c {} {{{list}}}{}", if left { "in" } else { "not in" }, if left { " or missing" } else { "" });
                assert_eq!(c.text(&table, &names), expected);
            }
        }
    }

    #[test]
    fn labels_read_like_words() {
        assert_eq!(label("importer_past_fraud_rate"), "importer past fraud rate");
        assert_eq!(label("unit_price_usd_per_kg"), "unit price (USD/kg)");
        assert_eq!(label("tax_rate_pct"), "tax rate (%)");
    }
}
