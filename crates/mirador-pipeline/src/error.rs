//! Errors of stages and of the runner. Configuration errors (the pipeline file) are kept apart
//! from run errors (data and I/O during a run).

use std::path::PathBuf;

/// An error raised while a stage runs.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The stage asked for an input the pipeline did not provide.
    #[error("stage `{stage}` needs dataset `{dataset}`, which the pipeline does not provide")]
    MissingInput {
        /// Stage name.
        stage: String,
        /// Dataset id.
        dataset: String,
    },
    /// A required column is missing from an input.
    #[error("column `{column}` missing from `{dataset}`")]
    MissingColumn {
        /// Dataset id.
        dataset: String,
        /// Column name.
        column: String,
    },
    /// The stage's parameters are invalid.
    #[error("invalid parameters for stage `{stage}`: {message}")]
    Params {
        /// Stage name.
        stage: String,
        /// What is wrong.
        message: String,
    },
    /// The data cannot be processed (a file that cannot be parsed, an impossible value).
    #[error("{0}")]
    Data(String),
    /// I/O failure.
    #[error(transparent)]
    Io(#[from] mirador_io::IoError),
    /// polars failure.
    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),
    /// Anything else, with its own message.
    #[error(transparent)]
    Other(#[from] Box<dyn std::error::Error + Send + Sync>),
}

/// An error in a pipeline file, found before anything runs.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read pipeline file `{path}`: {source}")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the pipeline format.
    #[error("invalid pipeline file `{path}`: {message}")]
    Parse {
        /// Path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The pipeline names a stage no crate provides.
    #[error("unknown stage `{0}` (see `mirador list`)")]
    UnknownStage(String),
    /// The pipeline's wiring disagrees with what the stage declares.
    #[error("stage `{stage}`: {message}")]
    Contract {
        /// Stage name.
        stage: String,
        /// What disagrees.
        message: String,
    },
    /// Two stages write the same dataset.
    #[error("dataset `{dataset}` is written by both `{first}` and `{second}`")]
    TwoWriters {
        /// Dataset.
        dataset: String,
        /// First writer.
        first: String,
        /// Second writer.
        second: String,
    },
    /// An input is produced by no stage.
    #[error("stage `{stage}` reads `{dataset}`, which no stage produces")]
    Unproduced {
        /// Stage.
        stage: String,
        /// Dataset.
        dataset: String,
    },
    /// The stages form a cycle.
    #[error("the stages form a cycle through `{0}`")]
    Cycle(String),
    /// A path escapes the output root.
    #[error("path `{0}` escapes the output root")]
    PathEscape(String),
    /// The pipeline's name cannot name run directories.
    #[error(
        "pipeline name `{0}` is not a plain name: use 1 to 64 letters, digits, `_` or `-`, starting with a letter or digit (it names the run directories)"
    )]
    Name(String),
}

/// An error of a pipeline run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The pipeline file is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A stage failed.
    #[error("stage `{stage}` failed: {cause}")]
    Stage {
        /// Stage.
        stage: String,
        /// Cause. Part of the message, and deliberately not the error's `source()`: printed as a
        /// chain, the message would otherwise repeat it.
        cause: StageError,
    },
    /// Another run holds the output directory.
    #[error("output directory `{0}` is locked by another Mirador run; wait for it to finish")]
    Locked(PathBuf),
    /// A data-quality check failed; nothing was published.
    #[error("data-quality checks failed, nothing published:\n{0}")]
    Checks(String),
    /// `--only`/`--from` needs outputs of a previous run that do not exist.
    #[error("{0}")]
    NoPreviousRun(String),
    /// I/O failure of the runner.
    #[error(transparent)]
    Io(#[from] mirador_io::IoError),
    /// The run failed after it started writing: what it wrote so far is kept for inspection.
    #[error("{cause}\nThe failed attempt's outputs so far (quarantine included) and its error are kept in `{}`.", .kept.display())]
    Failed {
        /// Why the run failed.
        cause: Box<RunError>,
        /// Where the failed attempt's directory was moved (`<out>/failed/<run id>`).
        kept: PathBuf,
    },
}

impl RunError {
    /// Whether this is a problem with the data or configuration (exit 1) rather than an internal
    /// failure (exit 2).
    pub fn is_user_error(&self) -> bool {
        match self {
            RunError::Config(_) | RunError::Checks(_) | RunError::NoPreviousRun(_) | RunError::Locked(_) => true,
            RunError::Stage { cause, .. } => !matches!(cause, StageError::Other(_)),
            RunError::Io(_) => false,
            RunError::Failed { cause, .. } => cause.is_user_error(),
        }
    }

    /// The error itself, without the note of where a failed attempt was kept.
    pub fn cause(&self) -> &RunError {
        match self {
            RunError::Failed { cause, .. } => cause.cause(),
            other => other,
        }
    }
}
