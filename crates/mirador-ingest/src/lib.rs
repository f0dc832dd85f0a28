//! Ingest: the first stage of every Mirador pipeline.
//!
//! Reads the raw sources declared in the pipeline file (declarations, mirror-trade flows, tariff
//! schedule, exchange rates), maps each administration's column names onto Mirador's canonical
//! ones, validates every row with one rule per concern ([`rules`]) and writes the accepted rows as
//! canonical datasets. Rows that fail go to the `quarantine` dataset with the source file, line,
//! reason code, message and the original row; nothing is dropped silently: for every source,
//! rows in = accepted + quarantined, recorded in the run manifest. A file that cannot be read at
//! all (bad encoding, missing mandatory column) stops the run with a message naming the file.
//! Inspection outcomes that arrive after their declarations have a stage of their own,
//! [`IngestOutcomes`] ([`outcomes`]).
//!
//! ```no_run
//! use mirador_ingest::{IngestParams, ingest_sources};
//! use mirador_pipeline::PipelineFile;
//! let file = PipelineFile::load(std::path::Path::new("pipelines/kcs.toml")).unwrap();
//! let out = ingest_sources(&file.sources, &file.base_dir, &IngestParams::default()).unwrap();
//! println!("{} declarations accepted", out.declarations.height());
//! ```

pub mod declarations;
pub mod error;
pub mod fx;
pub mod mirror;
pub mod outcomes;
pub mod read;
pub mod rules;
pub mod source;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use mirador_pipeline::{SourceSpec, Stage, StageContext, StageError, StageOutput};
use mirador_schema::{DatasetId, datasets, schemas};
use polars::prelude::*;
use serde::Deserialize;
use tracing::info;

pub use error::IngestError;
pub use outcomes::{IngestOutcomes, OutcomeParams, Outcomes, ingest_outcomes};
use source::{Mapped, Quarantine, Reconciliation};

pub(crate) const DECLARATIONS: &str = datasets::DECLARATIONS;
pub(crate) const MIRROR_FLOWS: &str = datasets::MIRROR_FLOWS;
pub(crate) const TARIFFS: &str = datasets::TARIFFS;
pub(crate) const FX_RATES: &str = datasets::FX_RATES;

/// Ingest parameters (`[stage.params]` of the `ingest` stage).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct IngestParams {
    /// Accepted lengths of national tariff codes. Default `[6, 8, 10]`.
    pub hs_lengths: Vec<usize>,
    /// Earliest acceptable declaration date. Default `2000-01-01`.
    pub min_date: String,
    /// Latest acceptable declaration date. Default `2099-12-31`.
    pub max_date: String,
    /// Run as of this day (`YYYY-MM-DD`) or the end of this month (`YYYY-MM`): valid declarations
    /// dated later, and mirror flows of later periods, are set aside (counted as `deferred`, not
    /// quarantined), so a backfill of a past period sees what that night would have seen. Unset:
    /// everything.
    pub as_of: Option<String>,
    /// Most data rows one source file may hold (or claim, for parquet). Default 500 million.
    pub max_rows_per_file: usize,
    /// Most rows quarantined in one run before ingest gives up: far more bad rows than that means
    /// the file is not what its mapping says (wrong separator, wrong export), and an analyst
    /// should look before a million-row quarantine is written. Default 1 million.
    pub max_quarantined: usize,
}

impl Default for IngestParams {
    fn default() -> Self {
        IngestParams {
            hs_lengths: vec![6, 8, 10],
            min_date: "2000-01-01".into(),
            max_date: "2099-12-31".into(),
            as_of: None,
            max_rows_per_file: read::MAX_ROWS,
            max_quarantined: 1_000_000,
        }
    }
}

impl IngestParams {
    fn dates(&self) -> Result<(NaiveDate, NaiveDate), IngestError> {
        let parse =
            |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| IngestError::Params(format!("`{s}` is not a YYYY-MM-DD date")));
        let (min, max) = (parse(&self.min_date)?, parse(&self.max_date)?);
        if min > max {
            return Err(IngestError::Params(format!("min-date {min} is after max-date {max}")));
        }
        if self.hs_lengths.is_empty() || self.hs_lengths.iter().any(|l| ![6, 8, 10].contains(l)) {
            return Err(IngestError::Params(format!("hs-lengths {:?} must be a non-empty subset of [6, 8, 10]", self.hs_lengths)));
        }
        Ok((min, max))
    }

    /// The last day the run sees, from `as-of`.
    pub fn as_of_date(&self) -> Result<Option<NaiveDate>, IngestError> {
        let Some(raw) = self.as_of.as_deref() else { return Ok(None) };
        let bad = || IngestError::Params(format!("as-of `{raw}` is not a YYYY-MM-DD date or a YYYY-MM month"));
        if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            return Ok(Some(day));
        }
        let first = NaiveDate::parse_from_str(&format!("{raw}-01"), "%Y-%m-%d").map_err(|_| bad())?;
        let next = first.checked_add_months(chrono::Months::new(1)).ok_or_else(bad)?;
        Ok(next.pred_opt())
    }
}

/// Sets aside the rows dated after `as_of`: declarations by date, mirror flows by period (a
/// `YYYY` period is kept once its year has begun). Returns the kept rows and how many were set
/// aside.
fn defer_after(df: DataFrame, as_of: NaiveDate, by_date: bool) -> PolarsResult<(DataFrame, usize)> {
    let before = df.height();
    let keep = if by_date {
        let last = mirador_schema::day::of(as_of);
        col(mirador_schema::col::DATE).cast(DataType::Int32).lt_eq(lit(last))
    } else {
        col(mirador_schema::col::PERIOD).lt_eq(lit(as_of.format("%Y-%m").to_string()))
    };
    let kept = df.lazy().filter(keep).collect()?;
    let deferred = before - kept.height();
    Ok((kept, deferred))
}

/// The result of ingesting all sources.
pub struct Ingested {
    /// Accepted declarations.
    pub declarations: DataFrame,
    /// Accepted mirror flows (empty when the pipeline has none).
    pub mirror_flows: DataFrame,
    /// Accepted tariff lines.
    pub tariffs: DataFrame,
    /// Accepted exchange rates.
    pub fx_rates: DataFrame,
    /// Every rejected row.
    pub quarantine: DataFrame,
    /// Rows in / accepted / quarantined per source.
    pub reconciliation: BTreeMap<String, Reconciliation>,
    /// Repairs and duplicate counts.
    pub declaration_stats: declarations::DeclarationStats,
    /// Quarantine reason counts.
    pub reasons: BTreeMap<String, usize>,
    /// What the manifest should warn about (keys made by ingest for a source without one).
    pub warnings: Vec<String>,
}

/// Opens every file of a source (header read and mapped; rows are streamed by the validation).
fn open_all<'a>(
    id: &str,
    spec: &'a SourceSpec,
    base_dir: &Path,
    mandatory: &[&str],
    params: &IngestParams,
    warnings: &mut Vec<String>,
) -> Result<Vec<Mapped<'a>>, IngestError> {
    if spec.paths.is_empty() {
        return Err(IngestError::Params(format!("source `{id}` lists no paths")));
    }
    spec.paths
        .iter()
        .map(|p| {
            let path = if p.is_absolute() { p.clone() } else { base_dir.join(p) };
            let table =
                read::TableReader::open(&path, spec.separator, spec.encoding.as_deref())?.with_max_rows(params.max_rows_per_file)?;
            info!(source = id, path = %path.display(), encoding = table.encoding(), "Reading source file.");
            let mapped = Mapped::new(&path, table, spec, mandatory)?;
            for w in mapped.warnings() {
                tracing::warn!(source = id, "{w}");
            }
            warnings.extend(mapped.warnings().iter().cloned());
            Ok(mapped)
        })
        .collect()
}

fn empty(schema: &Schema) -> DataFrame {
    DataFrame::empty_with_schema(schema)
}

/// Fails once more than `limit` rows were quarantined (reading source `id`), naming the most
/// common reasons.
fn too_many(q: &Quarantine, id: &str, limit: usize) -> Result<(), IngestError> {
    if q.overflow() == 0 {
        return Ok(());
    }
    let mut reasons: Vec<(String, usize)> = q.counts().into_iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    let top: Vec<String> = reasons.iter().take(3).map(|(r, n)| format!("{r} ×{n}")).collect();
    Err(IngestError::Params(format!(
        "more than {limit} rows quarantined (reading `{id}`; most common reasons: {}): the file is probably not what its \
         mapping says (separator, encoding, column names, another export). Fix the source or its mapping, or raise \
         max-quarantined if so many bad rows are expected.",
        top.join(", ")
    )))
}

/// Ingests every source present in `sources` (each optional; at least one is needed).
pub fn ingest_sources(sources: &BTreeMap<String, SourceSpec>, base_dir: &Path, params: &IngestParams) -> Result<Ingested, IngestError> {
    let (min_date, max_date) = params.dates()?;
    let as_of = params.as_of_date()?;
    let mut quarantine = Quarantine::with_limit(params.max_quarantined);
    let too_many = |q: &Quarantine, id: &str| too_many(q, id, params.max_quarantined);
    let mut reconciliation = BTreeMap::new();
    let mut warnings = Vec::new();

    let (fx_rates, fx_table) = match sources.get(FX_RATES) {
        Some(spec) => {
            let files = open_all(FX_RATES, spec, base_dir, fx::FX_MANDATORY, params, &mut warnings)?;
            let (df, table, rec) = fx::ingest_fx(&files, &mut quarantine)?;
            too_many(&quarantine, FX_RATES)?;
            reconciliation.insert(FX_RATES.to_owned(), rec);
            (df, table)
        }
        None => (empty(&schemas::fx_rates()), fx::FxTable::default()),
    };
    let tariffs = match sources.get(TARIFFS) {
        Some(spec) => {
            let files = open_all(TARIFFS, spec, base_dir, fx::TARIFF_MANDATORY, params, &mut warnings)?;
            let (df, rec) = fx::ingest_tariffs(&files, &mut quarantine)?;
            too_many(&quarantine, TARIFFS)?;
            reconciliation.insert(TARIFFS.to_owned(), rec);
            df
        }
        None => empty(&schemas::tariffs()),
    };
    let mirror_flows = match sources.get(MIRROR_FLOWS) {
        Some(spec) => {
            let files = open_all(MIRROR_FLOWS, spec, base_dir, mirror::MANDATORY, params, &mut warnings)?;
            let (mut df, mut rec) = mirror::ingest(&files, &mut quarantine)?;
            if let Some(as_of) = as_of {
                (df, rec.deferred) = defer_after(df, as_of, false)?;
                rec.accepted -= rec.deferred;
            }
            too_many(&quarantine, MIRROR_FLOWS)?;
            reconciliation.insert(MIRROR_FLOWS.to_owned(), rec);
            df
        }
        None => empty(&schemas::mirror_flows()),
    };
    if sources.is_empty() {
        return Err(IngestError::Params("the pipeline declares no sources to ingest".into()));
    }
    // Declarations are optional too: a mirror-statistics-only pipeline (e.g. a study of
    // partners' reporting) has none, and gets an empty, correctly typed dataset.
    let (declarations, declaration_stats) = match sources.get(DECLARATIONS) {
        Some(spec) => {
            let files = open_all(DECLARATIONS, spec, base_dir, declarations::MANDATORY, params, &mut warnings)?;
            let rules = declarations::DeclarationRules { hs_lengths: &params.hs_lengths, min_date, max_date, fx: &fx_table };
            let (mut df, mut rec, stats) = declarations::ingest(&files, &rules, &mut quarantine)?;
            if let Some(as_of) = as_of {
                (df, rec.deferred) = defer_after(df, as_of, true)?;
                rec.accepted -= rec.deferred;
            }
            too_many(&quarantine, DECLARATIONS)?;
            reconciliation.insert(DECLARATIONS.to_owned(), rec);
            (df, stats)
        }
        None => (empty(&schemas::declarations()), declarations::DeclarationStats::default()),
    };

    let reasons = quarantine.counts();
    Ok(Ingested {
        declarations,
        mirror_flows,
        tariffs,
        fx_rates,
        quarantine: quarantine.into_frame()?,
        reconciliation,
        declaration_stats,
        reasons,
        warnings,
    })
}

/// Reads and validates the raw sources.
///
/// ## Sources
/// - `declarations`: customs import declarations, one row per goods item.
/// - `mirror_flows`, `tariffs`, `fx_rates` (optional).
/// ## Outputs
/// - `declarations`, `mirror_flows`, `tariffs`, `fx_rates`: accepted rows, canonical schemas
///   ([`mirador_schema::schemas`]); empty when the source is absent.
/// - `quarantine`: every rejected row with its reason.
pub struct Ingest;

impl Stage for Ingest {
    fn name(&self) -> &'static str {
        "ingest"
    }
    fn inputs(&self) -> &'static [DatasetId] {
        &[]
    }
    fn outputs(&self) -> &'static [DatasetId] {
        &[datasets::DECLARATIONS, datasets::MIRROR_FLOWS, datasets::TARIFFS, datasets::FX_RATES, datasets::QUARANTINE]
    }
    fn sources(&self) -> &'static [&'static str] {
        &[DECLARATIONS, MIRROR_FLOWS, TARIFFS, FX_RATES]
    }
    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let params: IngestParams = ctx.params()?;
        let mut sources = BTreeMap::new();
        for id in self.sources() {
            if let Ok(spec) = ctx.source(id) {
                sources.insert((*id).to_owned(), spec.clone());
            }
        }
        let out = ingest_sources(&sources, &ctx.resolve(Path::new("")), &params)?;
        info!(accepted = out.declarations.height(), quarantined = out.quarantine.height(), "Ingested declarations.");
        let reconciliation = serde_json::to_value(&out.reconciliation).map_err(|e| StageError::Data(e.to_string()))?;
        let stats = serde_json::to_value(&out.declaration_stats).map_err(|e| StageError::Data(e.to_string()))?;
        let reasons = serde_json::to_value(&out.reasons).map_err(|e| StageError::Data(e.to_string()))?;
        let output = if out.warnings.is_empty() { StageOutput::new() } else { StageOutput::new().with_metric("warnings", out.warnings) };
        Ok(output
            .with_dataset(datasets::DECLARATIONS, out.declarations)
            .with_dataset(datasets::MIRROR_FLOWS, out.mirror_flows)
            .with_dataset(datasets::TARIFFS, out.tariffs)
            .with_dataset(datasets::FX_RATES, out.fx_rates)
            .with_dataset(datasets::QUARANTINE, out.quarantine)
            .with_metric("reconciliation", reconciliation)
            .with_metric("declarations", stats)
            .with_metric("quarantine_reasons", reasons))
    }
}
