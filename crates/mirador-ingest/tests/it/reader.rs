//! The reader's promises, each tested on a generated class of inputs: stray quotes cost one row
//! each and every row keeps its true line; a header naming a column twice is refused; UTF-16 is
//! read; a file that is not a table is not echoed; keys made for a source without a declaration id.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use mirador_ingest::read::TableReader;
use mirador_ingest::{IngestParams, Ingested, ingest_sources};
use mirador_pipeline::{ColumnSource, SourceSpec};
use mirador_schema::text::Text;

const HEADER: &str = "declaration_id,date,office_id,importer_id,declarant_id,seller_id,hs_code,origin_country,\
departure_country,tax_rate_pct,net_mass_kg,item_price,currency,fraud";

/// A small deterministic generator (xorshift), so that a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

/// A valid declarations row's fields.
fn fields(i: usize) -> Vec<String> {
    [
        format!("D{i}"),
        format!("2023-01-{:02}", 1 + i % 28),
        "NBO".into(),
        format!("IMP{}", i % 97),
        "DCL1".into(),
        format!("S{}", i % 13),
        "851712".into(),
        "CN".into(),
        "CN".into(),
        "8".into(),
        format!("{}", 1 + i % 50),
        format!("{}", 100 + i),
        "USD".into(),
        (i % 2).to_string(),
    ]
    .to_vec()
}

fn ingest_file(path: &Path, tweak: impl FnOnce(&mut SourceSpec)) -> Result<Ingested, mirador_ingest::IngestError> {
    let mut spec = SourceSpec { paths: vec![path.to_owned()], date_format: Some("%Y-%m-%d".into()), ..Default::default() };
    tweak(&mut spec);
    let sources = BTreeMap::from([("declarations".to_owned(), spec)]);
    ingest_sources(&sources, Path::new("."), &IngestParams::default())
}

fn quarantined(out: &Ingested) -> BTreeMap<i64, String> {
    let lines = out.quarantine.column("source_line").unwrap().i64().unwrap().clone();
    let codes = Text::column(&out.quarantine, "reason_code").unwrap();
    lines.iter().zip(codes.iter()).map(|(l, c)| (l.unwrap(), c.unwrap().to_owned())).collect()
}

/// Data lines of a CSV text counted without any CSV parsing: physical lines, minus the header,
/// blank lines and the continuation lines of the quoted line breaks the generator wrote.
fn count_lines(text: &str, continuation_lines: usize) -> usize {
    text.lines().skip(1).filter(|l| !l.trim().is_empty()).count() - continuation_lines
}

#[test]
fn stray_quotes_cost_one_row_each_and_every_row_keeps_its_true_line() {
    for seed in [1_u64, 7, 42] {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
        let mut text = format!("{HEADER}\n");
        let mut line = 1;
        let (mut good, mut bad) = (Vec::new(), BTreeMap::new());
        let mut continuation = 0;
        for i in 0..6_000 {
            if rng.chance(10) {
                text.push('\n'); // blank lines are skipped, not counted
                line += 1;
            }
            let mut f = fields(i);
            let stray: Vec<usize> = (0..f.len()).filter(|_| rng.chance(10)).collect();
            // A valid quoted field with a line break (a seller's name on two lines).
            let multiline = stray.is_empty() && rng.chance(5);
            if multiline {
                f[5] = format!("\"S{i}\nsecond line, with a comma\"");
            }
            for &k in &stray {
                f[k].insert(0, '"');
            }
            line += 1;
            text.push_str(&f.join(","));
            text.push('\n');
            if stray.is_empty() {
                good.push((line, multiline));
            } else {
                bad.insert(line as i64, ());
            }
            if multiline {
                line += 1;
                continuation += 1;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("declarations.csv");
        std::fs::write(&path, &text).unwrap();
        let out = ingest_file(&path, |_| {}).unwrap();
        let r = out.reconciliation["declarations"];
        assert_eq!(r.rows_in, count_lines(&text, continuation), "seed {seed}: rows in = the file's data lines");
        assert_eq!(r.rows_in, good.len() + bad.len());
        assert_eq!(r.rows_in, r.accepted + r.quarantined);
        let q = quarantined(&out);
        // A row with a line break in a quoted field is one row, at its first line: accepted, or
        // quarantined there by a rule on the text (never as malformed); every other good row is
        // accepted.
        let multiline: Vec<i64> = good.iter().filter(|g| g.1).map(|g| g.0 as i64).collect();
        assert!(!bad.is_empty() && !multiline.is_empty(), "the generator made both kinds");
        let held: Vec<&i64> = multiline.iter().filter(|l| q.contains_key(l)).collect();
        assert_eq!(r.accepted, good.len() - held.len(), "seed {seed}: every good row is accepted");
        for l in &held {
            assert!(!["unterminated_quote", "malformed_row"].contains(&q[l].as_str()), "seed {seed}: line {l}: {}", q[l]);
        }
        for l in bad.keys() {
            let code = q.get(l).unwrap_or_else(|| panic!("seed {seed}: bad line {l} is not quarantined at its line"));
            assert!(code == "unterminated_quote" || code == "malformed_row", "seed {seed}: line {l}: {code}");
        }
        assert_eq!(q.len(), bad.len() + held.len(), "nothing else is quarantined");
        assert!(q.values().filter(|c| *c == "unterminated_quote").count() * 2 > bad.len(), "most stray quotes are unterminated");
        // Accepted rows keep their ids in file order: none swallowed.
        assert_eq!(ids_of(&out).len(), r.accepted);
    }
}

#[test]
fn one_stray_quote_deep_in_a_file_costs_that_row_only() {
    let mut text = format!("{HEADER}\n");
    for i in 0..30_000 {
        let mut f = fields(i);
        if i == 24_999 {
            f[3].insert(0, '"');
        }
        writeln!(text, "{}", f.join(",")).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("declarations.csv");
    std::fs::write(&path, &text).unwrap();
    let out = ingest_file(&path, |_| {}).unwrap();
    let r = out.reconciliation["declarations"];
    assert_eq!((r.rows_in, r.accepted, r.quarantined), (30_000, 29_999, 1));
    assert_eq!(quarantined(&out), BTreeMap::from([(25_001, "unterminated_quote".to_owned())]));
    // The bound is the source's: with room for 3 lines, a quote closing 2 lines later is a field.
    let text = "a,b,c\n1,\"x\ny\nz\",3\n4,5,6\n";
    let path = dir.path().join("t.csv");
    std::fs::write(&path, text).unwrap();
    let mut reader = TableReader::open(&path, None, None).unwrap();
    let rows: Vec<_> = std::iter::from_fn(|| reader.next_row().unwrap()).collect();
    assert_eq!(rows.iter().map(|r| (r.line, r.malformed.is_none())).collect::<Vec<_>>(), [(2, true), (5, true)]);
    assert_eq!(&rows[0].fields[1], "x\ny\nz");
    let mut reader = TableReader::open(&path, None, None).unwrap().with_max_record_lines(2);
    let rows: Vec<_> = std::iter::from_fn(|| reader.next_row().unwrap()).collect();
    assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 4, 5], "each line alone once the quote is too long");
    assert_eq!(rows[0].malformed.as_ref().unwrap().code, "unterminated_quote");
}

#[test]
fn a_header_naming_a_column_twice_is_refused_with_the_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    for (header, twice) in [
        (HEADER.replace("currency,fraud", "currency,item_price"), "item_price"),
        (format!("{HEADER}, declaration_id"), "declaration_id"),
        (HEADER.replace("office_id", "Price").replace("seller_id", "Price"), "Price"),
    ] {
        let path = dir.path().join("twice.csv");
        std::fs::write(&path, format!("{header}\n{}\n", fields(1).join(","))).unwrap();
        let err = ingest_file(&path, |s| {
            s.columns.insert("item_price".into(), "Price".into());
        })
        .err()
        .expect("refused")
        .to_string();
        assert!(err.contains("twice.csv") && err.contains(&format!("`{twice}` appears twice")), "{err}");
    }
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let units = if bom { vec![0xFEFF] } else { Vec::new() };
    for u in units.into_iter().chain(text.encode_utf16()) {
        out.extend_from_slice(&if big_endian { u.to_be_bytes() } else { u.to_le_bytes() });
    }
    out
}

#[test]
fn utf16_is_recognised_by_its_bom_or_its_nul_bytes_and_read() {
    let mut text = format!("{HEADER}\n");
    for i in 0..50 {
        let mut f = fields(i);
        f[3] = format!("Société {i}");
        writeln!(text, "{}", f.join(",")).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    for (big_endian, bom, name) in
        [(false, true, "utf-16le"), (true, true, "utf-16be"), (false, false, "utf-16le"), (true, false, "utf-16be")]
    {
        let path = dir.path().join("declarations.csv");
        std::fs::write(&path, utf16(&text, big_endian, bom)).unwrap();
        assert_eq!(TableReader::open(&path, None, None).unwrap().encoding(), name);
        let out = ingest_file(&path, |_| {}).unwrap_or_else(|e| panic!("{name} bom {bom}: {e}"));
        assert_eq!(out.declarations.height(), 50, "{name} bom {bom}: {:?}", out.reasons);
        let importer = Text::column(&out.declarations, "importer_id").unwrap().iter().nth(7).flatten().unwrap().to_owned();
        // Transcoded, then upper-cased as every importer id is (`id-case`).
        assert_eq!(importer, "SOCIÉTÉ 7");
    }
    // Broken UTF-16 (a lone surrogate) is an error naming the file, not windows-1252 advice.
    let mut bytes = utf16(&text, false, true);
    bytes.extend_from_slice(&[0x00, 0xD8, b'1', 0x00, b'\n', 0x00]);
    let path = dir.path().join("broken.csv");
    std::fs::write(&path, bytes).unwrap();
    let err = ingest_file(&path, |_| {}).err().expect("refused").to_string();
    assert!(err.contains("broken.csv") && err.contains("UTF-16") && !err.contains("1252"), "{err}");
}

#[test]
fn a_file_that_is_not_a_table_is_named_without_its_content() {
    let dir = tempfile::tempdir().unwrap();
    for content in [
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
        "SECRET-TOKEN-abc123\n",
        "#!/bin/sh\necho secret\n",
    ] {
        let path = dir.path().join("passwd");
        std::fs::write(&path, content).unwrap();
        let err = ingest_file(&path, |_| {}).err().expect("refused").to_string();
        let first = content.lines().next().unwrap();
        assert!(err.contains("passwd") && err.contains("does not look like a delimited table"), "{err}");
        assert!(!err.contains(first) && !err.contains("root:x") && !err.contains("SECRET") && !err.contains("echo"), "{err}");
    }
    // A table missing a column still lists its header, to help fix the mapping.
    let path = dir.path().join("table.csv");
    std::fs::write(&path, "declaration_id,date\nD1,2023-01-01\n").unwrap();
    let err = ingest_file(&path, |_| {}).err().expect("refused").to_string();
    assert!(err.contains("the header has: declaration_id, date"), "{err}");
}

/// A declarations file without an id column, mapped with a key ingest makes.
fn without_ids(dir: &Path, rows: usize) -> std::path::PathBuf {
    let header = HEADER.replace("declaration_id,", "");
    let mut text = format!("{header}\n\n");
    for i in 0..rows {
        writeln!(text, "{}", fields(i)[1..].join(",")).unwrap();
    }
    // The same goods item given twice.
    writeln!(text, "{}", fields(3)[1..].join(",")).unwrap();
    let path = dir.join("no_ids.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn ids_of(out: &Ingested) -> Vec<String> {
    Text::column(&out.declarations, "declaration_id").unwrap().iter().map(|v| v.unwrap().to_owned()).collect()
}

#[test]
fn a_source_without_declaration_ids_maps_a_row_number_or_a_hash_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = without_ids(dir.path(), 40);
    let err = ingest_file(&path, |_| {}).err().expect("no id, no mapping").to_string();
    assert!(err.contains("declaration_id"), "{err}");

    let out = ingest_file(&path, |s| {
        s.columns.insert("declaration_id".into(), ColumnSource::RowNumber { row_number: true });
    })
    .unwrap();
    assert_eq!(out.declarations.height(), 41, "{:?}", out.reasons);
    let ids = ids_of(&out);
    assert_eq!(ids[0], "no_ids.csv:3", "the record's true line, after the blank one");
    assert_eq!(ids[40], "no_ids.csv:43");
    assert!(out.warnings.len() == 1 && out.warnings[0].contains("line"), "{:?}", out.warnings);
    // Stable across re-runs of the same file.
    let again = ingest_file(&path, |s| {
        s.columns.insert("declaration_id".into(), ColumnSource::RowNumber { row_number: true });
    })
    .unwrap();
    assert_eq!(ids_of(&again), ids_of(&out));

    let hashed = |s: &mut SourceSpec| {
        let hash = ["date", "importer_id", "seller_id", "item_price"].map(str::to_owned).to_vec();
        s.columns.insert("declaration_id".into(), ColumnSource::Hash { hash });
    };
    let out = ingest_file(&path, hashed).unwrap();
    assert_eq!(out.declarations.height(), 40, "the repeated item has the same hash: {:?}", out.reasons);
    assert_eq!(out.reasons.get("duplicate"), Some(&1));
    let ids = ids_of(&out);
    assert!(ids.iter().all(|id| id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit())), "{:?}", ids[0]);
    assert!(out.warnings[0].contains("hash") && out.warnings[0].contains("`importer_id`"), "{:?}", out.warnings);
    // The hash depends on the values, not on where the row is: a blank line added keeps it.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen('\n', "\n\n\n", 1)).unwrap();
    let moved = ingest_file(&path, hashed).unwrap();
    assert_eq!(ids_of(&moved), ids_of(&out));
    // A hashed column the file lacks is named.
    let err = ingest_file(&path, |s| {
        s.columns.insert("declaration_id".into(), ColumnSource::Hash { hash: vec!["Importer".into()] });
    })
    .err()
    .expect("refused")
    .to_string();
    assert!(err.contains("`Importer`"), "{err}");
}

#[test]
fn row_keys_are_written_in_a_pipeline_file() {
    let text = r#"
        name = "t"
        [sources.declarations]
        paths = ["d.csv"]
        columns = { declaration_id = { row-number = true }, importer_id = "Importer", seller_id = { hash = ["a", "b"] } }
    "#;
    let spec: mirador_pipeline::PipelineFile = toml::from_str(text).unwrap();
    let columns = &spec.sources["declarations"].columns;
    assert_eq!(columns["declaration_id"], ColumnSource::RowNumber { row_number: true });
    assert_eq!(columns["importer_id"], ColumnSource::Header("Importer".into()));
    assert_eq!(columns["seller_id"], ColumnSource::Hash { hash: vec!["a".into(), "b".into()] });
    for bad in ["{ row-number = false }", "{ rownumber = true }", "{ hash = [] }", "{ hash = [1] }", "3"] {
        let text = format!("name = \"t\"\n[sources.declarations]\npaths = [\"d.csv\"]\ncolumns = {{ declaration_id = {bad} }}\n");
        let err = toml::from_str::<mirador_pipeline::PipelineFile>(&text).err().unwrap_or_else(|| panic!("{bad} accepted")).to_string();
        assert!(err.contains("declaration_id") || err.contains("column mapping") || err.contains("hash"), "{bad}: {err}");
    }
}

#[test]
fn the_ingest_stage_runs_on_made_keys_and_records_the_warning_for_the_manifest() {
    use mirador_pipeline::{Stage, StageContext};
    let dir = tempfile::tempdir().unwrap();
    let path = without_ids(dir.path(), 40);
    let mut spec = SourceSpec { paths: vec![path], date_format: Some("%Y-%m-%d".into()), ..Default::default() };
    spec.columns.insert("declaration_id".into(), ColumnSource::RowNumber { row_number: true });
    let ctx = StageContext::standalone("ingest", dir.path()).with_base_dir(dir.path()).with_source("declarations", spec);
    let out = mirador_ingest::Ingest.run(&ctx).unwrap();
    let warnings = out.metrics["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].as_str().unwrap().contains("declaration_id"), "{warnings:?}");
    let declarations = &out.datasets.iter().find(|(id, _)| *id == "declarations").unwrap().1;
    assert_eq!(declarations.height(), 41);
    assert_eq!(out.metrics["reconciliation"]["declarations"]["rows_in"], 41);
}
