//! Nightly runs with carried state (`pipelines/carried.toml`): each run is handed only its new
//! declarations (`--source declarations=...`) and the inspection outcomes decided since the
//! previous run (`--source inspection_outcomes=...`), and continues from the previous run's model.

use std::path::{Path, PathBuf};

use crate::cli::{mirador, repo};

/// Writes the sample declarations dated in `[from, to)` (text comparison of `YYYY-MM-DD`) to a
/// CSV file; `with_broken` also takes the rows whose date is not a 2023 date (broken on purpose).
fn slice(dir: &Path, name: &str, from: &str, to: &str, with_broken: bool) -> PathBuf {
    slice_of("declarations.csv", dir, name, from, to, with_broken)
}

/// The night's files: the declarations dated in `[from, to)` and the outcomes decided then.
fn files(dir: &Path, name: &str, from: &str, to: &str, with_broken: bool) -> (PathBuf, PathBuf) {
    let outcomes = slice_of("inspection_outcomes.csv", dir, &format!("outcomes-{name}"), from, to, false);
    (slice(dir, name, from, to, with_broken), outcomes)
}

/// [`slice`] of a sample file whose third column is a date (`inspection_outcomes.csv`'s
/// `decided_on` too).
fn slice_of(file: &str, dir: &Path, name: &str, from: &str, to: &str, with_broken: bool) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("sample_data").join(file)).unwrap();
    let mut lines = text.lines();
    let mut out = vec![lines.next().unwrap().to_owned()];
    for line in lines {
        let date = line.split(',').nth(2).unwrap_or("");
        let dated = date.len() == 10 && date.starts_with("2023-");
        if (dated && date >= from && date < to) || (!dated && with_broken) {
            out.push(line.to_owned());
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

fn night(out: &Path, (declarations, outcomes): &(PathBuf, PathBuf)) -> std::process::Output {
    let source = format!("declarations={}", declarations.display());
    let feed = format!("inspection_outcomes={}", outcomes.display());
    mirador(&["-q", "run", "pipelines/carried.toml", "--out", out.to_str().unwrap(), "--source", &source, "--source", &feed], &repo())
}

/// The fraud model's `fraud_metrics` of the latest run as `{section: {metric: value}}` (whole
/// numbers as integers, texts as strings), checked against the `metrics.json` kept for people.
fn model_metrics(out: &Path) -> serde_json::Value {
    let df = mirador_io::read_parquet(&out.join("latest/fraud_metrics.parquet")).unwrap();
    let column = |name: &str| df.column(name).unwrap().clone();
    let (section, metric, value, text) = (column("section"), column("metric"), column("value"), column("text"));
    let (section, metric, value, text) = (section.str().unwrap(), metric.str().unwrap(), value.f64().unwrap(), text.str().unwrap());
    let mut sections = serde_json::Map::new();
    for i in 0..df.height() {
        let v = match (value.get(i), text.get(i)) {
            (Some(v), None) if v.fract() == 0.0 && v >= 0.0 => serde_json::json!(v as u64),
            (Some(v), None) => serde_json::json!(v),
            (None, Some(t)) => serde_json::json!(t),
            (None, None) => serde_json::Value::Null,
            (Some(_), Some(_)) => panic!("a figure is a number or a text, not both (row {i})"),
        };
        let entry = sections.entry(section.get(i).unwrap()).or_insert_with(|| serde_json::json!({}));
        entry.as_object_mut().unwrap().insert(metric.get(i).unwrap().to_owned(), v);
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("latest/fraud_model/metrics.json")).unwrap()).unwrap();
    assert_eq!(sections["inspection_outcomes"], json["inspection_outcomes"], "fraud_metrics and metrics.json agree");
    let carried = &sections["carried_state"];
    for key in ["pending_rows", "carried_window_rows", "window_rows", "retrain_reason", "retrain_skipped"] {
        assert_eq!(carried[key], json["carried_state"][key], "{key}");
    }
    assert_eq!(carried["retrained"].as_u64() == Some(1), json["carried_state"]["retrained"].as_bool().unwrap());
    assert_eq!(sections["model"]["trees"], json["trees"]);
    assert_eq!(sections["model"]["train_end"], json["train_end"]);
    serde_json::Value::Object(sections)
}

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("latest/manifest.json")).unwrap()).unwrap()
}

fn stage<'a>(m: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    m["stages"].as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()
}

fn latest_id(out: &Path) -> String {
    std::fs::read_link(out.join("latest")).unwrap().file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn nightly_runs_carry_the_model_forward_and_read_only_the_new_declarations() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let first = files(dir.path(), "jan-aug.csv", "2023-01-01", "2023-09-01", true);
    let sep_a = files(dir.path(), "sep-a.csv", "2023-09-01", "2023-09-15", false);
    let sep_b = files(dir.path(), "sep-b.csv", "2023-09-15", "2023-10-01", false);
    let oct = files(dir.path(), "oct.csv", "2023-10-01", "2023-11-01", false);
    let oct_nov = files(dir.path(), "oct-nov.csv", "2023-10-01", "2023-12-01", false);

    // No previous run: the model is trained on the first file.
    ok(&night(&out, &first));
    let m = manifest(&out);
    assert_eq!(stage(&m, "fraud_model")["metrics"]["retrained"], true);
    let mut seen = stage(&m, "ingest")["rows_out"]["declarations"].as_u64().unwrap();
    let first_importers = stage(&m, "rank")["metrics"]["importers"].as_u64().unwrap();
    // Every outcome decided by then finds its declaration in the first file.
    let applied = &model_metrics(&out)["inspection_outcomes"];
    assert!(applied["items"].as_u64().unwrap() > 100, "{applied}");
    assert_eq!(applied["unapplied"], 0, "{applied}");
    assert_eq!(applied["late"], 0, "{applied}");

    // Two weeks later: the carried model scores the new declarations only, without retraining.
    ok(&night(&out, &sep_a));
    let m = manifest(&out);
    let rows = stage(&m, "ingest")["rows_out"]["declarations"].as_u64().unwrap();
    assert!(rows > 0 && rows < seen / 8, "only the new declarations are read ({rows} of {seen})");
    seen += rows;
    let model = stage(&m, "fraud_model");
    assert_eq!(model["metrics"]["retrained"], false, "{model}");
    assert_eq!(model["rows_out"]["fraud_scores"].as_u64(), Some(rows));
    // The night's outcomes label declarations of earlier nights, found in the carried window;
    // those decided on declarations too old to be waited for are listed, none is lost.
    let applied = &model_metrics(&out)["inspection_outcomes"];
    let count = |k: &str| applied[k].as_u64().unwrap();
    assert!(count("late") > 0, "{applied}");
    assert_eq!(count("labelled") + count("confirmed") + count("revised") + count("unapplied"), count("items"), "{applied}");
    let unapplied = mirador_io::read_parquet(&out.join("latest/fraud_model/unapplied_outcomes.parquet")).unwrap();
    assert_eq!(unapplied.height() as u64, count("unapplied"));
    // k-means compared the night with the peers the first run kept.
    let kmeans = stage(&m, "kmeans_scores");
    assert!(kmeans["metrics"]["carried_peers"].as_u64().unwrap() > rows, "{kmeans}");
    assert_eq!(kmeans["rows_out"]["kmeans_scores"].as_u64(), Some(rows));
    // The report shows how the carried model did on the night's already-inspected declarations.
    let html = std::fs::read_to_string(out.join("latest/report/index.html")).unwrap();
    assert!(html.contains("Carried fraud model ROC AUC on this run"), "the report shows the live figures");
    let sep_a_run = latest_id(&out);
    // The auditee list ranks every importer of the audit window (the year so far), not only
    // those that declared in the night's file.
    let rank = stage(&m, "rank");
    assert_eq!(rank["metrics"]["window_rows"].as_u64(), Some(seen), "{rank}");
    assert!(rank["metrics"]["importers"].as_u64().unwrap() >= first_importers, "{rank}");
    assert_eq!(rank["metrics"]["window_to"].as_str().unwrap().get(..7), Some("2023-09"), "{rank}");
    let span = format!("{} to {}", rank["metrics"]["window_from"].as_str().unwrap(), rank["metrics"]["window_to"].as_str().unwrap());
    assert!(html.contains("Declarations behind the auditee list") && html.contains(&span), "the report gives the window {span}");

    // Four weeks after the model's newest training day: retrained on the window + new rows.
    ok(&night(&out, &sep_b));
    let m = manifest(&out);
    assert_eq!(stage(&m, "fraud_model")["metrics"]["retrained"], true);
    seen += stage(&m, "ingest")["rows_out"]["declarations"].as_u64().unwrap();
    let metrics = model_metrics(&out);
    let reason = metrics["carried_state"]["retrain_reason"].as_str().unwrap();
    assert!(reason.contains("days before the newest declaration"), "{reason}");
    let head = latest_id(&out);
    // The declarations awaiting an outcome are kept one file per day; the days no outcome reached
    // tonight are the previous run's files, linked.
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let pending = mirador_io::parquet_files(&out.join("latest/fraud_model/pending")).unwrap();
    let before = out.join("runs").join(&sep_a_run).join("fraud_model/pending");
    let linked = pending
        .iter()
        .filter(|(day, p)| before.join(format!("{day}.parquet")).is_file() && inode(p) == inode(&before.join(format!("{day}.parquet"))))
        .count();
    assert!(pending.len() > 100 && linked > 0 && linked < pending.len(), "{linked} of {} pending days linked", pending.len());

    // An older night given again is already committed, and `latest` stays on the newest run.
    let again = ok(&night(&out, &sep_a));
    assert!(again.contains("already committed"), "{again}");
    assert_ne!(head, sep_a_run);
    assert_eq!(latest_id(&out), head, "latest moved back to an older run of the chain");

    // A night without declarations (a holiday) commits empty outputs and passes the state on.
    let none = files(dir.path(), "none.csv", "2023-09-30", "2023-09-30", false);
    ok(&night(&out, &none));
    let m = manifest(&out);
    assert_eq!(stage(&m, "ingest")["rows_out"]["declarations"].as_u64(), Some(0));
    assert_eq!(stage(&m, "fraud_model")["rows_out"]["fraud_scores"].as_u64(), Some(0));
    assert_eq!(stage(&m, "fraud_model")["metrics"]["retrained"], false);

    // The next night continues from the newest run: the model's history holds every declaration
    // of the chain exactly once.
    ok(&night(&out, &oct));
    let m = manifest(&out);
    seen += stage(&m, "ingest")["rows_out"]["declarations"].as_u64().unwrap();
    let model: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("latest/fraud_model/model.json")).unwrap()).unwrap();
    assert_eq!(model["history"]["global"]["seen"].as_u64(), Some(seen));
    assert_eq!(stage(&m, "rank")["metrics"]["window_rows"].as_u64(), Some(seen), "every declaration of the chain, once");
    let head = latest_id(&out);

    // Declarations the state already holds are refused, clearly, and nothing is published.
    let o = night(&out, &oct_nov);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("on or before 2023-10-"), "{err}");
    assert_eq!(latest_id(&out), head);

    // A source the pipeline does not have is a usage error.
    let o = mirador(&["run", "pipelines/carried.toml", "--out", out.to_str().unwrap(), "--source", "declaration=x.csv"], &repo());
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no source `declaration`"));
}

#[test]
fn a_nightly_chain_keeps_only_the_newest_runs() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo();
    let text = std::fs::read_to_string(repo.join("pipelines/carried.toml"))
        .unwrap()
        .replace("keep-runs = 30", "keep-runs = 2")
        .replace("extends = \"nightly.toml\"", &format!("extends = \"{}/pipelines/nightly.toml\"", repo.display()));
    let pipeline = dir.path().join("carried.toml");
    std::fs::write(&pipeline, text).unwrap();
    let out = dir.path().join("out");
    let nights =
        [("first.csv", "2023-01-01", "2023-10-01"), ("oct.csv", "2023-10-01", "2023-11-01"), ("nov.csv", "2023-11-01", "2023-12-01")];
    for (name, from, to) in nights {
        let file = slice(dir.path(), name, from, to, false);
        let source = format!("declarations={}", file.display());
        ok(&mirador(&["-q", "run", pipeline.to_str().unwrap(), "--out", out.to_str().unwrap(), "--source", &source], &repo));
    }
    let runs: Vec<String> =
        std::fs::read_dir(out.join("runs")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.contains(&latest_id(&out)), "latest is kept");
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert_eq!(journal.matches("\"pruned\"").count(), 1, "{journal}");
}

/// A night's declaration dated years ahead by a typo (after the day of the run, or long after the
/// rest of the night) is quarantined as `date_in_future`, never enters the carried state, and
/// the next night runs.
#[test]
fn a_row_dated_years_ahead_by_a_typo_does_not_stop_the_next_nights() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let first = files(dir.path(), "jan-aug.csv", "2023-01-01", "2023-09-01", false);
    // Two rows of the first night get a typo in their year: one after the day of the run, one in
    // a past year (still after every other date of the night).
    let text = std::fs::read_to_string(&first.0).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // The past-year typo on a row in USD (a KES row of 2024 would miss its exchange rate first).
    let currency = lines[0].split(',').position(|h| h == "currency").unwrap();
    let usd = (200..lines.len()).find(|&i| lines[i].split(',').nth(currency) == Some("USD")).unwrap();
    // The rows' release times stay empty, so that the date alone decides their fate.
    let times: Vec<usize> = ["arrived_at", "lodged_at", "paid_at", "released_at"]
        .iter()
        .filter_map(|name| lines[0].split(',').position(|h| h == *name))
        .collect();
    for (at, typo) in [(100, "2035"), (usd, "2024")] {
        let mut fields: Vec<String> = lines[at].split(',').map(str::to_owned).collect();
        fields[2] = format!("{typo}{}", &fields[2][4..]);
        for &t in &times {
            fields[t].clear();
        }
        lines[at] = fields.join(",");
    }
    std::fs::write(&first.0, lines.join("\n") + "\n").unwrap();
    ok(&night(&out, &first));
    let m = manifest(&out);
    let reasons = &stage(&m, "ingest")["metrics"]["quarantine_reasons"];
    assert_eq!(reasons["date_in_future"].as_u64(), Some(2), "{reasons}");
    let q = mirador_io::read_parquet(&out.join("latest/quarantine.parquet")).unwrap();
    let code = q.column("reason_code").unwrap().str().unwrap().clone();
    let line = q.column("source_line").unwrap().i64().unwrap().clone();
    let mut typo_lines: Vec<i64> = (0..q.height()).filter(|&i| code.get(i) == Some("date_in_future")).filter_map(|i| line.get(i)).collect();
    typo_lines.sort_unstable();
    assert_eq!(typo_lines, [101, usd as i64 + 1]);
    // The next nights run on.
    let sep = files(dir.path(), "sep.csv", "2023-09-01", "2023-10-01", false);
    ok(&night(&out, &sep));
    let oct = files(dir.path(), "oct.csv", "2023-10-01", "2023-11-01", false);
    ok(&night(&out, &oct));
}
