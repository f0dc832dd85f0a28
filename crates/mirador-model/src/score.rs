//! Scoring: every declaration's probability, expected duty and reasons, block by block, in
//! inspection-list order; and reloading a saved model to score without retraining.

use std::collections::BTreeMap;
use std::path::Path;

use mirador_gbdt::Booster;
use mirador_schema::catalog::{fraud_scores, inspection_list};
use mirador_schema::col;
use polars::prelude::*;
use tracing::{debug, info};

use crate::aside::{ReasonsAside, WalkFeatures};
use crate::evaluate::{Evaluation, evaluate};
use crate::features::{FeatureSpec, Subset, history_ids, history_texts, numbers, signal_columns};
use crate::history::History;
use crate::train::{Rows, days, importance_frame, labels};
use crate::{ModelError, ModelFile, ModelParams, Part, Selection, Trained, explain, features, history, select};

/// Where `fraud_scores` go as the declarations are scored.
pub enum ScoreSink<'s> {
    /// Into one frame ([`Trained::scores`]).
    Collect,
    /// Into a dataset written a block of rows at a time, so that every row's reasons are never
    /// all in memory (1.8 GB at ten million declarations); [`Trained::scores`] is then empty.
    Stream(&'s mut mirador_pipeline::DatasetStream),
}

impl ScoreSink<'_> {
    /// Scores and explains the rows of `rows` from `rows.scored_from` on: one walk of the trees
    /// per row, a block of [`WALK_BLOCK_ROWS`] at a time so that memory holds one block's
    /// features, gives the probability the lists rank by and the row's reasons (kept compactly);
    /// once the rows are ordered, each block of [`SCORE_BLOCK_ROWS`] rows' `fraud_scores`
    /// ([`scores_frame`], with `split` and `duty` by row of `rows.frame`, and the pick order of
    /// `plan`) go to the sink. An empty range gives one empty block, so that the
    /// scores always have a schema. Returns the collected scores (empty when streamed), every
    /// scored row's probability, and the inspection list of `plan.list_period`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn score(
        &mut self,
        booster: &Booster,
        spec: &FeatureSpec,
        history: &History,
        rows: &mut Rows<'_>,
        top_reasons: usize,
        split: &[Part],
        duty: &[f64],
        threshold: f64,
        plan: &mut SelectionPlan<'_>,
        walk: Option<WalkFeatures>,
    ) -> Result<(DataFrame, Vec<f64>, DataFrame), ModelError> {
        let started = std::time::Instant::now();
        let frame = rows.frame.as_ref();
        let range = rows.scored_from..frame.height();
        // One walk of the trees per row gives both the probability the lists rank by and the
        // explanation (its probability and top reasons); the reasons' text is written later, a
        // block at a time, once the rows' order in the lists is known.
        let explainer = explain::Explainer::new(booster, spec, top_reasons)?;
        // The probabilities the lists rank by, by row of the frame: those already known, the
        // others predicted in the walk.
        let mut listed = std::mem::take(&mut plan.known);
        listed.resize(frame.height(), f64::NAN);
        // Streamed, the walked rows' reasons wait for their text in a scratch file rather than
        // in memory.
        let mut aside = self.scratch_dir().map(|dir| ReasonsAside::new(&dir, top_reasons)).transpose()?;
        let walked = timed("declarations scored and explained", || -> Result<_, ModelError> {
            let mut walked = explain::Walked::with_capacity(range.len(), if aside.is_some() { 0 } else { top_reasons });
            // Smaller blocks than the written ones: a block's features are in memory while the
            // walked rows' reasons are kept. Each block's history and signal values go once it
            // is walked, so that the reasons grow as the features shrink.
            let mut features = match walk {
                Some(walk) => walk,
                None => WalkFeatures::in_memory(
                    &mut rows.history_columns,
                    &mut rows.signals,
                    inspections_column(history),
                    walk_blocks(range.clone()),
                ),
            };
            for (k, block) in features.blocks().to_vec().into_iter().enumerate() {
                let piece = features.take(k)?;
                let slice = frame.slice(block.start as i64, block.len());
                let data = spec.dataset_of(&slice, history, &piece.history_columns, &piece.signals, Subset::Range(0..block.len()))?;
                drop(piece);
                explainer.walk(&data, &mut walked, &mut listed[block])?;
                if let Some(aside) = &mut aside {
                    aside.push(&mut walked.reasons)?;
                }
            }
            Ok(walked)
        })?;
        let (order, picked_by, list_cutoff) = timed("inspection lists ordered", || plan.order(history, rows, listed, duty, threshold))?;
        let mut blocks: Vec<std::ops::Range<usize>> =
            range.clone().step_by(SCORE_BLOCK_ROWS).map(|start| start..(start + SCORE_BLOCK_ROWS).min(range.end)).collect();
        if blocks.is_empty() {
            blocks.push(range.clone());
        }
        let mut collected: Option<DataFrame> = None;
        let mut listed: Option<DataFrame> = None;
        let score_block = |block: std::ops::Range<usize>| -> Result<(DataFrame, DataFrame), ModelError> {
            // Positions in `walked`, which starts at `range.start`.
            let at = block.start - range.start..block.end - range.start;
            let (reasons, top) = match &aside {
                Some(aside) => explainer.text(&aside.read(at.clone())?, 0..at.len())?,
                None => explainer.text(&walked.reasons, at.clone())?,
            };
            let explained = explain::Explained { probability: walked.probability[at].to_vec(), reasons, top };
            let mut df = scores_frame(
                &frame.slice(block.start as i64, block.len()),
                &split[block.clone()],
                &duty[block.clone()],
                threshold,
                explained,
            )?;
            df.with_column(Column::new(fraud_scores::SELECTION_ORDER.into(), order[block.clone()].to_vec()))?;
            let by: Vec<&str> = picked_by[block.clone()].iter().map(|share| share.map_or("", select::Share::name)).collect();
            df.with_column(Column::new(fraud_scores::SELECTED_BY.into(), by))?;
            let on_list: Vec<bool> =
                block.clone().map(|i| plan.period[i] == plan.list_period && order[i] as usize <= list_cutoff).collect();
            let list = df.filter(&BooleanChunked::from_slice("on_list".into(), &on_list))?;
            Ok((df, list))
        };
        // A block's rows go to the sink while the next block is scored: writing is largely
        // sequential, and would otherwise leave a core idle.
        let mut pending: Option<DataFrame> = None;
        for block in blocks {
            let (put, scored) = rayon::join(|| self.put(pending.take(), &mut collected), || score_block(block));
            put?;
            let (df, list) = scored?;
            mirador_io::stack(&mut listed, list)?;
            pending = Some(df);
        }
        self.put(pending, &mut collected)?;
        info!(rows = range.len(), seconds = started.elapsed().as_secs_f64(), "Scored and explained the declarations.");
        let list = inspection_list(listed.unwrap_or_default())?;
        Ok((collected.unwrap_or_default(), walked.probability, list))
    }

    /// Where the stage's scratch files go: the streamed dataset's directory (none when the
    /// scores are collected, and scratch stays in memory).
    pub(crate) fn scratch_dir(&self) -> Option<std::path::PathBuf> {
        match self {
            ScoreSink::Collect => None,
            ScoreSink::Stream(stream) => stream.dir().map(Path::to_path_buf),
        }
    }

    /// Hands a block's `fraud_scores` rows to the sink (nothing when `df` is `None`).
    fn put(&mut self, df: Option<DataFrame>, collected: &mut Option<DataFrame>) -> Result<(), ModelError> {
        let Some(df) = df else { return Ok(()) };
        match self {
            ScoreSink::Collect => mirador_io::stack(collected, df)?,
            ScoreSink::Stream(stream) => stream.write(&df).map_err(|e| ModelError::Data(e.to_string()))?,
        }
        Ok(())
    }
}

/// Runs `f`, logging how long `what` took (at debug level: `mirador -vv run ...`).
pub(crate) fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let (started, cpu) = (std::time::Instant::now(), process_cpu_seconds());
    let out = f();
    debug!(seconds = started.elapsed().as_secs_f64(), process_cpu_seconds = process_cpu_seconds() - cpu, "{what}.");
    out
}

/// CPU seconds of this process so far, every thread, user and system (from `/proc/self/stat`;
/// NaN where it cannot be read): what a phase cost on the machine's cores, beside its wall time.
/// Phases that run at the same time as others count theirs too.
pub(crate) fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

/// How [`ScoreSink::score`] orders the scored rows into inspection lists ([`select`]).
pub(crate) struct SelectionPlan<'p> {
    /// The policy.
    pub(crate) policy: select::Policy,
    /// Seeds the exploration draws.
    pub(crate) seed: u64,
    /// Each row's period (by row of the frame): a period's scored rows are ordered together.
    /// Borrowed where it is the rows' split.
    pub(crate) period: std::borrow::Cow<'p, [Part]>,
    /// The period whose list at `budget_pct` is `inspection_list`.
    pub(crate) list_period: Part,
    /// The budget of `inspection_list`, in % of the period's rows.
    pub(crate) budget_pct: f64,
    /// Probabilities already computed, by row of the frame (NaN: predicted here).
    pub(crate) known: Vec<f64>,
    /// By row of the frame, whether its HS6 × origin pair is absent from the training rows
    /// (empty: the training pairs are unknown, and no row counts as new).
    pub(crate) new_pairs: Vec<bool>,
}

/// The period of every row in a whole-history run is its split; the inspection list is the test
/// months'.
pub(crate) const LIST_PERIOD_SPLIT: Part = Part::Test;
/// The period of a carried-state run's new rows: the night.
pub(crate) const LIST_PERIOD_NIGHT: Part = Part::Night;

pub(crate) fn pair_hash(hs6: Option<&str>, origin: Option<&str>) -> u64 {
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
        split: &'s [Part],
        known: Vec<f64>,
        policy: select::Policy,
        params: &ModelParams,
        seed: u64,
    ) -> Result<SelectionPlan<'s>, ModelError> {
        let frame = rows.frame.as_ref();
        let whole = rows.scored_from == 0;
        let known_pairs = if whole {
            pairs_of(frame, |i| split[i] == Part::Train)?
        } else {
            let label = labels(frame)?;
            pairs_of(frame, |i| i < rows.scored_from && label[i].is_some())?
        };
        let hs6 = features::strings(frame, col::HS6)?;
        let origin = features::strings(frame, col::ORIGIN_COUNTRY)?;
        let new_pairs =
            features::borrowed(&hs6).zip(features::borrowed(&origin)).map(|(h, o)| !known_pairs.contains(&pair_hash(h, o))).collect();
        Ok(SelectionPlan {
            policy,
            seed,
            period: if whole {
                std::borrow::Cow::Borrowed(split)
            } else {
                std::borrow::Cow::Owned(vec![LIST_PERIOD_NIGHT; frame.height()])
            },
            list_period: if whole { LIST_PERIOD_SPLIT } else { LIST_PERIOD_NIGHT },
            budget_pct: params.budget_pct,
            known,
            new_pairs,
        })
    }

    /// Every frame row's pick order within its period (0 before `rows.scored_from`), the share
    /// that picked it, and how many picks the list period's `inspection_list` holds.
    /// `probability` holds every frame row's probability from `rows.scored_from` on.
    fn order(
        &self,
        history: &History,
        rows: &Rows<'_>,
        probability: Vec<f64>,
        duty: &[f64],
        threshold: f64,
    ) -> Result<(Vec<u32>, Vec<Option<select::Share>>, usize), ModelError> {
        use rayon::prelude::*;
        let n = rows.frame.height();
        let mut periods: BTreeMap<Part, Vec<usize>> = BTreeMap::new();
        for i in rows.scored_from..n {
            periods.entry(self.period[i]).or_default().push(i);
        }
        let mut order = vec![0u32; n];
        let mut by = vec![None; n];
        let mut cutoff = 0;
        // The periods' lists are picked side by side; each is its own selection.
        let picked: Vec<(Part, &Vec<usize>, Vec<select::Pick>)> = periods
            .par_iter()
            .map(|(period, idx)| {
                let p: Vec<f64> = idx.iter().map(|&i| probability[i]).collect();
                let d: Vec<f64> = idx.iter().map(|&i| duty[i]).collect();
                let novelty = self.novelty_of(history, rows, idx, &p, threshold);
                let picks = select::select(&select::Candidates { probability: &p, duty: &d, novelty: &novelty }, &self.policy, self.seed);
                (*period, idx, picks)
            })
            .collect();
        for (period, idx, picks) in picked {
            for (k, pick) in picks.iter().enumerate() {
                order[idx[pick.row]] = u32::try_from(k + 1).unwrap_or(u32::MAX);
                by[idx[pick.row]] = Some(pick.share);
            }
            if period == self.list_period {
                cutoff = select::budget_rows(self.budget_pct, idx.len());
            }
        }
        Ok((order, by, cutoff))
    }

    /// The novelty of rows `idx` of `rows`, as [`SelectionPlan::order`] computes it.
    pub(crate) fn novelty_of(&self, history: &History, rows: &Rows<'_>, idx: &[usize], probability: &[f64], threshold: f64) -> Vec<f64> {
        let inspections = inspections_column(history).and_then(|at| rows.history_columns.get(at));
        idx.iter()
            .zip(probability)
            .map(|(&i, &p)| {
                let new_pair = self.new_pairs.get(i).copied().unwrap_or(false);
                select::novelty(p, threshold, inspections.map_or(f64::NAN, |v| v.get(i)), new_pair)
            })
            .collect()
    }
}

/// Where the importers' past inspections are among the history columns, which the novelty reads.
pub(crate) fn inspections_column(history: &History) -> Option<usize> {
    history.kinds.iter().position(|k| k == "importer").map(|k| k * history::PER_KIND + 1)
}

/// The inspection list's rows in pick order, with the columns an officer reads.
pub(crate) fn inspection_list(listed: DataFrame) -> PolarsResult<DataFrame> {
    if listed.width() == 0 {
        return Ok(listed);
    }
    let sorted = listed.sort([fraud_scores::SELECTION_ORDER], SortMultipleOptions::default())?;
    let mut out = sorted.select([
        fraud_scores::SELECTION_ORDER,
        inspection_list::SELECTED_BY,
        inspection_list::DECLARATION_ID,
        inspection_list::ITEM_NO,
        inspection_list::IMPORTER_ID,
        inspection_list::DATE,
        inspection_list::SPLIT,
        inspection_list::FRAUD_PROBABILITY,
        inspection_list::EXPECTED_DUTY_AT_RISK_USD,
        inspection_list::TOP_REASONS,
    ])?;
    out.rename(fraud_scores::SELECTION_ORDER, inspection_list::PICK_RANK.into())?;
    Ok(out)
}

/// Rows whose `fraud_scores` are written together (their reasons' text is in memory meanwhile).
pub(crate) const SCORE_BLOCK_ROWS: usize = 1 << 20;

/// Rows walked down the trees together ([`explain::Explainer::walk`]): the feature matrix is
/// built one block at a time, so memory holds one block's features whatever the number of
/// declarations.
const WALK_BLOCK_ROWS: usize = 1 << 18;

/// The walk blocks of the scored rows `range`: [`WALK_BLOCK_ROWS`] rows each but the last.
pub(crate) fn walk_blocks(range: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
    range.clone().step_by(WALK_BLOCK_ROWS).map(|start| start..(start + WALK_BLOCK_ROWS).min(range.end)).collect()
}

pub(crate) fn scores_frame(
    declarations: &DataFrame,
    split: &[Part],
    duty: &[f64],
    threshold: f64,
    scored: explain::Explained,
) -> PolarsResult<DataFrame> {
    let explain::Explained { probability: prob, reasons, top } = scored;
    let expected: Vec<f64> = prob.iter().zip(duty).map(|(p, d)| p * if d.is_finite() { d.max(0.0) } else { 0.0 }).collect();
    let flag: Vec<bool> = prob.iter().map(|p| *p >= threshold).collect();
    let mut df = declarations.select([col::DECLARATION_ID, col::ITEM_NO, col::IMPORTER_ID, col::DATE, col::FRAUD])?;
    df.with_column(Column::new(fraud_scores::SPLIT.into(), split.iter().map(|p| p.name()).collect::<Vec<&str>>()))?;
    df.with_column(Column::new(fraud_scores::FRAUD_PROBABILITY.into(), prob))?;
    df.with_column(Column::new(fraud_scores::EXPECTED_DUTY_AT_RISK_USD.into(), expected))?;
    df.with_column(Column::new(fraud_scores::FRAUD_FLAG.into(), flag))?;
    df.with_column(reasons.into_column())?;
    df.with_column(top.into_column())?;
    Ok(df)
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
    let mut rows = Rows { frame: std::borrow::Cow::Borrowed(declarations), history_columns, signals, scored_from: 0 };
    let duty = numbers(declarations, col::DUTY_USD)?;
    let split = vec![Part::Scored; declarations.height()];
    let mut plan = SelectionPlan {
        policy: model.selection.as_ref().map_or_else(|| ModelParams::default().policy(), |s| s.policy),
        seed: 0,
        period: std::borrow::Cow::Borrowed(&split),
        list_period: Part::Scored,
        budget_pct: model.params.as_ref().map_or(5.0, |p| p.budget_pct),
        known: Vec::new(),
        new_pairs: Vec::new(),
    };
    let (scores, _, _) = ScoreSink::Collect.score(
        &model.booster,
        &model.spec,
        &model.history,
        &mut rows,
        3,
        &split,
        &duty,
        model.threshold,
        &mut plan,
        None,
    )?;
    Ok(Scored { scores, signal_coverage })
}

/// Scores the rows of `rows` from `rows.scored_from` on with a trained `model` (no retraining),
/// orders them into the night's inspection list with the policy chosen when it was trained, and
/// evaluates it on those of them already labelled (split `live`) when there are at least 20. The
/// earlier rows (a carried training window) only give the HS6 × origin pairs the model has seen
/// labelled. `rules` are the model's, kept from when it was trained; the evaluation keeps the
/// model's earlier splits and its challengers' rows.
pub fn score_rows(
    model: ModelFile,
    mut rows: Rows<'_>,
    rules: DataFrame,
    params: &ModelParams,
    seed: u64,
    sink: &mut ScoreSink<'_>,
) -> Result<Trained, ModelError> {
    let from = rows.scored_from;
    let frame = rows.frame.as_ref();
    let duty = numbers(frame, col::DUTY_USD)?;
    let label = labels(frame)?;
    let split: Vec<Part> = label.iter().map(|l| if l.is_some() { Part::Live } else { Part::Unlabelled }).collect();
    // The policy chosen when the model was trained (a model from before the inspection list
    // applies the configured one).
    let policy = model.selection.as_ref().map_or_else(|| params.policy(), |s| s.policy);
    let mut plan = SelectionPlan::of(&rows, &split, Vec::new(), policy, params, seed)?;
    let (scores, probability, inspection_list) = sink.score(
        &model.booster,
        &model.spec,
        &model.history,
        &mut rows,
        params.top_reasons,
        &split,
        &duty,
        model.threshold,
        &mut plan,
        None,
    )?;
    drop(plan);
    // The new rows', from here on.
    let (duty, label) = (&duty[from..], &label[from..]);
    let mut evaluations = model.evaluation.clone();
    let labelled: Vec<usize> = (0..label.len()).filter(|&i| label[i].is_some()).collect();
    if labelled.len() >= 20 {
        let p: Vec<f64> = labelled.iter().map(|&i| probability[i]).collect();
        let y: Vec<bool> = labelled.iter().map(|&i| label[i] == Some(true)).collect();
        let d: Vec<f64> = labelled.iter().map(|&i| duty[i]).collect();
        evaluations.push(evaluate("live", &p, &y, &d, seed));
    }
    let importance = importance_frame(&model.booster)?;
    let evaluation = crate::challengers::with_rows(Evaluation::frame(&evaluations)?, &model.challengers)?;
    let frontier = match &model.selection {
        Some(selection) => selection.frontier_frame()?,
        None => {
            Selection { policy, tuned: false, floor_met: false, precision_floor: 0.0, budget_pct: params.budget_pct, frontier: Vec::new() }
                .frontier_frame()?
        }
    };
    Ok(Trained { model, scores, rules, importance, evaluation, inspection_list, frontier })
}
