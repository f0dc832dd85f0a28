//! `forecast_accuracy`, written by the `revenue_forecast` stage: [`crate::datasets::FORECAST_ACCURACY`].
//!
//! A rolling-origin backtest per series: from each origin the model is fitted on the months before
//! it and forecasts up to `horizon` months; its mean absolute error, scaled by the in-sample mean
//! absolute error of the seasonal-naive forecast (MASE), beside the seasonal-naive forecast's own.

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::FORECAST_ACCURACY;
pub const DIMENSION: &str = super::forecast_series::DIMENSION;
pub const GROUP: &str = super::forecast_series::GROUP;
pub const MEASURE: &str = super::forecast_series::MEASURE;
pub const MODEL: &str = super::forecast_series::MODEL;
/// Forecast origins backtested.
pub const ORIGINS: &str = "origins";
/// Forecasts scored (origins × months ahead within the history).
pub const FORECASTS: &str = "forecasts";
/// The model's MASE.
pub const MASE: &str = "mase";
/// The seasonal-naive forecast's MASE on the same months; null when the history is shorter than
/// a season and a test month.
pub const MASE_SEASONAL_NAIVE: &str = "mase_seasonal_naive";
/// `mase / mase_seasonal_naive` (below 1: the model is the better).
pub const RELATIVE_MASE: &str = "relative_mase";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, Int64, String};
    super::schema(&[
        (DIMENSION, String),
        (GROUP, String),
        (MEASURE, String),
        (MODEL, String),
        (ORIGINS, Int64),
        (FORECASTS, Int64),
        (MASE, Float64),
        (MASE_SEASONAL_NAIVE, Float64),
        (RELATIVE_MASE, Float64),
    ])
}
