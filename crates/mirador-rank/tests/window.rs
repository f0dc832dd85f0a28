//! The carried audit window: a chain of runs ranks as one run over the window's declarations.

use std::path::Path;

use mirador_rank::window::{Window, rank_window, rows};
use mirador_rank::{RankParams, rank};
use mirador_schema::catalog::{fraud_scores, kmeans_scores, mirror_exposure, rank_window};
use mirador_synth::{SynthParams, generate};
use polars::prelude::*;

/// A synthetic world's declarations, sorted by date, and made-up evidence of the three stages.
fn world() -> (DataFrame, DataFrame, DataFrame, DataFrame) {
    let d = generate(&SynthParams::small(5)).unwrap().declarations;
    let d = d.sort([mirador_schema::col::DATE], SortMultipleOptions::default().with_maintain_order(true)).unwrap();
    let n = d.height();
    let keys = d.select([mirador_schema::col::DECLARATION_ID, mirador_schema::col::ITEM_NO]).unwrap();
    let u = |i: usize, m: usize| ((i * 7919) % m) as f64 / m as f64;
    let with = |columns: Vec<Column>| {
        let mut f = keys.clone();
        for c in columns {
            f.with_column(c).unwrap();
        }
        f
    };
    let prob: Vec<f64> = (0..n).map(|i| u(i, 101)).collect();
    let fraud = with(vec![
        Column::new(fraud_scores::FRAUD_PROBABILITY.into(), &prob),
        Column::new(fraud_scores::EXPECTED_DUTY_AT_RISK_USD.into(), prob.iter().map(|p| p * 40.0).collect::<Vec<_>>()),
        Column::new(fraud_scores::FRAUD_FLAG.into(), prob.iter().map(|p| *p > 0.8).collect::<Vec<_>>()),
        Column::new(
            fraud_scores::TOP_FEATURES.into(),
            (0..n).map(|i| if i % 3 == 0 { "origin;hs6" } else { "unit_price_usd_per_kg" }).collect::<Vec<_>>(),
        ),
    ]);
    let flag: Vec<bool> = (0..n).map(|i| u(i, 53) > 0.9).collect();
    let kmeans = with(vec![
        Column::new(kmeans_scores::UNDERVALUATION_FLAG.into(), &flag),
        Column::new(kmeans_scores::PRICE_RATIO.into(), (0..n).map(|i| (i % 5 != 0).then(|| 0.2 + u(i, 29))).collect::<Vec<_>>()),
        Column::new(kmeans_scores::UNDERVALUED_DUTY_USD.into(), (0..n).map(|i| u(i, 17) * 90.0).collect::<Vec<_>>()),
    ]);
    let mirror = with(vec![Column::new(mirror_exposure::MIRROR_DUTY_SHARE_USD.into(), (0..n).map(|i| u(i, 13) * 3.0).collect::<Vec<_>>())]);
    (d, fraud, kmeans, mirror)
}

/// Runs the window of one night: the carried directory `from` (if any), the night's rows, into
/// directory `to`; returns the window and the number of days written.
fn night(from: Option<&Path>, tonight: &DataFrame, to: &Path, days: u32) -> (Window, usize) {
    let w = Window::extend(from, tonight, days).unwrap();
    let written = w.write(to).unwrap();
    (w, written)
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn a_chain_of_runs_ranks_as_one_run_over_the_window() {
    let (d, fraud, kmeans, mirror) = world();
    let n = d.height();
    let all = RankParams { window_days: 100_000, ..RankParams::default() };
    let dir = tempfile::tempdir().unwrap();
    // Three "nights", each adding its rows to the window carried from the night before.
    let cuts = [0, n / 3, 2 * n / 3, n];
    let mut previous: Option<std::path::PathBuf> = None;
    let mut window = None;
    for (k, w) in cuts.windows(2).enumerate() {
        let part = |df: &DataFrame| df.slice(w[0] as i64, w[1] - w[0]);
        let tonight = rows(&part(&d), Some(&part(&fraud)), Some(&part(&kmeans)), Some(&part(&mirror))).unwrap();
        let to = dir.path().join(format!("run{k}"));
        let (win, written) = night(previous.as_deref(), &tonight, &to, all.window_days);
        // A night writes its own days; the days before it are linked from the previous run.
        let own_days = tonight.column(rank_window::DATE).unwrap().n_unique().unwrap();
        assert!(written <= own_days, "{written} days written for {own_days} days of declarations");
        if let Some(p) = &previous {
            let carried = files(p);
            assert!(carried.iter().all(|f| files(&to).contains(f)));
            assert!(written < files(&to).len());
        }
        previous = Some(to);
        window = Some(win);
    }
    let window = window.unwrap();
    assert_eq!(window.rows(), n);
    let frame = window.into_frame().unwrap().unwrap();
    let chained = rank_window(&frame, &all).unwrap();
    let whole = rank(&d, Some(&fraud), Some(&kmeans), Some(&mirror), &all).unwrap();
    assert!(chained.equals_missing(&whole), "{chained}\n{whole}");
    assert!(whole.height() > 20);

    // Read back from the last run's files, the window ranks the same.
    let (reread, written) =
        night(previous.as_deref(), &rows(&d.slice(0, 0), None, None, None).unwrap(), &dir.path().join("again"), all.window_days);
    assert_eq!((reread.rows(), written), (n, 0));
    assert!(rank_window(&reread.into_frame().unwrap().unwrap(), &all).unwrap().equals_missing(&whole));

    // Without a model the k-means shortfall ranks, in the window as in one run.
    let (no_model, _) = night(None, &rows(&d, None, Some(&kmeans), None).unwrap(), &dir.path().join("no-model"), all.window_days);
    let whole = rank(&d, None, Some(&kmeans), None, &all).unwrap();
    assert!(rank_window(&no_model.into_frame().unwrap().unwrap(), &all).unwrap().equals_missing(&whole));
}

#[test]
fn old_declarations_leave_the_window_and_reprocessed_ones_replace_theirs() {
    let (d, fraud, kmeans, mirror) = world();
    let dir = tempfile::tempdir().unwrap();
    let first_dir = dir.path().join("first");
    let (first, _) = night(None, &rows(&d, Some(&fraud), Some(&kmeans), Some(&mirror)).unwrap(), &first_dir, 100_000);
    let (from, to) = first.span().unwrap();
    // A night that processes the newest 10 declarations again, without the model this time.
    let n = d.height();
    let last = d.slice(n as i64 - 10, 10);
    let again = rows(&last, None, Some(&kmeans.slice(n as i64 - 10, 10)), None).unwrap();
    let (window, written) = night(Some(&first_dir), &again, &dir.path().join("second"), 100_000);
    assert_eq!(window.rows(), n, "replaced, not added");
    assert!((1..=10).contains(&written));
    let frame = window.into_frame().unwrap().unwrap();
    let prob = frame.column(rank_window::FRAUD_PROBABILITY).unwrap().f64().unwrap();
    assert_eq!(prob.slice(n as i64 - 10, 10).null_count(), 10, "the night's own evidence replaces the carried one");
    assert_eq!(prob.slice(0, n - 10).null_count(), 0);

    // A 30-day window keeps only the declarations of the last 30 days, and their files.
    let short_dir = dir.path().join("short");
    let (short, _) = night(Some(&first_dir), &rows(&d.slice(0, 0), None, None, None).unwrap(), &short_dir, 30);
    let (short_from, short_to) = short.span().unwrap();
    assert_eq!(short_to, to);
    assert!(short_from > from && short.rows() < n && short.rows() > 0, "{from} {short_from} {}", short.rows());
    let (newest, oldest) = (mirador_schema::day::parse(&to).unwrap(), mirador_schema::day::parse(&short_from).unwrap());
    assert!(newest - oldest < 30);
    assert_eq!(files(&short_dir).first().unwrap(), &format!("{short_from}.parquet"));
    assert!(files(&short_dir).iter().filter(|f| f.ends_with(".parquet")).count() <= 30);
}

#[test]
fn a_window_that_differs_from_its_declared_schema_is_not_written() {
    let (d, fraud, kmeans, mirror) = world();
    let dir = tempfile::tempdir().unwrap();
    let tonight = rows(&d, Some(&fraud), Some(&kmeans), Some(&mirror)).unwrap();
    for drifted in [
        tonight.drop(rank_window::PRICE_RATIO).unwrap(),
        tonight.clone().with_column(Column::new("extra".into(), vec![1.0; d.height()])).unwrap().clone(),
    ] {
        let to = dir.path().join("drifted");
        let window = Window::extend(None, &drifted, 100_000).unwrap();
        let err = window.write(&to).unwrap_err().to_string();
        assert!(err.contains("`rank_window`"), "{err}");
        assert!(!to.exists(), "nothing written");
    }
}
