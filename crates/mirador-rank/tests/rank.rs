//! The auditee list on hand-made signals.

use mirador_rank::pseudonym::Pseudonymiser;
use mirador_rank::{RankParams, rank, shareable};
use mirador_schema::catalog::auditees;
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

/// The audit score without shrinkage or mirror weight: expected recoverable duty × mean
/// probability.
fn plain() -> RankParams {
    RankParams { concentration: 1.0, shrinkage: 0.0, mirror_weight: 0.0, ..RankParams::default() }
}

#[test]
fn importers_rank_by_revenue_at_risk_with_reasons() {
    let a = rank(&declarations(), Some(&fraud()), Some(&kmeans()), None, &plain()).unwrap();
    let ids: Vec<&str> = a.column(auditees::IMPORTER_ID).unwrap().str().unwrap().iter().flatten().collect();
    assert_eq!(ids, ["A", "C", "B"]);
    // Expected recoverable duty: expected duty at risk 90 + 160, plus probability 0.9 × the
    // k-means shortfall 300 of D1; the score weighs it by the mean probability 0.85.
    let first = |name: &str| a.column(name).unwrap().f64().unwrap().get(0).unwrap();
    assert!((first("revenue_at_risk_usd") - 520.0).abs() < 1e-9);
    assert!((first("expected_recoverable_duty_usd") - 520.0).abs() < 1e-9);
    assert!((first("evidence_concentration") - 0.85).abs() < 1e-12);
    assert!((first("audit_score") - 0.85 * 520.0).abs() < 1e-9);
    let reason = a.column(auditees::REASON).unwrap().str().unwrap().get(0).unwrap().to_owned();
    assert!(reason.contains("1 of 2 declarations priced at a median 25 % of their peers (mostly HS 8517)"), "{reason}");
    assert!(reason.contains("model top reason: seller past fraud rate"), "{reason}");
    assert!(reason.starts_with("Expected recoverable duty USD 520 over 2 declarations (mean fraud probability 0.85)"), "{reason}");
    assert_eq!(a.column(auditees::FLAGGED_BY_MODEL).unwrap().u32().unwrap().get(0), Some(2));
    // Undated declarations leave the first and last days empty.
    assert_eq!(a.column(auditees::FIRST_DECLARED).unwrap().null_count(), a.height());
    let mut dated = declarations();
    dated.with_column(Column::new("date".into(), [19_000i32, 19_040, 19_010, 19_020, 19_020]).cast(&DataType::Date).unwrap()).unwrap();
    let a = rank(&dated, Some(&fraud()), Some(&kmeans()), None, &plain()).unwrap();
    let day = |name: &str| a.column(name).unwrap().cast(&DataType::Int32).unwrap().i32().unwrap().get(0);
    assert_eq!((day("first_declared"), day("last_declared")), (Some(19_000), Some(19_040)), "importer A declared on two days");
}

#[test]
fn without_a_model_kmeans_shortfall_ranks() {
    let a = rank(&declarations(), None, Some(&kmeans()), None, &RankParams::default()).unwrap();
    assert_eq!(a.column(auditees::IMPORTER_ID).unwrap().str().unwrap().get(0), Some("A"));
    assert_eq!(a.column(auditees::REVENUE_AT_RISK_USD).unwrap().f64().unwrap().get(0), Some(300.0));
}

#[test]
fn filters_and_top_n() {
    let p = RankParams { offices: vec!["NBO".into()], top: Some(1), ..Default::default() };
    let a = rank(&declarations(), Some(&fraud()), None, None, &p).unwrap();
    assert_eq!(a.height(), 1);
    assert_eq!(a.column(auditees::IMPORTER_ID).unwrap().str().unwrap().get(0), Some("C"));
    let p = RankParams { hs_chapters: vec!["61".into()], ..Default::default() };
    let a = rank(&declarations(), Some(&fraud()), None, None, &p).unwrap();
    assert_eq!(a.column(auditees::IMPORTER_ID).unwrap().str().unwrap().get(0), Some("B"));
}

#[test]
fn shareable_list_carries_no_real_ids() {
    let a = rank(&declarations(), Some(&fraud()), None, None, &RankParams::default()).unwrap();
    let key = Pseudonymiser::new("test key, sixteen bytes at least").unwrap();
    let s = shareable(&a, &key).unwrap();
    let ids: Vec<&str> = s.column(auditees::IMPORTER_ID).unwrap().str().unwrap().iter().flatten().collect();
    assert!(ids.iter().all(|i| i.starts_with("P-") && !["A", "B", "C"].contains(i)));
    assert_eq!(s.height(), a.height());
}

/// Importer X: ten declarations of a little risk each; Y: two declarations of high risk.
fn diffuse_and_concentrated() -> (DataFrame, DataFrame, DataFrame) {
    let ids: Vec<String> = (0..12).map(|i| format!("D{i}")).collect();
    let importer: Vec<&str> = (0..12).map(|i| if i < 10 { "X" } else { "Y" }).collect();
    let duty: Vec<f64> = (0..12).map(|i| if i < 10 { 100.0 } else { 40.0 }).collect();
    let prob: Vec<f64> = (0..12).map(|i| if i < 10 { 0.1 } else { 0.5 }).collect();
    let d = df!(
        "declaration_id" => &ids,
        "item_no" => vec![1i32; 12],
        "importer_id" => importer,
        "hs6" => vec!["851712"; 12],
        "origin_country" => vec!["CN"; 12],
        "office_id" => vec!["MSA"; 12],
        "period" => vec!["2023-01"; 12],
        "value_usd" => duty.iter().map(|d| d * 10.0).collect::<Vec<_>>(),
        "duty_usd" => &duty,
    )
    .unwrap();
    let f = df!(
        "declaration_id" => &ids,
        "item_no" => vec![1i32; 12],
        "fraud_probability" => &prob,
        "expected_duty_at_risk_usd" => prob.iter().zip(&duty).map(|(p, d)| p * d).collect::<Vec<_>>(),
        "fraud_flag" => prob.iter().map(|p| *p > 0.3).collect::<Vec<_>>(),
        "top_features" => vec!["origin"; 12],
    )
    .unwrap();
    // A mirror-gap share on X's goods only.
    let m = df!(
        "declaration_id" => &ids,
        "item_no" => vec![1i32; 12],
        "mirror_duty_share_usd" => (0..12).map(|i| if i < 10 { 30.0 } else { 0.0 }).collect::<Vec<_>>(),
    )
    .unwrap();
    (d, f, m)
}

fn order(a: &DataFrame) -> Vec<String> {
    a.column(auditees::IMPORTER_ID).unwrap().str().unwrap().iter().map(|s| s.unwrap().to_owned()).collect()
}

#[test]
fn concentrated_evidence_outranks_a_little_risk_spread_over_many_declarations() {
    let (d, f, m) = diffuse_and_concentrated();
    let rank_with = |p: RankParams| rank(&d, Some(&f), None, Some(&m), &p).unwrap();
    // X expects 100 of recoverable duty at a mean probability of 0.1 (score 10), Y 40 at 0.5
    // (score 20): weighed by the concentration of evidence, Y comes first.
    let a = rank_with(plain());
    assert_eq!(order(&a), ["Y", "X"]);
    let score: Vec<f64> = a.column(auditees::AUDIT_SCORE).unwrap().f64().unwrap().iter().flatten().collect();
    assert!((score[0] - 20.0).abs() < 1e-9 && (score[1] - 10.0).abs() < 1e-9, "{score:?}");
    // The money at stake keeps the whole mirror-gap share, whatever its weight in the score.
    let risk: Vec<f64> = a.column(auditees::REVENUE_AT_RISK_USD).unwrap().f64().unwrap().iter().flatten().collect();
    assert!((risk[1] - 400.0).abs() < 1e-9, "{risk:?}");
    // Without the concentration, the sum of expected duty ranks; so does enough mirror weight.
    assert_eq!(order(&rank_with(RankParams { concentration: 0.0, ..plain() })), ["X", "Y"]);
    assert_eq!(order(&rank_with(RankParams { mirror_weight: 1.0, ..plain() })), ["X", "Y"]);
    // Strong shrinkage pulls both means towards the overall mean (2 / 12 of the declarations at
    // 0.5): two declarations no longer make Y concentrated.
    let shrunk = rank_with(RankParams { shrinkage: 100.0, ..plain() });
    assert_eq!(order(&shrunk), ["X", "Y"]);
    let c: Vec<f64> = shrunk.column(auditees::EVIDENCE_CONCENTRATION).unwrap().f64().unwrap().iter().flatten().collect();
    let overall = (10.0 * 0.1 + 2.0 * 0.5) / 12.0;
    assert!((c[0] - (1.0 + 100.0 * overall) / 110.0).abs() < 1e-12 && (c[1] - (1.0 + 100.0 * overall) / 102.0).abs() < 1e-12);
}

#[test]
fn audit_scores_follow_the_list_order_and_never_exceed_the_evidence() {
    for p in [
        RankParams::default(),
        plain(),
        RankParams { concentration: 2.0, shrinkage: 5.0, mirror_weight: 0.5, ..RankParams::default() },
        RankParams { concentration: 0.0, ..RankParams::default() },
    ] {
        for (d, f, m) in [diffuse_and_concentrated(), (declarations(), fraud(), fraud().select(["declaration_id", "item_no"]).unwrap())] {
            let m = if m.width() == 2 { None } else { Some(m) };
            let a = rank(&d, Some(&f), Some(&kmeans_for(&d)), m.as_ref(), &p).unwrap();
            let score: Vec<f64> = a.column(auditees::AUDIT_SCORE).unwrap().f64().unwrap().iter().flatten().collect();
            let risk: Vec<f64> = a.column(auditees::REVENUE_AT_RISK_USD).unwrap().f64().unwrap().iter().flatten().collect();
            assert!(score.windows(2).all(|w| w[0] >= w[1]), "{score:?}");
            // Probabilities are at most 1: the score is at most the evidence it weighs.
            assert!(score.iter().zip(&risk).all(|(s, r)| *s <= *r + 1e-9 && *s >= 0.0), "{score:?} {risk:?}");
        }
    }
}

/// No k-means flag on any declaration of `d`.
fn kmeans_for(d: &DataFrame) -> DataFrame {
    let n = d.height();
    let mut k = d.select(["declaration_id", "item_no"]).unwrap();
    k.with_column(Column::new("undervaluation_flag".into(), vec![false; n])).unwrap();
    k.with_column(Column::new("price_ratio".into(), vec![1.0; n])).unwrap();
    k.with_column(Column::new("undervalued_duty_usd".into(), vec![0.0; n])).unwrap();
    k
}
