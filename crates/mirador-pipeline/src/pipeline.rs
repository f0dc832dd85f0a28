//! Pipeline files: stages, their wiring and parameters, raw sources, data-quality checks.
//!
//! ```toml
//! name = "nightly"
//! seed = 42
//!
//! [sources.declarations]
//! paths = ["../sample_data/declarations.csv"]
//! date-format = "%Y-%m-%d"
//! columns = { declaration_id = "Declaration ID" }
//!
//! [[stage]]
//! name = "ingest"
//! sources = ["declarations"]
//! outputs = ["declarations", "quarantine"]
//!
//! [checks.declarations]
//! unique = [["declaration_id", "item_no"]]
//! not-null = ["declaration_id", "hs6"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// A parsed pipeline file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PipelineFile {
    /// Pipeline name; the default output root is `reports/<name>`.
    pub name: String,
    /// Seed every random choice of the run derives from.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Output root, relative to the working directory. Default `reports/<name>`.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// Raw input files, by source id.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSpec>,
    /// The stages, in any order; the runner orders them by their data dependencies.
    #[serde(default, rename = "stage")]
    pub stages: Vec<StageSpec>,
    /// Blocking data-quality checks per output dataset.
    #[serde(default)]
    pub checks: BTreeMap<String, DatasetChecks>,
    /// Committed runs kept in the output root, newest first (at least 1: `latest`); older ones
    /// are removed after each commit. Unset: all are kept. A nightly schedule wants this, or its
    /// run directories grow with history.
    #[serde(default)]
    pub keep_runs: Option<usize>,
    /// The pipeline runs on the bundled synthetic sample data, where no real taxpayer appears: the
    /// demo pseudonym key written in the repository may be used (with a warning in the manifest
    /// and the log). Any other pipeline must be given its key in `MIRADOR_PSEUDONYM_KEY`.
    #[serde(default)]
    pub sample_data: bool,
    /// Directory of the pipeline file; relative paths are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file's text, hashed into the run key.
    #[serde(skip)]
    pub text: String,
}

fn default_seed() -> u64 {
    42
}

/// Refuses a pipeline name that is not a plain file name (`../../x`, `a/b`, `.hidden`, empty):
/// the name becomes the run directories' names under the output root.
pub fn check_name(name: &str) -> Result<(), ConfigError> {
    let plain = (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain { Ok(()) } else { Err(ConfigError::Name(name.to_owned())) }
}

/// How to read one raw source.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SourceSpec {
    /// Files, relative to the pipeline file. CSV (`.csv`, `.txt`, `.tsv`) or parquet (`.parquet`).
    pub paths: Vec<PathBuf>,
    /// Field separator for CSV; sniffed from the header when absent (`,`, `;` or tab).
    #[serde(default)]
    pub separator: Option<char>,
    /// Decimal mark for numbers: `.` (default) or `,` (then `.` is a thousands mark).
    #[serde(default)]
    pub decimal: Option<char>,
    /// Text encoding: `utf-8` (default), `windows-1252` or `latin-1`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// `strftime` format of date columns; default `%Y-%m-%d`.
    #[serde(default)]
    pub date_format: Option<String>,
    /// Canonical column → column header in the source file.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Canonical column → constant value, for columns the source does not carry (e.g. currency).
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Canonical column → (source value → canonical value), e.g. Comtrade flow codes.
    #[serde(default)]
    pub recode: BTreeMap<String, BTreeMap<String, String>>,
}

/// One stage's entry in a pipeline file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StageSpec {
    /// Stage name (see `mirador list`).
    pub name: String,
    /// Datasets the stage reads.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Datasets the stage writes.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Raw sources the stage reads (ingest only).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Parameters: an inline table, or the path of a TOML file relative to the pipeline file.
    #[serde(default)]
    pub params: Option<ParamsSpec>,
}

/// Parameters inline or in a file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ParamsSpec {
    /// `params = "params/revenue_gap.toml"`.
    File(PathBuf),
    /// `[stage.params]` table.
    Inline(toml::Table),
}

/// dbt-style blocking tests on an output dataset.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DatasetChecks {
    /// Column sets whose combined values must be unique.
    #[serde(default)]
    pub unique: Vec<Vec<String>>,
    /// Columns that must have no nulls.
    #[serde(default)]
    pub not_null: Vec<String>,
    /// Column → the only values allowed.
    #[serde(default)]
    pub accepted_values: BTreeMap<String, Vec<String>>,
    /// Column → `dataset.column` every value must exist in (referential integrity).
    #[serde(default)]
    pub relationships: BTreeMap<String, String>,
    /// Numeric column → `[min, max]` range every non-null value must lie in.
    #[serde(default)]
    pub range: BTreeMap<String, [f64; 2]>,
}

impl PipelineFile {
    /// Reads and parses a pipeline file (no checks against stages; see [`crate::check`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut file: PipelineFile =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
        check_name(&file.name)?;
        file.base_dir = path.parent().map(Path::to_owned).unwrap_or_default();
        file.text = text;
        Ok(file)
    }

    /// Resolves a stage's parameters to a table (reading the params file if there is one).
    pub fn stage_params(&self, spec: &StageSpec) -> Result<(toml::Table, String), ConfigError> {
        match &spec.params {
            None => Ok((toml::Table::new(), String::new())),
            Some(ParamsSpec::Inline(t)) => Ok((t.clone(), t.to_string())),
            Some(ParamsSpec::File(p)) => {
                let path = self.base_dir.join(p);
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
                let table = toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.clone(), message: e.to_string() })?;
                Ok((table, text))
            }
        }
    }

    /// The output root: `out` from the file, else `reports/<name>`.
    pub fn default_out(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from("reports").join(&self.name))
    }
}
