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
    /// First month (`YYYY-MM`; default 2023-01). A world must end before today: ingest
    /// quarantines declarations dated in the future.
    #[arg(long, value_name = "YYYY-MM")]
    start_period: Option<String>,
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
    /// A yearly cycle in the monthly trade volume, of this amplitude (e.g. 0.3: November 30 %
    /// above the average month, May 30 % below); for the revenue forecasts, with --months 36 or more.
    #[arg(long, value_name = "AMPLITUDE")]
    seasonality: Option<f64>,
    /// Plant a revenue leak: from --leak-period, this HS chapter's goods are declared at a fraction
    /// of their value while the partners' exports of them do not fall (the forecasts' ground truth,
    /// recorded in world.json).
    #[arg(long, value_name = "CHAPTER", requires = "leak_period")]
    leak_chapter: Option<String>,
    /// With --leak-chapter: the leak's first month (`YYYY-MM`).
    #[arg(long, value_name = "YYYY-MM", requires = "leak_chapter")]
    leak_period: Option<String>,
    /// With --leak-chapter: the share of the declared value (and duty) the chapter loses.
    #[arg(long, default_value_t = 0.4, requires = "leak_chapter")]
    leak_depth: f64,
}

pub(crate) fn synth(args: &SynthArgs) -> anyhow::Result<()> {
    let mut params = mirador_synth::SynthParams { seed: args.seed, ..Default::default() };
    if let Some(n) = args.declarations {
        params.declarations = n;
    }
    if let Some(m) = args.months {
        params.months = m;
    }
    if let Some(p) = &args.start_period {
        params.start_period.clone_from(p);
    }
    if let Some(period) = &args.shift_period {
        params.shift = Some(mirador_synth::ShiftParams { period: period.clone(), share: args.shift_share });
    }
    params.seasonality = args.seasonality;
    if let (Some(chapter), Some(period)) = (&args.leak_chapter, &args.leak_period) {
        params.leak = Some(mirador_synth::LeakParams { chapter: chapter.clone(), period: period.clone(), depth: args.leak_depth });
    }
    params.check().map_err(|e| super::UserError(e.to_string()))?;
    let format: mirador_synth::Format = args.format.parse().map_err(|e: String| super::UserError(e))?;
    let summary = if args.by_month {
        mirador_synth::write_world_by_month(&params, &args.out)?
    } else {
        mirador_synth::write_world(&params, &args.out, format)?
    };
    println!("{summary}");
    Ok(())
}
