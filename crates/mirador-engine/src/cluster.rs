//! A Ballista cluster of Mirador processes: the scheduler and the executors are the `mirador`
//! binary (`mirador cluster scheduler`, `mirador cluster executor`), so that every process of the
//! cluster carries Mirador's functions ([`crate::functions`]).
//!
//! [`LocalCluster`] starts one scheduler and N executors on 127.0.0.1 (`mirador cluster up`):
//! for tests, and for trying a rebuild on one machine. On several machines the same two
//! subcommands run one per machine (`docs/scale-out.md`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;

use crate::{Engine, EngineError, Result, functions};

/// The address every process of a local cluster binds and announces.
pub const LOCAL_HOST: &str = "127.0.0.1";

/// How long [`LocalCluster::up`] waits for the cluster to run a first plan.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How often an executor tells the scheduler it is alive (Ballista's default is 60 s).
const HEARTBEAT_SECONDS: u64 = 5;

/// How long the scheduler waits for an executor's heartbeat before it counts the executor as
/// dead and runs its tasks elsewhere (Ballista's default is 180 s; a few heartbeats here).
const EXECUTOR_TIMEOUT_SECONDS: u64 = 30;

/// Runs a Ballista scheduler on `host:port`, planning with Mirador's functions, until the
/// process ends.
pub fn serve_scheduler(host: &str, port: u16) -> Result<()> {
    let address: SocketAddr =
        format!("{host}:{port}").parse().map_err(|e| EngineError::Cluster(format!("scheduler address {host}:{port}: {e}")))?;
    let config = SchedulerConfig {
        bind_host: host.to_owned(),
        external_host: host.to_owned(),
        bind_port: port,
        executor_timeout_seconds: EXECUTOR_TIMEOUT_SECONDS,
        expire_dead_executor_interval_seconds: HEARTBEAT_SECONDS,
        override_session_builder: Some(Arc::new(functions::session_state)),
        ..SchedulerConfig::default()
    };
    crate::runtime()?.block_on(async move {
        let cluster = BallistaCluster::new_from_config(&config).await?;
        start_server(cluster, address, Arc::new(config)).await
    })?;
    Ok(())
}

/// Where an executor serves and which scheduler it works for.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The address it binds and announces.
    pub host: String,
    /// Its Arrow Flight port (where other executors and the client fetch its results).
    pub port: u16,
    /// Its gRPC port (where the scheduler sends it tasks).
    pub grpc_port: u16,
    /// The scheduler's address.
    pub scheduler_host: String,
    /// The scheduler's port.
    pub scheduler_port: u16,
    /// Tasks it runs at once (0: one per core).
    pub vcores: usize,
    /// Its scratch directory (shuffle files).
    pub work_dir: PathBuf,
}

/// Runs a Ballista executor, with Mirador's functions, until the process ends.
pub fn serve_executor(options: &ExecutorOptions) -> Result<()> {
    std::fs::create_dir_all(&options.work_dir)?;
    let config = ExecutorProcessConfig {
        bind_host: options.host.clone(),
        external_host: Some(options.host.clone()),
        port: options.port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler_host.clone(),
        scheduler_port: options.scheduler_port,
        vcores: if options.vcores == 0 { std::thread::available_parallelism().map_or(1, usize::from) } else { options.vcores },
        work_dir: Some(crate::text_of(&options.work_dir)?.to_owned()),
        executor_heartbeat_interval_seconds: HEARTBEAT_SECONDS,
        override_function_registry: Some(Arc::new(functions::registry())),
        ..ExecutorProcessConfig::default()
    };
    crate::runtime()?.block_on(start_executor_process(Arc::new(config)))?;
    Ok(())
}

/// `N` distinct free TCP ports on 127.0.0.1 (the system's picks, all held until all are picked;
/// free when returned, not reserved).
fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N).map(|_| TcpListener::bind((LOCAL_HOST, 0))).collect::<std::io::Result<Vec<_>>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// One scheduler and N executors, each a child process of the `mirador` binary, on 127.0.0.1.
/// Dropping it kills them all.
pub struct LocalCluster {
    scheduler_port: u16,
    /// The scheduler first, then the executors.
    processes: Vec<(String, Child)>,
}

/// What [`LocalCluster::up`] starts.
#[derive(Debug, Clone)]
pub struct LocalClusterOptions {
    /// The `mirador` binary whose `cluster scheduler` and `cluster executor` subcommands serve.
    pub program: PathBuf,
    /// Executors to start.
    pub executors: usize,
    /// The scheduler's port (0: a free one).
    pub port: u16,
    /// Tasks each executor runs at once (0: one per core).
    pub vcores: usize,
    /// The executors' scratch directories go under it (`executor-<i>`).
    pub work_dir: PathBuf,
}

impl LocalCluster {
    /// Starts the scheduler and the executors, and waits until the cluster has run a first plan
    /// on its executors. Fails, stopping what it started, when a process ends early or the
    /// cluster does not answer within two minutes.
    pub fn up(options: &LocalClusterOptions) -> Result<LocalCluster> {
        if options.executors == 0 {
            return Err(EngineError::Cluster("a cluster needs at least one executor".into()));
        }
        let port = if options.port == 0 { free_ports::<1>()?[0] } else { options.port };
        let mut cluster = LocalCluster { scheduler_port: port, processes: Vec::new() };
        let scheduler = Command::new(&options.program)
            .args(["cluster", "scheduler", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        cluster.processes.push(("scheduler".into(), scheduler));
        cluster.wait_for_port(port)?;
        for i in 0..options.executors {
            cluster.start_executor(options, i, port)?;
        }
        cluster.wait_until_it_runs_a_plan()?;
        Ok(cluster)
    }

    /// Starts executor `i` on free ports. A port taken between the pick and the bind (another
    /// process's) ends the executor at once; it is started again on other ports, up to three
    /// times.
    fn start_executor(&mut self, options: &LocalClusterOptions, i: usize, scheduler_port: u16) -> Result<()> {
        let work = options.work_dir.join(format!("executor-{i}"));
        let mut attempt = 0;
        loop {
            let [flight, grpc] = free_ports()?;
            let executor = Command::new(&options.program)
                .args(["cluster", "executor", "--scheduler-port", &scheduler_port.to_string(), "--port", &flight.to_string()])
                .args(["--grpc-port", &grpc.to_string(), "--vcores", &options.vcores.to_string()])
                .arg("--work-dir")
                .arg(&work)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()?;
            self.processes.push((format!("executor {i}"), executor));
            match self.wait_for_port(flight) {
                Err(EngineError::Cluster(_)) if attempt < 2 && self.last_has_ended()? => {
                    self.processes.pop();
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Whether the last process started has ended.
    fn last_has_ended(&mut self) -> Result<bool> {
        match self.processes.last_mut() {
            Some((_, child)) => Ok(child.try_wait()?.is_some()),
            None => Ok(false),
        }
    }

    /// The scheduler's address, `ballista://127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("ballista://{LOCAL_HOST}:{}", self.scheduler_port)
    }

    /// Kills executor `i` (SIGKILL, no goodbye to the scheduler): what a crashed machine does.
    pub fn kill_executor(&mut self, i: usize) -> Result<()> {
        let name = format!("executor {i}");
        let at = self.processes.iter().position(|(n, _)| *n == name).ok_or_else(|| EngineError::Cluster(format!("no {name} to kill")))?;
        let (_, mut child) = self.processes.remove(at);
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// The executors' process ids, in start order.
    pub fn executor_pids(&self) -> Vec<u32> {
        self.processes.iter().skip(1).map(|(_, child)| child.id()).collect()
    }

    /// Serves until the scheduler ends or no executor is left (an error naming it: a cluster's
    /// processes serve until they are stopped). An executor that ends is reported to `ended`
    /// and the others go on: the scheduler runs its tasks on them.
    pub fn wait(&mut self, mut ended: impl FnMut(&str)) -> Result<()> {
        loop {
            while let Some((i, message)) = self.first_ended()? {
                if i == 0 {
                    return Err(EngineError::Cluster(message));
                }
                self.processes.remove(i);
                if self.processes.len() == 1 {
                    return Err(EngineError::Cluster(format!("{message}; no executor is left")));
                }
                ended(&format!("{message}; {} executors left", self.processes.len() - 1));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The first process that has ended (its index in `processes`) and what to say of it.
    fn first_ended(&mut self) -> Result<Option<(usize, String)>> {
        for (i, (name, child)) in self.processes.iter_mut().enumerate() {
            if let Some(status) = child.try_wait()? {
                return Ok(Some((i, format!("the cluster's {name} (pid {}) ended: {status}", child.id()))));
            }
        }
        Ok(None)
    }

    /// Fails when a process has ended.
    fn check_running(&mut self) -> Result<()> {
        match self.first_ended()? {
            Some((_, message)) => Err(EngineError::Cluster(message)),
            None => Ok(()),
        }
    }

    fn wait_for_port(&mut self, port: u16) -> Result<()> {
        let started = Instant::now();
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            self.check_running()?;
            if started.elapsed() > READY_TIMEOUT {
                return Err(EngineError::Cluster(format!("nothing listens on {address} after {} s", READY_TIMEOUT.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// A first plan, run on the executors, is the proof that they have registered.
    fn wait_until_it_runs_a_plan(&mut self) -> Result<()> {
        let started = Instant::now();
        let engine = Engine::connect(&self.address())?;
        loop {
            match engine.sql("SELECT count(*) FROM (VALUES (1), (2), (3)) AS t(x)") {
                Ok(_) => return Ok(()),
                Err(e) if started.elapsed() > READY_TIMEOUT => {
                    return Err(EngineError::Cluster(format!("the cluster ran no plan within {} s: {e}", READY_TIMEOUT.as_secs())));
                }
                Err(_) => {
                    self.check_running()?;
                    std::thread::sleep(Duration::from_millis(250));
                }
            }
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        // Executors first, so that none is left asking a stopped scheduler for work.
        for (_, child) in self.processes.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The prefix of the default scratch directories, followed by the pid of `cluster up`.
const WORK_DIR_PREFIX: &str = "mirador-cluster-";

/// The default scratch directory of a local cluster's executors, in the system's temporary
/// directory. The directories of earlier clusters whose `cluster up` has ended (stopped with
/// Ctrl-C, or killed: it cannot remove its own then) are removed first.
pub fn default_work_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(WORK_DIR_PREFIX)).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid.filter(|&pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()) {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => tracing::info!(pid, dir = %entry.path().display(), "Removed an ended cluster's scratch directory."),
                Err(e) => {
                    tracing::warn!(dir = %entry.path().display(), error = %e, "An ended cluster's scratch directory could not be removed.")
                }
            }
        }
    }
    tmp.join(format!("{WORK_DIR_PREFIX}{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scratch directory of a cluster whose `cluster up` has ended goes; a running one's
    /// stays.
    #[test]
    fn the_default_scratch_directory_sweeps_ended_clusters_only() {
        let tmp = std::env::temp_dir();
        // Above Linux's largest pid: no process has it.
        let ended = tmp.join(format!("{WORK_DIR_PREFIX}4294967"));
        let running = tmp.join(format!("{WORK_DIR_PREFIX}1"));
        for dir in [&ended, &running] {
            std::fs::create_dir_all(dir.join("executor-0")).unwrap();
            std::fs::write(dir.join("executor-0").join("shuffle"), b"x").unwrap();
        }
        let own = default_work_dir();
        assert_eq!(own, tmp.join(format!("{WORK_DIR_PREFIX}{}", std::process::id())));
        assert!(!ended.exists());
        assert!(running.join("executor-0").join("shuffle").exists());
        std::fs::remove_dir_all(&running).unwrap();
    }
}
