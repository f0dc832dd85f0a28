//! The engine's cluster: a scheduler and two executors, processes of the `mirador` binary, run
//! Mirador's plans and give what the local stages give.

use mirador_engine::cluster::{LocalCluster, LocalClusterOptions};
use mirador_engine::{Engine, compare};
use mirador_gap::PeriodGrain;
use mirador_schema::catalog::gap_by_chapter;
use mirador_schema::col;

use crate::cli::{mirador, repo};

#[test]
fn a_two_executor_cluster_sums_the_gap_by_chapter_as_the_local_stage_does() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let o = mirador(&["-q", "run", "pipelines/nightly.toml", "--out", runs.to_str().unwrap()], &repo());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = runs.join("latest");

    let options = LocalClusterOptions {
        program: env!("CARGO_BIN_EXE_mirador").into(),
        executors: 2,
        port: 0,
        vcores: 2,
        work_dir: dir.path().join("cluster"),
    };
    let cluster = LocalCluster::up(&options).unwrap();
    assert_eq!(cluster.executor_pids().len(), 2);
    let engine = Engine::connect(&cluster.address()).unwrap();
    assert!(engine.location().starts_with("ballista://127.0.0.1:"));
    let on_cluster = engine.gap_by_chapter(&run.join("gap_by_cell.parquet")).unwrap();

    let local = Engine::local().unwrap();
    local.register_parquet("expected", &run.join("gap_by_chapter.parquet")).unwrap();
    let expected = local.sql("SELECT * FROM expected").unwrap();
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
    local.register_parquet("expected_exposure", &run.join("mirror_exposure.parquet")).unwrap();
    let expected = local.sql("SELECT * FROM expected_exposure").unwrap();
    let rows: usize = expected.iter().map(|b| b.num_rows()).sum();
    assert!(rows > 10_000, "{rows} declaration items in the sample run");
    let differences = compare::differences(&expected, &on_cluster, &[col::DECLARATION_ID, col::ITEM_NO], 1e-9).unwrap();
    assert!(differences.is_empty(), "{differences:#?}");
}
