//! Evaluates the fraud model on the public KCS split and prints the held-out figures and timings.
//!
//! ```sh
//! cargo run --release -p mirador-model --example kcs_eval
//! ```
//! Parameters may be overridden as TOML in `MIRADOR_MODEL_PARAMS`, e.g.
//! `MIRADOR_MODEL_PARAMS='revenue-weight = 0.5'` or `MIRADOR_MODEL_PARAMS='challengers = false'`.

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
    if let Ok(out) = std::env::var("MIRADOR_SCORES_OUT") {
        let mut scores = t.scores.clone();
        mirador_io::write_parquet(&mut scores, Path::new(&out)).expect("write scores");
    }
}
