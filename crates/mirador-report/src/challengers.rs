//! What the gradient boosting adds: the fraud model beside its challengers (a logistic
//! regression and a random forest on the same features and split), on the test months.

use mirador_schema::catalog::fraud_evaluation;
use polars::prelude::*;
use serde::Serialize;

use crate::format::percent;
use crate::html::{escape, missing, table};
use crate::stage::{numbers_or_nan, texts_or_empty};

/// The budget the comparison is made at, in % of the split's declarations.
pub(crate) const N_PCT: f64 = 5.0;

/// `fraud_evaluation` rankings compared, with the label the report gives them: the boosting's
/// probability ranking first.
const MODELS: [(&str, &str); 3] = [
    ("probability", "Gradient boosting (fraud model)"),
    ("logistic_regression", "Logistic regression"),
    ("random_forest", "Random forest"),
];

/// One model's figures on the test months.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChallengerRow {
    /// Model, as the report names it.
    pub model: String,
    /// ROC AUC.
    pub auc: Option<f64>,
    /// Precision at 5 % inspected.
    pub precision: f64,
    /// Share of the fraudulent duty found at 5 % inspected.
    pub revenue: f64,
}

/// The rows of `fraud_evaluation` (the test split, 5 %) for the boosting and each challenger
/// present; none when no challenger ran.
pub(crate) fn gather(evaluation: &DataFrame) -> PolarsResult<Vec<ChallengerRow>> {
    let text = |name: &str| texts_or_empty(evaluation, name);
    let number = |name: &str| numbers_or_nan(evaluation, name);
    let (split, ranking) = (text(fraud_evaluation::SPLIT)?, text(fraud_evaluation::RANKING)?);
    let (n, precision, revenue, auc) = (
        number(fraud_evaluation::N_PCT)?,
        number(fraud_evaluation::PRECISION)?,
        number(fraud_evaluation::REVENUE)?,
        number(fraud_evaluation::AUC)?,
    );
    let rows: Vec<ChallengerRow> = MODELS
        .iter()
        .filter_map(|(id, label)| {
            let i = (0..evaluation.height()).find(|&i| split[i] == "test" && ranking[i] == *id && (n[i] - N_PCT).abs() < 1e-9)?;
            Some(ChallengerRow {
                model: (*label).to_owned(),
                auc: auc[i].is_finite().then_some(auc[i]),
                precision: precision[i],
                revenue: revenue[i],
            })
        })
        .collect();
    Ok(if rows.len() > 1 { rows } else { Vec::new() })
}

/// The "Challengers" part of the fraud-model section.
pub(crate) fn html(rows: &[ChallengerRow]) -> String {
    let mut out = "<h3>Challengers</h3>\n".to_owned();
    if rows.is_empty() {
        out.push_str(&missing("Challengers (logistic regression, random forest)"));
        return out;
    }
    out.push_str(
        "<p class=\"note\">The same features and time split through two simpler models, a logistic \
         regression and a random forest, each fit on a bounded sample of the training months and \
         ranking the test months by its own fraud probability: what the gradient boosting adds \
         is the difference.</p>\n",
    );
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                escape(&r.model),
                r.auc.map_or_else(|| "—".to_owned(), |a| format!("{a:.3}")),
                percent(r.precision, 1),
                percent(r.revenue, 1),
            ]
        })
        .collect();
    out.push_str(&table(None, &[("Model (test months)", false), ("ROC AUC", true), ("Precision@5%", true), ("Revenue@5%", true)], &cells));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(rankings: &[&str]) -> DataFrame {
        let mut split = Vec::new();
        let mut ranking = Vec::new();
        let mut n = Vec::new();
        for r in rankings {
            for s in ["valid", "test"] {
                for pct in [1.0, 5.0] {
                    split.push(s);
                    ranking.push(*r);
                    n.push(pct);
                }
            }
        }
        let rows = split.len();
        // Each row's figures tell its place apart: test 5 % of the second ranking is 0.5 + 0.01.
        let value: Vec<f64> =
            (0..rows).map(|i| (i / 4) as f64 * 0.5 + if split[i] == "test" && n[i] == 5.0 { 0.01 } else { 0.0 }).collect();
        DataFrame::new_infer_height(vec![
            Column::new(fraud_evaluation::SPLIT.into(), split),
            Column::new(fraud_evaluation::RANKING.into(), ranking),
            Column::new(fraud_evaluation::N_PCT.into(), n),
            Column::new(fraud_evaluation::PRECISION.into(), value.clone()),
            Column::new(fraud_evaluation::REVENUE.into(), value.clone()),
            Column::new(fraud_evaluation::AUC.into(), value),
        ])
        .unwrap()
    }

    #[test]
    fn rows_are_the_test_months_at_five_percent_boosting_first() {
        let rows = gather(&frame(&["random_forest", "probability", "expected_duty", "logistic_regression"])).unwrap();
        let models: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
        assert_eq!(models, ["Gradient boosting (fraud model)", "Logistic regression", "Random forest"]);
        assert_eq!(rows[0].precision, 0.51);
        assert_eq!(rows[1].revenue, 1.51);
        assert_eq!(rows[2].auc, Some(0.01));
    }

    #[test]
    fn without_challengers_the_part_says_so() {
        assert!(gather(&frame(&["probability", "expected_duty"])).unwrap().is_empty());
        assert!(html(&[]).contains(crate::html::NOT_COMPUTED));
        let row = ChallengerRow { model: "Random <forest>".into(), auc: None, precision: 0.5, revenue: 0.25 };
        let page = html(&[row]);
        assert!(page.contains("Random &lt;forest&gt;") && page.contains("50.0 %") && page.contains("25.0 %"));
    }
}
