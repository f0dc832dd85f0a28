//! The auditee list measured against a known truth per declaration.

use std::collections::HashMap;

use mirador_pipeline::SourceSpec;
use mirador_rank::evaluation::{POLICIES, TOP_PCTS, by_importer, evaluate, read_truth};
use mirador_schema::catalog::auditee_evaluation;
use polars::prelude::*;

/// Twenty importers `I00`..`I19`, one declaration each; importer `i` pays duty `i` and lost
/// `truth[i]`.
fn world(truth: &[f64]) -> (DataFrame, HashMap<(String, i64), f64>) {
    let n = truth.len();
    let ids: Vec<String> = (0..n).map(|i| format!("D{i:02}")).collect();
    let d = df!(
        "declaration_id" => &ids,
        "item_no" => vec![1i64; n],
        "importer_id" => (0..n).map(|i| format!("I{i:02}")).collect::<Vec<_>>(),
        "duty_usd" => (0..n).map(|i| i as f64).collect::<Vec<_>>(),
        "value_usd" => (0..n).map(|i| (n - i) as f64).collect::<Vec<_>>(),
    )
    .unwrap();
    let t = ids.into_iter().zip(truth).map(|(id, l)| ((id, 1), *l)).collect();
    (d, t)
}

fn shares(e: &DataFrame, policy: &str) -> Vec<f64> {
    let p = e.column(auditee_evaluation::POLICY).unwrap().str().unwrap();
    let s = e.column(auditee_evaluation::SHARE_OF_LOST_DUTY).unwrap().f64().unwrap();
    (0..e.height()).filter(|&i| p.get(i) == Some(policy)).map(|i| s.get(i).unwrap()).collect()
}

#[test]
fn each_order_is_measured_by_importer_against_the_oracle() {
    // Lost duty 100 at importer 19 (the biggest payer), 60 at importer 3, 40 at importer 0.
    let mut truth = vec![0.0; 20];
    (truth[19], truth[3], truth[0]) = (100.0, 60.0, 40.0);
    let (d, t) = world(&truth);
    let (importers, missing) = by_importer(&d, &t).unwrap();
    assert_eq!((importers.len(), missing), (20, 0));
    // The list: importer 3, then 0, then the others; importer 19 is left out (filters, `top`).
    let listed: Vec<String> = [3, 0].into_iter().chain((1..19).filter(|i| *i != 3)).map(|i| format!("I{i:02}")).collect();
    let a = df!("importer_id" => &listed).unwrap();
    let e = evaluate(&a, &importers).unwrap().unwrap();
    assert_eq!(e.height(), POLICIES.len() * TOP_PCTS.len());
    // 1 % and 5 % of 20 importers select one, 10 % two, 20 % four.
    let selected: Vec<u32> = e.column(auditee_evaluation::IMPORTERS_SELECTED).unwrap().u32().unwrap().iter().flatten().take(4).collect();
    assert_eq!(selected, [1, 1, 2, 4]);
    assert_eq!(shares(&e, "list"), [0.3, 0.3, 0.5, 0.5]);
    assert_eq!(shares(&e, "oracle"), [0.5, 0.5, 0.8, 1.0]);
    assert_eq!(shares(&e, "duty_paid"), [0.5, 0.5, 0.5, 0.5]);
    assert_eq!(shares(&e, "declared_value"), [0.2, 0.2, 0.2, 0.5]);
    assert_eq!(shares(&e, "random"), [0.05, 0.05, 0.1, 0.2]);

    // Declarations without truth count zero and are counted; no truth at all gives nothing.
    let (_, t_none) = world(&[0.0; 20]);
    let (importers, missing) = by_importer(&d, &HashMap::new()).unwrap();
    assert_eq!(missing, 20);
    assert!(evaluate(&a, &importers).unwrap().is_none());
    let (importers, _) = by_importer(&d, &t_none).unwrap();
    assert!(evaluate(&a, &importers).unwrap().is_none());
}

#[test]
fn the_truth_file_is_read_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        SourceSpec { paths: vec![name.into()], ..Default::default() }
    };
    let good =
        write("t.csv", "declaration_id,item_no,fraud_kind,planted_lost_duty_usd\nD1,1,none,0.0\nD1,2,undervaluation,12.5\nD2,1,none,\n");
    let t = read_truth(&good, dir.path(), "planted_lost_duty_usd").unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t[&("D1".to_owned(), 2)], 12.5);
    assert_eq!(t[&("D2".to_owned(), 1)], 0.0);
    let err = |spec: &SourceSpec, column: &str| read_truth(spec, dir.path(), column).unwrap_err().to_string();
    let e = err(&good, "recovered_duty_usd");
    assert!(e.contains("recovered_duty_usd") && e.contains("t.csv"), "{e}");
    let bad = write("bad.csv", "declaration_id,item_no,planted_lost_duty_usd\nD1,1,3\nD2,1,lots\n");
    let e = err(&bad, "planted_lost_duty_usd");
    assert!(e.contains("bad.csv:3") && e.contains("`lots` is not a number"), "{e}");
    let twice = write("twice.csv", "declaration_id,item_no,planted_lost_duty_usd\nD1,1,3\nD1,1,4\n");
    let e = err(&twice, "planted_lost_duty_usd");
    assert!(e.contains("twice.csv:3") && e.contains("given twice"), "{e}");
    let e = err(&SourceSpec { paths: vec!["absent.csv".into()], ..Default::default() }, "x");
    assert!(e.contains("absent.csv"), "{e}");
}
