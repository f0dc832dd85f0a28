//! Mirador on Apache DataFusion Ballista, the engine of full rebuilds that outgrow one machine.
//!
//! - [`cluster`]: a scheduler and executors as processes of the `mirador` binary
//!   (`mirador cluster up`), every one of them carrying Mirador's functions;
//! - [`functions`]: Mirador's per-row logic as DataFusion functions, registered on the client,
//!   the scheduler and the executors alike;
//! - [`Engine`]: a session on a cluster (`df://HOST:PORT`, `ballista://HOST:PORT`) or in this
//!   process, with the plans that run there ([`plans`]);
//! - [`stages`]: the stages whose map work runs on the engine (`mirador run --engine`);
//! - [`compare`]: whether two results hold the same rows (text and integers exactly, floats to a
//!   relative tolerance), which is how a cluster's outputs are checked against a local run's.
//!
//! Polars stays Mirador's local engine; arrow-rs is the interchange with this one.

pub mod cluster;
pub mod compare;
pub mod functions;
pub mod plans;
pub mod stages;

/// The arrow-rs the engine's results are in.
pub use datafusion::arrow;

use std::path::Path;
use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::ListingOptions;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::{ParquetReadOptions, SessionConfig};

/// Why the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A plan failed, or could not be sent to the cluster.
    #[error("the engine failed: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    /// A result could not be written as parquet.
    #[error("writing the engine's result: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    /// Results could not be compared or converted.
    #[error("the engine's results: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// A cluster process failed.
    #[error("the cluster failed: {0}")]
    Ballista(#[from] ballista_core::error::BallistaError),
    /// A file, a port or a process could not be used.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The cluster did not come up, or a process of it ended.
    #[error("{0}")]
    Cluster(String),
    /// A result that is not what the plan promises (a row missing, repeated or unknown).
    #[error("the engine's result: {0}")]
    Result(String),
    /// An engine address that is not `df://HOST:PORT` or `ballista://HOST:PORT`.
    #[error("engine address {0:?}: expected ballista://HOST:PORT (or df://HOST:PORT)")]
    Address(String),
}

/// A result of this crate.
pub type Result<T> = std::result::Result<T, EngineError>;

/// How many times [`Engine::stream`] runs a query whose result could not be read.
pub const ATTEMPTS: u32 = 3;

/// What [`Engine::stream`] hands its consumer: an attempt begins (drop what earlier attempts
/// handed), or a batch of the result.
pub enum Part<'a> {
    /// The query runs (again): what was handed before is not part of the result.
    Start,
    /// The next batch of the result.
    Batch(&'a RecordBatch),
}

/// Where an attempt of [`Engine::stream`] failed: here (planning the query, or the consumer),
/// which running it again would not mend; or while the plan ran and its result streamed in.
enum Streamed {
    Here(EngineError),
    Running(EngineError),
}

/// A DataFusion session with Mirador's functions: on a Ballista cluster, whose executors run the
/// plans, or in this process. Calls block until the plan's result is back.
pub struct Engine {
    runtime: tokio::runtime::Runtime,
    ctx: SessionContext,
    /// Where plans run: the scheduler's address, or `local`.
    location: String,
    /// How long an attempt of [`Engine::stream`] may go without a batch of its result.
    stall_limit: Option<std::time::Duration>,
}

/// How long, by default, a query on a cluster may go without a batch of its result before the
/// attempt is abandoned and the query run again ([`Engine::with_stall_limit`]).
pub const STALL_LIMIT: std::time::Duration = std::time::Duration::from_mins(10);

impl Engine {
    /// A session on the cluster whose scheduler is at `address` (`ballista://HOST:PORT` or
    /// `df://HOST:PORT`). Nothing is sent until a plan runs.
    pub fn connect(address: &str) -> Result<Engine> {
        let (host, port) = scheduler_of(address)?;
        let runtime = runtime()?;
        // The static planner: Ballista 55's adaptive one does not recover from a lost executor
        // (a job whose executor is killed never completes; apache/datafusion-ballista#1601).
        let config = plan_config(SessionConfig::new_with_ballista().with_ballista_adaptive_query_planner(false));
        let state = functions::session_state(config)?;
        let url = format!("df://{host}:{port}");
        let ctx = runtime.block_on(SessionContext::remote_with_state(&url, state))?;
        // Ballista's upgrade of the state replaces its scalar functions with its defaults.
        for f in functions::scalar_functions() {
            ctx.register_udf(f.as_ref().clone());
        }
        Ok(Engine { runtime, ctx, location: format!("ballista://{host}:{port}"), stall_limit: Some(STALL_LIMIT) })
    }

    /// A session in this process, with the same functions: what a cluster's results are checked
    /// against, and how other engines' view of Mirador's files is tested.
    pub fn local() -> Result<Engine> {
        let runtime = runtime()?;
        let state = functions::session_state(plan_config(SessionConfig::new()))?;
        Ok(Engine { runtime, ctx: SessionContext::new_with_state(state), location: "local".into(), stall_limit: None })
    }

    /// Sets how long a query may go without a batch of its result (on a cluster, [`STALL_LIMIT`]
    /// by default; in this process, no limit). Longer than the query's quiet part, before its
    /// last stage sends anything. An attempt that stalls is abandoned and counts as failed, as
    /// when Ballista 55 leaves a job waiting forever after an executor died during its last stage
    /// (`docs/scale-out.md`).
    #[must_use]
    pub fn with_stall_limit(mut self, limit: std::time::Duration) -> Self {
        self.stall_limit = Some(limit);
        self
    }

    /// Where plans run: `ballista://HOST:PORT`, or `local`.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Registers the parquet file `path`, or every `*.parquet` file of directory `path`, as table
    /// `name` (in place of an earlier one).
    pub fn register_parquet(&self, name: &str, path: &Path) -> Result<()> {
        let mut text = text_of(path)?.to_owned();
        if path.is_dir() && !text.ends_with('/') {
            text.push('/');
        }
        self.ctx.deregister_table(name)?;
        self.runtime.block_on(self.ctx.register_parquet(name, &text, ParquetReadOptions::default()))?;
        Ok(())
    }

    /// Registers a dataset of a hive-partitioned export (`<export>/<dataset>/period=.../*.parquet`,
    /// `mirador export --layout hive`) as table `name` (in place of an earlier one), with `period`
    /// read from the paths as text.
    pub fn register_partitioned(&self, name: &str, dir: &Path) -> Result<()> {
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(vec![(mirador_schema::catalog::PARTITION_KEY.to_owned(), DataType::Utf8)]);
        let path = format!("{}/", text_of(dir)?.trim_end_matches('/'));
        self.ctx.deregister_table(name)?;
        self.runtime.block_on(self.ctx.register_listing_table(name, path, options, None, None))?;
        Ok(())
    }

    /// Runs `query` and hands its result to `take` batch by batch as it streams in, after a
    /// [`Part::Start`]. Returns the rows handed.
    ///
    /// On a cluster, a failure once the plan runs (an executor holding a part of the result died
    /// before the client fetched it: Ballista does not fetch it again) runs the query again, at
    /// most [`ATTEMPTS`] times in all, each attempt beginning with a [`Part::Start`]. An error
    /// of `take` ends it.
    pub fn stream(&self, query: &str, mut take: impl FnMut(Part<'_>) -> Result<()>) -> Result<u64> {
        let mut attempt = 1;
        loop {
            match self.stream_once(query, &mut take) {
                Ok(rows) => return Ok(rows),
                Err(Streamed::Running(e)) if self.location != "local" && attempt < ATTEMPTS => {
                    tracing::warn!(attempt, error = %e, "The cluster's result could not be read; running the query again.");
                    attempt += 1;
                }
                Err(Streamed::Here(e) | Streamed::Running(e)) => return Err(e),
            }
        }
    }

    /// One attempt of [`Engine::stream`].
    fn stream_once(&self, query: &str, take: &mut impl FnMut(Part<'_>) -> Result<()>) -> std::result::Result<u64, Streamed> {
        use futures::StreamExt as _;
        self.runtime.block_on(async {
            let df = self.ctx.sql(query).await.map_err(|e| Streamed::Here(e.into()))?;
            let mut stream = df.execute_stream().await.map_err(|e| Streamed::Running(e.into()))?;
            take(Part::Start).map_err(Streamed::Here)?;
            let mut rows = 0;
            loop {
                let next = match self.stall_limit {
                    Some(limit) => tokio::time::timeout(limit, stream.next()).await.map_err(|_| {
                        Streamed::Running(EngineError::Cluster(format!(
                            "no part of the result came in {limit:?}: the job stalled (Ballista 55 can stall every job after an \
                             executor died during one: restart the cluster)"
                        )))
                    })?,
                    None => stream.next().await,
                };
                let Some(batch) = next else { break };
                let batch = batch.map_err(|e| Streamed::Running(e.into()))?;
                rows += batch.num_rows() as u64;
                take(Part::Batch(&batch)).map_err(Streamed::Here)?;
            }
            Ok(rows)
        })
    }

    /// Runs `query` and writes its result as one parquet file, `part-00000.parquet`, into the new
    /// directory `dir`, batch by batch as the result streams in ([`Engine::stream`]: each attempt
    /// starts the file again), in a directory beside it until the file is complete and synced,
    /// then renamed into place. Returns the rows written.
    ///
    /// The executors do not write the files themselves: a task re-run after its executor died
    /// would write its rows a second time beside the first ones (measured: 23.9M rows instead
    /// of 10M; `docs/scale-out.md`), while the result the client streams is each partition's once.
    pub fn write_parquet(&self, query: &str, dir: &Path) -> Result<u64> {
        use datafusion::parquet::arrow::ArrowWriter;
        use datafusion::parquet::basic::Compression;
        use datafusion::parquet::file::properties::WriterProperties;
        if dir.exists() {
            return Err(EngineError::Cluster(format!("{}: already exists; the engine writes into a new directory", dir.display())));
        }
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let partial = dir.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let file = partial.join("part-00000.parquet");
        let mut writer: Option<ArrowWriter<std::fs::File>> = None;
        let written = self.stream(query, |part| {
            match part {
                Part::Start => {
                    writer = None;
                    if partial.exists() {
                        std::fs::remove_dir_all(&partial)?;
                    }
                    std::fs::create_dir_all(&partial)?;
                }
                Part::Batch(batch) => {
                    let w = match &mut writer {
                        Some(w) => w,
                        None => {
                            let props = WriterProperties::builder()
                                .set_compression(Compression::ZSTD(datafusion::parquet::basic::ZstdLevel::default()))
                                .build();
                            writer.insert(ArrowWriter::try_new(std::fs::File::create(&file)?, batch.schema(), Some(props))?)
                        }
                    };
                    w.write(batch)?;
                }
            }
            Ok(())
        });
        let finished = written.and_then(|rows| {
            match writer.take() {
                Some(w) => {
                    w.close()?;
                }
                // No batch: an empty result still has its file, with the plan's schema.
                None => {
                    let schema = self.runtime.block_on(self.ctx.sql(query))?.schema().as_arrow().clone();
                    ArrowWriter::try_new(std::fs::File::create(&file)?, Arc::new(schema), None)?.close()?;
                }
            }
            std::fs::File::open(&file)?.sync_all()?;
            std::fs::rename(&partial, dir)?;
            Ok(rows)
        });
        if finished.is_err() {
            let _ = std::fs::remove_dir_all(&partial);
        }
        finished
    }

    /// Runs `query` and collects its result.
    pub fn sql(&self, query: &str) -> Result<Vec<RecordBatch>> {
        self.runtime.block_on(async {
            let df = self.ctx.sql(query).await?;
            Ok(df.collect().await?)
        })
    }
}

/// How Mirador's plans are planned, on a cluster and here. Joins are not repartitioned: the
/// small side of each (the cells, the cell keys' sums: thousands of rows) is built whole and every
/// declaration streams past it, where a repartitioned join would shuffle every declaration by key
/// and hold a partition of them (measured in `docs/scale-out.md`).
fn plan_config(config: SessionConfig) -> SessionConfig {
    config.with_repartition_joins(false)
}

/// The host and port of an engine address (`ballista://HOST:PORT` or `df://HOST:PORT`).
pub fn scheduler_of(address: &str) -> Result<(String, u16)> {
    let bad = || EngineError::Address(address.to_owned());
    let rest = address.strip_prefix("ballista://").or_else(|| address.strip_prefix("df://")).ok_or_else(bad)?;
    let (host, port) = rest.trim_end_matches('/').rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn text_of(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| EngineError::Cluster(format!("{}: not UTF-8; the engine takes UTF-8 paths", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query whose result does not come within the stall limit fails, saying so (in this
    /// process it is not run again).
    #[test]
    fn a_query_slower_than_the_stall_limit_fails_as_stalled() {
        let engine = Engine::local().unwrap().with_stall_limit(std::time::Duration::from_millis(1));
        let query = "SELECT sum(value * value) AS s FROM generate_series(1, 300000000)";
        let error = engine.stream(query, |_| Ok(())).unwrap_err().to_string();
        assert!(error.contains("no part of the result came in 1ms: the job stalled"), "{error}");
        let engine = engine.with_stall_limit(std::time::Duration::from_mins(10));
        assert_eq!(engine.stream("SELECT 1 AS one", |_| Ok(())).unwrap(), 1);
    }

    #[test]
    fn engine_addresses_name_a_host_and_a_port() {
        assert_eq!(scheduler_of("ballista://127.0.0.1:50050").unwrap(), ("127.0.0.1".into(), 50050));
        assert_eq!(scheduler_of("df://scheduler.local:7000/").unwrap(), ("scheduler.local".into(), 7000));
        for bad in ["127.0.0.1:50050", "ballista://127.0.0.1", "ballista://:50050", "ballista://h:port", "http://h:1"] {
            assert!(matches!(scheduler_of(bad), Err(EngineError::Address(_))), "{bad}");
        }
    }
}
