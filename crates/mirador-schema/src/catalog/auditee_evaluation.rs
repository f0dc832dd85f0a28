//! `auditee_evaluation`, written by the `evaluate_auditees` stage: [`crate::datasets::AUDITEE_EVALUATION`].

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::AUDITEE_EVALUATION;
pub const POLICY: &str = "policy";
pub const TOP_PCT: &str = "top_pct";
pub const IMPORTERS_SELECTED: &str = "importers_selected";
pub const SHARE_OF_LOST_DUTY: &str = "share_of_lost_duty";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, String, UInt32};
    super::schema(&[(POLICY, String), (TOP_PCT, Float64), (IMPORTERS_SELECTED, UInt32), (SHARE_OF_LOST_DUTY, Float64)])
}
