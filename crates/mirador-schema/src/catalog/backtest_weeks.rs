//! `backtest_weeks`, written by `mirador backtest` into its own output directory:
//! [`crate::datasets::BACKTEST_WEEKS`].

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::BACKTEST_WEEKS;
pub const POLICY: &str = "policy";
pub const WEEK: &str = "week";
pub const WEEK_START: &str = "week_start";
pub const DECLARATIONS: &str = "declarations";
pub const SELECTED: &str = "selected";
pub const FRAUDS_FOUND: &str = "frauds_found";
pub const PRECISION: &str = "precision";
pub const FRAUD_DUTY_FOUND: &str = "fraud_duty_found";
pub const FRAUD_DUTY_TOTAL: &str = "fraud_duty_total";
pub const FRAUD_DUTY_SHARE: &str = "fraud_duty_share";
pub const CUMULATIVE_FOUND: &str = "cumulative_found";
pub const CUMULATIVE_TOTAL: &str = "cumulative_total";
pub const CUMULATIVE_SHARE: &str = "cumulative_share";
pub const TRAINING_LABELS: &str = "training_labels";
pub const RETRAINED: &str = "retrained";
pub const REVENUE_SHARE: &str = "revenue_share";
pub const REVENUE_EXPONENT: &str = "revenue_exponent";
pub const EXPLORATION_SHARE: &str = "exploration_share";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Boolean, Date, Float64, String, UInt32};
    super::schema(&[
        (POLICY, String),
        (WEEK, UInt32),
        (WEEK_START, Date),
        (DECLARATIONS, UInt32),
        (SELECTED, UInt32),
        (FRAUDS_FOUND, UInt32),
        (PRECISION, Float64),
        (FRAUD_DUTY_FOUND, Float64),
        (FRAUD_DUTY_TOTAL, Float64),
        (FRAUD_DUTY_SHARE, Float64),
        (CUMULATIVE_FOUND, Float64),
        (CUMULATIVE_TOTAL, Float64),
        (CUMULATIVE_SHARE, Float64),
        (TRAINING_LABELS, UInt32),
        (RETRAINED, Boolean),
        (REVENUE_SHARE, Float64),
        (REVENUE_EXPONENT, Float64),
        (EXPLORATION_SHARE, Float64),
    ])
}
