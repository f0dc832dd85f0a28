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
    let on_cluster = engine.mirror_exposure(&run.join("declarations.parquet"), &run.join("gap_by_cell.parquet"), PeriodGrain::Year).unwrap();
    let expected = read(&local, &run.join("mirror_exposure.parquet"));
    let rows: usize = expected.iter().map(|b| b.num_rows()).sum();
    assert!(rows > 10_000, "{rows} declaration items in the sample run");
    let differences = compare::differences(&expected, &on_cluster, &[col::DECLARATION_ID, col::ITEM_NO], 1e-9).unwrap();
    assert!(differences.is_empty(), "{differences:#?}");
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
