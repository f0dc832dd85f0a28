//! `model_pending`: Carried state of `fraud_model`: one day of unlabelled declarations waiting for a late inspection outcome, in the training window's layout (`fraud_model/pending/<day>.parquet`).
//!
//! Its feature columns (`history:*`, `signal:*`) follow these, as the model's features are configured.

use polars::prelude::{DataType, Schema};

pub use crate::col::{
    DATE, DECLARANT_ID, DECLARATION_ID, DEPARTURE_COUNTRY, DUTY_USD, FRAUD, HS6, IMPORT_TYPE, IMPORT_USE, IMPORTER_ID, ITEM_NO,
    NET_MASS_KG, OFFICE_ID, ORIGIN_COUNTRY, ORIGIN_INDICATOR, PAYMENT_TYPE, PROCESS_TYPE, SELLER_ID, TAX_RATE_PCT, TAX_TYPE,
    TRANSPORT_MODE, UNIT_PRICE_USD_KG, VALUE_USD,
};

/// The dataset's id.
pub const ID: &str = "model_pending";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Date, Float64, Int8, Int32, String};
    super::schema(&[
        (DECLARATION_ID, String),
        (ITEM_NO, Int32),
        (IMPORTER_ID, String),
        (DATE, Date),
        (FRAUD, Int8),
        (DUTY_USD, Float64),
        (HS6, String),
        (OFFICE_ID, String),
        (PROCESS_TYPE, String),
        (IMPORT_TYPE, String),
        (IMPORT_USE, String),
        (PAYMENT_TYPE, String),
        (TRANSPORT_MODE, String),
        (TAX_TYPE, String),
        (ORIGIN_INDICATOR, String),
        (ORIGIN_COUNTRY, String),
        (DEPARTURE_COUNTRY, String),
        (TAX_RATE_PCT, Float64),
        (NET_MASS_KG, Float64),
        (VALUE_USD, Float64),
        (UNIT_PRICE_USD_KG, Float64),
        (DECLARANT_ID, String),
        (SELLER_ID, String),
    ])
}
