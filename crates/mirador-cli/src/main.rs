//! `mirador`: the command-line entry point of the Mirador customs analytics pipeline.
//!
//! ```text
//! mirador run pipelines/nightly.toml          # the nightly run on the bundled sample data
//! mirador check pipelines/nightly.toml        # validate a pipeline file without running it
//! mirador explain revenue_gap                 # what a stage reads and writes
//! mirador schemas fraud_scores                # a dataset's declared columns
//! mirador synth --seed 42 --out sample_data   # regenerate the synthetic sample world
//! mirador backtest pipelines/kcs.toml --from 2020-07 --to 2021-06 --budget 5%
//! mirador export reports/nightly/latest --layout hive --out exports/nightly
//! ```
//!
//! `main` is thin: it parses arguments, installs logging, dispatches to `commands::*` and maps the
//! kind of failure to an exit code: 0 ok, 1 data or configuration error, 2 internal error,
//! 75 another run holds the output directory's lock.

mod commands;
mod registry;
mod settings;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// mimalloc instead of the system allocator: ingest and scoring allocate many small strings on
/// every thread, where glibc's malloc spends its time in contention and fragments the heap. It is
/// built without transparent huge pages (the `no_thp` feature): with them, every fresh 2 MiB page
/// was zeroed by the kernel as memory went back and forth, which took a quarter of a 1M run's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tracing_subscriber::EnvFilter;

/// Mirador: mirror-trade analysis, revenue-gap estimation, unit-price clustering and fraud
/// scoring for customs administrations, ending in a ranked list of importers for post-clearance
/// audit.
#[derive(Parser)]
#[command(name = "mirador", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: GlobalArgs,
}

#[derive(Args)]
struct GlobalArgs {
    /// More logging (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline (all of it, or part with --only/--from).
    Run(RunArgs),
    /// Check a pipeline file against the stages' contracts without running anything.
    Check {
        /// Pipeline file.
        pipeline: PathBuf,
    },
    /// List the stages Mirador knows.
    List,
    /// Print what a stage reads, writes and does.
    Explain {
        /// Stage name.
        stage: String,
    },
    /// Print the catalog: every dataset, the stage that writes it and its columns.
    Schemas {
        /// Only this dataset.
        dataset: Option<String>,
        /// Write `<id>.schema.json` for every dataset into this directory instead (how
        /// `docs/schemas/` is made).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the resolved settings of a run (defaults, pipeline file, environment, flags).
    ShowSettings(RunArgs),
    /// Generate a seeded synthetic customs world (declarations, mirror flows, tariffs, FX, truth).
    Synth(commands::synth::SynthArgs),
    /// Score declarations with a saved fraud model, without retraining.
    Score(commands::score::ScoreArgs),
    /// Replay the history week by week under each inspection policy (what each would have found).
    Backtest(commands::backtest::BacktestArgs),
    /// Copy a committed run's row-level datasets, hive-partitioned by period, for other engines.
    Export(commands::export::ExportArgs),
    /// Run a Ballista cluster of Mirador processes: `up` starts a scheduler and executors here.
    Cluster(commands::cluster::ClusterArgs),
}

/// Arguments of `mirador run`.
#[derive(Args, Clone)]
pub(crate) struct RunArgs {
    /// Pipeline file, e.g. pipelines/nightly.toml.
    pipeline: PathBuf,
    /// Output root [env: MIRADOR_OUT] (default: the pipeline's `out`, else reports/<name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only these stages, reusing the other stages' outputs from the latest run.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Run this stage and everything downstream of it, reusing the rest from the latest run.
    #[arg(long, conflicts_with = "only")]
    from: Option<String>,
    /// Re-run even when a run with the same inputs, parameters and code is committed.
    #[arg(long)]
    force: bool,
    /// Keep only the top N importers in the auditee list.
    #[arg(long)]
    top: Option<i64>,
    /// Worker threads [env: MIRADOR_THREADS] (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Run as of the end of a past month, or backfill a range of months one run each
    /// (`2023-11` or `2023-01..2023-03`): each period sees only declarations dated up to its
    /// end, its auditee list covers that month, and its runs land in `<out>/periods/<YYYY-MM>/`.
    #[arg(long)]
    period: Option<String>,
    /// Read a source from these files instead of the pipeline's (`ID=PATH`, repeatable; several
    /// for one id are read together), e.g. `--source declarations=incoming/2024-03-01.csv`: how
    /// a scheduler hands a carried-state pipeline the night's new declarations. Paths are relative
    /// to the working directory.
    #[arg(long = "source", value_name = "ID=PATH")]
    sources: Vec<String>,
    /// Run the stages that can on the Ballista cluster whose scheduler is at this address
    /// (`ballista://HOST:PORT`, as `mirador cluster up` prints it) [env: MIRADOR_ENGINE]. The
    /// others run here, and the log says why. The cluster reads the run's files by their paths:
    /// its executors must see the output root where this process does.
    #[arg(long)]
    engine: Option<String>,
}

fn init_logging(global: &GlobalArgs) {
    let default = if global.quiet {
        "error"
    } else {
        match global.verbose {
            0 => "warn,mirador=info",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            default
                .replace("mirador=info", "mirador::=info,mirador_engine=info,mirador_pipeline=info,mirador_ingest=info,mirador_model=info"),
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global);
    // Fault injection for the crash tests (see mirador_io::crash_in_write_of).
    // (MIRADOR_FAIL_AFTER and MIRADOR_CRASH_AT, read into the run options, are the others.)
    if let Ok(name) = std::env::var("MIRADOR_CRASH_IN_WRITE") {
        mirador_io::crash_in_write_of(&name);
    }
    let result = match cli.command {
        Command::Run(args) => commands::run::run(&args, !cli.global.quiet),
        Command::Check { pipeline } => commands::check::check(&pipeline),
        Command::List => commands::check::list(),
        Command::Explain { stage } => commands::check::explain(&stage),
        Command::Schemas { dataset, out } => commands::check::schemas(dataset.as_deref(), out.as_deref()),
        Command::ShowSettings(args) => commands::run::show_settings(&args),
        Command::Synth(args) => commands::synth::synth(&args),
        Command::Score(args) => commands::score::score(&args),
        Command::Backtest(args) => commands::backtest::backtest(&args),
        Command::Export(args) => commands::export::export(&args),
        Command::Cluster(args) => commands::cluster::cluster(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(commands::exit_code(&err))
        }
    }
}
