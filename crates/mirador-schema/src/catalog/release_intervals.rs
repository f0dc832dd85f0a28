//! `release_intervals`, written by the `release_time` stage: [`crate::datasets::RELEASE_INTERVALS`].

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::RELEASE_INTERVALS;
pub const DIMENSION: &str = "dimension";
pub const GROUP: &str = "group";
pub const INTERVAL: &str = "interval";
pub const DECLARATIONS: &str = "declarations";
pub const MEDIAN_HOURS: &str = "median_hours";
pub const P90_HOURS: &str = "p90_hours";
pub const MEAN_HOURS: &str = "mean_hours";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, Int64, String};
    super::schema(&[
        (DIMENSION, String),
        (GROUP, String),
        (INTERVAL, String),
        (DECLARATIONS, Int64),
        (MEDIAN_HOURS, Float64),
        (P90_HOURS, Float64),
        (MEAN_HOURS, Float64),
    ])
}
