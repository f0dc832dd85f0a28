//! `forecast_series`, written by the `revenue_forecast` stage: [`crate::datasets::FORECAST_SERIES`].
//!
//! One row per series × month: the history (`actual`, with the one-month-ahead `forecast` and its
//! interval where the month was checked) and the next months (`future`, forecast only).

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::FORECAST_SERIES;
/// `total`, `hs_chapter` or `office`.
pub const DIMENSION: &str = "dimension";
/// The chapter or office (`all` for the total).
pub const GROUP: &str = "group";
/// `duty` (collected, USD) or `declared_value` (USD).
pub const MEASURE: &str = "measure";
/// `YYYY-MM`.
pub const PERIOD: &str = "period";
/// The month's value; null for future months.
pub const ACTUAL: &str = "actual";
/// The forecast made before the month (one month ahead for history, from the last month for the
/// future); null where none was made.
pub const FORECAST: &str = "forecast";
/// Lower bound of the prediction interval.
pub const LOWER: &str = "lower";
/// Upper bound of the prediction interval.
pub const UPPER: &str = "upper";
/// Whether the month is after the history.
pub const FUTURE: &str = "future";
/// The model that made the forecast (e.g. `MSTL(12)+AutoETS`, `AutoETS`).
pub const MODEL: &str = "model";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Boolean, Float64, String};
    super::schema(&[
        (DIMENSION, String),
        (GROUP, String),
        (MEASURE, String),
        (PERIOD, String),
        (ACTUAL, Float64),
        (FORECAST, Float64),
        (LOWER, Float64),
        (UPPER, Float64),
        (FUTURE, Boolean),
        (MODEL, String),
    ])
}
