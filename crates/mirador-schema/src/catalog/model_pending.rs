//! `model_pending`: Carried state of `fraud_model`: one day of unlabelled declarations waiting for a late inspection outcome, in the training window's layout ([`super::model_training_window`]; `fraud_model/pending/<day>.parquet`).
//!
//! Its feature columns (`history:*`, `signal:*`) follow these, as the model's features are configured.

pub use super::model_training_window::*;

/// The dataset's id.
pub const ID: &str = "model_pending";
