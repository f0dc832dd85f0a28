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
    /// An engine address that is not `df://HOST:PORT` or `ballista://HOST:PORT`.
    #[error("engine address {0:?}: expected ballista://HOST:PORT (or df://HOST:PORT)")]
    Address(String),
}

/// A result of this crate.
pub type Result<T> = std::result::Result<T, EngineError>;

/// How many times [`Engine::write_parquet`] runs a query whose result could not be read.
pub const ATTEMPTS: u32 = 3;

/// Where [`Engine::stream_to_parquet`] failed: here (planning the query, or writing the file),
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
}

impl Engine {
    /// A session on the cluster whose scheduler is at `address` (`ballista://HOST:PORT` or
    /// `df://HOST:PORT`). Nothing is sent until a plan runs.
    pub fn connect(address: &str) -> Result<Engine> {
        let (host, port) = scheduler_of(address)?;
        let runtime = runtime()?;
        // The static planner: Ballista 55's adaptive one does not recover from a lost executor
        // (a job whose executor is killed never completes; apache/datafusion-ballista#1601).
        let config = SessionConfig::new_with_ballista().with_ballista_adaptive_query_planner(false);
        let state = functions::session_state(config)?;
        let url = format!("df://{host}:{port}");
        let ctx = runtime.block_on(SessionContext::remote_with_state(&url, state))?;
        // Ballista's upgrade of the state replaces its scalar functions with its defaults.
        for f in functions::scalar_functions() {
            ctx.register_udf(f.as_ref().clone());
        }
        Ok(Engine { runtime, ctx, location: format!("ballista://{host}:{port}") })
    }

    /// A session in this process, with the same functions: what a cluster's results are checked
    /// against, and how other engines' view of Mirador's files is tested.
    pub fn local() -> Result<Engine> {
        let runtime = runtime()?;
        let state = functions::session_state(SessionConfig::new())?;
        Ok(Engine { runtime, ctx: SessionContext::new_with_state(state), location: "local".into() })
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

    /// Runs `query` and writes its result as one parquet file, `part-00000.parquet`, into the new
    /// directory `dir`, batch by batch as the result streams in (a directory beside it until the
    /// file is complete, then renamed into place). Returns the rows written.
    ///
    /// The executors do not write the files themselves: a task re-run after its executor died
    /// would write its rows a second time beside the first ones (measured: 23.9M rows instead
    /// of 10M; `docs/scale-out.md`), while the result the client streams is each partition's once.
    /// On a cluster, a failure once the plan runs (an executor holding a part of the result died
    /// before the client fetched it: Ballista does not fetch it again) runs the query again, at
    /// most [`ATTEMPTS`] times in all; the partial file is thrown away each time.
    pub fn write_parquet(&self, query: &str, dir: &Path) -> Result<u64> {
        if dir.exists() {
            return Err(EngineError::Cluster(format!("{}: already exists; the engine writes into a new directory", dir.display())));
        }
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let partial = dir.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        let mut attempt = 1;
        loop {
            if partial.exists() {
                std::fs::remove_dir_all(&partial)?;
            }
            std::fs::create_dir_all(&partial)?;
            match self.stream_to_parquet(query, &partial.join("part-00000.parquet")) {
                Ok(rows) => {
                    std::fs::rename(&partial, dir)?;
                    return Ok(rows);
                }
                Err(Streamed::Running(e)) if self.location != "local" && attempt < ATTEMPTS => {
                    tracing::warn!(attempt, error = %e, "The cluster's result could not be read; running the query again.");
                    attempt += 1;
                }
                Err(Streamed::Here(e) | Streamed::Running(e)) => {
                    let _ = std::fs::remove_dir_all(&partial);
                    return Err(e);
                }
            }
        }
    }

    /// Streams `query`'s result into the parquet file `path` (synced).
    fn stream_to_parquet(&self, query: &str, path: &Path) -> std::result::Result<u64, Streamed> {
        use futures::StreamExt as _;
        let here = |e: EngineError| Streamed::Here(e);
        let running = |e: EngineError| Streamed::Running(e);
        self.runtime.block_on(async {
            let df = self.ctx.sql(query).await.map_err(|e| here(e.into()))?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let mut stream = df.execute_stream().await.map_err(|e| running(e.into()))?;
            let file = std::fs::File::create(path).map_err(|e| here(e.into()))?;
            let props = datafusion::parquet::file::properties::WriterProperties::builder()
                .set_compression(datafusion::parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| here(e.into()))?;
            let mut rows = 0;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| running(e.into()))?;
                rows += batch.num_rows() as u64;
                writer.write(&batch).map_err(|e| here(e.into()))?;
            }
            writer.close().map_err(|e| here(e.into()))?;
            std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| here(e.into()))?;
            Ok(rows)
        })
    }

    /// Runs `query` and collects its result.
    pub fn sql(&self, query: &str) -> Result<Vec<RecordBatch>> {
        self.runtime.block_on(async {
            let df = self.ctx.sql(query).await?;
            Ok(df.collect().await?)
        })
    }
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

    #[test]
    fn engine_addresses_name_a_host_and_a_port() {
        assert_eq!(scheduler_of("ballista://127.0.0.1:50050").unwrap(), ("127.0.0.1".into(), 50050));
        assert_eq!(scheduler_of("df://scheduler.local:7000/").unwrap(), ("scheduler.local".into(), 7000));
        for bad in ["127.0.0.1:50050", "ballista://127.0.0.1", "ballista://:50050", "ballista://h:port", "http://h:1"] {
            assert!(matches!(scheduler_of(bad), Err(EngineError::Address(_))), "{bad}");
        }
    }
}
