//! Integration tests of mirador-gbdt through its public API.

mod common;
mod determinism;
mod errors;
mod learning;
mod metrics;
mod persistence;
mod shap;
