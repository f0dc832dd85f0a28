//! `unapplied_outcomes`: Inspection outcomes that found no declaration to label, with the reason (`fraud_model/unapplied_outcomes.parquet`).

use polars::prelude::{DataType, Schema};

pub use crate::col::{DECIDED_ON, DECLARATION_ID, FRAUD, ITEM_NO, REASON};

/// The dataset's id.
pub const ID: &str = "unapplied_outcomes";

/// Its columns, in order.
pub fn schema() -> Schema {
    use DataType::{Date, Int8, Int32, String};
    super::schema(&[(DECLARATION_ID, String), (ITEM_NO, Int32), (DECIDED_ON, Date), (FRAUD, Int8), (REASON, String)])
}
