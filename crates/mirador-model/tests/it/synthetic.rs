use std::collections::BTreeMap;

use mirador_model::{ModelParams, score_with_model, train};
use mirador_schema::col;
use mirador_synth::{SynthParams, generate};

#[test]
fn synthetic_fraud_is_learnt_scored_explained_and_reloadable() {
    let world = generate(&SynthParams::small(31)).unwrap();
    let params = ModelParams {
        n_trees: 300,
        learning_rate: 0.05,
        challengers: true,
        challenger_rows: 2_000,
        forest_trees: 20,
        ..ModelParams::default()
    };
    let t = train(&world.declarations, &BTreeMap::new(), &params, 42).unwrap();
    let test = t.model.evaluation.iter().find(|e| e.split == "test").unwrap();
    assert!(test.auc.unwrap() > 0.75, "held-out AUC {:?}", test.auc);
    // Precision in the top 5 % far above the base fraud rate.
    assert!(test.at(5.0).unwrap().precision > 2.0 * test.fraud_rate, "{test:?}");

    // The challengers sit beside the boosting in fraud_evaluation: the same splits and budgets,
    // fit on the bounded sample, and each learns the planted fraud too.
    let ranking = t.evaluation.column("ranking").unwrap().str().unwrap().clone();
    let count = |name: &str| ranking.iter().filter(|r| *r == Some(name)).count();
    assert_eq!((count("probability"), count("logistic_regression"), count("random_forest")), (10, 10, 10));
    assert_eq!(t.model.challengers.len(), 2);
    for c in &t.model.challengers {
        assert!(c.train_rows <= 2_000 && c.train_rows > 500, "{} fit on {} rows", c.name, c.train_rows);
        let auc = c.evaluations.iter().find(|e| e.split == "test").and_then(|e| e.auc).unwrap();
        assert!(auc > 0.6, "{} test AUC {auc}", c.name);
    }

    // Every declaration is scored, with reasons.
    assert_eq!(t.scores.height(), world.declarations.height());
    let reasons = t.scores.column("top_reasons").unwrap().str().unwrap().clone();
    let prob = t.scores.column("fraud_probability").unwrap().f64().unwrap().clone();
    let top = prob.iter().enumerate().max_by(|a, b| a.1.unwrap().total_cmp(&b.1.unwrap())).unwrap().0;
    assert!(!reasons.get(top).unwrap().is_empty());
    assert!(t.rules.height() > 0, "rules are extracted");

    // Each split's declarations are ordered 1..=n by the inspection list, each picked by one share;
    // inspection_list is the test split's first budget-pct, in pick order, with its reasons.
    let split: Vec<String> = t.scores.column("split").unwrap().str().unwrap().iter().map(|s| s.unwrap().to_owned()).collect();
    let order: Vec<u32> = t.scores.column("selection_order").unwrap().u32().unwrap().iter().map(Option::unwrap).collect();
    let by: Vec<String> = t.scores.column("selected_by").unwrap().str().unwrap().iter().map(|s| s.unwrap().to_owned()).collect();
    for name in ["train", "valid", "test", "unlabelled"] {
        let mut o: Vec<u32> = (0..split.len()).filter(|&i| split[i] == name).map(|i| order[i]).collect();
        o.sort_unstable();
        assert_eq!(o, (1..=o.len() as u32).collect::<Vec<_>>(), "{name}");
    }
    assert!(by.iter().all(|b| b == "probability" || b == "revenue"), "no exploration share by default");
    let selection = t.model.selection.as_ref().unwrap();
    let picks = |k: u32| (0..split.len()).filter(|&i| split[i] == "test" && order[i] <= k && by[i] == "revenue").count() as f64;
    for k in [10, 40, 100] {
        assert!((picks(k) - selection.policy.revenue_share * f64::from(k)).abs() <= 1.0, "{k}: {selection:?}");
    }
    let test_rows = split.iter().filter(|s| *s == "test").count();
    let list = &t.inspection_list;
    assert_eq!(list.height(), (params.budget_pct / 100.0 * test_rows as f64).ceil() as usize);
    let listed: Vec<String> = list.column("split").unwrap().str().unwrap().iter().map(|s| s.unwrap().to_owned()).collect();
    assert!(listed.iter().all(|s| s == "test"));
    let ranks: Vec<u32> = list.column("pick_rank").unwrap().u32().unwrap().iter().map(Option::unwrap).collect();
    assert_eq!(ranks, (1..=list.height() as u32).collect::<Vec<_>>());
    assert!(list.column("top_reasons").unwrap().str().unwrap().iter().all(|r| r.is_some_and(|r| !r.is_empty())));
    assert!(selection.tuned && !selection.frontier.is_empty());
    assert_eq!(t.frontier.height(), selection.frontier.len());
    // The saved model carries its policy.
    assert!(t.model.evaluation.iter().all(|e| e.by_selection.len() == 5));

    // The saved model reloads and gives the same probabilities on rows it has not seen labelled.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    std::fs::write(&path, serde_json::to_vec(&t.model).unwrap()).unwrap();
    let later =
        generate(&SynthParams { declarations: 2_000, start_period: "2024-01".into(), months: 1, ..SynthParams::small(32) }).unwrap();
    let scored = score_with_model(&path, &later.declarations, &BTreeMap::new()).unwrap().scores;
    assert_eq!(scored.height(), later.declarations.height());
    let p = scored.column("fraud_probability").unwrap().f64().unwrap().clone();
    assert!(p.iter().flatten().all(|v| (0.0..=1.0).contains(&v)));
    let _ = col::FRAUD;
}

#[test]
fn too_few_labels_is_a_clear_error() {
    let world = generate(&SynthParams { declarations: 500, inspection_rate: 0.01, ..SynthParams::small(33) }).unwrap();
    let err = train(&world.declarations, &BTreeMap::new(), &ModelParams::default(), 1).err().unwrap();
    assert!(err.to_string().contains("labelled"), "{err}");
}
