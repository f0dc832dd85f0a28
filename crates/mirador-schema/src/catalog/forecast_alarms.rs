//! `forecast_alarms`, written by the `revenue_forecast` stage: [`crate::datasets::FORECAST_ALARMS`].

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::FORECAST_ALARMS;
pub const DIMENSION: &str = super::forecast_series::DIMENSION;
pub const GROUP: &str = super::forecast_series::GROUP;
pub const MEASURE: &str = super::forecast_series::MEASURE;
pub const PERIOD: &str = super::forecast_series::PERIOD;
/// `duty_below_forecast` (the duty fell below its prediction interval) or `value_against_mirror`
/// (the declared value fell against the partners' exports of the same goods).
pub const ALARM: &str = "alarm";
/// The month's value (duty or declared value, USD; for `value_against_mirror`, the log ratio of
/// declared value to mirror exports).
pub const ACTUAL: &str = super::forecast_series::ACTUAL;
/// What was forecast for the month.
pub const FORECAST: &str = super::forecast_series::FORECAST;
/// Lower bound of the prediction interval, which the actual fell below.
pub const LOWER: &str = super::forecast_series::LOWER;
/// Forecast − actual, in USD of the measure (for `value_against_mirror`, of declared value at the
/// expected ratio to the mirror exports).
pub const SHORTFALL_USD: &str = "shortfall_usd";
/// Consecutive alarmed months of the series and kind up to this one (1 = the first).
pub const RUN_MONTHS: &str = "run_months";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, Int64, String};
    super::schema(&[
        (DIMENSION, String),
        (GROUP, String),
        (MEASURE, String),
        (PERIOD, String),
        (ALARM, String),
        (ACTUAL, Float64),
        (FORECAST, Float64),
        (LOWER, Float64),
        (SHORTFALL_USD, Float64),
        (RUN_MONTHS, Int64),
    ])
}
