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
//! # A file without a declaration id: `{ row-number = true }` or `{ hash = ["Date", ...] }`.
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
//!
//! A file may start with `extends = "nightly.toml"` and say only what differs; see
//! [`crate::extend`] for how the two merge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// A parsed pipeline file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PipelineFile {
    /// The pipeline file this one extends, relative to it (merged before parsing; see
    /// [`crate::extend`]). Recorded for `show-settings`; the merge has already happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<PathBuf>,
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
    /// Canonical column → column header in the source file, or a row key ingest makes for a
    /// source that has none: `{ row-number = true }` (the record's file and line) or
    /// `{ hash = ["header", ...] }` (a hash of those raw columns); see [`ColumnSource`].
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnSource>,
    /// Canonical column → constant value, for columns the source does not carry (e.g. currency).
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// Canonical column → (source value → canonical value), e.g. Comtrade flow codes.
    #[serde(default)]
    pub recode: BTreeMap<String, BTreeMap<String, String>>,
    /// Most physical lines one CSV record may span (a quoted field holding line breaks); a quote
    /// left open longer is a stray one, and its line alone is quarantined. Default 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_record_lines: Option<usize>,
}

/// Where a canonical column of a source comes from: a column of the file, by its header, or a
/// row key ingest makes when the file has no such column (a declarations export without a
/// declaration id). A made key is recorded as a warning in the run manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ColumnSource {
    /// `declaration_id = "Declaration ID"`: the file's column with this header.
    Header(String),
    /// `declaration_id = { row-number = true }`: the record's file name and line
    /// (`declarations.csv:25`), stable while the same file is re-read.
    RowNumber {
        /// Always `true`.
        #[serde(rename = "row-number")]
        row_number: bool,
    },
    /// `declaration_id = { hash = ["Date", "Importer", ...] }`: a hash of these raw columns
    /// (by header), stable across files and runs; rows equal in them get the same key.
    Hash {
        /// Headers hashed, in this order.
        hash: Vec<String>,
    },
}

impl ColumnSource {
    /// The header, when the column comes from the file.
    pub fn header(&self) -> Option<&str> {
        match self {
            ColumnSource::Header(h) => Some(h),
            _ => None,
        }
    }
}

impl From<&str> for ColumnSource {
    fn from(header: &str) -> Self {
        ColumnSource::Header(header.to_owned())
    }
}

impl From<String> for ColumnSource {
    fn from(header: String) -> Self {
        ColumnSource::Header(header)
    }
}

impl<'de> Deserialize<'de> for ColumnSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Header(String),
            Table(BTreeMap<String, toml::Value>),
        }
        let table = match Given::deserialize(deserializer)? {
            Given::Header(h) => return Ok(ColumnSource::Header(h)),
            Given::Table(t) => t,
        };
        let expected = "a header name, `{ row-number = true }` or `{ hash = [\"header\", ...] }`";
        let keys: Vec<&str> = table.keys().map(String::as_str).collect();
        match (keys.as_slice(), table.values().next()) {
            (["row-number"], Some(toml::Value::Boolean(true))) => Ok(ColumnSource::RowNumber { row_number: true }),
            (["hash"], Some(toml::Value::Array(items))) if !items.is_empty() => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| D::Error::custom("`hash` lists header names (text)")))
                .collect::<Result<Vec<_>, _>>()
                .map(|hash| ColumnSource::Hash { hash }),
            _ => Err(D::Error::custom(format!("a column mapping is {expected}; got keys {keys:?}"))),
        }
    }
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
    /// Reads and parses a pipeline file (no checks against stages; see [`crate::check`]). A file
    /// that `extends` another is merged over it first ([`crate::extend`]).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let base_dir = path.parent().map(Path::to_owned).unwrap_or_default();
        let (table, text) = crate::extend::load_merged(path)?;
        let mut file: PipelineFile =
            table.try_into().map_err(|e: toml::de::Error| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
        check_name(&file.name)?;
        file.base_dir = base_dir;
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
