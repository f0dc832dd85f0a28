//! The audit window (`carry-state = true`): a nightly run that reads only the night's
//! declarations would rank only the importers that declared that night. Instead each run keeps,
//! in `rank/window.parquet`, one row per declaration of the last `window-days` with what the
//! ranking reads of it (importer, HS6, origin, office, period, value, duty) and the evidence the
//! stages gave it when it was processed (fraud probability and flag, expected duty at risk, the
//! model's top reason, the k-means flag, price ratio and shortfall, the mirror-gap share). The
//! next run adds its own declarations and ranks the importers over the whole window, so the list
//! covers the audit period and each importer's totals are those of all its declarations in it.
//!
//! The window's columns carry the stages' own names, so [`crate::rank`] reads it as declarations
//! and as each stage's output at once. A declaration processed again replaces its earlier row.

use std::collections::HashSet;

use foldhash::fast::FixedState;
use mirador_schema::col;
use mirador_schema::text::Text;
use polars::prelude::*;

use crate::{RankParams, Sources, amounts, rank};

/// The window file in a run's `rank/` directory.
pub const WINDOW_FILE: &str = "window.parquet";

/// The declaration columns the window keeps as text.
const TEXTS: [&str; 6] = [col::DECLARATION_ID, col::IMPORTER_ID, col::HS6, col::ORIGIN_COUNTRY, col::OFFICE_ID, col::PERIOD];

/// The window rows of `declarations`, with the evidence of the stages that ran (null where a
/// stage did not run or gave a declaration nothing).
pub fn rows(
    declarations: &DataFrame,
    fraud: Option<&DataFrame>,
    kmeans: Option<&DataFrame>,
    mirror: Option<&DataFrame>,
) -> PolarsResult<DataFrame> {
    let top_features = fraud.map(|f| Text::column(f, "top_features")).transpose()?;
    let sources = Sources::new(declarations, fraud, top_features.as_ref(), kmeans, mirror)?;
    let n = declarations.height();
    let mut columns = Vec::new();
    for name in TEXTS {
        let text = Text::column(declarations, name)?;
        columns.push(Column::new(name.into(), text.iter().collect::<StringChunked>().into_series()));
    }
    columns.push(declarations.column(col::ITEM_NO)?.cast(&DataType::Int64)?);
    columns.push(declarations.column(col::DATE)?.cast(&DataType::Date)?);
    for name in [col::VALUE_USD, col::DUTY_USD] {
        columns.push(Column::new(name.into(), amounts(declarations, name)?));
    }
    let signals: Vec<_> = (0..n).map(|i| sources.signals(i)).collect();
    let (model, km, mi) = (sources.model.is_some(), sources.kmeans.is_some(), sources.mirror.is_some());
    let f64s =
        |ran: bool, get: &dyn Fn(usize) -> Option<f64>| -> Vec<Option<f64>> { (0..n).map(|i| if ran { get(i) } else { None }).collect() };
    let bools = |ran: bool, get: &dyn Fn(usize) -> bool| -> Vec<Option<bool>> { (0..n).map(|i| ran.then(|| get(i))).collect() };
    columns.push(Column::new("fraud_probability".into(), f64s(model, &|i| signals[i].prob)));
    columns.push(Column::new("expected_duty_at_risk_usd".into(), f64s(model, &|i| Some(signals[i].expected))));
    columns.push(Column::new("fraud_flag".into(), bools(model, &|i| signals[i].model_flag)));
    columns.push(Column::new("top_features".into(), signals.iter().map(|s| s.top_feature).collect::<Vec<_>>()));
    columns.push(Column::new("undervaluation_flag".into(), bools(km, &|i| signals[i].kmeans_flag)));
    columns.push(Column::new("price_ratio".into(), f64s(km, &|i| signals[i].price_ratio)));
    columns.push(Column::new("undervalued_duty_usd".into(), f64s(km, &|i| Some(signals[i].shortfall))));
    columns.push(Column::new("mirror_duty_share_usd".into(), f64s(mi, &|i| Some(signals[i].mirror))));
    DataFrame::new(n, columns)
}

/// The window after this run: the carried rows whose declarations this run did not process
/// again, then this run's rows, less those dated `window_days` or more before the newest one.
pub fn extend(carried: Option<DataFrame>, tonight: DataFrame, window_days: u32) -> PolarsResult<DataFrame> {
    let mut window = match carried {
        None => tonight,
        Some(carried) => {
            let carried = carried.select(tonight.get_column_names().into_iter().cloned())?;
            let keys = |df: &DataFrame| -> PolarsResult<(StringChunked, Int64Chunked)> {
                Ok((df.column(col::DECLARATION_ID)?.str()?.clone(), df.column(col::ITEM_NO)?.i64()?.clone()))
            };
            let (ids, items) = keys(&tonight)?;
            let new: HashSet<(&str, i64), FixedState> = ids.iter().zip(items.iter()).filter_map(|(d, i)| Some((d?, i?))).collect();
            let (old_ids, old_items) = keys(&carried)?;
            let kept: BooleanChunked = old_ids
                .iter()
                .zip(old_items.iter())
                .map(|(d, i)| Some(!matches!((d, i), (Some(d), Some(i)) if new.contains(&(d, i)))))
                .collect();
            let mut window = carried.filter(&kept)?;
            window.vstack_mut(&tonight)?;
            window
        }
    };
    let day = window.column(col::DATE)?.cast(&DataType::Int32)?;
    if let Some(newest) = day.i32()?.max() {
        let from = newest.saturating_sub(i32::try_from(window_days).unwrap_or(i32::MAX)).saturating_add(1);
        let kept: BooleanChunked = day.i32()?.iter().map(|d| Some(d.is_some_and(|d| d >= from))).collect();
        window = window.filter(&kept)?;
    }
    window.rechunk_mut();
    Ok(window)
}

/// The ranked list over the window: each stage's evidence counts where any row has it.
pub fn rank_window(window: &DataFrame, params: &RankParams) -> PolarsResult<DataFrame> {
    let any = |name: &str| -> PolarsResult<bool> { Ok(window.column(name)?.null_count() < window.height()) };
    let fraud = any("fraud_probability")? || any("fraud_flag")?;
    let kmeans = any("undervaluation_flag")?;
    let mirror = any("mirror_duty_share_usd")?;
    rank(window, fraud.then_some(window), kmeans.then_some(window), mirror.then_some(window), params)
}

/// The first and last day of the window, as `YYYY-MM-DD`.
pub fn span(window: &DataFrame) -> PolarsResult<Option<(String, String)>> {
    let days = window.column(col::DATE)?.cast(&DataType::Int32)?;
    let text =
        |d: Option<i32>| d.map(|d| (chrono::NaiveDate::default() + chrono::Duration::days(i64::from(d))).format("%Y-%m-%d").to_string());
    Ok(text(days.i32()?.min()).zip(text(days.i32()?.max())))
}
