//! The [`Stage`] trait: what every pipeline step implements, and the context it runs in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mirador_schema::{DatasetId, catalog};
use polars::prelude::{DataFrame, Schema};
use serde::de::DeserializeOwned;

use crate::error::StageError;
use crate::pipeline::SourceSpec;

/// One step of a pipeline. The code declares the contract (`inputs`/`outputs`); the pipeline
/// file wires stages together and is checked against it before anything runs.
pub trait Stage: Send + Sync {
    /// The stage's name, as written in pipeline files.
    fn name(&self) -> &'static str;
    /// Datasets the stage cannot run without.
    fn inputs(&self) -> &'static [DatasetId];
    /// Datasets the stage uses when the pipeline produces them (e.g. k-means scores as a model
    /// feature). They are edges of the DAG when present and `None` in the context otherwise.
    fn optional_inputs(&self) -> &'static [DatasetId] {
        &[]
    }
    /// The columns the stage reads of input `id`, or `None` (the default) for all of them. A
    /// stage that names them is given only those (the ones the dataset has). A dataset that no
    /// stage reads whole is not held in memory between stages: each stage reads its columns back
    /// from the run's own parquet file.
    fn input_columns(&self, _id: &str) -> Option<Vec<&'static str>> {
        None
    }
    /// Datasets the stage writes.
    fn outputs(&self) -> &'static [DatasetId];
    /// The declared columns of output `id`, in order: by default the catalog's
    /// ([`mirador_schema::catalog`]). The runner refuses a written dataset that differs, and
    /// `mirador check` checks the columns other stages read of it against this. A stage writing a
    /// dataset the catalog does not hold declares it here; `None` fails the run.
    fn output_schema(&self, id: &str) -> Option<Schema> {
        mirador_schema::catalog::get(id).map(|d| (d.schema)())
    }
    /// Columns that may follow output `id`'s declared ones, when the sources have them (the
    /// catalog's by default; none for most datasets).
    fn optional_output_columns(&self, id: &str) -> Schema {
        mirador_schema::catalog::get(id).map(catalog::Dataset::optional_schema).unwrap_or_default()
    }
    /// Source ids (raw files declared under `[sources]`) the stage reads. Only ingest stages.
    fn sources(&self) -> &'static [&'static str] {
        &[]
    }
    /// Runs the stage.
    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError>;
    /// Parses and checks the stage's parameters as the pipeline file gives them (unknown keys,
    /// types, value ranges), before any data is read: `mirador check` calls it for every stage.
    /// Default: a stage without parameters accepts any table.
    fn check_params(&self, _params: &toml::Table) -> Result<(), StageError> {
        Ok(())
    }
    /// Parameters whose values are secrets (a pseudonymisation key): the stage gets them, the run
    /// key hashes them, the manifest and `show-settings` show `<secret>`.
    fn secret_params(&self) -> &'static [&'static str] {
        &[]
    }
    /// Whether, with `params`, the stage carries state from the previous committed run (then the
    /// runs form a chain, and `latest` stays on its newest run). Default: no.
    fn carries_state(&self, _params: &toml::Table) -> bool {
        false
    }
}

fn state_entry(id: &str) -> Result<&'static catalog::Dataset, StageError> {
    catalog::get(id)
        .filter(|d| d.kind == catalog::Kind::State)
        .ok_or_else(|| StageError::Data(format!("`{id}` is not carried state in the catalog (mirador_schema::catalog)")))
}

/// Fails unless `schema` has the columns the catalog declares for carried state `id` (its open
/// prefixes allowed): a stage carrying state it did not declare stops the run instead of handing
/// the next one something else.
pub fn check_state(id: &str, schema: &Schema) -> Result<(), StageError> {
    let found = state_entry(id)?.differences(schema);
    if found.is_empty() {
        Ok(())
    } else {
        Err(StageError::Data(format!("carried state `{id}` differs from its declared schema: {}", found.join("; "))))
    }
}

/// Deserialises a stage's parameter table; an unknown key, a wrong type or a bad value is a
/// [`StageError::Params`] naming the stage and the key.
pub fn parse_params<T: DeserializeOwned>(stage: &str, params: &toml::Table) -> Result<T, StageError> {
    toml::Value::Table(params.clone())
        .try_into()
        .map_err(|e: toml::de::Error| StageError::Params { stage: stage.to_owned(), message: e.to_string() })
}

/// What a stage sees while it runs.
pub struct StageContext {
    pub(crate) stage: String,
    pub(crate) run_id: String,
    pub(crate) params: toml::Table,
    pub(crate) inputs: BTreeMap<String, Arc<DataFrame>>,
    pub(crate) sources: BTreeMap<String, SourceSpec>,
    pub(crate) artifact_dir: PathBuf,
    /// Where the run's datasets are written (streamed outputs go here).
    pub(crate) dataset_dir: PathBuf,
    pub(crate) base_dir: PathBuf,
    pub(crate) seed: u64,
    pub(crate) previous_run: Option<PathBuf>,
    /// The run's warnings so far (those of its settings, as the manifest records them).
    pub(crate) warnings: Vec<String>,
    /// The declarations in memory and their file: streamed per-declaration outputs take their
    /// key columns' pages from it ([`mirador_io::Donor`]).
    pub(crate) donor: Option<(Arc<DataFrame>, PathBuf)>,
    /// The parquet files of the inputs, by id.
    pub(crate) input_files: BTreeMap<String, PathBuf>,
}

impl StageContext {
    /// A context for running a stage outside a pipeline (tests, benchmarks, `mirador score`).
    pub fn standalone(stage: &str, artifact_dir: &Path) -> Self {
        StageContext {
            stage: stage.to_owned(),
            run_id: format!("standalone-{stage}"),
            params: toml::Table::new(),
            inputs: BTreeMap::new(),
            sources: BTreeMap::new(),
            artifact_dir: artifact_dir.to_owned(),
            dataset_dir: artifact_dir.to_owned(),
            base_dir: PathBuf::from("."),
            seed: 42,
            previous_run: None,
            warnings: Vec::new(),
            donor: None,
            input_files: BTreeMap::new(),
        }
    }

    /// Adds an input dataset (builder, for standalone contexts).
    #[must_use]
    pub fn with_input(mut self, id: &str, df: DataFrame) -> Self {
        self.inputs.insert(id.to_owned(), Arc::new(df));
        self
    }

    /// Sets the stage parameters (builder, for standalone contexts).
    #[must_use]
    pub fn with_params(mut self, params: toml::Table) -> Self {
        self.params = params;
        self
    }

    /// Adds a source (builder, for standalone contexts).
    #[must_use]
    pub fn with_source(mut self, id: &str, source: SourceSpec) -> Self {
        self.sources.insert(id.to_owned(), source);
        self
    }

    /// Sets the seed (builder).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the directory relative paths are resolved against (builder).
    #[must_use]
    pub fn with_base_dir(mut self, dir: &Path) -> Self {
        self.base_dir = dir.to_owned();
        self
    }

    /// The stage's name.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// The id of the run the stage is part of (`<pipeline>-<run key>`, the name of the run's
    /// directory once published).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's warnings, as its manifest records them: what people reading its outputs must
    /// know (e.g. a shareable list pseudonymised with the published demo key).
    pub fn run_warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Adds a run warning (builder, for standalone contexts).
    #[must_use]
    pub fn with_run_warning(mut self, warning: &str) -> Self {
        self.warnings.push(warning.to_owned());
        self
    }

    /// Sets the run id (builder, for standalone contexts).
    #[must_use]
    pub fn with_run_id(mut self, run_id: &str) -> Self {
        self.run_id = run_id.to_owned();
        self
    }

    /// A required input. Errors when the pipeline did not provide it.
    pub fn input(&self, id: DatasetId) -> Result<&DataFrame, StageError> {
        self.inputs.get(id).map(AsRef::as_ref).ok_or_else(|| StageError::MissingInput { stage: self.stage.clone(), dataset: id.to_owned() })
    }

    /// The parquet file of input `id`, as the run wrote it (or reused it from an earlier run):
    /// for work done by another process that reads the file itself (the engine's executors).
    /// `None` outside a pipeline, or when the run has no such dataset.
    pub fn input_file(&self, id: DatasetId) -> Option<&Path> {
        self.input_files.get(id).map(PathBuf::as_path)
    }

    /// An optional input: `None` when no stage of this pipeline produces it.
    pub fn optional_input(&self, id: DatasetId) -> Option<&DataFrame> {
        self.inputs.get(id).map(AsRef::as_ref)
    }

    /// The stage's parameters, deserialised. Missing keys take the type's defaults (use
    /// `#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]` on the type).
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, StageError> {
        parse_params(&self.stage, &self.params)
    }

    /// A raw source file declared in the pipeline.
    pub fn source(&self, id: &str) -> Result<&SourceSpec, StageError> {
        self.sources.get(id).ok_or_else(|| StageError::MissingInput { stage: self.stage.clone(), dataset: id.to_owned() })
    }

    /// Resolves a path written in the pipeline file (relative to the pipeline file's directory).
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_owned() } else { self.base_dir.join(path) }
    }

    /// Directory where the stage may write non-tabular artifacts (model files, charts, JSON).
    /// It lives inside the run directory and is published atomically with the run.
    pub fn artifact_dir(&self) -> &Path {
        &self.artifact_dir
    }

    /// Starts writing output `id` batch by batch, for an output too big to hold whole (every
    /// declaration's scores with their reasons). Hand the finished stream to
    /// [`StageOutput::with_streamed`]; the runner records and checks it like any output.
    pub fn dataset_stream(&self, id: DatasetId) -> DatasetStream {
        DatasetStream { id, path: self.dataset_dir.join(format!("{id}.parquet")), stream: None, rows: 0, donor: self.donor.clone() }
    }

    /// The run's seed; every random choice derives from it.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The previous committed run's directory, if there is one (e.g. to reuse a trained model).
    pub fn previous_run(&self) -> Option<&Path> {
        self.previous_run.as_deref()
    }

    /// Carried state `id` (a [`catalog`] dataset of kind `State`) as the previous committed run
    /// left it: its file, or its directory of parts. `None` without a previous run, or when that
    /// run has none.
    pub fn previous_state(&self, id: &str) -> Option<PathBuf> {
        let d = catalog::get(id)?;
        let path = self.previous_run.as_deref()?.join(d.location.trim_end_matches('/'));
        path.exists().then_some(path)
    }

    /// Output `id` (a [`catalog`] dataset this stage produces) as the previous committed run
    /// wrote it: what a stage carries forward unchanged while its state holds (the fraud model's
    /// rules while the model is not retrained). `None` without a previous run, when that run has
    /// none, or when `id` is not one of this stage's outputs.
    pub fn previous_output(&self, id: &str) -> Option<PathBuf> {
        let d = catalog::get(id).filter(|d| d.kind == catalog::Kind::Output && d.producer == self.stage)?;
        let path = self.previous_run.as_deref()?.join(d.location);
        path.is_file().then_some(path)
    }

    /// Artifact `name` as this stage left it in its directory in the previous committed run: carried
    /// state that is not a table (a model file), so not in the catalog. `None` without a previous
    /// run, or when that run has no such file.
    pub fn previous_artifact(&self, name: &str) -> Option<PathBuf> {
        let path = self.previous_run.as_deref()?.join(&self.stage).join(name);
        path.is_file().then_some(path)
    }

    /// Where carried state `id` goes in this run: its file, or its directory of parts (write
    /// each part with [`check_state`] first). It is published with the run.
    pub fn state_path(&self, id: &str) -> Result<PathBuf, StageError> {
        let d = state_entry(id)?;
        Ok(self.dataset_dir.join(d.location.trim_end_matches('/')))
    }

    /// Writes carried state `id` (a single file) into this run, after checking its columns
    /// against the catalog ([`check_state`]).
    pub fn write_state(&self, id: &str, df: &mut DataFrame) -> Result<PathBuf, StageError> {
        check_state(id, df.schema())?;
        let path = self.state_path(id)?;
        mirador_io::write_parquet(df, &path)?;
        Ok(path)
    }
}

/// An output written batch by batch as the stage produces it ([`StageContext::dataset_stream`]).
pub struct DatasetStream {
    id: DatasetId,
    path: PathBuf,
    /// Opened with the first batch's schema.
    stream: Option<mirador_io::ParquetStream>,
    rows: usize,
    /// The declarations and their file, whose key columns' pages the stream takes.
    donor: Option<(Arc<DataFrame>, PathBuf)>,
}

impl DatasetStream {
    /// The directory the stream writes into: the run's temporary one, on the outputs' disk. A
    /// stage's scratch files may go there (unnamed, so that they never reach the run).
    pub fn dir(&self) -> Option<&Path> {
        self.path.parent()
    }

    /// Appends a batch. Every batch has the first one's schema; write at least one, even empty,
    /// so that the file has a schema.
    pub fn write(&mut self, df: &DataFrame) -> Result<(), StageError> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let donor = self.donor.as_ref().map(|(frame, file)| mirador_io::Donor { file, frame });
                self.stream.insert(mirador_io::ParquetStream::create_from(&self.path, df.schema(), donor)?)
            }
        };
        stream.write(df)?;
        self.rows += df.height();
        Ok(())
    }

    /// Finishes the file (published in the run's directory with its schema sidecar).
    pub fn finish(self) -> Result<StreamedDataset, StageError> {
        let stream = self.stream.ok_or_else(|| StageError::Data(format!("no batch was written to `{}`", self.id)))?;
        let schema = stream.schema().clone();
        let sha256 = stream.finish()?;
        Ok(StreamedDataset { id: self.id, path: self.path, rows: self.rows, sha256, schema })
    }
}

/// An output a stage wrote itself, only made by [`DatasetStream::finish`]: its file is the run's
/// own `<id>.parquet`.
pub struct StreamedDataset {
    pub(crate) id: DatasetId,
    pub(crate) path: PathBuf,
    pub(crate) rows: usize,
    pub(crate) sha256: String,
    pub(crate) schema: Schema,
}

/// What a stage produced.
#[derive(Default)]
pub struct StageOutput {
    /// Output datasets, written as parquet by the runner.
    pub datasets: Vec<(DatasetId, DataFrame)>,
    /// Output datasets the stage wrote itself, batch by batch.
    pub streamed: Vec<StreamedDataset>,
    /// Stage metrics, recorded in the manifest (e.g. model AUC, rows flagged).
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// Key columns of an output dataset the stage proved unique while making it (as the run's
    /// `unique` test means it: every row's combination of their values differs, nulls equal
    /// each other): a `unique` test of them passes without hashing them again.
    pub unique: Vec<(DatasetId, Vec<&'static str>)>,
}

impl StageOutput {
    /// An empty output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a dataset.
    #[must_use]
    pub fn with_dataset(mut self, id: DatasetId, df: DataFrame) -> Self {
        self.datasets.push((id, df));
        self
    }

    /// Adds a dataset the stage wrote itself.
    #[must_use]
    pub fn with_streamed(mut self, dataset: StreamedDataset) -> Self {
        self.streamed.push(dataset);
        self
    }

    /// Records that the key `columns` of the dataset `id` are unique: the stage proved it while
    /// making the dataset (see [`StageOutput::unique`]). Only for a proof, never a guess: the
    /// run's `unique` test of these columns then passes unchecked.
    #[must_use]
    pub fn with_unique_key(mut self, id: DatasetId, columns: &[&'static str]) -> Self {
        self.unique.push((id, columns.to_vec()));
        self
    }

    /// Records a metric.
    #[must_use]
    pub fn with_metric(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.metrics.insert(key.to_owned(), value.into());
        self
    }
}

/// Checks that parameter `key` of `stage` lies in `[min, max]` (a NaN never does). Otherwise a
/// configuration error (exit 1) naming the stage, the key, the value and the range: stages call
/// it on their parameters before they read any data.
pub fn param_in_range<T: PartialOrd + std::fmt::Display>(stage: &str, key: &str, value: T, min: T, max: T) -> Result<(), StageError> {
    if value >= min && value <= max {
        return Ok(());
    }
    Err(StageError::Params {
        stage: stage.to_owned(),
        message: format!("`{key}` = {value} is out of range: it must lie between {min} and {max}"),
    })
}

#[cfg(test)]
mod range_tests {
    use super::*;

    #[test]
    fn a_parameter_out_of_its_range_names_the_stage_and_the_key() {
        assert!(param_in_range("kmeans_scores", "max-k", 4, 1, 20).is_ok());
        assert!(param_in_range("s", "k", 1.0, 0.0, 1.0).is_ok());
        for (value, min, max) in [(0.0, 1e-6, 1.0), (f64::NAN, 0.0, 1.0), (f64::INFINITY, 0.0, 1e6), (-1.0, 0.0, 1.0), (2.0, 0.0, 1.0)] {
            let err = param_in_range("fraud_model", "learning-rate", value, min, max).unwrap_err();
            assert!(matches!(err, StageError::Params { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains("`fraud_model`") && text.contains("`learning-rate`") && text.contains(&value.to_string()), "{text}");
        }
        let err = param_in_range("kmeans_scores", "max-k", 1000usize, 1, 20).unwrap_err().to_string();
        assert!(err.contains("`max-k` = 1000") && err.contains("between 1 and 20"), "{err}");
    }

    #[test]
    fn carried_state_is_written_only_as_declared_and_found_by_the_next_run() {
        use mirador_schema::catalog::{kmeans_peers, model_pending};
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (dir.path().join("first"), dir.path().join("second"));
        let peers = || {
            polars::df!(
                kmeans_peers::HS6 => ["090111"], kmeans_peers::ORIGIN_COUNTRY => ["BR"], kmeans_peers::DAY => [19_500i32],
                kmeans_peers::LOG_PRICE_KG => [1.5], kmeans_peers::LOG_PRICE_UNIT => [None::<f64>]
            )
            .unwrap()
        };
        let mut ctx = StageContext::standalone("kmeans_scores", &first.join("kmeans_scores"));
        ctx.dataset_dir = first.clone();
        let written = ctx.write_state(kmeans_peers::ID, &mut peers()).unwrap();
        assert_eq!(written, first.join("kmeans_scores/peers.parquet"));
        // Another column, or one missing, stops the stage; nothing is written.
        let mut drifted = peers().drop(kmeans_peers::DAY).unwrap();
        let err = ctx.write_state(kmeans_peers::ID, &mut drifted).unwrap_err().to_string();
        assert!(err.contains("`kmeans_peers`") && err.contains("`day`") && err.contains("missing"), "{err}");
        // Only carried state goes this way, and open prefixes are open only where declared.
        assert!(ctx.write_state("fraud_scores", &mut peers()).is_err());
        let err = check_state(model_pending::ID, &peers().schema()).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        // The next run finds it where the catalog says; a run without one finds nothing.
        let mut next = StageContext::standalone("kmeans_scores", &second.join("kmeans_scores"));
        assert_eq!(next.previous_state(kmeans_peers::ID), None);
        next.previous_run = Some(first.clone());
        assert_eq!(next.previous_state(kmeans_peers::ID), Some(written));
        assert_eq!(next.previous_state(model_pending::ID), None);
        // Its own outputs and artifacts, not another stage's.
        std::fs::write(first.join("kmeans_groups.parquet"), b"x").unwrap();
        std::fs::write(first.join("fraud_rules.parquet"), b"x").unwrap();
        std::fs::write(first.join("kmeans_scores/model.json"), b"{}").unwrap();
        assert_eq!(next.previous_output("kmeans_groups"), Some(first.join("kmeans_groups.parquet")));
        assert_eq!(next.previous_output("fraud_rules"), None, "another stage's output");
        assert_eq!(next.previous_output(kmeans_peers::ID), None, "state goes by previous_state");
        assert_eq!(next.previous_output("kmeans_scores"), None, "not written by that run");
        assert_eq!(next.previous_artifact("model.json"), Some(first.join("kmeans_scores/model.json")));
        assert_eq!(next.previous_artifact("metrics.json"), None);
        next.previous_run = None;
        assert_eq!((next.previous_output("kmeans_groups"), next.previous_artifact("model.json")), (None, None));
    }
}
