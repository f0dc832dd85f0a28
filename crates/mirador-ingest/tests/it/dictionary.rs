//! Text columns a parquet file holds as dictionaries (the usual encoding of repeated text) are
//! read as their dictionaries and validated once per entry: the declarations and the quarantine
//! must be those the same values give written plainly, categorical codes included, whatever the
//! dictionaries hold (entries in any order, unused or given twice) and however the row groups
//! split the rows.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use mirador_ingest::{IngestParams, Ingested, ingest_sources};
use mirador_pipeline::SourceSpec;
use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::datatypes::{ArrowDataType, ArrowSchema, Field, IntegerType};
use polars_arrow::record_batch::RecordBatchT;
use polars_parquet::write::{CompressionOptions, Encoding, FileWriter, RowGroupIterator, StatisticsOptions, Version, WriteOptions};

/// Rows of the files, and of each of their row groups.
const ROWS: usize = 90;
const GROUP: usize = 25;

/// Each text column's values by row: good ones, values a rule changes (case, spaces, a lost
/// leading zero) and values a rule rejects, nulls among them.
fn columns() -> Vec<(&'static str, Vec<Option<String>>)> {
    let pool = |values: &[Option<&str>], step: usize| -> Vec<Option<String>> {
        (0..ROWS).map(|i| values[(i * step + i / 7) % values.len()].map(str::to_owned)).collect()
    };
    vec![
        ("declaration_id", (0..ROWS).map(|i| Some(format!("D{}", i % 80))).collect()),
        ("date", (0..ROWS).map(|i| Some(format!("2023-0{}-{:02}", 1 + i % 3, 1 + i % 28))).collect()),
        ("importer_id", pool(&[Some("imp1"), Some(" IMP2 "), Some("Imp3"), Some("IMP1"), None, Some("imp-4"), Some("IMP2")], 1)),
        ("hs_code", pool(&[Some("851712"), Some("10121"), Some("12"), Some("0101.21"), Some("851712"), Some("847130")], 5)),
        ("origin_country", pool(&[Some("CN"), Some("cn"), Some("WLD"), Some("156"), Some("DE"), Some("CN")], 2)),
        ("departure_country", pool(&[None, Some("DE"), Some("XX"), None, Some("FR")], 3)),
        ("net_mass_kg", (0..ROWS).map(|i| Some(format!("{}", 1 + i % 9))).collect()),
        ("item_price", (0..ROWS).map(|i| Some(format!("{}.5", 100 + i % 13))).collect()),
        ("currency", pool(&[Some("USD"), Some("usd"), Some("USD"), Some("US"), Some("USD")], 4)),
        ("tax_rate_pct", (0..ROWS).map(|i| Some(if i % 17 == 3 { "x".into() } else { "8".into() })).collect()),
        ("office_id", pool(&[Some("O1"), Some("a\u{1}b"), None, Some("O2"), Some("O1"), Some("O1")], 3)),
        ("seller_id", pool(&[Some("s-1"), Some("S-1 "), None, Some("s-2")], 1)),
        ("quantity_unit", pool(&[None, Some("kg"), Some(" kg"), None], 1)),
        ("courier_id", pool(&[None, Some("c1"), Some(" C2 "), Some("c1")], 2)),
        ("transport_mode", pool(&[Some("1"), Some("4"), Some("1")], 1)),
    ]
}

/// A dictionary of `values` (one row group's) unlike a writer's own: its entries last-seen
/// first, the first one given again at the end, and an entry no row uses; rows of the repeated
/// value alternate between its two entries.
fn dictionary(values: &[Option<String>]) -> Box<dyn Array> {
    let mut entries: Vec<&str> = Vec::new();
    for v in values.iter().rev().flatten() {
        if !entries.contains(&v.as_str()) {
            entries.push(v);
        }
    }
    let first = entries.first().copied().unwrap_or("");
    entries.push(first);
    entries.push("NOT USED");
    let keys: Vec<Option<u32>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let v = v.as_deref()?;
            let at = entries.iter().position(|e| *e == v).unwrap();
            Some(if at == 0 && i % 2 == 1 { entries.len() as u32 - 2 } else { at as u32 })
        })
        .collect();
    let keys = PrimitiveArray::<u32>::from(keys);
    let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(ArrowDataType::Utf8View), false);
    Box::new(DictionaryArray::<u32>::try_new(dtype, keys, Utf8ViewArray::from_slice_values(&entries).boxed()).unwrap())
}

/// Writes the columns in row groups of `GROUP` rows, every text column plain-encoded or as the
/// dictionaries of [`dictionary`] (but `plain` ones); no arrow schema in the file, as a writer
/// other than polars leaves it.
fn write(path: &Path, dictionaries: bool, plain: &[&str]) {
    let columns = columns();
    let coded = |name: &str| dictionaries && !plain.contains(&name);
    let schema: ArrowSchema = columns
        .iter()
        .map(|(name, _)| {
            let dtype = if coded(name) {
                ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(ArrowDataType::Utf8View), false)
            } else {
                ArrowDataType::Utf8View
            };
            let f = Field::new((*name).into(), dtype, true);
            (f.name.clone(), f)
        })
        .collect();
    let schema = Arc::new(schema);
    let options = WriteOptions {
        statistics: StatisticsOptions::empty(),
        version: Version::V1,
        compression: CompressionOptions::Uncompressed,
        data_page_size: None,
    };
    let encodings = columns.iter().map(|(name, _)| vec![if coded(name) { Encoding::RleDictionary } else { Encoding::Plain }]).collect();
    let batches = (0..ROWS).step_by(GROUP).map(|start| {
        let end = ROWS.min(start + GROUP);
        let arrays = columns
            .iter()
            .map(|(name, values)| {
                let values = &values[start..end];
                if coded(name) {
                    dictionary(values)
                } else {
                    values.iter().map(|v| v.as_deref()).collect::<polars_arrow::array::MutableBinaryViewArray<str>>().freeze().boxed()
                }
            })
            .collect();
        Ok(RecordBatchT::try_new(end - start, schema.clone(), arrays).unwrap())
    });
    let groups = RowGroupIterator::try_new(batches, &schema, options, encodings).unwrap();
    let mut writer = FileWriter::try_new(std::fs::File::create(path).unwrap(), (*schema).clone(), options).unwrap();
    for (k, group) in groups.enumerate() {
        writer.write((ROWS - k * GROUP).min(GROUP) as u64, group.unwrap()).unwrap();
    }
    writer.end(Some(Vec::new())).unwrap();
}

fn ingest(path: &Path) -> Ingested {
    // Recodings apply to a dictionary's entries as to each row's value.
    let recode = BTreeMap::from([
        ("origin_country".to_owned(), BTreeMap::from([("156".to_owned(), "WLD".to_owned())])),
        ("office_id".to_owned(), BTreeMap::from([("O2".to_owned(), "O1".to_owned())])),
    ]);
    let spec = SourceSpec { paths: vec![path.to_owned()], recode, ..Default::default() };
    let sources = BTreeMap::from([("declarations".to_owned(), spec)]);
    let params = IngestParams { min_accepted_share: 0.0, run_day: Some("2024-06-01".into()), ..IngestParams::default() };
    ingest_sources(&sources, Path::new("."), &params).unwrap()
}

/// A categorical column's name and codes.
type Codes = (String, Vec<Option<u32>>);

/// Each categorical column's codes, and every column's text.
fn codes_and_text(df: &DataFrame) -> (Vec<Codes>, DataFrame) {
    let codes = df
        .columns()
        .iter()
        .filter(|c| c.dtype().is_categorical())
        .map(|c| (c.name().to_string(), mirador_schema::text::Cats::of(c).unwrap().map_codes(|code| code)))
        .collect();
    let text = df.columns().iter().map(|c| if c.dtype().is_categorical() { c.cast(&DataType::String).unwrap() } else { c.clone() });
    (codes, DataFrame::new(df.height(), text.collect()).unwrap())
}

#[test]
fn dictionary_encoded_text_ingests_as_plain_text_does() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.parquet");
    write(&plain, false, &[]);
    let want = ingest(&plain);
    let r = want.reconciliation["declarations"];
    assert_eq!(r.rows_in, ROWS);
    assert!(r.accepted > 10 && r.quarantined > 20, "{r:?}");
    let codes = want.reasons.keys().map(String::as_str).collect::<Vec<_>>();
    for code in
        ["missing_value", "hs_length", "not_a_country", "bad_currency", "control_character", "not_a_number", "conflicting_duplicate"]
    {
        assert!(codes.contains(&code), "{code} not met: {codes:?}");
    }
    let (want_codes, want_text) = codes_and_text(&want.declarations);
    let without_file = |q: &DataFrame| q.drop("source_file").unwrap();
    // Every text column as dictionaries; then some columns plain beside dictionary ones.
    for (name, plain_columns) in [("dictionaries.parquet", &[][..]), ("mixed.parquet", &["importer_id", "currency", "courier_id"][..])] {
        let path = dir.path().join(name);
        write(&path, true, plain_columns);
        let got = ingest(&path);
        let (got_codes, got_text) = codes_and_text(&got.declarations);
        assert!(got_text.equals_missing(&want_text), "{name}\n{got_text}\n{want_text}");
        assert_eq!(got_codes, want_codes, "{name}: categorical codes in order of first appearance");
        assert!(
            without_file(&got.quarantine).equals_missing(&without_file(&want.quarantine)),
            "{name}\n{}\n{}",
            got.quarantine,
            want.quarantine
        );
        assert_eq!(got.reasons, want.reasons);
        assert_eq!(got.declaration_stats.hs_leading_zero_restored, want.declaration_stats.hs_leading_zero_restored);
    }
}
