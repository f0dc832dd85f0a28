//! `mirador export` on the bundled sample run: the hive-partitioned copies, the same bytes
//! twice, a kill midway that leaves no export, and bad calls refused with exit code 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use polars::prelude::*;

use crate::cli::{mirador, repo};

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn export(run: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["export", run.to_str().unwrap(), "--layout", "hive", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    mirador(&args, &repo())
}

/// Every file under `dir`, relative path to bytes.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push((p.strip_prefix(root).unwrap().to_owned(), std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    n.sort();
    n
}

#[test]
fn the_sample_run_exports_hive_partitioned_with_its_rows_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let o = mirador(&["-q", "run", "pipelines/nightly.toml", "--out", runs.to_str().unwrap()], &repo());
    assert!(o.status.success(), "{}", text(&o));
    let run: serde_json::Value = serde_json::from_slice(&std::fs::read(runs.join("latest/manifest.json")).unwrap()).unwrap();
    let rows_of = |id: &str| run["outputs"].as_array().unwrap().iter().find(|o| o["dataset"] == id).unwrap()["rows"].as_u64().unwrap();

    let out = dir.path().join("export");
    let o = export(&runs.join("latest"), &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("-> written"), "{}", text(&o));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("_mirador_export.json")).unwrap()).unwrap();
    assert_eq!(m["run_id"], run["run_id"]);
    let datasets = ["declarations", "quarantine", "mirror_exposure", "kmeans_scores", "fraud_scores"];
    assert_eq!(names(&out), ["_mirador_export.json", "declarations", "fraud_scores", "kmeans_scores", "mirror_exposure", "quarantine"]);
    for (i, id) in datasets.iter().enumerate() {
        let d = &m["datasets"][i];
        assert_eq!(d["dataset"], *id);
        assert_eq!(d["rows_in"].as_u64().unwrap(), rows_of(id), "{id}");
        assert_eq!(d["rows_written"], d["rows_in"], "{id}");
        let files = d["files"].as_array().unwrap();
        let sum: u64 = files.iter().map(|f| f["rows"].as_u64().unwrap()).sum();
        assert_eq!(sum, rows_of(id), "{id}");
        // The sample year's twelve months, the same for every per-declaration dataset.
        if *id != "quarantine" {
            let periods: Vec<&str> = files.iter().map(|f| f["period"].as_str().unwrap()).collect();
            assert_eq!(periods, (1..=12).map(|m| format!("2023-{m:02}")).collect::<Vec<_>>(), "{id}");
        }
        // A dataset's directory: partitions only, each holding its parquet file only, none with
        // the key as a column.
        for p in names(&out.join(id)) {
            assert!(p.starts_with("period="), "{id}/{p}");
            assert_eq!(names(&out.join(id).join(&p)), ["part-00000.parquet"], "{id}/{p}");
            let df = mirador_io::read_parquet(&out.join(id).join(&p).join("part-00000.parquet")).unwrap();
            assert!(!df.get_column_names().iter().any(|c| c.as_str() == "period"), "{id}/{p}");
        }
    }
    // The sample's quarantined declarations dated 30 February have no period.
    let q = &m["datasets"][1];
    assert!(q["rows_without_period"].as_u64().unwrap() > 0, "{q}");
    assert!(out.join("quarantine/period=__HIVE_DEFAULT_PARTITION__/part-00000.parquet").is_file());

    read_by_polars(&runs.join("latest"), &out, &datasets, &dir.path().join("read"));
    read_by_datafusion(&out, &m);

    // Again, from the output root: the same export is in place and is left as it is.
    let before = tree(&out);
    let o = export(&runs, &out, &[]);
    assert!(o.status.success() && text(&o).contains("unchanged"), "{}", text(&o));
    assert_eq!(tree(&out), before);
    // Into another directory: the same bytes.
    let other = dir.path().join("other");
    assert!(export(&runs, &other, &[]).status.success());
    assert_eq!(tree(&other), before);
}

/// Each dataset of the export read by DataFusion as a listing table partitioned by `period`
/// (text): the rows of every partition the manifest lists, `period` once, from the paths.
/// DataFusion does not read the null partition as null yet (apache/datafusion#18083): its rows
/// come back with the partition's name as their period.
fn read_by_datafusion(out: &Path, manifest: &serde_json::Value) {
    use mirador_engine::arrow::array::{Array, AsArray};
    use mirador_engine::arrow::datatypes::{DataType, Int64Type};
    let engine = mirador_engine::Engine::local().unwrap();
    for d in manifest["datasets"].as_array().unwrap() {
        let id = d["dataset"].as_str().unwrap();
        engine.register_partitioned(id, &out.join(id)).unwrap();
        let columns = engine.sql(&format!("SELECT * FROM {id} LIMIT 1")).unwrap();
        let schema = columns[0].schema();
        let periods: Vec<_> = schema.fields().iter().filter(|f| f.name() == "period").collect();
        assert_eq!(periods.len(), 1, "{id}: {schema:?}");
        assert_eq!(periods[0].data_type(), &DataType::Utf8, "{id}");
        let mut expected: Vec<(String, i64)> = d["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rows"].as_u64().unwrap() > 0)
            .map(|f| (f["period"].as_str().unwrap_or(mirador_schema::catalog::NULL_PARTITION).to_owned(), f["rows"].as_i64().unwrap()))
            .collect();
        expected.sort();
        let counted = engine.sql(&format!("SELECT period, count(*) FROM {id} GROUP BY period ORDER BY period")).unwrap();
        let mut found = Vec::new();
        for b in &counted {
            let (p, n) = (b.column(0), b.column(1).as_primitive::<Int64Type>());
            for i in 0..b.num_rows() {
                assert!(!p.is_null(i), "{id}: a null period");
                found.push((p.as_string::<i32>().value(i).to_owned(), n.value(i)));
            }
        }
        assert_eq!(found, expected, "{id}");
    }
}

/// Each dataset of the export read by polars with hive partitioning (its Python binding, where
/// installed; `crates/mirador-export/tests/read_hive.py`) is the run's file ordered by period
/// (stable, the null partition last), `period` as read from the paths.
fn read_by_polars(run: &Path, out: &Path, datasets: &[&str], read: &Path) {
    if !Command::new("python3").args(["-c", "import polars"]).output().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped reading with polars: python3 with polars is not installed");
        return;
    }
    std::fs::create_dir_all(read).unwrap();
    let script = repo().join("crates/mirador-export/tests/read_hive.py");
    let o = Command::new("python3").arg(script).arg(out).arg(read).args(datasets).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let declared = mirador_io::read_parquet_columns(&run.join("declarations.parquet"), &["period"]).unwrap();
    let declared: Vec<Option<String>> = declared.column("period").unwrap().str().unwrap().iter().map(|p| p.map(str::to_owned)).collect();
    for id in datasets {
        let df = mirador_io::read_parquet(&run.join(format!("{id}.parquet"))).unwrap();
        let periods: Vec<Option<String>> = if *id == "quarantine" {
            let raw = df.column("raw_row").unwrap().str().unwrap().clone();
            raw.iter().map(|r| r.and_then(|r| mirador_export::raw_row_period(r, mirador_export::RawDate::default()))).collect()
        } else {
            declared.clone()
        };
        let mut order: Vec<usize> = (0..df.height()).collect();
        order.sort_by_key(|&i| (periods[i].is_none(), periods[i].clone()));
        let idx = IdxCa::from_vec("i".into(), order.iter().map(|&i| i as IdxSize).collect());
        let mut want = df.take(&idx).unwrap();
        if want.get_column_names().iter().any(|c| c.as_str() == "period") {
            want = want.drop("period").unwrap();
        }
        let p: Vec<Option<&str>> = order.iter().map(|&i| periods[i].as_deref()).collect();
        want.with_column(Column::new("period".into(), p)).unwrap();
        let back = mirador_io::read_parquet(&read.join(format!("{id}.parquet"))).unwrap();
        let columns: Vec<&str> = want.get_column_names().iter().map(|c| c.as_str()).collect();
        assert_eq!(back.width(), want.width(), "{id}: {:?}", back.get_column_names());
        let back = back.select(columns).unwrap();
        assert!(back.equals_missing(&want), "{id} read back by polars differs from the run's rows by period");
    }
}

#[test]
fn an_export_killed_midway_leaves_no_export_and_the_next_one_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    assert!(mirador(&["-q", "run", "pipelines/nightly.toml", "--out", runs.to_str().unwrap()], &repo()).status.success());
    let out = dir.path().join("exports/nightly");
    let killed = std::process::Command::new(env!("CARGO_BIN_EXE_mirador"))
        .args(["export", runs.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .env("MIRADOR_CRASH_IN_WRITE", "part-00000.parquet")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    assert!(!out.exists(), "nothing where a reader looks");
    let remains = names(out.parent().unwrap());
    assert_eq!(remains.len(), 1, "{remains:?}");
    assert!(remains[0].starts_with(".mirador-tmp-export-nightly-"), "{remains:?}");
    let o = export(&runs, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("removed the remains of 1 interrupted export"), "{}", text(&o));
    assert_eq!(names(out.parent().unwrap()), ["nightly"]);
    let clean = dir.path().join("clean");
    assert!(export(&runs, &clean, &[]).status.success());
    assert_eq!(tree(&out), tree(&clean));
}

#[test]
fn bad_calls_are_refused_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export");
    let o = export(&dir.path().join("no-run"), &out, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("not a committed Mirador run"), "{}", text(&o));
    // A sample run of ingest alone: it has no per-declaration outputs.
    let runs = dir.path().join("runs");
    let o = mirador(&["-q", "run", "pipelines/nightly.toml", "--only", "ingest", "--out", runs.to_str().unwrap()], &repo());
    assert!(o.status.success(), "{}", text(&o));
    for (args, says) in [
        (&["--datasets", "gap_by_cell"][..], "not a row-level dataset"),
        (&["--datasets", "fraud_scores"], "has no `fraud_scores`"),
        (&["--datasets", "declarations,nonsense"], "`nonsense` is not a dataset"),
    ] {
        let o = export(&runs, &out, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }
    let o = mirador(&["export", runs.to_str().unwrap(), "--layout", "flat", "--out", out.to_str().unwrap()], &repo());
    assert!(!o.status.success() && text(&o).contains("invalid value 'flat'"), "{}", text(&o));
    assert!(!out.exists());
    // What the run holds is exported, and the rest named.
    let o = export(&runs, &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("not in the run: mirror_exposure, kmeans_scores, fraud_scores"), "{}", text(&o));
}
