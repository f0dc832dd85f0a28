//! `backtest_summary`, written by `mirador backtest` into its own output directory:
//! [`crate::datasets::BACKTEST_SUMMARY`]. Its totals are those of `backtest_weeks`, summed.

use polars::prelude::{DataType, Schema};

pub use super::backtest_weeks::{FRAUD_DUTY_FOUND, FRAUD_DUTY_SHARE, FRAUD_DUTY_TOTAL, FRAUDS_FOUND, POLICY, PRECISION, SELECTED};

/// The dataset's id.
pub const ID: &str = crate::datasets::BACKTEST_SUMMARY;
/// `whole` (every week) or `last_quarter`.
pub const PERIOD: &str = "period";
pub const FROM_WEEK: &str = "from_week";
pub const WEEKS: &str = "weeks";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, String, UInt32, UInt64};
    super::schema(&[
        (POLICY, String),
        (PERIOD, String),
        (FROM_WEEK, UInt32),
        (WEEKS, UInt32),
        (SELECTED, UInt64),
        (FRAUDS_FOUND, UInt64),
        (PRECISION, Float64),
        (FRAUD_DUTY_FOUND, Float64),
        (FRAUD_DUTY_TOTAL, Float64),
        (FRAUD_DUTY_SHARE, Float64),
    ])
}
