//! The boosting loop: input checks, binning, tree growth, scoring and early stopping.

use rayon::prelude::*;

use crate::binning::{BinnedData, bin_dataset, fit_mappers};
use crate::booster::{Booster, MODEL_FORMAT_VERSION};
use crate::dataset::{Column, Dataset};
use crate::error::{GbdtError, Result};
use crate::grower::{BinTree, GrownTree, TreeGrower};
use crate::histogram::GradPair;
use crate::objective::{ROW_CHUNK, gradients, initial_score, is_positive, logloss};
use crate::params::Params;
use crate::sampling::Sampler;

impl Booster {
    /// Trains a model on `train` with 0/1 `labels`.
    ///
    /// `weights` (one per row, finite, non-negative) scale each row's loss; positive rows are
    /// further multiplied by [`Params::scale_pos_weight`]. With `valid`, the validation logloss is
    /// recorded every round and, when [`Params::early_stopping_rounds`] is set, training stops after
    /// that many rounds without improvement and keeps the trees up to the best round.
    ///
    /// The result depends only on the inputs and [`Params::seed`], not on the number of threads.
    pub fn train(
        train: &Dataset,
        labels: &[f64],
        weights: Option<&[f64]>,
        valid: Option<(&Dataset, &[f64])>,
        params: &Params,
    ) -> Result<Booster> {
        params.validate()?;
        check_data(train, "train")?;
        let n_rows = train.n_rows();
        check_labels(labels, n_rows, "labels")?;
        let weights = effective_weights(labels, weights, params.scale_pos_weight)?;
        check_classes(labels, &weights)?;
        let feature_kinds: Vec<_> = train.columns.iter().map(Column::kind).collect();
        let mut booster = Booster {
            format_version: MODEL_FORMAT_VERSION,
            feature_names: train.names.clone(),
            feature_kinds,
            init_score: initial_score(labels, &weights),
            trees: Vec::new(),
            best_iteration: 0,
            valid_history: Vec::new(),
            params: params.clone(),
        };
        if let Some((valid_data, valid_labels)) = valid {
            check_data(valid_data, "valid")?;
            booster.check_schema(valid_data)?;
            check_labels(valid_labels, valid_data.n_rows(), "valid labels")?;
        }

        let mappers = fit_mappers(train, params.max_bins, params.seed);
        let binned = bin_dataset(train, &mappers);
        let mut validation = valid.map(|(data, labels)| Validation {
            binned: bin_dataset(data, &mappers),
            labels,
            scores: vec![booster.init_score; data.n_rows()],
        });
        let patience = params.patience().filter(|_| validation.is_some());
        let randomised = params.bagging() || params.feature_fraction < 1.0;

        let mut scores = vec![booster.init_score; n_rows];
        let mut grads = vec![GradPair::default(); n_rows];
        let all_rows: Vec<u32> = (0..n_rows as u32).collect();
        let mut bag: Option<Vec<u32>> = None;
        let mut sampler = Sampler::new(params.seed);
        let mut grower = TreeGrower::new(&binned, &mappers, params);
        let mut best_loss = f64::INFINITY;
        for iteration in 0..params.n_trees {
            gradients(&scores, labels, &weights, &mut grads);
            if params.bagging() && iteration % params.bagging_freq == 0 {
                bag = Some(sampler.bag(n_rows, params.bagging_fraction));
            }
            let features = sampler.features(train.n_features(), params.feature_fraction);
            let grown = grower.grow(&grads, bag.as_deref().unwrap_or(&all_rows), &features);
            if grown.tree.nodes.len() == 1 && !randomised {
                // Without randomness every later tree would be this same single leaf.
                break;
            }
            if bag.is_some() {
                add_tree_scores(&mut scores, &grown.bin_tree, &binned);
            } else {
                add_leaf_scores(&mut scores, &grown, grower.indices());
            }
            booster.trees.push(grown.tree);
            if let Some(validation) = &mut validation {
                add_tree_scores(&mut validation.scores, &grown.bin_tree, &validation.binned);
                let loss = logloss(&validation.scores, validation.labels);
                booster.valid_history.push(loss);
                if loss < best_loss {
                    best_loss = loss;
                    booster.best_iteration = booster.trees.len();
                } else if patience.is_some_and(|rounds| booster.trees.len() - booster.best_iteration >= rounds) {
                    break;
                }
            }
        }
        if patience.is_some() {
            booster.trees.truncate(booster.best_iteration);
        }
        booster.best_iteration = booster.trees.len();
        Ok(booster)
    }
}

/// Binned validation rows with their labels and running margins.
struct Validation<'a> {
    binned: BinnedData,
    labels: &'a [f64],
    scores: Vec<f64>,
}

/// Adds each leaf's value to the rows partitioned into it.
fn add_leaf_scores(scores: &mut [f64], grown: &GrownTree, indices: &[u32]) {
    for (value, rows) in &grown.leaves {
        for &row in &indices[rows.clone()] {
            scores[row as usize] += value;
        }
    }
}

/// Adds the tree's output to every row of binned data.
fn add_tree_scores(scores: &mut [f64], tree: &BinTree, data: &BinnedData) {
    scores.par_chunks_mut(ROW_CHUNK).enumerate().for_each(|(chunk, scores)| {
        for (offset, score) in scores.iter_mut().enumerate() {
            *score += tree.predict(data, chunk * ROW_CHUNK + offset);
        }
    });
}

fn check_data(data: &Dataset, what: &'static str) -> Result<()> {
    data.check()?;
    if data.n_features() == 0 {
        return Err(GbdtError::NoFeatures { what });
    }
    if data.n_rows() == 0 {
        return Err(GbdtError::EmptyData { what });
    }
    let max = u32::MAX as usize;
    if data.n_rows() > max {
        return Err(GbdtError::TooManyRows { what, rows: data.n_rows(), max });
    }
    Ok(())
}

#[allow(clippy::float_cmp, reason = "labels must be exactly 0 or 1")]
fn check_labels(labels: &[f64], n_rows: usize, what: &'static str) -> Result<()> {
    if labels.len() != n_rows {
        return Err(GbdtError::LengthMismatch { what, expected: n_rows, actual: labels.len() });
    }
    match labels.iter().position(|&label| label != 0.0 && label != 1.0) {
        Some(row) => Err(GbdtError::InvalidLabel { what, row, value: labels[row] }),
        None => Ok(()),
    }
}

/// Sample weights with `scale_pos_weight` applied to positive rows.
fn effective_weights(labels: &[f64], weights: Option<&[f64]>, scale_pos_weight: f64) -> Result<Vec<f64>> {
    let scale = |label: f64| {
        if is_positive(label) { scale_pos_weight } else { 1.0 }
    };
    match weights {
        None => Ok(labels.iter().map(|&label| scale(label)).collect()),
        Some(weights) => {
            if weights.len() != labels.len() {
                return Err(GbdtError::LengthMismatch { what: "weights", expected: labels.len(), actual: weights.len() });
            }
            if let Some(row) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
                return Err(GbdtError::InvalidWeight { row, value: weights[row] });
            }
            Ok(labels.iter().zip(weights).map(|(&label, &weight)| weight * scale(label)).collect())
        }
    }
}

fn check_classes(labels: &[f64], weights: &[f64]) -> Result<()> {
    let (mut positive, mut negative) = (0.0, 0.0);
    for (&label, &weight) in labels.iter().zip(weights) {
        if is_positive(label) {
            positive += weight;
        } else {
            negative += weight;
        }
    }
    if positive <= 0.0 {
        return Err(GbdtError::SingleClass { missing: "positive" });
    }
    if negative <= 0.0 {
        return Err(GbdtError::SingleClass { missing: "negative" });
    }
    Ok(())
}
