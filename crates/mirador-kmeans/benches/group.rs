//! k-means micro-benchmarks: one peer group, and a whole declarations frame.
//!
//! - `fit_group`: choosing `k` and fitting one group of log unit prices with the stage's default
//!   parameters (groups above `max-fit-rows` = 2,000 are fitted on a seeded sample of that size).
//! - `fit_group_unsampled`: the same fit on every row of the group (`max-fit-rows` lifted), the
//!   cost of the k-means and silhouette kernels themselves.
//! - `score_group`: scoring every price of a fitted group against its peer cluster.
//! - `score_declarations`: the whole stage kernel (grouping, fitting every group in parallel,
//!   scoring, both per-kg and per-unit) on 200,000 synthetic declarations.
//!
//! Groups are two price tiers plus a tail of undervalued prices. Throughput is in prices (rows)
//! per second.
//!
//! ```text
//! cargo bench --workspace --bench group
//! ```

use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use mirador_kmeans::cluster::{ClusterParams, fit_kmeans};
use mirador_kmeans::{KMeansParams, score_declarations};
use mirador_synth::{SynthParams, generate};
use polars::prelude::DataFrame;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Peer-group sizes benchmarked.
const GROUP_SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// Declarations in the frame scored by `score_declarations`.
const FRAME_ROWS: usize = 200_000;

fn main() {
    divan::main();
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
    let v: f64 = rng.r#gen();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Log unit prices of one group: a mainstream tier (70 %), a premium tier (25 %) and
/// undervalued declarations (5 %) well below the mainstream.
fn log_prices(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let tier: f64 = rng.r#gen();
            let (centre, spread) = if tier < 0.70 {
                (2.0, 0.25)
            } else if tier < 0.95 {
                (3.5, 0.3)
            } else {
                (0.8, 0.4)
            };
            centre + spread * normal(&mut rng)
        })
        .collect()
}

#[divan::bench(args = GROUP_SIZES, sample_count = 20, sample_size = 1)]
fn fit_group(bencher: Bencher<'_, '_>, n: usize) {
    let xs = log_prices(n, n as u64);
    let params = ClusterParams::default();
    bencher.counter(ItemsCount::new(n)).bench(|| fit_kmeans(&xs, &params, 7));
}

/// Groups of up to 2,000 rows are never sampled: `fit_group` already times them unsampled.
#[divan::bench(args = [10_000, 100_000], sample_count = 10, sample_size = 1)]
fn fit_group_unsampled(bencher: Bencher<'_, '_>, n: usize) {
    let xs = log_prices(n, n as u64);
    let params = ClusterParams { max_fit_rows: usize::MAX, ..ClusterParams::default() };
    bencher.counter(ItemsCount::new(n)).bench(|| fit_kmeans(&xs, &params, 7));
}

#[divan::bench(args = GROUP_SIZES, sample_count = 20, sample_size = 1)]
fn score_group(bencher: Bencher<'_, '_>, n: usize) {
    let xs = log_prices(n, n as u64);
    let params = ClusterParams::default();
    let fit = fit_kmeans(&xs, &params, 7);
    bencher.counter(ItemsCount::new(n)).bench(|| xs.iter().map(|&x| fit.score(x, &params).score).sum::<f64>());
}

/// 200,000 synthetic declarations, generated once.
static DECLARATIONS: LazyLock<DataFrame> = LazyLock::new(|| {
    let params = SynthParams { seed: 3, declarations: FRAME_ROWS, dirty_rows: false, ..SynthParams::default() };
    generate(&params).expect("the synthetic world generates").declarations
});

#[divan::bench(sample_count = 10, sample_size = 1)]
fn score_declarations_frame(bencher: Bencher<'_, '_>) {
    let declarations = &*DECLARATIONS;
    let params = KMeansParams::default();
    bencher
        .counter(ItemsCount::new(declarations.height()))
        .bench(|| score_declarations(declarations, &params, 42).expect("declarations score"));
}
