//! `kmeans_peers`: Carried state of `kmeans_scores`: the recent priced declarations each peer group keeps, so that a night is scored against its peers, not alone (`kmeans_scores/peers.parquet`).

use polars::prelude::{DataType, Schema};

pub use crate::col::{HS6, ORIGIN_COUNTRY};

/// The dataset's id.
pub const ID: &str = "kmeans_peers";
pub const DAY: &str = "day";
pub const LOG_PRICE_KG: &str = "log_price_kg";
pub const LOG_PRICE_UNIT: &str = "log_price_unit";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, Int32, String};
    super::schema(&[(HS6, String), (ORIGIN_COUNTRY, String), (DAY, Int32), (LOG_PRICE_KG, Float64), (LOG_PRICE_UNIT, Float64)])
}
