//! The auditee list measured against the truth (stage `evaluate_auditees`).
//!
//! Given each declaration's known lost duty (the `ground_truth` source), it sums the truth per
//! importer and asks how much of it the head of the list holds: the share of all lost duty held
//! by the importers in the top 1, 5, 10 and 20 % of the list ([`mirador_metrics::capture`]),
//! beside the orders an administration could use instead:
//! - `oracle`: importers by their own lost duty (the best any list can do);
//! - `duty_paid`: the biggest payers first;
//! - `declared_value`: the biggest importers by declared value first;
//! - `random`: what a random pick holds in expectation (the share of importers picked).
//!
//! Every importer of the declarations counts, by importer and not by declaration; importers the
//! list leaves out (filters, `top`) come after its last row. On the synthetic world the truth is
//! `truth_declarations.csv` (`planted_lost_duty_usd`). With real data, an administration's own
//! post-clearance audit findings per declaration (the duty each audit recovered) can play the
//! truth's part, as long as the audited importers were not chosen by the list being judged.
//!
//! ## Inputs
//! - `declarations`, `auditees`; source `ground_truth` (CSV or parquet: `declaration_id`,
//!   `item_no`, and the truth column, `planted_lost_duty_usd` unless `truth-column` says
//!   otherwise).
//! ## Outputs
//! - `auditee_evaluation`: `policy`, `top_pct`, `importers_selected`, `share_of_lost_duty`; also
//!   as the artifact `auditee_evaluation.csv`.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::path::Path;

use mirador_pipeline::{SourceSpec, Stage, StageContext, StageError, StageOutput};
use mirador_schema::catalog::auditee_evaluation;
use mirador_schema::text::Text;
use mirador_schema::{DatasetId, col, datasets};
use polars::prelude::*;
use serde::Deserialize;

use crate::amounts;

/// The source id of the truth: `[sources.ground_truth]` in a pipeline file.
pub const SOURCE: &str = "ground_truth";

/// The list and the orders it is compared with, in the order they are written.
pub const POLICIES: [&str; 5] = ["list", "oracle", "duty_paid", "declared_value", "random"];

/// The heads of the list measured, in % of importers.
pub const TOP_PCTS: [f64; 4] = [1.0, 5.0, 10.0, 20.0];

/// Parameters of the `evaluate_auditees` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct EvaluationParams {
    /// The truth source's column of lost duty per declaration item.
    pub truth_column: String,
}

impl Default for EvaluationParams {
    fn default() -> Self {
        EvaluationParams { truth_column: "planted_lost_duty_usd".into() }
    }
}

/// Per importer of `declarations`: its lost duty (the `truth` of its items, keyed by
/// `(declaration_id, item_no)`; items without truth count zero), its duty paid and its declared
/// value. Returns the importers in id order and the number of items that had no truth.
pub fn by_importer<S: BuildHasher>(
    declarations: &DataFrame,
    truth: &HashMap<(String, i64), f64, S>,
) -> PolarsResult<(Vec<ImporterTruth>, usize)> {
    let ids = Text::column(declarations, col::DECLARATION_ID)?;
    let items = declarations.column(col::ITEM_NO)?.cast(&DataType::Int64)?;
    let items = items.i64()?;
    let importers = Text::column(declarations, col::IMPORTER_ID)?;
    let (duty, value) = (amounts(declarations, col::DUTY_USD)?, amounts(declarations, col::VALUE_USD)?);
    let mut tally: HashMap<&str, ImporterTruth> = HashMap::new();
    let mut missing = 0;
    let mut key = (String::new(), 0_i64);
    for (i, (importer, (id, item))) in importers.iter().zip(ids.iter().zip(items.iter())).enumerate() {
        let Some(importer) = importer else { continue };
        let t = tally.entry(importer).or_insert_with(|| ImporterTruth { importer_id: importer.to_owned(), ..ImporterTruth::default() });
        t.duty_paid += duty[i];
        t.declared_value += value[i];
        let found = match (id, item) {
            (Some(id), Some(item)) => {
                key.0.clear();
                key.0.push_str(id);
                key.1 = item;
                truth.get(&key)
            }
            _ => None,
        };
        match found {
            Some(l) => t.lost_duty += l,
            None => missing += 1,
        }
    }
    let mut out: Vec<ImporterTruth> = tally.into_values().collect();
    out.sort_by(|a, b| a.importer_id.cmp(&b.importer_id));
    Ok((out, missing))
}

/// One importer's truth and the amounts the plain orders use.
#[derive(Debug, Clone, Default)]
pub struct ImporterTruth {
    /// The importer.
    pub importer_id: String,
    /// Lost duty over its declarations.
    pub lost_duty: f64,
    /// Duty paid over its declarations.
    pub duty_paid: f64,
    /// Declared value over its declarations.
    pub declared_value: f64,
}

/// The evaluation of the list `auditees` (its `importer_id` column, first row first) against
/// the truth per importer: one row per policy ([`POLICIES`]) and head ([`TOP_PCTS`]). `None`
/// when there is no lost duty to find.
pub fn evaluate(auditees: &DataFrame, importers: &[ImporterTruth]) -> PolarsResult<Option<DataFrame>> {
    let listed = Text::column(auditees, col::IMPORTER_ID)?;
    let place: HashMap<&str, usize> = listed.iter().enumerate().filter_map(|(r, id)| Some((id?, r))).collect();
    let n = importers.len();
    // Listed importers by their place; the others after them, in id order.
    let list: Vec<f64> =
        importers.iter().enumerate().map(|(i, t)| place.get(t.importer_id.as_str()).map_or(-((n + i) as f64), |&r| -(r as f64))).collect();
    let truth: Vec<f64> = importers.iter().map(|t| t.lost_duty).collect();
    let orders: [(&str, Vec<f64>); 4] = [
        ("list", list),
        ("oracle", truth.clone()),
        ("duty_paid", importers.iter().map(|t| t.duty_paid).collect()),
        ("declared_value", importers.iter().map(|t| t.declared_value).collect()),
    ];
    let (mut policy, mut top_pct, mut selected, mut share) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (name, scores) in &orders {
        let Some(curve) = mirador_metrics::capture(scores, &truth, &TOP_PCTS) else { return Ok(None) };
        for c in curve {
            policy.push(*name);
            top_pct.push(c.n_pct);
            selected.push(c.selected as u32);
            share.push(c.share);
        }
    }
    for pct in TOP_PCTS {
        let c = mirador_metrics::random_capture(n, pct);
        policy.push("random");
        top_pct.push(c.n_pct);
        selected.push(c.selected as u32);
        share.push(c.share);
    }
    Ok(Some(DataFrame::new_infer_height(vec![
        Column::new(auditee_evaluation::POLICY.into(), policy),
        Column::new(auditee_evaluation::TOP_PCT.into(), top_pct),
        Column::new(auditee_evaluation::IMPORTERS_SELECTED.into(), selected),
        Column::new(auditee_evaluation::SHARE_OF_LOST_DUTY.into(), share),
    ])?))
}

/// Reads the truth per declaration item from `spec`'s files (CSV with a header, or parquet):
/// `(declaration_id, item_no)` → `column`. A file that cannot be read, a missing column, an
/// unreadable number or an item given twice is an error naming the file, line and column.
pub fn read_truth(spec: &SourceSpec, base: &Path, column: &str) -> Result<HashMap<(String, i64), f64>, StageError> {
    let mut truth = HashMap::new();
    for path in &spec.paths {
        let path = if path.is_absolute() { path.clone() } else { base.join(path) };
        let shown = path.display().to_string();
        let mut put = |id: String, item: i64, amount: f64, line: usize| -> Result<(), StageError> {
            if truth.insert((id.clone(), item), amount).is_some() {
                return Err(StageError::Data(format!("{shown}:{line}: declaration {id} item {item} is given twice")));
            }
            Ok(())
        };
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet")) {
            let df = mirador_io::read_parquet_columns(&path, &[col::DECLARATION_ID, col::ITEM_NO, column])?;
            let ids = Text::column(&df, col::DECLARATION_ID)?;
            let items = df.column(col::ITEM_NO)?.cast(&DataType::Int64)?;
            let amount = df.column(column)?.cast(&DataType::Float64)?;
            for (row, (id, (item, amount))) in ids.iter().zip(items.i64()?.iter().zip(amount.f64()?.iter())).enumerate() {
                let (Some(id), Some(item)) = (id, item) else {
                    return Err(StageError::Data(format!("{shown}: row {}: declaration_id or item_no is empty", row + 1)));
                };
                put(id.to_owned(), item, amount.unwrap_or(0.0), row + 1)?;
            }
            continue;
        }
        let file = std::fs::File::open(&path).map_err(|e| StageError::Data(format!("{shown}: {e}")))?;
        let mut reader = csv::ReaderBuilder::new().delimiter(spec.separator.map_or(b',', |c| c as u8)).from_reader(file);
        let headers = reader.headers().map_err(|e| StageError::Data(format!("{shown}: {e}")))?.clone();
        let find = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| StageError::MissingColumn { dataset: shown.clone(), column: name.into() })
        };
        let (id_at, item_at, amount_at) = (find(col::DECLARATION_ID)?, find(col::ITEM_NO)?, find(column)?);
        for record in reader.records() {
            let record = record.map_err(|e| StageError::Data(format!("{shown}: {e}")))?;
            let line = record.position().map_or(0, |p| p.line() as usize);
            let field = |at: usize| record.get(at).unwrap_or_default().trim();
            let bad = |name: &str, v: &str| StageError::Data(format!("{shown}:{line}: column `{name}`: `{v}` is not a number"));
            let id = field(id_at);
            if id.is_empty() {
                return Err(StageError::Data(format!("{shown}:{line}: column `{}` is empty", col::DECLARATION_ID)));
            }
            let item = field(item_at);
            let item: i64 = if item.is_empty() { 1 } else { item.parse().map_err(|_| bad(col::ITEM_NO, item))? };
            let amount = field(amount_at);
            let amount: f64 = if amount.is_empty() { 0.0 } else { amount.parse().map_err(|_| bad(column, amount))? };
            if !amount.is_finite() {
                return Err(bad(column, field(amount_at)));
            }
            put(id.to_owned(), item, amount, line)?;
        }
    }
    Ok(truth)
}

/// The auditee list measured against the truth ([module docs](self)).
pub struct EvaluateAuditees;

impl Stage for EvaluateAuditees {
    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        mirador_pipeline::parse_params::<EvaluationParams>(self.name(), params).map(drop)
    }

    fn name(&self) -> &'static str {
        "evaluate_auditees"
    }

    fn inputs(&self) -> &'static [DatasetId] {
        &[datasets::DECLARATIONS, datasets::AUDITEES]
    }

    fn input_columns(&self, id: &str) -> Option<Vec<&'static str>> {
        match id {
            datasets::DECLARATIONS => Some(vec![col::DECLARATION_ID, col::ITEM_NO, col::IMPORTER_ID, col::DUTY_USD, col::VALUE_USD]),
            datasets::AUDITEES => Some(vec![col::IMPORTER_ID]),
            _ => None,
        }
    }

    fn outputs(&self) -> &'static [DatasetId] {
        &[datasets::AUDITEE_EVALUATION]
    }

    fn sources(&self) -> &'static [&'static str] {
        &[SOURCE]
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let params: EvaluationParams = ctx.params()?;
        let truth = read_truth(ctx.source(SOURCE)?, &ctx.resolve(Path::new("")), &params.truth_column)?;
        let (declarations, auditees) = (ctx.input(datasets::DECLARATIONS)?, ctx.input(datasets::AUDITEES)?);
        let (importers, missing) = by_importer(declarations, &truth)?;
        let evaluation = evaluate(auditees, &importers)?.ok_or_else(|| {
            StageError::Data(format!("the ground truth gives no lost duty (`{}`) to the run's declarations", params.truth_column))
        })?;
        let at5 = |policy: &str| -> PolarsResult<Option<f64>> {
            let p = evaluation.column(auditee_evaluation::POLICY)?.str()?;
            let t = evaluation.column(auditee_evaluation::TOP_PCT)?.f64()?;
            let s = evaluation.column(auditee_evaluation::SHARE_OF_LOST_DUTY)?.f64()?;
            Ok((0..evaluation.height()).find(|&i| p.get(i) == Some(policy) && t.get(i) == Some(5.0)).and_then(|i| s.get(i)))
        };
        mirador_io::write_csv(&evaluation, &ctx.artifact_dir().join("auditee_evaluation.csv"))?;
        Ok(StageOutput::new()
            .with_metric("importers", importers.len())
            .with_metric("declarations_without_truth", missing)
            .with_metric("list_top5_share", at5("list")?)
            .with_metric("oracle_top5_share", at5("oracle")?)
            .with_metric("duty_paid_top5_share", at5("duty_paid")?)
            .with_dataset(datasets::AUDITEE_EVALUATION, evaluation))
    }
}
