//! Histogram gradient-boosted decision trees for Mirador's binary fraud model.
//!
//! `mirador-gbdt` trains LightGBM-style boosted trees on column-major feature tables, without any
//! dataframe dependency: the `fraud_model` stage (in `mirador-model`) converts its features into a
//! [`Dataset`], trains a [`Booster`], scores declarations and explains every score with exact
//! TreeSHAP [`Booster::contributions`]; [`Booster::trees`] exposes the splits for rule extraction.
//!
//! - Numeric features are cut into at most [`Params::max_bins`] quantile bins learnt from the
//!   training rows; missing values (`NaN`) have their own bin, and each split learns which side
//!   they take. Thresholds are stored as real values, so scoring reads raw data.
//! - Categorical features (codes, [`MISSING_CATEGORY`] for missing) are split into two category
//!   sets, found by ordering categories by gradient statistics; rare, unseen and missing
//!   categories go right.
//! - Trees grow leaf-wise up to [`Params::num_leaves`] with L2-regularised leaf values; the
//!   objective is binary logloss with sample weights; early stopping watches the validation
//!   logloss.
//! - Training is deterministic: the same data and seed give a bit-identical model on any number
//!   of threads.
//!
//! ```
//! use mirador_gbdt::{Booster, Column, Dataset, Params, auc};
//!
//! let x: Vec<f64> = (0..400).map(|i| f64::from(i) / 400.0).collect();
//! let labels: Vec<f64> = x.iter().map(|&v| if v > 0.6 { 1.0 } else { 0.0 }).collect();
//! let data = Dataset::new(vec!["unit_price_ratio".into()], vec![Column::Numeric(x)])?;
//! let params = Params { n_trees: 20, early_stopping_rounds: None, ..Params::default() };
//! let model = Booster::train(&data, &labels, None, None, &params)?;
//! let scores = model.predict_proba(&data)?;
//! assert!(auc(&scores, &labels) > 0.99);
//! # Ok::<(), mirador_gbdt::GbdtError>(())
//! ```

mod binning;
mod booster;
mod dataset;
mod error;
mod forest;
mod grower;
mod histogram;
mod metrics;
mod objective;
mod params;
mod sampling;
mod shap;
mod split;
mod train;
mod tree;

pub use booster::{Booster, ImportanceKind, MODEL_FORMAT_VERSION};
pub use dataset::{Column, Dataset, FeatureKind, MISSING_CATEGORY};
pub use error::{GbdtError, ParamsError, Result};
pub use forest::{Block, Forest};
pub use metrics::auc;
pub use params::{MAX_BINS_LIMIT, MAX_TREE_DEPTH, Params};
pub use tree::{MAX_CATEGORY_CODE, Node, SplitRule, Tree};
