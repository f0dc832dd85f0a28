//! `fraud_evaluation`, written by the `fraud_model` stage: [`crate::datasets::FRAUD_EVALUATION`].

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::FRAUD_EVALUATION;
pub const SPLIT: &str = "split";
pub const RANKING: &str = "ranking";
pub const N_PCT: &str = "n_pct";
pub const SELECTED: &str = "selected";
pub const PRECISION: &str = "precision";
pub const RECALL: &str = "recall";
pub const REVENUE: &str = "revenue";
pub const AUC: &str = "auc";
pub const FRAUD_RATE: &str = "fraud_rate";
pub const PRECISION_LO: &str = "precision_lo";
pub const PRECISION_HI: &str = "precision_hi";
pub const RECALL_LO: &str = "recall_lo";
pub const RECALL_HI: &str = "recall_hi";
pub const REVENUE_LO: &str = "revenue_lo";
pub const REVENUE_HI: &str = "revenue_hi";
pub const AUC_LO: &str = "auc_lo";
pub const AUC_HI: &str = "auc_hi";
pub const FRAUDS_HOLDING_HALF_DUTY: &str = "frauds_holding_half_duty";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, String, UInt32};
    super::schema(&[
        (SPLIT, String),
        (RANKING, String),
        (N_PCT, Float64),
        (SELECTED, UInt32),
        (PRECISION, Float64),
        (RECALL, Float64),
        (REVENUE, Float64),
        (AUC, Float64),
        (FRAUD_RATE, Float64),
        (PRECISION_LO, Float64),
        (PRECISION_HI, Float64),
        (RECALL_LO, Float64),
        (RECALL_HI, Float64),
        (REVENUE_LO, Float64),
        (REVENUE_HI, Float64),
        (AUC_LO, Float64),
        (AUC_HI, Float64),
        (FRAUDS_HOLDING_HALF_DUTY, UInt32),
    ])
}
