//! The auditee list on hand-made signals.

use mirador_rank::pseudonym::Pseudonymiser;
use mirador_rank::{RankParams, rank, shareable};
use polars::prelude::*;

fn declarations() -> DataFrame {
    df!(
        "declaration_id" => ["D1", "D2", "D3", "D4", "D5"],
        "item_no" => [1i32, 1, 1, 1, 2],
        "importer_id" => ["A", "A", "B", "C", "C"],
        "hs6" => ["851712", "851712", "610910", "090111", "090111"],
        "origin_country" => ["CN", "CN", "TR", "UG", "UG"],
        "office_id" => ["MSA", "MSA", "NBO", "NBO", "NBO"],
        "period" => ["2023-01", "2023-02", "2023-01", "2023-03", "2023-03"],
        "value_usd" => [1000.0, 2000.0, 500.0, 300.0, 300.0],
        "duty_usd" => [100.0, 200.0, 175.0, 30.0, 30.0],
    )
    .unwrap()
}

fn fraud() -> DataFrame {
    df!(
        "declaration_id" => ["D1", "D2", "D3", "D4", "D5"],
        "item_no" => [1i32, 1, 1, 1, 2],
        "fraud_probability" => [0.9, 0.8, 0.1, 0.5, 0.4],
        "expected_duty_at_risk_usd" => [90.0, 160.0, 17.5, 15.0, 12.0],
        "fraud_flag" => [true, true, false, true, false],
        "top_features" => ["seller_past_fraud_rate;hs6", "seller_past_fraud_rate", "", "origin", "origin"],
    )
    .unwrap()
}

fn kmeans() -> DataFrame {
    df!(
        "declaration_id" => ["D1", "D2", "D3", "D4", "D5"],
        "item_no" => [1i32, 1, 1, 1, 2],
        "undervaluation_flag" => [true, false, false, false, false],
        "price_ratio" => [0.25, 1.0, 1.1, 0.9, 1.0],
        "undervalued_duty_usd" => [300.0, 0.0, 0.0, 0.0, 0.0],
    )
    .unwrap()
}

#[test]
fn importers_rank_by_revenue_at_risk_with_reasons() {
    let a = rank(&declarations(), Some(&fraud()), Some(&kmeans()), None, &RankParams::default()).unwrap();
    let ids: Vec<&str> = a.column("importer_id").unwrap().str().unwrap().iter().flatten().collect();
    assert_eq!(ids, ["A", "C", "B"]);
    let risk = a.column("revenue_at_risk_usd").unwrap().f64().unwrap().get(0).unwrap();
    assert!((risk - 250.0).abs() < 1e-9);
    let reason = a.column("reason").unwrap().str().unwrap().get(0).unwrap().to_owned();
    assert!(reason.contains("1 of 2 declarations priced at a median 25 % of their peers (mostly HS 8517)"), "{reason}");
    assert!(reason.contains("model top reason: seller past fraud rate"), "{reason}");
    assert_eq!(a.column("flagged_by_model").unwrap().u32().unwrap().get(0), Some(2));
    // Undated declarations leave the first and last days empty.
    assert_eq!(a.column("first_declared").unwrap().null_count(), a.height());
    let mut dated = declarations();
    dated.with_column(Column::new("date".into(), [19_000i32, 19_040, 19_010, 19_020, 19_020]).cast(&DataType::Date).unwrap()).unwrap();
    let a = rank(&dated, Some(&fraud()), Some(&kmeans()), None, &RankParams::default()).unwrap();
    let day = |name: &str| a.column(name).unwrap().cast(&DataType::Int32).unwrap().i32().unwrap().get(0);
    assert_eq!((day("first_declared"), day("last_declared")), (Some(19_000), Some(19_040)), "importer A declared on two days");
}

#[test]
fn without_a_model_kmeans_shortfall_ranks() {
    let a = rank(&declarations(), None, Some(&kmeans()), None, &RankParams::default()).unwrap();
    assert_eq!(a.column("importer_id").unwrap().str().unwrap().get(0), Some("A"));
    assert_eq!(a.column("revenue_at_risk_usd").unwrap().f64().unwrap().get(0), Some(300.0));
}

#[test]
fn filters_and_top_n() {
    let p = RankParams { offices: vec!["NBO".into()], top: Some(1), ..Default::default() };
    let a = rank(&declarations(), Some(&fraud()), None, None, &p).unwrap();
    assert_eq!(a.height(), 1);
    assert_eq!(a.column("importer_id").unwrap().str().unwrap().get(0), Some("C"));
    let p = RankParams { hs_chapters: vec!["61".into()], ..Default::default() };
    let a = rank(&declarations(), Some(&fraud()), None, None, &p).unwrap();
    assert_eq!(a.column("importer_id").unwrap().str().unwrap().get(0), Some("B"));
}

#[test]
fn shareable_list_carries_no_real_ids() {
    let a = rank(&declarations(), Some(&fraud()), None, None, &RankParams::default()).unwrap();
    let key = Pseudonymiser::new("test key, sixteen bytes at least").unwrap();
    let s = shareable(&a, &key).unwrap();
    let ids: Vec<&str> = s.column("importer_id").unwrap().str().unwrap().iter().flatten().collect();
    assert!(ids.iter().all(|i| i.starts_with("P-") && !["A", "B", "C"].contains(i)));
    assert_eq!(s.height(), a.height());
}
