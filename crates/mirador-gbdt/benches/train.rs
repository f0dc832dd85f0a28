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

use mirador_gbdt::{Booster, auc};

#[path = "common/synthetic.rs"]
mod synthetic;

use synthetic::{HELD_OUT_SEED, TRAIN_SEED, bench_params, generate, held_out_rows};

fn main() {
    divan::main();
}

fn bench_rows() -> usize {
    std::env::var("MIRADOR_BENCH_ROWS").ok().and_then(|rows| rows.replace('_', "").parse().ok()).unwrap_or(1_000_000)
}

/// Rows explained with TreeSHAP after training, to report its speed.
const EXPLAINED_ROWS: usize = 10_000;

#[divan::bench(sample_count = 1, sample_size = 1)]
fn train_100_trees(bencher: divan::Bencher<'_, '_>) {
    let rows = bench_rows();
    let held_out_rows = held_out_rows(rows);
    let started = Instant::now();
    let train = generate(rows, TRAIN_SEED);
    let held_out = generate(held_out_rows, HELD_OUT_SEED);
    eprintln!("generated {rows} + {held_out_rows} rows in {:.2} s", started.elapsed().as_secs_f64());
    let params = bench_params();
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
    let explained = synthetic::first_rows(&held_out.data, EXPLAINED_ROWS.min(held_out_rows));
    let started = Instant::now();
    let contributions = model.contributions(&explained).expect("held-out data matches");
    eprintln!("explained {} rows with TreeSHAP in {:.2} s", contributions.len(), started.elapsed().as_secs_f64());
}
