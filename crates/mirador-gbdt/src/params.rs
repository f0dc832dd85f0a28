//! Training parameters, their defaults and their checks.

use serde::{Deserialize, Serialize};

use crate::error::ParamsError;

/// Largest `max_bins`: bin indices are `u8` and one bin per feature is kept for missing values.
pub const MAX_BINS_LIMIT: usize = 255;

/// Deepest tree grown or loaded, also when `max_depth` is 0; bounds TreeSHAP's recursion and memory.
pub const MAX_TREE_DEPTH: usize = 256;

/// Hyperparameters of [`crate::Booster::train`].
///
/// Names and defaults follow LightGBM where the concept is the same. In TOML or JSON the fields
/// are kebab-case (`learning-rate`); missing fields take their defaults, unknown fields are an error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Boosting rounds (trees) to train at most. Default 500.
    pub n_trees: usize,
    /// Shrinkage applied to every leaf value. Default 0.05.
    pub learning_rate: f64,
    /// Maximum tree depth; 0 means no limit other than [`MAX_TREE_DEPTH`]. Default 8.
    pub max_depth: usize,
    /// Maximum leaves per tree (trees grow best-first). Default 31.
    pub num_leaves: usize,
    /// Minimum training rows in a leaf. Default 20.
    pub min_data_in_leaf: usize,
    /// Minimum sum of hessians in a leaf. Default 1e-3.
    pub min_sum_hessian_in_leaf: f64,
    /// L2 penalty on leaf values. Default 1.0.
    pub lambda_l2: f64,
    /// Minimum gain for a split to be made. Default 0.
    pub min_gain_to_split: f64,
    /// Maximum value bins per numeric feature (and categories with their own bin), 2..=255. Default 255.
    pub max_bins: usize,
    /// Share of features offered to each tree, in (0, 1]. Default 1.
    pub feature_fraction: f64,
    /// Share of rows used by each tree when bagging, in (0, 1]. Default 1.
    pub bagging_fraction: f64,
    /// Redraw the bag every this many trees; 0 disables bagging. Default 0.
    pub bagging_freq: usize,
    /// Stop when the validation logloss has not improved for this many rounds; `None` or `Some(0)`
    /// disables early stopping. Needs a validation set. Default `Some(50)`.
    pub early_stopping_rounds: Option<usize>,
    /// Smoothing added to the hessian when ordering categories, and the minimum rows a category
    /// needs in a node to be placed on the left of a many-vs-many split. Default 10.
    pub cat_smooth: f64,
    /// Maximum categories on the left of a categorical split. Default 32.
    pub max_cat_threshold: usize,
    /// Minimum rows per group of categories added during the many-vs-many scan. Default 50.
    pub min_data_per_group: usize,
    /// Multiplier of positive-row weights (for imbalanced classes). Default 1.
    pub scale_pos_weight: f64,
    /// Seed for bagging, feature sampling and bin-boundary sampling. Default 42.
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            n_trees: 500,
            learning_rate: 0.05,
            max_depth: 8,
            num_leaves: 31,
            min_data_in_leaf: 20,
            min_sum_hessian_in_leaf: 1e-3,
            lambda_l2: 1.0,
            min_gain_to_split: 0.0,
            max_bins: 255,
            feature_fraction: 1.0,
            bagging_fraction: 1.0,
            bagging_freq: 0,
            early_stopping_rounds: Some(50),
            cat_smooth: 10.0,
            max_cat_threshold: 32,
            min_data_per_group: 50,
            scale_pos_weight: 1.0,
            seed: 42,
        }
    }
}

impl Params {
    /// Checks every parameter's range; training calls this before reading any data.
    pub fn validate(&self) -> Result<(), ParamsError> {
        at_least("n-trees", self.n_trees, 1)?;
        positive("learning-rate", self.learning_rate)?;
        at_least("num-leaves", self.num_leaves, 2)?;
        if self.max_depth > MAX_TREE_DEPTH {
            return Err(invalid("max-depth", format!("must be at most {MAX_TREE_DEPTH} (0 for that limit), got {}", self.max_depth)));
        }
        at_least("min-data-in-leaf", self.min_data_in_leaf, 1)?;
        non_negative("min-sum-hessian-in-leaf", self.min_sum_hessian_in_leaf)?;
        non_negative("lambda-l2", self.lambda_l2)?;
        non_negative("min-gain-to-split", self.min_gain_to_split)?;
        if !(2..=MAX_BINS_LIMIT).contains(&self.max_bins) {
            return Err(invalid("max-bins", format!("must be in 2..={MAX_BINS_LIMIT}, got {}", self.max_bins)));
        }
        fraction("feature-fraction", self.feature_fraction)?;
        fraction("bagging-fraction", self.bagging_fraction)?;
        non_negative("cat-smooth", self.cat_smooth)?;
        at_least("max-cat-threshold", self.max_cat_threshold, 1)?;
        positive("scale-pos-weight", self.scale_pos_weight)?;
        Ok(())
    }

    /// The depth limit in force: `max_depth`, or [`MAX_TREE_DEPTH`] when it is 0.
    pub(crate) fn depth_limit(&self) -> usize {
        if self.max_depth == 0 { MAX_TREE_DEPTH } else { self.max_depth }
    }

    /// Early-stopping patience, if early stopping is on.
    pub(crate) fn patience(&self) -> Option<usize> {
        self.early_stopping_rounds.filter(|&rounds| rounds > 0)
    }

    /// True when each tree sees a fresh random bag of rows.
    pub(crate) fn bagging(&self) -> bool {
        self.bagging_freq > 0 && self.bagging_fraction < 1.0
    }
}

fn invalid(name: &'static str, reason: String) -> ParamsError {
    ParamsError { name, reason }
}

fn at_least(name: &'static str, value: usize, min: usize) -> Result<(), ParamsError> {
    if value >= min { Ok(()) } else { Err(invalid(name, format!("must be at least {min}, got {value}"))) }
}

fn positive(name: &'static str, value: f64) -> Result<(), ParamsError> {
    if value.is_finite() && value > 0.0 { Ok(()) } else { Err(invalid(name, format!("must be finite and > 0, got {value}"))) }
}

fn non_negative(name: &'static str, value: f64) -> Result<(), ParamsError> {
    if value.is_finite() && value >= 0.0 { Ok(()) } else { Err(invalid(name, format!("must be finite and >= 0, got {value}"))) }
}

fn fraction(name: &'static str, value: f64) -> Result<(), ParamsError> {
    if value > 0.0 && value <= 1.0 { Ok(()) } else { Err(invalid(name, format!("must be in (0, 1], got {value}"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Params::default().validate(), Ok(()));
    }

    #[test]
    fn rejects_out_of_range_values() {
        let cases: Vec<(&str, Params)> = vec![
            ("n-trees", Params { n_trees: 0, ..Params::default() }),
            ("learning-rate", Params { learning_rate: f64::NAN, ..Params::default() }),
            ("num-leaves", Params { num_leaves: 1, ..Params::default() }),
            ("max-bins", Params { max_bins: 256, ..Params::default() }),
            ("bagging-fraction", Params { bagging_fraction: 0.0, ..Params::default() }),
            ("scale-pos-weight", Params { scale_pos_weight: -1.0, ..Params::default() }),
        ];
        for (name, params) in cases {
            assert_eq!(params.validate().unwrap_err().name, name);
        }
    }

    #[test]
    fn reads_kebab_case_with_defaults() {
        let params: Params = serde_json::from_str(r#"{"learning-rate": 0.1, "num-leaves": 7}"#).unwrap();
        assert_eq!(params.num_leaves, 7);
        assert_eq!(params.n_trees, 500);
        assert!(serde_json::from_str::<Params>(r#"{"leaves": 7}"#).is_err());
    }
}
