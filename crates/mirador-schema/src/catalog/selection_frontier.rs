//! `selection_frontier`, written by the `fraud_model` stage: [`crate::datasets::SELECTION_FRONTIER`].

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::SELECTION_FRONTIER;
pub const SPLIT: &str = "split";
pub const REVENUE_SHARE: &str = "revenue_share";
pub const EXPLORATION_SHARE: &str = "exploration_share";
pub const REVENUE_EXPONENT: &str = "revenue_exponent";
pub const REVENUE_FLOOR: &str = "revenue_floor";
pub const N_PCT: &str = "n_pct";
pub const SELECTED: &str = "selected";
pub const PRECISION: &str = "precision";
pub const RECALL: &str = "recall";
pub const REVENUE: &str = "revenue";
pub const CHOSEN: &str = "chosen";
pub const BUDGET_PCT: &str = "budget_pct";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Boolean, Float64, String, UInt32};
    super::schema(&[
        (SPLIT, String),
        (REVENUE_SHARE, Float64),
        (EXPLORATION_SHARE, Float64),
        (REVENUE_EXPONENT, Float64),
        (REVENUE_FLOOR, Float64),
        (N_PCT, Float64),
        (SELECTED, UInt32),
        (PRECISION, Float64),
        (RECALL, Float64),
        (REVENUE, Float64),
        (CHOSEN, Boolean),
        (BUDGET_PCT, Float64),
    ])
}
