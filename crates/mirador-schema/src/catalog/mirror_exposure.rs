//! `mirror_exposure`, written by the `revenue_gap` stage: [`crate::datasets::MIRROR_EXPOSURE`].

use polars::prelude::{DataType, Schema};

pub use crate::col::{DECLARATION_ID, HS6, IMPORTER_ID, ITEM_NO, ORIGIN_COUNTRY};

/// The dataset's id.
pub const ID: &str = crate::datasets::MIRROR_EXPOSURE;
pub const GAP_PERIOD: &str = "gap_period";
pub const MIRROR_GAP_RATIO: &str = "mirror_gap_ratio";
pub const CELL_LOST_DUTY_USD: &str = "cell_lost_duty_usd";
pub const MIRROR_DUTY_SHARE_USD: &str = "mirror_duty_share_usd";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, Int32, String};
    super::schema(&[
        (DECLARATION_ID, String),
        (ITEM_NO, Int32),
        (IMPORTER_ID, String),
        (HS6, String),
        (ORIGIN_COUNTRY, String),
        (GAP_PERIOD, String),
        (MIRROR_GAP_RATIO, Float64),
        (CELL_LOST_DUTY_USD, Float64),
        (MIRROR_DUTY_SHARE_USD, Float64),
    ])
}
