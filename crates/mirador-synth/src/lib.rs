//! The seeded synthetic customs world: Mirador's fixtures, sample data and benchmark input.
//!
//! A home country imports from about 25 partners. Importers have a latent riskiness; risky ones
//! plant fraud of four known kinds — **undervaluation** (a fraction of the true price declared),
//! **misclassification** to a lower-duty HS code, **false origin** to claim a preference, and
//! **unrecorded imports** that appear only in partners' export statistics. Customs inspects a
//! biased sample and labels it. Partners report their exports FOB (a per-partner CIF/FOB factor
//! of 1.06–1.10 and 1 % reporting noise); one partner does not report. The ground truth
//! ([`Truth`]) records every planted fraud and the planted gap and lost duty per
//! HS6 × partner × year, so every stage can be measured against it.
//!
//! ```
//! use mirador_synth::{SynthParams, generate};
//! let world = generate(&SynthParams::small(7)).unwrap();
//! assert!(world.declarations.height() > 10_000);
//! assert_eq!(world.declarations.schema().as_ref(), &mirador_schema::schemas::declarations());
//! ```

mod audits;
mod catalog;
pub mod release;
mod seasons;
mod shift;
mod world;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use polars::prelude::*;
use serde::Serialize;

pub use audits::inspection_outcomes;
pub use seasons::LeakParams;
pub use shift::ShiftParams;
pub use world::{generate, split_by};

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Invalid parameters.
    #[error("invalid synthetic-world parameters: {0}")]
    Params(String),
    /// Building a frame failed.
    #[error(transparent)]
    Polars(#[from] PolarsError),
    /// Writing failed.
    #[error(transparent)]
    Io(#[from] mirador_io::IoError),
}

/// Parameters of the synthetic world.
#[derive(Debug, Clone, Serialize)]
pub struct SynthParams {
    /// Seed: the same seed gives the same world, byte for byte.
    pub seed: u64,
    /// Number of declaration items (before any dirty rows are added to written files).
    pub declarations: usize,
    /// First period, `YYYY-MM`.
    pub start_period: String,
    /// Number of months.
    pub months: u32,
    /// The declaring country (ISO alpha-2).
    pub home_country: String,
    /// Share of a high-risk importer's items that carry planted fraud.
    pub high_risk_fraud_rate: f64,
    /// Share of a low-risk importer's items that carry planted fraud.
    pub low_risk_fraud_rate: f64,
    /// Share of importers that are high-risk.
    pub high_risk_share: f64,
    /// Base share of items inspected (labelled); risky importers are inspected more.
    pub inspection_rate: f64,
    /// Number of HS6 × partner cells with unrecorded imports.
    pub unrecorded_cells: usize,
    /// Add a few broken rows (bad codes, negative mass, duplicates…) to the written declarations,
    /// so that ingest's quarantine has something to show.
    pub dirty_rows: bool,
    /// Fraud that moves part way through the history ([`ShiftParams`]); off by default. With it
    /// off the world is the same, byte for byte, as before the option existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift: Option<ShiftParams>,
    /// Amplitude of the yearly cycle of the monthly trade volume, in `[0, 0.9]` (`seasons`); off
    /// by default, and then the world is the same, byte for byte, as before the option existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seasonality: Option<f64>,
    /// A planted revenue leak ([`LeakParams`]), the ground truth of the revenue forecasts' alarms;
    /// off by default, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leak: Option<LeakParams>,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            seed: 42,
            declarations: 30_000,
            start_period: "2023-01".into(),
            months: 12,
            home_country: "KE".into(),
            high_risk_fraud_rate: 0.35,
            low_risk_fraud_rate: 0.02,
            high_risk_share: 0.12,
            inspection_rate: 0.12,
            unrecorded_cells: 10,
            dirty_rows: true,
            shift: None,
            seasonality: None,
            leak: None,
        }
    }
}

impl SynthParams {
    /// A small world for tests: about 20,000 items over 12 months.
    pub fn small(seed: u64) -> Self {
        SynthParams { seed, declarations: 20_000, dirty_rows: false, ..Default::default() }
    }

    /// Checks the parameters (ranges, months, the shift); returns the first year and month.
    pub fn check(&self) -> Result<(i32, u32), SynthError> {
        let bad = |m: &str| Err(SynthError::Params(m.to_owned()));
        if self.declarations == 0 || self.months == 0 {
            return bad("declarations and months must be positive");
        }
        for (name, v) in [
            ("high-risk-fraud-rate", self.high_risk_fraud_rate),
            ("low-risk-fraud-rate", self.low_risk_fraud_rate),
            ("high-risk-share", self.high_risk_share),
            ("inspection-rate", self.inspection_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(&format!("{name} = {v} is not in [0, 1]"));
            }
        }
        let (y, m) = self.start_period.split_once('-').ok_or_else(|| SynthError::Params("start-period is not YYYY-MM".into()))?;
        let (Ok(y), Ok(m)) = (y.parse::<i32>(), m.parse::<u32>()) else {
            return bad("start-period is not YYYY-MM");
        };
        if !(1..=12).contains(&m) {
            return bad("start-period month is not 1–12");
        }
        if let Some(shift) = &self.shift {
            shift.check((y, m), self.months)?;
        }
        if let Some(a) = self.seasonality.filter(|a| !(0.0..=0.9).contains(a)) {
            return bad(&format!("seasonality = {a} is not in [0, 0.9]"));
        }
        if let Some(leak) = &self.leak {
            leak.check((y, m), self.months)?;
        }
        Ok((y, m))
    }
}

/// A generated world.
pub struct World {
    /// Declarations, exactly in the canonical schema ingest produces.
    pub declarations: DataFrame,
    /// Home import statistics and partners' export statistics, canonical mirror schema.
    pub mirror_flows: DataFrame,
    /// Tariff schedule.
    pub tariffs: DataFrame,
    /// Monthly exchange rates.
    pub fx_rates: DataFrame,
    /// What was planted.
    pub truth: Truth,
}

/// The ground truth of a world.
pub struct Truth {
    /// Per declaration item: `declaration_id`, `item_no`, `fraud_kind` (`none`, `undervaluation`,
    /// `misclassification`, `false_origin`), `true_hs6`, `true_origin`, `true_value_usd`,
    /// `planted_lost_duty_usd`; with a [`ShiftParams`] shift, also `shifted` (the item belongs to
    /// the fraud that moved: declared by a new entrant).
    pub declarations: DataFrame,
    /// Per HS6 × partner × year: `planted_gap_usd` (true CIF imports − declared imports, including
    /// unrecorded imports) and `planted_lost_duty_usd` (positive gap × the cell's applicable rate).
    pub gaps: DataFrame,
    /// Per importer (worlds generated in memory, [`generate`]; not written to files):
    /// `importer_id`, `high_risk`, `declarations`, `planted_lost_duty_usd` (the sum of its items'
    /// planted lost duty, what a perfect audit of it would recover). The yardstick of the auditee
    /// list.
    pub importers: DataFrame,
}

impl Truth {
    /// Each declaration item's planted lost duty, keyed by (declaration id, item number): what a
    /// replay or an evaluation takes as the truth of a row.
    pub fn lost_duty_by_item(&self) -> PolarsResult<std::collections::HashMap<(String, i64), f64>> {
        let t = &self.declarations;
        let ids = t.column(mirador_schema::col::DECLARATION_ID)?.str()?.clone();
        let items = t.column(mirador_schema::col::ITEM_NO)?.cast(&DataType::Int64)?;
        let lost = t.column("planted_lost_duty_usd")?.f64()?.clone();
        Ok(ids
            .iter()
            .zip(items.i64()?.iter())
            .zip(lost.iter())
            .filter_map(|((id, item), lost)| Some(((id?.to_owned(), item?), lost?)))
            .collect())
    }
}

/// File format of a written world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV with canonical headers.
    Csv,
    /// Parquet.
    Parquet,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            other => Err(format!("unknown format `{other}` (csv or parquet)")),
        }
    }
}

/// What [`write_world`] wrote.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Parameters.
    pub params: SynthParams,
    /// Rows per file.
    pub rows: Vec<(String, usize)>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "synthetic world, seed {}:", self.params.seed)?;
        for (file, rows) in &self.rows {
            writeln!(f, "  {file:<28} {rows:>10} rows")?;
        }
        Ok(())
    }
}

/// Declaration items generated and written per chunk when streaming.
const CHUNK: usize = 500_000;

/// Generates a world and writes it to `out_dir`: `declarations`, `mirror_flows`, `tariffs`,
/// `fx_rates`, `truth_declarations`, `truth_gaps` (CSV or parquet), `world.json`, and for CSV
/// worlds the late `inspection_outcomes` feed ([`inspection_outcomes`]) and the release-time
/// columns of the declarations ([`release`]; parquet worlds do not carry them yet).
///
/// Parquet worlds are streamed: declarations and their truth are generated and written in chunks
/// of 500,000 items, so memory stays bounded whatever the size (only the per-cell statistics are
/// kept). Parquet is typed, so parquet worlds carry no broken rows (`dirty_rows` is ignored and
/// recorded as `false`). CSV worlds are built in memory (they are for small samples).
pub fn write_world(params: &SynthParams, out_dir: &Path, format: Format) -> Result<Summary, SynthError> {
    write_world_in_chunks(params, out_dir, format, CHUNK)
}

/// [`write_world`] as parquet with the declarations split by month, `declarations/<YYYY-MM>.parquet`:
/// what a nightly run with carried state receives, one period at a time.
pub fn write_world_by_month(params: &SynthParams, out_dir: &Path) -> Result<Summary, SynthError> {
    write_parquet_world(params, out_dir, CHUNK, true)
}

/// [`write_world`] with a chosen chunk size for parquet streaming (tests use small chunks).
#[doc(hidden)]
pub fn write_world_in_chunks(params: &SynthParams, out_dir: &Path, format: Format, chunk: usize) -> Result<Summary, SynthError> {
    match format {
        Format::Csv => write_csv_world(params, out_dir),
        Format::Parquet => write_parquet_world(params, out_dir, chunk.max(1), false),
    }
}

fn write_csv_world(params: &SynthParams, out_dir: &Path) -> Result<Summary, SynthError> {
    let world = generate(params)?;
    let outcomes = inspection_outcomes(&world.declarations, &world.truth.declarations, params.seed)?;
    // The release times come from their own random stream: the other columns are unchanged.
    let mut declarations = release::with_release_times(&world.declarations, params.seed)?;
    if params.dirty_rows {
        declarations = world::with_dirty_rows(&declarations, params.seed)?;
    }
    let files = [
        ("declarations", declarations),
        ("mirror_flows", world.mirror_flows),
        ("tariffs", world.tariffs),
        ("fx_rates", world.fx_rates),
        ("truth_declarations", world.truth.declarations),
        ("truth_gaps", world.truth.gaps),
        ("inspection_outcomes", outcomes),
    ];
    let mut rows = Vec::new();
    for (name, df) in &files {
        mirador_io::write_csv(df, &out_dir.join(format!("{name}.csv")))?;
        rows.push((format!("{name}.csv"), df.height()));
    }
    summarise(params.clone(), rows, out_dir)
}

fn write_parquet_world(params: &SynthParams, out_dir: &Path, chunk_size: usize, by_month: bool) -> Result<Summary, SynthError> {
    let mut g = world::Generator::new(params)?;
    let mut truth_stream: Option<mirador_io::ParquetStream> = None;
    // The open declarations file: (month or "" when not split, stream).
    let mut declarations_stream: Option<(String, mirador_io::ParquetStream)> = None;
    let mut months = Vec::new();
    let mut n = 0;
    // The outcomes feed, decided up to the world's last day, known only at the end (a few % of
    // the declarations).
    let mut outcomes: Option<DataFrame> = None;
    let (mut chunks, mut last_day) = (0_u64, i32::MIN);
    if by_month {
        mirador_io::create_dir(&out_dir.join("declarations"))?;
    }
    // One thread generates the next chunk while this one encodes and writes the previous.
    let g = std::thread::scope(|scope| -> Result<world::Generator<'_>, SynthError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let producer = scope.spawn(move || {
            while let Some(chunk) = g.next_chunk(chunk_size) {
                if tx.send(chunk).is_err() {
                    break;
                }
            }
            g
        });
        for chunk in rx {
            let declarations = world::declarations_frame(&chunk)?;
            let truth = world::truth_declarations(&chunk)?;
            if truth_stream.is_none() {
                truth_stream = Some(mirador_io::ParquetStream::create(&out_dir.join("truth_declarations.parquet"), truth.schema())?);
            }
            if let Some(t) = truth_stream.as_mut() {
                t.write(&truth)?;
            }
            n += declarations.height();
            let dates = declarations.column(mirador_schema::col::DATE)?.cast(&DataType::Int32)?;
            last_day = last_day.max(dates.i32()?.max().unwrap_or(i32::MIN));
            let decided = audits::decided_by(&declarations, &truth, params.seed ^ chunks, i32::MAX)?;
            chunks += 1;
            match outcomes.as_mut() {
                Some(all) => {
                    all.vstack_mut_owned(decided)?;
                }
                None => outcomes = Some(decided),
            }
            // Months only grow through the generated rows, so each chunk spans one or two of them.
            let parts =
                if by_month { world::split_by(&declarations, mirador_schema::col::PERIOD)? } else { vec![(String::new(), declarations)] };
            for (month, part) in parts {
                if declarations_stream.as_ref().is_none_or(|(m, _)| *m != month) {
                    if let Some((m, d)) = declarations_stream.take() {
                        d.finish()?;
                        months.push(m);
                    }
                    let path = if by_month {
                        out_dir.join("declarations").join(format!("{month}.parquet"))
                    } else {
                        out_dir.join("declarations.parquet")
                    };
                    declarations_stream = Some((month.clone(), mirador_io::ParquetStream::create(&path, part.schema())?));
                }
                if let Some((_, d)) = declarations_stream.as_mut() {
                    d.write(&part)?;
                }
            }
        }
        producer.join().map_err(|_| SynthError::Params("the generator thread panicked".into()))
    })?;
    if let Some((m, d)) = declarations_stream {
        d.finish()?;
        months.push(m);
    }
    if let Some(t) = truth_stream {
        t.finish()?;
    }
    let outcomes_rows = write_outcomes(outcomes, last_day, out_dir, by_month.then_some(months.as_slice()))?;
    let (mut mirror, mut gaps, mut tariffs, mut fx) = g.finish()?;
    let mut rows = if by_month {
        vec![(
            format!("declarations/{}..{}.parquet", months.first().map_or("", String::as_str), months.last().map_or("", String::as_str)),
            n,
        )]
    } else {
        vec![("declarations.parquet".to_owned(), n)]
    };
    for (name, df) in [("mirror_flows", &mut mirror), ("tariffs", &mut tariffs), ("fx_rates", &mut fx)] {
        mirador_io::write_parquet(df, &out_dir.join(format!("{name}.parquet")))?;
        rows.push((format!("{name}.parquet"), df.height()));
    }
    rows.push(("truth_declarations.parquet".to_owned(), n));
    rows.push((if by_month { "outcomes/<decision month>.parquet" } else { "inspection_outcomes.parquet" }.to_owned(), outcomes_rows));
    mirador_io::write_parquet(&mut gaps, &out_dir.join("truth_gaps.parquet"))?;
    rows.push(("truth_gaps.parquet".to_owned(), gaps.height()));
    summarise(SynthParams { dirty_rows: false, ..params.clone() }, rows, out_dir)
}

/// Writes a streamed world's outcomes feed: those decided by its last declaration day (`last`), as
/// `inspection_outcomes.parquet`, or with `months` one file per month of decision,
/// `outcomes/<YYYY-MM>.parquet` (empty for a month without decisions), each what the runs of that
/// month are handed. Returns the rows written.
fn write_outcomes(outcomes: Option<DataFrame>, last: i32, out_dir: &Path, months: Option<&[String]>) -> Result<usize, SynthError> {
    let Some(all) = outcomes else { return Ok(0) };
    let decided = all.column(mirador_schema::col::DECIDED_ON)?.cast(&DataType::Int32)?;
    let mask: BooleanChunked = decided.i32()?.iter().map(|d| d.is_some_and(|d| d <= last)).collect();
    let mut all =
        all.filter(&mask)?.sort([mirador_schema::col::DECIDED_ON, mirador_schema::col::DECLARATION_ID], SortMultipleOptions::default())?;
    let Some(months) = months else {
        mirador_io::write_parquet(&mut all, &out_dir.join("inspection_outcomes.parquet"))?;
        return Ok(all.height());
    };
    let dir = out_dir.join("outcomes");
    mirador_io::create_dir(&dir)?;
    let month = all.column(mirador_schema::col::DECIDED_ON)?.cast(&DataType::String)?;
    let month: Vec<String> = month.str()?.iter().map(|d| d.and_then(|d| d.get(..7)).unwrap_or_default().to_owned()).collect();
    let mut written = 0;
    for m in months {
        let mask: BooleanChunked = month.iter().map(|x| x == m).collect();
        let mut part = all.filter(&mask)?;
        written += part.height();
        mirador_io::write_parquet(&mut part, &dir.join(format!("{m}.parquet")))?;
    }
    Ok(written)
}

fn summarise(params: SynthParams, rows: Vec<(String, usize)>, out_dir: &Path) -> Result<Summary, SynthError> {
    let summary = Summary { params, rows };
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| SynthError::Params(e.to_string()))?;
    mirador_io::write_bytes(&out_dir.join("world.json"), &json)?;
    Ok(summary)
}
