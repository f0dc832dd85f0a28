//! Backfill: `mirador run --period A..B` runs each month as of its end, into its own output root,
//! and gives exactly what running each month alone gives.

use std::path::Path;

use crate::cli::{assert_same_outputs, mirador, repo};

fn run(out: &Path, period: &str) -> String {
    let o = mirador(&["-q", "run", "pipelines/nightly.toml", "--out", out.to_str().unwrap(), "--period", period], &repo());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn manifest(latest: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(latest.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn a_backfill_gives_per_period_outputs_identical_to_running_each_period_alone() {
    let dir = tempfile::tempdir().unwrap();
    let backfill = dir.path().join("backfill");
    run(&backfill, "2023-10..2023-12");
    for period in ["2023-10", "2023-11", "2023-12"] {
        let alone = dir.path().join(format!("alone-{period}"));
        run(&alone, period);
        let (a, b) = (backfill.join("periods").join(period).join("latest"), alone.join("periods").join(period).join("latest"));
        assert_same_outputs(&a, &b, &format!("period {period}"));

        // The period's run saw nothing dated after the period's end, and set it aside, not
        // quarantined it.
        let m = manifest(&a);
        let ingest = &m["stages"][0];
        let rec = &ingest["metrics"]["reconciliation"]["declarations"];
        let (rows_in, accepted, quarantined, deferred) = (
            rec["rows_in"].as_u64().unwrap(),
            rec["accepted"].as_u64().unwrap(),
            rec["quarantined"].as_u64().unwrap(),
            rec["deferred"].as_u64().unwrap(),
        );
        assert_eq!(rows_in, accepted + quarantined + deferred, "{period}");
        assert!(m["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true), "{period}");
        let declarations = mirador_io::read_parquet(&a.join("declarations.parquet")).unwrap();
        let periods = declarations.column("period").unwrap().str().unwrap();
        let last = periods.iter().flatten().max().unwrap();
        assert_eq!(last, period, "declarations after the period's end were seen");
        // The auditee list covers the period's declarations only.
        let auditees = mirador_io::read_parquet(&a.join("auditees.parquet")).unwrap();
        assert!(auditees.height() > 0, "{period}");
        let stage = |name: &str| m["stages"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap().clone();
        assert_eq!(stage("rank")["params"]["periods"], serde_json::json!([period]), "{period}");
        // Nor any inspection outcome decided after it.
        let outcomes = mirador_io::read_parquet(&a.join("inspection_outcomes.parquet")).unwrap();
        let decided = outcomes.column("decided_on").unwrap().cast(&polars::prelude::DataType::String).unwrap();
        let last_decided = decided.str().unwrap().iter().flatten().max().unwrap().to_owned();
        assert!(last_decided.as_str() <= format!("{period}-31").as_str(), "{period}: {last_decided}");
        let sample = std::fs::read_to_string(repo().join("sample_data/inspection_outcomes.csv")).unwrap();
        let later = sample.lines().skip(1).filter(|l| l.split(',').nth(2).is_some_and(|d| d.get(..7) > Some(period))).count();
        let deferred = &stage("ingest_outcomes")["metrics"]["reconciliation"]["inspection_outcomes"]["deferred"];
        assert_eq!(deferred.as_u64(), Some(later as u64), "{period}");
    }
    // Later periods see more history.
    let seen =
        |p: &str| manifest(&backfill.join("periods").join(p).join("latest"))["stages"][0]["rows_out"]["declarations"].as_u64().unwrap();
    assert!(seen("2023-10") < seen("2023-11") && seen("2023-11") < seen("2023-12"));

    // Re-running the backfill changes nothing.
    let again = run(&backfill, "2023-10..2023-12");
    assert_eq!(again.matches("already committed").count(), 3, "{again}");
}

#[test]
fn a_bad_period_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    for (bad, says) in [("2023-13", "not a YYYY-MM month"), ("2023-03..2023-01", "ends before it starts"), ("23-01", "not a YYYY-MM")] {
        let o = mirador(&["run", "pipelines/nightly.toml", "--out", out, "--period", bad], &repo());
        assert_eq!(o.status.code(), Some(1), "{bad}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{bad}: {err}");
    }
}
