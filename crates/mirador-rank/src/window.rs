//! The audit window (`carry-state = true`): a nightly run that reads only the night's
//! declarations would rank only the importers that declared that night. Instead each run keeps,
//! in `rank/window/<day>.parquet`, one row per declaration of the last `window-days` with what the
//! ranking reads of it (importer, HS6, origin, office, period, value, duty) and the evidence the
//! stages gave it when it was processed (fraud probability and flag, expected duty at risk, the
//! model's top reason, the k-means flag, price ratio and shortfall, the mirror-gap share). The
//! next run adds its own declarations and ranks the importers over the whole window, so the list
//! covers the audit period and each importer's totals are those of all its declarations in it.
//!
//! The window's columns carry the stages' own names, so [`crate::rank`] reads it as declarations
//! and as each stage's output at once. A declaration processed again replaces its earlier row.
//! The window is kept one file per day: a night writes its own day, and links the carried days
//! it leaves unchanged to the previous run's files, so runs kept side by side share them on disk.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use foldhash::fast::FixedState;
use mirador_pipeline::StageError;
use mirador_pipeline::columns::amounts;
use mirador_schema::catalog::{fraud_scores, rank_window};
use mirador_schema::text::{Text, categorical_type};
use mirador_schema::{col, day};
use polars::prelude::*;

use crate::signals::{Rows, Sources};
use crate::{RankParams, rank};

/// The declaration columns the window keeps as text.
const TEXTS: [&str; 6] = [col::DECLARATION_ID, col::IMPORTER_ID, col::HS6, col::ORIGIN_COUNTRY, col::OFFICE_ID, col::PERIOD];

/// Of those, the ones with few distinct values, held coded in memory (four bytes a row instead
/// of a sixteen-byte string view): a year's window has millions of rows.
const CODED: [&str; 5] = [col::IMPORTER_ID, col::HS6, col::ORIGIN_COUNTRY, col::OFFICE_ID, col::PERIOD];

/// One categorical type per coded column, shared by every day of a window so that they stack.
struct Coding(Vec<(&'static str, DataType)>);

impl Coding {
    fn new() -> Self {
        Coding(CODED.iter().map(|c| (*c, categorical_type(c))).collect())
    }

    fn apply(&self, mut df: DataFrame) -> PolarsResult<DataFrame> {
        for (name, dtype) in &self.0 {
            let coded = df.column(name)?.cast(&DataType::String)?.cast(dtype)?;
            df.with_column(coded)?;
        }
        Ok(df)
    }
}

/// The window rows of `declarations`, with the evidence of the stages that ran (null where a
/// stage did not run or gave a declaration nothing).
pub fn rows(
    declarations: &DataFrame,
    fraud: Option<&DataFrame>,
    kmeans: Option<&DataFrame>,
    mirror: Option<&DataFrame>,
) -> PolarsResult<DataFrame> {
    let top_features = fraud.map(|f| Text::column(f, fraud_scores::TOP_FEATURES)).transpose()?;
    let sources = Sources::new(declarations, fraud, top_features.as_ref(), kmeans, mirror)?;
    let (model, km, mi) = sources.ran();
    let signals = Rows::new(declarations, sources)?.signals();
    let n = declarations.height();
    let mut columns = Vec::new();
    for name in TEXTS {
        let text = Text::column(declarations, name)?;
        columns.push(Column::new(name.into(), text.iter().collect::<StringChunked>().into_series()));
    }
    columns.push(declarations.column(col::ITEM_NO)?.cast(&DataType::Int64)?);
    columns.push(declarations.column(col::DATE)?.cast(&DataType::Date)?);
    for name in [col::VALUE_USD, col::DUTY_USD] {
        columns.push(Column::new(name.into(), amounts(declarations, name)?.into_owned()));
    }
    let f64s =
        |ran: bool, get: &dyn Fn(usize) -> Option<f64>| -> Vec<Option<f64>> { (0..n).map(|i| if ran { get(i) } else { None }).collect() };
    let bools = |ran: bool, get: &dyn Fn(usize) -> bool| -> Vec<Option<bool>> { (0..n).map(|i| ran.then(|| get(i))).collect() };
    columns.push(Column::new(rank_window::FRAUD_PROBABILITY.into(), f64s(model, &|i| signals[i].prob)));
    columns.push(Column::new(rank_window::EXPECTED_DUTY_AT_RISK_USD.into(), f64s(model, &|i| Some(signals[i].expected))));
    columns.push(Column::new(rank_window::FRAUD_FLAG.into(), bools(model, &|i| signals[i].model_flag)));
    columns.push(Column::new(rank_window::TOP_FEATURES.into(), signals.iter().map(|s| s.top_feature).collect::<Vec<_>>()));
    columns.push(Column::new(rank_window::UNDERVALUATION_FLAG.into(), bools(km, &|i| signals[i].kmeans_flag)));
    columns.push(Column::new(rank_window::PRICE_RATIO.into(), f64s(km, &|i| signals[i].price_ratio)));
    columns.push(Column::new(rank_window::UNDERVALUED_DUTY_USD.into(), f64s(km, &|i| Some(signals[i].shortfall))));
    columns.push(Column::new(rank_window::MIRROR_DUTY_SHARE_USD.into(), f64s(mi, &|i| Some(signals[i].mirror))));
    DataFrame::new(n, columns)
}

/// One day of the window: its rows, and the carried file they came from unchanged, if so.
struct Day {
    /// Days since 1970-01-01.
    date: i32,
    rows: DataFrame,
    unchanged: Option<PathBuf>,
}

/// The audit window after a run, day by day.
pub struct Window {
    days: Vec<Day>,
}

impl Window {
    /// The window after this run: the days of the carried window `dir` (a previous run's
    /// `rank/window`, if any) less the declarations `tonight` processes again, with `tonight`'s
    /// rows added, less the days `window_days` or more before the newest one.
    pub fn extend(dir: Option<&Path>, tonight: &DataFrame, window_days: u32) -> Result<Window, StageError> {
        let carried = dir.map(carried_days).transpose()?.unwrap_or_default();
        let tonight_days = day_numbers(tonight)?;
        let newest = carried.iter().map(|(d, _)| *d).chain(tonight_days.iter().flatten().copied()).max();
        let Some(newest) = newest else { return Ok(Window { days: Vec::new() }) };
        let from = newest.saturating_sub(i32::try_from(window_days).unwrap_or(i32::MAX)).saturating_add(1);

        let (ids, items) = keys(tonight)?;
        let again: HashSet<(&str, i64), FixedState> = ids.iter().zip(items.iter()).filter_map(|(d, i)| Some((d?, i?))).collect();
        let coding = Coding::new();
        let read = |(day, path): (i32, PathBuf)| -> Result<Day, StageError> {
            let rows = coding.apply(mirador_io::read_parquet(&path)?)?;
            let (old_ids, old_items) = keys(&rows)?;
            let kept: BooleanChunked = old_ids
                .iter()
                .zip(old_items.iter())
                .map(|(d, i)| Some(!matches!((d, i), (Some(d), Some(i)) if again.contains(&(d, i)))))
                .collect();
            let unchanged = (kept.sum().unwrap_or(0) as usize == rows.height()).then_some(path);
            let rows = if unchanged.is_some() { rows } else { rows.filter(&kept)? };
            Ok(Day { date: day, rows, unchanged })
        };
        // One day at a time: read in parallel, the days' text columns would be held twice over
        // (as read and as coded) on every thread at once, for little gain.
        let carried: Vec<Day> = carried.into_iter().filter(|(d, _)| *d >= from).map(read).collect::<Result<_, _>>()?;
        let mut days: BTreeMap<i32, Day> = carried.into_iter().map(|d| (d.date, d)).collect();
        // Tonight's rows join their days (rows without a date cannot be placed, as ingest
        // never lets through).
        let mut by_day: BTreeMap<i32, Vec<IdxSize>> = BTreeMap::new();
        for (row, day) in tonight_days.iter().enumerate() {
            if let Some(day) = day.filter(|d| *d >= from) {
                by_day.entry(day).or_default().push(row as IdxSize);
            }
        }
        for (day, rows) in by_day {
            let new = coding.apply(tonight.take(&IdxCa::from_vec("rows".into(), rows))?)?;
            match days.get_mut(&day) {
                Some(d) => {
                    d.rows = d.rows.select(new.get_column_names().into_iter().cloned())?.vstack(&new)?;
                    d.unchanged = None;
                }
                None => {
                    days.insert(day, Day { date: day, rows: new, unchanged: None });
                }
            }
        }
        Ok(Window { days: days.into_values().collect() })
    }

    /// All the window's rows, oldest day first (the days' columns become chunks of one frame;
    /// nothing is copied).
    pub fn into_frame(self) -> PolarsResult<Option<DataFrame>> {
        let mut days = self.days.into_iter();
        let Some(first) = days.next() else { return Ok(None) };
        let mut frame = first.rows;
        for d in days {
            frame.vstack_mut_owned(d.rows.select(frame.get_column_names().into_iter().cloned())?)?;
        }
        Ok(Some(frame))
    }

    /// Declarations in the window.
    pub fn rows(&self) -> usize {
        self.days.iter().map(|d| d.rows.height()).sum()
    }

    /// The first and last day of the window, as `YYYY-MM-DD`.
    pub fn span(&self) -> Option<(String, String)> {
        Some((day::text(self.days.first()?.date), day::text(self.days.last()?.date)))
    }

    /// Writes the window into `dir` (the run's carried state [`rank_window`],
    /// `StageContext::state_path`), one file per day, each checked against the catalog first
    /// ([`mirador_pipeline::check_state`]): a day carried unchanged is linked to its earlier file
    /// (or copied where links cannot be made), so a night writes only its own days. Returns the
    /// number of days written anew.
    pub fn write(&self, dir: &Path) -> Result<usize, StageError> {
        for d in &self.days {
            mirador_pipeline::check_state(rank_window::ID, d.rows.schema())?;
        }
        mirador_io::create_dir(dir)?;
        let mut written = 0;
        for d in &self.days {
            let path = dir.join(format!("{}.parquet", day::text(d.date)));
            if let Some(from) = &d.unchanged {
                mirador_io::link_parquet(from, &path)?;
            } else {
                mirador_io::write_parquet(&mut d.rows.clone(), &path)?;
                written += 1;
            }
        }
        Ok(written)
    }
}

/// The days of a carried window directory, each with its file.
fn carried_days(dir: &Path) -> Result<Vec<(i32, PathBuf)>, StageError> {
    Ok(mirador_io::parquet_files(dir)?.into_iter().filter_map(|(stem, path)| Some((day::parse(&stem)?, path))).collect())
}

fn day_numbers(df: &DataFrame) -> PolarsResult<Vec<Option<i32>>> {
    Ok(df.column(col::DATE)?.cast(&DataType::Int32)?.i32()?.iter().collect())
}

fn keys(df: &DataFrame) -> PolarsResult<(StringChunked, Int64Chunked)> {
    Ok((df.column(col::DECLARATION_ID)?.str()?.clone(), df.column(col::ITEM_NO)?.i64()?.clone()))
}

/// The ranked list over the window: each stage's evidence counts where any row has it.
pub fn rank_window(window: &DataFrame, params: &RankParams) -> PolarsResult<DataFrame> {
    let any = |name: &str| -> PolarsResult<bool> { Ok(window.column(name)?.null_count() < window.height()) };
    let fraud = any(rank_window::FRAUD_PROBABILITY)? || any(rank_window::FRAUD_FLAG)?;
    let kmeans = any(rank_window::UNDERVALUATION_FLAG)?;
    let mirror = any(rank_window::MIRROR_DUTY_SHARE_USD)?;
    rank(window, fraud.then_some(window), kmeans.then_some(window), mirror.then_some(window), params)
}
