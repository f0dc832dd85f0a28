//! Inspection outcomes that arrive after their declarations: a physical inspection's result
//! keyed in days later, a post-clearance audit's finding months later. They come in through the
//! `ingest_outcomes` stage (`inspection_outcomes`), and the newest decision on a goods item is its
//! label, replacing the one the declaration carried.
//!
//! - **A whole-history run** (no carried state) reads every declaration and the whole outcomes
//!   feed: each declaration takes its item's newest decision before the model sees it. As with the
//!   labels declarations carry, the entity histories count it from the declaration's day.
//! - **A carried-state run** ([`crate::carry`]) sees only the night's declarations; an outcome
//!   for an earlier one finds it in the carried training window (the labelled rows of the last
//!   `train-window-days`) or, with `label-wait-days`, among the unlabelled rows of that many days
//!   kept for it ([`crate::pending`]). The row takes the label (and so joins the next
//!   retraining), and the entity histories count it from this run on: declarations of earlier
//!   nights never see it, as it was not known when they were scored.
//!
//! An outcome that finds no declaration (outside the window, never declared, or decided before
//! the declaration's date) is not dropped silently: it is counted and listed with the reason in
//! `fraud_model/unapplied_outcomes.parquet`.

use std::borrow::Cow;
use std::collections::HashMap;

use foldhash::fast::FixedState;
use mirador_schema::catalog::unapplied_outcomes;
use mirador_schema::col;
use mirador_schema::text::Text;
use polars::prelude::*;
use serde::Serialize;

use crate::ModelError;
use crate::features::{HISTORY, borrowed, strings};
use crate::history::History;

/// One decision on a goods item.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Decision {
    item_no: i32,
    /// Days since 1970-01-01.
    day: i32,
    fraud: bool,
    critical: Option<i8>,
    status: Status,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Status {
    /// No declaration seen yet.
    Unmatched,
    /// Its declaration is dated after the decision (this day).
    Early(i32),
    /// Applied to a declaration.
    Applied,
}

/// What the outcomes did to the labels (the `inspection_outcomes` section of `fraud_metrics`).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Goods items with an outcome (the newest decision on each counts).
    pub items: usize,
    /// Declarations that were not labelled and now are.
    pub labelled: usize,
    /// Declarations whose label the outcome repeated.
    pub confirmed: usize,
    /// Declarations whose label the outcome changed (a clean inspection later found fraudulent
    /// by audit, or the reverse).
    pub revised: usize,
    /// Of those three, the ones found in the carried window rather than in the run's own
    /// declarations.
    pub late: usize,
    /// Outcomes that found no declaration (listed in the carried state `unapplied_outcomes`,
    /// [`Outcomes::unapplied_frame`]).
    pub unapplied: usize,
}

/// A label changed on one row of a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Change {
    pub(crate) row: usize,
    pub(crate) before: Option<bool>,
    pub(crate) after: bool,
}

/// The newest decision per goods item, keyed by declaration id.
#[derive(Debug, Default)]
pub struct Outcomes {
    by_id: HashMap<String, Vec<Decision>, FixedState>,
    applied: Applied,
}

impl Outcomes {
    /// No outcomes (a pipeline without the feed).
    pub fn none() -> Self {
        Outcomes::default()
    }

    /// Reads an `inspection_outcomes` frame ([`mirador_schema::schemas::inspection_outcomes`]),
    /// keeping the newest decision per goods item (on one day, the later row).
    pub fn from_frame(df: &DataFrame) -> Result<Self, ModelError> {
        let ids = Text::column(df, col::DECLARATION_ID)?;
        let item = df.column(col::ITEM_NO)?.cast(&DataType::Int32)?;
        let day = df.column(col::DECIDED_ON)?.cast(&DataType::Int32)?;
        let fraud = df.column(col::FRAUD)?.cast(&DataType::Int8)?;
        let critical = match df.column(col::CRITICAL_FRAUD) {
            Ok(c) => Some(c.cast(&DataType::Int8)?),
            Err(_) => None,
        };
        let (item, day, fraud) = (item.i32()?, day.i32()?, fraud.i8()?);
        let critical = critical.as_ref().map(|c| c.i8()).transpose()?;
        let mut by_id: HashMap<String, Vec<Decision>, FixedState> = HashMap::default();
        for (i, id) in ids.iter().enumerate() {
            let (Some(id), Some(item_no), Some(day), Some(f)) = (id, item.get(i), day.get(i), fraud.get(i)) else {
                return Err(ModelError::Data(format!(
                    "inspection_outcomes row {i} lacks its declaration id, item, decision day or result (ingest_outcomes quarantines such rows)"
                )));
            };
            let d = Decision { item_no, day, fraud: f == 1, critical: critical.and_then(|c| c.get(i)), status: Status::Unmatched };
            let items = by_id.entry(id.to_owned()).or_default();
            match items.iter_mut().find(|e| e.item_no == item_no) {
                Some(known) if known.day <= day => *known = d,
                Some(_) => {}
                None => items.push(d),
            }
        }
        let items = by_id.values().map(Vec::len).sum();
        Ok(Outcomes { by_id, applied: Applied { items, ..Applied::default() } })
    }

    /// True without any outcome.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// What the outcomes have done so far; `unapplied` counts those that have found no
    /// declaration yet.
    pub fn applied(&self) -> Applied {
        let unapplied = self.by_id.values().flatten().filter(|d| d.status != Status::Applied).count();
        Applied { unapplied, ..self.applied.clone() }
    }

    /// Whether any row of `frame` (`declaration_id`, `item_no`) is an item with an outcome.
    pub(crate) fn touches(&self, frame: &DataFrame) -> Result<bool, ModelError> {
        Ok(!self.matching(frame)?.is_empty())
    }

    /// The rows of `frame` whose goods item has an outcome, each with the item's key.
    fn matching(&self, frame: &DataFrame) -> Result<Vec<(usize, String, i32)>, ModelError> {
        let ids = Text::column(frame, col::DECLARATION_ID)?;
        let items = frame.column(col::ITEM_NO)?.cast(&DataType::Int32)?;
        let mut out = Vec::new();
        for (row, (id, item)) in ids.iter().zip(items.i32()?.iter()).enumerate() {
            let (Some(id), Some(item)) = (id, item) else { continue };
            if self.by_id.get(id).is_some_and(|decisions| decisions.iter().any(|d| d.item_no == item)) {
                out.push((row, id.to_owned(), item));
            }
        }
        Ok(out)
    }

    /// `declarations` with their items' newest decisions as labels (a whole-history run).
    pub fn labelled(&mut self, declarations: &DataFrame) -> Result<DataFrame, ModelError> {
        Ok(self.label(declarations)?.into_owned())
    }

    /// [`Outcomes::labelled`], borrowed as it is when no outcome matches.
    pub fn label<'a>(&mut self, declarations: &'a DataFrame) -> Result<Cow<'a, DataFrame>, ModelError> {
        Ok(self.apply(declarations, false)?.0)
    }

    /// Labels declarations of earlier runs (a carried training window) and folds the labels that
    /// changed into `history`, from now on. Returns the frame (borrowed as it is when no outcome
    /// matches) and how many rows changed; they count as `late` in [`Outcomes::applied`].
    pub fn label_late<'a>(&mut self, frame: &'a DataFrame, history: &mut History) -> Result<(Cow<'a, DataFrame>, usize), ModelError> {
        let (labelled, changes) = self.apply(frame, true)?;
        learn_late(history, &labelled, &changes)?;
        Ok((labelled, changes.len()))
    }

    /// The declarations with their items' newest decisions as labels (`fraud`, and
    /// `critical_fraud` when the frame has it); borrowed as they are when no outcome matches.
    /// `late` marks the rows as the carried window's. Returns the changed rows.
    pub(crate) fn apply<'a>(&mut self, frame: &'a DataFrame, late: bool) -> Result<(Cow<'a, DataFrame>, Vec<Change>), ModelError> {
        if self.by_id.is_empty() || frame.height() == 0 {
            return Ok((Cow::Borrowed(frame), Vec::new()));
        }
        let matches = self.matching(frame)?;
        let days = frame.column(col::DATE)?.cast(&DataType::Int32)?;
        let days = days.i32()?;
        let mut changes = Vec::new();
        let mut set: Vec<(usize, Decision)> = Vec::new();
        for (row, id, item) in matches {
            let Some(d) = self.by_id.get_mut(&id).and_then(|decisions| decisions.iter_mut().find(|d| d.item_no == item)) else {
                continue;
            };
            match days.get(row) {
                Some(declared) if declared > d.day => d.status = Status::Early(declared),
                _ => {
                    d.status = Status::Applied;
                    set.push((row, *d));
                }
            }
        }
        if set.is_empty() {
            return Ok((Cow::Borrowed(frame), changes));
        }
        let fraud = frame.column(col::FRAUD)?.cast(&DataType::Int8)?;
        let mut fraud: Vec<Option<i8>> = fraud.i8()?.iter().collect();
        let mut critical: Option<Vec<Option<i8>>> = match frame.column(col::CRITICAL_FRAUD) {
            Ok(c) => Some(c.cast(&DataType::Int8)?.i8()?.iter().collect()),
            Err(_) => None,
        };
        for (row, d) in set {
            let before = fraud[row].map(|f| f == 1);
            match before {
                None => self.applied.labelled += 1,
                Some(b) if b == d.fraud => self.applied.confirmed += 1,
                Some(_) => self.applied.revised += 1,
            }
            self.applied.late += usize::from(late);
            fraud[row] = Some(i8::from(d.fraud));
            if let Some(c) = critical.as_mut() {
                c[row] = Some(d.critical.unwrap_or(i8::from(d.fraud)));
            }
            changes.push(Change { row, before, after: d.fraud });
        }
        let mut out = frame.clone();
        out.with_column(Column::new(col::FRAUD.into(), fraud))?;
        if let Some(c) = critical {
            out.with_column(Column::new(col::CRITICAL_FRAUD.into(), c))?;
        }
        Ok((Cow::Owned(out), changes))
    }

    /// The outcomes that found no declaration, with the reason: `declaration_id`, `item_no`,
    /// `decided_on`, `fraud`, `reason`.
    pub fn unapplied_frame(&self) -> Result<DataFrame, ModelError> {
        let mut rows: Vec<(&str, &Decision)> = self
            .by_id
            .iter()
            .flat_map(|(id, ds)| ds.iter().map(move |d| (id.as_str(), d)))
            .filter(|(_, d)| d.status != Status::Applied)
            .collect();
        rows.sort_by(|a, b| (a.1.day, a.0, a.1.item_no).cmp(&(b.1.day, b.0, b.1.item_no)));
        let reason = |d: &Decision| match d.status {
            Status::Early(declared) => {
                format!(
                    "decided on {}, before the declaration's date {}",
                    mirador_schema::day::text(d.day),
                    mirador_schema::day::text(declared)
                )
            }
            _ => "no such goods item among this run's declarations or the carried window (declared too long ago to be kept, or \
                  never declared)"
                .to_owned(),
        };
        let decided = Column::new(col::DECIDED_ON.into(), rows.iter().map(|(_, d)| d.day).collect::<Vec<i32>>()).cast(&DataType::Date)?;
        Ok(DataFrame::new_infer_height(vec![
            Column::new(col::DECLARATION_ID.into(), rows.iter().map(|(id, _)| *id).collect::<Vec<&str>>()),
            Column::new(col::ITEM_NO.into(), rows.iter().map(|(_, d)| d.item_no).collect::<Vec<i32>>()),
            decided,
            Column::new(col::FRAUD.into(), rows.iter().map(|(_, d)| i8::from(d.fraud)).collect::<Vec<i8>>()),
            Column::new(unapplied_outcomes::REASON.into(), rows.iter().map(|(_, d)| reason(d)).collect::<Vec<String>>()),
        ])?)
    }
}

/// Folds late labels of `frame`'s rows (`changes`) into the entity histories, from now on.
pub(crate) fn learn_late(history: &mut History, frame: &DataFrame, changes: &[Change]) -> Result<(), ModelError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut wanted: Vec<usize> = changes.iter().map(|c| c.row).collect();
    wanted.sort_unstable();
    let mut ids: Vec<Vec<Option<String>>> = Vec::with_capacity(HISTORY.len());
    for (_, column) in HISTORY {
        let text = strings(frame, column)?;
        let mut of_rows = Vec::with_capacity(wanted.len());
        let mut next = wanted.iter().peekable();
        for (row, v) in borrowed(&text).enumerate() {
            while next.peek().is_some_and(|&&r| r == row) {
                of_rows.push(v.map(str::to_owned));
                next.next();
            }
        }
        ids.push(of_rows);
    }
    let position = |row: usize| wanted.partition_point(|&r| r < row);
    for c in changes {
        let at = position(c.row);
        let row_ids: Vec<Option<&str>> = ids.iter().map(|kind| kind.get(at).and_then(|v| v.as_deref())).collect();
        history.learn_late(&row_ids, c.before, c.after);
    }
    Ok(())
}
