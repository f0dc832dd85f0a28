//! `mirador cluster`: a Ballista cluster of Mirador processes (`up`: a scheduler and N executors
//! on this machine; `scheduler` and `executor`: one process each, what `up` starts and what runs
//! on each machine of a larger cluster).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use mirador_engine::cluster::{self, ExecutorOptions, LOCAL_HOST, LocalCluster, LocalClusterOptions};

/// Arguments of `mirador cluster`.
#[derive(Args)]
pub(crate) struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Start a scheduler and executors on 127.0.0.1 and serve until stopped (Ctrl-C).
    Up {
        /// Executors to start.
        #[arg(long, default_value_t = 2)]
        executors: usize,
        /// The scheduler's port.
        #[arg(long, default_value_t = 50050)]
        port: u16,
        /// Tasks each executor runs at once (default: one per core).
        #[arg(long, default_value_t = 0)]
        vcores: usize,
        /// The executors' scratch directories go under it (default: a directory under the
        /// system's temporary directory).
        #[arg(long)]
        work_dir: Option<PathBuf>,
    },
    /// Serve as the cluster's scheduler.
    Scheduler {
        /// The address to bind and announce.
        #[arg(long, default_value = LOCAL_HOST)]
        host: String,
        /// The port.
        #[arg(long, default_value_t = 50050)]
        port: u16,
    },
    /// Serve as one of the cluster's executors.
    Executor {
        /// The address to bind and announce.
        #[arg(long, default_value = LOCAL_HOST)]
        host: String,
        /// The Arrow Flight port (results are fetched there).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// The gRPC port (tasks arrive there).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// The scheduler's address.
        #[arg(long, default_value = LOCAL_HOST)]
        scheduler_host: String,
        /// The scheduler's port.
        #[arg(long, default_value_t = 50050)]
        scheduler_port: u16,
        /// Tasks run at once (default: one per core).
        #[arg(long, default_value_t = 0)]
        vcores: usize,
        /// Scratch directory (shuffle files).
        #[arg(long)]
        work_dir: PathBuf,
    },
}

pub(crate) fn cluster(args: &ClusterArgs) -> anyhow::Result<()> {
    match &args.command {
        ClusterCommand::Up { executors, port, vcores, work_dir } => {
            let options = LocalClusterOptions {
                program: std::env::current_exe()?,
                executors: *executors,
                port: *port,
                vcores: *vcores,
                work_dir: work_dir.clone().unwrap_or_else(cluster::default_work_dir),
            };
            let mut up = LocalCluster::up(&options)?;
            println!("scheduler: {}", up.address());
            println!("executors: {} (pids {:?}), scratch under {}", executors, up.executor_pids(), options.work_dir.display());
            println!("serving until stopped (Ctrl-C)");
            up.wait(|ended| eprintln!("warning: {ended}"))?;
            Ok(())
        }
        ClusterCommand::Scheduler { host, port } => {
            stop_with_parent();
            Ok(cluster::serve_scheduler(host, *port)?)
        }
        ClusterCommand::Executor { host, port, grpc_port, scheduler_host, scheduler_port, vcores, work_dir } => {
            stop_with_parent();
            let options = ExecutorOptions {
                host: host.clone(),
                port: *port,
                grpc_port: *grpc_port,
                scheduler_host: scheduler_host.clone(),
                scheduler_port: *scheduler_port,
                vcores: *vcores,
                work_dir: work_dir.clone(),
            };
            Ok(cluster::serve_executor(&options)?)
        }
    }
}

/// A process started by `mirador cluster up` (or a test) ends with it, even when that one is
/// killed: no orphan keeps the cluster's ports.
fn stop_with_parent() {
    #[cfg(target_os = "linux")]
    {
        let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    }
}
