//! `fraud_rules`, written by the `fraud_model` stage: [`crate::datasets::FRAUD_RULES`].

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::FRAUD_RULES;
pub const RULE: &str = "rule";
pub const SUPPORT_TRAIN: &str = "support_train";
pub const FRAUD_RATE_TRAIN: &str = "fraud_rate_train";
pub const LIFT_TRAIN: &str = "lift_train";
pub const SUPPORT_TEST: &str = "support_test";
pub const FRAUD_RATE_TEST: &str = "fraud_rate_test";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, String, UInt32};
    super::schema(&[
        (RULE, String),
        (SUPPORT_TRAIN, UInt32),
        (FRAUD_RATE_TRAIN, Float64),
        (LIFT_TRAIN, Float64),
        (SUPPORT_TEST, UInt32),
        (FRAUD_RATE_TEST, Float64),
    ])
}
