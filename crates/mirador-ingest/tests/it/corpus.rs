//! A corpus of broken inputs, each with its expected outcome: accepted, quarantined with a given
//! reason, or a clear error naming the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mirador_ingest::{IngestParams, Ingested, ingest_sources};
use mirador_pipeline::SourceSpec;
use mirador_schema::text::Text;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(name)
}

fn ingest_with(name: &str, tweak: impl FnOnce(&mut SourceSpec)) -> Result<Ingested, mirador_ingest::IngestError> {
    let mut spec = SourceSpec { paths: vec![corpus(name)], ..Default::default() };
    tweak(&mut spec);
    let sources = BTreeMap::from([("declarations".to_owned(), spec)]);
    ingest_sources(&sources, Path::new("."), &IngestParams { min_accepted_share: 0.0, ..IngestParams::default() })
}

fn ingest(name: &str) -> Ingested {
    ingest_with(name, |_| {}).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn reasons(out: &Ingested) -> Vec<String> {
    let ca = out.quarantine.column("reason_code").unwrap().str().unwrap().clone();
    ca.iter().map(|v| v.unwrap().to_owned()).collect()
}

fn reconciles(out: &Ingested) {
    let r = out.reconciliation["declarations"];
    assert_eq!(r.rows_in, r.accepted + r.quarantined);
    assert_eq!(r.accepted, out.declarations.height());
}

#[test]
fn bom_is_stripped_and_labels_are_optional() {
    let out = ingest("bom.csv");
    reconciles(&out);
    assert_eq!(out.declarations.height(), 2);
    let fraud = out.declarations.column("fraud").unwrap();
    assert_eq!(fraud.null_count(), 1);
}

#[test]
fn semicolons_and_decimal_commas_with_a_day_first_format() {
    let out = ingest_with("semicolon_decimal_comma.csv", |s| {
        s.decimal = Some(',');
        s.date_format = Some("%d/%m/%Y".into());
    })
    .unwrap();
    reconciles(&out);
    assert_eq!(out.declarations.height(), 2, "{:?}", reasons(&out));
    let price = out.declarations.column("item_price").unwrap().f64().unwrap().get(0);
    assert_eq!(price, Some(1299.99));
    let mass = out.declarations.column("net_mass_kg").unwrap().f64().unwrap().get(0);
    assert_eq!(mass, Some(10.5));
}

#[test]
fn lost_leading_zeros_are_restored_and_counted() {
    let out = ingest("lost_leading_zero.csv");
    reconciles(&out);
    let hs: Vec<_> = Text::column(&out.declarations, "hs_code").unwrap().iter().map(|v| v.unwrap().to_owned()).collect();
    assert_eq!(hs, vec!["030617", "84713000"]);
    let hs6: Vec<_> = Text::column(&out.declarations, "hs6").unwrap().iter().map(|v| v.unwrap().to_owned()).collect();
    assert_eq!(hs6, vec!["030617", "847130"]);
    assert_eq!(out.declaration_stats.hs_leading_zero_restored, 1);
}

#[test]
fn unknown_countries_are_quarantined_alpha3_is_mapped() {
    let out = ingest("unknown_country.csv");
    reconciles(&out);
    assert_eq!(out.declarations.height(), 2);
    assert_eq!(reasons(&out), vec!["unknown_country"]);
    let origins: Vec<_> = Text::column(&out.declarations, "origin_country").unwrap().iter().map(|v| v.unwrap().to_owned()).collect();
    assert_eq!(origins, vec!["CN", "KR"]);
    let line = out.quarantine.column("source_line").unwrap().i64().unwrap().get(0);
    assert_eq!(line, Some(3));
    let raw = out.quarantine.column("raw_row").unwrap().str().unwrap().get(0).unwrap().to_owned();
    assert!(raw.contains("\"origin_country\":\"QQ\""), "{raw}");
}

#[test]
fn duplicates_and_conflicts_are_told_apart() {
    let out = ingest("duplicates.csv");
    reconciles(&out);
    assert_eq!(out.declarations.height(), 1);
    assert_eq!(reasons(&out), vec!["duplicate", "conflicting_duplicate"]);
}

#[test]
fn negative_mass_and_nan_are_quarantined_zero_mass_is_flagged() {
    let out = ingest("negative_mass.csv");
    reconciles(&out);
    assert_eq!(out.declarations.height(), 1);
    assert_eq!(reasons(&out), vec!["negative_value", "not_a_number"]);
    assert_eq!(out.declaration_stats.zero_mass, 1);
    assert_eq!(out.declarations.column("unit_price_usd_per_kg").unwrap().null_count(), 1);
}

#[test]
fn a_truncated_last_line_is_quarantined() {
    let out = ingest("truncated.csv");
    reconciles(&out);
    assert_eq!(out.declarations.height(), 1);
    assert_eq!(reasons(&out), vec!["malformed_row"]);
}

#[test]
fn wrong_encoding_stops_with_the_file_and_line() {
    let err = ingest_with("latin1.csv", |_| {}).err().expect("must fail").to_string();
    assert!(err.contains("latin1.csv") && err.contains("line 2") && err.contains("UTF-8"), "{err}");
    let out = ingest_with("latin1.csv", |s| s.encoding = Some("windows-1252".into())).unwrap();
    let importer = Text::column(&out.declarations, "importer_id").unwrap().iter().next().flatten().unwrap().to_owned();
    // Decoded, then upper-cased by the default id rule.
    assert_eq!(importer, "SOCIÉTÉ");
}

#[test]
fn a_missing_mandatory_column_stops_with_its_name() {
    let err = ingest_with("missing_column.csv", |_| {}).err().expect("must fail").to_string();
    assert!(err.contains("missing_column.csv") && err.contains("importer_id"), "{err}");
}

#[test]
fn missing_fx_bad_labels_and_impossible_dates() {
    let out = ingest("fx_label_date.csv");
    reconciles(&out);
    assert_eq!(out.declarations.height(), 0);
    assert_eq!(reasons(&out), vec!["missing_fx_rate", "bad_label", "bad_date"]);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let err = ingest_with("does_not_exist.csv", |_| {}).err().expect("must fail").to_string();
    assert!(err.contains("does_not_exist.csv"), "{err}");
}

#[test]
fn release_times_are_read_and_impossible_orders_quarantined() {
    let out = ingest("release_times.csv");
    reconciles(&out);
    assert_eq!(
        reasons(&out),
        ["release_before_arrival", "release_before_lodgement", "payment_before_lodgement", "time_unparsable", "release_time_out_of_range"]
    );
    let d = &out.declarations;
    assert_eq!(Text::column(d, "declaration_id").unwrap().iter().collect::<Vec<_>>(), [Some("R1"), Some("R2"), Some("R8")]);
    let times = |c: &str| d.column(c).unwrap().i64().unwrap().iter().collect::<Vec<_>>();
    let day = 19_362 * 86_400; // 2023-01-05
    assert_eq!(times("arrived_at"), [Some(day + 6 * 3_600), Some(day + 10 * 3_600), None]);
    // Lodged the day before arrival (pre-arrival lodgement) is accepted.
    assert_eq!(times("lodged_at"), [Some(day + 9 * 3_600 + 1_800), Some(day - 8 * 3_600), None]);
    assert_eq!(times("paid_at"), [Some(day + 12 * 3_600), None, None]);
    assert_eq!(times("released_at"), [Some(day + 15 * 3_600 + 45 * 60), Some(day + 86_400 + 8 * 3_600 + 30), None]);
    assert_eq!(Text::column(d, "lane").unwrap().iter().collect::<Vec<_>>(), [Some("green"), Some("red"), None]);
    // Every message names the column and the values.
    let messages = out.quarantine.column("reason").unwrap().str().unwrap().clone();
    let first = messages.get(0).unwrap();
    assert!(first.contains("`released_at` = 2023-01-05 09:00") && first.contains("`arrived_at` = 2023-01-05 10:00"), "{first}");
}

#[test]
fn a_file_without_release_times_beside_one_with_them_gets_empty_ones() {
    let alone = ingest("duplicates.csv");
    let both = ingest_with("release_times.csv", |spec| spec.paths.push(corpus("duplicates.csv"))).unwrap();
    reconciles(&both);
    let with = ingest("release_times.csv");
    let d = &both.declarations;
    let n = with.declarations.height();
    assert_eq!(d.height(), n + alone.declarations.height());
    // The first file's rows keep their times; the second's rows have none, and are accepted as alone.
    let text = |df: &polars::prelude::DataFrame| {
        let columns = df
            .columns()
            .iter()
            .map(|c| if c.dtype().is_categorical() { c.cast(&polars::prelude::DataType::String).unwrap() } else { c.clone() });
        polars::prelude::DataFrame::new(df.height(), columns.collect()).unwrap()
    };
    assert!(text(&d.slice(0, n)).equals_missing(&text(&with.declarations)));
    for c in mirador_schema::schemas::RELEASE_TIME_COLUMNS {
        assert_eq!(d.column(c).unwrap().slice(i64::try_from(n).unwrap(), d.height() - n).null_count(), d.height() - n, "{c}");
    }
    let ids = |df: &polars::prelude::DataFrame| {
        Text::column(df, "declaration_id").unwrap().iter().map(|v| v.map(str::to_owned)).collect::<Vec<_>>()
    };
    assert_eq!(ids(&d.slice(i64::try_from(n).unwrap(), d.height() - n)), ids(&alone.declarations));
}

#[test]
fn a_source_without_release_times_gets_no_release_columns() {
    let out = ingest("duplicates.csv");
    for c in mirador_schema::schemas::RELEASE_TIME_COLUMNS {
        assert!(!out.declarations.schema().contains(c), "{c}");
    }
    let names: Vec<String> = out.declarations.schema().iter_names().map(|n| n.to_string()).collect();
    let canonical: Vec<String> = mirador_schema::schemas::declarations().iter_names().map(|n| n.to_string()).collect();
    assert_eq!(names, canonical);
}
