//! The challengers' rows of `fraud_evaluation` reach their own table, and only there.

use std::collections::BTreeMap;

use mirador_report::gather;
use polars::prelude::*;

/// `fraud_evaluation` with the boosting's two rankings and both challengers, test split at 5 %;
/// each ranking's AUC tells it apart.
fn evaluation() -> DataFrame {
    let rankings = ["probability", "expected_duty", "logistic_regression", "random_forest"];
    let auc = [0.846, 0.846, 0.849, 0.874];
    let precision = [0.788, 0.341, 0.758, 0.788];
    let revenue = [0.299, 0.977, 0.337, 0.292];
    let n = rankings.len();
    DataFrame::new_infer_height(vec![
        Column::new("split".into(), vec!["test"; n]),
        Column::new("ranking".into(), rankings.to_vec()),
        Column::new("n_pct".into(), vec![5.0; n]),
        Column::new("selected".into(), vec![10u32; n]),
        Column::new("precision".into(), precision.to_vec()),
        Column::new("recall".into(), vec![0.3; n]),
        Column::new("revenue".into(), revenue.to_vec()),
        Column::new("auc".into(), auc.to_vec()),
        Column::new("fraud_rate".into(), vec![0.11; n]),
    ])
    .unwrap()
}

#[test]
fn challengers_get_their_table_and_leave_the_boosting_figures_alone() {
    let e = evaluation();
    let inputs: BTreeMap<&str, &DataFrame> = [("fraud_evaluation", &e)].into_iter().collect();
    let data = gather("run", &inputs).unwrap();
    let gain = data.gain.expect("gain");
    assert_eq!(gain.auc, Some(0.846));
    assert_eq!(gain.precision, [0.788]);
    assert_eq!(gain.revenue_expected_duty, [0.977]);
    let auc = data.key_figures.iter().find(|(k, _)| k.contains("ROC AUC")).map(|(_, v)| v.as_str());
    assert_eq!(auc, Some("0.846"));
    let rows: Vec<(&str, Option<f64>, f64)> = data.challengers.iter().map(|r| (r.model.as_str(), r.auc, r.revenue)).collect();
    assert_eq!(
        rows,
        [
            ("Gradient boosting (fraud model)", Some(0.846), 0.299),
            ("Logistic regression", Some(0.849), 0.337),
            ("Random forest", Some(0.874), 0.292)
        ]
    );
}

#[test]
fn without_challenger_rows_there_is_no_table() {
    let all = evaluation();
    let ranking = all.column("ranking").unwrap().str().unwrap();
    let e = all.filter(&(ranking.equal("probability") | ranking.equal("expected_duty"))).unwrap();
    let inputs: BTreeMap<&str, &DataFrame> = [("fraud_evaluation", &e)].into_iter().collect();
    let data = gather("run", &inputs).unwrap();
    assert!(data.gain.is_some());
    assert!(data.challengers.is_empty());
}
