//! `fraud_importance`, written by the `fraud_model` stage: [`crate::datasets::FRAUD_IMPORTANCE`].

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::FRAUD_IMPORTANCE;
pub const FEATURE: &str = "feature";
pub const LABEL: &str = "label";
pub const GAIN: &str = "gain";
pub const GAIN_SHARE: &str = "gain_share";
pub const SPLITS: &str = "splits";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, String};
    super::schema(&[(FEATURE, String), (LABEL, String), (GAIN, Float64), (GAIN_SHARE, Float64), (SPLITS, Float64)])
}
