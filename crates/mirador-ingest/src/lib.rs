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
mod reference;
pub mod release;
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
    /// Least share of a source's rows that must pass validation (rows that are not quarantined;
    /// deferred rows are valid). Below it ingest fails with the most common reasons: a source
    /// mostly quarantined is a wrong mapping, separator or date format, not bad luck. Default
    /// 0.5; 0 turns the rule off.
    pub min_accepted_share: f64,
    /// The HS vintages whose known six-digit codes (`2017`, `2022`) a lost leading zero may be
    /// restored into: `8471300` is not repaired to `08471300` (HS6 084713 does not exist) but
    /// quarantined as `hs_length`. Default both; `[]` repairs nothing.
    pub hs_vintages: Vec<mirador_schema::hs::Vintage>,
    /// Which declaration codes must be known in `hs-vintages`: `repairs` (default: only a code
    /// whose leading zero is restored) or `all` (every code's HS6; an unknown one is quarantined
    /// as `hs_unknown`). The bundled synthetic world uses 080300 (bananas, HS 2007: split into
    /// 080310/080390 in 2012), so `all` would quarantine its banana declarations.
    pub hs_known: rules::HsKnown,
    /// How party ids (importer, declarant, seller, courier) are normalised once trimmed:
    /// `upper` (default), `lower` or `keep`. ` imp-01` and `IMP-01` are one importer. Declaration
    /// ids are only trimmed: the outcomes feed keys on them as the declaring system wrote them.
    pub id_case: rules::IdCase,
    /// Largest value of one goods item (USD); above it the row is quarantined as
    /// `implausible_value`. Default 1e10 (ten billion: more than any single ship or aircraft).
    pub max_item_value_usd: f64,
    /// Largest net mass of one goods item (kg), `implausible_mass` above. Default 1e9 (a million
    /// tonnes: more than the largest bulk carrier's load).
    pub max_item_mass_kg: f64,
    /// Unit price bounds of one goods item (USD per kg, when it has a mass and a value):
    /// `implausible_unit_price` outside. Default `[1e-6, 1e8]` (below a tenth of a cent per
    /// tonne; above a hundred million USD per kg, more than gem diamonds).
    pub unit_price_usd_per_kg: [f64; 2],
    /// Plausible USD per unit of any currency: `implausible_fx_rate` outside. Default
    /// `[1e-7, 10]` (the strongest currency, KWD, is about 3.3 USD; an inverted KES or KRW rate is
    /// 130 or 1,300).
    pub fx_usd_per_unit: [f64; 2],
    /// Bands of USD per unit for named currencies, e.g. `{ KES = [0.005, 0.012] }`, checked on
    /// top of `fx-usd-per-unit`.
    pub fx_bands: BTreeMap<String, [f64; 2]>,
    /// A rate more than this factor above or below the median of its currency's rates (with at
    /// least 3 of them) is `implausible_fx_rate`: an inverted rate among right ones. Default 10.
    pub fx_max_ratio_to_median: f64,
    /// The day the run happens (`YYYY-MM-DD`); default today (UTC). Declarations dated after it
    /// and mirror flows of a later period are quarantined as `date_in_future` (a typo such as 2035
    /// for 2025 would otherwise enter the carried state and refuse every later night). Set it to
    /// replay a past night.
    pub run_day: Option<String>,
    /// Declarations dated more than this many days after the newest date of the rest of the
    /// source, with no declaration in between, are quarantined as `date_in_future`: a typo in a
    /// past year that `run-day` cannot see. At most 1 % of a source's rows, and only in sources
    /// of at least 100 rows, are taken for typos. Default 92; 0 turns the rule off.
    pub date_gap_days: u32,
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
            min_accepted_share: 0.5,
            hs_vintages: mirador_schema::hs::Vintage::ALL.to_vec(),
            hs_known: rules::HsKnown::Repairs,
            id_case: rules::IdCase::Upper,
            max_item_value_usd: 1e10,
            max_item_mass_kg: 1e9,
            unit_price_usd_per_kg: [1e-6, 1e8],
            fx_usd_per_unit: [1e-7, 10.0],
            fx_bands: BTreeMap::new(),
            fx_max_ratio_to_median: 10.0,
            run_day: None,
            date_gap_days: 92,
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
        if !(0.0..=1.0).contains(&self.min_accepted_share) {
            return Err(IngestError::Params(format!("min-accepted-share = {} must be within 0 .. 1", self.min_accepted_share)));
        }
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 { Ok(()) } else { Err(IngestError::Params(format!("{key} = {v} must be a finite number above 0"))) }
        };
        let band = |key: &str, [lo, hi]: [f64; 2]| {
            if lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo < hi {
                Ok(())
            } else {
                Err(IngestError::Params(format!("{key} = [{lo}, {hi}] must be two finite numbers, 0 <= low < high")))
            }
        };
        positive("max-item-value-usd", self.max_item_value_usd)?;
        positive("max-item-mass-kg", self.max_item_mass_kg)?;
        band("unit-price-usd-per-kg", self.unit_price_usd_per_kg)?;
        band("fx-usd-per-unit", self.fx_usd_per_unit)?;
        for (currency, b) in &self.fx_bands {
            band(&format!("fx-bands.{currency}"), *b)?;
        }
        if !(self.fx_max_ratio_to_median.is_finite() && self.fx_max_ratio_to_median > 1.0) {
            return Err(IngestError::Params(format!(
                "fx-max-ratio-to-median = {} must be a finite number above 1",
                self.fx_max_ratio_to_median
            )));
        }
        Ok((min, max))
    }

    /// The day the run happens: `run-day`, else today (UTC).
    pub fn run_day(&self) -> Result<NaiveDate, IngestError> {
        match self.run_day.as_deref() {
            Some(raw) => NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map_err(|_| IngestError::Params(format!("run-day `{raw}` is not a YYYY-MM-DD date"))),
            None => Ok(chrono::Utc::now().date_naive()),
        }
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
        df.column(mirador_schema::col::DATE)?.cast(&DataType::Int32)?.i32()?.lt_eq(last)
    } else {
        let last = as_of.format("%Y-%m").to_string();
        df.column(mirador_schema::col::PERIOD)?.str()?.lt_eq(last.as_str())
    };
    let kept = df.filter(&keep)?;
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

/// Fails when fewer than `min_share` of a source's rows passed validation, naming the most
/// common reasons with an example of each: such a source is a wrong mapping, separator or date
/// format, and its few accepted rows would make every later figure wrong without an error.
fn enough_accepted(q: &Quarantine, id: &str, rec: &Reconciliation, min_share: f64) -> Result<(), IngestError> {
    if rec.rows_in == 0 || min_share <= 0.0 {
        return Ok(());
    }
    let valid = rec.rows_in - rec.quarantined;
    if valid as f64 >= min_share * rec.rows_in as f64 {
        return Ok(());
    }
    let mut reasons = q.top_reasons(id);
    reasons.truncate(3);
    let top: Vec<String> = reasons.iter().map(|(code, n, example)| format!("{} {code} ({example})", thousands(*n))).collect();
    Err(IngestError::Rejected(format!(
        "`{id}`: {:.0} % of rows quarantined ({} of {}; min-accepted-share = {min_share}): {}. The source is probably not what its \
         mapping says (separator, date-format, decimal, column names, another export); the quarantine lists every row.",
        100.0 * rec.quarantined as f64 / rec.rows_in as f64,
        thousands(rec.quarantined),
        thousands(rec.rows_in),
        top.join("; ")
    )))
}

/// `54000` → `54,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Ingests every source present in `sources` (each optional; at least one is needed).
pub fn ingest_sources(sources: &BTreeMap<String, SourceSpec>, base_dir: &Path, params: &IngestParams) -> Result<Ingested, IngestError> {
    let (min_date, max_date) = params.dates()?;
    let as_of = params.as_of_date()?;
    let run_day = params.run_day()?;
    let fx_bounds = fx::FxBounds {
        usd_per_unit: params.fx_usd_per_unit,
        bands: params.fx_bands.iter().map(|(c, b)| (c.to_ascii_uppercase(), *b)).collect(),
        max_ratio_to_median: params.fx_max_ratio_to_median,
    };
    let enough = |q: &Quarantine, id: &str, rec: &Reconciliation| enough_accepted(q, id, rec, params.min_accepted_share);
    let mut quarantine = Quarantine::with_limit(params.max_quarantined);
    let too_many = |q: &Quarantine, id: &str| too_many(q, id, params.max_quarantined);
    let mut reconciliation = BTreeMap::new();
    let mut warnings = Vec::new();

    let (fx_rates, fx_table) = match sources.get(FX_RATES) {
        Some(spec) => {
            let files = open_all(FX_RATES, spec, base_dir, fx::FX_MANDATORY, params, &mut warnings)?;
            let (df, table, rec) = fx::ingest_fx(&files, &fx_bounds, &mut quarantine)?;
            too_many(&quarantine, FX_RATES)?;
            enough(&quarantine, FX_RATES, &rec)?;
            reconciliation.insert(FX_RATES.to_owned(), rec);
            (df, table)
        }
        None => (empty(&schemas::fx_rates()), fx::FxTable::default()),
    };
    let tariffs = match sources.get(TARIFFS) {
        Some(spec) => {
            let files = open_all(TARIFFS, spec, base_dir, fx::TARIFF_MANDATORY, params, &mut warnings)?;
            let (df, rec) = fx::ingest_tariffs(&files, &params.hs_vintages, &mut quarantine)?;
            too_many(&quarantine, TARIFFS)?;
            enough(&quarantine, TARIFFS, &rec)?;
            reconciliation.insert(TARIFFS.to_owned(), rec);
            df
        }
        None => empty(&schemas::tariffs()),
    };
    if sources.is_empty() {
        return Err(IngestError::Params("the pipeline declares no sources to ingest".into()));
    }
    // Mirror flows and declarations do not depend on each other: they are read side by side, each
    // into a quarantine of its own, and their rows are quarantined in this order after (the
    // mirror flows' rows first, as if read first).
    let left = quarantine.limit().saturating_sub(quarantine.len());
    // Each side logs within the caller's span (the stage's), on whatever thread it runs.
    let span = tracing::Span::current();
    let (mirror, declared) = rayon::join(
        || -> Result<_, IngestError> {
            let _span = span.enter();
            let Some(spec) = sources.get(MIRROR_FLOWS) else {
                return Ok((empty(&schemas::mirror_flows()), None, Quarantine::with_limit(left), Vec::new()));
            };
            let (mut quarantine, mut warnings) = (Quarantine::with_limit(left), Vec::new());
            let files = open_all(MIRROR_FLOWS, spec, base_dir, mirror::MANDATORY, params, &mut warnings)?;
            let (mut df, mut rec) = mirror::ingest(&files, &params.hs_vintages, run_day, &mut quarantine)?;
            if let Some(as_of) = as_of {
                (df, rec.deferred) = defer_after(df, as_of, false)?;
                rec.accepted -= rec.deferred;
            }
            Ok((df, Some(rec), quarantine, warnings))
        },
        || -> Result<_, IngestError> {
            let _span = span.enter();
            // Declarations are optional too: a mirror-statistics-only pipeline (e.g. a study of
            // partners' reporting) has none, and gets an empty, correctly typed dataset.
            let Some(spec) = sources.get(DECLARATIONS) else {
                let none = (empty(&schemas::declarations()), declarations::DeclarationStats::default());
                return Ok((none, None, Quarantine::with_limit(left), Vec::new()));
            };
            let (mut quarantine, mut warnings) = (Quarantine::with_limit(left), Vec::new());
            let files = open_all(DECLARATIONS, spec, base_dir, declarations::MANDATORY, params, &mut warnings)?;
            let rules = declarations::DeclarationRules {
                hs_lengths: &params.hs_lengths,
                min_date,
                max_date,
                fx: &fx_table,
                hs_vintages: &params.hs_vintages,
                hs_known: params.hs_known,
                id_case: params.id_case,
                bounds: rules::ItemBounds {
                    max_value_usd: params.max_item_value_usd,
                    max_mass_kg: params.max_item_mass_kg,
                    unit_price_usd_per_kg: params.unit_price_usd_per_kg,
                },
                run_day,
            };
            let (mut df, mut rec, stats) = declarations::ingest(&files, &rules, &mut quarantine)?;
            if params.date_gap_days > 0 {
                df = declarations::quarantine_isolated_dates(
                    df,
                    &files,
                    &stats.accepted_per_file,
                    params.date_gap_days,
                    &mut quarantine,
                    &mut rec,
                )?;
            }
            if let Some(as_of) = as_of {
                (df, rec.deferred) = defer_after(df, as_of, true)?;
                rec.accepted -= rec.deferred;
            }
            Ok(((df, stats), Some(rec), quarantine, warnings))
        },
    );
    let (mirror_flows, rec, mirror_quarantine, mirror_warnings) = mirror?;
    warnings.extend(mirror_warnings);
    quarantine.append(mirror_quarantine);
    if let Some(rec) = rec {
        too_many(&quarantine, MIRROR_FLOWS)?;
        enough(&quarantine, MIRROR_FLOWS, &rec)?;
        reconciliation.insert(MIRROR_FLOWS.to_owned(), rec);
    }
    let ((declarations, declaration_stats), rec, declared_quarantine, declared_warnings) = declared?;
    warnings.extend(declared_warnings);
    quarantine.append(declared_quarantine);
    if let Some(rec) = rec {
        too_many(&quarantine, DECLARATIONS)?;
        enough(&quarantine, DECLARATIONS, &rec)?;
        reconciliation.insert(DECLARATIONS.to_owned(), rec);
    }

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
    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        let params: IngestParams = mirador_pipeline::parse_params(self.name(), params)?;
        params.dates().map(drop).map_err(|e| StageError::Params { stage: self.name().into(), message: e.to_string() })
    }

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
            .with_unique_key(datasets::DECLARATIONS, &declarations::UNIQUE_KEY)
            .with_dataset(datasets::MIRROR_FLOWS, out.mirror_flows)
            .with_dataset(datasets::TARIFFS, out.tariffs)
            .with_dataset(datasets::FX_RATES, out.fx_rates)
            .with_dataset(datasets::QUARANTINE, out.quarantine)
            .with_metric("reconciliation", reconciliation)
            .with_metric("declarations", stats)
            .with_metric("quarantine_reasons", reasons))
    }
}
