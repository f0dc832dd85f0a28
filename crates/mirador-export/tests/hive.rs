//! `export_hive` on small committed runs made here: what readers get back, the key only in the
//! paths, the null partition, same bytes twice, failures that leave no export, clear errors.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mirador_export::{ExportError, ExportManifest, ExportOptions, MANIFEST, export_hive};
use polars::prelude::*;

/// Periods of the declarations, deliberately interleaved so that partitioning reorders rows.
const PERIODS: &[&str] = &["2023-02", "2023-01", "2023-02", "2023-03", "2023-01", "2023-01", "2023-03", "2023-02"];

fn declarations() -> DataFrame {
    let n = PERIODS.len();
    df!(
        "declaration_id" => (0..n).map(|i| format!("D{:03}", i / 2)).collect::<Vec<_>>(),
        "item_no" => (0..n).map(|i| (i % 2) as i32 + 1).collect::<Vec<_>>(),
        "period" => PERIODS,
        "importer_id" => (0..n).map(|i| format!("IMP{}", i % 3)).collect::<Vec<_>>(),
        "value_usd" => (0..n).map(|i| i as f64 * 10.5).collect::<Vec<_>>(),
        "courier_id" => (0..n).map(|i| (i % 2 == 0).then(|| format!("C{i}"))).collect::<Vec<_>>(),
    )
    .unwrap()
}

/// A per-declaration dataset: the declarations' keys and scores.
fn scores(declarations: &DataFrame) -> DataFrame {
    let n = declarations.height();
    let mut df = declarations.select(["declaration_id", "item_no"]).unwrap();
    df.with_column(Column::new("undervaluation_score".into(), (0..n).map(|i| 1.0 / (i as f64 + 1.0)).collect::<Vec<_>>())).unwrap();
    df.with_column(Column::new("undervaluation_flag".into(), (0..n).map(|i| i % 3 == 0).collect::<Vec<_>>())).unwrap();
    df
}

fn quarantine() -> DataFrame {
    let raw = [
        r#"{"declaration_id":"X1","date":"2023-03-04","hs_code":"??"}"#,
        r#"{"declaration_id":"X2","date":"garbage"}"#,
        r#"{"reporter":"KE","period":"2023"}"#,
        r#"{"declaration_id":"X3","date":"2023-01-31"}"#,
        r#"{"declaration_id":"X4","date":"2023-13-01"}"#,
    ];
    df!(
        "dataset" => ["declarations", "declarations", "mirror_flows", "declarations", "declarations"],
        "source_file" => ["d.csv"; 5],
        "source_line" => [2i64, 3, 9, 5, 6],
        "reason_code" => ["hs_code_invalid", "date_invalid", "period_invalid", "mass_negative", "date_invalid"],
        "column" => ["hs_code", "date", "period", "net_mass_kg", "date"],
        "reason" => ["r"; 5],
        "raw_row" => raw,
    )
    .unwrap()
}

/// Writes a committed run of `datasets` into `dir` (files and a manifest stating their rows and
/// checksums, as the runner writes them).
fn write_run(dir: &Path, datasets: &[(&str, DataFrame)]) {
    let mut outputs = Vec::new();
    for (id, df) in datasets {
        let mut df = df.clone();
        let path = dir.join(format!("{id}.parquet"));
        let sha256 = mirador_io::write_parquet(&mut df, &path).unwrap();
        outputs.push(serde_json::json!({"dataset": id, "path": format!("{id}.parquet"), "rows": df.height(), "sha256": sha256}));
    }
    let manifest = serde_json::json!({
        "mirador_version": "0.1.0", "pipeline": "t", "run_id": "t-abc", "run_key": "abc", "seed": 1,
        "config_sha256": "x", "started_at": 0, "seconds": 0.0, "reused_from": null,
        "inputs": [], "stages": [], "outputs": outputs, "checks": []
    });
    mirador_io::write_bytes(&dir.join("manifest.json"), serde_json::to_string_pretty(&manifest).unwrap().as_bytes()).unwrap();
}

fn standard_run(dir: &Path) {
    let d = declarations();
    write_run(
        dir,
        &[("declarations", d.clone()), ("quarantine", quarantine()), ("kmeans_scores", scores(&d)), ("fraud_scores", scores(&d))],
    );
}

fn all() -> ExportOptions {
    ExportOptions::default()
}

fn manifest_of(out: &Path) -> ExportManifest {
    serde_json::from_slice(&fs::read(out.join(MANIFEST)).unwrap()).unwrap()
}

/// Every file under `dir`, relative path to bytes.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push((p.strip_prefix(root).unwrap().to_owned(), fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The rows of `df` ordered by `periods` (stable; `None` last), with the period as a last column
/// `period` (replacing one of that name): what a reader of the partitions should get.
fn expected(df: &DataFrame, periods: &[Option<String>]) -> DataFrame {
    let mut order: Vec<usize> = (0..df.height()).collect();
    order.sort_by(|&a, &b| match (&periods[a], &periods[b]) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let idx = IdxCa::from_vec("i".into(), order.iter().map(|&i| i as IdxSize).collect());
    let mut out = df.take(&idx).unwrap();
    if out.get_column_names().iter().any(|n| n.as_str() == "period") {
        out = out.drop("period").unwrap();
    }
    let p: Vec<Option<&str>> = order.iter().map(|&i| periods[i].as_deref()).collect();
    out.with_column(Column::new("period".into(), p)).unwrap();
    out
}

/// The period of a path's `period=<key>` directory (`None` for the null partition).
fn period_in(path: &str) -> Option<String> {
    let key = path.split('/').find_map(|s| s.strip_prefix("period=")).unwrap();
    (key != "__HIVE_DEFAULT_PARTITION__").then(|| key.to_owned())
}

/// A dataset read back from its partitions, in the manifest's order, the period taken from each
/// file's path; asserts that no file holds the key.
fn read_back(out: &Path, dataset: &str) -> DataFrame {
    let m = manifest_of(out);
    let d = m.datasets.iter().find(|d| d.dataset == dataset).unwrap();
    let mut all: Option<DataFrame> = None;
    for f in &d.files {
        let mut df = mirador_io::read_parquet(&out.join(&f.path)).unwrap();
        assert!(!df.get_column_names().iter().any(|n| n.as_str() == "period"), "{} holds the key", f.path);
        assert_eq!(df.height(), f.rows);
        let p = period_in(&f.path);
        df.with_column(Column::new("period".into(), vec![p.as_deref(); f.rows])).unwrap();
        match &mut all {
            None => all = Some(df),
            Some(a) => drop(a.vstack_mut(&df).unwrap()),
        }
    }
    all.unwrap()
}

fn declaration_periods() -> Vec<Option<String>> {
    PERIODS.iter().map(|p| Some((*p).to_owned())).collect()
}

fn quarantine_periods() -> Vec<Option<String>> {
    [Some("2023-03"), None, None, Some("2023-01"), None].iter().map(|p| p.map(str::to_owned)).collect()
}

#[test]
fn every_dataset_reads_back_as_the_runs_rows_by_period_without_the_key_in_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let (run, out) = (dir.path().join("run"), dir.path().join("export"));
    standard_run(&run);
    let done = export_hive(&run, &out, &all()).unwrap();
    assert!(!done.unchanged);
    assert_eq!(done.absent, ["mirror_exposure"]);
    let m = manifest_of(&out);
    assert_eq!(m, done.manifest);
    let names: Vec<&str> = m.datasets.iter().map(|d| d.dataset.as_str()).collect();
    assert_eq!(names, ["declarations", "quarantine", "kmeans_scores", "fraud_scores"]);

    let d = declarations();
    for (id, df, periods) in [
        ("declarations", d.clone(), declaration_periods()),
        ("kmeans_scores", scores(&d), declaration_periods()),
        ("fraud_scores", scores(&d), declaration_periods()),
        ("quarantine", quarantine(), quarantine_periods()),
    ] {
        let back = read_back(&out, id);
        let want = expected(&df, &periods);
        assert!(back.equals_missing(&want), "{id}:\n{back}\n{want}");
        let entry = m.datasets.iter().find(|e| e.dataset == id).unwrap();
        assert_eq!((entry.rows_in, entry.rows_written), (df.height(), df.height()), "{id}");
        assert_eq!(entry.dropped_column.as_deref(), (id == "declarations").then_some("period"));
        assert!(!entry.columns.iter().any(|c| c.name == "period"), "{id}");
    }
    // A dataset's directory holds its partitions' parquet files and nothing else.
    for (path, _) in tree(&out) {
        let p = path.to_str().unwrap();
        assert!(p == MANIFEST || (p.ends_with("/part-00000.parquet") && p.contains("/period=")), "{p}");
    }
}

#[test]
fn quarantined_rows_without_a_date_go_to_the_null_partition() {
    let dir = tempfile::tempdir().unwrap();
    let (run, out) = (dir.path().join("run"), dir.path().join("export"));
    standard_run(&run);
    export_hive(&run, &out, &ExportOptions { datasets: vec!["quarantine".into()], ..all() }).unwrap();
    let q = &manifest_of(&out).datasets[0];
    let periods: Vec<&str> = q.files.iter().map(|f| f.period.as_str()).collect();
    assert_eq!(periods, ["2023-01", "2023-03", "__HIVE_DEFAULT_PARTITION__"]);
    assert_eq!(q.rows_without_period, 3);
    assert!(out.join("quarantine/period=__HIVE_DEFAULT_PARTITION__/part-00000.parquet").is_file());
    // Another date format of the declarations source is honoured.
    let run2 = dir.path().join("run2");
    let raw = [r#"{"Date":"04/03/2023"}"#, r#"{"Date":"2023-03-04"}"#, r#"{"date":"04/05/2023"}"#];
    let q = df!("dataset" => ["declarations"; 3], "raw_row" => raw, "reason_code" => ["x"; 3]).unwrap();
    write_run(&run2, &[("quarantine", q)]);
    let out2 = dir.path().join("export2");
    let own = ExportOptions { date_format: Some("%d/%m/%Y".into()), date_field: Some("Date".into()), ..all() };
    export_hive(&run2, &out2, &own).unwrap();
    let periods: Vec<(String, usize)> = manifest_of(&out2).datasets[0].files.iter().map(|f| (f.period.clone(), f.rows)).collect();
    assert_eq!(
        periods,
        [("2023-03".to_owned(), 2), ("__HIVE_DEFAULT_PARTITION__".to_owned(), 1)],
        "two rows dated March under the source's header, one in its format, one in ISO; the third has no `Date`"
    );
    // A run that quarantined nothing: one empty file in the null partition, with the columns.
    let run3 = dir.path().join("run3");
    write_run(&run3, &[("quarantine", quarantine().clear())]);
    let out3 = dir.path().join("export3");
    export_hive(&run3, &out3, &all()).unwrap();
    let q = &manifest_of(&out3).datasets[0];
    assert_eq!((q.rows_in, q.rows_written, q.files.len(), q.files[0].rows), (0, 0, 1, 0));
    let empty = mirador_io::read_parquet(&out3.join("quarantine/period=__HIVE_DEFAULT_PARTITION__/part-00000.parquet")).unwrap();
    assert_eq!(empty.schema(), quarantine().schema());
}

#[test]
fn exporting_again_gives_the_same_bytes_and_leaves_an_identical_export_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    standard_run(&run);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    export_hive(&run, &a, &all()).unwrap();
    export_hive(&run, &b, &all()).unwrap();
    assert_eq!(tree(&a), tree(&b));
    let before = tree(&a);
    let again = export_hive(&run, &a, &all()).unwrap();
    assert!(again.unchanged);
    assert_eq!(tree(&a), before);
    // Another selection replaces the earlier export whole: nothing of it is left.
    let fewer = export_hive(&run, &a, &ExportOptions { datasets: vec!["kmeans_scores".into()], ..all() }).unwrap();
    assert!(!fewer.unchanged);
    let names: Vec<String> = fs::read_dir(&a).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, [MANIFEST, "kmeans_scores"]);
    // No temporary or earlier directory is left beside the export.
    let mut siblings: Vec<String> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    siblings.sort();
    assert_eq!(siblings, ["a", "b", "run"]);
}

#[test]
fn the_files_do_not_depend_on_how_many_rows_are_read_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    // Two months of more than a row group each, interleaved in runs of seven rows.
    let n = 600_000;
    let periods: Vec<&str> = (0..n).map(|i| if (i / 7) % 2 == 0 { "2023-01" } else { "2023-02" }).collect();
    let d = df!(
        "declaration_id" => (0..n).map(|i| format!("D{i:07}")).collect::<Vec<_>>(),
        "item_no" => vec![1i32; n],
        "period" => &periods,
        "value_usd" => (0..n).map(|i| (i % 1000) as f64).collect::<Vec<_>>(),
    )
    .unwrap();
    write_run(&run, &[("declarations", d.clone()), ("kmeans_scores", scores(&d))]);
    let (whole, sliced) = (dir.path().join("whole"), dir.path().join("sliced"));
    export_hive(&run, &whole, &ExportOptions { slice_rows: Some(n), ..all() }).unwrap();
    export_hive(&run, &sliced, &ExportOptions { slice_rows: Some(100_003), ..all() }).unwrap();
    assert_eq!(tree(&whole), tree(&sliced));
    let m = manifest_of(&sliced);
    let rows: Vec<usize> = m.datasets[0].files.iter().map(|f| f.rows).collect();
    assert_eq!(rows, [300_001, 299_999]);
    assert!(
        read_back(&sliced, "kmeans_scores")
            .equals_missing(&expected(&scores(&d), &periods.iter().map(|p| Some((*p).to_owned())).collect::<Vec<_>>()))
    );
    // A row that does not line up is named by its row in the file, whatever the slice it is in.
    let mut order: Vec<IdxSize> = (0..n as IdxSize).collect();
    order.swap(250_000, 250_001);
    let swapped = scores(&d).take(&IdxCa::from_vec("i".into(), order)).unwrap();
    let run2 = dir.path().join("run2");
    write_run(&run2, &[("declarations", d), ("kmeans_scores", swapped)]);
    let err = export_hive(&run2, &dir.path().join("x"), &ExportOptions { slice_rows: Some(100_003), ..all() }).unwrap_err();
    assert!(
        err.to_string().contains("kmeans_scores.parquet` row 250001: (D0250001, 1) is not the declarations' row 250001 (D0250000, 1)"),
        "{err}"
    );
}

#[test]
fn a_failure_midway_leaves_no_export_and_the_earlier_one_intact() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let d = declarations();
    // fraud_scores, exported after declarations and kmeans_scores, has two rows swapped.
    let mut swapped = scores(&d);
    let mut order: Vec<IdxSize> = (0..d.height() as IdxSize).collect();
    order.swap(3, 4);
    swapped = swapped.take(&IdxCa::from_vec("i".into(), order)).unwrap();
    write_run(&run, &[("declarations", d.clone()), ("kmeans_scores", scores(&d)), ("fraud_scores", swapped)]);
    let out = dir.path().join("export");
    let err = export_hive(&run, &out, &all()).unwrap_err();
    assert!(err.is_user_error());
    assert!(err.to_string().contains("fraud_scores.parquet` row 4") && err.to_string().contains("do not line up"), "{err}");
    assert!(!out.exists());
    let siblings: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(siblings, ["run"], "the partitions written before the failure are gone");
    // With an earlier export in place, it is left as it was.
    export_hive(&run, &out, &ExportOptions { datasets: vec!["declarations".into()], ..all() }).unwrap();
    let before = tree(&out);
    assert!(export_hive(&run, &out, &all()).is_err());
    assert_eq!(tree(&out), before);
}

fn message(r: Result<mirador_export::Export, ExportError>) -> String {
    let e = r.unwrap_err();
    assert!(e.is_user_error(), "{e}");
    e.to_string()
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    standard_run(&run);
    let out = dir.path().join("export");
    let only = |names: &[&str]| ExportOptions { datasets: names.iter().map(|n| (*n).to_owned()).collect(), ..all() };

    assert!(message(export_hive(&dir.path().join("nope"), &out, &all())).contains("not a committed Mirador run"));
    assert!(message(export_hive(&run, &out, &only(&["gap_by_cell"]))).contains("`gap_by_cell` is not a row-level dataset"));
    assert!(message(export_hive(&run, &out, &only(&["nonsense"]))).contains("`nonsense` is not a dataset"));
    assert!(message(export_hive(&run, &out, &only(&["mirror_exposure"]))).contains("has no `mirror_exposure`"));
    assert!(message(export_hive(&run, &run.join("x"), &all())).contains("inside the run"));
    let stranger = dir.path().join("stranger");
    fs::create_dir(&stranger).unwrap();
    fs::write(stranger.join("notes.txt"), "mine").unwrap();
    assert!(message(export_hive(&run, &stranger, &all())).contains("not a Mirador export"));
    assert_eq!(fs::read_to_string(stranger.join("notes.txt")).unwrap(), "mine");

    // A per-declaration dataset with a row fewer than the declarations.
    let short = dir.path().join("short");
    let d = declarations();
    write_run(&short, &[("declarations", d.clone()), ("kmeans_scores", scores(&d).slice(0, d.height() - 1))]);
    assert!(message(export_hive(&short, &out, &all())).contains("has 7 rows where the declarations have 8"));
    // Without the declarations, per-declaration datasets have no period.
    let orphan = dir.path().join("orphan");
    write_run(&orphan, &[("kmeans_scores", scores(&d))]);
    assert!(message(export_hive(&orphan, &out, &all())).contains("has no declarations"));
    // A file changed after the run committed it, exported or only read for the periods.
    let mut other = declarations().slice(0, 2);
    mirador_io::write_parquet(&mut other, &run.join("declarations.parquet")).unwrap();
    assert!(message(export_hive(&run, &out, &all())).contains("declarations.parquet` is not the file the run committed"));
    assert!(
        message(export_hive(&run, &out, &only(&["kmeans_scores"]))).contains("declarations.parquet` is not the file the run committed")
    );
    // A period that is not a month.
    let odd = dir.path().join("odd");
    let mut bad = declarations();
    bad.with_column(Column::new(
        "period".into(),
        PERIODS.iter().enumerate().map(|(i, p)| if i == 5 { "2023" } else { p }).collect::<Vec<_>>(),
    ))
    .unwrap();
    write_run(&odd, &[("declarations", bad)]);
    assert!(message(export_hive(&odd, &out, &all())).contains("row 6: `period` is `2023`, not a period"));
    // Nor when the declarations only give their periods to another dataset (no path is made of it).
    let mut bad = declarations();
    bad.with_column(Column::new(
        "period".into(),
        PERIODS.iter().enumerate().map(|(i, p)| if i == 2 { "../x" } else { p }).collect::<Vec<_>>(),
    ))
    .unwrap();
    let odd2 = dir.path().join("odd2");
    write_run(&odd2, &[("declarations", bad.clone()), ("kmeans_scores", scores(&bad))]);
    assert!(message(export_hive(&odd2, &out, &only(&["kmeans_scores"]))).contains("row 3: `period` is `../x`, not a period"));
    assert!(!out.exists());
}

/// The export read by polars itself (`scan_parquet` with hive partitioning), through its Python
/// binding where it is installed: each dataset comes back as the run's rows ordered by period,
/// the period read from the paths (null for the null partition). Skipped, saying so, without it.
#[test]
fn polars_reads_the_export_with_hive_partitioning() {
    let probe = Command::new("python3").args(["-c", "import polars"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: python3 with polars is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (run, out, read) = (dir.path().join("run"), dir.path().join("export"), dir.path().join("read"));
    standard_run(&run);
    export_hive(&run, &out, &all()).unwrap();
    fs::create_dir(&read).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_hive.py");
    let o = Command::new("python3")
        .arg(&script)
        .args([&out, &read])
        .args(["declarations", "quarantine", "kmeans_scores", "fraud_scores"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let d = declarations();
    for (id, df, periods) in [
        ("declarations", d.clone(), declaration_periods()),
        ("kmeans_scores", scores(&d), declaration_periods()),
        ("fraud_scores", scores(&d), declaration_periods()),
        ("quarantine", quarantine(), quarantine_periods()),
    ] {
        let back = mirador_io::read_parquet(&read.join(format!("{id}.parquet"))).unwrap();
        let want = expected(&df, &periods);
        let cols: Vec<&str> = want.get_column_names().iter().map(|n| n.as_str()).collect();
        let back = back.select(cols).unwrap();
        assert!(back.equals_missing(&want), "{id}:\n{back}\n{want}");
    }
}
