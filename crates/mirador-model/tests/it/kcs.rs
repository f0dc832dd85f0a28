//! KCS split: train = 2020, validation = 2021-01..03, test = 2021-04..06, as the dataset's
//! authors split it. Reference points measured with the Python stack on the same split and raw
//! columns: XGBoost (defaults) AUC 0.813, precision@5% 0.837, precision@10% 0.717, revenue@5%
//! 0.270; LightGBM (defaults) AUC 0.781, precision@5% 0.783, revenue@5% 0.451. The bar: AUC ≥
//! 0.82, precision@5% ≥ 0.85, precision@10% ≥ 0.73, revenue@5% ≥ 0.45, ranking by probability.
//!
//! The configuration is chosen on the validation months only: without the entity-history
//! features the validation AUC is 0.926 against 0.895 with them, so this split runs without them
//! (the test below checks that choice on validation before looking at the test months).
//!
//! Reached (seed 42): AUC 0.921, precision@5% 0.984, precision@10% 0.958 — above the bar — but
//! revenue@5% only 0.135: half the test months' fraudulent duty sits on 13 declarations, mostly
//! of ginger (HS 091011) at a 377.3 % tariff, a kind that was fraudulent in about half of the
//! training cases, so the model ranks them below the top 5 %. The 90 % bootstrap intervals over
//! the test declarations: AUC 0.915–0.928, precision@5% 0.972–0.991, revenue@5% 0.043–0.236.
//! The assertions pin what is reached, with a margin, so it cannot silently regress. The revenue
//! bar is met by the inspection list ([`mirador_model::select`]), not by a ranking: its figures,
//! and how its policy was chosen on the validation months, are in docs/evaluation.md.

use std::collections::BTreeMap;
use std::path::Path;

use mirador_ingest::{IngestParams, ingest_sources};
use mirador_model::{ModelParams, train};
use mirador_pipeline::PipelineFile;

#[test]
fn kcs_test_months_beat_the_python_reference_points() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/kcs.toml");
    let file = PipelineFile::load(&path).unwrap();
    let first = file.base_dir.join(&file.sources["declarations"].paths[0]);
    if !first.exists() {
        eprintln!("skipping: {} is not present", first.display());
        return;
    }
    let params = IngestParams { hs_lengths: vec![6], min_date: "2020-01-01".into(), max_date: "2021-06-30".into(), ..Default::default() };
    let ingested = ingest_sources(&file.sources, &file.base_dir, &params).unwrap();
    let with_history = ModelParams { train_end: Some("2020-12-31".into()), valid_end: Some("2021-03-31".into()), ..ModelParams::default() };
    let without_history = ModelParams { history_features: false, ..with_history.clone() };
    let valid_auc = |t: &mirador_model::Trained| t.model.evaluation.iter().find(|e| e.split == "valid").unwrap().auc.unwrap();
    let a = train(&ingested.declarations, &BTreeMap::new(), &with_history, 42).unwrap();
    let t = train(&ingested.declarations, &BTreeMap::new(), &without_history, 42).unwrap();
    // The choice, made on the validation months only.
    assert!(valid_auc(&t) > valid_auc(&a), "validation AUC without history {:.4}, with {:.4}", valid_auc(&t), valid_auc(&a));
    let test = t.model.evaluation.iter().find(|e| e.split == "test").unwrap();
    assert_eq!(test.rows, 8_481, "the whole test file is evaluated");
    let auc = test.auc.unwrap();
    let p5 = test.at(5.0).unwrap().precision;
    let p10 = test.at(10.0).unwrap().precision;
    let r5 = test.at(5.0).unwrap().revenue;
    let by_duty = test.by_expected_duty.iter().find(|t| t.n_pct == 5.0).unwrap().revenue;
    eprintln!(
        "KCS test: AUC {auc:.4}, precision@5% {p5:.4}, precision@10% {p10:.4}, revenue@5% {r5:.4} (expected-duty ranking: {by_duty:.4})"
    );
    assert!(auc >= 0.90, "AUC {auc:.4}");
    assert!(p5 >= 0.96, "precision@5% {p5:.4}");
    assert!(p10 >= 0.93, "precision@10% {p10:.4}");
    assert!(r5 >= 0.10, "revenue@5% {r5:.4}");
    assert!(by_duty >= 0.95, "revenue@5% of the expected-duty ranking {by_duty:.4}");
    // How far the figures could move on another sample: AUC and precision clear the bar over the
    // whole interval; revenue@5% is decided by a dozen declarations and spreads widely.
    let spread = |n: f64| *test.spread_by_probability.iter().find(|s| (s.n_pct - n).abs() < 1e-9).unwrap();
    let (auc_interval, s5, s10) = (test.auc_interval.unwrap(), spread(5.0), spread(10.0));
    eprintln!("90 % intervals: AUC {auc_interval:?}, at 5 %: {s5:?}");
    assert!(auc_interval.contains(auc) && s5.precision.contains(p5) && s10.precision.contains(p10) && s5.revenue.contains(r5));
    assert!(auc_interval.lo >= 0.82 && s5.precision.lo >= 0.85 && s10.precision.lo >= 0.73, "{auc_interval:?} {s5:?} {s10:?}");
    assert!(s5.revenue.hi - s5.revenue.lo > 0.1, "revenue@5% interval {:?}", s5.revenue);
    assert_eq!(test.frauds_holding_half_duty, 13, "half the test months' fraudulent duty, on the fewest declarations");

    // The inspection list (docs/evaluation.md): its policy chosen on the validation months, its
    // figures on the test months, with a margin so that they cannot silently regress.
    let selection = t.model.selection.as_ref().unwrap();
    assert!(selection.tuned && selection.floor_met, "{selection:?}");
    let (s5, s10) = (test.selection_at(5.0).unwrap(), test.selection_at(10.0).unwrap());
    eprintln!("KCS test, inspection list {:?}: at 5 % {s5:?}, at 10 % {s10:?}", selection.policy);
    assert!(s5.precision >= MIN_P5 && s5.revenue >= MIN_R5, "at 5 %: {s5:?}");
    assert!(s10.precision >= MIN_P10 && s10.revenue >= MIN_R10, "at 10 %: {s10:?}");
    // The same list from fraud_scores.selection_order: the list at n % is the test rows with
    // selection_order <= ceil(n % × test rows).
    // A column as f64, nulls read as `missing`.
    let floats = |df: &polars::prelude::DataFrame, name: &str, missing: f64| -> Vec<f64> {
        df.column(name)
            .unwrap()
            .cast(&polars::prelude::DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .map(|v| v.unwrap_or(missing))
            .collect()
    };
    let split: Vec<bool> = t.scores.column("split").unwrap().str().unwrap().iter().map(|s| s == Some("test")).collect();
    let (order, fraud) = (floats(&t.scores, "selection_order", f64::NAN), floats(&t.scores, "fraud", f64::NAN));
    let duty = floats(&ingested.declarations, "duty_usd", 0.0);
    let test_rows: Vec<usize> = (0..split.len()).filter(|&i| split[i]).collect();
    let total: f64 = test_rows.iter().filter(|&&i| fraud[i] == 1.0).map(|&i| duty[i].max(0.0)).sum();
    for a in &test.by_selection {
        let k = (a.n_pct / 100.0 * test_rows.len() as f64).ceil();
        let picked: Vec<usize> = test_rows.iter().copied().filter(|&i| order[i] <= k).collect();
        let hits = picked.iter().filter(|&&i| fraud[i] == 1.0).count() as f64;
        let found: f64 = picked.iter().filter(|&&i| fraud[i] == 1.0).map(|&i| duty[i].max(0.0)).sum();
        assert_eq!(picked.len() as f64, k);
        assert!((hits / k - a.precision).abs() < 1e-9 && (found / total - a.revenue).abs() < 1e-9, "{a:?}");
    }
}

// What the inspection list reaches on the KCS test months, less a margin.
// Reached (docs/evaluation.md): 0.913 / 0.651 at 5 %, 0.892 / 0.871 at 10 %.
const MIN_P5: f64 = 0.90;
const MIN_R5: f64 = 0.62;
const MIN_P10: f64 = 0.88;
const MIN_R10: f64 = 0.84;
