//! `mirador score`: scores declarations with a saved fraud model, without retraining.

use std::path::PathBuf;

use clap::Args;

/// Arguments of `mirador score`.
#[derive(Args)]
pub(crate) struct ScoreArgs {
    /// Model file written by the `fraud_model` stage (`<run>/fraud_model/model.json`).
    #[arg(long)]
    model: PathBuf,
    /// Canonical declarations to score (a `declarations.parquet` written by ingest).
    #[arg(long)]
    declarations: PathBuf,
    /// Output parquet file for the scores.
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn score(args: &ScoreArgs) -> anyhow::Result<()> {
    let declarations = mirador_io::read_parquet(&args.declarations)?;
    let mut scores = mirador_model::score_with_model(&args.model, &declarations)?;
    mirador_io::write_parquet(&mut scores, &args.out)?;
    println!("scored {} declarations -> {}", scores.height(), args.out.display());
    Ok(())
}
