//! `mirador export`: copies of a committed run's row-level datasets for other engines.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::commands::print_all;

/// How the copies are laid out.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Layout {
    /// `<dataset>/period=YYYY-MM/part-00000.parquet`, the key in the paths only: read as they are
    /// by DataFusion, Spark, DuckDB and polars.
    Hive,
}

/// Arguments of `mirador export`.
#[derive(Args)]
pub(crate) struct ExportArgs {
    /// A committed run (`reports/nightly/latest`, a run directory), or an output root whose
    /// latest run is taken (`reports/nightly`).
    run: PathBuf,
    /// Layout of the copies.
    #[arg(long, value_enum, default_value = "hive")]
    layout: Layout,
    /// Directory to write; absent, empty or an earlier export (replaced whole, atomically).
    #[arg(long)]
    out: PathBuf,
    /// Only these row-level datasets (default: every one the run holds).
    #[arg(long, value_delimiter = ',')]
    datasets: Vec<String>,
    /// Date format of the declarations source, for the periods of quarantined rows (default
    /// `%Y-%m-%d`; the pipeline's `date-format`).
    #[arg(long)]
    date_format: Option<String>,
    /// The declarations source's header of the date, for the same (default `date`; the header
    /// the pipeline's `columns` maps to `date`).
    #[arg(long)]
    date_field: Option<String>,
}

pub(crate) fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let Layout::Hive = args.layout;
    let opts = mirador_export::ExportOptions {
        datasets: args.datasets.clone(),
        date_format: args.date_format.clone(),
        date_field: args.date_field.clone(),
        slice_rows: None,
    };
    let done = mirador_export::export_hive(&args.run, &args.out, &opts)?;
    let mut text = String::new();
    let _ = writeln!(text, "run {} ({})", done.manifest.run_id, done.run_dir.display());
    let _ = writeln!(text, "{:<16} {:>10} {:>10} {:>11} {:>14}", "dataset", "rows in", "written", "partitions", "without period");
    for d in &done.manifest.datasets {
        let _ = writeln!(
            text,
            "{:<16} {:>10} {:>10} {:>11} {:>14}",
            d.dataset,
            d.rows_in,
            d.rows_written,
            d.files.len(),
            d.rows_without_period
        );
    }
    if done.cleaned > 0 {
        let _ = writeln!(text, "removed the remains of {} interrupted export(s) beside {}", done.cleaned, args.out.display());
    }
    if !done.absent.is_empty() {
        let _ = writeln!(text, "not in the run: {}", done.absent.join(", "));
    }
    let verb = if done.unchanged { "unchanged (the same export is in place)" } else { "written" };
    let _ = writeln!(text, "{} -> {verb}; manifest {}", args.out.display(), mirador_export::MANIFEST);
    print_all(&text)
}
