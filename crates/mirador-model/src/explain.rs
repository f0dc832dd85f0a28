//! Why a declaration scored high, and what the model learnt, in words an auditor reads.
//!
//! - Per declaration: the features with the largest positive contributions to its log-odds
//!   (path attribution, [`path_contributions`]), with the declaration's own value (`importer past fraud rate 0.62 (+1.35)`).
//! - For the model: rules read off the trees' top splits (paths of up to `max_conditions`
//!   conditions from a root), each measured on the training rows and on the held-out test rows
//!   (support and fraud rate), kept when they lift the fraud rate well above the base rate.

use std::collections::BTreeSet;

use mirador_gbdt::{Booster, Column as Feature, Dataset, Node, SplitRule};
use polars::prelude::*;
use rayon::prelude::*;

use crate::features::FeatureSpec;

/// Human-readable feature name.
pub fn label(feature: &str) -> String {
    let l = feature.replace("_past_", " past ").replace('_', " ");
    l.replace("usd per kg", "(USD/kg)").replace(" usd", " (USD)").replace(" pct", " (%)").replace(" kg", " (kg)")
}

fn value_text(spec: &FeatureSpec, name: &str, column: &Feature, row: usize) -> String {
    match column {
        Feature::Numeric(v) => match v.get(row) {
            Some(x) if x.is_finite() => format_number(*x),
            _ => "missing".into(),
        },
        Feature::Categorical(v) => v.get(row).and_then(|&c| spec.category(name, c)).unwrap_or("unseen").to_owned(),
    }
}

fn format_number(x: f64) -> String {
    if x.abs() >= 1_000.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// Path attribution (Saabas): walking a row down each tree, every split moves the expected
/// margin from the node's cover-weighted mean to the child's; the move is credited to the split's
/// feature. Contributions plus the bias sum exactly to the margin. It costs one walk per tree, so
/// every declaration of a nightly run can be explained; [`Booster::contributions`] (exact
/// TreeSHAP) is the consistent but much slower alternative.
pub fn path_contributions(booster: &Booster, data: &Dataset) -> Vec<Vec<f64>> {
    let n_features = data.n_features();
    // Expected value of every node: the cover-weighted mean of its leaves.
    let expected: Vec<Vec<f64>> = booster.trees().iter().map(|t| node_means(&t.nodes)).collect();
    (0..data.n_rows())
        .into_par_iter()
        .map(|row| {
            let mut c = vec![0.0; n_features + 1];
            c[n_features] = booster.init_score();
            for (tree, means) in booster.trees().iter().zip(&expected) {
                let mut at = 0usize;
                c[n_features] += means[0];
                while let Some(Node::Split { feature, rule, default_left, left, right, .. }) = tree.nodes.get(at) {
                    let next = if rule.goes_left(&data.columns[*feature], row, *default_left) { *left } else { *right } as usize;
                    c[*feature] += means[next] - means[at];
                    at = next;
                }
            }
            c
        })
        .collect()
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

/// Top `k` positive contributions per row: (`reasons` text, `top_features` names).
pub fn reasons(
    booster: &Booster,
    spec: &FeatureSpec,
    data: &Dataset,
    k: usize,
) -> Result<(Vec<String>, Vec<String>), mirador_gbdt::GbdtError> {
    let contributions = path_contributions(booster, data);
    let names = &data.names;
    let mut text = Vec::with_capacity(contributions.len());
    let mut top = Vec::with_capacity(contributions.len());
    for (row, c) in contributions.iter().enumerate() {
        let mut idx: Vec<usize> = (0..names.len()).filter(|&j| c[j] > 0.0).collect();
        idx.sort_by(|&a, &b| c[b].total_cmp(&c[a]).then(a.cmp(&b)));
        idx.truncate(k);
        text.push(
            idx.iter()
                .map(|&j| format!("{} {} (+{:.2})", label(&names[j]), value_text(spec, &names[j], &data.columns[j], row), c[j]))
                .collect::<Vec<_>>()
                .join("; "),
        );
        top.push(idx.iter().map(|&j| names[j].clone()).collect::<Vec<_>>().join(";"));
    }
    Ok((text, top))
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
    let mut seen = BTreeSet::new();
    let mut scored: Vec<(String, usize, f64, Option<(usize, f64)>)> = candidates
        .iter()
        .filter_map(|conds| {
            let text = conds.iter().map(|c| c.text(spec, &train.0.names)).collect::<Vec<_>>().join(" ∧ ");
            if !seen.insert(text.clone()) {
                return None;
            }
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
            "rule".into(),
            scored.iter().map(|s| format!("{} → fraud rate {:.0} % in training", s.0, s.2 * 100.0)).collect::<Vec<_>>(),
        ),
        Column::new("support_train".into(), scored.iter().map(|s| s.1 as u32).collect::<Vec<_>>()),
        Column::new("fraud_rate_train".into(), scored.iter().map(|s| s.2).collect::<Vec<_>>()),
        Column::new("lift_train".into(), scored.iter().map(|s| if base > 0.0 { s.2 / base } else { 0.0 }).collect::<Vec<_>>()),
        Column::new("support_test".into(), scored.iter().map(|s| s.3.map(|t| t.0 as u32)).collect::<Vec<_>>()),
        Column::new("fraud_rate_test".into(), scored.iter().map(|s| s.3.map(|t| t.1)).collect::<Vec<_>>()),
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
