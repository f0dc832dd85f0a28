//! `mirador synth`: writes a seeded synthetic customs world (the bundled sample data, or a large
//! world for benchmarks).

use std::path::PathBuf;

use clap::Args;

/// Arguments of `mirador synth`.
#[derive(Args)]
pub(crate) struct SynthArgs {
    /// Seed; the same seed gives the same world.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of declarations (default: the sample size).
    #[arg(long)]
    declarations: Option<usize>,
    /// Number of months.
    #[arg(long)]
    months: Option<u32>,
    /// Output directory.
    #[arg(long, default_value = "sample_data")]
    out: PathBuf,
    /// File format: csv or parquet.
    #[arg(long, default_value = "csv")]
    format: String,
    /// Write the declarations as one parquet file per month, `declarations/<YYYY-MM>.parquet`
    /// (what a nightly run with carried state reads one period at a time). Implies parquet.
    #[arg(long)]
    by_month: bool,
    /// Move part of the planted fraud to new importers declaring new goods from this month
    /// (`YYYY-MM`): the shifting world a backtest replays (`shifted` in the truth says which items).
    #[arg(long, value_name = "YYYY-MM")]
    shift_period: Option<String>,
    /// With --shift-period: the share of the planted fraud that moves.
    #[arg(long, default_value_t = 0.5, requires = "shift_period")]
    shift_share: f64,
}

pub(crate) fn synth(args: &SynthArgs) -> anyhow::Result<()> {
    let mut params = mirador_synth::SynthParams { seed: args.seed, ..Default::default() };
    if let Some(n) = args.declarations {
        params.declarations = n;
    }
    if let Some(m) = args.months {
        params.months = m;
    }
    if let Some(period) = &args.shift_period {
        params.shift = Some(mirador_synth::ShiftParams { period: period.clone(), share: args.shift_share });
        params.check().map_err(|e| super::UserError(e.to_string()))?;
    }
    let format: mirador_synth::Format = args.format.parse().map_err(|e: String| super::UserError(e))?;
    let summary = if args.by_month {
        mirador_synth::write_world_by_month(&params, &args.out)?
    } else {
        mirador_synth::write_world(&params, &args.out, format)?
    };
    println!("{summary}");
    Ok(())
}
