//! `release_steps`, written by the `release_time` stage: [`crate::datasets::RELEASE_STEPS`].

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::RELEASE_STEPS;
pub const DIMENSION: &str = "dimension";
pub const GROUP: &str = "group";
pub const STEP: &str = "step";
pub const DECLARATIONS: &str = "declarations";
pub const MEAN_HOURS: &str = "mean_hours";
pub const SHARE: &str = "share";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, Int64, String};
    super::schema(&[(DIMENSION, String), (GROUP, String), (STEP, String), (DECLARATIONS, Int64), (MEAN_HOURS, Float64), (SHARE, Float64)])
}
