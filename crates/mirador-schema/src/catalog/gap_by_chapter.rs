//! `gap_by_chapter`, written by the `revenue_gap` stage: [`crate::datasets::GAP_BY_CHAPTER`].

use polars::prelude::{DataType, Schema};

pub use crate::col::{HS2, PERIOD};

/// The dataset's id.
pub const ID: &str = crate::datasets::GAP_BY_CHAPTER;
pub const DECLARED_VALUE_USD: &str = "declared_value_usd";
pub const MIRROR_CIF_USD: &str = "mirror_cif_usd";
pub const VALUE_GAP_USD: &str = "value_gap_usd";
pub const POSITIVE_GAP_USD: &str = "positive_gap_usd";
pub const LOST_DUTY_USD: &str = "lost_duty_usd";
pub const LOST_DUTY_LOW_USD: &str = "lost_duty_low_usd";
pub const LOST_DUTY_HIGH_USD: &str = "lost_duty_high_usd";
pub const DECLARED_VALUE_WITHOUT_MIRROR_USD: &str = "declared_value_without_mirror_usd";
pub const CELLS: &str = "cells";
pub const CELLS_WITH_POSITIVE_GAP: &str = "cells_with_positive_gap";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, String, UInt32};
    super::schema(&[
        (HS2, String),
        (PERIOD, String),
        (DECLARED_VALUE_USD, Float64),
        (MIRROR_CIF_USD, Float64),
        (VALUE_GAP_USD, Float64),
        (POSITIVE_GAP_USD, Float64),
        (LOST_DUTY_USD, Float64),
        (LOST_DUTY_LOW_USD, Float64),
        (LOST_DUTY_HIGH_USD, Float64),
        (DECLARED_VALUE_WITHOUT_MIRROR_USD, Float64),
        (CELLS, UInt32),
        (CELLS_WITH_POSITIVE_GAP, UInt32),
    ])
}
