//! TreeSHAP against its defining properties and against brute-force Shapley values.

use mirador_gbdt::{Booster, Column, Dataset, MISSING_CATEGORY, Node, Params, Tree};
use rand::Rng;

use crate::common::{label, names, rng};

/// Numeric, categorical and missing values with interacting effects.
fn mixed_data(seed: u64, n: usize) -> (Dataset, Vec<f64>) {
    let mut rng = rng(seed);
    let a: Vec<f64> = (0..n).map(|_| if rng.r#gen::<f64>() < 0.1 { f64::NAN } else { rng.gen_range(-2.0..2.0) }).collect();
    let b: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..1.0)).collect();
    let c: Vec<u32> = (0..n).map(|_| if rng.r#gen::<f64>() < 0.05 { MISSING_CATEGORY } else { rng.gen_range(0..8) }).collect();
    let labels = (0..n)
        .map(|i| {
            let a_term = if a[i].is_nan() { 1.0 } else { a[i] };
            let c_term = if c[i].is_multiple_of(3) { 1.5 } else { -0.5 };
            let margin = a_term * b[i] * 2.0 + c_term + rng.gen_range(-1.0..1.0);
            label(margin > 0.3)
        })
        .collect();
    let data = Dataset::new(names(3), vec![Column::Numeric(a), Column::Numeric(b), Column::Categorical(c)]).unwrap();
    (data, labels)
}

#[test]
fn contributions_sum_to_the_margin() {
    let (data, labels) = mixed_data(10, 3000);
    let params = Params {
        n_trees: 40,
        learning_rate: 0.1,
        num_leaves: 31,
        max_depth: 0,
        min_data_in_leaf: 5,
        early_stopping_rounds: None,
        ..Params::default()
    };
    let model = Booster::train(&data, &labels, None, None, &params).unwrap();
    let margins = model.predict_margin(&data).unwrap();
    let contributions = model.contributions(&data).unwrap();
    assert_eq!(contributions.len(), data.n_rows());
    for (row, (phi, margin)) in contributions.iter().zip(&margins).enumerate() {
        assert_eq!(phi.len(), 4);
        let total: f64 = phi.iter().sum();
        assert!((total - margin).abs() < 1e-9, "row {row}: {total} vs {margin}");
    }
    // The bias is the same for every row.
    assert!(contributions.iter().all(|phi| phi[3].to_bits() == contributions[0][3].to_bits()));
}

/// `E[f(x) | x_S]` with the path-dependent expectation: splits on features outside `S` follow
/// both children, weighted by training cover.
fn conditional_expectation(tree: &Tree, columns: &[Column], row: usize, subset: u32, node: usize) -> f64 {
    match &tree.nodes[node] {
        Node::Leaf { value, .. } => *value,
        Node::Split { feature, rule, default_left, left, right, count, .. } => {
            let (left, right) = (*left as usize, *right as usize);
            if subset & (1 << feature) != 0 {
                let next = if rule.goes_left(&columns[*feature], row, *default_left) { left } else { right };
                conditional_expectation(tree, columns, row, subset, next)
            } else {
                let share = |child: usize| tree.nodes[child].count() / count;
                share(left) * conditional_expectation(tree, columns, row, subset, left)
                    + share(right) * conditional_expectation(tree, columns, row, subset, right)
            }
        }
    }
}

fn factorial(n: u32) -> f64 {
    (1..=n).map(f64::from).product()
}

/// Shapley values by enumerating every subset of the features.
fn brute_force_shapley(model: &Booster, data: &Dataset, row: usize) -> Vec<f64> {
    let m = u32::try_from(data.n_features()).unwrap();
    let value = |subset: u32| -> f64 {
        model.init_score() + model.trees().iter().map(|tree| conditional_expectation(tree, &data.columns, row, subset, 0)).sum::<f64>()
    };
    let mut phi = vec![0.0; m as usize + 1];
    for feature in 0..m {
        for subset in 0..(1u32 << m) {
            if subset & (1 << feature) != 0 {
                continue;
            }
            let size = subset.count_ones();
            let weight = factorial(size) * factorial(m - size - 1) / factorial(m);
            phi[feature as usize] += weight * (value(subset | (1 << feature)) - value(subset));
        }
    }
    phi[m as usize] = value(0);
    phi
}

#[test]
fn matches_brute_force_shapley_values() {
    let (data, labels) = mixed_data(11, 1500);
    let params = Params {
        n_trees: 6,
        learning_rate: 0.3,
        num_leaves: 8,
        max_depth: 4,
        min_data_in_leaf: 20,
        early_stopping_rounds: None,
        ..Params::default()
    };
    let model = Booster::train(&data, &labels, None, None, &params).unwrap();
    assert_eq!(model.n_trees(), 6);
    // The comparison is only meaningful if some path tests a feature twice.
    let repeats_a_feature = model.trees().iter().any(|tree| tree.depth() >= 4);
    assert!(repeats_a_feature, "expected trees deeper than the feature count");
    let contributions = model.contributions(&data).unwrap();
    for row in (0..data.n_rows()).step_by(37) {
        let expected = brute_force_shapley(&model, &data, row);
        for (got, want) in contributions[row].iter().zip(&expected) {
            assert!((got - want).abs() < 1e-9, "row {row}: {:?} vs {expected:?}", contributions[row]);
        }
    }
}
