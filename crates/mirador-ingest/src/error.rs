//! Ingest errors: a file that cannot be read at all stops the run; bad rows are quarantined.

use std::path::{Path, PathBuf};

/// A fatal ingest error. Messages name the file (and line/column where known).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file cannot be used at all.
    #[error("`{path}` {message}")]
    File {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A mandatory column is missing from the header.
    #[error("`{path}` line 1: mandatory column `{header}` (canonical `{canonical}`) is missing; the header has: {found}")]
    MissingColumn {
        /// File.
        path: PathBuf,
        /// Expected header.
        header: String,
        /// Canonical column it maps to.
        canonical: String,
        /// Headers found.
        found: String,
    },
    /// Too many of a source's rows were quarantined for its accepted rows to be used.
    #[error("{0}")]
    Rejected(String),
    /// Invalid parameters.
    #[error("invalid ingest parameters: {0}")]
    Params(String),
    /// polars failure while building the output.
    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),
}

impl IngestError {
    pub(crate) fn file(path: &Path, message: String) -> Self {
        IngestError::File { path: path.to_owned(), message }
    }
}

impl From<IngestError> for mirador_pipeline::StageError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Params(message) => mirador_pipeline::StageError::Params { stage: "ingest".into(), message },
            IngestError::Polars(p) => mirador_pipeline::StageError::Polars(p),
            other => mirador_pipeline::StageError::Data(other.to_string()),
        }
    }
}
