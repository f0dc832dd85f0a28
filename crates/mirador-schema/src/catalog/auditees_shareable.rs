//! `auditees_shareable`, written by the `rank` stage: [`crate::datasets::AUDITEES_SHAREABLE`].
//! The auditee list's columns ([`super::auditees`]), importer ids pseudonymised.

pub use super::auditees::*;

/// The dataset's id.
pub const ID: &str = crate::datasets::AUDITEES_SHAREABLE;
