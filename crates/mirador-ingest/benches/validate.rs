//! Ingest micro-benchmarks on a synthetic world of 100,000 declaration items written as CSV.
//!
//! - `read_csv`: reading, decoding and splitting the declarations file into raw text rows.
//! - `ingest_declarations`: ingest of the declarations (with the exchange rates they need):
//!   reading plus the per-row rules (numbers, dates, HS codes, countries, currency and exchange
//!   rate, labels), duplicate detection, the quarantine and the canonical frame. The validation's
//!   own cost is roughly this minus `read_csv`.
//! - `ingest_all_sources`: the whole ingest of the world (declarations, mirror flows, tariffs and
//!   exchange rates), files to frames.
//! - `ingest_declarations_parquet`: `ingest_declarations` from the same world written as parquet,
//!   whose numbers and dates are validated as the file types them (no broken rows: parquet is
//!   typed).
//!
//! Only the crate's entry points are used, so the benchmarks follow the ingest as it changes. The
//! world carries the generator's handful of broken rows, so the quarantine path runs too.
//! Throughput is in declaration rows per second.
//!
//! ```text
//! cargo bench --workspace --bench validate
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use mirador_ingest::{IngestParams, ingest_sources, read};
use mirador_pipeline::SourceSpec;
use mirador_synth::{Format, SynthParams, write_world};

/// Declaration items in the synthetic world.
const DECLARATIONS: usize = 100_000;

/// The world, written once to a temporary directory and removed when the benchmarks end.
struct Fixture {
    dir: PathBuf,
    sources: BTreeMap<String, SourceSpec>,
    /// Data rows of the declarations file (the items plus the broken rows).
    rows: usize,
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("mirador-bench-ingest-").tempdir().expect("temporary directory").keep();
        let params = SynthParams { seed: 11, declarations: DECLARATIONS, dirty_rows: true, ..SynthParams::default() };
        write_world(&params, &dir, Format::Csv).expect("the synthetic world is written");
        let sources: BTreeMap<String, SourceSpec> = ["declarations", "mirror_flows", "tariffs", "fx_rates"]
            .into_iter()
            .map(|id| (id.to_owned(), SourceSpec { paths: vec![dir.join(format!("{id}.csv"))], ..SourceSpec::default() }))
            .collect();
        let rows = read::read_table(&sources["declarations"].paths[0], None, None).expect("the written file reads back").rows.len();
        Fixture { dir, sources, rows }
    })
}

fn main() {
    divan::main();
    if let Some(fixture) = FIXTURE.get() {
        let _ = std::fs::remove_dir_all(&fixture.dir);
    }
}

/// Reads, decodes and parses the declarations CSV into raw text rows.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn read_csv(bencher: Bencher<'_, '_>) {
    let f = fixture();
    let path = &f.sources["declarations"].paths[0];
    bencher.counter(ItemsCount::new(f.rows)).bench(|| read::read_table(path, None, None).expect("the file reads"));
}

/// Reads and validates the declarations, with the exchange rates their values are converted at.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn ingest_declarations(bencher: Bencher<'_, '_>) {
    let f = fixture();
    let sources: BTreeMap<String, SourceSpec> = f
        .sources
        .iter()
        .filter(|(id, _)| matches!(id.as_str(), "declarations" | "fx_rates"))
        .map(|(id, s)| (id.clone(), s.clone()))
        .collect();
    let params = IngestParams::default();
    check_accepted(&ingest_sources(&sources, Path::new("."), &params).expect("the declarations ingest"));
    bencher.counter(ItemsCount::new(f.rows)).bench(|| ingest_sources(&sources, Path::new("."), &params).expect("the declarations ingest"));
}

/// The world as parquet, written once: declarations and exchange rates.
static PARQUET: OnceLock<(PathBuf, BTreeMap<String, SourceSpec>)> = OnceLock::new();

/// Reads and validates the declarations from parquet.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn ingest_declarations_parquet(bencher: Bencher<'_, '_>) {
    let (_, sources) = PARQUET.get_or_init(|| {
        let dir = fixture().dir.join("parquet");
        let params = SynthParams { seed: 11, declarations: DECLARATIONS, ..SynthParams::default() };
        write_world(&params, &dir, Format::Parquet).expect("the synthetic world is written");
        let sources = ["declarations", "fx_rates"]
            .into_iter()
            .map(|id| (id.to_owned(), SourceSpec { paths: vec![dir.join(format!("{id}.parquet"))], ..SourceSpec::default() }))
            .collect();
        (dir, sources)
    });
    let params = IngestParams::default();
    check_accepted(&ingest_sources(sources, Path::new("."), &params).expect("the declarations ingest"));
    bencher
        .counter(ItemsCount::new(DECLARATIONS))
        .bench(|| ingest_sources(sources, Path::new("."), &params).expect("the declarations ingest"));
}

/// The whole ingest of the world: four sources read, validated and framed.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn ingest_all_sources(bencher: Bencher<'_, '_>) {
    let f = fixture();
    let params = IngestParams::default();
    bencher.counter(ItemsCount::new(f.rows)).bench(|| ingest_sources(&f.sources, Path::new("."), &params).expect("the world ingests"));
}

/// The benchmark is only meaningful if nearly every row is accepted: a broken fixture (say, no
/// exchange rates) would time the quarantine instead.
fn check_accepted(out: &mirador_ingest::Ingested) {
    let accepted = out.declarations.height();
    assert!(accepted >= DECLARATIONS * 99 / 100, "only {accepted} declarations accepted: {:?}", out.reasons);
}
