//! Hostile input, generated: whatever bytes a declarations file holds, ingest returns either a
//! clear error or a reconciled result (rows in = accepted + quarantined); it never panics.

use std::collections::BTreeMap;
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
    match ingest_sources(&sources, Path::new("."), &IngestParams::default()) {
        Ok(out) => {
            let r = out.reconciliation["declarations"];
            assert_eq!(r.rows_in, r.accepted + r.quarantined);
            assert_eq!(r.accepted, out.declarations.height());
            assert_eq!(r.quarantined, out.quarantine.height());
            Some(r.accepted)
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            None
        }
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
