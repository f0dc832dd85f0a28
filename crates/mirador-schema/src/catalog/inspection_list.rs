//! `inspection_list`, written by the `fraud_model` stage: [`crate::datasets::INSPECTION_LIST`].

use polars::prelude::{DataType, Schema};

pub use crate::col::{DATE, DECLARATION_ID, IMPORTER_ID, ITEM_NO};

/// The dataset's id.
pub const ID: &str = crate::datasets::INSPECTION_LIST;
pub const PICK_RANK: &str = "pick_rank";
pub const SELECTED_BY: &str = "selected_by";
pub const SPLIT: &str = "split";
pub const FRAUD_PROBABILITY: &str = "fraud_probability";
pub const EXPECTED_DUTY_AT_RISK_USD: &str = "expected_duty_at_risk_usd";
pub const TOP_REASONS: &str = "top_reasons";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Date, Float64, Int32, String, UInt32};
    super::schema(&[
        (PICK_RANK, UInt32),
        (SELECTED_BY, String),
        (DECLARATION_ID, String),
        (ITEM_NO, Int32),
        (IMPORTER_ID, String),
        (DATE, Date),
        (SPLIT, String),
        (FRAUD_PROBABILITY, Float64),
        (EXPECTED_DUTY_AT_RISK_USD, Float64),
        (TOP_REASONS, String),
    ])
}
