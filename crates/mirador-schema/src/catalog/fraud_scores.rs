//! `fraud_scores`, written by the `fraud_model` stage: [`crate::datasets::FRAUD_SCORES`].

use polars::prelude::{DataType, Schema};

pub use crate::col::{DATE, DECLARATION_ID, FRAUD, IMPORTER_ID, ITEM_NO};

/// The dataset's id.
pub const ID: &str = crate::datasets::FRAUD_SCORES;
pub const SPLIT: &str = "split";
pub const FRAUD_PROBABILITY: &str = "fraud_probability";
pub const EXPECTED_DUTY_AT_RISK_USD: &str = "expected_duty_at_risk_usd";
pub const FRAUD_FLAG: &str = "fraud_flag";
pub const TOP_REASONS: &str = "top_reasons";
pub const TOP_FEATURES: &str = "top_features";
pub const SELECTION_ORDER: &str = "selection_order";
pub const SELECTED_BY: &str = "selected_by";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Boolean, Date, Float64, Int8, Int32, String, UInt32};
    super::schema(&[
        (DECLARATION_ID, String),
        (ITEM_NO, Int32),
        (IMPORTER_ID, String),
        (DATE, Date),
        (FRAUD, Int8),
        (SPLIT, String),
        (FRAUD_PROBABILITY, Float64),
        (EXPECTED_DUTY_AT_RISK_USD, Float64),
        (FRAUD_FLAG, Boolean),
        (TOP_REASONS, String),
        (TOP_FEATURES, String),
        (SELECTION_ORDER, UInt32),
        (SELECTED_BY, String),
    ])
}
