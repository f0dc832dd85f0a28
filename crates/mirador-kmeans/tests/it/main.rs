//! The k-means stage against a synthetic world whose undervaluation is known.

use mirador_kmeans::{KMeansParams, KMeansScores, score_declarations};
use mirador_pipeline::{Stage, StageContext};
use mirador_schema::{col, datasets};
use mirador_synth::{SynthParams, generate};
use polars::prelude::IntoSeries;

fn recall_at(scores: &[f64], planted: &[bool], pct: f64) -> f64 {
    let revenue = vec![1.0; scores.len()];
    mirador_metrics::top_share(scores, planted, &revenue, pct).unwrap().recall
}

#[test]
fn planted_undervaluation_is_recovered_in_the_top_five_percent() {
    let world = generate(&SynthParams::small(11)).unwrap();
    let scored = score_declarations(&world.declarations, &KMeansParams::default(), 42).unwrap();
    assert_eq!(scored.scores.height(), world.declarations.height());
    let kind = world.truth.declarations.column("fraud_kind").unwrap().str().unwrap().clone();
    let planted: Vec<bool> = kind.iter().map(|k| k == Some("undervaluation")).collect();
    let n_planted = planted.iter().filter(|p| **p).count();
    assert!(n_planted > 200, "the world plants enough undervaluation to measure ({n_planted})");
    let score: Vec<f64> = scored.scores.column("undervaluation_score").unwrap().f64().unwrap().iter().map(|s| s.unwrap_or(0.0)).collect();
    let recall = recall_at(&score, &planted, 5.0);
    eprintln!("recall@5% {recall:.3}");
    assert!(recall >= 0.6, "recall of planted undervaluation in the top 5 %: {recall:.3}");
    // Random scores would catch about 5 %: the bar is far above chance.
    // The flag is selective: flagged declarations are planted undervaluation at least five times
    // as often as declarations at large.
    let flags = scored.scores.column("undervaluation_flag").unwrap().bool().unwrap().clone();
    let (flagged, hits) =
        flags.iter().zip(&planted).fold((0, 0), |(f, h), (fl, p)| if fl == Some(true) { (f + 1, h + usize::from(*p)) } else { (f, h) });
    let base = n_planted as f64 / planted.len() as f64;
    let precision = hits as f64 / flagged.max(1) as f64;
    eprintln!("flag precision {hits}/{flagged} = {precision:.3} (base rate {base:.3})");
    assert!(flagged > 0 && precision >= 5.0 * base, "flag precision {precision:.3} vs base rate {base:.3}");
}

#[test]
fn same_seed_same_scores_and_every_score_in_range() {
    let world = generate(&SynthParams { declarations: 5_000, ..SynthParams::small(3) }).unwrap();
    let a = score_declarations(&world.declarations, &KMeansParams::default(), 9).unwrap();
    let b = score_declarations(&world.declarations, &KMeansParams::default(), 9).unwrap();
    assert!(a.scores.equals_missing(&b.scores));
    assert!(a.groups.equals_missing(&b.groups));
    let s = a.scores.column("undervaluation_score").unwrap().f64().unwrap().clone();
    assert!(s.iter().flatten().all(|v| (0.0..=1.0).contains(&v)));
}

#[test]
fn stage_runs_on_declarations_with_unpriced_rows_and_reports_label_auc() {
    let world = generate(&SynthParams { declarations: 4_000, ..SynthParams::small(5) }).unwrap();
    // Zero mass: the unit price is null and the row must still get an output row.
    let mut decl = world.declarations.clone();
    let price = decl.column(col::UNIT_PRICE_USD_KG).unwrap().f64().unwrap().clone();
    let nulled: polars::prelude::Float64Chunked = price.iter().enumerate().map(|(i, p)| if i % 100 == 0 { None } else { p }).collect();
    decl.with_column(polars::prelude::Column::from(nulled.with_name(col::UNIT_PRICE_USD_KG.into()).into_series())).unwrap();
    let dir = tempfile_dir();
    let ctx = StageContext::standalone("kmeans_scores", &dir).with_input(datasets::DECLARATIONS, decl.clone());
    let out = KMeansScores.run(&ctx).unwrap();
    let scores = &out.datasets.iter().find(|(id, _)| *id == datasets::KMEANS_SCORES).unwrap().1;
    assert_eq!(scores.height(), decl.height());
    let method = scores.column("method").unwrap().str().unwrap().clone();
    assert_eq!(method.iter().filter(|m| *m == Some("no_unit_price")).count(), decl.height().div_ceil(100));
    let auc = out.metrics["auc_vs_fraud_label"].as_f64().unwrap();
    assert!(auc > 0.5, "undervaluation score carries some signal about fraud labels: {auc}");
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mirador-kmeans-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
