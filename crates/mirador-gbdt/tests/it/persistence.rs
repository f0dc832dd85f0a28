//! Saving and loading models; early stopping.

use mirador_gbdt::{Booster, Column, Dataset, GbdtError, MODEL_FORMAT_VERSION, Params};
use rand::Rng;

use crate::common::{label, names, quick_params, rng, split};

fn model_and_data() -> (Booster, Dataset) {
    let mut rng = rng(30);
    let n = 2000;
    let x: Vec<f64> = (0..n).map(|_| if rng.r#gen::<f64>() < 0.1 { f64::NAN } else { rng.gen_range(-1e6..1e6) }).collect();
    let c: Vec<u32> = (0..n).map(|_| rng.gen_range(0..9)).collect();
    let labels: Vec<f64> = x.iter().zip(&c).map(|(&x, &c)| label(x.is_nan() || (x > 0.0) == (c % 2 == 0))).collect();
    let data = Dataset::new(names(2), vec![Column::Numeric(x), Column::Categorical(c)]).unwrap();
    let model = Booster::train(&data, &labels, None, None, &quick_params()).unwrap();
    (model, data)
}

#[test]
fn json_round_trip_keeps_predictions_identical() {
    let (model, data) = model_and_data();
    let json = model.to_json().unwrap();
    let loaded = Booster::from_json(&json).unwrap();
    assert_eq!(loaded, model);
    assert_eq!(loaded.predict_margin(&data).unwrap(), model.predict_margin(&data).unwrap());
    assert_eq!(loaded.contributions(&data).unwrap(), model.contributions(&data).unwrap());
    assert_eq!(loaded.to_json().unwrap(), json);
}

#[test]
fn loading_checks_version_and_structure() {
    let (model, _) = model_and_data();
    let mut value: serde_json::Value = serde_json::from_str(&model.to_json().unwrap()).unwrap();
    value["format_version"] = serde_json::json!(MODEL_FORMAT_VERSION + 1);
    let error = Booster::from_json(&value.to_string()).unwrap_err();
    assert!(error.to_string().contains("format version"), "{error}");

    let mut value: serde_json::Value = serde_json::from_str(&model.to_json().unwrap()).unwrap();
    value["trees"][0]["nodes"][0]["split"]["left"] = serde_json::json!(0);
    let error = Booster::from_json(&value.to_string()).unwrap_err();
    assert!(error.to_string().contains("out of order"), "{error}");
    assert!(matches!(Booster::from_json("{}"), Err(GbdtError::Json(_))));
}

#[test]
fn early_stopping_stops_on_noise() {
    let mut rng = rng(31);
    let n = 4000;
    let columns: Vec<Column> = (0..5).map(|_| Column::Numeric((0..n).map(|_| rng.r#gen::<f64>()).collect())).collect();
    let labels: Vec<f64> = (0..n).map(|_| label(rng.r#gen::<f64>() < 0.3)).collect();
    let data = Dataset::new(names(5), columns).unwrap();
    let (train, train_labels, valid, valid_labels) = split(&data, &labels, 3000);
    let params = Params { n_trees: 300, learning_rate: 0.1, early_stopping_rounds: Some(10), ..Params::default() };
    let model = Booster::train(&train, &train_labels, None, Some((&valid, &valid_labels)), &params).unwrap();
    assert!(model.n_trees() < 50, "kept {} trees", model.n_trees());
    assert_eq!(model.best_iteration(), model.n_trees());
    let history = model.valid_history();
    assert_eq!(history.len(), model.best_iteration() + 10);
    let best = history.iter().copied().fold(f64::INFINITY, f64::min);
    assert!((history[model.best_iteration() - 1] - best).abs() < 1e-15);
    // The recorded loss is the loss of the kept model scored on raw values.
    let p = model.predict_proba(&valid).unwrap();
    let loss = p.iter().zip(&valid_labels).map(|(&p, &y)| if y > 0.5 { -p.ln() } else { -(1.0 - p).ln() }).sum::<f64>() / p.len() as f64;
    assert!((loss - best).abs() < 1e-12, "{loss} vs {best}");
}

#[test]
fn without_validation_all_trees_are_kept() {
    let (model, _) = model_and_data();
    assert_eq!(model.n_trees(), quick_params().n_trees);
    assert_eq!(model.best_iteration(), model.n_trees());
    assert!(model.valid_history().is_empty());
}
