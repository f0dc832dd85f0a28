//! `fraud_metrics`, written by the `fraud_model` stage: [`crate::datasets::FRAUD_METRICS`].
//!
//! A tidy long table of the model's run figures, one row per figure: the figures that are not
//! per split, ranking and budget (those are `fraud_evaluation`'s and `selection_frontier`'s).
//! [`SECTION`] groups them, [`METRIC`] names one, and a figure is a number ([`VALUE`], flags as
//! 0 or 1) or a text ([`TEXT`], a date or a reason); the other of the two is null. A section is
//! present only when its figures are:
//! - [`MODEL`]: [`TREES`], [`THRESHOLD`] (the flag threshold on the probability), and as text
//!   [`TRAIN_END`] and [`VALID_END`], the last days of the training and validation months;
//! - [`SELECTION`], when the model chose an inspection-list policy: [`REVENUE_SHARE`],
//!   [`EXPLORATION_SHARE`], [`REVENUE_EXPONENT`], [`REVENUE_FLOOR`] (the policy applied), [`TUNED`]
//!   (chosen on the validation months rather than configured), [`FLOOR_MET`], [`PRECISION_FLOOR`]
//!   and [`BUDGET_PCT`] (the run's budget, in % of the period's declarations);
//! - [`CARRIED_STATE`], with `carry-state`: [`PENDING_ROWS`], [`CARRIED_WINDOW_ROWS`],
//!   [`WINDOW_ROWS`], [`RETRAINED`], and as text [`RETRAIN_REASON`] and [`RETRAIN_SKIPPED`] (null
//!   when there is none);
//! - [`INSPECTION_OUTCOMES`], with an outcomes feed: [`ITEMS`], [`LABELLED`], [`CONFIRMED`],
//!   [`REVISED`], [`LATE`], [`UNAPPLIED`] (goods items; see `mirador_model::outcomes::Applied`).

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::FRAUD_METRICS;
/// Column: the group of figures.
pub const SECTION: &str = "section";
/// Column: the figure's name within its section.
pub const METRIC: &str = "metric";
/// Column: the figure, when it is a number.
pub const VALUE: &str = "value";
/// Column: the figure, when it is a text.
pub const TEXT: &str = "text";

/// Section: the model.
pub const MODEL: &str = "model";
/// Section: the inspection-list policy.
pub const SELECTION: &str = "selection";
/// Section: the state carried from run to run.
pub const CARRIED_STATE: &str = "carried_state";
/// Section: the inspection outcomes feed.
pub const INSPECTION_OUTCOMES: &str = "inspection_outcomes";

/// Metric ([`MODEL`]).
pub const TREES: &str = "trees";
/// Metric ([`MODEL`]).
pub const THRESHOLD: &str = "threshold";
/// Metric ([`MODEL`], text).
pub const TRAIN_END: &str = "train_end";
/// Metric ([`MODEL`], text).
pub const VALID_END: &str = "valid_end";
/// Metric ([`SELECTION`]).
pub const REVENUE_SHARE: &str = "revenue_share";
/// Metric ([`SELECTION`]).
pub const EXPLORATION_SHARE: &str = "exploration_share";
/// Metric ([`SELECTION`]).
pub const REVENUE_EXPONENT: &str = "revenue_exponent";
/// Metric ([`SELECTION`]).
pub const REVENUE_FLOOR: &str = "revenue_floor";
/// Metric ([`SELECTION`], 0 or 1).
pub const TUNED: &str = "tuned";
/// Metric ([`SELECTION`], 0 or 1).
pub const FLOOR_MET: &str = "floor_met";
/// Metric ([`SELECTION`]).
pub const PRECISION_FLOOR: &str = "precision_floor";
/// Metric ([`SELECTION`]).
pub const BUDGET_PCT: &str = "budget_pct";
/// Metric ([`CARRIED_STATE`]).
pub const PENDING_ROWS: &str = "pending_rows";
/// Metric ([`CARRIED_STATE`]).
pub const CARRIED_WINDOW_ROWS: &str = "carried_window_rows";
/// Metric ([`CARRIED_STATE`]).
pub const WINDOW_ROWS: &str = "window_rows";
/// Metric ([`CARRIED_STATE`], 0 or 1).
pub const RETRAINED: &str = "retrained";
/// Metric ([`CARRIED_STATE`], text).
pub const RETRAIN_REASON: &str = "retrain_reason";
/// Metric ([`CARRIED_STATE`], text).
pub const RETRAIN_SKIPPED: &str = "retrain_skipped";
/// Metric ([`INSPECTION_OUTCOMES`]).
pub const ITEMS: &str = "items";
/// Metric ([`INSPECTION_OUTCOMES`]).
pub const LABELLED: &str = "labelled";
/// Metric ([`INSPECTION_OUTCOMES`]).
pub const CONFIRMED: &str = "confirmed";
/// Metric ([`INSPECTION_OUTCOMES`]).
pub const REVISED: &str = "revised";
/// Metric ([`INSPECTION_OUTCOMES`]).
pub const LATE: &str = "late";
/// Metric ([`INSPECTION_OUTCOMES`]).
pub const UNAPPLIED: &str = "unapplied";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, String};
    super::schema(&[(SECTION, String), (METRIC, String), (VALUE, Float64), (TEXT, String)])
}
