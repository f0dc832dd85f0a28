//! The inspection backtest: the history replayed week by week, as the administration would have
//! lived it, once per selection policy.
//!
//! Each policy has its own replay. Before the first week, the labels the administration had are
//! known ([`ReplayData::known`]). Then, week after week:
//! 1. every `retrain-weeks` weeks (the first week included), the model is trained again on the
//!    labels revealed so far, and only on them: the labelled declarations dated before the week,
//!    the latest 15 % of their labelled days validating (early stopping, flag threshold and, for
//!    the tuned lists, the revenue share, as the `fraud_model` stage chooses them);
//! 2. the policy picks `budget-pct` % of the week's declarations ([`select`]);
//! 3. the picked declarations reveal their true label, and the late-outcome feed reveals the
//!    labels decided during the week ([`ReplayData::outcome`]); nothing else is ever learnt.
//!
//! Per week it records what the picks found against the truth ([`ReplayData::fraud`],
//! [`ReplayData::fraud_duty`]): frauds found, precision, the fraudulent duty found and its share
//! of all the week's fraudulent duty, and the running totals.
//!
//! It reuses the stage's features, booster, selection and tuning, on a lean path: no
//! explanations, rules, challengers or report tables. The history features (past declarations,
//! inspections and fraud rate of the importer, declarant, …) are recomputed at every retraining
//! from the labels revealed by then; between two retrainings they count the new declarations but
//! not the labels revealed since, as a model saved with its history would. The k-means and
//! mirror signals are not replayed (they are left out of the model).

use std::collections::BTreeMap;

use mirador_gbdt::Booster;
use mirador_schema::{col, day::text as day_text};
use polars::prelude::*;
use rayon::prelude::*;

use crate::evaluate::f1_threshold;
use crate::features::{self, FeatureSpec, HISTORY, Subset, history_ids, history_texts, numbers};
use crate::history::{self, History};
use crate::score::{pair_hash, pairs_of};
use crate::train::choose_selection;
use crate::{ModelError, ModelParams, days, labels, select};

/// The columns of `backtest_summary` ([`Backtest::summary_frame`]), as the catalog declares them.
pub use mirador_schema::catalog::backtest_summary as summary;
/// The columns of `backtest_weeks` ([`Backtest::weeks_frame`]), as the catalog declares them.
pub use mirador_schema::catalog::backtest_weeks as weeks;

/// How a replayed policy orders a week's declarations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PolicyKind {
    /// A fixed split of the budget ([`select::Policy`]).
    Fixed(select::Policy),
    /// The mixed list: the revenue share and exponent tuned on the validation slice at every
    /// retraining, as `fraud_model` tunes them (`tune-selection`), with this exploration share.
    Tuned {
        /// Share of the picks by exploration.
        exploration_share: f64,
    },
    /// Picks drawn uniformly at random (seeded); needs no model.
    Random,
}

/// A policy the backtest replays.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayPolicy {
    /// Name written in the outputs.
    pub name: String,
    /// What it does.
    pub kind: PolicyKind,
}

/// The five policies of issue 22: pure probability, pure expected duty, the tuned mixed list, the
/// tuned mixed list with `exploration_share` of exploration, and random.
pub fn standard_policies(exploration_share: f64) -> Vec<ReplayPolicy> {
    let fixed = |revenue_share: f64| {
        PolicyKind::Fixed(select::Policy { revenue_share, exploration_share: 0.0, revenue_exponent: 1.0, revenue_floor: 0.0 })
    };
    vec![
        ReplayPolicy { name: "probability".into(), kind: fixed(0.0) },
        ReplayPolicy { name: "expected_duty".into(), kind: fixed(1.0) },
        ReplayPolicy { name: "mixed".into(), kind: PolicyKind::Tuned { exploration_share: 0.0 } },
        ReplayPolicy { name: "mixed_exploration".into(), kind: PolicyKind::Tuned { exploration_share } },
        ReplayPolicy { name: "random".into(), kind: PolicyKind::Random },
    ]
}

/// What the replay reads, row by row of `declarations`.
pub struct ReplayData<'a> {
    /// Canonical declarations (any row order).
    pub declarations: &'a DataFrame,
    /// Each row's label as known before the replay starts (`None`: not known). Rows dated from the
    /// first replayed day on must be `None`.
    pub known: Vec<Option<bool>>,
    /// Each row's true label: what inspecting it reveals.
    pub fraud: Vec<bool>,
    /// The duty recovered when the row is inspected and found fraudulent (0 for clean rows).
    pub fraud_duty: Vec<f64>,
    /// The late-outcome feed: the day (days since 1970-01-01) from which the row's label is known
    /// whether it was picked or not, and that label.
    pub outcome: Vec<Option<(i32, bool)>>,
    /// Declarations dated from the first replayed day on that the ground truth does not list
    /// (counted as clean; e.g. rows an export added that the truth never had).
    pub without_truth: usize,
}

/// The least lost duty that makes an item fraudulent in a ground truth: one cent. Clean items of
/// the synthetic world lose fractions of a cent to the rounding of declared prices.
pub const MATERIAL_DUTY: f64 = 0.01;

/// Where the truth and the outcomes come from, for [`ReplayData::build`].
pub struct TruthSources<'a> {
    /// The fraudulent duty of each declaration item, `(declaration_id, item_no)` → duty lost
    /// (the synthetic world's `truth_declarations.planted_lost_duty_usd`, as
    /// `evaluate_auditees` reads it): an item is fraudulent when it is at least
    /// [`MATERIAL_DUTY`]. Without it,
    /// the declarations' own `fraud` labels are the truth and a fraudulent row's duty is what
    /// inspecting it recovers (as `revenue@n %` counts it).
    pub ground_truth: Option<&'a std::collections::HashMap<(String, i64), f64>>,
    /// The late-outcome feed (`declaration_id`, `item_no`, `decided_on`, `fraud`).
    pub outcomes: Option<&'a DataFrame>,
}

impl<'a> ReplayData<'a> {
    /// The replay's data from `declarations` starting on day `from`: labels known before it are
    /// the declarations' own labels of rows dated before `from`; the truth and the fraudulent duty
    /// come from `sources.ground_truth` when given (a declaration it does not list counts as
    /// clean, and is counted in [`ReplayData::without_truth`]), else from the declarations' own
    /// labels. Fails when, without a ground truth, a declaration dated from `from` on has no label.
    pub fn build(declarations: &'a DataFrame, sources: &TruthSources<'_>, from: i32) -> Result<Self, ModelError> {
        let day = days(declarations)?;
        let own = labels(declarations)?;
        let duty = numbers(declarations, col::DUTY_USD)?;
        let known: Vec<Option<bool>> = day.iter().zip(&own).map(|(d, l)| if *d < from { *l } else { None }).collect();
        let (fraud, fraud_duty, without_truth) = match sources.ground_truth {
            Some(truth) => {
                let ids = features::strings(declarations, col::DECLARATION_ID)?;
                let items = declarations.column(col::ITEM_NO)?.cast(&DataType::Int64)?;
                let mut missing = 0usize;
                let mut fraud = Vec::with_capacity(day.len());
                let mut fraud_duty = Vec::with_capacity(day.len());
                for ((id, item), d) in features::borrowed(&ids).zip(items.i64()?.iter()).zip(&day) {
                    let lost = id.zip(item).and_then(|(id, item)| truth.get(&(id.to_owned(), item)));
                    if lost.is_none() && *d >= from {
                        missing += 1;
                    }
                    let lost = lost.copied().filter(|v| v.is_finite()).unwrap_or(0.0).max(0.0);
                    fraud.push(lost >= MATERIAL_DUTY);
                    fraud_duty.push(if lost >= MATERIAL_DUTY { lost } else { 0.0 });
                }
                (fraud, fraud_duty, missing)
            }
            None => {
                let missing = day.iter().zip(&own).filter(|(d, l)| **d >= from && l.is_none()).count();
                if missing > 0 {
                    return Err(ModelError::Data(format!(
                        "{missing} declarations dated from {} on have no `fraud` label and the pipeline has no ground_truth source: \
                         the backtest cannot judge its picks",
                        day_text(from)
                    )));
                }
                let fraud: Vec<bool> = own.iter().map(|l| *l == Some(true)).collect();
                let fraud_duty = fraud.iter().zip(&duty).map(|(f, d)| if *f && d.is_finite() { d.max(0.0) } else { 0.0 }).collect();
                (fraud, fraud_duty, 0)
            }
        };
        let mut outcome = vec![None; day.len()];
        if let Some(o) = sources.outcomes {
            let decided = o.column(col::DECIDED_ON)?.cast(&DataType::Int32)?;
            let decided = decided.i32()?;
            let label = labels(o)?;
            let rows = mirador_schema::keys::align(declarations, o)?;
            for (i, slot) in outcome.iter_mut().enumerate() {
                let r = match &rows {
                    None => Some(i),
                    Some(r) => r[i],
                };
                if let Some((Some(d), Some(l))) = r.map(|r| (decided.get(r), label.get(r).copied().flatten())) {
                    *slot = Some((d, l));
                }
            }
        }
        Ok(ReplayData { declarations, known, fraud, fraud_duty, outcome, without_truth })
    }
}

/// The replay's settings.
#[derive(Debug, Clone)]
pub struct BacktestParams {
    /// First replayed day (days since 1970-01-01); weeks start on it.
    pub from: i32,
    /// First day after the replay (exclusive end).
    pub to: i32,
    /// Declarations inspected each week, in % of the week's declarations.
    pub budget_pct: f64,
    /// Weeks between two retrainings.
    pub retrain_weeks: u32,
    /// Seeds the training, the exploration and the random picks.
    pub seed: u64,
    /// The model's parameters (`fraud_model`'s; the split, carry and report parameters are not used).
    pub model: ModelParams,
}

/// One policy's week.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekRecord {
    /// Policy name.
    pub policy: String,
    /// Week number, 1 first.
    pub week: u32,
    /// First day of the week (days since 1970-01-01).
    pub week_start: i32,
    /// Declarations of the week.
    pub declarations: u32,
    /// Declarations picked.
    pub selected: u32,
    /// Of which fraudulent.
    pub frauds_found: u32,
    /// `frauds_found / selected` (NaN without picks).
    pub precision: f64,
    /// Fraudulent duty of the picks.
    pub fraud_duty_found: f64,
    /// Fraudulent duty of all the week's declarations.
    pub fraud_duty_total: f64,
    /// `fraud_duty_found / fraud_duty_total` (NaN when the week had none).
    pub fraud_duty_share: f64,
    /// Fraudulent duty found from the first week to this one.
    pub cumulative_found: f64,
    /// Fraudulent duty of all declarations from the first week to this one.
    pub cumulative_total: f64,
    /// `cumulative_found / cumulative_total`.
    pub cumulative_share: f64,
    /// Labels the model in use was trained and validated on (0 for random).
    pub training_labels: u32,
    /// Whether the model was retrained at the start of this week.
    pub retrained: bool,
    /// The split of the budget applied this week (for the tuned lists, as tuned at the last
    /// retraining; random: all exploration, over even novelty).
    pub applied: select::Policy,
}

/// A finished backtest.
#[derive(Debug, Clone)]
pub struct Backtest {
    /// One record per policy × week, policies in the order given, weeks in order.
    pub weeks: Vec<WeekRecord>,
    /// The rows (of the declarations) each record's policy picked that week, in pick order.
    pub picks: Vec<Vec<usize>>,
}

/// A model trained on the labels revealed so far, with what scoring a week needs.
struct Lean {
    booster: Booster,
    spec: FeatureSpec,
    history: History,
    history_columns: Vec<history::Values>,
    threshold: f64,
    known_pairs: std::collections::HashSet<u64, foldhash::fast::FixedState>,
    policy: select::Policy,
    labels: u32,
}

/// Uniform random picks: all exploration over even novelty.
const RANDOM: select::Policy = select::Policy { revenue_share: 0.0, exploration_share: 1.0, revenue_exponent: 1.0, revenue_floor: 0.0 };

/// The days of the replayed weeks: week `k` is `[from + 7k, from + 7k + 7)`, the last one cut at `to`.
pub fn weeks(from: i32, to: i32) -> Vec<(i32, i32)> {
    (0..).map(|k| from + 7 * k).take_while(|s| *s < to).map(|s| (s, (s + 7).min(to))).collect()
}

/// Replays the history once per policy (in parallel), each with its own revealed labels and its
/// own retrained model.
pub fn replay(data: &ReplayData<'_>, params: &BacktestParams, policies: &[ReplayPolicy]) -> Result<Backtest, ModelError> {
    params.model.check_selection()?;
    if params.retrain_weeks == 0 {
        return Err(ModelError::Params("retrain-weeks must be at least 1".into()));
    }
    if !(params.budget_pct > 0.0 && params.budget_pct <= 100.0) {
        return Err(ModelError::Params(format!("the budget {} % must be in (0, 100]", params.budget_pct)));
    }
    let n = data.declarations.height();
    if [data.known.len(), data.fraud.len(), data.fraud_duty.len(), data.outcome.len()].iter().any(|l| *l != n) {
        return Err(ModelError::Data("the replay's labels, truth and outcomes must match the declarations row for row".into()));
    }
    let day = days(data.declarations)?;
    if let Some(i) = (0..n).find(|&i| day[i] >= params.from && data.known[i].is_some()) {
        return Err(ModelError::Data(format!("row {i} dated {} has a label known before the replay starts", day_text(day[i]))));
    }
    let weeks = weeks(params.from, params.to);
    if weeks.is_empty() {
        return Err(ModelError::Params(format!("the replay from {} to {} holds no day", day_text(params.from), day_text(params.to))));
    }
    let mut rows_of: Vec<Vec<usize>> = vec![Vec::new(); weeks.len()];
    for (i, d) in day.iter().enumerate() {
        if *d >= params.from && *d < params.to {
            rows_of[((*d - params.from) / 7) as usize].push(i);
        }
    }
    let duty = numbers(data.declarations, col::DUTY_USD)?;
    let shared = Shared { data, params, day: &day, weeks: &weeks, rows_of: &rows_of, duty: &duty };
    let per_policy: Vec<Vec<(WeekRecord, Vec<usize>)>> = policies.par_iter().map(|p| shared.replay_one(p)).collect::<Result<_, _>>()?;
    let (weeks, picks) = per_policy.into_iter().flatten().unzip();
    Ok(Backtest { weeks, picks })
}

struct Shared<'s, 'a> {
    data: &'s ReplayData<'a>,
    params: &'s BacktestParams,
    day: &'s [i32],
    weeks: &'s [(i32, i32)],
    rows_of: &'s [Vec<usize>],
    duty: &'s [f64],
}

impl Shared<'_, '_> {
    fn replay_one(&self, policy: &ReplayPolicy) -> Result<Vec<(WeekRecord, Vec<usize>)>, ModelError> {
        let (data, params) = (self.data, self.params);
        let mut revealed = data.known.clone();
        // The outcome feed in decision order; those decided before the replay are known already.
        let mut feed: Vec<(i32, usize, bool)> = data.outcome.iter().enumerate().filter_map(|(i, o)| o.map(|(d, l)| (d, i, l))).collect();
        feed.sort_unstable_by_key(|(d, i, _)| (*d, *i));
        let mut next_outcome = 0;
        let mut model: Option<Lean> = None;
        let mut out = Vec::with_capacity(self.weeks.len());
        let (mut cumulative_found, mut cumulative_total) = (0.0, 0.0);
        for (w, (&(start, _), idx)) in self.weeks.iter().zip(self.rows_of).enumerate() {
            while let Some(&(d, i, l)) = feed.get(next_outcome).filter(|(d, ..)| *d < start) {
                // An outcome never labels a declaration lodged after its decision.
                if self.day[i] <= d {
                    revealed[i] = Some(l);
                }
                next_outcome += 1;
            }
            let week_seed = params.seed ^ (u64::from(w as u32) << 32);
            let retrained = w as u32 % params.retrain_weeks == 0 && policy.kind != PolicyKind::Random;
            if retrained {
                model = Some(self.fit(&revealed, start, policy.kind)?);
            }
            let picks: Vec<usize> = if idx.is_empty() {
                Vec::new()
            } else {
                let k = select::budget_rows(params.budget_pct, idx.len()).min(idx.len());
                let ordered = match (&model, policy.kind) {
                    (Some(m), PolicyKind::Fixed(_) | PolicyKind::Tuned { .. }) => {
                        let (p, novelty) = m.score(data.declarations, idx)?;
                        let d: Vec<f64> = idx.iter().map(|&i| self.duty[i]).collect();
                        select::select(&select::Candidates { probability: &p, duty: &d, novelty: &novelty }, &m.policy, week_seed)
                    }
                    _ => {
                        let even = vec![1.0; idx.len()];
                        select::select(&select::Candidates { probability: &even, duty: &even, novelty: &even }, &RANDOM, week_seed)
                    }
                };
                ordered.iter().take(k).map(|p| idx[p.row]).collect()
            };
            let frauds = picks.iter().filter(|&&i| data.fraud[i]).count();
            let found: f64 = picks.iter().map(|&i| data.fraud_duty[i]).sum();
            let total: f64 = idx.iter().map(|&i| data.fraud_duty[i]).sum();
            cumulative_found += found;
            cumulative_total += total;
            let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
            let record = WeekRecord {
                policy: policy.name.clone(),
                week: w as u32 + 1,
                week_start: start,
                declarations: idx.len() as u32,
                selected: picks.len() as u32,
                frauds_found: frauds as u32,
                precision: ratio(frauds as f64, picks.len() as f64),
                fraud_duty_found: found,
                fraud_duty_total: total,
                fraud_duty_share: ratio(found, total),
                cumulative_found,
                cumulative_total,
                cumulative_share: ratio(cumulative_found, cumulative_total),
                training_labels: model.as_ref().map_or(0, |m| m.labels),
                retrained,
                applied: model.as_ref().map_or(RANDOM, |m| m.policy),
            };
            // The picks are inspected: their labels are known from the next week on.
            for &i in &picks {
                revealed[i] = Some(data.fraud[i]);
            }
            out.push((record, picks));
        }
        Ok(out)
    }

    /// Trains on the labels revealed before day `start`.
    fn fit(&self, revealed: &[Option<bool>], start: i32, kind: PolicyKind) -> Result<Lean, ModelError> {
        let (frame, params) = (self.data.declarations, &self.params.model);
        let n = frame.height();
        // The history as of `start`: later rows count as declarations, their labels unknown.
        let masked: Vec<Option<bool>> = (0..n).map(|i| if self.day[i] < start { revealed[i] } else { None }).collect();
        let mut history = History::new(&HISTORY.iter().map(|(k, _)| *k).collect::<Vec<_>>(), params.history_smoothing);
        let texts = history_texts(frame)?;
        let history_columns = history.advance_coded(self.day, history_ids(&texts), &masked);
        drop(texts);
        let mut labelled_days: Vec<i32> = (0..n).filter(|&i| masked[i].is_some()).map(|i| self.day[i]).collect();
        labelled_days.sort_unstable();
        if labelled_days.len() < 100 {
            return Err(ModelError::Data(format!(
                "only {} labelled declarations before {}: the backtest needs at least 100 to train (start it later)",
                labelled_days.len(),
                day_text(start)
            )));
        }
        let valid_from = labelled_days[((labelled_days.len() - 1) as f64 * 0.85) as usize].max(labelled_days[0] + 1);
        let train_idx: Vec<usize> = (0..n).filter(|&i| masked[i].is_some() && self.day[i] < valid_from).collect();
        let valid_idx: Vec<usize> = (0..n).filter(|&i| masked[i].is_some() && self.day[i] >= valid_from).collect();
        if train_idx.len() < 50 || valid_idx.len() < 20 {
            return Err(ModelError::Data(format!(
                "the labels before {} split into {} training and {} validation rows (need 50 and 20)",
                day_text(start),
                train_idx.len(),
                valid_idx.len()
            )));
        }
        let mut is_train = vec![false; n];
        for &i in &train_idx {
            is_train[i] = true;
        }
        let signals = BTreeMap::new();
        let mut spec = FeatureSpec::learn(frame, &is_train, Vec::new())?;
        spec.excluded.clone_from(&params.exclude_features);
        if !params.history_features {
            spec.excluded.extend(history.feature_names());
        }
        let label_of = |idx: &[usize]| -> Vec<bool> { idx.iter().map(|&i| masked[i] == Some(true)).collect() };
        let to_f = |l: &[bool]| l.iter().map(|&b| f64::from(u8::from(b))).collect::<Vec<f64>>();
        let (train_y, valid_y) = (label_of(&train_idx), label_of(&valid_idx));
        let train_x = spec.dataset_of(frame, &history, &history_columns, &signals, Subset::Rows(&train_idx))?;
        let valid_x = spec.dataset_of(frame, &history, &history_columns, &signals, Subset::Rows(&valid_idx))?;
        let booster =
            Booster::train(&train_x, &to_f(&train_y), None, Some((&valid_x, &to_f(&valid_y))), &params.booster(self.params.seed))?;
        let valid_p = booster.predict_proba(&valid_x)?;
        let threshold = f1_threshold(&valid_p, &valid_y);
        let known_pairs = pairs_of(frame, |i| masked[i].is_some())?;
        let mut lean = Lean {
            booster,
            spec,
            history,
            history_columns,
            threshold,
            known_pairs,
            policy: select::Policy::default(),
            labels: (train_idx.len() + valid_idx.len()) as u32,
        };
        lean.policy = match kind {
            PolicyKind::Fixed(p) => p,
            PolicyKind::Random => RANDOM,
            PolicyKind::Tuned { exploration_share } => {
                let novelty = lean.novelty(frame, &valid_idx, &valid_p)?;
                let valid_duty: Vec<f64> = valid_idx.iter().map(|&i| self.duty[i]).collect();
                let tuning = ModelParams { exploration_share, tune_selection: true, budget_pct: self.params.budget_pct, ..params.clone() };
                choose_selection(&valid_p, &valid_y, &valid_duty, &novelty, &tuning, self.params.seed).policy
            }
        };
        Ok(lean)
    }
}

impl Lean {
    /// Fraud probability and novelty of rows `idx`.
    fn score(&self, frame: &DataFrame, idx: &[usize]) -> Result<(Vec<f64>, Vec<f64>), ModelError> {
        let data = self.spec.dataset_of(frame, &self.history, &self.history_columns, &BTreeMap::new(), Subset::Rows(idx))?;
        let p = self.booster.predict_proba(&data)?;
        let novelty = self.novelty(frame, idx, &p)?;
        Ok((p, novelty))
    }

    /// [`select::novelty`] of rows `idx`, as the stage computes it: closeness to the threshold,
    /// the importer's past inspections, and whether the HS6 × origin pair was in the training labels.
    fn novelty(&self, frame: &DataFrame, idx: &[usize], probability: &[f64]) -> Result<Vec<f64>, ModelError> {
        let inspections =
            self.history.kinds.iter().position(|k| k == "importer").and_then(|k| self.history_columns.get(k * history::PER_KIND + 1));
        let hs6 = features::strings(frame, col::HS6)?;
        let origin = features::strings(frame, col::ORIGIN_COUNTRY)?;
        let hs6: Vec<Option<&str>> = features::borrowed(&hs6).collect();
        let origin: Vec<Option<&str>> = features::borrowed(&origin).collect();
        Ok(idx
            .iter()
            .zip(probability)
            .map(|(&i, &p)| {
                let new_pair = !self.known_pairs.contains(&pair_hash(hs6[i], origin[i]));
                select::novelty(p, self.threshold, inspections.map_or(f64::NAN, |v| v.get(i)), new_pair)
            })
            .collect())
    }
}

/// The quarter of a replay the bars look at: its last `ceil(weeks / 4)` weeks.
pub fn last_quarter_from(weeks: u32) -> u32 {
    weeks - weeks.div_ceil(4) + 1
}

impl Backtest {
    /// `backtest_weeks`: one row per policy × week.
    pub fn weeks_frame(&self) -> PolarsResult<DataFrame> {
        let w = &self.weeks;
        let start = Column::new(weeks::WEEK_START.into(), w.iter().map(|r| r.week_start).collect::<Vec<_>>()).cast(&DataType::Date)?;
        DataFrame::new_infer_height(vec![
            Column::new(weeks::POLICY.into(), w.iter().map(|r| r.policy.as_str()).collect::<Vec<_>>()),
            Column::new(weeks::WEEK.into(), w.iter().map(|r| r.week).collect::<Vec<_>>()),
            start,
            Column::new(weeks::DECLARATIONS.into(), w.iter().map(|r| r.declarations).collect::<Vec<_>>()),
            Column::new(weeks::SELECTED.into(), w.iter().map(|r| r.selected).collect::<Vec<_>>()),
            Column::new(weeks::FRAUDS_FOUND.into(), w.iter().map(|r| r.frauds_found).collect::<Vec<_>>()),
            Column::new(weeks::PRECISION.into(), w.iter().map(|r| r.precision).collect::<Vec<_>>()),
            Column::new(weeks::FRAUD_DUTY_FOUND.into(), w.iter().map(|r| r.fraud_duty_found).collect::<Vec<_>>()),
            Column::new(weeks::FRAUD_DUTY_TOTAL.into(), w.iter().map(|r| r.fraud_duty_total).collect::<Vec<_>>()),
            Column::new(weeks::FRAUD_DUTY_SHARE.into(), w.iter().map(|r| r.fraud_duty_share).collect::<Vec<_>>()),
            Column::new(weeks::CUMULATIVE_FOUND.into(), w.iter().map(|r| r.cumulative_found).collect::<Vec<_>>()),
            Column::new(weeks::CUMULATIVE_TOTAL.into(), w.iter().map(|r| r.cumulative_total).collect::<Vec<_>>()),
            Column::new(weeks::CUMULATIVE_SHARE.into(), w.iter().map(|r| r.cumulative_share).collect::<Vec<_>>()),
            Column::new(weeks::TRAINING_LABELS.into(), w.iter().map(|r| r.training_labels).collect::<Vec<_>>()),
            Column::new(weeks::RETRAINED.into(), w.iter().map(|r| r.retrained).collect::<Vec<_>>()),
            Column::new(weeks::REVENUE_SHARE.into(), w.iter().map(|r| r.applied.revenue_share).collect::<Vec<_>>()),
            Column::new(weeks::REVENUE_EXPONENT.into(), w.iter().map(|r| r.applied.revenue_exponent).collect::<Vec<_>>()),
            Column::new(weeks::EXPLORATION_SHARE.into(), w.iter().map(|r| r.applied.exploration_share).collect::<Vec<_>>()),
        ])
    }

    /// The policies in their order of first appearance.
    pub fn policies(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for r in &self.weeks {
            if !seen.contains(&r.policy.as_str()) {
                seen.push(&r.policy);
            }
        }
        seen
    }

    /// Totals of `policy` over its weeks from week `from_week` on: (selected, frauds found,
    /// fraudulent duty found, fraudulent duty of all those weeks' declarations).
    pub fn totals(&self, policy: &str, from_week: u32) -> (u64, u64, f64, f64) {
        self.weeks.iter().filter(|r| r.policy == policy && r.week >= from_week).fold((0, 0, 0.0, 0.0), |t, r| {
            (t.0 + u64::from(r.selected), t.1 + u64::from(r.frauds_found), t.2 + r.fraud_duty_found, t.3 + r.fraud_duty_total)
        })
    }

    /// `backtest_summary`: per policy and period (`whole`: every week; `last_quarter`: the last
    /// quarter of the weeks, [`last_quarter_from`]), the picks, frauds found, precision, fraudulent
    /// duty found and its share of all the fraudulent duty of those weeks.
    pub fn summary_frame(&self) -> PolarsResult<DataFrame> {
        let n_weeks = self.weeks.iter().map(|r| r.week).max().unwrap_or(0);
        let mut rows: Vec<(String, &str, u32, (u64, u64, f64, f64))> = Vec::new();
        for policy in self.policies() {
            for (period, from) in [("whole", 1), ("last_quarter", last_quarter_from(n_weeks.max(1)))] {
                rows.push((policy.to_owned(), period, from, self.totals(policy, from)));
            }
        }
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        DataFrame::new_infer_height(vec![
            Column::new(summary::POLICY.into(), rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>()),
            Column::new(summary::PERIOD.into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            Column::new(summary::FROM_WEEK.into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
            Column::new(summary::WEEKS.into(), rows.iter().map(|r| n_weeks + 1 - r.2).collect::<Vec<_>>()),
            Column::new(summary::SELECTED.into(), rows.iter().map(|r| r.3.0).collect::<Vec<_>>()),
            Column::new(summary::FRAUDS_FOUND.into(), rows.iter().map(|r| r.3.1).collect::<Vec<_>>()),
            Column::new(summary::PRECISION.into(), rows.iter().map(|r| ratio(r.3.1 as f64, r.3.0 as f64)).collect::<Vec<_>>()),
            Column::new(summary::FRAUD_DUTY_FOUND.into(), rows.iter().map(|r| r.3.2).collect::<Vec<_>>()),
            Column::new(summary::FRAUD_DUTY_TOTAL.into(), rows.iter().map(|r| r.3.3).collect::<Vec<_>>()),
            Column::new(summary::FRAUD_DUTY_SHARE.into(), rows.iter().map(|r| ratio(r.3.2, r.3.3)).collect::<Vec<_>>()),
        ])
    }
}
