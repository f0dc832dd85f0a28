//! Canonical polars schemas of the datasets ingest produces. Stage outputs document their own
//! schemas in their crates; these are the contracts every stage reads.

use polars::prelude::{DataType, Field, Schema};

use crate::col;

fn schema(fields: &[(&str, DataType)]) -> Schema {
    fields.iter().map(|(name, dtype)| Field::new((*name).into(), dtype.clone())).collect()
}

/// The declarations' text columns that ingest holds (and writes) as categoricals: all but the
/// declaration id, whose values are nearly all distinct. Stages read text columns through
/// [`crate::text::Text`], so they take either strings or categoricals.
pub const DECLARATION_CATEGORICALS: &[&str] = &[
    col::PERIOD,
    col::OFFICE_ID,
    col::PROCESS_TYPE,
    col::IMPORT_TYPE,
    col::IMPORT_USE,
    col::PAYMENT_TYPE,
    col::TRANSPORT_MODE,
    col::DECLARANT_ID,
    col::IMPORTER_ID,
    col::SELLER_ID,
    col::COURIER_ID,
    col::HS_CODE,
    col::HS6,
    col::DEPARTURE_COUNTRY,
    col::ORIGIN_COUNTRY,
    col::TAX_TYPE,
    col::ORIGIN_INDICATOR,
    col::QUANTITY_UNIT,
    col::CURRENCY,
];

/// Accepted declarations, one row per goods item.
///
/// Nullable: `courier_id`, `quantity`, `quantity_unit`, `unit_price_usd_per_kg` (zero mass),
/// `fraud` and `critical_fraud` (not inspected). Everything else is non-null after ingest.
///
/// Text columns are `String` here; ingest holds those of [`DECLARATION_CATEGORICALS`] as
/// categoricals (same values, a quarter of the memory).
pub fn declarations() -> Schema {
    use DataType::{Date, Float64, Int8, Int32, String};
    schema(&[
        (col::DECLARATION_ID, String),
        (col::ITEM_NO, Int32),
        (col::DATE, Date),
        (col::PERIOD, String),
        (col::OFFICE_ID, String),
        (col::PROCESS_TYPE, String),
        (col::IMPORT_TYPE, String),
        (col::IMPORT_USE, String),
        (col::PAYMENT_TYPE, String),
        (col::TRANSPORT_MODE, String),
        (col::DECLARANT_ID, String),
        (col::IMPORTER_ID, String),
        (col::SELLER_ID, String),
        (col::COURIER_ID, String),
        (col::HS_CODE, String),
        (col::HS6, String),
        (col::DEPARTURE_COUNTRY, String),
        (col::ORIGIN_COUNTRY, String),
        (col::TAX_RATE_PCT, Float64),
        (col::TAX_TYPE, String),
        (col::ORIGIN_INDICATOR, String),
        (col::NET_MASS_KG, Float64),
        (col::QUANTITY, Float64),
        (col::QUANTITY_UNIT, String),
        (col::ITEM_PRICE, Float64),
        (col::CURRENCY, String),
        (col::VALUE_USD, Float64),
        (col::DUTY_USD, Float64),
        (col::UNIT_PRICE_USD_KG, Float64),
        (col::FRAUD, Int8),
        (col::CRITICAL_FRAUD, Int8),
        (col::SOURCE_LINE, Int32),
    ])
}

/// The optional release-time columns a declarations source may carry (WCO Time Release Study):
/// the lane and the times of arrival, lodgement, payment and release. Ingest appends them to
/// [`declarations`], in this order, when a source maps any of them; each may be null on a row.
pub const RELEASE_TIME_COLUMNS: &[&str] = &[col::LANE, col::ARRIVED_AT, col::LODGED_AT, col::PAID_AT, col::RELEASED_AT];

/// The schema of [`RELEASE_TIME_COLUMNS`]: the lane as text, each time as whole seconds since
/// 1970-01-01 00:00 (the office's local clock).
pub fn declaration_release_times() -> Schema {
    use DataType::{Int64, String};
    schema(&[(col::LANE, String), (col::ARRIVED_AT, Int64), (col::LODGED_AT, Int64), (col::PAID_AT, Int64), (col::RELEASED_AT, Int64)])
}

/// Accepted mirror-trade flows: the home country's imports and partners' exports.
pub fn mirror_flows() -> Schema {
    use DataType::{Boolean, Float64, String};
    schema(&[
        (col::REPORTER, String),
        (col::PARTNER, String),
        (col::PERIOD, String),
        (col::HS_CODE, String),
        (col::HS_VINTAGE, String),
        (col::FLOW, String),
        (col::TRADE_VALUE_USD, Float64),
        (col::NET_WEIGHT_KG, Float64),
        (col::QUANTITY, Float64),
        (col::QUANTITY_UNIT, String),
        (col::QUANTITY_ESTIMATED, Boolean),
    ])
}

/// Tariff lines: MFN (`preference_origin` null) and preferential rates.
pub fn tariffs() -> Schema {
    use DataType::{Float64, String};
    schema(&[(col::HS_PREFIX, String), (col::PREFERENCE_ORIGIN, String), (col::AGREEMENT, String), (col::RATE_PCT, Float64)])
}

/// Exchange rates: USD per unit of currency, per period (`YYYY-MM` or `YYYY`).
pub fn fx_rates() -> Schema {
    use DataType::{Float64, String};
    schema(&[(col::CURRENCY, String), (col::PERIOD, String), (col::USD_PER_UNIT, Float64)])
}

/// Inspection outcomes recorded after clearance (a physical inspection's result keyed in late, a
/// post-clearance audit's finding), one row per goods item and decision day. The newest decision
/// on an item is its label; it replaces the one the declaration carried, if any.
///
/// Nullable: `critical_fraud`.
pub fn inspection_outcomes() -> Schema {
    use DataType::{Date, Int8, Int32, String};
    schema(&[
        (col::DECLARATION_ID, String),
        (col::ITEM_NO, Int32),
        (col::DECIDED_ON, Date),
        (col::FRAUD, Int8),
        (col::CRITICAL_FRAUD, Int8),
        (col::SOURCE_LINE, Int32),
    ])
}

/// Quarantined rows of every input.
pub fn quarantine() -> Schema {
    use DataType::{Int64, String};
    schema(&[
        (col::DATASET, String),
        (col::SOURCE_FILE, String),
        (col::SOURCE_LINE, Int64),
        (col::REASON_CODE, String),
        (col::COLUMN, String),
        (col::REASON, String),
        (col::RAW_ROW, String),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_categorical_columns_are_the_text_columns_but_the_id() {
        let s = declarations();
        let text: Vec<&str> =
            s.iter().filter(|(n, t)| **t == DataType::String && n.as_str() != col::DECLARATION_ID).map(|(n, _)| n.as_str()).collect();
        assert_eq!(text, DECLARATION_CATEGORICALS);
    }

    #[test]
    fn declarations_carry_derived_columns() {
        let s = declarations();
        for c in [col::HS6, col::VALUE_USD, col::DUTY_USD, col::UNIT_PRICE_USD_KG, col::PERIOD] {
            assert!(s.contains(c), "{c}");
        }
    }
}
