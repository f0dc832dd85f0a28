//! `kmeans_scores`, written by the `kmeans_scores` stage: [`crate::datasets::KMEANS_SCORES`].

use polars::prelude::{DataType, Schema};

pub use crate::col::{DECLARATION_ID, HS6, IMPORTER_ID, ITEM_NO, ORIGIN_COUNTRY, UNIT_PRICE_USD_KG};

/// The dataset's id.
pub const ID: &str = crate::datasets::KMEANS_SCORES;
pub const GROUP_KEY: &str = "group_key";
pub const GROUP_LEVEL: &str = "group_level";
pub const METHOD: &str = "method";
pub const CLUSTER: &str = "cluster";
pub const CENTROID_PRICE_USD_PER_KG: &str = "centroid_price_usd_per_kg";
pub const REFERENCE_PRICE_USD_PER_KG: &str = "reference_price_usd_per_kg";
pub const PRICE_RATIO: &str = "price_ratio";
pub const Z_SCORE: &str = "z_score";
pub const UNDERVALUATION_SCORE: &str = "undervaluation_score";
pub const UNDERVALUATION_FLAG: &str = "undervaluation_flag";
pub const UNDERVALUED_DUTY_USD: &str = "undervalued_duty_usd";
pub const SCORE_BASIS: &str = "score_basis";
pub const UNIT_VALUE_SCORE: &str = "unit_value_score";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Boolean, Float64, Int32, String};
    super::schema(&[
        (DECLARATION_ID, String),
        (ITEM_NO, Int32),
        (IMPORTER_ID, String),
        (HS6, String),
        (ORIGIN_COUNTRY, String),
        (GROUP_KEY, String),
        (GROUP_LEVEL, String),
        (METHOD, String),
        (CLUSTER, Int32),
        (UNIT_PRICE_USD_KG, Float64),
        (CENTROID_PRICE_USD_PER_KG, Float64),
        (REFERENCE_PRICE_USD_PER_KG, Float64),
        (PRICE_RATIO, Float64),
        (Z_SCORE, Float64),
        (UNDERVALUATION_SCORE, Float64),
        (UNDERVALUATION_FLAG, Boolean),
        (UNDERVALUED_DUTY_USD, Float64),
        (SCORE_BASIS, String),
        (UNIT_VALUE_SCORE, Float64),
    ])
}
