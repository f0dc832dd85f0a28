//! Evaluates the fraud model on the public KCS split and prints the held-out figures and timings.
//!
//! ```sh
//! cargo run --release -p mirador-model --example kcs_eval
//! ```
//! Parameters may be overridden as TOML in `MIRADOR_MODEL_PARAMS`, e.g.
//! `MIRADOR_MODEL_PARAMS='revenue-weight = 0.5'` or `MIRADOR_MODEL_PARAMS='challengers = false'`. The split runs without the entity-history
//! features, the choice made on the validation months (`tests/it/kcs.rs`).
//!
//! Besides the model's figures it prints the inspection list's ([`mirador_model::select`]): the
//! policy chosen on the validation months, the list's figures on both splits (recomputed from
//! `fraud_scores.selection_order` too), and, with `MIRADOR_SELECTION_GRID=1`, the frontier of
//! other policies on both splits, for the record of what was tried.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use mirador_ingest::{IngestParams, ingest_sources};
use mirador_model::{ModelParams, train};
use mirador_pipeline::PipelineFile;

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/kcs.toml");
    let file = PipelineFile::load(&path).expect("pipelines/kcs.toml");
    let params = IngestParams { hs_lengths: vec![6], min_date: "2020-01-01".into(), max_date: "2021-06-30".into(), ..Default::default() };
    let t0 = Instant::now();
    let ingested = ingest_sources(&file.sources, &file.base_dir, &params).expect("KCS files under ../shared/datasets");
    println!("ingest: {:.1} s", t0.elapsed().as_secs_f64());
    let mut table: toml::Table = toml::from_str(&std::env::var("MIRADOR_MODEL_PARAMS").unwrap_or_default()).expect("TOML");
    table.insert("train-end".into(), "2020-12-31".into());
    table.insert("valid-end".into(), "2021-03-31".into());
    // The challengers are printed too unless `challengers = false` is given.
    table.entry("challengers").or_insert(true.into());
    table.entry("history-features").or_insert(false.into());
    let model_params: ModelParams = toml::Value::Table(table).try_into().expect("model parameters");
    let t1 = Instant::now();
    let t = train(&ingested.declarations, &BTreeMap::new(), &model_params, 42).expect("training");
    println!("train + explain: {:.1} s, {} trees", t1.elapsed().as_secs_f64(), t.model.booster.n_trees());
    for e in &t.model.evaluation {
        let p = |n: f64| e.at(n).map_or(f64::NAN, |a| a.precision);
        let r = |n: f64| e.at(n).map_or(f64::NAN, |a| a.revenue);
        let by_duty = |n: f64| e.by_expected_duty.iter().find(|x| (x.n_pct - n).abs() < 1e-9);
        let d = by_duty(5.0).map_or(f64::NAN, |a| a.revenue);
        println!(
            "{:5}: AUC {:.4}  p@1 {:.3}  p@5 {:.3}  p@10 {:.3}  rev@5 {:.3}  rev@10 {:.3}  rev@5(expected duty) {:.3}",
            e.split,
            e.auc.unwrap_or(f64::NAN),
            p(1.0),
            p(5.0),
            p(10.0),
            r(5.0),
            r(10.0),
            d
        );
        println!(
            "       expected-duty ranking: p@5 {:.3}  p@10 {:.3}  rev@10 {:.3}",
            by_duty(5.0).map_or(f64::NAN, |a| a.precision),
            by_duty(10.0).map_or(f64::NAN, |a| a.precision),
            by_duty(10.0).map_or(f64::NAN, |a| a.revenue)
        );
        let spread = |n: f64| e.spread_by_probability.iter().find(|s| (s.n_pct - n).abs() < 1e-9);
        if let (Some(a), Some(s5), Some(s10)) = (e.auc_interval, spread(5.0), spread(10.0)) {
            println!(
                "       90 % intervals: AUC {:.3}–{:.3}  p@5 {:.3}–{:.3}  p@10 {:.3}–{:.3}  rev@5 {:.3}–{:.3}; half the fraud duty on {} declarations",
                a.lo,
                a.hi,
                s5.precision.lo,
                s5.precision.hi,
                s10.precision.lo,
                s10.precision.hi,
                s5.revenue.lo,
                s5.revenue.hi,
                e.frauds_holding_half_duty
            );
        }
    }
    // The challengers: the same features and split through a logistic regression and a random
    // forest (`challengers = false` in MIRADOR_MODEL_PARAMS leaves them out).
    for c in &t.model.challengers {
        let figures: Vec<String> = c
            .evaluations
            .iter()
            .map(|e| {
                let at = |n: f64| e.at(n).map_or((f64::NAN, f64::NAN), |a| (a.precision, a.revenue));
                let ((p5, r5), (p10, r10)) = (at(5.0), at(10.0));
                format!("{}: AUC {:.4}  p@5 {p5:.3}  rev@5 {r5:.3}  p@10 {p10:.3}  rev@10 {r10:.3}", e.split, e.auc.unwrap_or(f64::NAN))
            })
            .collect();
        println!("{:19} ({} training rows, {} columns, {:.1} s)  {}", c.name, c.train_rows, c.columns, c.seconds, figures.join("  |  "));
    }
    println!("{}", t.importance.head(Some(12)));
    selection(&t, &ingested.declarations);
    if let Ok(out) = std::env::var("MIRADOR_SCORES_OUT") {
        let mut scores = t.scores.clone();
        mirador_io::write_parquet(&mut scores, Path::new(&out)).expect("write scores");
    }
}

/// The inspection list's figures, from the evaluation and recomputed from `selection_order`.
fn selection(t: &mirador_model::Trained, declarations: &polars::prelude::DataFrame) {
    use mirador_model::select::{Candidates, Policy, budget_rows, grid, order_scores, select};
    use polars::prelude::*;
    let s = t.model.selection.as_ref().expect("a trained model has a selection policy");
    println!(
        "selection policy (validation months): revenue share {:.3}, exponent {}, exploration {:.3}; precision floor {:.3} met: {}",
        s.policy.revenue_share, s.policy.revenue_exponent, s.policy.exploration_share, s.precision_floor, s.floor_met
    );
    let scores = &t.scores;
    let text = |c: &str| {
        scores
            .column(c)
            .unwrap()
            .cast(&DataType::String)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    let num = |df: &DataFrame, c: &str| {
        df.column(c).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap_or(f64::NAN)).collect::<Vec<_>>()
    };
    let split = text("split");
    let fraud = num(scores, "fraud");
    let order = num(scores, "selection_order");
    let prob = num(scores, "fraud_probability");
    let duty = num(declarations, "duty_usd");
    for e in &t.model.evaluation {
        let idx: Vec<usize> = (0..split.len()).filter(|&i| split[i] == e.split).collect();
        let total: f64 = idx.iter().filter(|&&i| fraud[i] == 1.0).map(|&i| duty[i].max(0.0)).sum();
        for n in [1.0, 2.0, 5.0, 10.0, 20.0] {
            let k = budget_rows(n, idx.len()) as f64;
            let picked: Vec<usize> = idx.iter().copied().filter(|&i| order[i] <= k).collect();
            let hits = picked.iter().filter(|&&i| fraud[i] == 1.0).count() as f64;
            let found: f64 = picked.iter().filter(|&&i| fraud[i] == 1.0).map(|&i| duty[i].max(0.0)).sum();
            let a = e.selection_at(n).expect("selection figures");
            let spread = e.spread_by_selection.iter().find(|x| (x.n_pct - n).abs() < 1e-9);
            println!(
                "{:5} selection@{n:>2} %: precision {:.3}  recall {:.3}  revenue {:.3}  (from selection_order: {:.3} / {:.3}){}",
                e.split,
                a.precision,
                a.recall,
                a.revenue,
                hits / k.max(1.0),
                found / total.max(1e-9),
                spread.map_or(String::new(), |s| format!(
                    "  90 %: precision {:.3}–{:.3}, revenue {:.3}–{:.3}",
                    s.precision.lo, s.precision.hi, s.revenue.lo, s.revenue.hi
                ))
            );
        }
    }
    // The table of docs/evaluation.md: precision / recall / revenue of each ranking on the test
    // months.
    if let Some(e) = t.model.evaluation.iter().find(|e| e.split == "test") {
        println!("| n % | probability | expected duty | inspection list (90 % interval of precision; of revenue) |");
        println!("|---|---|---|---|");
        for (k, a) in e.by_selection.iter().enumerate() {
            let find = |v: &[mirador_metrics::TopShare]| v.iter().find(|x| (x.n_pct - a.n_pct).abs() < 1e-9).copied();
            let f = |x: Option<mirador_metrics::TopShare>| {
                x.map_or("—".to_owned(), |x| format!("{:.3} / {:.3} / {:.3}", x.precision, x.recall, x.revenue))
            };
            let spread = e.spread_by_selection.get(k).map_or(String::new(), |s| {
                format!(" ({:.3}–{:.3}; {:.3}–{:.3})", s.precision.lo, s.precision.hi, s.revenue.lo, s.revenue.hi)
            });
            println!("| {} | {} | {} | **{}**{spread} |", a.n_pct, f(find(&e.by_probability)), f(find(&e.by_expected_duty)), f(Some(*a)));
        }
    }
    if std::env::var("MIRADOR_SELECTION_GRID").is_err() {
        return;
    }
    // The frontier of other policies, on both splits (the choice is made on validation only).
    let exponents = [1.0, 1.5, 2.0, 2.5, 3.0];
    let policies: Vec<Policy> = [0.0, 0.1, 0.2, 0.3, 0.4]
        .iter()
        .flat_map(|&revenue_floor| grid(0.0, 0.3, 0.025, &exponents).into_iter().map(move |p| Policy { revenue_floor, ..p }))
        .collect();
    for name in ["valid", "test"] {
        let idx: Vec<usize> = (0..split.len()).filter(|&i| split[i] == name).collect();
        let p: Vec<f64> = idx.iter().map(|&i| prob[i]).collect();
        let d: Vec<f64> = idx.iter().map(|&i| duty[i]).collect();
        let y: Vec<bool> = idx.iter().map(|&i| fraud[i] == 1.0).collect();
        let v = vec![0.0; p.len()];
        for policy in &policies {
            let o = order_scores(&select(&Candidates { probability: &p, duty: &d, novelty: &v }, policy, 42), p.len());
            let at = |n: f64| mirador_metrics::top_share(&o, &y, &d, n).unwrap();
            let (a5, a10) = (at(5.0), at(10.0));
            println!(
                "grid {name:5} share {:.3} exponent {:.1} floor {:.1}: @5 % {:.3}/{:.3}  @10 % {:.3}/{:.3}",
                policy.revenue_share, policy.revenue_exponent, policy.revenue_floor, a5.precision, a5.revenue, a10.precision, a10.revenue
            );
        }
    }
}
