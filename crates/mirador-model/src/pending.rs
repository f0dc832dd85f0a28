//! Declarations awaiting a late inspection outcome (`label-wait-days`, [`crate::outcomes`]).
//!
//! Most declarations are never inspected, so a carried run keeps them apart from the training
//! window, one file per day in its carried state `model_pending`
//! ([`mirador_schema::catalog::model_pending`], `<YYYY-MM-DD>.parquet` parts), with the features
//! they had when they were processed. A night reads only the keys of the carried days; a day
//! that an outcome reaches is read whole, one day at a time, its decided rows move to the
//! training window, and the rest is written again (read once more when it is written, so that no
//! more than a day is held); every other day is linked to the previous run's file. So the waiting
//! rows cost disk, not memory: at ten million declarations a year, 120 days of them are about
//! three million rows.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use mirador_schema::catalog::model_pending;
use mirador_schema::text::Text;
use mirador_schema::{col, day};
use polars::prelude::*;

use crate::ModelError;
use crate::history::History;
use crate::outcomes::{Outcomes, learn_late};

/// One day of declarations awaiting an outcome, as a run leaves it.
pub enum PendingDay {
    /// Unchanged since the previous run: its file is linked.
    Unchanged(PathBuf),
    /// Rows to write: a new day.
    Rows(DataFrame),
    /// A carried day without the rows outcomes have decided (keys `declaration_id`, `item_no`):
    /// read, filtered and written when the run's outputs are.
    Without(PathBuf, HashSet<(String, i32)>),
}

impl PendingDay {
    /// The day's rows.
    pub fn frame(&self) -> Result<DataFrame, ModelError> {
        match self {
            PendingDay::Rows(df) => Ok(df.clone()),
            PendingDay::Unchanged(path) => mirador_io::read_parquet(path).map_err(file_err(path)),
            PendingDay::Without(path, decided) => {
                let rows = mirador_io::read_parquet(path).map_err(file_err(path))?;
                let keep: BooleanChunked = keys(&rows)?.iter().map(|k| !decided.contains(k)).collect();
                Ok(rows.filter(&keep)?)
            }
        }
    }
}

/// The days of declarations awaiting an outcome that a run leaves to the next.
#[derive(Default)]
pub struct Pending {
    /// (day, what it holds), in day order.
    pub days: Vec<(i32, PendingDay)>,
}

impl Pending {
    /// The rows held.
    pub fn rows(&self) -> Result<usize, ModelError> {
        let mut n = 0;
        for (_, d) in &self.days {
            n += match d {
                PendingDay::Unchanged(path) => mirador_io::parquet_rows(path).map_err(file_err(path))?,
                PendingDay::Rows(df) => df.height(),
                PendingDay::Without(path, decided) => mirador_io::parquet_rows(path).map_err(file_err(path))? - decided.len(),
            };
        }
        Ok(n)
    }

    /// Writes the days to `dir` (linking the unchanged ones), each written one after checking its
    /// columns against the catalog's `model_pending` ([`mirador_pipeline::check_state`]); returns
    /// how many were written.
    pub fn write(&self, dir: &Path) -> Result<usize, ModelError> {
        mirador_io::create_dir(dir).map_err(file_err(dir))?;
        let mut written = 0;
        for (d, held) in &self.days {
            let path = dir.join(format!("{}.parquet", day::text(*d)));
            if let PendingDay::Unchanged(from) = held {
                mirador_io::link_parquet(from, &path).map_err(file_err(&path))?;
            } else {
                let mut rows = held.frame()?;
                if rows.height() > 0 {
                    mirador_pipeline::check_state(model_pending::ID, rows.schema()).map_err(|e| ModelError::Data(e.to_string()))?;
                    mirador_io::write_parquet(&mut rows, &path).map_err(file_err(&path))?;
                    written += 1;
                }
            }
        }
        Ok(written)
    }
}

fn file_err(path: &Path) -> impl FnOnce(mirador_io::IoError) -> ModelError + '_ {
    move |e| ModelError::File { path: path.display().to_string(), message: e.to_string() }
}

/// The pending day files of a previous run's `model_pending` directory, by day.
pub fn load(dir: &Path) -> Result<Vec<(i32, PathBuf)>, ModelError> {
    let files = mirador_io::parquet_files(dir).map_err(file_err(dir))?;
    Ok(files.into_iter().filter_map(|(stem, path)| Some((day::parse(&stem)?, path))).collect())
}

/// The rows outcomes decided (in the window's layout; `None` when none) and the days kept.
pub type Decided = (Option<DataFrame>, Vec<(i32, PendingDay)>);

/// Applies `outcomes` to the carried pending days: the rows they decide are returned (in the
/// window's layout) and counted into `history` from now on; the days after `waiting_from` are
/// kept, as they were or without their decided rows.
pub fn take_decided(
    days: Vec<(i32, PathBuf)>,
    outcomes: &mut Outcomes,
    history: &mut History,
    waiting_from: i32,
) -> Result<Decided, ModelError> {
    let mut decided: Option<DataFrame> = None;
    let mut kept = Vec::new();
    for (d, path) in days {
        let read = |columns: Option<&[&str]>| {
            match columns {
                Some(c) => mirador_io::read_parquet_columns(&path, c),
                None => mirador_io::read_parquet(&path),
            }
            .map_err(file_err(&path))
        };
        let touched = !outcomes.is_empty() && outcomes.touches(&read(Some(&[col::DECLARATION_ID, col::ITEM_NO, col::DATE]))?)?;
        if !touched {
            if d > waiting_from {
                kept.push((d, PendingDay::Unchanged(path)));
            }
            continue;
        }
        let rows = read(None)?;
        let (labelled, changes) = outcomes.apply(&rows, true)?;
        learn_late(history, &labelled, &changes)?;
        let now_decided = labelled.filter(&labelled.column(col::FRAUD)?.is_not_null())?;
        let decided_keys: HashSet<(String, i32)> = keys(&now_decided)?.into_iter().collect();
        decided = Some(match decided {
            Some(all) => stack_like(all, &now_decided)?,
            None => now_decided,
        });
        if d > waiting_from && decided_keys.len() < rows.height() {
            kept.push((d, PendingDay::Without(path, decided_keys)));
        }
    }
    Ok((decided, kept))
}

/// The goods item keys (`declaration_id`, `item_no`) of a pending day's rows, row by row.
fn keys(rows: &DataFrame) -> Result<Vec<(String, i32)>, ModelError> {
    let ids = Text::column(rows, col::DECLARATION_ID)?;
    let items = rows.column(col::ITEM_NO)?.cast(&DataType::Int32)?;
    Ok(ids.iter().zip(items.i32()?.iter()).map(|(id, item)| (id.unwrap_or_default().to_owned(), item.unwrap_or_default())).collect())
}

/// `base` followed by the rows of `extra`, whose columns are cast to `base`'s types (a column
/// `extra` lacks is null).
pub fn stack_like(mut base: DataFrame, extra: &DataFrame) -> Result<DataFrame, ModelError> {
    let mut columns = Vec::with_capacity(base.width());
    for c in base.columns() {
        columns.push(match extra.column(c.name()) {
            Ok(e) => e.cast(c.dtype())?,
            Err(_) => Column::full_null(c.name().clone(), extra.height(), c.dtype()),
        });
    }
    base.vstack_mut(&DataFrame::new_infer_height(columns)?)?;
    Ok(base)
}

/// The rows of `frame` (in the window's layout) as one frame per day, in day order.
pub fn by_day(frame: &DataFrame) -> Result<Vec<(i32, PendingDay)>, ModelError> {
    let days = crate::days(frame)?;
    let mut distinct: Vec<i32> = days.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let mut out = Vec::with_capacity(distinct.len());
    for d in distinct {
        let mask: BooleanChunked = days.iter().map(|x| *x == d).collect();
        out.push((d, PendingDay::Rows(frame.filter(&mask)?)));
    }
    Ok(out)
}
