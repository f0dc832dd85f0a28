//! Carried state (`carry-state = true`): what a nightly run keeps from the previous one, so that
//! it reads only the new declarations instead of all history.
//!
//! The previous committed run holds, as the runner finds them for the stage
//! ([`mirador_pipeline::StageContext::previous_state`] and its siblings):
//! - the model file ([`MODEL_FILE`], an artifact): the trees, the feature vocabularies and the
//!   entity history aggregates up to the last declaration it saw;
//! - `model_training_window` ([`mirador_schema::catalog::model_training_window`]): the labelled
//!   declarations of the last `train-window-days`, with the history features and signals they
//!   had when they were processed;
//! - `model_pending` ([`mirador_schema::catalog::model_pending`], one part per day): with
//!   `label-wait-days`, the unlabelled declarations of that many days, in the same layout,
//!   awaiting a late inspection outcome ([`crate::pending`], [`crate::outcomes`]);
//! - its `fraud_rules` output, kept while the model is not retrained.
//!
//! A run continues the history with its declarations (which must all be newer than the state),
//! labels the window's declarations that inspection outcomes have now decided, scores the new
//! declarations with the carried model, and retrains on window + new labelled rows when the model
//! is `retrain-every-days` old or its parameters changed. Memory grows with the new period and the
//! window, not with the years behind them.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mirador_schema::col;
use mirador_schema::day::text as day_text;
use polars::prelude::*;
use tracing::{info, warn};

use crate::features::{CATEGORICAL, HISTORY, NUMERIC, numbers};
use crate::history::History;
use crate::outcomes::Outcomes;
use crate::pending::{self, Pending};
use crate::{
    ModelError, ModelFile, ModelParams, Rows, ScoreSink, days, empty_history, fit, labels, parse_day, prepare, score_rows, time_split,
};

/// The model file, in the stage's artifact directory. It is not a catalog dataset: the catalog
/// declares tables (a polars schema checked column by column), and the model is a versioned JSON
/// document ([`crate::MODEL_FORMAT`]) whose reader checks its own format. The runner finds the
/// previous run's copy ([`mirador_pipeline::StageContext::previous_artifact`]).
pub const MODEL_FILE: &str = "model.json";
const HISTORY_PREFIX: &str = "history:";
const SIGNAL_PREFIX: &str = "signal:";

/// What the previous run left.
pub struct State {
    /// Its model, history included.
    pub model: ModelFile,
    /// Its training window.
    pub window: DataFrame,
    /// Its `fraud_rules` (kept while the model is not retrained).
    pub rules: DataFrame,
    /// Its days of declarations awaiting an outcome ([`pending::load`]), each with its file.
    pub pending: Vec<(i32, PathBuf)>,
}

/// What a carried-state run produced.
pub struct Outcome {
    /// Scores (of this run's declarations only), rules, importance, evaluation and the model.
    pub trained: crate::Trained,
    /// The training window to carry to the next run.
    pub window: DataFrame,
    /// The declarations awaiting an outcome, to carry to the next run ([`Pending::write`]).
    pub pending: Pending,
    /// Why the model was retrained, or `None` when the carried one scored.
    pub retrained: Option<String>,
    /// Why a retrain that was due could not be done (too few labelled rows in the window).
    pub retrain_skipped: Option<String>,
}

/// Where the previous run keeps its carried state: the paths the runner found, each `None` when
/// that run has none.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// Its model file ([`MODEL_FILE`]).
    pub model: Option<PathBuf>,
    /// Its `model_training_window` file.
    pub window: Option<PathBuf>,
    /// Its `fraud_rules` output.
    pub rules: Option<PathBuf>,
    /// Its `model_pending` directory.
    pub pending: Option<PathBuf>,
}

/// The state the previous run left, or `None` when it has no model or no training window (a run
/// without `carry-state`, or one that never ran the model). A model without its rules is an error.
pub fn load(stored: &Stored) -> Result<Option<State>, ModelError> {
    let (Some(model_path), Some(window_path)) = (&stored.model, &stored.window) else {
        return Ok(None);
    };
    let read =
        |p: &Path| mirador_io::read_parquet(p).map_err(|e| ModelError::File { path: p.display().to_string(), message: e.to_string() });
    let rules = stored.rules.as_deref().ok_or_else(|| ModelError::File {
        path: model_path.display().to_string(),
        message: "the previous run carried a model but wrote no fraud_rules".into(),
    })?;
    Ok(Some(State {
        model: ModelFile::read(model_path)?,
        window: read(window_path)?,
        rules: read(rules)?,
        pending: stored.pending.as_deref().map(pending::load).transpose()?.unwrap_or_default(),
    }))
}

/// The declaration columns the model reads (features, history ids, the scores frame).
fn source_columns() -> Vec<&'static str> {
    let mut out: Vec<&'static str> =
        vec![col::DECLARATION_ID, col::ITEM_NO, col::IMPORTER_ID, col::DATE, col::FRAUD, col::DUTY_USD, col::HS6];
    let derived = [col::HS2, col::HS4];
    let more = CATEGORICAL.iter().map(|(_, c)| *c).chain(NUMERIC.iter().map(|(_, c)| *c)).chain(HISTORY.iter().map(|(_, c)| *c));
    for c in more {
        if !derived.contains(&c) && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Runs the model with carried state: trains from scratch without one, otherwise continues it.
pub fn run(
    declarations: &DataFrame,
    signals: &BTreeMap<&str, &DataFrame>,
    params: &ModelParams,
    seed: u64,
    state: Option<State>,
) -> Result<Outcome, ModelError> {
    run_to(declarations, signals, &mut Outcomes::none(), params, seed, state, &mut ScoreSink::Collect)
}

/// [`run`] with an inspection outcomes feed, the scores going to `sink`.
pub fn run_to(
    declarations: &DataFrame,
    signals: &BTreeMap<&str, &DataFrame>,
    outcomes: &mut Outcomes,
    params: &ModelParams,
    seed: u64,
    state: Option<State>,
    sink: &mut ScoreSink<'_>,
) -> Result<Outcome, ModelError> {
    if params.train_end.is_some() || params.valid_end.is_some() {
        return Err(ModelError::Params(
            "with carry-state the training window is split by its labelled days (70 % / 15 % / 15 %): leave train-end and valid-end unset"
                .into(),
        ));
    }
    if params.train_window_days == 0 {
        return Err(ModelError::Params("train-window-days must be at least 1".into()));
    }
    // The night's own declarations take their outcomes as labels, like those they carry.
    let declarations = outcomes.label(declarations)?;
    let declarations = declarations.as_ref();
    let day = days(declarations)?;
    let range = day.iter().filter(|d| **d != i32::MIN).min().zip(day.iter().max());
    let Some((&oldest, &newest)) = range else {
        let Some(State { model, window, rules, pending: waiting }) = state else {
            return Err(ModelError::Data("no declarations: the first carried-state run needs declarations to train on".into()));
        };
        // A night without declarations (a holiday): nothing to score, the state passes on (with
        // the labels outcomes decided).
        info!("No new declarations: the carried state passes on unchanged.");
        let (mut history, rows) = prepare(declarations, signals, params, model.history)?;
        let (window, pending) = label_late(&window, waiting, outcomes, &mut history, i32::MIN)?;
        let combined = combine(&window, rows, &history, params.use_signals)?;
        let trained = score_rows(ModelFile { history, ..model }, combined, rules, params, seed, sink)?;
        return Ok(Outcome { trained, window, pending, retrained: None, retrain_skipped: None });
    };
    let Some(state) = state else {
        info!("No carried state: training on this run's declarations.");
        let (history, rows) = prepare(declarations, signals, params, empty_history(params))?;
        let window = window_of(&rows, &history, newest, params)?;
        let pending = Pending { days: pending_of(&rows, &history, newest, params)? };
        let trained = fit(rows, history, params, seed, sink)?;
        return Ok(Outcome { trained, window, pending, retrained: Some("no carried state".into()), retrain_skipped: None });
    };
    let State { model, window: old_window, rules, pending: waiting } = state;
    if let Some(last) = model.history.last_day
        && oldest <= last
    {
        let n = day.iter().filter(|d| **d <= last).count();
        return Err(ModelError::Data(format!(
            "{n} declarations are dated on or before {}, the last day the carried state holds: a carried-state run takes only \
             declarations newer than the previous run's (set carry-state = false to rebuild the model from all history)",
            day_text(last)
        )));
    }
    let mut retrain = retrain_reason(&model, params, newest)?;
    // The history moves on with this run's rows; the rest of the model stays as it is.
    let (mut history, rows) = prepare(declarations, signals, params, model.history)?;
    let (old_window, mut pending) = label_late(&old_window, waiting, outcomes, &mut history, since(newest, params.label_wait_days))?;
    let in_window = BooleanChunked::from_slice("keep".into(), &kept(&old_window, newest, params)?);
    let old_window = old_window.filter(&in_window)?;
    let combined = combine(&old_window, rows, &history, params.use_signals)?;
    let window = window_of(&combined, &history, newest, params)?;
    pending.days.extend(pending_of(&combined, &history, newest, params)?);
    info!(window = window.height(), carried = old_window.height(), pending_days = pending.days.len(), "Training window carried forward.");
    drop(old_window);
    let mut retrain_skipped = None;
    if let Some(reason) = &retrain {
        // A retrain the labels cannot support leaves the carried model in service, and says so.
        let frame = combined.frame.as_ref();
        if let Err(ModelError::Data(why)) = time_split(&days(frame)?, &labels(frame)?, params) {
            warn!(reason = reason.as_str(), why = why.as_str(), "Retraining is due but impossible: the carried model scores.");
            retrain_skipped = Some(format!("{reason}, but {why}"));
            retrain = None;
        }
    }
    let trained = match &retrain {
        Some(reason) => {
            info!(reason = reason.as_str(), "Retraining the carried model.");
            fit(combined, history, params, seed, sink)?
        }
        None => score_rows(ModelFile { history, ..model }, combined, rules, params, seed, sink)?,
    };
    Ok(Outcome { trained, window, pending, retrained: retrain, retrain_skipped })
}

/// Why the carried model must be retrained before it scores, if it must.
fn retrain_reason(model: &ModelFile, params: &ModelParams, newest: i32) -> Result<Option<String>, ModelError> {
    if model.params.as_ref() != Some(params) {
        return Ok(Some("the model parameters changed".into()));
    }
    let Some(through) = model.trained_through.as_deref() else {
        return Ok(Some("the carried model does not say when it was trained".into()));
    };
    let age = newest - parse_day(through)?;
    Ok((age >= i32::try_from(params.retrain_every_days).unwrap_or(i32::MAX))
        .then(|| format!("the model was trained through {through}, {age} days before the newest declaration")))
}

/// The carried window and the carried pending days with the labels inspection outcomes have now
/// decided (the pending rows they decide join the window); the entity histories count them from
/// this run on. Pending days up to `waiting_from` are dropped.
fn label_late(
    window: &DataFrame,
    waiting: Vec<(i32, PathBuf)>,
    outcomes: &mut Outcomes,
    history: &mut History,
    waiting_from: i32,
) -> Result<(DataFrame, Pending), ModelError> {
    let (labelled, changed) = outcomes.label_late(window, history)?;
    let (decided, days) = pending::take_decided(waiting, outcomes, history, waiting_from)?;
    let moved = decided.as_ref().map_or(0, DataFrame::height);
    if changed > 0 || moved > 0 {
        info!(window = changed, pending = moved, "Inspection outcomes labelled carried declarations.");
    }
    let window = match decided {
        Some(d) => pending::stack_like(labelled.into_owned(), &d)?,
        None => labelled.into_owned(),
    };
    Ok((window, Pending { days }))
}

/// The first day excluded from the last `n` days before `newest`.
fn since(newest: i32, n: u32) -> i32 {
    newest.saturating_sub(i32::try_from(n).unwrap_or(i32::MAX))
}

/// Which rows of `frame` the window keeps: the labelled ones of the last `train-window-days`
/// before `newest`.
fn kept(frame: &DataFrame, newest: i32, params: &ModelParams) -> Result<Vec<bool>, ModelError> {
    let from = since(newest, params.train_window_days);
    Ok(days(frame)?.iter().zip(labels(frame)?).map(|(d, l)| l.is_some() && *d > from).collect())
}

/// The rows the window keeps ([`kept`]), with their history features and signals as columns.
fn window_of(rows: &Rows<'_>, history: &History, newest: i32, params: &ModelParams) -> Result<DataFrame, ModelError> {
    layout(rows, history, &kept(rows.frame.as_ref(), newest, params)?)
}

/// This run's unlabelled rows of the last `label-wait-days`, in the window's layout, by day.
fn pending_of(
    rows: &Rows<'_>,
    history: &History,
    newest: i32,
    params: &ModelParams,
) -> Result<Vec<(i32, pending::PendingDay)>, ModelError> {
    let frame = rows.frame.as_ref();
    let from = since(newest, params.label_wait_days);
    let keep: Vec<bool> =
        days(frame)?.iter().zip(labels(frame)?).enumerate().map(|(i, (d, l))| i >= rows.scored_from && l.is_none() && *d > from).collect();
    if !keep.contains(&true) {
        return Ok(Vec::new());
    }
    pending::by_day(&layout(rows, history, &keep)?)
}

/// The rows `keep` marks, with their history features and signals as columns.
fn layout(rows: &Rows<'_>, history: &History, keep: &[bool]) -> Result<DataFrame, ModelError> {
    let frame = rows.frame.as_ref();
    let mask = BooleanChunked::from_slice("keep".into(), keep);
    let idx: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
    let mut out = frame.select(source_columns())?.filter(&mask)?;
    for (name, values) in history.feature_names().iter().zip(&rows.history_columns) {
        out.with_column(Column::new(format!("{HISTORY_PREFIX}{name}").into(), idx.iter().map(|&i| values.get(i)).collect::<Vec<f64>>()))?;
    }
    for (name, values) in &rows.signals {
        out.with_column(Column::new(format!("{SIGNAL_PREFIX}{name}").into(), idx.iter().map(|&i| values[i]).collect::<Vec<f64>>()))?;
    }
    Ok(out)
}

/// The carried window (already cut to `train-window-days`) followed by this run's rows: one
/// frame (the window's columns cast to this run's types), history features and signals, scoring
/// from the first new row.
fn combine(window: &DataFrame, rows: Rows<'_>, history: &History, use_signals: bool) -> Result<Rows<'static>, ModelError> {
    let new = rows.frame.as_ref().select(source_columns())?;
    // In 32-bit codes: the window's values join the run's in the one mapping.
    let new = DataFrame::new(new.height(), new.columns().iter().map(mirador_schema::text::widened).collect::<PolarsResult<Vec<_>>>()?)?;
    let n_old = window.height();
    let mut old = window.select(source_columns())?;
    for c in new.columns() {
        let cast = old.column(c.name())?.cast(c.dtype())?;
        old.with_column(cast)?;
    }
    let mut frame = old;
    frame.vstack_mut(&new)?;
    frame.rechunk_mut();
    let n_new_rows = rows.frame.height();
    let mut history_columns = Vec::with_capacity(rows.history_columns.len());
    for (name, values) in history.feature_names().iter().zip(rows.history_columns) {
        let mut all = numbers(window, &format!("{HISTORY_PREFIX}{name}")).map_err(|e| {
            ModelError::Data(format!(
                "the carried training window lacks history feature `{name}` ({e}); set carry-state = false once to rebuild it"
            ))
        })?;
        all.extend((0..n_new_rows).map(|i| values.get(i)));
        history_columns.push(crate::history::Values::Floats(all));
    }
    let mut names: BTreeSet<String> = rows.signals.keys().cloned().collect();
    if use_signals {
        names.extend(window.get_column_names().iter().filter_map(|c| c.strip_prefix(SIGNAL_PREFIX)).map(str::to_owned));
    }
    let n_new = new.height();
    let mut signals = BTreeMap::new();
    for name in names {
        let mut all = numbers(window, &format!("{SIGNAL_PREFIX}{name}")).unwrap_or_else(|_| vec![f64::NAN; n_old]);
        all.extend(rows.signals.get(&name).cloned().unwrap_or_else(|| vec![f64::NAN; n_new]));
        signals.insert(name, all);
    }
    Ok(Rows { frame: Cow::Owned(frame), history_columns, signals, scored_from: n_old })
}
