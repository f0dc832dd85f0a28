//! The catalog: every dataset a Mirador run reads or writes, with its declared columns.
//!
//! One module per dataset: its id, a constant per column and its [`Schema`]. [`ALL`] lists them
//! with the stage that writes each. Four kinds:
//! - [`Kind::Ingested`]: what ingest stages produce from sources; the contracts every stage reads
//!   ([`crate::schemas`]).
//! - [`Kind::Output`]: what the other stages write into a run. The runner refuses a written dataset
//!   whose columns or types differ from the declared ones, and `mirador check` refuses a stage
//!   reading a column that its producer does not declare.
//! - [`Kind::State`]: what a stage carries from one run to the next in its own directory.
//! - [`Kind::Backtest`]: what `mirador backtest` writes into its own output directory, outside
//!   any run; it checks them against their declared columns before publishing, as the runner does.
//!
//! `docs/schemas/<id>.schema.json` is generated from here (`mirador schemas --out docs/schemas`),
//! so that an analyst can read the columns without running anything.
//!
//! ```
//! use mirador_schema::catalog::{self, fraud_scores};
//! let scores = catalog::get(fraud_scores::ID).unwrap();
//! assert_eq!(scores.producer, "fraud_model");
//! assert!((scores.schema)().contains(fraud_scores::SELECTION_ORDER));
//! ```

use polars::prelude::{DataType, Field, Schema};

use crate::{DatasetId, datasets, schemas};

pub mod auditee_evaluation;
pub mod auditees;
pub mod auditees_shareable;
pub mod backtest_summary;
pub mod backtest_weeks;
pub mod forecast_accuracy;
pub mod forecast_alarms;
pub mod forecast_series;
pub mod fraud_evaluation;
pub mod fraud_importance;
pub mod fraud_metrics;
pub mod fraud_rules;
pub mod fraud_scores;
pub mod gap_by_cell;
pub mod gap_by_chapter;
pub mod gap_by_partner;
pub mod gap_summary;
pub mod inspection_list;
pub mod kmeans_groups;
pub mod kmeans_peers;
pub mod kmeans_scores;
pub mod mirror_exposure;
pub mod model_pending;
pub mod model_training_window;
pub mod rank_window;
pub mod release_breaches;
pub mod release_intervals;
pub mod release_steps;
pub mod selection_frontier;
pub mod unapplied_outcomes;

/// What a dataset is to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Produced by an ingest stage from sources.
    Ingested,
    /// Written by a stage into the run.
    Output,
    /// Carried by a stage from run to run in its own directory.
    State,
    /// Written by `mirador backtest` into its own output directory (`producer` is `backtest`).
    Backtest,
}

impl Kind {
    /// `ingested`, `output`, `state` or `backtest`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ingested => "ingested",
            Kind::Output => "output",
            Kind::State => "state",
            Kind::Backtest => "backtest",
        }
    }
}

/// One dataset of the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    /// Its id.
    pub id: DatasetId,
    /// The stage that writes it.
    pub producer: &'static str,
    /// What it is to a run.
    pub kind: Kind,
    /// Its declared columns, in order.
    pub schema: fn() -> Schema,
    /// Prefixes of further columns that follow the declared ones and depend on the run's
    /// configuration (the model's feature columns of its carried state).
    pub open_prefixes: &'static [&'static str],
    /// Where a run holds it, relative to the run's directory: `<id>.parquet` for ingested
    /// datasets and outputs; for carried state, a file, or a directory of `<part>.parquet` files
    /// (one per day) when the path ends in `/`.
    pub location: &'static str,
    /// Columns that follow the declared ones only when the sources have them (the declarations'
    /// release times), with their types.
    pub optional: Option<fn() -> Schema>,
    /// For a row-level dataset (one row per declaration item or per quarantined row), how each
    /// row gets the period ([`PARTITION_KEY`]) it is partitioned by; `None` for the others.
    pub period: Option<PeriodOf>,
}

/// The key row-level datasets are partitioned by: `period=YYYY-MM` directories, the key in the
/// paths only, never a column of the files (see `docs/scale-out.md`).
pub const PARTITION_KEY: &str = crate::col::PERIOD;

/// The partition of rows without a period (hive's null partition: readers give its rows a null
/// key).
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// How a row of a row-level dataset gets its period ([`Dataset::period`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodOf {
    /// Its own `YYYY-MM` column (the declarations' `period`); a partitioned copy drops it from
    /// its files, the key being in the paths.
    Column(&'static str),
    /// Its rows are the declarations' rows, in their order (same `declaration_id` and `item_no`
    /// row for row, as the stages write them): a row's period is its declaration's.
    Declaration,
    /// A quarantined raw row: the month of its `date` field when that parses (with the
    /// declarations source's date format, else as `YYYY-MM-DD`), else [`NULL_PARTITION`].
    RawRowDate,
}

impl PeriodOf {
    /// `column:<name>`, `declaration` or `raw_row_date`, as `docs/schemas/` states it.
    pub fn describe(self) -> String {
        match self {
            PeriodOf::Column(c) => format!("column:{c}"),
            PeriodOf::Declaration => "declaration".to_owned(),
            PeriodOf::RawRowDate => "raw_row_date".to_owned(),
        }
    }
}

/// The row-level datasets, in pipeline order: those a run can export partitioned by period.
pub fn row_level() -> impl Iterator<Item = &'static Dataset> {
    ALL.iter().filter(|d| d.period.is_some())
}

impl Dataset {
    /// The optional columns ([`Dataset::optional`]); empty for most datasets.
    pub fn optional_schema(&self) -> Schema {
        self.optional.map(|f| f()).unwrap_or_default()
    }

    /// How `written` differs from the declared columns ([`differences_with`], with the
    /// dataset's optional columns and open prefixes); empty when it agrees.
    pub fn differences(&self, written: &Schema) -> Vec<String> {
        differences_with(&(self.schema)(), &self.optional_schema(), written, self.open_prefixes)
    }

    /// Whether the dataset is a directory of parts ([`Dataset::location`]).
    pub fn is_partitioned(&self) -> bool {
        self.location.ends_with('/')
    }
}

const fn output(id: DatasetId, location: &'static str, producer: &'static str, schema: fn() -> Schema) -> Dataset {
    Dataset { id, producer, kind: Kind::Output, schema, open_prefixes: &[], location, optional: None, period: None }
}

const fn ingested(id: DatasetId, location: &'static str, producer: &'static str, schema: fn() -> Schema) -> Dataset {
    Dataset { id, producer, kind: Kind::Ingested, schema, open_prefixes: &[], location, optional: None, period: None }
}

const fn state(
    id: DatasetId,
    location: &'static str,
    producer: &'static str,
    schema: fn() -> Schema,
    open_prefixes: &'static [&'static str],
) -> Dataset {
    Dataset { id, producer, kind: Kind::State, schema, open_prefixes, location, optional: None, period: None }
}

const fn backtest(id: DatasetId, location: &'static str, schema: fn() -> Schema) -> Dataset {
    Dataset { id, producer: "backtest", kind: Kind::Backtest, schema, open_prefixes: &[], location, optional: None, period: None }
}

/// The model's feature columns in its carried state.
const FEATURE_PREFIXES: &[&str] = &["history:", "signal:"];

/// Every dataset, in pipeline order.
pub const ALL: &[Dataset] = &[
    Dataset {
        optional: Some(schemas::declaration_release_times),
        period: Some(PeriodOf::Column(crate::col::PERIOD)),
        ..ingested(datasets::DECLARATIONS, "declarations.parquet", "ingest", schemas::declarations)
    },
    ingested(datasets::MIRROR_FLOWS, "mirror_flows.parquet", "ingest", schemas::mirror_flows),
    ingested(datasets::TARIFFS, "tariffs.parquet", "ingest", schemas::tariffs),
    ingested(datasets::FX_RATES, "fx_rates.parquet", "ingest", schemas::fx_rates),
    Dataset { period: Some(PeriodOf::RawRowDate), ..ingested(datasets::QUARANTINE, "quarantine.parquet", "ingest", schemas::quarantine) },
    ingested(datasets::INSPECTION_OUTCOMES, "inspection_outcomes.parquet", "ingest_outcomes", schemas::inspection_outcomes),
    ingested(datasets::OUTCOME_QUARANTINE, "outcome_quarantine.parquet", "ingest_outcomes", schemas::quarantine),
    output(gap_by_cell::ID, "gap_by_cell.parquet", "revenue_gap", gap_by_cell::schema),
    output(gap_by_chapter::ID, "gap_by_chapter.parquet", "revenue_gap", gap_by_chapter::schema),
    output(gap_by_partner::ID, "gap_by_partner.parquet", "revenue_gap", gap_by_partner::schema),
    output(gap_summary::ID, "gap_summary.parquet", "revenue_gap", gap_summary::schema),
    Dataset {
        period: Some(PeriodOf::Declaration),
        ..output(mirror_exposure::ID, "mirror_exposure.parquet", "revenue_gap", mirror_exposure::schema)
    },
    Dataset {
        period: Some(PeriodOf::Declaration),
        ..output(kmeans_scores::ID, "kmeans_scores.parquet", "kmeans_scores", kmeans_scores::schema)
    },
    output(kmeans_groups::ID, "kmeans_groups.parquet", "kmeans_scores", kmeans_groups::schema),
    Dataset {
        period: Some(PeriodOf::Declaration),
        ..output(fraud_scores::ID, "fraud_scores.parquet", "fraud_model", fraud_scores::schema)
    },
    output(fraud_rules::ID, "fraud_rules.parquet", "fraud_model", fraud_rules::schema),
    output(fraud_importance::ID, "fraud_importance.parquet", "fraud_model", fraud_importance::schema),
    output(fraud_evaluation::ID, "fraud_evaluation.parquet", "fraud_model", fraud_evaluation::schema),
    output(fraud_metrics::ID, "fraud_metrics.parquet", "fraud_model", fraud_metrics::schema),
    output(inspection_list::ID, "inspection_list.parquet", "fraud_model", inspection_list::schema),
    output(selection_frontier::ID, "selection_frontier.parquet", "fraud_model", selection_frontier::schema),
    output(auditees::ID, "auditees.parquet", "rank", auditees::schema),
    output(auditees_shareable::ID, "auditees_shareable.parquet", "rank", auditees_shareable::schema),
    output(release_intervals::ID, "release_intervals.parquet", "release_time", release_intervals::schema),
    output(release_breaches::ID, "release_breaches.parquet", "release_time", release_breaches::schema),
    output(release_steps::ID, "release_steps.parquet", "release_time", release_steps::schema),
    output(forecast_series::ID, "forecast_series.parquet", "revenue_forecast", forecast_series::schema),
    output(forecast_alarms::ID, "forecast_alarms.parquet", "revenue_forecast", forecast_alarms::schema),
    output(forecast_accuracy::ID, "forecast_accuracy.parquet", "revenue_forecast", forecast_accuracy::schema),
    output(auditee_evaluation::ID, "auditee_evaluation.parquet", "evaluate_auditees", auditee_evaluation::schema),
    state(kmeans_peers::ID, "kmeans_scores/peers.parquet", "kmeans_scores", kmeans_peers::schema, &[]),
    state(model_training_window::ID, "fraud_model/training_window.parquet", "fraud_model", model_training_window::schema, FEATURE_PREFIXES),
    state(model_pending::ID, "fraud_model/pending/", "fraud_model", model_pending::schema, FEATURE_PREFIXES),
    state(unapplied_outcomes::ID, "fraud_model/unapplied_outcomes.parquet", "fraud_model", unapplied_outcomes::schema, &[]),
    state(rank_window::ID, "rank/window/", "rank", rank_window::schema, &[]),
    backtest(backtest_weeks::ID, "backtest_weeks.parquet", backtest_weeks::schema),
    backtest(backtest_summary::ID, "backtest_summary.parquet", backtest_summary::schema),
];

/// The catalog entry of `id`.
pub fn get(id: &str) -> Option<&'static Dataset> {
    ALL.iter().find(|d| d.id == id)
}

/// A schema from `(name, type)` pairs.
pub(crate) fn schema(fields: &[(&str, DataType)]) -> Schema {
    fields.iter().map(|(name, dtype)| Field::new((*name).into(), dtype.clone())).collect()
}

/// How `written` differs from `declared`, one sentence per difference (empty: they agree).
/// Categorical columns count as the text they are written as; columns starting with one of
/// `open_prefixes` may follow the declared ones.
pub fn differences(declared: &Schema, written: &Schema, open_prefixes: &[&str]) -> Vec<String> {
    differences_with(declared, &Schema::default(), written, open_prefixes)
}

/// [`differences`], with `optional` columns that may follow the declared ones (each with its
/// type when present).
pub fn differences_with(declared: &Schema, optional: &Schema, written: &Schema, open_prefixes: &[&str]) -> Vec<String> {
    let text = |t: &DataType| if t.is_categorical() { DataType::String } else { t.clone() };
    let mut found = Vec::new();
    for (name, want) in declared.iter() {
        match written.get(name) {
            None => found.push(format!("column `{name}` ({want}) is missing")),
            Some(got) if text(got) != text(want) => found.push(format!("column `{name}` is {got}, declared {want}")),
            Some(_) => {}
        }
    }
    for (name, want) in optional.iter() {
        if let Some(got) = written.get(name).filter(|got| text(got) != text(want)) {
            found.push(format!("column `{name}` is {got}, declared {want}"));
        }
    }
    for (name, got) in written.iter() {
        if !declared.contains(name) && !optional.contains(name) && !open_prefixes.iter().any(|p| name.starts_with(p)) {
            found.push(format!("column `{name}` ({got}) is not declared"));
        }
    }
    if found.is_empty() {
        let known = |n: &str| declared.contains(n) || optional.contains(n);
        let order = |s: &Schema| s.iter_names().filter(|n| known(n) && written.contains(n)).cloned().collect::<Vec<_>>();
        let all: Schema = declared.iter().chain(optional.iter()).map(|(n, t)| Field::new(n.clone(), t.clone())).collect();
        if order(written) != order(&all) {
            found.push(format!(
                "columns are in another order than declared ({})",
                all.iter_names().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    found
}

/// One column as schema files list it (the runs' `<id>.schema.json` sidecars and `docs/schemas/`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldDoc {
    /// Column name.
    pub name: String,
    /// polars data type, as displayed.
    pub dtype: String,
}

/// The catalog entry of `id` as JSON, in the layout of the runs' `<id>.schema.json` sidecars plus
/// the dataset's producer and kind: what `docs/schemas/` holds.
pub fn json(d: &Dataset) -> String {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        dataset: &'a str,
        producer: &'a str,
        kind: &'a str,
        location: &'a str,
        columns: Vec<FieldDoc>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        optional_columns: Vec<FieldDoc>,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        open_prefixes: &'a [&'a str],
        #[serde(skip_serializing_if = "Option::is_none")]
        partitioned_by: Option<Partitioning>,
    }
    #[derive(serde::Serialize)]
    struct Partitioning {
        key: &'static str,
        period_of: String,
    }
    let columns_of = |s: Schema| s.iter().map(|(name, dtype)| FieldDoc { name: name.to_string(), dtype: dtype.to_string() }).collect();
    let (columns, optional_columns) = (columns_of((d.schema)()), columns_of(d.optional_schema()));
    let doc = Doc {
        dataset: d.id,
        producer: d.producer,
        kind: d.kind.as_str(),
        location: d.location,
        columns,
        optional_columns,
        open_prefixes: d.open_prefixes,
        partitioned_by: d.period.map(|p| Partitioning { key: PARTITION_KEY, period_of: p.describe() }),
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dataset_id_is_in_the_catalog_once() {
        let mut ids: Vec<&str> = ALL.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "an id listed twice");
        for id in [datasets::DECLARATIONS, datasets::FRAUD_SCORES, datasets::AUDITEES, datasets::SELECTION_FRONTIER] {
            assert!(get(id).is_some(), "{id}");
        }
    }

    #[test]
    fn every_dataset_has_its_place_in_a_run() {
        for d in ALL {
            match d.kind {
                Kind::State => assert!(d.location.starts_with(&format!("{}/", d.producer)), "{}: {}", d.id, d.location),
                _ => assert_eq!(d.location, format!("{}.parquet", d.id)),
            }
            assert_eq!(d.is_partitioned(), d.location.ends_with('/'));
        }
    }

    #[test]
    fn row_level_datasets_say_how_their_rows_get_a_period() {
        let ids: Vec<&str> = row_level().map(|d| d.id).collect();
        assert_eq!(ids, [datasets::DECLARATIONS, datasets::QUARANTINE, mirror_exposure::ID, kmeans_scores::ID, fraud_scores::ID]);
        for d in row_level() {
            let s = (d.schema)();
            match d.period {
                // Its own column, a month as text.
                Some(PeriodOf::Column(c)) => assert_eq!(s.get(c), Some(&DataType::String), "{}", d.id),
                // Keyed row for row like the declarations.
                Some(PeriodOf::Declaration) => {
                    let key: Vec<&str> = s.iter_names().take(2).map(|n| n.as_str()).collect();
                    assert_eq!(key, [crate::col::DECLARATION_ID, crate::col::ITEM_NO], "{}", d.id);
                }
                Some(PeriodOf::RawRowDate) => assert!(s.contains(crate::col::RAW_ROW), "{}", d.id),
                None => unreachable!(),
            }
            // Only a dataset whose period is that column has a column named like the key.
            assert_eq!(s.contains(PARTITION_KEY), d.period == Some(PeriodOf::Column(PARTITION_KEY)), "{}", d.id);
            assert!(json(d).contains("\"period_of\""), "{}", d.id);
        }
        assert!(ALL.iter().filter(|d| d.period.is_none()).all(|d| !json(d).contains("partitioned_by")));
    }

    #[test]
    fn every_schema_has_unique_columns() {
        for d in ALL {
            let s = (d.schema)();
            assert!(s.len() > 1, "{}", d.id);
            let mut names: Vec<&str> = s.iter_names().map(|n| n.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), s.len(), "{}", d.id);
        }
    }

    #[test]
    fn differences_name_every_kind_of_drift() {
        use DataType::{Float64, String, UInt32};
        let declared = schema(&[("a", String), ("b", Float64), ("c", UInt32)]);
        assert!(differences(&declared, &declared, &[]).is_empty());
        let cat = schema(&[("a", crate::text::categorical_type("a")), ("b", Float64), ("c", UInt32)]);
        assert!(differences(&declared, &cat, &[]).is_empty(), "a categorical is written as text");
        let drifted = schema(&[("a", String), ("b", UInt32), ("d", String)]);
        let found = differences(&declared, &drifted, &[]);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().any(|f| f.contains("`c`") && f.contains("missing")));
        assert!(found.iter().any(|f| f.contains("`b` is u32")));
        assert!(found.iter().any(|f| f.contains("`d`") && f.contains("not declared")));
        let reordered = schema(&[("b", Float64), ("a", String), ("c", UInt32)]);
        assert_eq!(differences(&declared, &reordered, &[]).len(), 1);
        let optional = schema(&[("e", String)]);
        assert!(differences_with(&declared, &optional, &declared, &[]).is_empty(), "an optional column may be absent");
        let with_e = schema(&[("a", String), ("b", Float64), ("c", UInt32), ("e", String)]);
        assert!(differences_with(&declared, &optional, &with_e, &[]).is_empty());
        let e_retyped = schema(&[("a", String), ("b", Float64), ("c", UInt32), ("e", Float64)]);
        assert_eq!(differences_with(&declared, &optional, &e_retyped, &[]).len(), 1);
        assert_eq!(differences(&declared, &with_e, &[]).len(), 1, "not declared without the optional list");
        let open = schema(&[("a", String), ("b", Float64), ("c", UInt32), ("history:x", Float64)]);
        assert!(differences(&declared, &open, &["history:"]).is_empty());
        assert_eq!(differences(&declared, &open, &[]).len(), 1);
    }
}
