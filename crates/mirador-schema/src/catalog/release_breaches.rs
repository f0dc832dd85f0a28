//! `release_breaches`, written by the `release_time` stage: [`crate::datasets::RELEASE_BREACHES`].

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::RELEASE_BREACHES;
pub const DIMENSION: &str = "dimension";
pub const GROUP: &str = "group";
pub const DECLARATIONS: &str = "declarations";
pub const MEDIAN_HOURS: &str = "median_hours";
pub const P90_HOURS: &str = "p90_hours";
pub const SERVICE_LEVEL_HOURS: &str = "service_level_hours";
pub const P90_SERVICE_LEVEL_HOURS: &str = "p90_service_level_hours";
pub const MEDIAN_RATIO: &str = "median_ratio";
pub const BREACH: &str = "breach";
pub const RANK: &str = "rank";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Boolean, Float64, Int64, String};
    super::schema(&[
        (DIMENSION, String),
        (GROUP, String),
        (DECLARATIONS, Int64),
        (MEDIAN_HOURS, Float64),
        (P90_HOURS, Float64),
        (SERVICE_LEVEL_HOURS, Float64),
        (P90_SERVICE_LEVEL_HOURS, Float64),
        (MEDIAN_RATIO, Float64),
        (BREACH, Boolean),
        (RANK, Int64),
    ])
}
