//! Training speed on a customs-sized table.
//!
//! Trains 100 trees (63 leaves, depth 8, learning rate 0.1) on `MIRADOR_BENCH_ROWS` rows (default
//! 1,000,000) of 25 numeric and 5 categorical features with a known logistic signal. Divan times the
//! training; afterwards the bench prints the wall time, the AUC on held-out rows (a fifth of the
//! training size) next to the AUC of the true probabilities, and the time TreeSHAP takes to
//! explain 10,000 rows.
//!
//! ```text
//! MIRADOR_BENCH_ROWS=200000 cargo bench -p mirador-gbdt --bench train
//! ```

use std::time::Instant;

use mirador_gbdt::{Booster, Column, Dataset, MISSING_CATEGORY, Params, auc};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

const NUMERIC: usize = 25;
const CATEGORY_COUNTS: [u32; 5] = [5, 20, 50, 100, 200];

fn main() {
    divan::main();
}

fn bench_rows() -> usize {
    std::env::var("MIRADOR_BENCH_ROWS").ok().and_then(|rows| rows.replace('_', "").parse().ok()).unwrap_or(1_000_000)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
    let v: f64 = rng.r#gen();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

struct Synthetic {
    data: Dataset,
    labels: Vec<f64>,
    true_probability: Vec<f64>,
}

/// Rows whose log-odds mix linear terms, an interaction, a step and category effects.
fn generate(rows: usize, seed: u64) -> Synthetic {
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

/// Rows explained with TreeSHAP after training, to report its speed.
const EXPLAINED_ROWS: usize = 10_000;

#[divan::bench(sample_count = 1, sample_size = 1)]
fn train_100_trees(bencher: divan::Bencher<'_, '_>) {
    let rows = bench_rows();
    let held_out_rows = (rows / 5).max(1000);
    let started = Instant::now();
    let train = generate(rows, 1);
    let held_out = generate(held_out_rows, 2);
    eprintln!("generated {rows} + {held_out_rows} rows in {:.2} s", started.elapsed().as_secs_f64());
    let params =
        Params { n_trees: 100, learning_rate: 0.1, num_leaves: 63, max_depth: 8, early_stopping_rounds: None, ..Params::default() };
    let mut trained = None;
    bencher.bench_local(|| {
        let started = Instant::now();
        let model = Booster::train(&train.data, &train.labels, None, None, &params).expect("training succeeds");
        trained = Some((model, started.elapsed().as_secs_f64()));
    });
    let Some((model, seconds)) = trained else {
        return;
    };
    eprintln!(
        "trained {} trees on {rows} rows x {} features in {seconds:.2} s ({} threads)",
        model.n_trees(),
        train.data.n_features(),
        rayon::current_num_threads(),
    );
    let started = Instant::now();
    let scores = model.predict_proba(&held_out.data).expect("held-out data matches");
    eprintln!(
        "scored {held_out_rows} held-out rows in {:.2} s: AUC {:.4} (true probabilities {:.4})",
        started.elapsed().as_secs_f64(),
        auc(&scores, &held_out.labels),
        auc(&held_out.true_probability, &held_out.labels),
    );
    let explained = take_rows(&held_out.data, EXPLAINED_ROWS.min(held_out_rows));
    let started = Instant::now();
    let contributions = model.contributions(&explained).expect("held-out data matches");
    eprintln!("explained {} rows with TreeSHAP in {:.2} s", contributions.len(), started.elapsed().as_secs_f64(),);
}

/// The first `rows` rows of a dataset.
fn take_rows(data: &Dataset, rows: usize) -> Dataset {
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
