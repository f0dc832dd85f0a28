//! The stage's parameters and errors.

use mirador_gbdt::Params;
use mirador_pipeline::StageError;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::*;

/// Parameters of the `fraud_model` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModelParams {
    /// Last day of the training months (`YYYY-MM-DD`); default: 70 % of the labelled days.
    pub train_end: Option<String>,
    /// Last day of the validation months; default: 85 % of the labelled days.
    pub valid_end: Option<String>,
    /// Boosting rounds (upper bound; early stopping on the validation months).
    pub n_trees: usize,
    /// Shrinkage. 0.1 was chosen on validation months: against 0.03 it gave a higher validation
    /// AUC on the KCS split (0.926 against 0.910), on the bundled sample and on a 1M synthetic
    /// world, with a quarter to a third of the trees (so scoring and explaining are that much
    /// faster).
    pub learning_rate: f64,
    /// Leaves per tree.
    pub num_leaves: usize,
    /// Depth limit (0: none).
    pub max_depth: usize,
    /// Fewest training rows per leaf.
    pub min_data_in_leaf: usize,
    /// Share of features tried per tree.
    pub feature_fraction: f64,
    /// L2 regularisation of leaf values.
    pub lambda_l2: f64,
    /// Rounds without validation improvement before stopping. 50 at learning rate 0.1 stops on
    /// the same best round as 100 did on the KCS split, the sample and a 1M synthetic world, with
    /// half the wasted rounds after it.
    pub early_stopping_rounds: usize,
    /// Pseudo-count of the smoothed past fraud rates.
    pub history_smoothing: f64,
    /// Use the entity-history features (past declarations, inspections and smoothed fraud rate
    /// of the importer, declarant, seller, HS6, origin and office). Whether they help depends on
    /// the administration's data: decide on the validation months (on the KCS split they lower
    /// validation AUC from 0.910 to 0.890).
    pub history_features: bool,
    /// Revenue-aware training: each training row weighs `(1 + duty / median duty) ^ w`, so the
    /// model works harder on the declarations where fraud costs most. 0 weighs every row alike.
    pub revenue_weight: f64,
    /// Use the k-means and mirror signals when the pipeline provides them.
    pub use_signals: bool,
    /// Feature names to leave out (see `fraud_importance` for the names).
    pub exclude_features: Vec<String>,
    /// Reasons listed per declaration.
    pub top_reasons: usize,
    /// Rules kept.
    pub rules: usize,
    /// Conditions per rule, at most.
    pub rule_conditions: usize,
    /// Fewest training rows a rule must cover.
    pub rule_min_support: usize,
    /// Carry the model and its state from run to run, so that a nightly run reads only the new
    /// declarations, not all history ([`carry`]): the previous run's model (with its history
    /// aggregates) scores them, and a bounded window of labelled declarations is kept to retrain
    /// on. Without a previous run the model is trained on the run's own declarations.
    pub carry_state: bool,
    /// With `carry-state`: retrain when the model's newest training day is this many days older
    /// than the newest declaration (or when the parameters changed).
    pub retrain_every_days: u32,
    /// With `carry-state`: labelled declarations of this many days (before the newest one) are kept
    /// in the training window.
    pub train_window_days: u32,
    /// With `carry-state`: unlabelled declarations of this many days (before the newest one) are
    /// kept too, apart from the training window ([`pending`]), so that an inspection outcome or
    /// audit finding arriving that late still finds its declaration ([`outcomes`]). 0 keeps none:
    /// outcomes then label only the run's own declarations and the labelled window.
    pub label_wait_days: u32,
    /// Judge a logistic regression and a random forest ([`challengers`]) on the same features
    /// and split, beside the boosting, in `fraud_evaluation`. Off unless asked for (the nightly
    /// pipeline's parameters ask for it), so that runs and tests that only need the boosting do
    /// not pay for them.
    pub challengers: bool,
    /// Training rows the challengers are fit on, at most (a seeded sample).
    pub challenger_rows: usize,
    /// Trees of the challenger random forest.
    pub forest_trees: usize,
    /// The inspection budget: `inspection_list` holds this percentage of the period's
    /// declarations (the test months in a whole-history run, the night's declarations in a
    /// carried-state run). `fraud_scores.selection_order` gives the list at any other budget.
    pub budget_pct: f64,
    /// Share of the inspection list picked by expected duty ([`select`]); chosen on the
    /// validation months with `tune-selection`.
    pub revenue_share: f64,
    /// The revenue share ranks by `probability ^ revenue-exponent × duty` (1: expected duty).
    pub revenue_exponent: f64,
    /// The revenue share takes only declarations at least this probable first (0: all).
    pub revenue_floor: f64,
    /// Share of the inspection list picked by exploration (what the model knows least about),
    /// seeded. Its worth shows over time, as the labels it reveals teach the model; on held-out
    /// months it costs precision, so it is set, not tuned, and set apart from the tuning: the
    /// precision floor judges the rest of the list, whose split keeps the same proportions.
    pub exploration_share: f64,
    /// Choose `revenue-share` (and the exponent among `tune-exponents`) on the validation months:
    /// the most revenue at `budget-pct` under the precision floor. The frontier searched is
    /// written as `selection_frontier`.
    pub tune_selection: bool,
    /// The tuned list must keep this fraction of the precision the probability ranking has at
    /// `budget-pct` on the validation months.
    pub precision_floor: f64,
    /// Revenue shares tried by the tuning: 0 to this, by steps of 0.025.
    pub tune_max_revenue_share: f64,
    /// Exponents tried by the tuning: 1 ranks the revenue share by expected duty, 2 asks more
    /// certainty of a large duty.
    pub tune_exponents: Vec<f64>,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            train_end: None,
            valid_end: None,
            n_trees: 1_000,
            learning_rate: 0.1,
            num_leaves: 63,
            max_depth: 0,
            min_data_in_leaf: 50,
            feature_fraction: 0.8,
            lambda_l2: 1.0,
            early_stopping_rounds: 50,
            history_smoothing: 10.0,
            history_features: true,
            revenue_weight: 0.0,
            use_signals: true,
            exclude_features: Vec::new(),
            top_reasons: 3,
            rules: 20,
            rule_conditions: 3,
            rule_min_support: 30,
            carry_state: false,
            retrain_every_days: 28,
            train_window_days: 365,
            label_wait_days: 0,
            challengers: false,
            challenger_rows: 20_000,
            forest_trees: 100,
            budget_pct: 5.0,
            revenue_share: 0.1,
            revenue_exponent: 1.0,
            revenue_floor: 0.0,
            exploration_share: 0.0,
            tune_selection: true,
            precision_floor: 0.95,
            tune_max_revenue_share: 0.5,
            tune_exponents: vec![1.0, 2.0],
        }
    }
}

impl ModelParams {
    /// The selection policy as configured (before tuning).
    pub fn policy(&self) -> select::Policy {
        select::Policy {
            revenue_share: self.revenue_share,
            exploration_share: self.exploration_share,
            revenue_exponent: self.revenue_exponent,
            revenue_floor: self.revenue_floor,
        }
    }

    pub(crate) fn check_selection(&self) -> Result<(), ModelError> {
        self.policy().check().map_err(ModelError::Params)?;
        if !(self.budget_pct > 0.0 && self.budget_pct <= 100.0) {
            return Err(ModelError::Params(format!("budget-pct {} must be in (0, 100]", self.budget_pct)));
        }
        if !(0.0..=1.0).contains(&self.precision_floor) || !(0.0..=1.0).contains(&self.tune_max_revenue_share) {
            return Err(ModelError::Params("precision-floor and tune-max-revenue-share must be in [0, 1]".into()));
        }
        if self.tune_exponents.is_empty() || self.tune_exponents.iter().any(|e| !e.is_finite() || *e < 0.0) {
            return Err(ModelError::Params("tune-exponents must list finite numbers ≥ 0".into()));
        }
        Ok(())
    }

    /// Range checks of the parameters, before any data is read: a value out of range is a
    /// configuration error naming the stage and the key.
    pub fn validate(&self, stage: &str) -> Result<(), StageError> {
        use mirador_pipeline::param_in_range as range;
        range(stage, "n-trees", self.n_trees, 1, 100_000)?;
        range(stage, "learning-rate", self.learning_rate, 1e-4, 1.0)?;
        range(stage, "num-leaves", self.num_leaves, 2, 65_536)?;
        range(stage, "max-depth", self.max_depth, 0, 64)?;
        range(stage, "min-data-in-leaf", self.min_data_in_leaf, 1, 100_000_000)?;
        range(stage, "feature-fraction", self.feature_fraction, 0.01, 1.0)?;
        range(stage, "lambda-l2", self.lambda_l2, 0.0, 1e6)?;
        range(stage, "early-stopping-rounds", self.early_stopping_rounds, 1, 100_000)?;
        range(stage, "history-smoothing", self.history_smoothing, 0.0, 1e9)?;
        range(stage, "revenue-weight", self.revenue_weight, 0.0, 10.0)?;
        range(stage, "top-reasons", self.top_reasons, 0, 50)?;
        range(stage, "rules", self.rules, 0, 10_000)?;
        range(stage, "rule-conditions", self.rule_conditions, 1, 20)?;
        range(stage, "retrain-every-days", self.retrain_every_days, 1, 3_660)?;
        range(stage, "train-window-days", self.train_window_days, 1, 36_600)?;
        range(stage, "label-wait-days", self.label_wait_days, 0, 3_660)
    }

    pub(crate) fn booster(&self, seed: u64) -> Params {
        Params {
            n_trees: self.n_trees,
            learning_rate: self.learning_rate,
            num_leaves: self.num_leaves,
            max_depth: self.max_depth,
            min_data_in_leaf: self.min_data_in_leaf,
            feature_fraction: self.feature_fraction,
            lambda_l2: self.lambda_l2,
            early_stopping_rounds: Some(self.early_stopping_rounds),
            seed,
            ..Params::default()
        }
    }
}

/// Errors of the model stage.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Not enough labelled data to train or evaluate.
    #[error("{0}")]
    Data(String),
    /// A parameter is invalid.
    #[error("{0}")]
    Params(String),
    /// The booster failed.
    #[error(transparent)]
    Gbdt(#[from] mirador_gbdt::GbdtError),
    /// polars failed.
    #[error(transparent)]
    Polars(#[from] PolarsError),
    /// Reading or writing the model file failed.
    #[error("model file `{path}`: {message}")]
    File {
        /// Path.
        path: String,
        /// What went wrong.
        message: String,
    },
}
