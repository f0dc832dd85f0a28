//! The auditee list measured against a known truth per declaration.

use mirador_pipeline::SourceSpec;
use mirador_rank::evaluation::{POLICIES, TOP_PCTS, by_importer, evaluate, read_items, read_truth};
use mirador_schema::catalog::auditee_evaluation;
use polars::prelude::*;

/// Twenty importers `I00`..`I19`, one declaration each; importer `i` pays duty `i` and lost
/// `truth[i]`.
fn world(truth: &[f64]) -> (DataFrame, Vec<Option<f64>>) {
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
    (d, truth.iter().copied().map(Some).collect())
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
    let (importers, missing) = by_importer(&d, &[None; 20]).unwrap();
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
    let items = read_items(&good, dir.path(), "planted_lost_duty_usd").unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items.get("D1", 2), Some(12.5));
    assert_eq!(items.get("D2", 1), Some(0.0));
    let err = |spec: &SourceSpec, column: &str| read_truth(spec, dir.path(), column).unwrap_err().to_string();
    let e = err(&good, "recovered_duty_usd");
    assert!(e.contains("recovered_duty_usd") && e.contains("t.csv"), "{e}");
    let bad = write("bad.csv", "declaration_id,item_no,planted_lost_duty_usd\nD1,1,3\nD2,1,lots\n");
    let e = err(&bad, "planted_lost_duty_usd");
    assert!(e.contains("bad.csv:3") && e.contains("`lots` is not a number"), "{e}");
    // An item given twice is found when the truth is lined up with the declarations, whether
    // the repeat is of an item the declarations have or not, in their order or not.
    let declarations = |keys: &[(&str, i64)]| {
        df!("declaration_id" => keys.iter().map(|k| k.0).collect::<Vec<_>>(), "item_no" => keys.iter().map(|k| k.1).collect::<Vec<_>>())
            .unwrap()
    };
    let twice = write("twice.csv", "declaration_id,item_no,planted_lost_duty_usd\nD1,1,3\nD2,1,5\nD1,1,4\nD3,1,1\nD3,1,2\n");
    let e = err(&twice, "planted_lost_duty_usd");
    assert!(e.contains("twice.csv:4") && e.contains("given twice"), "{e}");
    let twice = read_items(&twice, dir.path(), "planted_lost_duty_usd").unwrap();
    for keys in [&[("D1", 1), ("D2", 1), ("D3", 1)][..], &[("D1", 1), ("D2", 1)], &[("D2", 1), ("D1", 1)], &[("D2", 1)]] {
        let e = twice.lined_up(&declarations(keys)).unwrap_err().to_string();
        assert!(e.contains("twice.csv:4") && e.contains("declaration D1 item 1 is given twice"), "{keys:?}: {e}");
    }
    let e = err(&SourceSpec { paths: vec!["absent.csv".into()], ..Default::default() }, "x");
    assert!(e.contains("absent.csv"), "{e}");
}

#[test]
fn the_truth_is_lined_up_with_the_declarations_in_any_order() {
    let dir = tempfile::tempdir().unwrap();
    // Items D0..D9 (item 1) and D0 item 2, with lost duty 10 × their number (+ 0.5 for item 2).
    let text: String = std::iter::once("declaration_id,item_no,planted_lost_duty_usd\n".to_owned())
        .chain((0..10).map(|i| format!("D{i},1,{}\n", 10 * i)))
        .chain(std::iter::once("D0,2,0.5\n".to_owned()))
        .collect();
    std::fs::write(dir.path().join("t.csv"), text).unwrap();
    let spec = SourceSpec { paths: vec!["t.csv".into()], ..Default::default() };
    let truth = read_items(&spec, dir.path(), "planted_lost_duty_usd").unwrap();
    let expected = |keys: &[(String, i64)]| -> Vec<Option<f64>> { keys.iter().map(|(id, item)| truth.get(id, *item)).collect() };
    let orders: Vec<Vec<(String, i64)>> = vec![
        // The truth's order, whole; with items left out (quarantined); reversed; shuffled; with
        // declarations the truth lacks (first, inside, last); with a declaration without key.
        (0..10).map(|i| (format!("D{i}"), 1)).chain([("D0".to_owned(), 2)]).collect(),
        [1, 2, 5, 9].iter().map(|i| (format!("D{i}"), 1)).collect(),
        (0..10).rev().map(|i| (format!("D{i}"), 1)).collect(),
        [3, 7, 1, 0, 9].iter().map(|i| (format!("D{i}"), 1)).chain([("D0".to_owned(), 2)]).collect(),
        [("X", 1), ("D1", 1), ("D2", 3), ("D4", 1), ("D9", 1), ("D9", 2)].iter().map(|(d, i)| ((*d).to_owned(), *i)).collect(),
    ];
    for keys in &orders {
        let d = df!(
            "declaration_id" => keys.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(),
            "item_no" => keys.iter().map(|k| k.1 as i32).collect::<Vec<_>>(),
        )
        .unwrap();
        assert_eq!(truth.lined_up(&d).unwrap(), expected(keys), "{keys:?}");
    }
    // A declaration without a key has no truth.
    let d = df!("declaration_id" => [Some("D1"), None, Some("D2")], "item_no" => [1i64, 1, 1]).unwrap();
    assert_eq!(truth.lined_up(&d).unwrap(), [Some(10.0), None, Some(20.0)]);
}
