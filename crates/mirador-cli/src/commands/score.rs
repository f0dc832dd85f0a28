//! `mirador score`: scores declarations with a saved fraud model, without retraining.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use mirador_schema::datasets;

/// Arguments of `mirador score`.
#[derive(Args)]
pub(crate) struct ScoreArgs {
    /// Model file written by the `fraud_model` stage (`<run>/fraud_model/model.json`).
    #[arg(long)]
    model: PathBuf,
    /// Canonical declarations to score (a `declarations.parquet` written by ingest).
    #[arg(long)]
    declarations: PathBuf,
    /// Run directory holding the k-means and mirror signals of these declarations
    /// (`kmeans_scores.parquet`, `mirror_exposure.parquet`). Without it, a model trained with
    /// those signals scores them as missing.
    #[arg(long)]
    signals: Option<PathBuf>,
    /// Output parquet file for the scores.
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn score(args: &ScoreArgs) -> anyhow::Result<()> {
    let declarations = mirador_io::read_parquet(&args.declarations)?;
    let mut given = BTreeMap::new();
    if let Some(dir) = &args.signals {
        anyhow::ensure!(dir.is_dir(), "--signals {}: not a directory (give a run directory)", dir.display());
        for id in [datasets::KMEANS_SCORES, datasets::MIRROR_EXPOSURE] {
            let path = dir.join(format!("{id}.parquet"));
            if path.is_file() {
                given.insert(id, mirador_io::read_parquet(&path).with_context(|| format!("reading {}", path.display()))?);
            }
        }
        anyhow::ensure!(!given.is_empty(), "--signals {}: holds neither kmeans_scores.parquet nor mirror_exposure.parquet", dir.display());
    }
    let signals: BTreeMap<&str, &_> = given.iter().map(|(id, df)| (*id, df)).collect();
    let scored = mirador_model::score_with_model(&args.model, &declarations, &signals)?;
    let rows = scored.scores.height();
    for (name, covered) in &scored.signal_coverage {
        if *covered == 0 {
            eprintln!(
                "warning: the model uses the signal {name}, which no declaration has here; it is scored as missing, so \
                 these scores can differ from the nightly run's (pass --signals <run dir> with the stages' outputs for \
                 these declarations)"
            );
        } else {
            println!("signal {name}: given for {covered} of {rows} declarations");
        }
    }
    let mut scores = scored.scores;
    mirador_io::write_parquet(&mut scores, &args.out)?;
    println!("scored {rows} declarations -> {}", args.out.display());
    Ok(())
}
