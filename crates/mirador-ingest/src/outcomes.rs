//! Inspection outcomes that arrive after their declarations: a physical inspection's result keyed
//! in late, a post-clearance audit's finding. One row per goods item and decision day; a later
//! decision on the same item is a revision (the model takes the newest), the same decision twice
//! is a duplicate.
//!
//! The feed is validated like any source ([`crate::rules`], one reason code per failure); rejected
//! rows go to their own `outcome_quarantine` dataset, so that the stage can run apart from
//! `ingest` (and after it) without two stages writing one dataset.
//!
//! ```no_run
//! use mirador_ingest::outcomes::{OutcomeParams, ingest_outcomes};
//! use mirador_pipeline::SourceSpec;
//! let spec = SourceSpec { paths: vec!["outcomes.csv".into()], ..Default::default() };
//! let out = ingest_outcomes(&spec, std::path::Path::new("."), &OutcomeParams::default()).unwrap();
//! println!("{} outcomes accepted", out.outcomes.height());
//! ```

use std::collections::BTreeMap;
use std::collections::hash_map::{Entry, HashMap};
use std::path::Path;

use chrono::NaiveDate;
use foldhash::fast::FixedState;
use mirador_pipeline::{SourceSpec, Stage, StageContext, StageError, StageOutput};
use mirador_schema::{DatasetId, col, datasets};
use polars::prelude::*;
use serde::Deserialize;
use tracing::info;

use crate::read::BlockRow;
use crate::rules::{self, Reject};
use crate::source::{Field, Mapped, Quarantine, Reconciliation};
use crate::{IngestError, IngestParams};

/// The source id of the feed: `[sources.inspection_outcomes]` in a pipeline file.
pub const SOURCE: &str = "inspection_outcomes";

/// Canonical columns an outcomes source must provide (mapped or defaulted). `item_no` (default 1)
/// and `critical_fraud` are optional.
pub const MANDATORY: &[&str] = &[col::DECLARATION_ID, col::DECIDED_ON, col::FRAUD];

/// Parameters of the `ingest_outcomes` stage (`[stage.params]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct OutcomeParams {
    /// Earliest acceptable decision day. Default `2000-01-01`.
    pub min_date: String,
    /// Latest acceptable decision day. Default `2099-12-31`.
    pub max_date: String,
    /// Run as of this day (`YYYY-MM-DD`) or the end of this month (`YYYY-MM`), as
    /// [`IngestParams::as_of`]: valid outcomes decided later are set aside (counted as `deferred`,
    /// not quarantined). Unset: everything.
    pub as_of: Option<String>,
    /// Most data rows one source file may hold. Default as [`IngestParams::max_rows_per_file`].
    pub max_rows_per_file: usize,
    /// Most rows quarantined before the stage gives up (the file is then probably not what its
    /// mapping says). Default as [`IngestParams::max_quarantined`].
    pub max_quarantined: usize,
}

impl Default for OutcomeParams {
    fn default() -> Self {
        let ingest = IngestParams::default();
        OutcomeParams {
            min_date: ingest.min_date,
            max_date: ingest.max_date,
            as_of: ingest.as_of,
            max_rows_per_file: ingest.max_rows_per_file,
            max_quarantined: ingest.max_quarantined,
        }
    }
}

impl OutcomeParams {
    /// The same settings as ingest's, so that dates, `as-of` and the limits are read by one code.
    fn as_ingest(&self) -> IngestParams {
        IngestParams {
            min_date: self.min_date.clone(),
            max_date: self.max_date.clone(),
            as_of: self.as_of.clone(),
            max_rows_per_file: self.max_rows_per_file,
            max_quarantined: self.max_quarantined,
            ..IngestParams::default()
        }
    }

    /// The last day the run sees, from `as-of` (see [`IngestParams::as_of_date`]).
    pub fn as_of_date(&self) -> Result<Option<NaiveDate>, IngestError> {
        self.as_ingest().as_of_date()
    }
}

/// The result of ingesting the outcomes feed.
pub struct Outcomes {
    /// Accepted outcomes, in file order ([`mirador_schema::schemas::inspection_outcomes`]).
    pub outcomes: DataFrame,
    /// Rejected rows ([`mirador_schema::schemas::quarantine`]), dataset `inspection_outcomes`.
    pub quarantine: DataFrame,
    /// Rows in = accepted + quarantined + deferred.
    pub reconciliation: Reconciliation,
    /// Quarantine reason code counts.
    pub reasons: BTreeMap<String, usize>,
}

/// One accepted outcome.
struct Outcome {
    declaration_id: String,
    item_no: i32,
    decided_on: NaiveDate,
    fraud: i8,
    critical_fraud: Option<i8>,
    line: usize,
}

/// The source columns validation reads, resolved once per file.
struct Fields<'a> {
    declaration_id: Field<'a>,
    item_no: Field<'a>,
    decided_on: Field<'a>,
    fraud: Field<'a>,
    critical_fraud: Field<'a>,
}

impl<'a> Fields<'a> {
    fn new(m: &Mapped<'a>) -> Self {
        Fields {
            declaration_id: m.field(col::DECLARATION_ID),
            item_no: m.field(col::ITEM_NO),
            decided_on: m.field(col::DECIDED_ON),
            fraud: m.field(col::FRAUD),
            critical_fraud: m.field(col::CRITICAL_FRAUD),
        }
    }
}

/// Validates one row (everything but repeats, which depend on the rows before it).
fn validate(m: &Mapped<'_>, f: &Fields<'_>, raw: BlockRow<'_>, min: NaiveDate, max: NaiveDate) -> Result<Outcome, Reject> {
    if let Some(why) = raw.malformed() {
        return Err(Reject::new(why.code, "", format!("line {} {why}", raw.line())));
    }
    // The goods item key, as declarations take it.
    let declaration_id = rules::declaration_id_value(f.declaration_id.value(raw), col::DECLARATION_ID)?;
    let item_no = rules::item_no_value(f.item_no.value(raw), m.decimal(), col::ITEM_NO)?;
    let decided_on =
        rules::date_value(rules::required_value(f.decided_on.value(raw), col::DECIDED_ON)?, m.date_format(), min, max, col::DECIDED_ON)?;
    // An outcome without a result is not an outcome: unlike a declaration's label, `fraud` is
    // mandatory here.
    let missing = || Reject::new("missing_value", col::FRAUD, format!("mandatory `{}` is empty", col::FRAUD));
    let fraud = rules::label_value(f.fraud.value(raw), &[0, 1], col::FRAUD)?.ok_or_else(missing)?;
    let critical_fraud = rules::label_value(f.critical_fraud.value(raw), &[0, 1, 2], col::CRITICAL_FRAUD)?;
    if let Some(c) = critical_fraud
        && c > 0
        && fraud == 0
    {
        return Err(Reject::new(
            "inconsistent_label",
            col::CRITICAL_FRAUD,
            format!("`critical_fraud` = {c} on an item found not fraudulent (`fraud` = 0)"),
        ));
    }
    Ok(Outcome { declaration_id: declaration_id.into_owned(), item_no, decided_on, fraud, critical_fraud, line: raw.line() })
}

/// (declaration id, item, decision day) → the first decision's result (`fraud`, `critical_fraud`).
type Seen = HashMap<(String, i32, NaiveDate), (i8, Option<i8>), FixedState>;

/// Validates every row of every file of the source; accepted rows become the outcomes frame.
fn validate_all(
    sources: &[Mapped<'_>],
    min: NaiveDate,
    max: NaiveDate,
    as_of: Option<NaiveDate>,
    quarantine: &mut Quarantine,
) -> Result<(Vec<Outcome>, Reconciliation), IngestError> {
    let mut accepted = Vec::new();
    let mut rec = Reconciliation::default();
    let mut seen = Seen::default();
    for m in sources {
        let fields = Fields::new(m);
        m.each_chunk(|block, chunk| -> Result<(), IngestError> {
            for at in chunk {
                let raw = block.row(at);
                rec.rows_in += 1;
                let outcome = match validate(m, &fields, raw, min, max) {
                    Ok(outcome) => outcome,
                    Err(reject) => {
                        quarantine.push_block(datasets::INSPECTION_OUTCOMES, m, raw, &reject);
                        continue;
                    }
                };
                let key = (outcome.declaration_id.clone(), outcome.item_no, outcome.decided_on);
                match seen.entry(key) {
                    Entry::Occupied(first) => {
                        let same = *first.get() == (outcome.fraud, outcome.critical_fraud);
                        let what = if same { "the same result" } else { "another result" };
                        let reject = Reject::new(
                            "duplicate",
                            col::DECLARATION_ID,
                            format!(
                                "`{}` item {} decided on {} already has an outcome ({what}); the first is kept",
                                outcome.declaration_id, outcome.item_no, outcome.decided_on
                            ),
                        );
                        quarantine.push_block(datasets::INSPECTION_OUTCOMES, m, raw, &reject);
                        continue;
                    }
                    Entry::Vacant(slot) => {
                        slot.insert((outcome.fraud, outcome.critical_fraud));
                    }
                }
                // Valid, but decided after the run's as-of day: left for a later run. Repeats are
                // found first, so a row is quarantined or not whatever the as-of day.
                if as_of.is_some_and(|day| outcome.decided_on > day) {
                    rec.deferred += 1;
                    continue;
                }
                accepted.push(outcome);
            }
            Ok(())
        })?;
    }
    rec.accepted = accepted.len();
    rec.quarantined = rec.rows_in - rec.accepted - rec.deferred;
    Ok((accepted, rec))
}

/// Accepted outcomes as a frame ([`mirador_schema::schemas::inspection_outcomes`]).
fn frame(rows: &[Outcome]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        StringChunked::from_iter_values(col::DECLARATION_ID.into(), rows.iter().map(|r| r.declaration_id.as_str())).into_column(),
        Int32Chunked::from_iter_values(col::ITEM_NO.into(), rows.iter().map(|r| r.item_no)).into_column(),
        Int32Chunked::from_iter_values(col::DECIDED_ON.into(), rows.iter().map(|r| mirador_schema::day::of(r.decided_on)))
            .into_column()
            .cast(&DataType::Date)?,
        Int8Chunked::from_iter_values(col::FRAUD.into(), rows.iter().map(|r| r.fraud)).into_column(),
        rows.iter().map(|r| r.critical_fraud).collect::<Int8Chunked>().with_name(col::CRITICAL_FRAUD.into()).into_column(),
        Int32Chunked::from_iter_values(col::SOURCE_LINE.into(), rows.iter().map(|r| r.line as i32)).into_column(),
    ])
}

/// Reads and validates the inspection outcomes feed described by `spec` (paths relative to
/// `base_dir`). A file that cannot be read, or lacks a mandatory column, is an error naming it.
pub fn ingest_outcomes(spec: &SourceSpec, base_dir: &Path, params: &OutcomeParams) -> Result<Outcomes, IngestError> {
    let ingest = params.as_ingest();
    let (min, max) = ingest.dates()?;
    let as_of = ingest.as_of_date()?;
    let files = crate::open_all(SOURCE, spec, base_dir, MANDATORY, &ingest, &mut Vec::new())?;
    let mut quarantine = Quarantine::with_limit(params.max_quarantined);
    let (rows, reconciliation) = validate_all(&files, min, max, as_of, &mut quarantine)?;
    crate::too_many(&quarantine, SOURCE, params.max_quarantined)?;
    let reasons = quarantine.counts();
    Ok(Outcomes { outcomes: frame(&rows)?, quarantine: quarantine.into_frame()?, reconciliation, reasons })
}

/// Reads and validates inspection outcomes that arrive after their declarations.
///
/// ## Sources
/// - `inspection_outcomes`: one row per goods item and decision day (`declaration_id`,
///   `decided_on`, `fraud`; optional `item_no`, `critical_fraud`).
/// ## Outputs
/// - `inspection_outcomes`: accepted rows ([`mirador_schema::schemas::inspection_outcomes`]).
/// - `outcome_quarantine`: every rejected row with its reason ([`mirador_schema::schemas::quarantine`]).
pub struct IngestOutcomes;

impl IngestOutcomes {
    /// An ingest error as this stage's error (parameter errors name this stage, not `ingest`).
    fn error(&self, e: IngestError) -> StageError {
        match e {
            IngestError::Params(message) => StageError::Params { stage: self.name().into(), message },
            other => other.into(),
        }
    }
}

impl Stage for IngestOutcomes {
    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        mirador_pipeline::parse_params::<OutcomeParams>(self.name(), params).map(drop)
    }

    fn name(&self) -> &'static str {
        "ingest_outcomes"
    }
    fn inputs(&self) -> &'static [DatasetId] {
        &[]
    }
    fn outputs(&self) -> &'static [DatasetId] {
        &[datasets::INSPECTION_OUTCOMES, datasets::OUTCOME_QUARANTINE]
    }
    fn sources(&self) -> &'static [&'static str] {
        &[SOURCE]
    }
    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let params: OutcomeParams = ctx.params()?;
        let spec = ctx.source(SOURCE).map_err(|_| StageError::Params {
            stage: self.name().into(),
            message: format!(
                "no source `{SOURCE}`: declare it under `[sources.{SOURCE}]` and list it in the stage's `sources = [\"{SOURCE}\"]`"
            ),
        })?;
        let out = ingest_outcomes(spec, &ctx.resolve(Path::new("")), &params).map_err(|e| self.error(e))?;
        let rec = out.reconciliation;
        info!(accepted = rec.accepted, quarantined = rec.quarantined, deferred = rec.deferred, "Ingested inspection outcomes.");
        let reconciliation = serde_json::to_value(BTreeMap::from([(SOURCE, rec)])).map_err(|e| StageError::Data(e.to_string()))?;
        let reasons = serde_json::to_value(&out.reasons).map_err(|e| StageError::Data(e.to_string()))?;
        Ok(StageOutput::new()
            .with_dataset(datasets::INSPECTION_OUTCOMES, out.outcomes)
            .with_dataset(datasets::OUTCOME_QUARANTINE, out.quarantine)
            .with_metric("reconciliation", reconciliation)
            .with_metric("quarantine_reasons", reasons))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_ingests() {
        let (o, i) = (OutcomeParams::default(), IngestParams::default());
        assert_eq!((o.min_date, o.max_date, o.as_of), (i.min_date, i.max_date, i.as_of));
        assert_eq!((o.max_rows_per_file, o.max_quarantined), (i.max_rows_per_file, i.max_quarantined));
    }
}
