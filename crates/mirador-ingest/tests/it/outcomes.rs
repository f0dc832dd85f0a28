//! The inspection outcomes feed: revisions accepted, each kind of bad row quarantined with its
//! reason, later decisions deferred by `as-of`, other administrations' dialects and mappings,
//! and the stage run as a pipeline would run it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mirador_ingest::outcomes::SOURCE;
use mirador_ingest::{IngestError, IngestOutcomes, OutcomeParams, Outcomes, ingest_outcomes};
use mirador_pipeline::{PipelineFile, SourceSpec, Stage, StageContext, StageError};
use mirador_schema::{datasets, schemas};
use polars::prelude::*;

/// Writes `text` as `name` in `dir` and returns a source reading it.
fn source(dir: &Path, name: &str, text: &str) -> SourceSpec {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    SourceSpec { paths: vec![path], ..Default::default() }
}

fn ingest_text(text: &str, params: &OutcomeParams) -> Result<Outcomes, IngestError> {
    let dir = tempfile::tempdir().unwrap();
    ingest_outcomes(&source(dir.path(), "outcomes.csv", text), Path::new("."), params)
}

fn ingest(text: &str) -> Outcomes {
    ingest_text(text, &OutcomeParams::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name).unwrap().str().unwrap().iter().map(|v| v.unwrap_or("<null>").to_owned()).collect()
}

fn ints<T>(df: &DataFrame, name: &str) -> Vec<Option<T>>
where
    T: TryFrom<i64>,
    <T as TryFrom<i64>>::Error: std::fmt::Debug,
{
    let c = df.column(name).unwrap().cast(&DataType::Int64).unwrap();
    c.i64().unwrap().iter().map(|v| v.map(|x| T::try_from(x).unwrap())).collect()
}

fn days(df: &DataFrame) -> Vec<String> {
    let c = df.column("decided_on").unwrap();
    assert_eq!(c.dtype(), &DataType::Date);
    c.cast(&DataType::String).unwrap().str().unwrap().iter().map(|v| v.unwrap().to_owned()).collect()
}

/// Rows in = accepted + quarantined + deferred, and the frames hold what the counts say.
fn reconciles(out: &Outcomes) {
    let r = out.reconciliation;
    assert_eq!(r.rows_in, r.accepted + r.quarantined + r.deferred, "{r:?}");
    assert_eq!(r.accepted, out.outcomes.height());
    assert_eq!(r.quarantined, out.quarantine.height());
    assert_eq!(out.reasons.values().sum::<usize>(), r.quarantined);
    assert_eq!(out.outcomes.schema().as_ref(), &schemas::inspection_outcomes());
    assert_eq!(out.quarantine.schema().as_ref(), &schemas::quarantine());
}

#[test]
fn a_good_file_with_a_revision_is_all_accepted_in_file_order() {
    let out = ingest(
        "declaration_id,item_no,decided_on,fraud,critical_fraud\n\
         D1,1,2023-03-01,0,\n\
         D1,2,2023-03-01,1,2\n\
         D2,1,2023-03-02,1,0\n\
         D1,1,2023-04-15,1,1\n",
    );
    reconciles(&out);
    assert_eq!(out.reconciliation.rows_in, 4);
    assert_eq!(out.outcomes.height(), 4, "{:?}", out.reasons);
    assert_eq!(out.quarantine.height(), 0);
    let df = &out.outcomes;
    assert_eq!(strings(df, "declaration_id"), ["D1", "D1", "D2", "D1"]);
    assert_eq!(ints::<i32>(df, "item_no"), [Some(1), Some(2), Some(1), Some(1)]);
    // D1 item 1 decided twice: a revision, both kept (the model takes the newest).
    assert_eq!(days(df), ["2023-03-01", "2023-03-01", "2023-03-02", "2023-04-15"]);
    assert_eq!(ints::<i8>(df, "fraud"), [Some(0), Some(1), Some(1), Some(1)]);
    assert_eq!(ints::<i8>(df, "critical_fraud"), [None, Some(2), Some(0), Some(1)]);
    assert_eq!(ints::<i32>(df, "source_line"), [Some(2), Some(3), Some(4), Some(5)]);
}

#[test]
fn optional_columns_may_be_absent() {
    let out = ingest("declaration_id,decided_on,fraud\nD1,2023-03-01,1\nD2,2023-03-01,0\n");
    reconciles(&out);
    assert_eq!(ints::<i32>(&out.outcomes, "item_no"), [Some(1), Some(1)]);
    assert_eq!(out.outcomes.column("critical_fraud").unwrap().null_count(), 2);
}

#[test]
fn every_kind_of_bad_row_is_quarantined_with_its_reason() {
    let text = "declaration_id,item_no,decided_on,fraud,critical_fraud\n\
                D1,1,2023-03-01,1,1\n\
                D1,1,2023-03-01,1,1,extra\n\
                ,1,2023-03-01,1,\n\
                D\u{1b}9,1,2023-03-01,1,\n\
                D2,0,2023-03-01,1,\n\
                D2,1.5,2023-03-01,1,\n\
                D2,x,2023-03-01,1,\n\
                D3,1,01/03/2023,1,\n\
                D3,1,2023-02-30,1,\n\
                D3,1,1999-12-31,1,\n\
                D3,1,,1,\n\
                D4,1,2023-03-01,,\n\
                D4,1,2023-03-01,2,\n\
                D4,1,2023-03-01,yes,\n\
                D5,1,2023-03-01,1,3\n\
                D6,1,2023-03-01,0,1\n\
                D6,2,2023-03-01,0,2\n\
                D1,1,2023-03-01,1,1\n\
                D1,1,2023-03-01,0,\n\
                D7,1,2023-03-01,0,0\n";
    let out = ingest(text);
    reconciles(&out);
    assert_eq!(out.reconciliation.rows_in, 20);
    assert_eq!(strings(&out.outcomes, "declaration_id"), ["D1", "D7"]);
    let q = &out.quarantine;
    let expected = [
        (3, "malformed_row", ""),
        (4, "missing_value", "declaration_id"),
        (5, "control_character", "declaration_id"),
        (6, "bad_item_no", "item_no"),
        (7, "bad_item_no", "item_no"),
        (8, "not_a_number", "item_no"),
        (9, "bad_date", "decided_on"),
        (10, "bad_date", "decided_on"),
        (11, "date_out_of_range", "decided_on"),
        (12, "missing_value", "decided_on"),
        (13, "missing_value", "fraud"),
        (14, "bad_label", "fraud"),
        (15, "bad_label", "fraud"),
        (16, "bad_label", "critical_fraud"),
        (17, "inconsistent_label", "critical_fraud"),
        (18, "inconsistent_label", "critical_fraud"),
        (19, "duplicate", "declaration_id"),
        (20, "duplicate", "declaration_id"),
    ];
    let got: Vec<(i64, String, String)> = ints::<i64>(q, "source_line")
        .into_iter()
        .zip(strings(q, "reason_code"))
        .zip(strings(q, "column"))
        .map(|((line, code), column)| (line.unwrap(), code, column))
        .collect();
    let want: Vec<(i64, String, String)> = expected.iter().map(|(l, c, k)| (*l, (*c).to_owned(), (*k).to_owned())).collect();
    assert_eq!(got, want);
    assert!(strings(q, "dataset").iter().all(|d| d == datasets::INSPECTION_OUTCOMES));
    assert_eq!(out.reasons["duplicate"], 2);
    assert_eq!(out.reasons["bad_label"], 3);
    // A repeat with another result says so; the raw row is kept for the analyst.
    let reasons = strings(q, "reason");
    assert!(reasons[16].contains("the same result") && reasons[17].contains("another result"), "{reasons:?}");
    assert!(strings(q, "raw_row")[11].contains(r#""fraud":"2""#));
}

#[test]
fn as_of_defers_later_decisions_without_quarantining_them() {
    let text = "declaration_id,decided_on,fraud\n\
                D1,2023-01-31,1\n\
                D2,2023-02-01,0\n\
                D3,2023-02-28,1\n\
                D4,2023-03-01,1\n\
                D4,2023-03-01,1\n\
                D5,2023-03-01,7\n";
    let all = ingest(text);
    reconciles(&all);
    assert_eq!((all.reconciliation.accepted, all.reconciliation.quarantined, all.reconciliation.deferred), (4, 2, 0));

    let day = OutcomeParams { as_of: Some("2023-02-01".into()), ..Default::default() };
    let out = ingest_text(text, &day).unwrap();
    reconciles(&out);
    assert_eq!(strings(&out.outcomes, "declaration_id"), ["D1", "D2"]);
    // What is quarantined does not depend on the as-of day: the repeat of a deferred row too.
    assert_eq!((out.reconciliation.accepted, out.reconciliation.quarantined, out.reconciliation.deferred), (2, 2, 2));
    assert_eq!(strings(&out.quarantine, "reason_code"), ["duplicate", "bad_label"]);

    let month = OutcomeParams { as_of: Some("2023-02".into()), ..Default::default() };
    let out = ingest_text(text, &month).unwrap();
    reconciles(&out);
    assert_eq!(strings(&out.outcomes, "declaration_id"), ["D1", "D2", "D3"]);
    assert_eq!(out.reconciliation.deferred, 1);
    assert_eq!(month.as_of_date().unwrap(), chrono::NaiveDate::from_ymd_opt(2023, 2, 28));

    let bad = OutcomeParams { as_of: Some("Feb 2023".into()), ..Default::default() };
    let err = ingest_text(text, &bad).err().expect("a bad as-of must fail").to_string();
    assert!(err.contains("as-of `Feb 2023`"), "{err}");
}

#[test]
fn the_date_range_is_a_parameter() {
    let text = "declaration_id,decided_on,fraud\nD1,2019-12-31,1\nD2,2020-01-01,0\n";
    let params = OutcomeParams { min_date: "2020-01-01".into(), ..Default::default() };
    let out = ingest_text(text, &params).unwrap();
    reconciles(&out);
    assert_eq!(strings(&out.quarantine, "reason_code"), ["date_out_of_range"]);
    let inverted = OutcomeParams { min_date: "2030-01-01".into(), max_date: "2020-01-01".into(), ..Default::default() };
    assert!(ingest_text(text, &inverted).is_err());
}

#[test]
fn a_missing_mandatory_column_is_an_error_naming_the_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let spec = source(dir.path(), "late_results.csv", "declaration_id,decided_on,critical_fraud\nD1,2023-03-01,0\n");
    let err = ingest_outcomes(&spec, Path::new("."), &OutcomeParams::default()).err().expect("must fail").to_string();
    assert!(err.contains("late_results.csv") && err.contains("`fraud`"), "{err}");
    // A mapped header that the file lacks is named as the file should have it.
    let mut spec = source(dir.path(), "mapped.csv", "DECL,DATE,RESULT\nD1,2023-03-01,1\n");
    spec.columns = BTreeMap::from([
        ("declaration_id".to_owned(), "DECL".into()),
        ("decided_on".to_owned(), "DECIDED".into()),
        ("fraud".to_owned(), "RESULT".into()),
    ]);
    let err = ingest_outcomes(&spec, Path::new("."), &OutcomeParams::default()).err().expect("must fail").to_string();
    assert!(err.contains("mapped.csv") && err.contains("`DECIDED`") && err.contains("decided_on"), "{err}");
    // A source with no files is refused, not read as empty.
    let err = ingest_outcomes(&SourceSpec::default(), Path::new("."), &OutcomeParams::default()).err().unwrap().to_string();
    assert!(err.contains(SOURCE), "{err}");
}

#[test]
fn another_administrations_dialect_and_mapping_work_like_other_sources() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = source(
        dir.path(),
        "resultados.csv",
        "NUM_DECL;ITEM;FECHA;RESULTADO;GRAVEDAD\n\
         D-1;1,0;01/03/2023;SI;\n\
         D-1;2;15/03/2023;NO;\n\
         D-2;1.000;02/03/2023;SI;2\n\
         D-3;1;2023-03-02;SI;\n",
    );
    spec.decimal = Some(',');
    spec.date_format = Some("%d/%m/%Y".into());
    spec.columns = BTreeMap::from([
        ("declaration_id".to_owned(), "NUM_DECL".into()),
        ("item_no".to_owned(), "ITEM".into()),
        ("decided_on".to_owned(), "FECHA".into()),
        ("fraud".to_owned(), "RESULTADO".into()),
        ("critical_fraud".to_owned(), "GRAVEDAD".into()),
    ]);
    spec.recode =
        BTreeMap::from([("fraud".to_owned(), BTreeMap::from([("SI".to_owned(), "1".to_owned()), ("NO".to_owned(), "0".to_owned())]))]);
    let out = ingest_outcomes(&spec, Path::new("."), &OutcomeParams::default()).unwrap();
    reconciles(&out);
    assert_eq!(strings(&out.outcomes, "declaration_id"), ["D-1", "D-1", "D-2"], "{:?}", strings(&out.quarantine, "reason"));
    // With a decimal comma, `1,0` is one and `1.000` is one thousand (`.` marks thousands).
    assert_eq!(ints::<i32>(&out.outcomes, "item_no"), [Some(1), Some(2), Some(1000)]);
    assert_eq!(days(&out.outcomes), ["2023-03-01", "2023-03-15", "2023-03-02"]);
    assert_eq!(ints::<i8>(&out.outcomes, "fraud"), [Some(1), Some(0), Some(1)]);
    assert_eq!(ints::<i8>(&out.outcomes, "critical_fraud"), [None, None, Some(2)]);
    // An ISO date is not in the source's format.
    assert_eq!(strings(&out.quarantine, "reason_code"), ["bad_date"]);
    assert_eq!(ints::<i64>(&out.quarantine, "source_line"), [Some(5)]);
}

#[test]
fn typed_parquet_values_are_read_as_the_file_types_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut df = df!(
        "declaration_id" => ["D1", "D2", "D3"],
        "item_no" => [Some(1i64), None, Some(3)],
        "decided_on" => [19_417i32, 19_418, 19_419],
        "fraud" => [Some(1i64), Some(0), None],
    )
    .unwrap();
    df.with_column(df.column("decided_on").unwrap().cast(&DataType::Date).unwrap()).unwrap();
    let path = dir.path().join("outcomes.parquet");
    mirador_io::write_parquet(&mut df, &path).unwrap();
    // A day-first format for text dates does not apply to a file's typed dates.
    let spec = SourceSpec { paths: vec![path], date_format: Some("%d/%m/%Y".into()), ..Default::default() };
    let out = ingest_outcomes(&spec, Path::new("."), &OutcomeParams::default()).unwrap();
    reconciles(&out);
    assert_eq!(strings(&out.outcomes, "declaration_id"), ["D1", "D2"]);
    assert_eq!(days(&out.outcomes), ["2023-03-01", "2023-03-02"]);
    assert_eq!(ints::<i32>(&out.outcomes, "item_no"), [Some(1), Some(1)]);
    assert_eq!(strings(&out.quarantine, "reason_code"), ["missing_value"]);
}

fn context(dir: &Path, params: &str) -> StageContext {
    let spec = source(dir, "outcomes.csv", "declaration_id,decided_on,fraud\nD1,2023-03-01,1\nD2,2023-03-01,9\nD3,2023-04-01,0\n");
    StageContext::standalone("ingest_outcomes", dir).with_source(SOURCE, spec).with_params(toml::from_str(params).unwrap())
}

#[test]
fn the_stage_writes_both_datasets_and_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let stage = IngestOutcomes;
    assert_eq!(stage.name(), "ingest_outcomes");
    assert_eq!(stage.sources(), ["inspection_outcomes"]);
    assert_eq!(stage.outputs(), [datasets::INSPECTION_OUTCOMES, datasets::OUTCOME_QUARANTINE]);
    assert!(stage.inputs().is_empty());
    let out = stage.run(&context(dir.path(), "as-of = \"2023-03\"")).unwrap();
    let ids: Vec<&str> = out.datasets.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [datasets::INSPECTION_OUTCOMES, datasets::OUTCOME_QUARANTINE]);
    assert_eq!(out.datasets[0].1.height(), 1);
    assert_eq!(out.datasets[1].1.height(), 1);
    let rec = &out.metrics["reconciliation"][SOURCE];
    assert_eq!((rec["rows_in"].as_u64(), rec["accepted"].as_u64()), (Some(3), Some(1)));
    assert_eq!((rec["quarantined"].as_u64(), rec["deferred"].as_u64()), (Some(1), Some(1)));
    assert_eq!(out.metrics["quarantine_reasons"]["bad_label"].as_u64(), Some(1));
}

#[test]
fn the_stage_refuses_a_missing_source_and_unknown_or_bad_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let bare = StageContext::standalone("ingest_outcomes", dir.path());
    match IngestOutcomes.run(&bare) {
        Err(StageError::Params { stage, message }) => {
            assert_eq!(stage, "ingest_outcomes");
            assert!(message.contains("[sources.inspection_outcomes]"), "{message}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("must fail without a source"),
    }
    assert!(matches!(IngestOutcomes.run(&context(dir.path(), "hs-lengths = [6]")), Err(StageError::Params { .. })));
    match IngestOutcomes.run(&context(dir.path(), "max-date = \"soon\"")) {
        Err(StageError::Params { stage, message }) => assert!(stage == "ingest_outcomes" && message.contains("soon"), "{message}"),
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("must fail with a bad date"),
    }
}

/// A pipeline with both source-reading stages, as `mirador check` and `mirador run` see it.
fn pipeline(dir: &Path) -> PipelineFile {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("declarations.csv"),
        "declaration_id,date,importer_id,hs_code,origin_country,net_mass_kg,item_price,currency,tax_rate_pct\n\
         D1,2023-02-01,IMP1,851712,CN,10,1000,USD,8\n",
    )
    .unwrap();
    std::fs::write(data.join("outcomes.csv"), "declaration_id,decided_on,fraud\nD1,2023-03-01,1\nD1,2023-03-01,1\n").unwrap();
    let text = r#"
        name = "outcomes"
        [sources.declarations]
        paths = ["data/declarations.csv"]
        [sources.inspection_outcomes]
        paths = ["data/outcomes.csv"]
        [[stage]]
        name = "ingest"
        sources = ["declarations"]
        outputs = ["declarations", "mirror_flows", "tariffs", "fx_rates", "quarantine"]
        [[stage]]
        name = "ingest_outcomes"
        sources = ["inspection_outcomes"]
        outputs = ["inspection_outcomes", "outcome_quarantine"]
    "#;
    let mut file: PipelineFile = toml::from_str(text).unwrap();
    dir.clone_into(&mut file.base_dir);
    file
}

fn registry(name: &str) -> Option<Box<dyn Stage>> {
    match name {
        "ingest" => Some(Box::new(mirador_ingest::Ingest)),
        "ingest_outcomes" => Some(Box::new(IngestOutcomes)),
        _ => None,
    }
}

#[test]
fn the_pipeline_check_and_runner_take_a_second_source_reading_stage() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path());
    let plan = mirador_pipeline::plan(&file, &registry).unwrap();
    assert_eq!(plan.levels.len(), 1, "the two ingest stages share no edge");
    assert_eq!(plan.producers["inspection_outcomes"], "ingest_outcomes");

    let out_root: PathBuf = dir.path().join("out");
    let opts = mirador_pipeline::RunOptions { out_root, ..Default::default() };
    let run_dir = match mirador_pipeline::run(&file, &registry, &opts).unwrap() {
        mirador_pipeline::RunOutcome::Committed { dir, .. } | mirador_pipeline::RunOutcome::AlreadyCommitted { dir, .. } => dir,
    };
    let outcomes = mirador_io::read_parquet(&run_dir.join("inspection_outcomes.parquet")).unwrap();
    assert_eq!(outcomes.height(), 1);
    let quarantine = mirador_io::read_parquet(&run_dir.join("outcome_quarantine.parquet")).unwrap();
    assert_eq!(strings(&quarantine, "reason_code"), ["duplicate"]);
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("manifest.json")).unwrap()).unwrap();
    let checks = manifest["checks"].as_array().unwrap();
    let check = checks.iter().find(|c| c["dataset"] == SOURCE).expect("the runner checks the outcomes' reconciliation");
    assert_eq!(check["passed"], true, "{check}");

    // The stage listed without its source passes the check but stops the run with a clear error.
    let mut file = pipeline(dir.path());
    file.stages[1].sources.clear();
    assert!(mirador_pipeline::plan(&file, &registry).is_ok());
    let opts = mirador_pipeline::RunOptions { out_root: dir.path().join("out2"), ..Default::default() };
    let err = mirador_pipeline::run(&file, &registry, &opts).expect_err("must fail").to_string();
    assert!(err.contains("ingest_outcomes") && err.contains("[sources.inspection_outcomes]"), "{err}");
}
