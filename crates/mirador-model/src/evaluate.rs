//! Held-out evaluation with the customs-literature metrics, for two rankings:
//! - `probability`: by fraud probability (the model's own ranking; the bar is set on it);
//! - `expected_duty`: by probability × duty, the revenue-aware ranking;
//! - `selection`: the inspection list ([`crate::select`]), whose list at n % is its first picks.
//!
//! Each figure comes with a 90 % bootstrap interval over the split's rows, and the split says on
//! how few fraudulent declarations half its fraudulent duty sits: when that is a dozen,
//! revenue@n% turns on whether those few are ranked high, and moves a lot from sample to sample.

use mirador_metrics::{Bootstrap, Interval, Spread, TopShare, auc, holders, top_share};
use mirador_schema::catalog::fraud_evaluation;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// The percentages of declarations selected.
pub const N_PCTS: [f64; 5] = [1.0, 2.0, 5.0, 10.0, 20.0];

/// One evaluated split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// `valid` or `test`.
    pub split: String,
    /// Labelled declarations evaluated.
    pub rows: usize,
    /// Share of them found fraudulent.
    pub fraud_rate: f64,
    /// ROC AUC of the probability.
    pub auc: Option<f64>,
    /// Per ranking, the top-n % figures.
    pub by_probability: Vec<TopShare>,
    /// By expected duty.
    pub by_expected_duty: Vec<TopShare>,
    /// 90 % bootstrap interval of the AUC.
    #[serde(default)]
    pub auc_interval: Option<Interval>,
    /// 90 % bootstrap intervals of `by_probability`, row for row.
    #[serde(default)]
    pub spread_by_probability: Vec<Spread>,
    /// 90 % bootstrap intervals of `by_expected_duty`, row for row.
    #[serde(default)]
    pub spread_by_expected_duty: Vec<Spread>,
    /// The fewest fraudulent declarations that hold half the split's fraudulent duty.
    #[serde(default)]
    pub frauds_holding_half_duty: usize,
    /// The inspection list's figures (empty when it was not measured on this split).
    #[serde(default)]
    pub by_selection: Vec<TopShare>,
    /// 90 % bootstrap intervals of `by_selection`, row for row.
    #[serde(default)]
    pub spread_by_selection: Vec<Spread>,
}

/// Evaluates probabilities against labels; `duty` is each declaration's duty (the revenue at
/// stake when it is fraudulent). `seed` seeds the bootstrap.
pub fn evaluate(split: &str, prob: &[f64], labels: &[bool], duty: &[f64], seed: u64) -> Evaluation {
    evaluate_ranked(split, prob, labels, duty, None, seed)
}

/// [`evaluate`], with the inspection list's figures: `order` ranks the split's rows in pick
/// order, the first pick highest ([`crate::select::order_scores`]).
pub fn evaluate_with_selection(split: &str, prob: &[f64], labels: &[bool], duty: &[f64], order: &[f64], seed: u64) -> Evaluation {
    evaluate_ranked(split, prob, labels, duty, Some(order), seed)
}

/// The evaluation of the probability's and the expected duty's rankings, and of `order`'s when
/// given. Their bootstrap intervals come from one set of draws (each ranking's intervals are
/// those it gets alone: the draws depend on the seed and the rows only).
fn evaluate_ranked(split: &str, prob: &[f64], labels: &[bool], duty: &[f64], order: Option<&[f64]>, seed: u64) -> Evaluation {
    let expected: Vec<f64> = prob.iter().zip(duty).map(|(p, d)| p * d.max(0.0)).collect();
    let at = |scores: &[f64]| N_PCTS.iter().filter_map(|&n| top_share(scores, labels, duty, n)).collect();
    let bootstrap = Bootstrap { seed, ..Bootstrap::default() };
    let mut rankings: Vec<&[f64]> = vec![prob, &expected];
    rankings.extend(order);
    let mut spreads = bootstrap.intervals_of(&rankings, labels, duty, &N_PCTS).into_iter();
    let (by_probability, by_expected_duty, by_order) = (spreads.next().flatten(), spreads.next().flatten(), spreads.next().flatten());
    Evaluation {
        split: split.to_owned(),
        rows: labels.len(),
        fraud_rate: if labels.is_empty() { 0.0 } else { labels.iter().filter(|l| **l).count() as f64 / labels.len() as f64 },
        auc: auc(prob, labels),
        by_probability: at(prob),
        by_expected_duty: at(&expected),
        auc_interval: by_probability.as_ref().and_then(|r| r.auc),
        spread_by_probability: by_probability.map(|r| r.at).unwrap_or_default(),
        spread_by_expected_duty: by_expected_duty.map(|r| r.at).unwrap_or_default(),
        frauds_holding_half_duty: holders(labels, duty, 0.5),
        by_selection: order.map(&at).unwrap_or_default(),
        spread_by_selection: by_order.map(|r| r.at).unwrap_or_default(),
    }
}

impl Evaluation {
    /// The inspection list's figures at `n` %, when measured.
    pub fn selection_at(&self, n: f64) -> Option<&TopShare> {
        self.by_selection.iter().find(|t| (t.n_pct - n).abs() < 1e-9)
    }

    /// The `fraud_evaluation` rows of this split.
    pub fn frame(evals: &[Evaluation]) -> PolarsResult<DataFrame> {
        let (mut split, mut ranking, mut n, mut sel, mut p, mut r, mut rev, mut a) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut base = Vec::new();
        let mut bounds: [Vec<Option<f64>>; 8] = Default::default();
        let mut half = Vec::new();
        for e in evals {
            for (name, rows, spread) in [
                ("probability", &e.by_probability, &e.spread_by_probability),
                ("expected_duty", &e.by_expected_duty, &e.spread_by_expected_duty),
                ("selection", &e.by_selection, &e.spread_by_selection),
            ] {
                for (k, t) in rows.iter().enumerate() {
                    let s = spread.get(k).filter(|s| (s.n_pct - t.n_pct).abs() < 1e-9);
                    let ends = |i: Option<Interval>| [i.map(|i| i.lo), i.map(|i| i.hi)];
                    let values =
                        [s.map(|s| s.precision), s.map(|s| s.recall), s.map(|s| s.revenue), e.auc_interval].into_iter().flat_map(ends);
                    for (column, value) in bounds.iter_mut().zip(values) {
                        column.push(value);
                    }
                    half.push(e.frauds_holding_half_duty as u32);
                    split.push(e.split.clone());
                    ranking.push(name);
                    n.push(t.n_pct);
                    sel.push(t.selected as u32);
                    p.push(t.precision);
                    r.push(t.recall);
                    rev.push(t.revenue);
                    a.push(e.auc);
                    base.push(e.fraud_rate);
                }
            }
        }
        let mut columns = vec![
            Column::new(fraud_evaluation::SPLIT.into(), split),
            Column::new(fraud_evaluation::RANKING.into(), ranking),
            Column::new(fraud_evaluation::N_PCT.into(), n),
            Column::new(fraud_evaluation::SELECTED.into(), sel),
            Column::new(fraud_evaluation::PRECISION.into(), p),
            Column::new(fraud_evaluation::RECALL.into(), r),
            Column::new(fraud_evaluation::REVENUE.into(), rev),
            Column::new(fraud_evaluation::AUC.into(), a),
            Column::new(fraud_evaluation::FRAUD_RATE.into(), base),
        ];
        let names = [
            fraud_evaluation::PRECISION_LO,
            fraud_evaluation::PRECISION_HI,
            fraud_evaluation::RECALL_LO,
            fraud_evaluation::RECALL_HI,
            fraud_evaluation::REVENUE_LO,
            fraud_evaluation::REVENUE_HI,
            fraud_evaluation::AUC_LO,
            fraud_evaluation::AUC_HI,
        ];
        columns.extend(names.into_iter().zip(bounds).map(|(name, values)| Column::new(name.into(), values)));
        columns.push(Column::new(fraud_evaluation::FRAUDS_HOLDING_HALF_DUTY.into(), half));
        DataFrame::new_infer_height(columns)
    }

    /// precision/recall/revenue at `n` % of the probability ranking.
    pub fn at(&self, n: f64) -> Option<&TopShare> {
        self.by_probability.iter().find(|t| (t.n_pct - n).abs() < 1e-9)
    }
}

/// The probability threshold that maximises F1 on the validation split (ties: the higher).
pub fn f1_threshold(prob: &[f64], labels: &[bool]) -> f64 {
    let order = mirador_metrics::ranking(prob);
    let positives = labels.iter().filter(|l| **l).count() as f64;
    if positives == 0.0 {
        return 0.5;
    }
    let (mut tp, mut best, mut threshold) = (0.0, -1.0, 0.5);
    for (k, &i) in order.iter().enumerate() {
        tp += f64::from(u8::from(labels[i]));
        let f1 = 2.0 * tp / (k as f64 + 1.0 + positives);
        if f1 > best && order.get(k + 1).is_none_or(|&j| prob[j] < prob[i]) {
            best = f1;
            threshold = prob[i];
        }
    }
    threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_threshold_separates_a_clean_split() {
        let prob = [0.9, 0.8, 0.7, 0.2, 0.1];
        let labels = [true, true, true, false, false];
        assert_eq!(f1_threshold(&prob, &labels), 0.7);
    }

    #[test]
    fn expected_duty_ranking_favours_large_duties() {
        let prob = [0.9, 0.5, 0.1, 0.2];
        let labels = [true, true, false, false];
        let duty = [1.0, 100.0, 1.0, 1.0];
        let e = evaluate("test", &prob, &labels, &duty, 1);
        let by_prob = &e.by_probability[2]; // 5 % of 4 rows = 1 row
        let by_duty = &e.by_expected_duty[2];
        assert_eq!((by_prob.selected, by_duty.selected), (1, 1));
        assert!(by_duty.revenue > by_prob.revenue);
        assert_eq!(e.auc, Some(1.0));
    }

    #[test]
    fn the_selection_list_gets_rows_of_its_own_beside_the_rankings() {
        let prob = [0.9, 0.5, 0.1, 0.2];
        let labels = [true, true, false, false];
        let duty = [1.0, 100.0, 1.0, 1.0];
        // The list picks row 1 first, then row 0.
        let order = [3.0, 4.0, 1.0, 2.0];
        let e = evaluate_with_selection("test", &prob, &labels, &duty, &order, 1);
        // The rankings' own figures are those evaluated without a list.
        let alone = evaluate("test", &prob, &labels, &duty, 1);
        assert_eq!((&e.by_probability, &e.spread_by_probability), (&alone.by_probability, &alone.spread_by_probability));
        assert_eq!((&e.by_expected_duty, &e.spread_by_expected_duty), (&alone.by_expected_duty, &alone.spread_by_expected_duty));
        assert_eq!(e.auc_interval, alone.auc_interval);
        let first = e.selection_at(5.0).unwrap();
        assert_eq!((first.selected, first.precision), (1, 1.0));
        assert!((first.revenue - 100.0 / 101.0).abs() < 1e-12);
        assert_eq!(e.spread_by_selection.len(), N_PCTS.len());
        let frame = Evaluation::frame(&[e]).unwrap();
        let ranking = frame.column("ranking").unwrap().str().unwrap().clone();
        let count = |name: &str| ranking.iter().filter(|r| *r == Some(name)).count();
        assert_eq!((count("probability"), count("expected_duty"), count("selection")), (5, 5, 5));
        // Without a list the split has no selection rows.
        let plain = Evaluation::frame(&[evaluate("test", &prob, &labels, &duty, 1)]).unwrap();
        assert_eq!(plain.height(), 10);
    }
}
