//! Dataset ids: the names stages use to exchange data. A stage's `inputs()`/`outputs()` return
//! these, and the pipeline file refers to them by the same strings.

use crate::DatasetId;

/// Accepted, normalised import declarations (one row per goods item): [`crate::schemas::declarations`].
pub const DECLARATIONS: DatasetId = "declarations";
/// Accepted mirror-trade flows (both the home country's imports and partners' exports).
pub const MIRROR_FLOWS: DatasetId = "mirror_flows";
/// Tariff schedule: MFN and preferential rates by HS prefix.
pub const TARIFFS: DatasetId = "tariffs";
/// Exchange rates to USD per currency and period.
pub const FX_RATES: DatasetId = "fx_rates";
/// Every rejected input row, with its source, line, reason code and message.
pub const QUARANTINE: DatasetId = "quarantine";
/// Accepted inspection outcomes that arrived after their declarations (one row per goods item
/// and decision day): [`crate::schemas::inspection_outcomes`].
pub const INSPECTION_OUTCOMES: DatasetId = "inspection_outcomes";
/// Rejected rows of the inspection outcomes feed (same columns as [`QUARANTINE`]).
pub const OUTCOME_QUARANTINE: DatasetId = "outcome_quarantine";

/// Revenue gap per HS6 × partner × period.
pub const GAP_BY_CELL: DatasetId = "gap_by_cell";
/// Revenue gap per HS chapter (HS2) × period.
pub const GAP_BY_CHAPTER: DatasetId = "gap_by_chapter";
/// Revenue gap per partner × period.
pub const GAP_BY_PARTNER: DatasetId = "gap_by_partner";
/// One-row-per-period totals with bounds.
pub const GAP_SUMMARY: DatasetId = "gap_summary";
/// Per-declaration mirror exposure (gap ratio of its HS6 × origin cell).
pub const MIRROR_EXPOSURE: DatasetId = "mirror_exposure";

/// Per-declaration k-means undervaluation scores.
pub const KMEANS_SCORES: DatasetId = "kmeans_scores";
/// Per product group: k, centroids, sizes, quality.
pub const KMEANS_GROUPS: DatasetId = "kmeans_groups";

/// Per-declaration fraud probability, expected duty at risk and top reasons.
pub const FRAUD_SCORES: DatasetId = "fraud_scores";
/// Human-readable rules extracted from the fraud model's trees.
pub const FRAUD_RULES: DatasetId = "fraud_rules";
/// Feature importance of the fraud model.
pub const FRAUD_IMPORTANCE: DatasetId = "fraud_importance";

/// Ranked auditee list (internal: real importer ids).
pub const AUDITEES: DatasetId = "auditees";
/// Ranked auditee list with pseudonymised importer ids, safe to share.
pub const AUDITEES_SHAREABLE: DatasetId = "auditees_shareable";
/// The auditee list measured against a known truth: share of lost duty held by its head, beside
/// other orders; one row per (policy, top %).
pub const AUDITEE_EVALUATION: DatasetId = "auditee_evaluation";

/// Fraud model evaluation on the held-out test months: one row per (ranking, n %).
pub const FRAUD_EVALUATION: DatasetId = "fraud_evaluation";
/// The fraud model's run figures beside its evaluation: the model, the selection policy applied,
/// the carried state and what the inspection outcomes feed did to the labels; one row per figure.
pub const FRAUD_METRICS: DatasetId = "fraud_metrics";
/// The inspection list at the configured budget: picked declarations in pick order, the share
/// that picked each, and its reasons.
pub const INSPECTION_LIST: DatasetId = "inspection_list";
/// The selection policies searched on the validation months, with their figures per n %.
pub const SELECTION_FRONTIER: DatasetId = "selection_frontier";

/// Release-time distributions (median, p90) per interval and per office, lane, HS chapter and
/// month (`release_time` stage).
pub const RELEASE_INTERVALS: DatasetId = "release_intervals";
/// Offices and lanes measured against the service level, worst first (`release_time` stage).
pub const RELEASE_BREACHES: DatasetId = "release_breaches";
/// The share of the total release time each step takes, overall and per office and lane
/// (`release_time` stage).
pub const RELEASE_STEPS: DatasetId = "release_steps";

/// Monthly duty collected and declared value per series (total, HS chapter, office), with the
/// one-month-ahead forecast and its prediction interval, and the next months forecast
/// (`revenue_forecast` stage).
pub const FORECAST_SERIES: DatasetId = "forecast_series";
/// Months where the duty collected fell below its prediction interval, or the declared value
/// moved against the mirror exports (`revenue_forecast` stage).
pub const FORECAST_ALARMS: DatasetId = "forecast_alarms";
/// Rolling-origin backtest per series: the forecasts' MASE beside the seasonal-naive forecast's
/// (`revenue_forecast` stage).
pub const FORECAST_ACCURACY: DatasetId = "forecast_accuracy";

/// The inspection backtest, per policy and week: picks, frauds and fraudulent duty found, the
/// running totals, the split of the budget applied (`mirador backtest`, outside any run).
pub const BACKTEST_WEEKS: DatasetId = "backtest_weeks";
/// The inspection backtest per policy over the whole replay and its last quarter (`mirador
/// backtest`, outside any run).
pub const BACKTEST_SUMMARY: DatasetId = "backtest_summary";
