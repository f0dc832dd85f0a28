//! Hostile input, generated: whatever bytes a declarations file holds, ingest returns either a
//! clear error or a reconciled result (rows in = accepted + quarantined); it never panics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use mirador_ingest::{IngestParams, ingest_sources};
use mirador_pipeline::SourceSpec;
use proptest::prelude::*;

const HEADER: &str = "declaration_id,date,office_id,importer_id,declarant_id,seller_id,hs_code,origin_country,\
departure_country,tax_rate_pct,net_mass_kg,item_price,currency,fraud";

fn ingest_bytes(bytes: &[u8]) -> Option<usize> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("declarations.csv");
    std::fs::write(&path, bytes).unwrap();
    let spec = SourceSpec { paths: vec![path], date_format: Some("%Y-%m-%d".into()), ..Default::default() };
    let sources = BTreeMap::from([("declarations".to_owned(), spec)]);
    match ingest_sources(&sources, Path::new("."), &IngestParams { min_accepted_share: 0.0, ..IngestParams::default() }) {
        Ok(out) => {
            let r = out.reconciliation["declarations"];
            assert_eq!(r.rows_in, r.accepted + r.quarantined);
            assert_eq!(r.accepted, out.declarations.height());
            assert_eq!(r.quarantined, out.quarantine.height());
            keys_are_unique(&out.declarations);
            Some(r.accepted)
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            None
        }
    }
}

/// Asserts that the accepted rows' keys ([`mirador_ingest::declarations::UNIQUE_KEY`]) are
/// unique and never null: the stage tells the run so, and the run's `unique` test trusts it.
fn keys_are_unique(declarations: &polars::prelude::DataFrame) {
    let [id, item] = mirador_ingest::declarations::UNIQUE_KEY;
    let ids = mirador_schema::text::Text::column(declarations, id).unwrap();
    let items = declarations.column(item).unwrap().i32().unwrap().clone();
    let mut seen = std::collections::HashSet::new();
    for (id, item) in ids.iter().zip(items.iter()) {
        let (id, item) = (id.expect("no null id").to_owned(), item.expect("no null item"));
        assert!(seen.insert((id.clone(), item)), "`{id}` item {item} accepted twice");
    }
}

/// A field: plausible values, numbers at the edges, and garbage.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Z0-9]{0,12}",
        "[0-9]{1,10}",
        Just("2023-01-15".to_owned()),
        Just("2023-02-30".to_owned()),
        Just("9999-12-31".to_owned()),
        Just("CN".to_owned()),
        Just("USD".to_owned()),
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
        Just("-0".to_owned()),
        Just("1e308".to_owned()),
        Just("1e309".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("\"quoted, with comma\"".to_owned()),
        Just("\"unterminated".to_owned()),
        "\\PC{0,20}",
        "[\\x00-\\x1f]{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2_000)) {
        let _ = ingest_bytes(&bytes);
    }

    #[test]
    fn a_valid_header_with_arbitrary_rows_reconciles(
        rows in proptest::collection::vec(proptest::collection::vec(field(), 0..18), 0..30)
    ) {
        let mut text = String::from(HEADER);
        text.push('\n');
        for r in rows {
            text.push_str(&r.join(","));
            text.push('\n');
        }
        prop_assert!(ingest_bytes(text.as_bytes()).is_some(), "a well-formed header is read");
    }

    /// Valid rows whose keys repeat often, written alike or differently (case, spaces, a
    /// leading zero in the item), with the same content or not: whatever is accepted has unique
    /// keys (checked in `ingest_bytes`), and a row is dropped only as a duplicate.
    #[test]
    fn accepted_keys_are_unique_whatever_repeats(
        rows in proptest::collection::vec(
            (prop_oneof![Just("D1"), Just("d1"), Just(" D1"), Just("D2"), Just("D1 ")], prop_oneof![Just("1"), Just("01"), Just("2")], 1..3u8),
            0..40,
        )
    ) {
        let mut text = String::from("declaration_id,item_no,date,importer_id,hs_code,origin_country,net_mass_kg,item_price,currency,tax_rate_pct\n");
        for (id, item, price) in &rows {
            writeln!(text, "\"{id}\",{item},2023-01-05,IMP1,851712,CN,10,{price}00,USD,8").unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("declarations.csv");
        std::fs::write(&path, &text).unwrap();
        let spec = SourceSpec { paths: vec![path], date_format: Some("%Y-%m-%d".into()), ..Default::default() };
        let sources = BTreeMap::from([("declarations".to_owned(), spec)]);
        let out = ingest_sources(&sources, Path::new("."), &IngestParams { min_accepted_share: 0.0, ..IngestParams::default() }).unwrap();
        keys_are_unique(&out.declarations);
        let codes = out.quarantine.column("reason_code").unwrap().str().unwrap().clone();
        for code in codes.iter() {
            prop_assert!(matches!(code, Some("duplicate" | "conflicting_duplicate")), "{code:?}");
        }
        prop_assert_eq!(out.declarations.height() + out.quarantine.height(), rows.len());
    }
}

#[test]
fn a_huge_field_and_a_wide_header_are_handled() {
    // The header is a real one: a valid row is accepted.
    let valid = format!("{HEADER}\nD1,2023-01-15,NBO,IMP1,DCL1,S1,851712,CN,CN,8,10,1000,USD,\n");
    assert_eq!(ingest_bytes(valid.as_bytes()), Some(1));
    let mut text = String::from(HEADER);
    text.push('\n');
    text.push_str(&"X".repeat(5_000_000));
    text.push('\n');
    let _ = ingest_bytes(text.as_bytes());
    let wide: String = (0..100_000).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
    let _ = ingest_bytes(format!("{wide}\n1,2,3\n").as_bytes());
}

#[test]
fn every_file_of_the_hostile_corpus_reconciles_or_fails_clearly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/hostile");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "csv")).collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus is missing: {files:?}");
    let mut outcomes = BTreeMap::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| ingest_bytes(&bytes)).unwrap_or_else(|_| panic!("{name} panicked"));
        outcomes.insert(name, outcome);
    }
    // Some outcomes are pinned: the readable files keep their one valid row, the broken ones fail.
    assert_eq!(outcomes["header_only.csv"], Some(0));
    assert_eq!(outcomes["no_header.csv"], None);
    assert_eq!(outcomes["invalid_utf8.csv"], None, "a file in another encoding is an error naming the line, not silent garbage");
    for f in ["numeric_overflow.csv", "dates_out_of_range.csv", "control_characters.csv", "ragged_rows.csv"] {
        assert_eq!(outcomes[f], Some(1), "{f}: only the one valid row is accepted");
    }
    assert_eq!(outcomes["unbalanced_quotes.csv"], Some(2), "a stray quote costs its own row, not the rows after it");
    assert_eq!(outcomes["duplicate_headers.csv"], None, "a column named twice is refused");
    assert_eq!(outcomes["nan_inf.csv"], Some(1), "only -0 passes");
}

/// A source that never ends: a header, then the same row forever.
struct Endless {
    header: Option<Vec<u8>>,
    row: Vec<u8>,
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let src = self.header.take().unwrap_or_else(|| self.row.clone());
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }
}

#[test]
fn endless_input_stops_with_a_clear_error_in_bounded_memory() {
    use mirador_ingest::read::{MAX_LINE_BYTES, TableReader};
    let path = Path::new("endless.csv");

    // A line that never breaks: refused once it passes the limit, long before memory runs out.
    let endless_line = std::io::Read::take(std::io::repeat(b'x'), MAX_LINE_BYTES as u64 * 2);
    let err = TableReader::from_reader(path, Box::new(endless_line), None, None).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("longer than") && err.contains("endless.csv"), "{err}");
    let header_then_endless = std::io::Read::chain(
        std::io::Cursor::new(b"a,b\n1,".to_vec()),
        std::io::Read::take(std::io::repeat(b'y'), MAX_LINE_BYTES as u64 * 2),
    );
    let mut reader = TableReader::from_reader(path, Box::new(header_then_endless), None, None).unwrap();
    let err = reader.next_row().unwrap_err().to_string();
    assert!(err.contains("longer than"), "{err}");

    // Rows that never end: refused at the row limit.
    let rows = Endless { header: Some(b"a,b\n".to_vec()), row: b"1,2\n".to_vec() };
    let mut reader = TableReader::from_reader(path, Box::new(rows), None, None).unwrap().with_max_rows(100_000).unwrap();
    let mut n = 0;
    let err = loop {
        match reader.next_row() {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("an endless source ended"),
            Err(e) => break e.to_string(),
        }
    };
    assert_eq!(n, 100_000);
    assert!(err.contains("more than 100000 rows"), "{err}");
}

#[test]
fn a_parquet_file_claiming_more_rows_than_allowed_is_refused_before_reading() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("declarations.parquet");
    let mut df = df!("declaration_id" => (0..1_000).map(|i| format!("D{i}")).collect::<Vec<_>>()).unwrap();
    mirador_io::write_parquet(&mut df, &path).unwrap();
    let err = mirador_ingest::read::TableReader::open(&path, None, None).unwrap().with_max_rows(999).unwrap_err().to_string();
    assert!(err.contains("claims 1000 rows"), "{err}");
    let spec = SourceSpec { paths: vec![path], ..Default::default() };
    let sources = BTreeMap::from([("declarations".to_owned(), spec)]);
    let params = IngestParams { max_rows_per_file: 999, ..Default::default() };
    let err = ingest_sources(&sources, Path::new("."), &params).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("claims 1000 rows"), "{err}");
}

#[test]
fn a_file_that_is_mostly_bad_rows_stops_ingest_instead_of_filling_the_quarantine() {
    let mut text = format!("{HEADER}\n");
    for i in 0..500 {
        writeln!(text, "D{i},not-a-date,NBO,IMP1,DCL1,S1,851712,CN,CN,8,10,1000,USD,").unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("declarations.csv");
    std::fs::write(&path, text).unwrap();
    let spec = SourceSpec { paths: vec![path], ..Default::default() };
    let sources = BTreeMap::from([("declarations".to_owned(), spec)]);
    let params = IngestParams { max_quarantined: 100, ..Default::default() };
    let err = ingest_sources(&sources, Path::new("."), &params).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("more than 100 rows quarantined") && err.contains("bad_date"), "{err}");
    // Under the limit (and with the accepted-share rule off), the same file reconciles.
    let ok = ingest_sources(&sources, Path::new("."), &IngestParams { min_accepted_share: 0.0, ..IngestParams::default() }).unwrap();
    assert_eq!(ok.quarantine.height(), 500);
}
