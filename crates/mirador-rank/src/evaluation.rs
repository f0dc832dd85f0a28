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
use std::path::Path;

use foldhash::fast::FixedState;
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

/// Per importer of `declarations`: its lost duty (`lost[i]` for declaration row `i`, `None`
/// for an item without truth, counting zero), its duty paid and its declared value. Returns the
/// importers in id order and the number of items that had no truth.
pub fn by_importer(declarations: &DataFrame, lost: &[Option<f64>]) -> PolarsResult<(Vec<ImporterTruth>, usize)> {
    let importers = Text::column(declarations, col::IMPORTER_ID)?;
    let importers = importers.coded();
    let (duty, value) = (amounts(declarations, col::DUTY_USD)?, amounts(declarations, col::VALUE_USD)?);
    if lost.len() != importers.codes.len() {
        polars_bail!(ShapeMismatch: "{} declarations, truth lined up for {}", importers.codes.len(), lost.len());
    }
    // Sums by importer code, each over the importer's rows in row order.
    let mut tally = vec![ImporterTruth::default(); importers.values.len()];
    let mut missing = 0;
    for (i, &code) in importers.codes.iter().enumerate() {
        if code == u32::MAX {
            continue;
        }
        let t = &mut tally[code as usize];
        t.duty_paid += duty[i];
        t.declared_value += value[i];
        match lost[i] {
            Some(l) => t.lost_duty += l,
            None => missing += 1,
        }
    }
    for (t, id) in tally.iter_mut().zip(&importers.values) {
        t.importer_id = (*id).to_owned();
    }
    tally.sort_by(|a, b| a.importer_id.cmp(&b.importer_id));
    Ok((tally, missing))
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

/// One file of the truth, as read: its keys and amounts in file order.
struct TruthFile {
    /// The file, as errors name it.
    shown: String,
    ids: StringChunked,
    items: Vec<i64>,
    amounts: Vec<f64>,
    /// Each row's line in a CSV file (a parquet file's rows are counted from 1).
    lines: Option<Vec<usize>>,
}

impl TruthFile {
    fn line(&self, row: usize) -> usize {
        self.lines.as_ref().map_or(row + 1, |l| l[row])
    }
}

/// The error of an item given twice, at `row` of `f`.
fn twice(f: &TruthFile, row: usize, id: &str, item: i64) -> StageError {
    StageError::Data(format!("{}:{}: declaration {id} item {item} is given twice", f.shown, f.line(row)))
}

/// The truth per declaration item, read from a source's files ([`read_items`]) and lined up
/// with the declarations by [`Truth::lined_up`].
pub struct Truth {
    files: Vec<TruthFile>,
}

/// A declaration key, borrowed.
type Key<'a> = (&'a str, i64);

impl Truth {
    /// The number of items read (each file's rows).
    pub fn len(&self) -> usize {
        self.files.iter().map(|f| f.items.len()).sum()
    }

    /// Whether no item was read.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every item in file order: its key and amount.
    fn rows(&self) -> impl Iterator<Item = (Key<'_>, f64)> + '_ {
        self.files
            .iter()
            .flat_map(|f| f.ids.iter().zip(&f.items).zip(&f.amounts).map(|((id, &item), &a)| ((id.unwrap_or_default(), item), a)))
    }

    /// The items by key. An item given twice is an error naming the file and line of its second
    /// row.
    pub fn into_map(self) -> Result<HashMap<(String, i64), f64>, StageError> {
        let mut map = HashMap::with_capacity(self.len());
        for f in &self.files {
            for (row, (id, &item)) in f.ids.iter().zip(&f.items).enumerate() {
                let id = id.unwrap_or_default();
                if map.insert((id.to_owned(), item), f.amounts[row]).is_some() {
                    return Err(twice(f, row, id, item));
                }
            }
        }
        Ok(map)
    }

    /// The amount of one item (the last one given, where an item is given twice).
    pub fn get(&self, id: &str, item: i64) -> Option<f64> {
        self.rows().filter(|(k, _)| *k == (id, item)).map(|(_, a)| a).last()
    }

    /// The truth of each declaration row (`None` where the item has none). An item given twice
    /// is an error naming the file and line of its second row.
    ///
    /// The truth is usually listed in the declarations' order (the synthetic world writes both
    /// from the same items, and ingest keeps the file order), with perhaps extra items the
    /// declarations lack (quarantined rows): then one walk down both lines them up. Otherwise,
    /// or where a skipped item could repeat one lined up, the items are joined by key.
    pub fn lined_up(&self, declarations: &DataFrame) -> Result<Vec<Option<f64>>, StageError> {
        let ids = Text::column(declarations, col::DECLARATION_ID)?;
        let items = declarations.column(col::ITEM_NO)?.cast(&DataType::Int64)?;
        let items = items.i64()?;
        if let Some(lost) = self.walk(&ids, items) {
            return Ok(lost);
        }
        let mut index: HashMap<Key<'_>, f64, FixedState> = HashMap::default();
        index.reserve(self.len());
        for f in &self.files {
            for (row, (id, &item)) in f.ids.iter().zip(&f.items).enumerate() {
                let id = id.unwrap_or_default();
                if index.insert((id, item), f.amounts[row]).is_some() {
                    return Err(twice(f, row, id, item));
                }
            }
        }
        Ok(ids.iter().zip(items.iter()).map(|(id, item)| index.get(&(id?, item?)).copied()).collect())
    }

    /// The truth lined up by walking down the declarations and the truth together, when every
    /// declaration's item comes in the truth in the declarations' order and no item of the
    /// truth is given twice; `None` otherwise. The declarations' keys are unique (ingest
    /// quarantines repeats), so the items lined up are unique too: only the items skipped
    /// over are checked against the others.
    fn walk(&self, ids: &Text<'_>, items: &Int64Chunked) -> Option<Vec<Option<f64>>> {
        let mut truth = self.rows();
        // Past this many items skipped the orders differ: joining by key is cheaper.
        let most = self.len() / 4 + 1024;
        let mut skipped: HashMap<Key<'_>, (), FixedState> = HashMap::default();
        let mut lost = Vec::with_capacity(items.len());
        for (id, item) in ids.iter().zip(items.iter()) {
            let key = (id?, item?);
            loop {
                let (k, amount) = truth.next()?;
                if k == key {
                    lost.push(Some(amount));
                    break;
                }
                if skipped.insert(k, ()).is_some() || skipped.len() > most {
                    return None;
                }
            }
        }
        for (k, _) in truth {
            if skipped.insert(k, ()).is_some() {
                return None;
            }
        }
        if !skipped.is_empty() && ids.iter().zip(items.iter()).any(|(id, item)| id.zip(item).is_some_and(|k| skipped.contains_key(&k))) {
            return None;
        }
        Some(lost)
    }
}

/// Reads the truth per declaration item from `spec`'s files (CSV with a header, or parquet):
/// `(declaration_id, item_no)` → `column`. A file that cannot be read, a missing column, an
/// unreadable number or an item given twice is an error naming the file, line and column.
pub fn read_truth(spec: &SourceSpec, base: &Path, column: &str) -> Result<HashMap<(String, i64), f64>, StageError> {
    read_items(spec, base, column)?.into_map()
}

/// Reads the items of the truth from `spec`'s files (CSV with a header, or parquet), in file
/// order: `(declaration_id, item_no)` and `column`. A file that cannot be read, a missing
/// column, an empty key or an unreadable number is an error naming the file, line and column;
/// an item given twice is one when the truth is lined up ([`Truth::lined_up`]).
pub fn read_items(spec: &SourceSpec, base: &Path, column: &str) -> Result<Truth, StageError> {
    let mut files = Vec::new();
    for path in &spec.paths {
        let path = if path.is_absolute() { path.clone() } else { base.join(path) };
        let shown = path.display().to_string();
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("parquet")) {
            let df = mirador_io::read_parquet_columns(&path, &[col::DECLARATION_ID, col::ITEM_NO, column])?;
            let ids = df.column(col::DECLARATION_ID)?.cast(&DataType::String)?.str()?.clone();
            let items = df.column(col::ITEM_NO)?.cast(&DataType::Int64)?;
            let items = items.i64()?;
            if ids.null_count() > 0 || items.null_count() > 0 {
                let row = ids.iter().zip(items.iter()).position(|(id, item)| id.is_none() || item.is_none()).unwrap_or_default();
                return Err(StageError::Data(format!("{shown}: row {}: declaration_id or item_no is empty", row + 1)));
            }
            let amount = df.column(column)?.cast(&DataType::Float64)?;
            files.push(TruthFile {
                shown,
                items: items.into_no_null_iter().collect(),
                amounts: amount.f64()?.iter().map(|a| a.unwrap_or(0.0)).collect(),
                ids,
                lines: None,
            });
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
        let (mut ids, mut items, mut amounts, mut lines) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
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
            ids.push(id.to_owned());
            items.push(item);
            amounts.push(amount);
            lines.push(line);
        }
        files.push(TruthFile {
            shown,
            ids: StringChunked::from_iter_values(col::DECLARATION_ID.into(), ids.iter().map(String::as_str)),
            items,
            amounts,
            lines: Some(lines),
        });
    }
    Ok(Truth { files })
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
        let truth = read_items(ctx.source(SOURCE)?, &ctx.resolve(Path::new("")), &params.truth_column)?;
        let (declarations, auditees) = (ctx.input(datasets::DECLARATIONS)?, ctx.input(datasets::AUDITEES)?);
        let lost = truth.lined_up(declarations)?;
        drop(truth);
        let (importers, missing) = by_importer(declarations, &lost)?;
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
