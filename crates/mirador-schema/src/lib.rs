//! Column names, dataset ids and canonical schemas shared by every Mirador crate. No I/O.
//!
//! Mirador is a batch pipeline; stages exchange data only through named datasets. This crate names
//! them ([`datasets`]), names their columns ([`col`]), builds their polars schemas ([`schemas`]),
//! reads text columns held as strings or as categoricals alike ([`text`]), converts day numbers
//! and dates ([`day`]), lists every dataset with its declared columns ([`catalog`]) and holds the small
//! reference tables every stage needs (ISO 3166 countries, [`country`]).
//!
//! ```
//! use mirador_schema::{col, datasets, schemas};
//! let schema = schemas::declarations();
//! assert!(schema.contains(col::HS6));
//! assert_eq!(datasets::DECLARATIONS, "declarations");
//! ```

pub mod catalog;
pub mod col;
pub mod country;
pub mod datasets;
pub mod day;
pub mod hs;
pub mod keys;
pub mod schemas;
pub mod text;

/// A dataset's name in the catalog, e.g. `"declarations"`.
pub type DatasetId = &'static str;
