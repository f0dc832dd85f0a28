//! Seeded data generators and helpers shared by the tests.

use mirador_gbdt::{Column, Dataset, Params};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

pub(crate) fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

pub(crate) fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("f{i}")).collect()
}

/// Rows `rows` of every column.
pub(crate) fn take_rows(data: &Dataset, rows: std::ops::Range<usize>) -> Dataset {
    let columns = data
        .columns
        .iter()
        .map(|column| match column {
            Column::Numeric(values) => Column::Numeric(values[rows.clone()].to_vec()),
            Column::Categorical(codes) => Column::Categorical(codes[rows.clone()].to_vec()),
        })
        .collect();
    Dataset::new(data.names.clone(), columns).unwrap()
}

/// Splits into the first `n_train` rows and the rest.
pub(crate) fn split(data: &Dataset, labels: &[f64], n_train: usize) -> (Dataset, Vec<f64>, Dataset, Vec<f64>) {
    let n = data.n_rows();
    (take_rows(data, 0..n_train), labels[..n_train].to_vec(), take_rows(data, n_train..n), labels[n_train..].to_vec())
}

/// Small, fast settings without early stopping.
pub(crate) fn quick_params() -> Params {
    Params {
        n_trees: 60,
        learning_rate: 0.2,
        num_leaves: 15,
        max_depth: 6,
        min_data_in_leaf: 10,
        early_stopping_rounds: None,
        ..Params::default()
    }
}

pub(crate) fn label(positive: bool) -> f64 {
    if positive { 1.0 } else { 0.0 }
}
