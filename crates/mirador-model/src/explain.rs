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

/// Writes a row's value of a feature; `categories` is the feature's vocabulary by code (empty
/// for a numeric feature).
fn write_value(out: &mut String, categories: &[&str], column: &Feature, row: usize) {
    match column {
        Feature::Numeric(v) => match v.get(row) {
            Some(x) if x.is_finite() => write_number(out, *x),
            _ => out.push_str("missing"),
        },
        Feature::Categorical(v) => out.push_str(v.get(row).and_then(|&c| categories.get(c as usize)).copied().unwrap_or("unseen")),
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
    flat.par_chunks_mut(BLOCK * width)
        .enumerate()
        .for_each_init(Scratch::default, |scratch, (block, out)| table.fill(data, block * BLOCK, out, width, scratch));
    flat.chunks(width).map(<[f64]>::to_vec).collect()
}

/// Rows explained together: one tree's nodes stay in cache while a block walks it.
const BLOCK: usize = 256;

/// Per tree, per leaf: the features its path credits and by how much; plus the bias.
struct PathTable {
    bias: f64,
    forest: Forest,
    /// `leaves[tree][node]`: the credits of the path to `node` when it is a leaf.
    leaves: Vec<Vec<Vec<(usize, f64)>>>,
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
                credits
            })
            .collect();
        PathTable { bias, forest: Forest::new(booster), leaves }
    }

    /// Contributions of rows `first..first + out.len() / width` into `out` (row-major, the bias
    /// last). `scratch` is reused from block to block.
    fn fill(&self, data: &Dataset, first: usize, out: &mut [f64], width: usize, scratch: &mut Scratch) {
        for row in out.chunks_mut(width) {
            row.fill(0.0);
            row[width - 1] = self.bias;
        }
        let Scratch { block, reached, .. } = scratch;
        reached.resize(out.len() / width, 0);
        self.forest.bin(data, first, reached.len(), block);
        for (tree, credits) in self.leaves.iter().enumerate() {
            self.forest.leaves(tree, block, reached);
            for (row, &leaf) in out.chunks_mut(width).zip(reached.iter()) {
                for &(feature, delta) in credits.get(leaf as usize).map_or(&[][..], Vec::as_slice) {
                    row[feature] += delta;
                }
            }
        }
    }
}

/// Buffers one thread reuses from block to block: allocating them per block costs more in fresh
/// pages than the walk itself.
#[derive(Default)]
struct Scratch {
    block: Block,
    reached: Vec<u32>,
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

impl Explained {
    /// No rows yet, with room for `rows` probabilities.
    pub(crate) fn with_capacity(rows: usize) -> Self {
        Explained {
            probability: Vec::with_capacity(rows),
            reasons: StringChunked::new(fraud_scores::TOP_REASONS.into(), Vec::<&str>::new()),
            top: StringChunked::new(fraud_scores::TOP_FEATURES.into(), Vec::<&str>::new()),
        }
    }

    /// Appends the rows of `more` (its text columns' chunks are moved, not copied).
    pub(crate) fn append(&mut self, more: Explained) -> PolarsResult<()> {
        self.probability.extend(more.probability);
        self.reasons.append_owned(more.reasons)?;
        self.top.append_owned(more.top)?;
        Ok(())
    }
}

/// Scores and explains every row in one pass over the trees. Rows go a block at a time, in
/// parallel, so memory stays at one block of contributions per thread whatever the number of
/// rows.
pub fn explain(booster: &Booster, spec: &FeatureSpec, data: &Dataset, k: usize) -> Result<Explained, crate::ModelError> {
    booster.check_schema(data)?;
    let table = PathTable::new(booster);
    let names = &data.names;
    let labels: Vec<String> = names.iter().map(|n| label(n)).collect();
    let categories: Vec<Vec<&str>> = names.iter().map(|n| spec.categories(n)).collect();
    let width = data.n_features() + 1;
    let blocks: Vec<Explained> = (0..data.n_rows().div_ceil(BLOCK))
        .into_par_iter()
        .map_init(Scratch::default, |scratch, block| {
            let first = block * BLOCK;
            let rows = BLOCK.min(data.n_rows() - first);
            let mut c = std::mem::take(&mut scratch.contributions);
            c.resize(rows * width, 0.0);
            table.fill(data, first, &mut c, width, scratch);
            let mut text = StringChunkedBuilder::new(fraud_scores::TOP_REASONS.into(), rows);
            let mut top = StringChunkedBuilder::new(fraud_scores::TOP_FEATURES.into(), rows);
            let mut probability = Vec::with_capacity(rows);
            let (line, names_line, best) = (&mut scratch.line, &mut scratch.names, &mut scratch.best);
            for (offset, c) in c.chunks(width).enumerate() {
                let row = first + offset;
                probability.push(1.0 / (1.0 + (-c.iter().sum::<f64>()).exp()));
                top_positive(&c[..names.len()], k, best);
                line.clear();
                names_line.clear();
                for (i, &j) in best.iter().enumerate() {
                    if i > 0 {
                        line.push_str("; ");
                        names_line.push(';');
                    }
                    line.push_str(&labels[j]);
                    line.push(' ');
                    write_value(line, &categories[j], &data.columns[j], row);
                    // Writing to a String cannot fail.
                    line.push_str(" (+");
                    write_fixed(line, c[j], 2);
                    line.push(')');
                    names_line.push_str(&names[j]);
                }
                text.append_value(line.as_str());
                top.append_value(names_line.as_str());
            }
            scratch.contributions = c;
            Explained { probability, reasons: text.finish(), top: top.finish() }
        })
        .collect();
    let mut out = Explained::with_capacity(data.n_rows());
    for block in blocks {
        out.append(block)?;
    }
    out.reasons.rechunk_mut();
    out.top.rechunk_mut();
    Ok(out)
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

/// A condition on one feature, read off a split.
#[derive(Debug, Clone, PartialEq)]
struct Condition {
    feature: usize,
    rule: SplitRule,
    left: bool,
    missing_matches: bool,
}

impl Condition {
    fn holds(&self, data: &Dataset, row: usize) -> bool {
        self.rule.goes_left(&data.columns[self.feature], row, self.missing_matches == self.left) == self.left
    }

    fn text(&self, spec: &FeatureSpec, names: &[String]) -> String {
        let name = &names[self.feature];
        let mut t = match &self.rule {
            SplitRule::Threshold(th) => format!("{} {} {}", label(name), if self.left { "≤" } else { ">" }, format_number(*th)),
            SplitRule::Categories(codes) => {
                let mut cats: Vec<&str> = codes.iter().filter_map(|&c| spec.category(name, c)).collect();
                cats.sort_unstable();
                let more = cats.len().saturating_sub(4);
                cats.truncate(4);
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
    let mut candidates: Vec<Vec<Condition>> = Vec::new();
    for tree in booster.trees().iter().take(trees) {
        walk(&tree.nodes, 0, &mut Vec::new(), max_conditions, &mut candidates);
    }
    let base = train.1.iter().filter(|l| **l).count() as f64 / train.1.len().max(1) as f64;
    let measure = |conds: &[Condition], data: &Dataset, labels: &[bool]| -> (usize, f64) {
        let (mut n, mut f) = (0usize, 0usize);
        for row in 0..data.n_rows() {
            if conds.iter().all(|c| c.holds(data, row)) {
                n += 1;
                f += usize::from(labels[row]);
            }
        }
        (n, if n > 0 { f as f64 / n as f64 } else { 0.0 })
    };
    // Each distinct rule is measured once, rules in parallel.
    let mut seen = BTreeSet::new();
    let distinct: Vec<(String, &Vec<Condition>)> = candidates
        .iter()
        .filter_map(|conds| {
            let text = conds.iter().map(|c| c.text(spec, &train.0.names)).collect::<Vec<_>>().join(" ∧ ");
            seen.insert(text.clone()).then_some((text, conds))
        })
        .collect();
    let mut scored: Vec<(String, usize, f64, Option<(usize, f64)>)> = distinct
        .into_par_iter()
        .filter_map(|(text, conds)| {
            let (n, rate) = measure(conds, train.0, train.1);
            (n >= min_support && rate >= (2.0 * base).min(0.5 + base / 2.0)).then(|| {
                let t = test.map(|(d, l)| measure(conds, d, l));
                (text, n, rate, t)
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

fn walk(nodes: &[Node], at: usize, path: &mut Vec<Condition>, max: usize, out: &mut Vec<Vec<Condition>>) {
    if !path.is_empty() {
        out.push(path.clone());
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

    #[test]
    fn labels_read_like_words() {
        assert_eq!(label("importer_past_fraud_rate"), "importer past fraud rate");
        assert_eq!(label("unit_price_usd_per_kg"), "unit price (USD/kg)");
        assert_eq!(label("tax_rate_pct"), "tax rate (%)");
    }
}
