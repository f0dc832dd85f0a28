//! `auditees_shareable`, written by the `rank` stage: [`crate::datasets::AUDITEES_SHAREABLE`].

use polars::prelude::{DataType, Schema};

pub use crate::col::{IMPORTER_ID, REASON};

/// The dataset's id.
pub const ID: &str = crate::datasets::AUDITEES_SHAREABLE;
pub const RANK: &str = "rank";
pub const AUDIT_SCORE: &str = "audit_score";
pub const REVENUE_AT_RISK_USD: &str = "revenue_at_risk_usd";
pub const EXPECTED_RECOVERABLE_DUTY_USD: &str = "expected_recoverable_duty_usd";
pub const EVIDENCE_CONCENTRATION: &str = "evidence_concentration";
pub const MODEL_EXPECTED_DUTY_USD: &str = "model_expected_duty_usd";
pub const MIRROR_GAP_SHARE_USD: &str = "mirror_gap_share_usd";
pub const UNDERPRICED_DUTY_USD: &str = "underpriced_duty_usd";
pub const DECLARATIONS: &str = "declarations";
pub const FIRST_DECLARED: &str = "first_declared";
pub const LAST_DECLARED: &str = "last_declared";
pub const DECLARED_VALUE_USD: &str = "declared_value_usd";
pub const DUTY_PAID_USD: &str = "duty_paid_usd";
pub const FLAGGED_BY_MODEL: &str = "flagged_by_model";
pub const FLAGGED_BY_KMEANS: &str = "flagged_by_kmeans";
pub const MAX_FRAUD_PROBABILITY: &str = "max_fraud_probability";
pub const MEAN_FRAUD_PROBABILITY: &str = "mean_fraud_probability";
pub const TOP_HS4: &str = "top_hs4";
pub const TOP_ORIGINS: &str = "top_origins";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Date, Float64, String, UInt32};
    super::schema(&[
        (RANK, UInt32),
        (IMPORTER_ID, String),
        (AUDIT_SCORE, Float64),
        (REVENUE_AT_RISK_USD, Float64),
        (EXPECTED_RECOVERABLE_DUTY_USD, Float64),
        (EVIDENCE_CONCENTRATION, Float64),
        (MODEL_EXPECTED_DUTY_USD, Float64),
        (MIRROR_GAP_SHARE_USD, Float64),
        (UNDERPRICED_DUTY_USD, Float64),
        (DECLARATIONS, UInt32),
        (FIRST_DECLARED, Date),
        (LAST_DECLARED, Date),
        (DECLARED_VALUE_USD, Float64),
        (DUTY_PAID_USD, Float64),
        (FLAGGED_BY_MODEL, UInt32),
        (FLAGGED_BY_KMEANS, UInt32),
        (MAX_FRAUD_PROBABILITY, Float64),
        (MEAN_FRAUD_PROBABILITY, Float64),
        (TOP_HS4, String),
        (TOP_ORIGINS, String),
        (REASON, String),
    ])
}
