//! `kmeans_groups`, written by the `kmeans_scores` stage: [`crate::datasets::KMEANS_GROUPS`].

use polars::prelude::{DataType, Schema};

/// The dataset's id.
pub const ID: &str = crate::datasets::KMEANS_GROUPS;
pub const GROUP_KEY: &str = "group_key";
pub const GROUP_LEVEL: &str = "group_level";
pub const METHOD: &str = "method";
pub const ROWS_IN_GROUP: &str = "rows_in_group";
pub const ROWS_SCORED: &str = "rows_scored";
pub const K: &str = "k";
pub const CENTROID_PRICES_USD_PER_KG: &str = "centroid_prices_usd_per_kg";
pub const CLUSTER_SIZES: &str = "cluster_sizes";
pub const SILHOUETTE: &str = "silhouette";
pub const MEDIAN_PRICE_USD_PER_KG: &str = "median_price_usd_per_kg";
pub const MAINSTREAM_PRICE_USD_PER_KG: &str = "mainstream_price_usd_per_kg";
pub const FLAGGED: &str = "flagged";
pub const BASIS: &str = "basis";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, String, UInt32};
    super::schema(&[
        (GROUP_KEY, String),
        (GROUP_LEVEL, String),
        (METHOD, String),
        (ROWS_IN_GROUP, UInt32),
        (ROWS_SCORED, UInt32),
        (K, UInt32),
        (CENTROID_PRICES_USD_PER_KG, String),
        (CLUSTER_SIZES, String),
        (SILHOUETTE, Float64),
        (MEDIAN_PRICE_USD_PER_KG, Float64),
        (MAINSTREAM_PRICE_USD_PER_KG, Float64),
        (FLAGGED, UInt32),
        (BASIS, String),
    ])
}
