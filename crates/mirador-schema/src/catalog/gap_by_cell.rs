//! `gap_by_cell`, written by the `revenue_gap` stage: [`crate::datasets::GAP_BY_CELL`].

use polars::prelude::{DataType, Schema};

pub use crate::col::{HS2, HS6, PARTNER, PERIOD, RATE_PCT, REPORTER};

/// The dataset's id.
pub const ID: &str = crate::datasets::GAP_BY_CELL;
pub const GAP_RANK: &str = "gap_rank";
pub const DECLARED_VALUE_USD: &str = "declared_value_usd";
pub const DECLARED_WEIGHT_KG: &str = "declared_weight_kg";
pub const MIRROR_FOB_USD: &str = "mirror_fob_usd";
pub const MIRROR_WEIGHT_KG: &str = "mirror_weight_kg";
pub const CIF_FOB_FACTOR: &str = "cif_fob_factor";
pub const MIRROR_CIF_USD: &str = "mirror_cif_usd";
pub const MIRROR_CIF_LOW_USD: &str = "mirror_cif_low_usd";
pub const MIRROR_CIF_HIGH_USD: &str = "mirror_cif_high_usd";
pub const VALUE_GAP_USD: &str = "value_gap_usd";
pub const GAP_SHARE_OF_MIRROR: &str = "gap_share_of_mirror";
pub const WEIGHT_GAP_KG: &str = "weight_gap_kg";
pub const DECLARED_UNIT_VALUE_USD_PER_KG: &str = "declared_unit_value_usd_per_kg";
pub const MIRROR_UNIT_VALUE_USD_PER_KG: &str = "mirror_unit_value_usd_per_kg";
pub const UNIT_VALUE_RATIO: &str = "unit_value_ratio";
pub const TARIFF_REGIME: &str = "tariff_regime";
pub const LOST_DUTY_USD: &str = "lost_duty_usd";
pub const LOST_DUTY_LOW_USD: &str = "lost_duty_low_usd";
pub const LOST_DUTY_HIGH_USD: &str = "lost_duty_high_usd";
pub const QUANTITY_WEIGHT: &str = "quantity_weight";
pub const PRIORITY_USD: &str = "priority_usd";
pub const MATERIAL: &str = "material";
pub const FLAGS: &str = "flags";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Boolean, Float64, String, UInt32};
    super::schema(&[
        (GAP_RANK, UInt32),
        (HS6, String),
        (HS2, String),
        (REPORTER, String),
        (PARTNER, String),
        (PERIOD, String),
        (DECLARED_VALUE_USD, Float64),
        (DECLARED_WEIGHT_KG, Float64),
        (MIRROR_FOB_USD, Float64),
        (MIRROR_WEIGHT_KG, Float64),
        (CIF_FOB_FACTOR, Float64),
        (MIRROR_CIF_USD, Float64),
        (MIRROR_CIF_LOW_USD, Float64),
        (MIRROR_CIF_HIGH_USD, Float64),
        (VALUE_GAP_USD, Float64),
        (GAP_SHARE_OF_MIRROR, Float64),
        (WEIGHT_GAP_KG, Float64),
        (DECLARED_UNIT_VALUE_USD_PER_KG, Float64),
        (MIRROR_UNIT_VALUE_USD_PER_KG, Float64),
        (UNIT_VALUE_RATIO, Float64),
        (RATE_PCT, Float64),
        (TARIFF_REGIME, String),
        (LOST_DUTY_USD, Float64),
        (LOST_DUTY_LOW_USD, Float64),
        (LOST_DUTY_HIGH_USD, Float64),
        (QUANTITY_WEIGHT, Float64),
        (PRIORITY_USD, Float64),
        (MATERIAL, Boolean),
        (FLAGS, String),
    ])
}
