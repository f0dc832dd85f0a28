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
//! - `fraud_rules`, `fraud_importance`, `fraud_evaluation`; artifacts `model.json`, `metrics.json`,
//!   `inspection_list.csv` (and `unapplied_outcomes.parquet` with an outcomes feed).

pub mod backtest;
pub mod carry;
pub mod challengers;
pub mod evaluate;
pub mod explain;
pub mod features;
pub mod history;
pub mod outcomes;
pub mod pending;
pub mod select;
mod sorted;

use std::collections::BTreeMap;
use std::path::Path;

use mirador_gbdt::{Booster, ImportanceKind, Params};
use mirador_pipeline::{Stage, StageContext, StageError, StageOutput};
use mirador_schema::day::text as day_text;
use mirador_schema::{DatasetId, col, datasets};
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use evaluate::{Evaluation, evaluate, f1_threshold};
use features::{FeatureSpec, HISTORY, SIGNALS, Subset, history_ids, history_texts, numbers, signal_columns};
use history::History;

/// Version of the model file format; bumped on incompatible changes.
pub const MODEL_FORMAT: u32 = 1;

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
    /// months it costs precision, so it is set, not tuned.
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

    fn check_selection(&self) -> Result<(), ModelError> {
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

    fn booster(&self, seed: u64) -> Params {
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

/// The saved model: everything needed to score new declarations without retraining.
#[derive(Serialize, Deserialize)]
pub struct ModelFile {
    /// [`MODEL_FORMAT`].
    pub format: u32,
    /// Mirador version that trained it.
    pub mirador_version: String,
    /// Training window.
    pub train_end: String,
    /// Validation window end.
    pub valid_end: String,
    /// Last labelled day the model was trained and evaluated on (a carried-state run retrains
    /// when this is `retrain-every-days` old).
    #[serde(default)]
    pub trained_through: Option<String>,
    /// The parameters it was trained with (a carried-state run retrains when they change).
    #[serde(default)]
    pub params: Option<ModelParams>,
    /// Flag threshold on the probability (F1-optimal on the validation months).
    pub threshold: f64,
    /// Feature vocabularies and reference prices.
    pub spec: FeatureSpec,
    /// History up to the last declaration the model saw.
    pub history: History,
    /// The trees.
    pub booster: Booster,
    /// Held-out figures.
    pub evaluation: Vec<Evaluation>,
    /// The challengers' held-out figures, when they ran.
    #[serde(default)]
    pub challengers: Vec<challengers::Challenger>,
    /// The inspection list's policy, and the frontier it was chosen from.
    #[serde(default)]
    pub selection: Option<Selection>,
}

/// The selection policy a model applies, as chosen on its validation months.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The policy applied.
    pub policy: select::Policy,
    /// Whether it was tuned (otherwise it is the configured one).
    pub tuned: bool,
    /// With tuning: whether a policy met the precision floor.
    pub floor_met: bool,
    /// The absolute precision floor at the budget on the validation months.
    pub precision_floor: f64,
    /// The budget the policy was chosen at, in % of the period's declarations.
    #[serde(default)]
    pub budget_pct: f64,
    /// Every policy searched, at every budget, on the validation months.
    pub frontier: Vec<select::FrontierPoint>,
}

impl Selection {
    /// The `selection_frontier` rows.
    pub fn frontier_frame(&self) -> PolarsResult<DataFrame> {
        let f = &self.frontier;
        let chosen: Vec<bool> = f.iter().map(|p| p.policy == self.policy).collect();
        DataFrame::new_infer_height(vec![
            Column::new("split".into(), vec!["valid"; f.len()]),
            Column::new("revenue_share".into(), f.iter().map(|p| p.policy.revenue_share).collect::<Vec<_>>()),
            Column::new("exploration_share".into(), f.iter().map(|p| p.policy.exploration_share).collect::<Vec<_>>()),
            Column::new("revenue_exponent".into(), f.iter().map(|p| p.policy.revenue_exponent).collect::<Vec<_>>()),
            Column::new("revenue_floor".into(), f.iter().map(|p| p.policy.revenue_floor).collect::<Vec<_>>()),
            Column::new("n_pct".into(), f.iter().map(|p| p.at.n_pct).collect::<Vec<_>>()),
            Column::new("selected".into(), f.iter().map(|p| p.at.selected as u32).collect::<Vec<_>>()),
            Column::new("precision".into(), f.iter().map(|p| p.at.precision).collect::<Vec<_>>()),
            Column::new("recall".into(), f.iter().map(|p| p.at.recall).collect::<Vec<_>>()),
            Column::new("revenue".into(), f.iter().map(|p| p.at.revenue).collect::<Vec<_>>()),
            Column::new("chosen".into(), chosen),
            Column::new("budget_pct".into(), vec![self.budget_pct; f.len()]),
        ])
    }
}

impl ModelFile {
    /// Reads a model file, checking its format version.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let file_err = |message: String| ModelError::File { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let model: ModelFile = serde_json::from_str(&text).map_err(|e| file_err(format!("not a Mirador model file: {e}")))?;
        if model.format != MODEL_FORMAT {
            return Err(file_err(format!("format version {} is not supported (this Mirador reads {MODEL_FORMAT})", model.format)));
        }
        Ok(model)
    }
}

/// Everything the stage produces.
pub struct Trained {
    /// The model.
    pub model: ModelFile,
    /// `fraud_scores` (empty when they were streamed: [`ScoreSink::Stream`]).
    pub scores: DataFrame,
    /// `fraud_rules`.
    pub rules: DataFrame,
    /// `fraud_importance`.
    pub importance: DataFrame,
    /// `fraud_evaluation`.
    pub evaluation: DataFrame,
    /// `inspection_list`: the list at `budget-pct` of the period.
    pub inspection_list: DataFrame,
    /// `selection_frontier`.
    pub frontier: DataFrame,
}

fn days(df: &DataFrame) -> PolarsResult<Vec<i32>> {
    let d = df.column(col::DATE)?.cast(&DataType::Int32)?;
    Ok(d.i32()?.iter().map(|v| v.unwrap_or(i32::MIN)).collect())
}

fn labels(df: &DataFrame) -> PolarsResult<Vec<Option<bool>>> {
    let f = df.column(col::FRAUD)?.cast(&DataType::Int8)?;
    Ok(f.i8()?.iter().map(|v| v.map(|v| v == 1)).collect())
}

fn parse_day(s: &str) -> Result<i32, ModelError> {
    mirador_schema::day::parse(s).ok_or_else(|| ModelError::Params(format!("`{s}` is not a YYYY-MM-DD date")))
}

/// Trains, evaluates, explains and scores. `signals` are the other stages' datasets by id.
pub fn train(
    declarations: &DataFrame,
    signals: &BTreeMap<&str, &DataFrame>,
    params: &ModelParams,
    seed: u64,
) -> Result<Trained, ModelError> {
    train_to(declarations, signals, params, seed, &mut ScoreSink::Collect)
}

/// [`train`], the scores going to `sink`.
pub fn train_to(
    declarations: &DataFrame,
    signals: &BTreeMap<&str, &DataFrame>,
    params: &ModelParams,
    seed: u64,
    sink: &mut ScoreSink<'_>,
) -> Result<Trained, ModelError> {
    let (history, rows) = prepare(declarations, signals, params, History::new(&history_kinds(), params.history_smoothing))?;
    fit(rows, history, params, seed, sink)
}

/// Where `fraud_scores` go as the declarations are scored.
pub enum ScoreSink<'s> {
    /// Into one frame ([`Trained::scores`]).
    Collect,
    /// Into a dataset written a block of rows at a time, so that every row's reasons are never
    /// all in memory (1.8 GB at ten million declarations); [`Trained::scores`] is then empty.
    Stream(&'s mut mirador_pipeline::DatasetStream),
}

impl ScoreSink<'_> {
    /// Scores and explains the rows of `rows` from `rows.scored_from` on, a block of
    /// [`SCORE_BLOCK_ROWS`] at a time, so that memory holds one block's features; each block's
    /// `fraud_scores` rows ([`scores_frame`], with `split` and `duty` by row of `rows.frame`, and
    /// the pick order of `plan`) go to the sink. An empty range gives one empty block, so that the
    /// scores always have a schema. Returns the collected scores (empty when streamed), every
    /// scored row's probability, and the inspection list of `plan.list_period`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn score(
        &mut self,
        booster: &Booster,
        spec: &FeatureSpec,
        history: &History,
        rows: &Rows<'_>,
        top_reasons: usize,
        split: &[&str],
        duty: &[f64],
        threshold: f64,
        plan: &SelectionPlan<'_>,
    ) -> Result<(DataFrame, Vec<f64>, DataFrame), ModelError> {
        let started = std::time::Instant::now();
        let frame = rows.frame.as_ref();
        let range = rows.scored_from..frame.height();
        let (order, picked_by, list_cutoff) =
            timed("inspection lists ordered", || plan.order(booster, spec, history, rows, duty, threshold))?;
        let mut blocks: Vec<std::ops::Range<usize>> =
            range.clone().step_by(SCORE_BLOCK_ROWS).map(|start| start..(start + SCORE_BLOCK_ROWS).min(range.end)).collect();
        if blocks.is_empty() {
            blocks.push(range.clone());
        }
        let mut collected: Option<DataFrame> = None;
        let mut listed: Option<DataFrame> = None;
        let mut probability = Vec::with_capacity(range.len());
        let score_block = |block: std::ops::Range<usize>| -> Result<(DataFrame, Vec<f64>, DataFrame), ModelError> {
            let explained = if block.is_empty() {
                explain::Explained::with_capacity(0)
            } else {
                let data = spec.dataset_of(frame, history, &rows.history_columns, &rows.signals, Subset::Range(block.clone()))?;
                explain::explain(booster, spec, &data, top_reasons)?
            };
            let probability = explained.probability.clone();
            let mut df = scores_frame(
                &frame.slice(block.start as i64, block.len()),
                &split[block.clone()],
                &duty[block.clone()],
                threshold,
                explained,
            )?;
            df.with_column(Column::new("selection_order".into(), order[block.clone()].to_vec()))?;
            df.with_column(Column::new("selected_by".into(), picked_by[block.clone()].to_vec()))?;
            let on_list: Vec<bool> =
                block.clone().map(|i| plan.period[i] == plan.list_period && order[i] as usize <= list_cutoff).collect();
            let list = df.filter(&BooleanChunked::from_slice("on_list".into(), &on_list))?;
            Ok((df, probability, list))
        };
        // A block's rows go to the sink while the next block is scored: writing is largely
        // sequential, and would otherwise leave a core idle.
        let mut pending: Option<DataFrame> = None;
        for block in blocks {
            let (put, scored) = rayon::join(|| self.put(pending.take(), &mut collected), || score_block(block));
            put?;
            let (df, p, list) = scored?;
            probability.extend_from_slice(&p);
            match &mut listed {
                Some(all) => {
                    all.vstack_mut_owned(list)?;
                }
                None => listed = Some(list),
            }
            pending = Some(df);
        }
        self.put(pending, &mut collected)?;
        info!(rows = range.len(), seconds = started.elapsed().as_secs_f64(), "Scored and explained the declarations.");
        let list = inspection_list(listed.unwrap_or_default())?;
        Ok((collected.unwrap_or_default(), probability, list))
    }

    /// Hands a block's `fraud_scores` rows to the sink (nothing when `df` is `None`).
    fn put(&mut self, df: Option<DataFrame>, collected: &mut Option<DataFrame>) -> Result<(), ModelError> {
        let Some(df) = df else { return Ok(()) };
        match self {
            ScoreSink::Collect => match collected {
                Some(all) => {
                    all.vstack_mut_owned(df)?;
                }
                None => *collected = Some(df),
            },
            ScoreSink::Stream(stream) => stream.write(&df).map_err(|e| ModelError::Data(e.to_string()))?,
        }
        Ok(())
    }
}

/// Runs `f`, logging how long `what` took (at debug level: `mirador -vv run ...`).
pub(crate) fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let out = f();
    debug!(seconds = started.elapsed().as_secs_f64(), "{what}.");
    out
}

/// How [`ScoreSink::score`] orders the scored rows into inspection lists ([`select`]).
pub(crate) struct SelectionPlan<'p> {
    /// The policy.
    pub(crate) policy: select::Policy,
    /// Seeds the exploration draws.
    pub(crate) seed: u64,
    /// Each row's period (by row of the frame): a period's scored rows are ordered together.
    pub(crate) period: Vec<&'p str>,
    /// The period whose list at `budget_pct` is `inspection_list`.
    pub(crate) list_period: &'p str,
    /// The budget of `inspection_list`, in % of the period's rows.
    pub(crate) budget_pct: f64,
    /// Probabilities already computed, by row of the frame (NaN: predicted here).
    pub(crate) known: Vec<f64>,
    /// Hashes of the HS6 × origin pairs of the training rows (`None`: unknown).
    pub(crate) known_pairs: Option<std::collections::HashSet<u64, foldhash::fast::FixedState>>,
}

/// The period of every row in a whole-history run: its split.
pub(crate) const LIST_PERIOD_SPLIT: &str = "test";
/// The period of a carried-state run's new rows: the night.
pub(crate) const LIST_PERIOD_NIGHT: &str = "night";

fn pair_hash(hs6: Option<&str>, origin: Option<&str>) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x5e1ec7).build_hasher();
    (hs6, origin).hash(&mut h);
    h.finish()
}

/// The HS6 × origin pairs of the rows `keep` marks, hashed.
pub(crate) fn pairs_of(
    frame: &DataFrame,
    keep: impl Fn(usize) -> bool,
) -> PolarsResult<std::collections::HashSet<u64, foldhash::fast::FixedState>> {
    let hs6 = features::strings(frame, col::HS6)?;
    let origin = features::strings(frame, col::ORIGIN_COUNTRY)?;
    Ok(features::borrowed(&hs6)
        .zip(features::borrowed(&origin))
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, (h, o))| pair_hash(h, o))
        .collect())
}

impl SelectionPlan<'_> {
    /// The plan of a run: in a whole-history run (`rows.scored_from == 0`) each split is a
    /// period and the test months give `inspection_list`; with carried rows before
    /// `scored_from`, the new rows are one period (the night). `known` holds probabilities
    /// already computed by row (NaN elsewhere).
    pub(crate) fn of<'s>(
        rows: &Rows<'_>,
        split: &[&'s str],
        known: Vec<f64>,
        policy: select::Policy,
        params: &ModelParams,
        seed: u64,
    ) -> Result<SelectionPlan<'s>, ModelError> {
        let frame = rows.frame.as_ref();
        let whole = rows.scored_from == 0;
        let known_pairs = if whole {
            pairs_of(frame, |i| split[i] == "train")?
        } else {
            let label = labels(frame)?;
            pairs_of(frame, |i| i < rows.scored_from && label[i].is_some())?
        };
        Ok(SelectionPlan {
            policy,
            seed,
            period: if whole { split.to_vec() } else { vec![LIST_PERIOD_NIGHT; frame.height()] },
            list_period: if whole { LIST_PERIOD_SPLIT } else { LIST_PERIOD_NIGHT },
            budget_pct: params.budget_pct,
            known,
            known_pairs: Some(known_pairs),
        })
    }

    /// Every frame row's pick order within its period (0 before `rows.scored_from`), the share
    /// that picked it, and how many picks the list period's `inspection_list` holds.
    fn order(
        &self,
        booster: &Booster,
        spec: &FeatureSpec,
        history: &History,
        rows: &Rows<'_>,
        duty: &[f64],
        threshold: f64,
    ) -> Result<(Vec<u32>, Vec<&'static str>, usize), ModelError> {
        let frame = rows.frame.as_ref();
        let n = frame.height();
        let mut probability = self.known.clone();
        probability.resize(n, f64::NAN);
        let missing: Vec<usize> = (rows.scored_from..n).filter(|&i| !probability[i].is_finite()).collect();
        for chunk in missing.chunks(SCORE_BLOCK_ROWS) {
            let data = spec.dataset_of(frame, history, &rows.history_columns, &rows.signals, Subset::Rows(chunk))?;
            for (&i, p) in chunk.iter().zip(booster.predict_proba(&data)?) {
                probability[i] = p;
            }
        }
        let mut periods: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for i in rows.scored_from..n {
            periods.entry(self.period[i]).or_default().push(i);
        }
        let mut order = vec![0u32; n];
        let mut by = vec![""; n];
        let mut cutoff = 0;
        for (period, idx) in &periods {
            let p: Vec<f64> = idx.iter().map(|&i| probability[i]).collect();
            let d: Vec<f64> = idx.iter().map(|&i| duty[i]).collect();
            let novelty = self.novelty_of(history, rows, idx, &p, threshold)?;
            let picks = select::select(&select::Candidates { probability: &p, duty: &d, novelty: &novelty }, &self.policy, self.seed);
            for (k, pick) in picks.iter().enumerate() {
                order[idx[pick.row]] = u32::try_from(k + 1).unwrap_or(u32::MAX);
                by[idx[pick.row]] = pick.share.name();
            }
            if *period == self.list_period {
                cutoff = select::budget_rows(self.budget_pct, idx.len());
            }
        }
        Ok((order, by, cutoff))
    }

    /// The novelty of rows `idx` of `rows`, as [`SelectionPlan::order`] computes it.
    pub(crate) fn novelty_of(
        &self,
        history: &History,
        rows: &Rows<'_>,
        idx: &[usize],
        probability: &[f64],
        threshold: f64,
    ) -> Result<Vec<f64>, ModelError> {
        let frame = rows.frame.as_ref();
        let inspections =
            history.kinds.iter().position(|k| k == "importer").and_then(|k| rows.history_columns.get(k * history::PER_KIND + 1));
        let hs6 = features::strings(frame, col::HS6)?;
        let origin = features::strings(frame, col::ORIGIN_COUNTRY)?;
        let hs6: Vec<Option<&str>> = features::borrowed(&hs6).collect();
        let origin: Vec<Option<&str>> = features::borrowed(&origin).collect();
        Ok(idx
            .iter()
            .zip(probability)
            .map(|(&i, &p)| {
                let new_pair = self.known_pairs.as_ref().is_some_and(|known| !known.contains(&pair_hash(hs6[i], origin[i])));
                select::novelty(p, threshold, inspections.map_or(f64::NAN, |v| v.get(i)), new_pair)
            })
            .collect())
    }
}

/// The inspection list's rows in pick order, with the columns an officer reads.
fn inspection_list(listed: DataFrame) -> PolarsResult<DataFrame> {
    if listed.width() == 0 {
        return Ok(listed);
    }
    let sorted = listed.sort(["selection_order"], SortMultipleOptions::default())?;
    let mut out = sorted.select([
        "selection_order",
        "selected_by",
        col::DECLARATION_ID,
        col::ITEM_NO,
        col::IMPORTER_ID,
        col::DATE,
        "split",
        "fraud_probability",
        "expected_duty_at_risk_usd",
        "top_reasons",
    ])?;
    out.rename("selection_order", "pick_rank".into())?;
    Ok(out)
}

fn history_kinds() -> Vec<&'static str> {
    HISTORY.iter().map(|(k, _)| *k).collect()
}

/// Declarations with their history features (from `history`, which is advanced past them) and
/// the other stages' signals, ready for [`fit`].
fn prepare<'a>(
    declarations: &'a DataFrame,
    signals: &BTreeMap<&str, &DataFrame>,
    params: &ModelParams,
    mut history: History,
) -> Result<(History, Rows<'a>), ModelError> {
    let day = days(declarations)?;
    let label = labels(declarations)?;
    let id_texts = history_texts(declarations)?;
    let history_columns = timed("history features", || history.advance_coded(&day, history_ids(&id_texts), &label));
    let signals = if params.use_signals { timed("signals joined", || signal_columns(declarations, signals))? } else { BTreeMap::new() };
    Ok((history, Rows { frame: std::borrow::Cow::Borrowed(declarations), history_columns, signals, scored_from: 0 }))
}

/// Rows to train on and score, with their precomputed history features and signals. Rows before
/// `scored_from` come from a carried training window ([`carry`]): they are trained on but not
/// scored again.
pub(crate) struct Rows<'a> {
    pub(crate) frame: std::borrow::Cow<'a, DataFrame>,
    pub(crate) history_columns: Vec<history::Values>,
    pub(crate) signals: BTreeMap<String, Vec<f64>>,
    pub(crate) scored_from: usize,
}

/// The time-based split of `rows`: `train`, `valid`, `test` or `unlabelled` per row, and the
/// train and validation end days. Fails when a part holds too few labelled rows.
fn time_split(day: &[i32], label: &[Option<bool>], params: &ModelParams) -> Result<(Vec<&'static str>, i32, i32), ModelError> {
    let mut labelled_days: Vec<i32> = day.iter().zip(label).filter(|(_, l)| l.is_some()).map(|(d, _)| *d).collect();
    labelled_days.sort_unstable();
    if labelled_days.len() < 100 {
        return Err(ModelError::Data(format!(
            "only {} inspected (labelled) declarations: the fraud model needs at least 100 to train and evaluate",
            labelled_days.len()
        )));
    }
    let quantile_day = |q: f64| labelled_days[((labelled_days.len() - 1) as f64 * q) as usize];
    let train_end = params.train_end.as_deref().map(parse_day).transpose()?.unwrap_or_else(|| quantile_day(0.70));
    let valid_end = params.valid_end.as_deref().map(parse_day).transpose()?.unwrap_or_else(|| quantile_day(0.85));
    if valid_end <= train_end && params.train_end.is_none() && params.valid_end.is_none() {
        // Not a parameter problem: the labelled days cannot be cut in three by time.
        let (first, last) = (labelled_days[0], labelled_days[labelled_days.len() - 1]);
        let span = if first == last {
            format!("a single day ({})", day_text(first))
        } else {
            format!("{} to {}", day_text(first), day_text(last))
        };
        return Err(ModelError::Data(format!(
            "the {} labelled declarations span {span}: the time-based split into training, validation and test days needs \
             labelled declarations spread over more days (or set train-end and valid-end)",
            labelled_days.len()
        )));
    }
    if valid_end <= train_end {
        return Err(ModelError::Params(format!("valid-end {} must be after train-end {}", day_text(valid_end), day_text(train_end))));
    }
    let split: Vec<&'static str> = day
        .iter()
        .zip(label)
        .map(|(d, l)| match (l, *d <= train_end, *d <= valid_end) {
            (None, ..) => "unlabelled",
            (Some(_), true, _) => "train",
            (Some(_), false, true) => "valid",
            (Some(_), false, false) => "test",
        })
        .collect();
    let count = |s: &str| split.iter().filter(|x| **x == s).count();
    for (s, min) in [("train", 50), ("valid", 20), ("test", 20)] {
        if count(s) < min {
            return Err(ModelError::Data(format!(
                "the {s} months hold {} labelled declarations (need {min}); adjust train-end/valid-end",
                count(s)
            )));
        }
    }
    Ok((split, train_end, valid_end))
}

/// Splits by time, trains, evaluates, explains and scores the rows from `rows.scored_from` on.
/// `history` is the history after the last row; it is saved with the model.
fn fit(rows: Rows<'_>, history: History, params: &ModelParams, seed: u64, sink: &mut ScoreSink<'_>) -> Result<Trained, ModelError> {
    params.check_selection()?;
    let declarations = rows.frame.as_ref();
    let day = days(declarations)?;
    let label = labels(declarations)?;
    let (split, train_end, valid_end) = time_split(&day, &label, params)?;
    let count = |s: &str| split.iter().filter(|x| **x == s).count();
    info!(train = count("train"), valid = count("valid"), test = count("test"), "Time-based split.");

    let is_train: Vec<bool> = split.iter().map(|s| *s == "train").collect();
    let mut spec = timed("vocabularies learnt", || FeatureSpec::learn(declarations, &is_train, rows.signals.keys().cloned().collect()))?;
    spec.excluded.clone_from(&params.exclude_features);
    if !params.history_features {
        spec.excluded.extend(history.feature_names());
    }
    // The labelled rows' features now; the others' block by block as they are scored.
    let subset = |name: &str| -> Result<(mirador_gbdt::Dataset, Vec<bool>, Vec<usize>), ModelError> {
        let idx: Vec<usize> = (0..split.len()).filter(|&i| split[i] == name).collect();
        let l = idx.iter().map(|&i| label[i] == Some(true)).collect();
        let data = spec.dataset_of(declarations, &history, &rows.history_columns, &rows.signals, Subset::Rows(&idx))?;
        Ok((data, l, idx))
    };
    let ((train_x, train_y, train_idx), (valid_x, valid_y, valid_idx), (test_x, test_y, test_idx)) =
        timed("labelled feature matrices built", || -> Result<_, ModelError> {
            Ok((subset("train")?, subset("valid")?, subset("test")?))
        })?;
    let to_f = |l: &[bool]| l.iter().map(|&b| f64::from(u8::from(b))).collect::<Vec<f64>>();
    let duty = numbers(declarations, col::DUTY_USD)?;
    let weights = (params.revenue_weight > 0.0).then(|| {
        let mut d: Vec<f64> = train_idx.iter().map(|&i| duty[i]).filter(|d| d.is_finite() && *d > 0.0).collect();
        d.sort_by(f64::total_cmp);
        let median = d.get(d.len() / 2).copied().unwrap_or(1.0).max(1e-9);
        train_idx
            .iter()
            .map(|&i| (1.0 + duty[i].max(0.0) / median).powf(params.revenue_weight))
            .map(|w| if w.is_finite() { w } else { 1.0 })
            .collect::<Vec<f64>>()
    });
    let started = std::time::Instant::now();
    let booster = Booster::train(&train_x, &to_f(&train_y), weights.as_deref(), Some((&valid_x, &to_f(&valid_y))), &params.booster(seed))?;
    info!(trees = booster.n_trees(), seconds = started.elapsed().as_secs_f64(), "Trained the fraud model.");

    let valid_p = booster.predict_proba(&valid_x)?;
    let threshold = f1_threshold(&valid_p, &valid_y);
    let test_p = booster.predict_proba(&test_x)?;
    let test_duty: Vec<f64> = test_idx.iter().map(|&i| duty[i]).collect();
    let valid_duty: Vec<f64> = valid_idx.iter().map(|&i| duty[i]).collect();
    let mut known = vec![f64::NAN; declarations.height()];
    for (idx, p) in [(&train_idx, booster.predict_proba(&train_x)?), (&valid_idx, valid_p.clone()), (&test_idx, test_p.clone())] {
        for (&i, p) in idx.iter().zip(p) {
            known[i] = p;
        }
    }
    let mut plan = SelectionPlan::of(&rows, &split, known, params.policy(), params, seed)?;
    let valid_novelty = plan.novelty_of(&history, &rows, &valid_idx, &valid_p, threshold)?;
    let test_novelty = plan.novelty_of(&history, &rows, &test_idx, &test_p, threshold)?;
    let selection = timed("selection tuned", || choose_selection(&valid_p, &valid_y, &valid_duty, &valid_novelty, params, seed));
    plan.policy = selection.policy;
    info!(
        revenue_share = selection.policy.revenue_share,
        revenue_exponent = selection.policy.revenue_exponent,
        exploration_share = selection.policy.exploration_share,
        tuned = selection.tuned,
        floor_met = selection.floor_met,
        "Inspection list policy."
    );
    let list_order = |p: &[f64], d: &[f64], v: &[f64]| {
        let picks = select::select(&select::Candidates { probability: p, duty: d, novelty: v }, &selection.policy, seed);
        select::order_scores(&picks, p.len())
    };
    let evaluations = vec![
        evaluate("valid", &valid_p, &valid_y, &valid_duty, seed).with_selection(
            &list_order(&valid_p, &valid_duty, &valid_novelty),
            &valid_y,
            &valid_duty,
            seed,
        ),
        evaluate("test", &test_p, &test_y, &test_duty, seed).with_selection(
            &list_order(&test_p, &test_duty, &test_novelty),
            &test_y,
            &test_duty,
            seed,
        ),
    ];
    let challengers = if params.challengers {
        use challengers::Split;
        let held_out = [
            Split { name: "valid", x: &valid_x, y: &valid_y, duty: &valid_duty },
            Split { name: "test", x: &test_x, y: &test_y, duty: &test_duty },
        ];
        let train = Split { name: "train", x: &train_x, y: &train_y, duty: &[] };
        challengers::run(&train, &held_out, params.challenger_rows, params.forest_trees, seed)
    } else {
        Vec::new()
    };

    let rules = timed("rules extracted", || {
        explain::rules(
            &booster,
            &spec,
            (&train_x, &train_y),
            Some((&test_x, &test_y)),
            50,
            params.rule_conditions,
            params.rule_min_support,
            params.rules,
        )
    })?;
    // Memory is at its highest while scoring: the labelled matrices go before it (0.4 GB at 10M
    // rows), the history and signal columns right after it (1.2 GB).
    drop((train_x, valid_x, test_x));
    let (scores, _, inspection_list) = sink.score(&booster, &spec, &history, &rows, params.top_reasons, &split, &duty, threshold, &plan)?;
    drop(plan);
    drop(rows);
    let importance = importance_frame(&booster)?;
    let evaluation = challengers::with_rows(Evaluation::frame(&evaluations)?, &challengers)?;
    let frontier = selection.frontier_frame()?;
    let model = ModelFile {
        format: MODEL_FORMAT,
        mirador_version: env!("CARGO_PKG_VERSION").to_owned(),
        train_end: day_text(train_end),
        valid_end: day_text(valid_end),
        trained_through: day.iter().zip(&label).filter(|(_, l)| l.is_some()).map(|(d, _)| *d).max().map(day_text),
        params: Some(params.clone()),
        threshold,
        spec,
        history,
        booster,
        evaluation: evaluations,
        challengers,
        selection: Some(selection),
    };
    Ok(Trained { model, scores, rules, importance, evaluation, inspection_list, frontier })
}

/// The selection policy of a model: with `tune-selection`, the most revenue at `budget-pct` on
/// the validation months among the grid's policies that keep `precision-floor` of the probability
/// ranking's precision there; otherwise the configured one. Either way with its frontier.
fn choose_selection(probability: &[f64], labels: &[bool], duty: &[f64], novelty: &[f64], params: &ModelParams, seed: u64) -> Selection {
    let candidates = select::Candidates { probability, duty, novelty };
    let reference = mirador_metrics::top_share(probability, labels, duty, params.budget_pct).map_or(0.0, |t| t.precision);
    let precision_floor = params.precision_floor * reference;
    let policies = if params.tune_selection {
        select::grid(params.exploration_share, params.tune_max_revenue_share, 0.025, &params.tune_exponents)
    } else {
        vec![params.policy()]
    };
    match select::tune(&candidates, labels, &policies, params.budget_pct, precision_floor, &evaluate::N_PCTS, seed) {
        Some(t) => Selection {
            policy: t.policy,
            tuned: params.tune_selection,
            floor_met: t.floor_met,
            precision_floor,
            budget_pct: params.budget_pct,
            frontier: t.frontier,
        },
        None => Selection {
            policy: params.policy(),
            tuned: false,
            floor_met: false,
            precision_floor,
            budget_pct: params.budget_pct,
            frontier: Vec::new(),
        },
    }
}

/// Rows scored together: the feature matrix is built one block at a time, so memory holds one
/// block's features (about 400 MB for a million rows) whatever the number of declarations.
const SCORE_BLOCK_ROWS: usize = 1 << 20;

fn scores_frame(
    declarations: &DataFrame,
    split: &[&str],
    duty: &[f64],
    threshold: f64,
    scored: explain::Explained,
) -> PolarsResult<DataFrame> {
    let explain::Explained { probability: prob, reasons, top } = scored;
    let expected: Vec<f64> = prob.iter().zip(duty).map(|(p, d)| p * if d.is_finite() { d.max(0.0) } else { 0.0 }).collect();
    let flag: Vec<bool> = prob.iter().map(|p| *p >= threshold).collect();
    let mut df = declarations.select([col::DECLARATION_ID, col::ITEM_NO, col::IMPORTER_ID, col::DATE, col::FRAUD])?;
    df.with_column(Column::new("split".into(), split.to_vec()))?;
    df.with_column(Column::new("fraud_probability".into(), prob))?;
    df.with_column(Column::new("expected_duty_at_risk_usd".into(), expected))?;
    df.with_column(Column::new("fraud_flag".into(), flag))?;
    df.with_column(reasons.into_column())?;
    df.with_column(top.into_column())?;
    Ok(df)
}

fn importance_frame(booster: &Booster) -> PolarsResult<DataFrame> {
    let gain = booster.feature_importance(ImportanceKind::Gain);
    let splits = booster.feature_importance(ImportanceKind::Split);
    let total: f64 = gain.iter().sum();
    let mut order: Vec<usize> = (0..gain.len()).collect();
    order.sort_by(|&a, &b| gain[b].total_cmp(&gain[a]).then(a.cmp(&b)));
    let names = booster.feature_names();
    DataFrame::new_infer_height(vec![
        Column::new("feature".into(), order.iter().map(|&i| names[i].clone()).collect::<Vec<_>>()),
        Column::new("label".into(), order.iter().map(|&i| explain::label(&names[i])).collect::<Vec<_>>()),
        Column::new("gain".into(), order.iter().map(|&i| gain[i]).collect::<Vec<_>>()),
        Column::new("gain_share".into(), order.iter().map(|&i| if total > 0.0 { gain[i] / total } else { 0.0 }).collect::<Vec<_>>()),
        Column::new("splits".into(), order.iter().map(|&i| splits[i]).collect::<Vec<_>>()),
    ])
}

/// What [`score_with_model`] gives: the scores, and how much of the other stages' signals the
/// model was given.
#[derive(Debug)]
pub struct Scored {
    /// One row per declaration, as `fraud_scores`.
    pub scores: DataFrame,
    /// Each signal feature the model was trained with, and for how many declarations it had a
    /// value; the others are scored as missing, which the nightly run would not do.
    pub signal_coverage: Vec<(String, usize)>,
}

/// Scores new declarations with a saved model, continuing its history; no retraining.
/// `signals` are the other stages' outputs for these declarations by dataset id
/// (`kmeans_scores`, `mirror_exposure`), joined on the declaration key; a signal the model uses
/// but that is not given, or that misses a declaration, is scored as missing.
pub fn score_with_model(path: &Path, declarations: &DataFrame, signals: &BTreeMap<&str, &DataFrame>) -> Result<Scored, ModelError> {
    let mut model = ModelFile::read(path)?;
    let day = days(declarations)?;
    // New declarations are scored as uninspected: their outcomes are not known yet.
    let unknown = vec![None; declarations.height()];
    let id_texts = history_texts(declarations)?;
    let history_columns = model.history.advance_coded(&day, history_ids(&id_texts), &unknown);
    let signals = signal_columns(declarations, signals)?;
    let signal_coverage = model
        .spec
        .signals
        .iter()
        .filter(|name| !model.spec.excluded.contains(name))
        .map(|name| (name.clone(), signals.get(name).map_or(0, |v| v.iter().filter(|x| x.is_finite()).count())))
        .collect();
    let rows = Rows { frame: std::borrow::Cow::Borrowed(declarations), history_columns, signals, scored_from: 0 };
    let duty = numbers(declarations, col::DUTY_USD)?;
    let split = vec!["scored"; declarations.height()];
    let plan = SelectionPlan {
        policy: model.selection.as_ref().map_or_else(|| ModelParams::default().policy(), |s| s.policy),
        seed: 0,
        period: split.clone(),
        list_period: "scored",
        budget_pct: model.params.as_ref().map_or(5.0, |p| p.budget_pct),
        known: Vec::new(),
        known_pairs: None,
    };
    let (scores, _, _) =
        ScoreSink::Collect.score(&model.booster, &model.spec, &model.history, &rows, 3, &split, &duty, model.threshold, &plan)?;
    Ok(Scored { scores, signal_coverage })
}

/// The gradient-boosted fraud model.
///
/// ## Inputs
/// - `declarations`; optional `kmeans_scores`, `mirror_exposure` (used as features),
///   `inspection_outcomes` (late labels: [`outcomes`]).
/// ## Outputs
/// - `fraud_scores`, `fraud_rules`, `fraud_importance`, `fraud_evaluation`.
pub struct FraudModel;

impl Stage for FraudModel {
    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        let params: ModelParams = mirador_pipeline::parse_params(self.name(), params)?;
        params.validate(self.name())?;
        params.check_selection().map_err(|e| StageError::Params { stage: self.name().into(), message: e.to_string() })
    }

    fn name(&self) -> &'static str {
        "fraud_model"
    }

    fn inputs(&self) -> &'static [DatasetId] {
        &[datasets::DECLARATIONS]
    }

    fn optional_inputs(&self) -> &'static [DatasetId] {
        &[datasets::KMEANS_SCORES, datasets::MIRROR_EXPOSURE, datasets::INSPECTION_OUTCOMES]
    }

    /// Of the other stages' outputs, the signals ([`features::SIGNALS`]) and the keys.
    fn input_columns(&self, id: &str) -> Option<Vec<&'static str>> {
        (id != datasets::DECLARATIONS && id != datasets::INSPECTION_OUTCOMES).then(|| {
            let signals = SIGNALS.iter().filter(|(_, dataset, _)| *dataset == id).map(|(_, _, column)| *column);
            [col::DECLARATION_ID, col::ITEM_NO].into_iter().chain(signals).collect()
        })
    }

    fn outputs(&self) -> &'static [DatasetId] {
        &[
            datasets::FRAUD_SCORES,
            datasets::FRAUD_RULES,
            datasets::FRAUD_IMPORTANCE,
            datasets::FRAUD_EVALUATION,
            datasets::INSPECTION_LIST,
            datasets::SELECTION_FRONTIER,
        ]
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let params: ModelParams = ctx.params()?;
        params.validate(self.name())?;
        let declarations = ctx.input(datasets::DECLARATIONS)?;
        let mut signals = BTreeMap::new();
        for id in [datasets::KMEANS_SCORES, datasets::MIRROR_EXPOSURE] {
            if let Some(df) = ctx.optional_input(id) {
                signals.insert(id, df);
            }
        }
        let stage_err = |e| match e {
            ModelError::Params(message) => StageError::Params { stage: self.name().into(), message },
            ModelError::Data(m) => StageError::Data(m),
            other => StageError::Other(Box::new(other)),
        };
        let feed = ctx.optional_input(datasets::INSPECTION_OUTCOMES);
        let mut outcomes = feed.map(outcomes::Outcomes::from_frame).transpose().map_err(stage_err)?.unwrap_or_default();
        let mut carried = serde_json::Map::new();
        // Every declaration's scores and reasons are written as they are scored, not held.
        let mut scores = ctx.dataset_stream(datasets::FRAUD_SCORES);
        let mut sink = ScoreSink::Stream(&mut scores);
        let t = if params.carry_state {
            let state = ctx.previous_run().map(carry::load).transpose().map_err(stage_err)?.flatten();
            let carried_rows = state.as_ref().map_or(0, |s| s.window.height());
            let mut outcome =
                carry::run_to(declarations, &signals, &mut outcomes, &params, ctx.seed(), state, &mut sink).map_err(stage_err)?;
            mirador_io::write_parquet(&mut outcome.window, &ctx.artifact_dir().join(carry::WINDOW_FILE))?;
            outcome.pending.write(&ctx.artifact_dir().join(pending::PENDING_DIR)).map_err(stage_err)?;
            carried.insert("pending_rows".into(), outcome.pending.rows().map_err(stage_err)?.into());
            carried.insert("carried_window_rows".into(), carried_rows.into());
            carried.insert("window_rows".into(), outcome.window.height().into());
            carried.insert("retrained".into(), outcome.retrained.is_some().into());
            carried.insert("retrain_reason".into(), outcome.retrained.clone().into());
            carried.insert("retrain_skipped".into(), outcome.retrain_skipped.clone().into());
            outcome.trained
        } else {
            let labelled = outcomes.labelled(declarations).map_err(stage_err)?;
            train_to(&labelled, &signals, &params, ctx.seed(), &mut sink).map_err(stage_err)?
        };
        let applied = feed.is_some().then(|| outcomes.applied());
        if let Some(applied) = &applied {
            let mut unapplied = outcomes.unapplied_frame().map_err(stage_err)?;
            mirador_io::write_parquet(&mut unapplied, &ctx.artifact_dir().join(outcomes::UNAPPLIED_FILE))?;
            if applied.unapplied > 0 {
                warn!(
                    unapplied = applied.unapplied,
                    file = outcomes::UNAPPLIED_FILE,
                    "Inspection outcomes found no declaration; they are listed with the reason."
                );
            }
        }
        let scores = scores.finish()?;
        let json = serde_json::to_vec(&t.model).map_err(|e| StageError::Data(e.to_string()))?;
        timed("model file written", || mirador_io::write_bytes(&ctx.artifact_dir().join("model.json"), &json))?;
        let metrics = serde_json::json!({
            "train_end": t.model.train_end,
            "valid_end": t.model.valid_end,
            "trees": t.model.booster.n_trees(),
            "threshold": t.model.threshold,
            "evaluation": t.model.evaluation,
            "selection": t.model.selection.as_ref().map(|s| serde_json::json!({
                "policy": s.policy, "tuned": s.tuned, "floor_met": s.floor_met, "precision_floor": s.precision_floor,
                "budget_pct": params.budget_pct,
            })),
            "ranking_note": "by_probability ranks by fraud probability; by_expected_duty by probability x duty",
            "carried_state": &carried,
            "inspection_outcomes": &applied,
        });
        mirador_io::write_bytes(&ctx.artifact_dir().join("metrics.json"), &serde_json::to_vec_pretty(&metrics).unwrap_or_default())?;
        mirador_io::write_spreadsheet_csv(&t.inspection_list, &ctx.artifact_dir().join("inspection_list.csv"))?;
        let mut out = StageOutput::new().with_metric("trees", t.model.booster.n_trees()).with_metric("threshold", t.model.threshold);
        if let Some(selection) = &t.model.selection {
            out = out
                .with_metric("selection_revenue_share", selection.policy.revenue_share)
                .with_metric("selection_revenue_exponent", selection.policy.revenue_exponent)
                .with_metric("selection_exploration_share", selection.policy.exploration_share)
                .with_metric("selection_floor_met", selection.floor_met)
                .with_metric("inspection_list_rows", t.inspection_list.height());
        }
        if let Some(applied) = &applied {
            out = out.with_metric("inspection_outcomes", serde_json::to_value(applied).unwrap_or_default());
        }
        if params.carry_state {
            out = out.with_metric("retrained", carried["retrained"].clone()).with_metric("window_rows", carried["window_rows"].clone());
        }
        if let Some(test) = t.model.evaluation.iter().find(|e| e.split == "test") {
            out = out.with_metric("test_rows", test.rows);
            if let Some(auc) = test.auc {
                out = out.with_metric("test_auc", auc);
            }
            for n in [5.0, 10.0] {
                if let Some(a) = test.selection_at(n) {
                    out = out
                        .with_metric(&format!("test_selection_precision_at_{n}pct"), a.precision)
                        .with_metric(&format!("test_selection_revenue_at_{n}pct"), a.revenue);
                }
            }
            for n in [1.0, 5.0, 10.0] {
                if let Some(a) = test.at(n) {
                    out = out
                        .with_metric(&format!("test_precision_at_{n}pct"), a.precision)
                        .with_metric(&format!("test_recall_at_{n}pct"), a.recall)
                        .with_metric(&format!("test_revenue_at_{n}pct"), a.revenue);
                }
            }
        }
        Ok(out
            .with_streamed(scores)
            .with_dataset(datasets::FRAUD_RULES, t.rules)
            .with_dataset(datasets::FRAUD_IMPORTANCE, t.importance)
            .with_dataset(datasets::FRAUD_EVALUATION, t.evaluation)
            .with_dataset(datasets::INSPECTION_LIST, t.inspection_list)
            .with_dataset(datasets::SELECTION_FRONTIER, t.frontier))
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    fn labels(n: usize) -> Vec<Option<bool>> {
        (0..n).map(|i| Some(i % 7 == 0)).collect()
    }

    #[test]
    fn labelled_days_too_few_to_split_by_time_are_a_data_error_saying_so() {
        let params = ModelParams::default();
        let err = time_split(&vec![19_500; 300], &labels(300), &params).unwrap_err();
        assert!(matches!(err, ModelError::Data(_)), "{err}");
        assert!(err.to_string().contains("span a single day (2023-05-23)"), "{err}");
        let two_days: Vec<i32> = (0..300).map(|i| 19_500 + i32::from(i >= 100)).collect();
        let err = time_split(&two_days, &labels(300), &params).unwrap_err();
        assert!(matches!(err, ModelError::Data(_)) && err.to_string().contains("2023-05-23 to 2023-05-24"), "{err}");
        let spread: Vec<i32> = (0..300).map(|i| 19_500 + i / 10).collect();
        assert!(time_split(&spread, &labels(300), &params).is_ok());
        // Days set by hand in the wrong order are a parameter error.
        let set = ModelParams { train_end: Some("2023-06-01".into()), valid_end: Some("2023-05-30".into()), ..params };
        assert!(matches!(time_split(&spread, &labels(300), &set), Err(ModelError::Params(_))));
    }
}
