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
}

pub(crate) fn synth(args: &SynthArgs) -> anyhow::Result<()> {
    let mut params = mirador_synth::SynthParams { seed: args.seed, ..Default::default() };
    if let Some(n) = args.declarations {
        params.declarations = n;
    }
    if let Some(m) = args.months {
        params.months = m;
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
