//! The rules over a whole source: reference tables that disagree with themselves, implausible
//! values, HS repairs into unknown codes, dates after the run, sources mostly quarantined, and
//! party ids written two ways.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use mirador_ingest::{IngestError, IngestParams, Ingested, ingest_sources};
use mirador_pipeline::SourceSpec;
use mirador_schema::text::Text;
use polars::prelude::*;
use rand::{Rng, SeedableRng};

const DECL_HEADER: &str = "declaration_id,date,importer_id,hs_code,origin_country,net_mass_kg,item_price,currency,tax_rate_pct";

/// Runs ingest on files written to a temporary directory: `(source, csv text)`.
fn run(files: &[(&str, String)], params: &IngestParams) -> Result<Ingested, IngestError> {
    let dir = tempfile::tempdir().unwrap();
    let mut sources = BTreeMap::new();
    for (id, text) in files {
        let path = dir.path().join(format!("{id}.csv"));
        std::fs::write(&path, text).unwrap();
        sources.insert((*id).to_owned(), SourceSpec { paths: vec![path], ..Default::default() });
    }
    let out = ingest_sources(&sources, Path::new("."), params)?;
    for (id, r) in &out.reconciliation {
        assert_eq!(r.rows_in, r.accepted + r.quarantined + r.deferred, "{id}");
    }
    Ok(out)
}

fn params() -> IngestParams {
    IngestParams { run_day: Some("2024-06-30".into()), ..IngestParams::default() }
}

/// Reason code → count, of one dataset.
fn reasons(out: &Ingested, dataset: &str) -> BTreeMap<String, usize> {
    let q = &out.quarantine;
    let ds = q.column("dataset").unwrap().str().unwrap();
    let codes = q.column("reason_code").unwrap().str().unwrap();
    let mut m = BTreeMap::new();
    for (d, c) in ds.iter().zip(codes.iter()) {
        if d == Some(dataset) {
            *m.entry(c.unwrap().to_owned()).or_insert(0) += 1;
        }
    }
    m
}

fn lines_with(out: &Ingested, code: &str) -> Vec<i64> {
    let q = &out.quarantine;
    let codes = q.column("reason_code").unwrap().str().unwrap();
    let lines = q.column("source_line").unwrap().i64().unwrap();
    let mut v: Vec<i64> = codes.iter().zip(lines.iter()).filter(|(c, _)| *c == Some(code)).map(|(_, l)| l.unwrap()).collect();
    v.sort_unstable();
    v
}

fn sum(df: &DataFrame, column: &str) -> f64 {
    df.column(column).unwrap().f64().unwrap().sum().unwrap_or(0.0)
}

/// Declarations in USD: `(id, date, importer, hs, price)`.
fn declarations(rows: &[(String, &str, &str, &str, f64)]) -> String {
    let mut s = String::from(DECL_HEADER);
    s.push('\n');
    for (id, date, importer, hs, price) in rows {
        writeln!(s, "{id},{date},{importer},{hs},CN,10,{price},USD,10").unwrap();
    }
    s
}

fn plain(n: usize) -> Vec<(String, &'static str, &'static str, &'static str, f64)> {
    (0..n).map(|i| (format!("D{i}"), "2024-01-15", "IMP-01", "847130", 100.0)).collect()
}

/// A random reference table given with exact copies and disagreeing rows of some keys: each
/// copy is one `duplicate`, each disagreement quarantines every row of its key, and what is
/// accepted is the unique keys' rows, each counted once.
#[test]
fn repeated_keys_of_reference_tables_are_never_summed_or_overwritten() {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    for round in 0..12 {
        let n = rng.gen_range(5..60);
        let (copies, conflicts) = (rng.gen_range(0..4), rng.gen_range(0..4).min(n - 1));
        // Distinct keys k = 0..n with value v(k); copies repeat a key's row, conflicts give a
        // key a second, different value.
        let value = |k: usize| 1000.0 + k as f64;
        let conflicting: Vec<usize> = (0..conflicts).map(|c| c * (n / conflicts.max(1))).collect();
        let copied: Vec<usize> = (0..copies).map(|_| rng.gen_range(0..n)).filter(|k| !conflicting.contains(k)).collect();
        let mut keys: Vec<(usize, f64)> = (0..n).map(|k| (k, value(k))).collect();
        keys.extend(copied.iter().map(|&k| (k, value(k))));
        keys.extend(conflicting.iter().map(|&k| (k, value(k) + 0.5)));
        // Shuffle so copies and conflicts come before or after their first row.
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng.gen_range(0..=i));
        }
        let expected_sum: f64 = (0..n).filter(|k| !conflicting.contains(k)).map(value).sum();
        let accepted = n - conflicting.len();
        let expect = |r: &BTreeMap<String, usize>, what: &str| {
            assert_eq!(r.get("duplicate").copied().unwrap_or(0), copied.len(), "round {round} {what}: {r:?}");
            // A key with a conflict has two different rows plus any copies of its first.
            assert_eq!(r.get("conflict").copied().unwrap_or(0), 2 * conflicting.len(), "round {round} {what}: {r:?}");
        };

        let periods = |k: usize| format!("{}-{:02}", 2000 + k / 12, k % 12 + 1);
        let mut mirror = String::from("reporter,partner,period,hs_code,flow,trade_value_usd\n");
        let mut tariffs = String::from("hs_prefix,preference_origin,agreement,rate_pct\n");
        let mut fx = String::from("currency,period,usd_per_unit\n");
        for (k, v) in &keys {
            writeln!(mirror, "KE,CN,{},847130,export,{v}", periods(*k)).unwrap();
            writeln!(tariffs, "{},,,{}", 100_000 + k * 10, v / 100.0).unwrap();
            writeln!(fx, "KES,{},{}", periods(*k), v / 1e5).unwrap();
        }
        let p = IngestParams { min_accepted_share: 0.0, ..params() };
        let out = run(&[("mirror_flows", mirror), ("tariffs", tariffs), ("fx_rates", fx)], &p).unwrap();
        assert_eq!(out.mirror_flows.height(), accepted);
        assert!((sum(&out.mirror_flows, "trade_value_usd") - expected_sum).abs() < 1e-6, "round {round}");
        assert_eq!(out.tariffs.height(), accepted);
        assert!((sum(&out.tariffs, "rate_pct") - expected_sum / 100.0).abs() < 1e-6);
        assert_eq!(out.fx_rates.height(), accepted);
        expect(&reasons(&out, "mirror_flows"), "mirror");
        expect(&reasons(&out, "tariffs"), "tariffs");
        expect(&reasons(&out, "fx_rates"), "fx");
    }
}

#[test]
fn a_yearly_flow_beside_the_same_cells_monthly_flows_is_quarantined_not_added() {
    let mut mirror = String::from("reporter,partner,period,hs_code,flow,trade_value_usd\n");
    for m in 1..=12 {
        writeln!(mirror, "KE,CN,2023-{m:02},847130,export,100").unwrap();
    }
    mirror.push_str("KE,CN,2023,847130,export,1200\n"); // line 14: beside the months
    mirror.push_str("KE,IN,2023,847130,export,500\n"); // yearly alone: kept
    mirror.push_str("KE,CN,2022,847130,export,900\n"); // another year: kept
    mirror.push_str("KE,CN,2023,847130,import,1300\n"); // another flow: kept
    let out = run(&[("mirror_flows", mirror)], &params()).unwrap();
    assert_eq!(reasons(&out, "mirror_flows"), BTreeMap::from([("overlapping_period".to_owned(), 1)]));
    assert_eq!(lines_with(&out, "overlapping_period"), [14]);
    assert_eq!(sum(&out.mirror_flows, "trade_value_usd"), 1200.0 + 500.0 + 900.0 + 1300.0);
}

#[test]
fn inverted_or_slipped_exchange_rates_are_quarantined() {
    let months = |rate: &dyn Fn(u32) -> f64| {
        let mut s = String::from("currency,period,usd_per_unit\n");
        for m in 1..=12 {
            writeln!(s, "KES,2023-{m:02},{}", rate(m)).unwrap();
        }
        s
    };
    // One inverted month among right ones: far from the median.
    let out = run(&[("fx_rates", months(&|m| if m == 5 { 1.0 / 0.0078 } else { 0.0078 }))], &params()).unwrap();
    assert_eq!(reasons(&out, "fx_rates"), BTreeMap::from([("implausible_fx_rate".to_owned(), 1)]));
    assert_eq!(lines_with(&out, "implausible_fx_rate"), [6]);
    // One slipped by 100 (but within the global band).
    let out = run(&[("fx_rates", months(&|m| if m == 2 { 0.78 } else { 0.0078 }))], &params()).unwrap();
    assert_eq!(lines_with(&out, "implausible_fx_rate"), [3]);
    // All inverted: no median to compare with, but no currency is worth 128 USD.
    let err = run(&[("fx_rates", months(&|_| 128.2))], &params()).err().expect("every rate is implausible");
    assert!(err.to_string().contains("implausible_fx_rate"), "{err}");
    // A configured band catches what the global one cannot.
    let p = IngestParams { fx_bands: BTreeMap::from([("KES".to_owned(), [0.005, 0.012])]), ..params() };
    let out = run(&[("fx_rates", months(&|m| if m < 4 { 0.08 } else { 0.0078 }))], &p).unwrap();
    assert_eq!(lines_with(&out, "implausible_fx_rate"), [2, 3, 4]);
    assert_eq!(out.fx_rates.height(), 9);
}

#[test]
fn implausible_items_are_quarantined_with_their_reason() {
    let mut rows = plain(20);
    rows[3].4 = 9.9e12; // the USD 9.9 trillion item
    rows[4].4 = 2e10; // above max-item-value-usd
    rows[5].4 = 1e-9; // 1e-10 USD/kg
    let out = run(&[("declarations", declarations(&rows))], &params()).unwrap();
    assert_eq!(
        reasons(&out, "declarations"),
        BTreeMap::from([("implausible_value".to_owned(), 2), ("implausible_unit_price".to_owned(), 1)])
    );
    assert_eq!(out.declarations.height(), 17);
    // The bounds are parameters.
    let p = IngestParams { max_item_value_usd: 1e13, unit_price_usd_per_kg: [0.0, 1e13], ..params() };
    assert_eq!(run(&[("declarations", declarations(&rows))], &p).unwrap().declarations.height(), 20);
    for bad in [IngestParams { max_item_value_usd: f64::INFINITY, ..params() }, IngestParams { fx_usd_per_unit: [1.0, 0.5], ..params() }] {
        let err = run(&[("declarations", declarations(&rows))], &bad).err().unwrap();
        assert!(matches!(err, IngestError::Params(_)), "{err}");
    }
}

#[test]
fn a_lost_leading_zero_is_restored_only_into_a_known_code() {
    let mut rows = plain(10);
    rows[0].3 = "8471300"; // 84713000 lost a digit: 084713 does not exist
    rows[1].3 = "1012100"; // 01012100 lost its zero
    rows[2].3 = "30617"; // 030617
    rows[3].3 = "9999900"; // 099999 does not exist
    let out = run(&[("declarations", declarations(&rows))], &params()).unwrap();
    assert_eq!(reasons(&out, "declarations"), BTreeMap::from([("hs_length".to_owned(), 2)]));
    assert_eq!(lines_with(&out, "hs_length"), [2, 5]);
    assert_eq!(out.declaration_stats.hs_leading_zero_restored, 2);
    let hs6: Vec<String> = Text::column(&out.declarations, "hs6").unwrap().iter().map(|s| s.unwrap().to_owned()).collect();
    assert!(hs6.contains(&"010121".to_owned()) && hs6.contains(&"030617".to_owned()));
    // `all`: every code must be known (080300, bananas before HS 2012, is not).
    rows[4].3 = "08030000";
    let p = IngestParams { hs_known: mirador_ingest::rules::HsKnown::All, ..params() };
    let out = run(&[("declarations", declarations(&rows))], &p).unwrap();
    assert_eq!(lines_with(&out, "hs_unknown"), [6]);
}

#[test]
fn rows_dated_after_the_day_of_the_run_are_quarantined() {
    let mut rows = plain(10);
    rows[2].1 = "2035-03-01";
    rows[3].1 = "2024-07-01"; // the day after the run
    rows[4].1 = "2024-06-30"; // the day of the run: fine
    let out = run(&[("declarations", declarations(&rows))], &params()).unwrap();
    assert_eq!(lines_with(&out, "date_in_future"), [4, 5]);
    assert_eq!(out.declarations.height(), 8);
    // Mirror flows of a period after the run too.
    let mirror = "reporter,partner,period,hs_code,flow,trade_value_usd\nKE,CN,2024-06,847130,export,1\nKE,CN,2024-07,847130,export,1\nKE,CN,2025,847130,export,1\n";
    let out = run(&[("mirror_flows", mirror.to_owned())], &IngestParams { min_accepted_share: 0.0, ..params() }).unwrap();
    assert_eq!(lines_with(&out, "date_in_future"), [3, 4]);
}

/// A night of dense dates with a few typos years (or months) later: the typos are quarantined,
/// whatever their number up to 1 % and however far, and nothing else is.
#[test]
fn a_few_rows_dated_far_after_the_rest_are_typos() {
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
    let days: Vec<String> = (1..=28).map(|d| format!("2023-09-{:02}", d.min(30))).collect();
    for round in 0..10 {
        let n = rng.gen_range(200..800);
        let typos = rng.gen_range(1..=n / 100);
        let typo_dates = ["2033-09-14", "2024-03-01", "2035-01-02", "2024-09-15"];
        let mut rows: Vec<(String, String)> = (0..n).map(|i| (format!("D{i}"), days[rng.gen_range(0..days.len())].clone())).collect();
        let mut planted = Vec::new();
        for t in 0..typos {
            let at = rng.gen_range(0..n);
            if !planted.contains(&at) {
                planted.push(at);
                rows[at].1 = typo_dates[t % typo_dates.len()].to_owned();
            }
        }
        let mut text = String::from(DECL_HEADER);
        text.push('\n');
        for (id, date) in &rows {
            writeln!(text, "{id},{date},IMP-01,847130,CN,10,100,USD,10").unwrap();
        }
        let p = IngestParams { run_day: Some("2036-01-01".into()), ..IngestParams::default() };
        let out = run(&[("declarations", text)], &p).unwrap();
        let mut expected: Vec<i64> = planted.iter().map(|&i| i as i64 + 2).collect();
        expected.sort_unstable();
        assert_eq!(lines_with(&out, "date_in_future"), expected, "round {round}");
        assert_eq!(out.declarations.height(), n - planted.len());
    }
    // Off with date-gap-days = 0; and a source too small to judge is left alone.
    let mut rows = plain(300);
    rows[0].1 = "2033-01-15";
    let p = IngestParams { run_day: Some("2036-01-01".into()), date_gap_days: 0, ..IngestParams::default() };
    assert_eq!(run(&[("declarations", declarations(&rows))], &p).unwrap().declarations.height(), 300);
    rows.truncate(50);
    let p = IngestParams { run_day: Some("2036-01-01".into()), ..IngestParams::default() };
    assert_eq!(run(&[("declarations", declarations(&rows))], &p).unwrap().declarations.height(), 50);
}

/// A source mostly quarantined fails ingest with its top reasons, whatever the cause; at or
/// above the share it passes.
#[test]
fn a_source_mostly_quarantined_fails_with_its_top_reasons() {
    let base = plain(100);
    let cases: [(&str, &dyn Fn(usize, &mut (String, &'static str, &'static str, &'static str, f64))); 3] =
        [("hs_length", &|_, r| r.3 = "8471300000"), ("bad_date", &|_, r| r.1 = "2020/01/03"), ("implausible_value", &|_, r| r.4 = 1e15)];
    for (code, spoil) in cases {
        for (bad, fails) in [(100, true), (51, true), (50, false), (10, false)] {
            let mut rows = base.clone();
            for (i, r) in rows.iter_mut().enumerate().take(bad) {
                spoil(i, r);
            }
            let p = IngestParams { hs_lengths: vec![6], ..params() };
            match run(&[("declarations", declarations(&rows))], &p) {
                Err(e) if fails => {
                    let msg = e.to_string();
                    assert!(msg.contains(&format!("{bad} % of rows quarantined")) && msg.contains(code), "{msg}");
                    assert!(msg.contains("`declarations`"), "{msg}");
                }
                Ok(out) if !fails => assert_eq!(out.declarations.height(), 100 - bad),
                other => panic!("{code} ×{bad}: {:?}", other.map(|o| o.declarations.height())),
            }
        }
    }
    // The date format's own message is the example.
    let mut rows = base.clone();
    rows.iter_mut().for_each(|r| r.1 = "2020/01/03");
    let msg = run(&[("declarations", declarations(&rows))], &params()).err().unwrap().to_string();
    assert!(msg.contains("100 % of rows quarantined (100 of 100") && msg.contains("100 bad_date") && msg.contains("2020/01/03"), "{msg}");
    // A `;`-separated export with decimal commas, declared as neither: every price is wrong.
    let text = declarations(&base).replace(',', ";").replace(";100;USD;", ";100,5;USD;");
    let msg = run(&[("declarations", text)], &params()).err().unwrap().to_string();
    assert!(msg.contains("not_a_number"), "{msg}");
    // 0 turns the rule off.
    let p = IngestParams { min_accepted_share: 0.0, ..params() };
    assert_eq!(run(&[("declarations", declarations(&rows))], &p).unwrap().declarations.height(), 0);
}

#[test]
fn party_ids_written_two_ways_are_one_party() {
    let mut text = String::from(
        "declaration_id,date,importer_id,declarant_id,seller_id,courier_id,hs_code,origin_country,net_mass_kg,item_price,currency,tax_rate_pct\n",
    );
    for (i, imp) in [" imp-01", "IMP-01", "Imp-01 ", "imp-02", "IMP-02"].iter().enumerate() {
        writeln!(text, "D{i},2024-01-15,{imp},dcl-{i},sel-a,cour-x,847130,CN,10,100,USD,10").unwrap();
    }
    let importers = |out: &Ingested| -> Vec<String> {
        let mut v: Vec<String> = Text::column(&out.declarations, "importer_id").unwrap().iter().map(|s| s.unwrap().to_owned()).collect();
        v.sort();
        v.dedup();
        v
    };
    let out = run(&[("declarations", text.clone())], &params()).unwrap();
    assert_eq!(importers(&out), ["IMP-01", "IMP-02"]);
    for (column, expected) in [("seller_id", "SEL-A"), ("courier_id", "COUR-X"), ("declarant_id", "DCL-0")] {
        let v = Text::column(&out.declarations, column).unwrap().iter().next().flatten().map(str::to_owned);
        assert_eq!(v.as_deref(), Some(expected), "{column}");
    }
    let out = run(&[("declarations", text.clone())], &IngestParams { id_case: mirador_ingest::rules::IdCase::Lower, ..params() }).unwrap();
    assert_eq!(importers(&out), ["imp-01", "imp-02"]);
    let out = run(&[("declarations", text)], &IngestParams { id_case: mirador_ingest::rules::IdCase::Keep, ..params() }).unwrap();
    assert_eq!(importers(&out), ["IMP-01", "IMP-02", "Imp-01", "imp-01", "imp-02"]);
}
