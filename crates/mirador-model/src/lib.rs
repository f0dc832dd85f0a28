//! The `fraud_model` stage: gradient-boosted fraud scores (BACUDA's "fraud detection by machine
//! learning" and "extracting machine's fraud detection rules").
//!
//! 1. **Split by time.** Inspected (labelled) declarations up to `train-end` train the model;
//!    those up to `valid-end` validate it (early stopping, the flag threshold); later ones are the
//!    held-out test months on which the model is judged. Defaults: 70 % / 15 % / 15 % of the
//!    labelled days.
//! 2. **Features** ([`features`]): the declaration's categorical and numeric fields (categorical
//!    vocabularies from the training rows only), unit price against the product's training
//!    reference price, the k-means and mirror signals when those stages ran, and history
//!    features ([`history`]) computed strictly from earlier days.
//! 3. **Model**: [`mirador_gbdt`] (histogram GBDT with native categorical splits).
//! 4. **Evaluation** ([`evaluate`]) on the test months: ROC AUC, precision/recall/revenue at
//!    1, 2, 5, 10, 20 %, for the probability ranking and the expected-duty ranking, each with a
//!    90 % bootstrap interval, and how few fraudulent declarations hold half the fraudulent duty;
//!    beside it, a logistic regression and a random forest on the same features and split
//!    ([`challengers`]).
//! 5. **Inspection list** ([`select`]): a budget split between the most probable frauds, the
//!    largest expected duties and exploration, the split chosen on the validation months, measured
//!    beside the two rankings.
//! 6. **Scores** for every declaration (labelled or not) with the top reasons (TreeSHAP), rules
//!    read off the trees ([`explain`]), feature importance, and the model saved as a versioned
//!    JSON file that [`score_with_model`] (`mirador score`) reloads.
//!
//! ## Inputs
//! - `declarations`; optional `kmeans_scores`, `mirror_exposure`, and `inspection_outcomes`
//!   (outcomes that arrived after their declarations: [`outcomes`]).
//! ## Outputs
//! - `fraud_scores`: `declaration_id`, `item_no`, `importer_id`, `date`, `split`, `fraud`,
//!   `fraud_probability`, `expected_duty_at_risk_usd`, `fraud_flag`, `top_reasons`, `top_features`,
//!   `selection_order` (the pick order within the split, or the night in a carried-state run; 1
//!   first), `selected_by` (the share that picked it).
//! - `inspection_list`: the list at `budget-pct` of the test months (of the night in a
//!   carried-state run), in pick order, with the share that picked each declaration and its
//!   reasons; `selection_frontier`: the policies searched on the validation months.
//! - `fraud_rules`, `fraud_importance`, `fraud_evaluation`, `fraud_metrics` (the run's other
//!   figures, [`figures`]); artifacts `model.json`, `metrics.json` (the same figures for people to
//!   read; no stage reads it), `inspection_list.csv`; carried state ([`carry`]) and, with an
//!   outcomes feed, `unapplied_outcomes`.

mod aside;
pub mod backtest;
pub mod carry;
mod cart;
pub mod challengers;
pub mod evaluate;
pub mod explain;
pub mod features;
pub mod figures;
pub mod history;
pub mod outcomes;
pub mod pending;
pub mod select;
mod sorted;

mod file;
mod params;
mod part;
mod score;
mod stage;
mod train;

pub use file::{MODEL_FORMAT, ModelFile, Selection};
pub use params::{ModelError, ModelParams};
pub use part::Part;
pub use score::{ScoreSink, Scored, score_rows, score_with_model};
pub use stage::FraudModel;
pub use train::{Rows, Trained, days, empty_history, fit, labels, parse_day, prepare, time_split, train, train_to};
