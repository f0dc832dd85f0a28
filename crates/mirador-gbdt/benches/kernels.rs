//! GBDT kernel micro-benchmarks on 100,000 rows × 30 features (25 numeric with 5 % missing,
//! 5 categorical with 5 to 200 levels) with a known logistic signal.
//!
//! - `train_stump`: binning plus a single root-node histogram and split (one tree, two leaves).
//! - `train_trees`: growing 1 and 10 trees of 31 leaves (depth 8); the difference per tree is
//!   the cost of one tree's histograms, split search and row partitioning, without binning.
//! - `predict_proba`: scoring 100,000 rows with a 100-tree model.
//! - `walk_blocks`: the same rows, binned once, walking every tree on one thread.
//! - `contributions`: exact TreeSHAP for 1,000 rows with the same model.
//!
//! Throughput is in rows per second. Training a model on customs-sized tables end to end is
//! `benches/train.rs`.
//!
//! ```text
//! cargo bench --workspace --bench kernels
//! ```

use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use mirador_gbdt::{Booster, Dataset, Params};

#[path = "common/synthetic.rs"]
#[allow(dead_code, reason = "the kernels use the generator, not the training bench's parameters")]
mod synthetic;

const ROWS: usize = 100_000;
/// Rows explained with TreeSHAP.
const EXPLAINED_ROWS: usize = 1_000;

fn main() {
    divan::main();
}

/// The training bench's rows (`common/synthetic.rs`), as a dataset and labels.
fn generate(rows: usize, seed: u64) -> (Dataset, Vec<f64>) {
    let synthetic = synthetic::generate(rows, seed);
    (synthetic.data, synthetic.labels)
}

/// The training table, generated once.
static TRAIN: LazyLock<(Dataset, Vec<f64>)> = LazyLock::new(|| generate(ROWS, 1));

/// A 100-tree model (31 leaves, depth 8) trained on the training table, and rows to score.
static MODEL: LazyLock<(Booster, Dataset)> = LazyLock::new(|| {
    let (data, labels) = &*TRAIN;
    let params = Params { n_trees: 100, learning_rate: 0.1, early_stopping_rounds: None, ..Params::default() };
    let model = Booster::train(data, labels, None, None, &params).expect("training succeeds");
    assert_eq!(model.n_trees(), 100);
    (model, generate(ROWS, 2).0)
});

/// Tree-growing parameters without early stopping.
fn tree_params(n_trees: usize, num_leaves: usize) -> Params {
    Params { n_trees, num_leaves, learning_rate: 0.1, early_stopping_rounds: None, ..Params::default() }
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn train_stump(bencher: Bencher<'_, '_>) {
    let (data, labels) = &*TRAIN;
    let params = tree_params(1, 2);
    bencher.counter(ItemsCount::new(data.n_rows())).bench(|| Booster::train(data, labels, None, None, &params).expect("training succeeds"));
}

#[divan::bench(args = [1, 10], sample_count = 10, sample_size = 1)]
fn train_trees(bencher: Bencher<'_, '_>, n_trees: usize) {
    let (data, labels) = &*TRAIN;
    let params = tree_params(n_trees, 31);
    bencher.counter(ItemsCount::new(data.n_rows())).bench(|| {
        let model = Booster::train(data, labels, None, None, &params).expect("training succeeds");
        assert_eq!(model.n_trees(), n_trees);
        model
    });
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn predict_proba(bencher: Bencher<'_, '_>) {
    let (model, rows) = &*MODEL;
    bencher.counter(ItemsCount::new(rows.n_rows())).bench(|| model.predict_proba(rows).expect("rows match the model"));
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn contributions(bencher: Bencher<'_, '_>) {
    let (model, rows) = &*MODEL;
    let explained = synthetic::first_rows(rows, EXPLAINED_ROWS);
    bencher.counter(ItemsCount::new(EXPLAINED_ROWS)).bench(|| model.contributions(&explained).expect("rows match the model"));
}

/// One thread walking blocks of 256 binned rows down every tree of the 100-tree model: the
/// kernel under prediction and path attribution, without binning.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn walk_blocks(bencher: Bencher<'_, '_>) {
    let (model, rows) = &*MODEL;
    let forest = mirador_gbdt::Forest::new(model);
    let blocks: Vec<mirador_gbdt::Block> = (0..rows.n_rows() / 256)
        .map(|b| {
            let mut block = mirador_gbdt::Block::default();
            forest.bin(rows, b * 256, 256, &mut block);
            block
        })
        .collect();
    let mut out = vec![0u32; 256];
    bencher.counter(ItemsCount::new(blocks.len() * 256)).bench_local(|| {
        let mut sum = 0u64;
        for block in &blocks {
            for tree in 0..model.n_trees() {
                forest.leaves(tree, block, &mut out);
                sum += u64::from(out[0]);
            }
        }
        sum
    });
}
