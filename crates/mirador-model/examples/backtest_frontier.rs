//! The exploration bar of the backtest measured on several shifting synthetic worlds: for each
//! size and seed, the share of the last quarter's fraudulent duty each policy found (and over the
//! whole replay), with the settings of `tests/it/backtest.rs` (5 % a week from 2023-04 to 2023-12,
//! retrained every 4 weeks, 200 trees).
//!
//! ```sh
//! cargo run --release -p mirador-model --example backtest_frontier -- \
//!     --sizes 24000,60000 --seeds 31,32,33,41,42,43 [--feed off] [--shift-share 0.7] \
//!     [--policies probability,mixed,mixed_exploration] [--exploration 0.1]
//! ```
//! Prints one markdown row per world and policy, then the sums per size (duty found over all the
//! worlds' last quarters, against all their fraudulent duty).

use std::collections::HashMap;

use mirador_model::ModelParams;
use mirador_model::backtest::{self, BacktestParams, ReplayData, TruthSources};
use mirador_synth::{ShiftParams, SynthParams, generate, inspection_outcomes};

fn list<T: std::str::FromStr>(text: &str) -> Vec<T> {
    text.split(',').map(|s| s.trim().parse().ok().unwrap_or_else(|| panic!("not a list: {text}"))).collect()
}

fn main() {
    let mut opts: HashMap<String, String> = HashMap::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let key = pair[0].trim_start_matches("--").to_owned();
        opts.insert(key, pair.get(1).cloned().unwrap_or_default());
    }
    let get = |k: &str, d: &str| opts.get(k).cloned().unwrap_or_else(|| d.to_owned());
    let sizes: Vec<usize> = list(&get("sizes", "24000,60000"));
    let seeds: Vec<u64> = list(&get("seeds", "31,32,33"));
    let names: Vec<String> = list(&get("policies", "probability,mixed,mixed_exploration"));
    let feed = get("feed", "on") == "on";
    let share: f64 = get("shift-share", "0.7").parse().expect("--shift-share");
    let exploration: f64 = get("exploration", "0.1").parse().expect("--exploration");
    let policies: Vec<_> = backtest::standard_policies(exploration).into_iter().filter(|p| names.contains(&p.name)).collect();
    println!("feed {}, shift share {share}, exploration {exploration}", if feed { "on" } else { "off" });
    println!("| declarations | seed | policy | last quarter: duty found | last quarter: precision | whole: duty found |");
    println!("|---:|---:|---|---:|---:|---:|");
    for &size in &sizes {
        let mut sums: Vec<(f64, f64)> = vec![(0.0, 0.0); policies.len()];
        for &seed in &seeds {
            let started = std::time::Instant::now();
            let shift = Some(ShiftParams { period: "2023-05".into(), share });
            let w = generate(&SynthParams { declarations: size, shift, ..SynthParams::small(seed) }).expect("world");
            let truth = w.truth.lost_duty_by_item().unwrap();
            let outcomes = feed.then(|| inspection_outcomes(&w.declarations, &w.truth.declarations, seed).expect("outcomes"));
            let day = |t: &str| mirador_schema::day::parse(t).unwrap();
            let p = BacktestParams {
                from: day("2023-04-01"),
                to: day("2024-01-01"),
                budget_pct: 5.0,
                retrain_weeks: 4,
                seed,
                model: ModelParams { n_trees: 200, min_data_in_leaf: 20, ..ModelParams::default() },
            };
            let sources = TruthSources { ground_truth: Some(&truth), outcomes: outcomes.as_ref() };
            let data = ReplayData::build(&w.declarations, &sources, p.from).expect("replay data");
            let b = backtest::replay(&data, &p, &policies).expect("replay");
            let n = b.weeks.iter().map(|r| r.week).max().unwrap();
            let q = backtest::last_quarter_from(n);
            for (k, policy) in policies.iter().enumerate() {
                let (s, f, found, total) = b.totals(&policy.name, q);
                let (_, _, whole, whole_total) = b.totals(&policy.name, 1);
                sums[k].0 += found;
                sums[k].1 += total;
                println!(
                    "| {size} | {seed} | {} | {:.3} | {:.3} | {:.3} |",
                    policy.name,
                    found / total,
                    f as f64 / s as f64,
                    whole / whole_total
                );
            }
            eprintln!("size {size} seed {seed}: {:.0} s", started.elapsed().as_secs_f64());
        }
        for (k, policy) in policies.iter().enumerate() {
            println!("| {size} | all | {} | {:.3} | | |", policy.name, sums[k].0 / sums[k].1);
        }
    }
}
