//! The trained model: scoring, importance and (de)serialisation.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, FeatureKind};
use crate::error::{GbdtError, Result};
use crate::forest::{Block, Forest};
use crate::objective::{ROW_CHUNK, sigmoid};
use crate::params::{MAX_TREE_DEPTH, Params};
use crate::tree::{Node, SplitRule, Tree};

/// Version of the saved-model layout; bumped on any incompatible change.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// Rows scored together tree by tree.
const PREDICT_BLOCK: usize = 256;

/// How [`Booster::feature_importance`] scores a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportanceKind {
    /// Total gain of the splits on the feature.
    Gain,
    /// Number of splits on the feature.
    Split,
}

/// A trained ensemble of trees for binary classification.
///
/// The margin of a row is `init_score + Σ tree outputs`, in log-odds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BoosterData")]
pub struct Booster {
    pub(crate) format_version: u32,
    pub(crate) feature_names: Vec<String>,
    pub(crate) feature_kinds: Vec<FeatureKind>,
    pub(crate) init_score: f64,
    pub(crate) trees: Vec<Tree>,
    pub(crate) best_iteration: usize,
    pub(crate) valid_history: Vec<f64>,
    pub(crate) params: Params,
}

/// The serialised form, checked before it becomes a [`Booster`].
#[derive(Deserialize)]
struct BoosterData {
    format_version: u32,
    feature_names: Vec<String>,
    feature_kinds: Vec<FeatureKind>,
    init_score: f64,
    trees: Vec<Tree>,
    best_iteration: usize,
    valid_history: Vec<f64>,
    params: Params,
}

impl TryFrom<BoosterData> for Booster {
    type Error = GbdtError;

    fn try_from(data: BoosterData) -> Result<Self> {
        if data.format_version != MODEL_FORMAT_VERSION {
            return Err(GbdtError::FormatVersion { found: data.format_version, supported: MODEL_FORMAT_VERSION });
        }
        let invalid = |message: String| Err(GbdtError::InvalidModel(message));
        if data.feature_names.len() != data.feature_kinds.len() {
            return invalid("feature names and kinds differ in number".into());
        }
        if !data.init_score.is_finite() {
            return invalid("non-finite initial score".into());
        }
        for (index, tree) in data.trees.iter().enumerate() {
            if let Err(message) = tree.check(data.feature_names.len()) {
                return invalid(format!("tree {index}: {message}"));
            }
            if tree.depth() > MAX_TREE_DEPTH {
                return invalid(format!("tree {index} is deeper than {MAX_TREE_DEPTH}"));
            }
            for node in &tree.nodes {
                if let Node::Split { feature, rule, .. } = node {
                    let expected = match rule {
                        SplitRule::Threshold(_) => FeatureKind::Numeric,
                        SplitRule::Categories(_) => FeatureKind::Categorical,
                    };
                    if data.feature_kinds[*feature] != expected {
                        return invalid(format!("tree {index} splits feature {feature} as the wrong kind"));
                    }
                }
            }
        }
        Ok(Self {
            format_version: data.format_version,
            feature_names: data.feature_names,
            feature_kinds: data.feature_kinds,
            init_score: data.init_score,
            trees: data.trees,
            best_iteration: data.best_iteration,
            valid_history: data.valid_history,
            params: data.params,
        })
    }
}

impl Booster {
    /// Raw scores (log-odds), one per row.
    pub fn predict_margin(&self, data: &Dataset) -> Result<Vec<f64>> {
        self.check_schema(data)?;
        let forest = Forest::new(self);
        let mut margins = vec![self.init_score; data.n_rows()];
        margins.par_chunks_mut(ROW_CHUNK).enumerate().for_each(|(chunk, margins)| {
            // Blocks of rows walk one tree after another while its nodes are in cache.
            let mut leaves = vec![0u32; PREDICT_BLOCK];
            let mut block = Block::default();
            for (index, margins) in margins.chunks_mut(PREDICT_BLOCK).enumerate() {
                forest.bin(data, chunk * ROW_CHUNK + index * PREDICT_BLOCK, margins.len(), &mut block);
                forest.add_outputs(&block, margins, &mut leaves[..margins.len()]);
            }
        });
        Ok(margins)
    }

    /// Probabilities of the positive class, one per row.
    pub fn predict_proba(&self, data: &Dataset) -> Result<Vec<f64>> {
        let mut scores = self.predict_margin(data)?;
        for score in &mut scores {
            *score = sigmoid(*score);
        }
        Ok(scores)
    }

    /// Importance of each feature, in feature order.
    pub fn feature_importance(&self, kind: ImportanceKind) -> Vec<f64> {
        let mut importance = vec![0.0; self.feature_names.len()];
        for node in self.trees.iter().flat_map(|tree| &tree.nodes) {
            if let Node::Split { feature, gain, .. } = node
                && let Some(slot) = importance.get_mut(*feature)
            {
                *slot += match kind {
                    ImportanceKind::Gain => *gain,
                    ImportanceKind::Split => 1.0,
                };
            }
        }
        importance
    }

    /// Number of trees kept: the best iteration (1-based) under early stopping, else all trained.
    pub fn best_iteration(&self) -> usize {
        self.best_iteration
    }

    /// Number of trees in the model.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Feature names, in the order scoring data must have them.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// Feature kinds, in feature order.
    pub fn feature_kinds(&self) -> &[FeatureKind] {
        &self.feature_kinds
    }

    /// The trees, for reading rules out of the model.
    pub fn trees(&self) -> &[Tree] {
        &self.trees
    }

    /// The margin every row starts from: log-odds of the weighted training base rate.
    pub fn init_score(&self) -> f64 {
        self.init_score
    }

    /// Validation logloss after each boosting round (empty without a validation set). Rounds
    /// after the best iteration are included even though their trees were dropped.
    pub fn valid_history(&self) -> &[f64] {
        &self.valid_history
    }

    /// The parameters the model was trained with.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The model as JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// Reads a model written by [`Booster::to_json`], checking its version and structure.
    pub fn from_json(json: &str) -> Result<Self> {
        Ok(serde_json::from_str(json)?)
    }

    /// Checks that `data` has the model's features, by position, name and kind.
    pub fn check_schema(&self, data: &Dataset) -> Result<()> {
        data.check()?;
        if data.n_features() != self.feature_names.len() {
            return Err(GbdtError::FeatureCount { expected: self.feature_names.len(), actual: data.n_features() });
        }
        for (index, ((expected, kind), (actual, column))) in
            self.feature_names.iter().zip(&self.feature_kinds).zip(data.names.iter().zip(&data.columns)).enumerate()
        {
            if expected != actual {
                return Err(GbdtError::FeatureName { index, expected: expected.clone(), actual: actual.clone() });
            }
            if *kind != column.kind() {
                return Err(GbdtError::FeatureKind { name: expected.clone(), expected: kind.as_str(), actual: column.kind().as_str() });
            }
        }
        Ok(())
    }
}
