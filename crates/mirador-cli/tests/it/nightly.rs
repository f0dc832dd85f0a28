//! `mirador run pipelines/nightly.toml` on the bundled sample data, into temporary directories.

use std::path::Path;

use crate::cli::{assert_same_outputs, mirador, repo};

fn run_into(out: &Path) -> serde_json::Value {
    let o = mirador(&["run", "pipelines/nightly.toml", "--out", out.to_str().unwrap()], &repo());
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let manifest = out.join("latest/manifest.json");
    serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap()
}

#[test]
fn the_nightly_run_reconciles_publishes_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a");
    let manifest = run_into(&out);

    // Every stage ran, every check passed, every source reconciles.
    let stages: Vec<&str> = manifest["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        stages,
        [
            "ingest",
            "ingest_outcomes",
            "revenue_gap",
            "kmeans_scores",
            "release_time",
            "revenue_forecast",
            "fraud_model",
            "rank",
            "evaluate_auditees",
            "report"
        ]
    );
    let checks = manifest["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["passed"] == true), "{checks:?}");
    let reconciliation = &manifest["stages"][0]["metrics"]["reconciliation"];
    for source in ["declarations", "mirror_flows", "tariffs", "fx_rates"] {
        let r = &reconciliation[source];
        let (i, a, q) = (r["rows_in"].as_u64().unwrap(), r["accepted"].as_u64().unwrap(), r["quarantined"].as_u64().unwrap());
        assert_eq!(i, a + q, "{source}");
        assert!(a > 0, "{source}");
    }
    assert!(checks.iter().any(|c| c["check"].as_str().unwrap().starts_with("reconciliation")));
    // Ingest proved the declarations' keys unique (its duplicate check): the run's test says so
    // rather than hashing them again, and the keys written are indeed unique.
    let unique = checks.iter().find(|c| c["dataset"] == "declarations" && c["check"] == "unique(declaration_id, item_no)").unwrap();
    assert_eq!(unique["detail"], "proven by the stage", "{unique}");
    let declarations = mirador_io::read_parquet(&out.join("latest/declarations.parquet")).unwrap();
    assert!(declarations.height() > 0);
    assert!(!declarations.select(["declaration_id", "item_no"]).unwrap().is_duplicated().unwrap().any());
    assert_eq!(manifest["inputs"].as_array().unwrap().len(), 6);
    // The inspection outcomes reconcile too, and each labels a declaration of the run.
    let stage = |name: &str| manifest["stages"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap();
    let r = &stage("ingest_outcomes")["metrics"]["reconciliation"]["inspection_outcomes"];
    assert_eq!(r["rows_in"], r["accepted"], "{r}");
    let applied = &stage("fraud_model")["metrics"]["inspection_outcomes"];
    assert_eq!(applied["items"], r["accepted"], "{applied}");
    assert_eq!(applied["unapplied"], 0, "{applied}");
    assert!(applied["revised"].as_u64().unwrap() > 0 && applied["labelled"].as_u64().unwrap() > 0, "{applied}");
    let html = std::fs::read_to_string(out.join("latest/report/index.html")).unwrap();
    let figure = format!("{}: {} labelled a declaration", applied["items"], applied["labelled"]);
    assert!(html.contains("Inspection outcomes recorded after clearance") && html.contains(&figure), "the report gives {figure}");
    // The report has it from `fraud_metrics`, the model's figures as a declared dataset.
    let metrics = mirador_io::read_parquet(&out.join("latest/fraud_metrics.parquet")).unwrap();
    let declared = (mirador_schema::catalog::get("fraud_metrics").unwrap().schema)();
    assert!(mirador_schema::catalog::differences(&declared, metrics.schema(), &[]).is_empty());
    let (section, metric, value) = (
        metrics.column("section").unwrap().str().unwrap(),
        metrics.column("metric").unwrap().str().unwrap(),
        metrics.column("value").unwrap().f64().unwrap(),
    );
    let of = |s: &str, m: &str| {
        (0..metrics.height()).find(|&i| section.get(i) == Some(s) && metric.get(i) == Some(m)).and_then(|i| value.get(i))
    };
    for key in ["items", "labelled", "confirmed", "revised", "late", "unapplied"] {
        assert_eq!(of("inspection_outcomes", key), applied[key].as_u64().map(|n| n as f64), "{key}");
    }
    assert_eq!(of("model", "trees"), stage("fraud_model")["metrics"]["trees"].as_u64().map(|n| n as f64));
    assert!(!section.iter().any(|s| s == Some("carried_state")), "no carried state without carry-state");
    assert!(manifest["inputs"][0]["sha256"].as_str().unwrap().len() == 64);
    // Release times: measured when the sample's declarations carry them, else skipped with a note.
    let release = &stage("release_time")["metrics"];
    let measured = release["measured"].as_u64().unwrap();
    match release["skipped"].as_str() {
        Some(note) => assert!(measured == 0 && note.contains("no release times"), "{release}"),
        None => assert!(measured > 0 && release["worst_office"].is_string(), "{release}"),
    }
    // Revenue forecasts: a year of history is too short for a season; the stage says so and
    // forecasts without one, and the report has its section.
    let forecast = &stage("revenue_forecast")["metrics"];
    assert_eq!(forecast["model"], "AutoETS (non-seasonal)", "{forecast}");
    assert!(forecast["note"].as_str().unwrap().contains("fewer than the 24"), "{forecast}");
    assert!(forecast["series"].as_u64().unwrap() > 50, "{forecast}");
    assert!(html.contains("<h2>Revenue forecast</h2>"));
    // The fraud map is drawn, in both views.
    for chart in ["fraud_map_lost_duty", "fraud_map_fraud_rate", "fraud_score_vs_price"] {
        for ext in ["png", "svg"] {
            assert!(out.join(format!("latest/report/{chart}.{ext}")).is_file(), "{chart}.{ext}");
        }
    }
    assert!(html.contains("<h2>Fraud map</h2>") && html.contains("The ten origins with the largest lost duty"));

    // What PCA teams consume is there, and it earns its place against the planted truth.
    let latest = out.join("latest");
    snapshots(&latest);
    crate::auditees::assert_the_list_earns_its_place(&latest, "seed 42 (sample data)");
    for f in ["auditees.parquet", "auditees_shareable.parquet", "rank/auditees.csv", "report/index.html", "fraud_model/model.json"] {
        assert!(latest.join(f).is_file(), "{f} missing");
    }

    // Every file of the run holds taxpayer data: owner-only, whoever wrote it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                if e.path().is_dir() { walk(&e.path(), files) } else { files.push(e.path()) }
            }
        }
        let mut files = Vec::new();
        walk(&latest, &mut files);
        files.push(out.join("journal.jsonl"));
        // Directories are owner-only too (a directory others may write to lets them replace
        // a file in it).
        for d in [out.clone(), out.join("runs"), latest.clone(), latest.join("rank"), latest.join("report")] {
            assert_eq!(std::fs::metadata(&d).unwrap().permissions().mode() & 0o777, 0o700, "{}", d.display());
        }
        assert!(files.len() > 40, "{files:?}");
        for f in files {
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is readable by others", f.display());
        }
    }

    // `mirador score` reloads the model; given the run's signals it uses them, without them it
    // warns that the model's signals are scored as missing.
    let score = |signals: bool| {
        let out_file = dir.path().join(format!("scores-{signals}.parquet"));
        let (model, declarations) = (latest.join("fraud_model/model.json"), latest.join("declarations.parquet"));
        let mut args = vec!["score", "--model", model.to_str().unwrap(), "--declarations", declarations.to_str().unwrap()];
        args.extend(["--out", out_file.to_str().unwrap()]);
        if signals {
            args.extend(["--signals", latest.to_str().unwrap()]);
        }
        let o = mirador(&args, &repo());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let probability = mirador_io::read_parquet(&out_file).unwrap().column("fraud_probability").unwrap().f64().unwrap().to_vec();
        (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned(), probability)
    };
    let (with_out, with_err, with) = score(true);
    let (_, without_err, without) = score(false);
    assert!(with_out.contains("signal undervaluation_score: given for") && !with_err.contains("warning"), "{with_out}\n{with_err}");
    assert!(without_err.contains("warning: the model uses the signal undervaluation_score"), "{without_err}");
    assert_eq!(with.len(), without.len());
    assert!(with.iter().zip(&without).any(|(a, b)| a != b), "the signals change some scores");

    // Re-running is a no-op; a run elsewhere gives byte-identical outputs.
    let o = mirador(&["run", "pipelines/nightly.toml", "--out", out.to_str().unwrap()], &repo());
    assert!(String::from_utf8_lossy(&o.stdout).contains("already committed"));
    let other = dir.path().join("b");
    run_into(&other);
    assert_same_outputs(&latest, &other.join("latest"), "two runs of the same night");

    // The sample pipeline may use the repository's demo pseudonym key, and says so.
    let warnings = manifest["warnings"].as_array().unwrap();
    assert!(warnings.iter().any(|w| w.as_str().unwrap().contains("DEMO PSEUDONYM KEY")), "{warnings:?}");
    // ... and so does its report, to whoever reads the page rather than the manifest.
    let html = std::fs::read_to_string(latest.join("report/index.html")).unwrap();
    assert!(html.contains("<strong>Warning.</strong> DEMO PSEUDONYM KEY"), "the report shows the run's warning");

    // The auditee list for spreadsheets quotes every text cell: the importer id (second column)
    // and the reason; the rank (first column) is a number.
    let csv = std::fs::read_to_string(latest.join("rank/auditees.csv")).unwrap();
    assert!(csv.lines().count() > 10 && csv.starts_with("\"rank\",\"importer_id\","), "{}", &csv[..80]);
    for (i, line) in csv.lines().skip(1).enumerate() {
        assert!(line.starts_with(&format!("{},\"", i + 1)), "{line}");
    }

    // Ingest re-run alone on a smaller file: the reused scores point at declarations the new
    // run does not have, so the checks fail and nothing is published; the failed attempt is kept.
    let text = std::fs::read_to_string(repo().join("sample_data/declarations.csv")).unwrap();
    let smaller = dir.path().join("smaller.csv");
    std::fs::write(&smaller, text.lines().take(20_000).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let head = std::fs::read_link(out.join("latest")).unwrap();
    let source = format!("declarations={}", smaller.display());
    let args = ["run", "pipelines/nightly.toml", "--out", out.to_str().unwrap(), "--only", "ingest", "--force", "--source", &source];
    let o = mirador(&args, &repo());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("relationships") && err.contains("reused from run"), "{err}");
    assert_eq!(std::fs::read_link(out.join("latest")).unwrap(), head, "nothing published");
    assert!(err.contains(&out.join("failed").display().to_string()), "the error says where the attempt is kept: {err}");
    let failed: Vec<_> = std::fs::read_dir(out.join("failed")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].join("quarantine.parquet").is_file() && failed[0].join("error.txt").is_file());
}

/// What readers of the sample run see, as reviewed snapshots (`tests/it/snapshots/`): a change in
/// an output shows up as a diff to accept (`cargo insta review`, or `INSTA_UPDATE=always`).
fn snapshots(run: &Path) {
    use std::fmt::Write as _;
    let read = |id: &str| mirador_io::read_parquet(&run.join(format!("{id}.parquet"))).unwrap();
    // Floats to 6 significant digits, so that a last-bit difference between machines is not a change.
    let cell = |c: &polars::prelude::Column, i: usize| -> String {
        match c.get(i).unwrap() {
            polars::prelude::AnyValue::Float64(v) => format!("{v:.6e}"),
            polars::prelude::AnyValue::String(s) => s.to_owned(),
            v => v.to_string(),
        }
    };
    let table = |df: &polars::prelude::DataFrame, rows: usize| -> String {
        let mut t = String::new();
        for i in 0..rows.min(df.height()) {
            for c in df.columns() {
                let _ = writeln!(t, "{}: {}", c.name(), cell(c, i));
            }
            t.push('\n');
        }
        t
    };
    insta::assert_snapshot!("auditees_top_20", table(&read("auditees"), 20));
    insta::assert_snapshot!("gap_summary", table(&read("gap_summary"), usize::MAX));
    let html = std::fs::read_to_string(run.join("report/index.html")).unwrap();
    let start = html.find("<section id=\"key-figures\">").unwrap();
    let section = &html[start..start + html[start..].find("</section>").unwrap()];
    let figures: Vec<String> =
        section.split("<tr><td>").skip(1).map(|row| row.split("</td></tr>").next().unwrap().replacen("</td><td>", " | ", 1)).collect();
    insta::assert_snapshot!("report_key_figures", figures.join("\n"));
    let mut schemas = String::new();
    let mut sidecars: Vec<_> =
        std::fs::read_dir(run).unwrap().flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with(".schema.json")).collect();
    sidecars.sort();
    for path in sidecars {
        let fields: Vec<mirador_io::FieldDoc> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().trim_end_matches(".schema.json").to_owned();
        let columns: Vec<String> = fields.iter().map(|f| format!("{} {}", f.name, f.dtype)).collect();
        let _ = writeln!(schemas, "{name}: {}", columns.join(", "));
    }
    insta::assert_snapshot!("dataset_schemas", schemas);
}
