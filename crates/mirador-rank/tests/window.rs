//! The carried audit window: a chain of runs ranks as one run over the window's declarations.

use mirador_rank::window::{extend, rank_window, rows, span};
use mirador_rank::{RankParams, rank};
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
        Column::new("fraud_probability".into(), &prob),
        Column::new("expected_duty_at_risk_usd".into(), prob.iter().map(|p| p * 40.0).collect::<Vec<_>>()),
        Column::new("fraud_flag".into(), prob.iter().map(|p| *p > 0.8).collect::<Vec<_>>()),
        Column::new(
            "top_features".into(),
            (0..n).map(|i| if i % 3 == 0 { "origin;hs6" } else { "unit_price_usd_per_kg" }).collect::<Vec<_>>(),
        ),
    ]);
    let flag: Vec<bool> = (0..n).map(|i| u(i, 53) > 0.9).collect();
    let kmeans = with(vec![
        Column::new("undervaluation_flag".into(), &flag),
        Column::new("price_ratio".into(), (0..n).map(|i| (i % 5 != 0).then(|| 0.2 + u(i, 29))).collect::<Vec<_>>()),
        Column::new("undervalued_duty_usd".into(), (0..n).map(|i| u(i, 17) * 90.0).collect::<Vec<_>>()),
    ]);
    let mirror = with(vec![Column::new("mirror_duty_share_usd".into(), (0..n).map(|i| u(i, 13) * 3.0).collect::<Vec<_>>())]);
    (d, fraud, kmeans, mirror)
}

#[test]
fn a_chain_of_runs_ranks_as_one_run_over_the_window() {
    let (d, fraud, kmeans, mirror) = world();
    let n = d.height();
    let all = RankParams { window_days: 100_000, ..RankParams::default() };
    // Three "nights", each adding its rows to the carried window.
    let cuts = [0, n / 3, 2 * n / 3, n];
    let mut window: Option<DataFrame> = None;
    for w in cuts.windows(2) {
        let part = |df: &DataFrame| df.slice(w[0] as i64, w[1] - w[0]);
        let tonight = rows(&part(&d), Some(&part(&fraud)), Some(&part(&kmeans)), Some(&part(&mirror))).unwrap();
        window = Some(extend(window, tonight, all.window_days).unwrap());
    }
    let window = window.unwrap();
    assert_eq!(window.height(), n);
    let chained = rank_window(&window, &all).unwrap();
    let whole = rank(&d, Some(&fraud), Some(&kmeans), Some(&mirror), &all).unwrap();
    assert!(chained.equals_missing(&whole), "{chained}\n{whole}");
    assert!(whole.height() > 20);

    // Without a model the k-means shortfall ranks, in the window as in one run.
    let no_model = extend(None, rows(&d, None, Some(&kmeans), None).unwrap(), all.window_days).unwrap();
    let whole = rank(&d, None, Some(&kmeans), None, &all).unwrap();
    assert!(rank_window(&no_model, &all).unwrap().equals_missing(&whole));

    // Written and read back, the window ranks the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("window.parquet");
    let mut written = window.clone();
    mirador_io::write_parquet(&mut written, &path).unwrap();
    let read = mirador_io::read_parquet(&path).unwrap();
    assert!(rank_window(&read, &all).unwrap().equals_missing(&chained));
    // and takes the next night's rows.
    let again = extend(Some(read), rows(&d.slice(0, 0), None, None, None).unwrap(), all.window_days).unwrap();
    assert_eq!(again.height(), n);
}

#[test]
fn old_declarations_leave_the_window_and_reprocessed_ones_replace_theirs() {
    let (d, fraud, kmeans, mirror) = world();
    let first = rows(&d, Some(&fraud), Some(&kmeans), Some(&mirror)).unwrap();
    let (from, to) = span(&first).unwrap().unwrap();
    // A night that processes the newest 10 declarations again, without the model this time.
    let n = d.height();
    let last = d.slice(n as i64 - 10, 10);
    let window = extend(Some(first.clone()), rows(&last, None, Some(&kmeans.slice(n as i64 - 10, 10)), None).unwrap(), 100_000).unwrap();
    assert_eq!(window.height(), n, "replaced, not added");
    let prob = window.column("fraud_probability").unwrap().f64().unwrap();
    assert_eq!(prob.slice(n as i64 - 10, 10).null_count(), 10, "the night's own evidence replaces the carried one");
    assert_eq!(prob.slice(0, n - 10).null_count(), 0);

    // A 30-day window keeps only the declarations of the last 30 days.
    let short = extend(None, first, 30).unwrap();
    let (short_from, short_to) = span(&short).unwrap().unwrap();
    assert_eq!(short_to, to);
    assert!(short_from > from && short.height() < n && short.height() > 0, "{from} {short_from} {}", short.height());
    let newest = chrono::NaiveDate::parse_from_str(&to, "%Y-%m-%d").unwrap();
    let oldest = chrono::NaiveDate::parse_from_str(&short_from, "%Y-%m-%d").unwrap();
    assert!((newest - oldest).num_days() < 30);
}
