//! The model learns known structure: thresholds, interactions, category sets, missing values.

use mirador_gbdt::{Booster, Column, Dataset, MISSING_CATEGORY, Params, auc};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::common::{label, names, quick_params, rng, split};

fn held_out_auc(data: &Dataset, labels: &[f64], n_train: usize, params: &Params) -> f64 {
    let (train, train_labels, test, test_labels) = split(data, labels, n_train);
    let model = Booster::train(&train, &train_labels, None, None, params).unwrap();
    auc(&model.predict_proba(&test).unwrap(), &test_labels)
}

#[test]
fn learns_a_threshold_rule() {
    let mut rng = rng(1);
    let n = 3000;
    let x: Vec<f64> = (0..n).map(|_| rng.r#gen::<f64>()).collect();
    let noise: Vec<f64> = (0..n).map(|_| rng.r#gen::<f64>()).collect();
    let labels: Vec<f64> = x.iter().map(|&v| label(v > 0.3)).collect();
    let data = Dataset::new(names(2), vec![Column::Numeric(x), Column::Numeric(noise)]).unwrap();
    let score = held_out_auc(&data, &labels, 2000, &quick_params());
    assert!(score > 0.95, "AUC {score}");
}

#[test]
fn learns_an_xor_interaction() {
    let mut rng = rng(2);
    let n = 4000;
    let a: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let b: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let labels: Vec<f64> = a.iter().zip(&b).map(|(&a, &b)| label((a > 0.0) != (b > 0.0))).collect();
    let noise: Vec<f64> = (0..n).map(|_| rng.r#gen::<f64>()).collect();
    let data = Dataset::new(names(3), vec![Column::Numeric(a), Column::Numeric(b), Column::Numeric(noise)]).unwrap();
    let score = held_out_auc(&data, &labels, 3000, &quick_params());
    assert!(score > 0.95, "AUC {score}");
}

/// Half of 40 categories, chosen at random, are risky: one categorical split separates them,
/// while the same codes read as numbers would need about twenty thresholds.
#[test]
fn learns_a_category_set_in_one_split() {
    let mut rng = rng(3);
    let n_categories = 40u32;
    let mut order: Vec<u32> = (0..n_categories).collect();
    order.shuffle(&mut rng);
    let risky: Vec<bool> = (0..n_categories).map(|code| order.iter().position(|&c| c == code).unwrap() < 20).collect();
    let n = 4000;
    let codes: Vec<u32> = (0..n).map(|_| rng.gen_range(0..n_categories)).collect();
    let labels: Vec<f64> = codes.iter().map(|&code| label(risky[code as usize] != (rng.r#gen::<f64>() < 0.05))).collect();
    let stumps = Params { n_trees: 3, num_leaves: 2, learning_rate: 0.5, ..quick_params() };
    let categorical = Dataset::new(names(1), vec![Column::Categorical(codes.clone())]).unwrap();
    let score = held_out_auc(&categorical, &labels, 3000, &stumps);
    assert!(score > 0.9, "categorical AUC {score}");

    let as_numbers = codes.iter().map(|&code| f64::from(code)).collect();
    let numeric = Dataset::new(names(1), vec![Column::Numeric(as_numbers)]).unwrap();
    let numeric_score = held_out_auc(&numeric, &labels, 3000, &stumps);
    assert!(numeric_score < 0.8, "numeric AUC {numeric_score}");

    // Unseen and missing categories take the right-hand side of the split without error.
    let model = Booster::train(&categorical, &labels, None, None, &stumps).unwrap();
    let unseen = Dataset::new(names(1), vec![Column::Categorical(vec![999, MISSING_CATEGORY])]).unwrap();
    let margins = model.predict_margin(&unseen).unwrap();
    assert!((margins[0] - margins[1]).abs() < 1e-12);
}

#[test]
fn routes_missing_values_to_the_learnt_side() {
    let mut rng = rng(4);
    let n = 3000;
    // Missing means positive; present values are positive only when small, so missing must join
    // the left (low) side of the split.
    let x: Vec<f64> = (0..n).map(|_| if rng.r#gen::<f64>() < 0.3 { f64::NAN } else { rng.r#gen::<f64>() }).collect();
    let labels: Vec<f64> = x.iter().map(|&v| label(v.is_nan() || v < 0.2)).collect();
    let data = Dataset::new(names(1), vec![Column::Numeric(x)]).unwrap();
    let score = held_out_auc(&data, &labels, 2000, &quick_params());
    assert!(score > 0.95, "AUC {score}");

    let model = Booster::train(&data, &labels, None, None, &quick_params()).unwrap();
    let probe = Dataset::new(names(1), vec![Column::Numeric(vec![f64::NAN, 0.1, 0.6])]).unwrap();
    let p = model.predict_proba(&probe).unwrap();
    assert!(p[0] > 0.9 && p[1] > 0.9 && p[2] < 0.1, "{p:?}");
}

#[test]
fn weights_and_scale_pos_weight_agree() {
    let mut rng = rng(5);
    let n = 1500;
    let x: Vec<f64> = (0..n).map(|_| rng.r#gen::<f64>()).collect();
    let labels: Vec<f64> = x.iter().map(|&v| label(rng.r#gen::<f64>() < v * 0.5)).collect();
    let data = Dataset::new(names(1), vec![Column::Numeric(x)]).unwrap();
    let weights: Vec<f64> = labels.iter().map(|&y| if y > 0.5 { 3.0 } else { 1.0 }).collect();
    let params = quick_params();
    let weighted = Booster::train(&data, &labels, Some(&weights), None, &params).unwrap();
    let scaled_params = Params { scale_pos_weight: 3.0, ..params.clone() };
    let scaled = Booster::train(&data, &labels, None, None, &scaled_params).unwrap();
    let plain = Booster::train(&data, &labels, None, None, &params).unwrap();
    let margins = |model: &Booster| model.predict_margin(&data).unwrap();
    assert_eq!(margins(&weighted), margins(&scaled));
    // Up-weighting positives raises every score on average.
    let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(margins(&weighted)) > mean(margins(&plain)) + 0.5);
}

#[test]
fn importance_points_at_the_signal() {
    let mut rng = rng(6);
    let n = 2000;
    let columns: Vec<Vec<f64>> = (0..4).map(|_| (0..n).map(|_| rng.r#gen::<f64>()).collect()).collect();
    let labels: Vec<f64> = columns[2].iter().map(|&v| label(v > 0.5)).collect();
    let data = Dataset::new(names(4), columns.into_iter().map(Column::Numeric).collect()).unwrap();
    let model = Booster::train(&data, &labels, None, None, &quick_params()).unwrap();
    let gain = model.feature_importance(mirador_gbdt::ImportanceKind::Gain);
    let top = gain.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(top, 2, "{gain:?}");
    let splits = model.feature_importance(mirador_gbdt::ImportanceKind::Split);
    assert!(splits[2] >= 1.0);
}
