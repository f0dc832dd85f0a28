//! A parquet file's numbers and dates are validated as the file types them, without a detour
//! through text: the result must be the one the same values give as text.

use std::collections::BTreeMap;
use std::path::Path;

use mirador_ingest::{IngestParams, Ingested, ingest_sources};
use mirador_pipeline::SourceSpec;
use polars::prelude::*;

/// Declarations covering every rule a typed value meets: good rows, repeats, and each kind of
/// bad number, date, label and code, with nulls in mandatory and optional columns.
fn declarations() -> DataFrame {
    let n = 50;
    let pick = |i: usize, bad: usize, good: f64, value: f64| if i % 15 == bad { value } else { good };
    let mut df = df!(
        "declaration_id" => (0..n).map(|i| format!("D{i}")).collect::<Vec<_>>(),
        "item_no" => (0..n).map(|i| match i % 15 { 1 => Some(0), 2 => None, _ => Some(1) }).collect::<Vec<_>>(),
        "date" => (0..n).map(|i| if i % 15 == 3 { 3_000 } else { 19_000 + i as i32 }).collect::<Vec<i32>>(),
        "importer_id" => (0..n).map(|i| format!("IMP{}", i % 7)).collect::<Vec<_>>(),
        "hs_code" => (0..n).map(|i| if i % 15 == 4 { 1_234 } else { 10_121 + (i % 3) as i64 * 100_000 }).collect::<Vec<i64>>(),
        "origin_country" => (0..n).map(|i| if i % 15 == 5 { "WLD" } else { "CN" }).collect::<Vec<_>>(),
        "tax_rate_pct" => (0..n).map(|i| pick(i, 6, 8.0, 5_000.0)).collect::<Vec<_>>(),
        "net_mass_kg" => (0..n).map(|i| match i % 15 { 7 => Some(f64::NAN), 8 => None, 9 => Some(-0.0), _ => Some(10.5 + i as f64) }).collect::<Vec<_>>(),
        "item_price" => (0..n).map(|i| pick(i, 10, 1_000.25 * i as f64, f64::INFINITY)).collect::<Vec<_>>(),
        "quantity" => (0..n).map(|i| if i % 15 == 11 { Some(-2.0) } else { Some(0.1) }).collect::<Vec<_>>(),
        "currency" => (0..n).map(|i| if i % 15 == 12 { "usd" } else { "USD" }).collect::<Vec<_>>(),
        "fraud" => (0..n).map(|i| match i % 15 { 13 => Some(3i8), 14 => None, _ => Some((i % 2) as i8) }).collect::<Vec<_>>(),
    )
    .unwrap();
    df.with_column(df.column("date").unwrap().cast(&DataType::Date).unwrap()).unwrap();
    // Two good rows again, as they were (exact duplicates), and two with another mass.
    for at in [30, 32] {
        df.vstack_mut_owned(df.slice(at, 1)).unwrap();
    }
    for at in [45, 47] {
        let mut again = df.slice(at, 1);
        again.with_column(Column::new("net_mass_kg".into(), [Some(1.0)])).unwrap();
        df.vstack_mut_owned(again).unwrap();
    }
    df
}

fn ingest(df: &mut DataFrame, dir: &Path, name: &str) -> Ingested {
    let path = dir.join(name);
    mirador_io::write_parquet(df, &path).unwrap();
    let spec = SourceSpec { paths: vec![path], ..Default::default() };
    let sources = BTreeMap::from([("declarations".to_owned(), spec)]);
    ingest_sources(&sources, Path::new("."), &IngestParams { min_accepted_share: 0.0, ..IngestParams::default() }).unwrap()
}

#[test]
fn typed_parquet_values_ingest_as_their_text_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut typed = declarations();
    let mut text = typed.clone();
    for name in typed.get_column_names_owned() {
        text.with_column(text.column(&name).unwrap().cast(&DataType::String).unwrap()).unwrap();
    }
    let a = ingest(&mut typed, dir.path(), "typed.parquet");
    let b = ingest(&mut text, dir.path(), "text.parquet");
    let r = a.reconciliation["declarations"];
    assert_eq!(r.rows_in, 54);
    assert!(r.accepted > 10 && r.quarantined > 20, "{r:?}");
    // Each ingest has its own categorical mappings: compare the text.
    let text_of = |df: &DataFrame| {
        let columns = df.columns().iter().map(|c| if c.dtype().is_categorical() { c.cast(&DataType::String).unwrap() } else { c.clone() });
        DataFrame::new(df.height(), columns.collect()).unwrap()
    };
    assert!(text_of(&a.declarations).equals_missing(&text_of(&b.declarations)), "{}\n{}", a.declarations, b.declarations);
    let without_file = |q: &DataFrame| q.drop("source_file").unwrap();
    assert!(without_file(&a.quarantine).equals_missing(&without_file(&b.quarantine)), "{}\n{}", a.quarantine, b.quarantine);
    // Each bad kind was met.
    let codes = a.reasons.keys().map(String::as_str).collect::<Vec<_>>();
    for code in [
        "bad_item_no",
        "date_out_of_range",
        "hs_length",
        "not_a_country",
        "out_of_range",
        "not_a_number",
        "missing_value",
        "negative_value",
        "bad_label",
        "duplicate",
        "conflicting_duplicate",
    ] {
        assert!(codes.contains(&code), "{code} not met: {codes:?}");
    }
    assert_eq!(a.declaration_stats.hs_leading_zero_restored, b.declaration_stats.hs_leading_zero_restored);
    assert!(a.declaration_stats.hs_leading_zero_restored > 0);
}
