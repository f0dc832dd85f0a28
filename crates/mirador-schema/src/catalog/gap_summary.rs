//! `gap_summary`, written by the `revenue_gap` stage: [`crate::datasets::GAP_SUMMARY`].

use polars::prelude::{DataType, Schema};

pub use crate::col::PERIOD;

/// The dataset's id.
pub const ID: &str = crate::datasets::GAP_SUMMARY;
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
pub const PARTNERS_NOT_REPORTING: &str = "partners_not_reporting";
pub const CIF_FOB_METHOD: &str = "cif_fob_method";
pub const DECLARED_SOURCE: &str = "declared_source";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Float64, String, UInt32};
    super::schema(&[
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
        (PARTNERS_NOT_REPORTING, String),
        (CIF_FOB_METHOD, String),
        (DECLARED_SOURCE, String),
    ])
}
