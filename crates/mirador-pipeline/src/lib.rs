//! The backbone of Mirador: the [`Stage`] trait every step implements, pipeline files, load-time
//! checks of the DAG, blocking data-quality checks and the runner that executes a pipeline with
//! independent stages in parallel and publishes each run atomically.
//!
//! ```no_run
//! use mirador_pipeline::{PipelineFile, RunOptions, run};
//! # fn registry(_: &str) -> Option<Box<dyn mirador_pipeline::Stage>> { None }
//! let file = PipelineFile::load(std::path::Path::new("pipelines/nightly.toml")).unwrap();
//! let opts = RunOptions { out_root: "reports/nightly".into(), ..Default::default() };
//! let outcome = run(&file, &registry, &opts).unwrap();
//! ```

pub mod check;
pub mod checks;
pub mod columns;
pub mod error;
pub mod extend;
pub mod manifest;
pub mod pipeline;
pub mod runner;
pub mod stage;
mod store;

pub use check::{Plan, Registry, check_columns, plan};
pub use error::{ConfigError, RunError, StageError};
pub use manifest::{Attempt, Manifest};
pub use pipeline::{ColumnSource, DatasetChecks, PipelineFile, SourceSpec, StageSpec};
pub use runner::{RunOptions, RunOutcome, latest_run, run};
pub use stage::{DatasetStream, Stage, StageContext, StageOutput, StreamedDataset, check_state, param_in_range, parse_params};
/// The TOML crate the parameter tables come from (`Stage::check_params` takes a `toml::Table`).
pub use toml;
