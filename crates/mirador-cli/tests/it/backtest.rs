//! `mirador backtest`: a replay of a small shifting world through a pipeline file, the command's
//! errors (exit 1 with a clear message), and all five policies on the public KCS declarations
//! (skipped when ../shared/datasets is absent).

use std::path::Path;

use mirador_schema::catalog::{backtest_summary, backtest_weeks};
use polars::prelude::*;

use crate::cli::{mirador, repo};

fn strs(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name).unwrap().cast(&DataType::String).unwrap().str().unwrap().iter().map(|v| v.unwrap_or("").to_owned()).collect()
}

const POLICIES: [&str; 5] = ["probability", "expected_duty", "mixed", "mixed_exploration", "random"];

/// A pipeline over the world in `world`: ingest, the outcomes feed, the truth, a small model.
fn pipeline(dir: &Path, world: &Path) -> std::path::PathBuf {
    let w = world.display();
    let text = format!(
        r#"name = "bt"
seed = 7
[sources.declarations]
paths = ["{w}/declarations.csv"]
date-format = "%Y-%m-%d"
[sources.fx_rates]
paths = ["{w}/fx_rates.csv"]
[sources.inspection_outcomes]
paths = ["{w}/inspection_outcomes.csv"]
date-format = "%Y-%m-%d"
[sources.ground_truth]
paths = ["{w}/truth_declarations.csv"]
[[stage]]
name = "ingest"
sources = ["declarations", "fx_rates"]
outputs = ["declarations", "mirror_flows", "tariffs", "fx_rates", "quarantine"]
[[stage]]
name = "ingest_outcomes"
sources = ["inspection_outcomes"]
outputs = ["inspection_outcomes", "outcome_quarantine"]
[[stage]]
name = "fraud_model"
inputs = ["declarations"]
outputs = ["fraud_scores", "fraud_rules", "fraud_importance", "fraud_evaluation", "fraud_metrics", "inspection_list", "selection_frontier"]
[stage.params]
n-trees = 150
min-data-in-leaf = 20
"#
    );
    let path = dir.join("bt.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn shifting_world(dir: &Path) -> std::path::PathBuf {
    let world = dir.join("world");
    let o = mirador(
        &["-q", "synth", "--seed", "3", "--declarations", "8000", "--shift-period", "2023-05", "--out", world.to_str().unwrap()],
        &repo(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    world
}

#[test]
fn a_backtest_writes_every_policy_week_by_week_with_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let world = shifting_world(dir.path());
    let file = pipeline(dir.path(), &world);
    let out = dir.path().join("out");
    let args = [
        "-q",
        "backtest",
        file.to_str().unwrap(),
        "--from",
        "2023-06",
        "--to",
        "2023-08",
        "--budget",
        "5%",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = mirador(&args, &repo());
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    for p in POLICIES {
        assert!(stdout.contains(p), "{p} missing from\n{stdout}");
    }
    for f in [
        "backtest_weeks.parquet",
        "backtest_weeks.csv",
        "backtest_summary.parquet",
        "backtest_summary.csv",
        "backtest.json",
        "backtest_cumulative.png",
        "backtest_cumulative.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let weeks = mirador_io::read_parquet(&out.join("backtest_weeks.parquet")).unwrap();
    let policy = strs(&weeks, backtest_weeks::POLICY);
    // 2023-06-01 .. 2023-08-31: 92 days, 14 weeks (the last one of a day).
    for p in POLICIES {
        assert_eq!(policy.iter().filter(|x| *x == p).count(), 14, "{p}");
    }
    let summary = mirador_io::read_parquet(&out.join("backtest_summary.parquet")).unwrap();
    assert_eq!(summary.height(), 10);
    // The world's few broken rows that ingest kept are not in its truth: they are counted.
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("backtest.json")).unwrap()).unwrap();
    assert!(meta["declarations_without_truth"].as_u64().unwrap() < 20, "{meta}");
    // Published atomically: no scratch directory is left beside the output.
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A second run replaces the outputs with the same figures (seeded).
    let o = mirador(&args, &repo());
    assert!(o.status.success());
    let again = mirador_io::read_parquet(&out.join("backtest_weeks.parquet")).unwrap();
    assert!(weeks.equals_missing(&again));

    // The report shows the backtest its `backtest` parameter points at (relative to the
    // pipeline file), and says how to make one when there is none there.
    for (param, shown) in [("backtest = \"out\"", true), ("backtest = \"no-backtest-here\"", false), ("", false)] {
        let report = report_pipeline(dir.path(), &world, param);
        let runs = dir.path().join("runs");
        let o = mirador(&["-q", "run", report.to_str().unwrap(), "--out", runs.to_str().unwrap(), "--force"], &repo());
        assert!(o.status.success(), "{param}: {}", String::from_utf8_lossy(&o.stderr));
        let html = std::fs::read_to_string(runs.join("latest/report/index.html")).unwrap();
        assert!(html.contains("<h2>Backtest</h2>"), "{param}");
        assert_eq!(html.contains("No backtest shown: <code>mirador backtest"), !shown, "{param}");
        assert_eq!(runs.join("latest/report/backtest_cumulative.png").is_file(), shown, "{param}");
        if shown {
            for p in POLICIES {
                assert!(html.contains(&format!("<td>{}</td>", p.replace('_', " "))), "{p} missing from the report's backtest table");
            }
            assert!(html.contains("2023-06 to 2023-08, 5 % of each week"));
        }
    }
}

/// Ingest and the report only, the report stage given `report_params`.
fn report_pipeline(dir: &Path, world: &Path, report_params: &str) -> std::path::PathBuf {
    let w = world.display();
    let text = format!(
        r#"name = "bt-report"
seed = 7
[sources.declarations]
paths = ["{w}/declarations.csv"]
date-format = "%Y-%m-%d"
[sources.fx_rates]
paths = ["{w}/fx_rates.csv"]
[[stage]]
name = "ingest"
sources = ["declarations", "fx_rates"]
outputs = ["declarations", "mirror_flows", "tariffs", "fx_rates", "quarantine"]
[[stage]]
name = "report"
inputs = ["declarations", "quarantine"]
outputs = []
[stage.params]
{report_params}
"#
    );
    let path = dir.join("bt-report.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_months_budgets_and_sources_exit_1_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let file = pipeline(dir.path(), &missing);
    let f = file.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["backtest", f, "--from", "2023-13", "--to", "2023-08"], "--from `2023-13`: not a YYYY-MM month"),
        (&["backtest", f, "--from", "June", "--to", "2023-08"], "--from `June`: not a YYYY-MM month"),
        (&["backtest", f, "--from", "2023-08", "--to", "2023-06"], "ends before"),
        (&["backtest", f, "--from", "2023-06", "--to", "2023-08", "--budget", "0%"], "--budget `0%`"),
        (&["backtest", f, "--from", "2023-06", "--to", "2023-08"], "nowhere/"),
    ];
    for (args, message) in cases {
        let o = mirador(args, &repo());
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: expected `{message}` in\n{stderr}");
    }
}

#[test]
fn on_kcs_all_five_policies_are_reported() {
    let data = repo().join("../shared/datasets/kcs-synthetic/df_syn_train_eng.csv");
    if !data.exists() {
        eprintln!("skipping: {} is not present", data.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kcs");
    // Two months, retrained every 8 weeks, to keep the test short; `just backtest-kcs` replays the year.
    let o = mirador(
        &[
            "-q",
            "backtest",
            "pipelines/kcs.toml",
            "--from",
            "2020-07",
            "--to",
            "2020-08",
            "--retrain-weeks",
            "8",
            "--out",
            out.to_str().unwrap(),
        ],
        &repo(),
    );
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let summary = mirador_io::read_parquet(&out.join("backtest_summary.parquet")).unwrap();
    let policy = strs(&summary, backtest_summary::POLICY);
    for p in POLICIES {
        assert_eq!(policy.iter().filter(|x| *x == p).count(), 2, "{p}");
    }
    let precision = summary.column(backtest_summary::PRECISION).unwrap().f64().unwrap().clone();
    assert!(precision.iter().all(|p| p.is_some_and(|p| (0.0..=1.0).contains(&p))));
}
