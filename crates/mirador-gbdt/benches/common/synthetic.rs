//! The synthetic table of the training bench, shared by `benches/train.rs` and
//! `examples/export_bench_data.rs` (each includes it with `#[path]`) so both see the same rows.
//!
//! Rows have 25 numeric and 5 categorical features whose log-odds mix linear terms, an
//! interaction, a step and category effects; 5% of numeric and 2% of categorical values are
//! missing.

use mirador_gbdt::{Column, Dataset, MISSING_CATEGORY, Params};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Numeric features (`num_0` ..).
pub(crate) const NUMERIC: usize = 25;
/// Category counts of the categorical features (`cat_0` ..).
pub(crate) const CATEGORY_COUNTS: [u32; 5] = [5, 20, 50, 100, 200];
/// Seed of the training rows.
pub(crate) const TRAIN_SEED: u64 = 1;
/// Seed of the held-out rows.
pub(crate) const HELD_OUT_SEED: u64 = 2;

/// The bench's training parameters: 100 trees of at most 63 leaves and depth 8, learning rate 0.1.
pub(crate) fn bench_params() -> Params {
    Params { n_trees: 100, learning_rate: 0.1, num_leaves: 63, max_depth: 8, early_stopping_rounds: None, ..Params::default() }
}

/// Held-out rows for a training size: a fifth of it, at least 1,000.
pub(crate) fn held_out_rows(rows: usize) -> usize {
    (rows / 5).max(1000)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
    let v: f64 = rng.r#gen();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

pub(crate) struct Synthetic {
    pub(crate) data: Dataset,
    pub(crate) labels: Vec<f64>,
    pub(crate) true_probability: Vec<f64>,
}

/// Rows whose log-odds mix linear terms, an interaction, a step and category effects.
pub(crate) fn generate(rows: usize, seed: u64) -> Synthetic {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    // Category effects are fixed across calls so train and held-out rows share them.
    let mut effect_rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let effects: Vec<Vec<f64>> = CATEGORY_COUNTS.iter().map(|&count| (0..count).map(|_| normal(&mut effect_rng) * 0.8).collect()).collect();
    let mut numeric: Vec<Vec<f64>> = (0..NUMERIC).map(|_| Vec::with_capacity(rows)).collect();
    let mut categorical: Vec<Vec<u32>> = CATEGORY_COUNTS.iter().map(|_| Vec::with_capacity(rows)).collect();
    let mut labels = Vec::with_capacity(rows);
    let mut true_probability = Vec::with_capacity(rows);
    let mut x = [0.0; NUMERIC];
    let mut codes = [0u32; CATEGORY_COUNTS.len()];
    for _ in 0..rows {
        for value in &mut x {
            *value = normal(&mut rng);
        }
        for (code, &count) in codes.iter_mut().zip(&CATEGORY_COUNTS) {
            // Skewed category frequencies, as for countries or customs offices.
            *code = (rng.r#gen::<f64>().powi(2) * f64::from(count)) as u32;
        }
        let mut margin = -2.2 + 0.8 * x[0] - 0.6 * x[1] + 0.5 * x[2] + 0.4 * x[3] - 0.3 * x[4];
        margin += 0.7 * x[5] * x[6] + if x[7] > 0.5 { 0.9 } else { 0.0 } + 0.3 * x[8].abs();
        margin += effects.iter().zip(&codes).map(|(effect, &code)| effect[code as usize]).sum::<f64>();
        let probability = 1.0 / (1.0 + (-margin).exp());
        labels.push(if rng.r#gen::<f64>() < probability { 1.0 } else { 0.0 });
        true_probability.push(probability);
        for (column, &value) in numeric.iter_mut().zip(&x) {
            // Five percent of each numeric feature is missing.
            column.push(if rng.r#gen::<f64>() < 0.05 { f64::NAN } else { value });
        }
        for (column, &code) in categorical.iter_mut().zip(&codes) {
            column.push(if rng.r#gen::<f64>() < 0.02 { MISSING_CATEGORY } else { code });
        }
    }
    let names = (0..NUMERIC).map(|i| format!("num_{i}")).chain((0..CATEGORY_COUNTS.len()).map(|i| format!("cat_{i}"))).collect();
    let columns = numeric.into_iter().map(Column::Numeric).chain(categorical.into_iter().map(Column::Categorical)).collect();
    Synthetic { data: Dataset::new(names, columns).expect("generated columns have equal lengths"), labels, true_probability }
}

/// The first `rows` rows of a dataset.
#[allow(dead_code, reason = "not every file that includes this module cuts rows")]
pub(crate) fn first_rows(data: &Dataset, rows: usize) -> Dataset {
    let columns = data
        .columns
        .iter()
        .map(|column| match column {
            Column::Numeric(values) => Column::Numeric(values[..rows].to_vec()),
            Column::Categorical(codes) => Column::Categorical(codes[..rows].to_vec()),
        })
        .collect();
    Dataset::new(data.names.clone(), columns).expect("columns are cut to equal lengths")
}
