//! Training: the time split, the features, the boosting, the evaluation and the inspection list's
//! policy, then every declaration scored.

use std::collections::BTreeMap;

use mirador_gbdt::{Booster, ImportanceKind};
use mirador_schema::catalog::fraud_importance;
use mirador_schema::col;
use mirador_schema::day::text as day_text;
use polars::prelude::*;
use tracing::info;

use crate::aside::{self, WalkFeatures};
use crate::evaluate::{Evaluation, evaluate_with_selection, f1_threshold};
use crate::features::{FeatureSpec, HISTORY, Subset, history_ids, history_texts, numbers, signal_columns};
use crate::history::History;
use crate::score::{SelectionPlan, inspections_column, timed, walk_blocks};
use crate::*;

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

/// The `date` column of declarations as day numbers (days since 1970-01-01; `i32::MIN` for a
/// missing date), row by row.
pub fn days(df: &DataFrame) -> PolarsResult<Vec<i32>> {
    let d = df.column(col::DATE)?.cast(&DataType::Int32)?;
    Ok(d.i32()?.iter().map(|v| v.unwrap_or(i32::MIN)).collect())
}

/// The `fraud` column of declarations as labels (`None`: not inspected), row by row.
pub fn labels(df: &DataFrame) -> PolarsResult<Vec<Option<bool>>> {
    let f = df.column(col::FRAUD)?.cast(&DataType::Int8)?;
    Ok(f.i8()?.iter().map(|v| v.map(|v| v == 1)).collect())
}

/// A `YYYY-MM-DD` date as a day number ([`days`]); a parameter error otherwise.
pub fn parse_day(s: &str) -> Result<i32, ModelError> {
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
    let (history, rows) = prepare(declarations, signals, params, empty_history(params))?;
    fit(rows, history, params, seed, sink)
}

fn history_kinds() -> Vec<&'static str> {
    HISTORY.iter().map(|(k, _)| *k).collect()
}

/// The model's entity history before any declaration: every history kind
/// ([`crate::features::HISTORY`]), with the smoothing of `params`.
pub fn empty_history(params: &ModelParams) -> History {
    History::new(&history_kinds(), params.history_smoothing)
}

/// Declarations with their history features (from `history`, which is advanced past them) and
/// the other stages' signals, ready for [`fit`].
pub fn prepare<'a>(
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
/// `scored_from` come from a carried training window ([`crate::carry`]): they are trained on but
/// not scored again.
pub struct Rows<'a> {
    /// The declarations (the columns the features read, `date`, `fraud` and the keys).
    pub frame: std::borrow::Cow<'a, DataFrame>,
    /// One column per history feature, in [`History::feature_names`] order, aligned with `frame`.
    pub history_columns: Vec<history::Values>,
    /// The other stages' signals by feature name, aligned with `frame` (NaN where missing).
    pub signals: BTreeMap<String, Vec<f64>>,
    /// The first row to score.
    pub scored_from: usize,
}

/// The time-based split of `rows`: `train`, `valid`, `test` or `unlabelled` per row, and the
/// train and validation end days. Fails when a part holds too few labelled rows.
pub fn time_split(day: &[i32], label: &[Option<bool>], params: &ModelParams) -> Result<(Vec<Part>, i32, i32), ModelError> {
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
    let split: Vec<Part> = day
        .iter()
        .zip(label)
        .map(|(d, l)| match (l, *d <= train_end, *d <= valid_end) {
            (None, ..) => Part::Unlabelled,
            (Some(_), true, _) => Part::Train,
            (Some(_), false, true) => Part::Valid,
            (Some(_), false, false) => Part::Test,
        })
        .collect();
    let count = |s: Part| split.iter().filter(|x| **x == s).count();
    for (s, min) in [(Part::Train, 50), (Part::Valid, 20), (Part::Test, 20)] {
        if count(s) < min {
            return Err(ModelError::Data(format!(
                "the {} months hold {} labelled declarations (need {min}); adjust train-end/valid-end",
                s.name(),
                count(s)
            )));
        }
    }
    Ok((split, train_end, valid_end))
}

/// Splits by time, trains, evaluates, explains and scores the rows from `rows.scored_from` on.
/// `history` is the history after the last row; it is saved with the model.
pub fn fit(mut rows: Rows<'_>, history: History, params: &ModelParams, seed: u64, sink: &mut ScoreSink<'_>) -> Result<Trained, ModelError> {
    params.check_selection()?;
    let declarations = rows.frame.as_ref();
    let day = days(declarations)?;
    let label = labels(declarations)?;
    let (split, train_end, valid_end) = time_split(&day, &label, params)?;
    let count = |s: Part| split.iter().filter(|x| **x == s).count();
    info!(train = count(Part::Train), valid = count(Part::Valid), test = count(Part::Test), "Time-based split.");

    let is_train: Vec<bool> = split.iter().map(|s| *s == Part::Train).collect();
    let signal_names: Vec<String> = rows.signals.keys().cloned().collect();
    // The labelled rows' history and signal values are gathered (train, valid and test rows one
    // after another) for their feature matrices; the scored rows' are set aside for the walk
    // while the vocabularies are learnt, so that training holds neither.
    let parts: Vec<Vec<usize>> =
        [Part::Train, Part::Valid, Part::Test].map(|part| (0..split.len()).filter(|&i| split[i] == part).collect()).into();
    let gather = parts.concat();
    let scratch = sink.scratch_dir();
    let keep = inspections_column(&history);
    let blocks = walk_blocks(rows.scored_from..declarations.height());
    // Both halves log as the stage.
    let span = tracing::Span::current();
    let (spec, aside) = rayon::join(
        || {
            let _stage = span.enter();
            timed("vocabularies learnt", || FeatureSpec::learn(declarations, &is_train, signal_names))
        },
        || {
            let _stage = span.enter();
            match scratch {
                Some(dir) => timed("scored rows' features set aside", || {
                    WalkFeatures::set_aside(&mut rows.history_columns, &mut rows.signals, keep, blocks, &dir, &gather)
                })
                .map(|(walk, gathered)| (Some(walk), gathered)),
                None => Ok((None, aside::gather(&rows.history_columns, &rows.signals, &gather))),
            }
        },
    );
    let (mut spec, (walk, gathered)) = (spec?, aside?);
    spec.excluded.clone_from(&params.exclude_features);
    if !params.history_features {
        spec.excluded.extend(history.feature_names());
    }
    let subset = |k: usize| -> Result<(mirador_gbdt::Dataset, Vec<bool>, Vec<usize>), ModelError> {
        let idx = parts[k].clone();
        let first: usize = parts[..k].iter().map(Vec::len).sum();
        let l = idx.iter().map(|&i| label[i] == Some(true)).collect();
        let at = Subset::Gathered(&idx, first..first + idx.len());
        let data = spec.dataset_of(declarations, &history, &gathered.history, &gathered.signals, at)?;
        Ok((data, l, idx))
    };
    let ((train_x, train_y, train_idx), (valid_x, valid_y, valid_idx), (test_x, test_y, test_idx)) =
        timed("labelled feature matrices built", || -> Result<_, ModelError> { Ok((subset(0)?, subset(1)?, subset(2)?)) })?;
    drop((gathered, parts));
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

    let (valid_p, test_p, train_p) = timed("labelled rows predicted", || -> Result<_, ModelError> {
        Ok((booster.predict_proba(&valid_x)?, booster.predict_proba(&test_x)?, booster.predict_proba(&train_x)?))
    })?;
    let threshold = f1_threshold(&valid_p, &valid_y);
    let test_duty: Vec<f64> = test_idx.iter().map(|&i| duty[i]).collect();
    let valid_duty: Vec<f64> = valid_idx.iter().map(|&i| duty[i]).collect();
    let mut known = vec![f64::NAN; declarations.height()];
    for (idx, p) in [(&train_idx, train_p), (&valid_idx, valid_p.clone()), (&test_idx, test_p.clone())] {
        for (&i, p) in idx.iter().zip(p) {
            known[i] = p;
        }
    }
    let (mut plan, valid_novelty, test_novelty) = timed("selection planned", || -> Result<_, ModelError> {
        let plan = SelectionPlan::of(&rows, &split, known, params.policy(), params, seed)?;
        let valid_novelty = plan.novelty_of(&history, &rows, &valid_idx, &valid_p, threshold);
        let test_novelty = plan.novelty_of(&history, &rows, &test_idx, &test_p, threshold);
        Ok((plan, valid_novelty, test_novelty))
    })?;
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
    // The challengers need only their training sample and the held-out rows: they are fit while
    // the rules, the scores and the held-out evaluation are computed.
    let sample = timed("challengers' sample drawn", || {
        params.challengers.then(|| {
            let train = challengers::Split { name: "train", x: &train_x, y: &train_y, duty: &[] };
            challengers::Sample::draw(&train, params.challenger_rows, seed)
        })
    });
    let test_x = std::sync::Arc::new(test_x);
    let test_for_challengers = std::sync::Arc::clone(&test_x);
    // Each part may run on another thread: each enters the stage's span, so that its log
    // lines (and warnings) stay the stage's.
    let span = tracing::Span::current();
    let fit_challengers = || {
        let _stage = span.enter();
        // The held-out matrices go as soon as the challengers are done with them.
        let (valid_x, test_x) = (valid_x, test_for_challengers);
        let held_out = [
            challengers::Split { name: "valid", x: &valid_x, y: &valid_y, duty: &valid_duty },
            challengers::Split { name: "test", x: &test_x, y: &test_y, duty: &test_duty },
        ];
        sample.flatten().map_or_else(Vec::new, |s| s.run(&held_out, params.forest_trees, seed))
    };
    let rules_and_scores = || -> Result<_, ModelError> {
        let _stage = span.enter();
        let (train_x, test_x) = (train_x, test_x);
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
        // Memory is at its highest while scoring: the labelled matrices go before it (0.4 GB
        // at 10M rows; the held-out ones once the challengers are fit), the history and signal
        // columns right after it (1.2 GB).
        drop((train_x, test_x));
        let scored = sink.score(&booster, &spec, &history, &mut rows, params.top_reasons, &split, &duty, threshold, &mut plan, walk)?;
        Ok((rules, scored))
    };
    // The held-out rows' evaluation is needed only at the end: it runs beside the challengers,
    // the rules and the scoring.
    let evaluate_held_out = || {
        let _stage = span.enter();
        timed("held-out rows evaluated", || {
            vec![
                evaluate_with_selection("valid", &valid_p, &valid_y, &valid_duty, &list_order(&valid_p, &valid_duty, &valid_novelty), seed),
                evaluate_with_selection("test", &test_p, &test_y, &test_duty, &list_order(&test_p, &test_duty, &test_novelty), seed),
            ]
        })
    };
    let (challengers, (rules_and_scores, evaluations)) = rayon::join(fit_challengers, || rayon::join(rules_and_scores, evaluate_held_out));
    let (rules, (scores, _, inspection_list)) = rules_and_scores?;
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
pub(crate) fn choose_selection(
    probability: &[f64],
    labels: &[bool],
    duty: &[f64],
    novelty: &[f64],
    params: &ModelParams,
    seed: u64,
) -> Selection {
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

pub(crate) fn importance_frame(booster: &Booster) -> PolarsResult<DataFrame> {
    let gain = booster.feature_importance(ImportanceKind::Gain);
    let splits = booster.feature_importance(ImportanceKind::Split);
    let total: f64 = gain.iter().sum();
    let mut order: Vec<usize> = (0..gain.len()).collect();
    order.sort_by(|&a, &b| gain[b].total_cmp(&gain[a]).then(a.cmp(&b)));
    let names = booster.feature_names();
    DataFrame::new_infer_height(vec![
        Column::new(fraud_importance::FEATURE.into(), order.iter().map(|&i| names[i].clone()).collect::<Vec<_>>()),
        Column::new(fraud_importance::LABEL.into(), order.iter().map(|&i| explain::label(&names[i])).collect::<Vec<_>>()),
        Column::new(fraud_importance::GAIN.into(), order.iter().map(|&i| gain[i]).collect::<Vec<_>>()),
        Column::new(
            fraud_importance::GAIN_SHARE.into(),
            order.iter().map(|&i| if total > 0.0 { gain[i] / total } else { 0.0 }).collect::<Vec<_>>(),
        ),
        Column::new(fraud_importance::SPLITS.into(), order.iter().map(|&i| splits[i]).collect::<Vec<_>>()),
    ])
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
