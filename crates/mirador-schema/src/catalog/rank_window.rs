//! `rank_window`: Carried state of `rank`: one day of scored declarations in the ranking window (`rank/window/<day>.parquet`).

use polars::prelude::{DataType, Schema};

pub use crate::col::{DATE, DECLARATION_ID, DUTY_USD, HS6, IMPORTER_ID, ITEM_NO, OFFICE_ID, ORIGIN_COUNTRY, PERIOD, VALUE_USD};

/// The dataset's id.
pub const ID: &str = "rank_window";
pub const FRAUD_PROBABILITY: &str = "fraud_probability";
pub const EXPECTED_DUTY_AT_RISK_USD: &str = "expected_duty_at_risk_usd";
pub const FRAUD_FLAG: &str = "fraud_flag";
pub const TOP_FEATURES: &str = "top_features";
pub const UNDERVALUATION_FLAG: &str = "undervaluation_flag";
pub const PRICE_RATIO: &str = "price_ratio";
pub const UNDERVALUED_DUTY_USD: &str = "undervalued_duty_usd";
pub const MIRROR_DUTY_SHARE_USD: &str = "mirror_duty_share_usd";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Boolean, Date, Float64, Int64, String};
    super::schema(&[
        (DECLARATION_ID, String),
        (IMPORTER_ID, String),
        (HS6, String),
        (ORIGIN_COUNTRY, String),
        (OFFICE_ID, String),
        (PERIOD, String),
        (ITEM_NO, Int64),
        (DATE, Date),
        (VALUE_USD, Float64),
        (DUTY_USD, Float64),
        (FRAUD_PROBABILITY, Float64),
        (EXPECTED_DUTY_AT_RISK_USD, Float64),
        (FRAUD_FLAG, Boolean),
        (TOP_FEATURES, String),
        (UNDERVALUATION_FLAG, Boolean),
        (PRICE_RATIO, Float64),
        (UNDERVALUED_DUTY_USD, Float64),
        (MIRROR_DUTY_SHARE_USD, Float64),
    ])
}
