//! The run manifest (`manifest.json` in every run directory), in the spirit of dbt's
//! `run_results.json`: what went in, what ran, what came out, what was checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::checks::CheckResult;

/// One run's record.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Mirador version.
    pub mirador_version: String,
    /// Build id: a hash of the running binary's bytes ([`crate::runner::build_id`]), hashed
    /// into the run key, so a rebuilt binary with changed code does not take an earlier run as
    /// its own.
    #[serde(default)]
    pub build_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Run id (`<pipeline>-<key prefix>`).
    pub run_id: String,
    /// Hash of code version, pipeline file, parameters, input checksums and stage selection.
    pub run_key: String,
    /// Seed.
    pub seed: u64,
    /// SHA-256 of the pipeline file.
    pub config_sha256: String,
    /// Start, seconds since the Unix epoch.
    pub started_at: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// For `--only`/`--from`: the run the other stages' outputs were taken from.
    pub reused_from: Option<String>,
    /// For stages that carry state from run to run: the run id whose state this run continued
    /// (`latest` when it started); none for the first run of a chain.
    #[serde(default)]
    pub carried_from: Option<String>,
    /// Warnings a reader of the outputs must see (e.g. the sample data's demo pseudonym key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Raw input files.
    pub inputs: Vec<InputRecord>,
    /// Stages in run order.
    pub stages: Vec<StageRecord>,
    /// Output datasets.
    pub outputs: Vec<OutputRecord>,
    /// Data-quality checks.
    pub checks: Vec<CheckResult>,
    /// Earlier attempts on this output root that died before committing (killed, power cut),
    /// found and cleaned up by this run.
    #[serde(default)]
    pub interrupted_attempts: Vec<Attempt>,
}

/// A run in progress, as recorded in its temporary directory (`attempt.json`) after every stage;
/// what the next run reports when it finds the remains of one that never committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Run id the attempt would have committed as.
    pub run_id: String,
    /// Start, seconds since the Unix epoch.
    pub started_at: u64,
    /// Process id.
    pub pid: u32,
    /// Stages whose outputs were fully written, in completion order.
    pub stages_done: Vec<String>,
}

/// A raw input file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputRecord {
    /// Source id.
    pub source: String,
    /// Path.
    pub path: String,
    /// SHA-256.
    pub sha256: String,
    /// Size.
    pub bytes: u64,
}

/// One stage.
#[derive(Debug, Serialize, Deserialize)]
pub struct StageRecord {
    /// Name.
    pub name: String,
    /// `ran` or `reused from <run>`.
    pub status: String,
    /// Wall time.
    pub seconds: f64,
    /// Input rows per dataset.
    pub rows_in: BTreeMap<String, usize>,
    /// Output rows per dataset.
    pub rows_out: BTreeMap<String, usize>,
    /// Parameters used (secrets excluded).
    pub params: serde_json::Value,
    /// Stage metrics.
    pub metrics: serde_json::Map<String, serde_json::Value>,
}

/// One output dataset.
#[derive(Debug, Serialize, Deserialize)]
pub struct OutputRecord {
    /// Dataset id.
    pub dataset: String,
    /// Path relative to the run directory.
    pub path: String,
    /// Rows.
    pub rows: usize,
    /// SHA-256 of the parquet file.
    pub sha256: String,
}
