//! The k-means stage against a synthetic world whose undervaluation is known.

mod peers;

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
    // The scores are written block by block, not handed over whole.
    assert!(out.datasets.iter().all(|(id, _)| *id != datasets::KMEANS_SCORES));
    assert_eq!(out.streamed.len(), 1);
    let scores = &mirador_io::read_parquet(&dir.join("kmeans_scores.parquet")).unwrap();
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

#[test]
fn goods_sold_by_the_piece_are_compared_per_unit() {
    // Eighty declarations of one product whose weight per piece varies wildly (so USD/kg says
    // little) but whose price per piece is steady, and one declared at a fifth of the piece price.
    let n = 81;
    let mut mass: Vec<f64> = (0..n).map(|i| 10.0 + f64::from(i % 9) * 40.0).collect();
    // Light pieces: per kilogram the cheap declaration sits mid-range (USD 100/kg, peers 15–525).
    mass[40] = 10.0;
    let quantity: Vec<f64> = vec![100.0; n as usize];
    let mut value: Vec<f64> = (0..n).map(|i| 5_000.0 * (1.0 + 0.02 * f64::from(i % 5))).collect();
    value[40] = 1_000.0;
    let per_kg: Vec<f64> = value.iter().zip(&mass).map(|(v, m)| v / m).collect();
    let declarations = polars::df!(
        "declaration_id" => (0..n).map(|i| format!("D{i}")).collect::<Vec<_>>(),
        "item_no" => vec![1i32; n as usize],
        "importer_id" => vec!["I"; n as usize],
        "hs6" => vec!["640399"; n as usize],
        "origin_country" => vec!["CN"; n as usize],
        "unit_price_usd_per_kg" => per_kg,
        "value_usd" => value,
        "tax_rate_pct" => vec![35.0; n as usize],
        "quantity" => quantity,
    )
    .unwrap();
    let scored = score_declarations(&declarations, &KMeansParams::default(), 1).unwrap();
    let score = scored.scores.column("undervaluation_score").unwrap().f64().unwrap().clone();
    let basis = scored.scores.column("score_basis").unwrap().str().unwrap().clone();
    let flag = scored.scores.column("undervaluation_flag").unwrap().bool().unwrap().clone();
    let top = (0..n as usize).max_by(|&a, &b| score.get(a).unwrap_or(0.0).total_cmp(&score.get(b).unwrap_or(0.0))).unwrap();
    assert_eq!(top, 40, "the underpriced piece ranks first");
    let kg_only = scored.scores.column("z_score").unwrap().f64().unwrap().get(40).unwrap();
    assert!(kg_only > -2.0, "per kilogram alone it does not stand out (z {kg_only:.2})");
    assert_eq!(basis.get(40), Some("per_unit"));
    assert_eq!(flag.get(40), Some(true));
    let groups = scored.groups.column("basis").unwrap().str().unwrap().clone();
    assert!(groups.iter().any(|b| b == Some("per_unit")));
}
