//! The engine's cluster: a scheduler and two executors, processes of the `mirador` binary, run
//! Mirador's plans and give what the local stages give.

use std::path::{Path, PathBuf};

use mirador_engine::arrow::record_batch::RecordBatch;
use mirador_engine::cluster::{LocalCluster, LocalClusterOptions};
use mirador_engine::{Engine, compare};
use mirador_gap::PeriodGrain;
use mirador_schema::catalog::gap_by_chapter;
use mirador_schema::col;

use crate::cli::{mirador, repo};

/// The bundled sample's nightly run, committed under `dir`: its run directory.
fn sample_run(dir: &Path) -> PathBuf {
    let runs = dir.join("runs");
    let o = mirador(&["-q", "run", "pipelines/nightly.toml", "--out", runs.to_str().unwrap()], &repo());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    runs.join("latest")
}

/// A scheduler and two executors of this build's `mirador`, their scratch under `work`.
fn two_executors(work: &Path) -> LocalCluster {
    let options =
        LocalClusterOptions { program: env!("CARGO_BIN_EXE_mirador").into(), executors: 2, port: 0, vcores: 2, work_dir: work.to_owned() };
    LocalCluster::up(&options).unwrap()
}

/// Every row of the parquet file, or directory of files, `path`, read in this process.
fn read(local: &Engine, path: &Path) -> Vec<RecordBatch> {
    local.register_parquet("read", path).unwrap();
    local.sql("SELECT * FROM read").unwrap()
}

#[test]
fn a_two_executor_cluster_sums_the_gap_by_chapter_as_the_local_stage_does() {
    let dir = tempfile::tempdir().unwrap();
    let run = sample_run(dir.path());
    let cluster = two_executors(&dir.path().join("cluster"));
    assert_eq!(cluster.executor_pids().len(), 2);
    let engine = Engine::connect(&cluster.address()).unwrap();
    assert!(engine.location().starts_with("ballista://127.0.0.1:"));
    let on_cluster = engine.gap_by_chapter(&run.join("gap_by_cell.parquet")).unwrap();

    let local = Engine::local().unwrap();
    let expected = read(&local, &run.join("gap_by_chapter.parquet"));
    let rows: usize = expected.iter().map(|b| b.num_rows()).sum();
    assert!(rows > 20, "{rows} chapter x period rows in the sample run");
    let differences = compare::differences(&expected, &on_cluster, &[col::HS2, col::PERIOD], 1e-9).unwrap();
    assert!(differences.is_empty(), "{differences:#?}");

    // In the stage's order too: largest lost duty first.
    let lost: Vec<f64> = on_cluster
        .iter()
        .flat_map(|b| {
            let c = b.column_by_name(gap_by_chapter::LOST_DUTY_USD).unwrap();
            c.as_any().downcast_ref::<mirador_engine::arrow::array::Float64Array>().unwrap().values().to_vec()
        })
        .collect();
    assert!(lost.windows(2).all(|w| w[0] >= w[1]), "{lost:?}");

    // Every declaration's exposure: the map and the join of the stage, on the executors.
    // (pipelines/params/revenue_gap.toml: yearly cells.)
    let on_cluster =
        engine.mirror_exposure(&run.join("declarations.parquet"), &run.join("gap_by_cell.parquet"), PeriodGrain::Year).unwrap();
    let expected = read(&local, &run.join("mirror_exposure.parquet"));
    let rows: usize = expected.iter().map(|b| b.num_rows()).sum();
    assert!(rows > 10_000, "{rows} declaration items in the sample run");
    let differences = compare::differences(&expected, &on_cluster, &[col::DECLARATION_ID, col::ITEM_NO], 1e-9).unwrap();
    assert!(differences.is_empty(), "{differences:#?}");
}

/// The outputs a run's manifest records: dataset, rows, sha256, file.
fn outputs(run: &Path) -> Vec<(String, u64, String, String)> {
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    let field = |o: &serde_json::Value, k: &str| o[k].clone();
    manifest["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let text = |k: &str| field(o, k).as_str().unwrap().to_owned();
            (text("dataset"), field(o, "rows").as_u64().unwrap(), text("sha256"), text("path"))
        })
        .collect()
}

#[test]
fn a_nightly_run_on_the_engine_gives_every_dataset_of_the_local_run() {
    let dir = tempfile::tempdir().unwrap();
    let local_run = sample_run(dir.path());
    let cluster = two_executors(&dir.path().join("cluster"));
    let out = dir.path().join("on-engine");
    let o = mirador(&["run", "pipelines/nightly.toml", "--out", out.to_str().unwrap(), "--engine", &cluster.address()], &repo());
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    // The log says where each stage runs, and why the others run here.
    assert!(log.contains("On the engine ballista://127.0.0.1:") && log.contains("stage=\"revenue_gap\""), "{log}");
    assert!(log.contains("Runs here, not on the engine: scoring against the fitted peers"), "{log}");
    let engine_run = out.join("latest");

    // Committed as a local run is: its manifest records the engine revenue_gap ran on.
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(engine_run.join("manifest.json")).unwrap()).unwrap();
    let gap = manifest["stages"].as_array().unwrap().iter().find(|s| s["name"] == "revenue_gap").unwrap();
    assert_eq!(gap["metrics"]["engine"].as_str(), Some(cluster.address().as_str()), "{gap:#}");

    // Every dataset of the local run, the same rows in the same order: byte for byte, or else
    // text and integers exactly and floats to 1e-9 relative (sums in another order).
    let (expected, actual) = (outputs(&local_run), outputs(&engine_run));
    let names = |o: &[(String, u64, String, String)]| o.iter().map(|(d, ..)| d.clone()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(names(&expected), names(&actual));
    assert!(expected.len() > 20, "{expected:?}");
    let local = Engine::local().unwrap();
    for (dataset, rows, sha256, file) in &expected {
        let (_, found_rows, found_sha256, found_file) = actual.iter().find(|(d, ..)| d == dataset).unwrap();
        assert_eq!((rows, file), (found_rows, found_file), "{dataset}");
        if sha256 != found_sha256 {
            let differences =
                compare::differences(&read(&local, &local_run.join(file)), &read(&local, &engine_run.join(file)), &[], 1e-9).unwrap();
            assert!(differences.is_empty(), "{dataset}: {differences:#?}");
        }
    }
}

/// Whether `dir` holds a file at any depth.
fn holds_a_file(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let p = e.path();
            if p.is_dir() { holds_a_file(&p) } else { true }
        })
    })
}

#[test]
fn an_executor_killed_midway_leaves_the_output_of_an_undisturbed_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = sample_run(dir.path());
    // Forty copies of the sample's declarations: a job long enough to be cut in the middle.
    let declarations = dir.path().join("declarations");
    std::fs::create_dir(&declarations).unwrap();
    for i in 0..40 {
        std::fs::hard_link(run.join("declarations.parquet"), declarations.join(format!("part-{i:02}.parquet"))).unwrap();
    }
    let cells = run.join("gap_by_cell.parquet");
    let expected = dir.path().join("expected");
    let rows = Engine::local().unwrap().write_mirror_exposure(&declarations, &cells, PeriodGrain::Year, &expected).unwrap();

    let work = dir.path().join("cluster");
    let mut cluster = two_executors(&work);
    let engine = Engine::connect(&cluster.address()).unwrap();
    let actual = dir.path().join("actual");
    let job = {
        let (declarations, cells, actual) = (declarations.clone(), cells.clone(), actual.clone());
        std::thread::spawn(move || engine.write_mirror_exposure(&declarations, &cells, PeriodGrain::Year, &actual))
    };
    // Once executor 0 holds shuffle files (finished map tasks the job still needs), it dies.
    let started = std::time::Instant::now();
    while !holds_a_file(&work.join("executor-0")) {
        assert!(started.elapsed().as_secs() < 120, "executor 0 wrote no shuffle file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!job.is_finished(), "the job ended before executor 0 could be killed: make it longer");
    cluster.kill_executor(0).unwrap();
    assert_eq!(job.join().unwrap().unwrap(), rows);

    let local = Engine::local().unwrap();
    let (e, a) = (read(&local, &expected), read(&local, &actual));
    // Rows are keyed by their declaration item; the copies' rows are alike.
    let differences = compare::differences(&e, &a, &[col::DECLARATION_ID, col::ITEM_NO], 1e-9).unwrap();
    assert!(differences.is_empty(), "{differences:#?}");
}

#[test]
fn a_run_whose_engine_cannot_be_reached_fails_naming_it_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("ballista://127.0.0.1:{port}");
    let out = dir.path().join("out");
    let o = mirador(&["-q", "run", "pipelines/nightly.toml", "--out", out.to_str().unwrap(), "--engine", &address], &repo());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("stage `revenue_gap` failed: on the engine at {address}")), "{stderr}");
    assert!(!out.join("latest").exists());
    assert_eq!(
        std::fs::read_dir(out.join("runs"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count(),
        0
    );

    // An address that is not one is refused before anything runs.
    let out = dir.path().join("never");
    let o = mirador(&["-q", "run", "pipelines/nightly.toml", "--out", out.to_str().unwrap(), "--engine", "127.0.0.1:50050"], &repo());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--engine / MIRADOR_ENGINE: engine address \"127.0.0.1:50050\": expected ballista://HOST:PORT"), "{stderr}");
    assert!(!out.exists());
}
