//! Held-out evaluation with the customs-literature metrics, for two rankings:
//! - `probability`: by fraud probability (the model's own ranking; the bar is set on it);
//! - `expected_duty`: by probability × duty, the revenue-aware ranking.

use mirador_metrics::{TopShare, auc, top_share};
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
}

/// Evaluates probabilities against labels; `duty` is each declaration's duty (the revenue at
/// stake when it is fraudulent).
pub fn evaluate(split: &str, prob: &[f64], labels: &[bool], duty: &[f64]) -> Evaluation {
    let expected: Vec<f64> = prob.iter().zip(duty).map(|(p, d)| p * d.max(0.0)).collect();
    let at = |scores: &[f64]| N_PCTS.iter().filter_map(|&n| top_share(scores, labels, duty, n)).collect();
    Evaluation {
        split: split.to_owned(),
        rows: labels.len(),
        fraud_rate: if labels.is_empty() { 0.0 } else { labels.iter().filter(|l| **l).count() as f64 / labels.len() as f64 },
        auc: auc(prob, labels),
        by_probability: at(prob),
        by_expected_duty: at(&expected),
    }
}

impl Evaluation {
    /// The `fraud_evaluation` rows of this split.
    pub fn frame(evals: &[Evaluation]) -> PolarsResult<DataFrame> {
        let (mut split, mut ranking, mut n, mut sel, mut p, mut r, mut rev, mut a) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut base = Vec::new();
        for e in evals {
            for (name, rows) in [("probability", &e.by_probability), ("expected_duty", &e.by_expected_duty)] {
                for t in rows {
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
        DataFrame::new_infer_height(vec![
            Column::new("split".into(), split),
            Column::new("ranking".into(), ranking),
            Column::new("n_pct".into(), n),
            Column::new("selected".into(), sel),
            Column::new("precision".into(), p),
            Column::new("recall".into(), r),
            Column::new("revenue".into(), rev),
            Column::new("auc".into(), a),
            Column::new("fraud_rate".into(), base),
        ])
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
        let e = evaluate("test", &prob, &labels, &duty);
        let by_prob = &e.by_probability[2]; // 5 % of 4 rows = 1 row
        let by_duty = &e.by_expected_duty[2];
        assert_eq!((by_prob.selected, by_duty.selected), (1, 1));
        assert!(by_duty.revenue > by_prob.revenue);
        assert_eq!(e.auc, Some(1.0));
    }
}
