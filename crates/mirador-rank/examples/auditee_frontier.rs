//! The auditee list's capture of lost duty over a grid of scoring parameters, on a finished run
//! and its world's truth: the frontier the defaults of `pipelines/params/rank.toml` were chosen
//! from (`docs/evaluation.md`).
//!
//! ```text
//! cargo run --release -p mirador-rank --example auditee_frontier -- reports/nightly/latest sample_data/truth_declarations.csv
//! ```

use std::path::{Path, PathBuf};

use mirador_pipeline::SourceSpec;
use mirador_rank::evaluation::{by_importer, evaluate, read_items};
use mirador_rank::{RankParams, rank};
use mirador_schema::catalog::auditee_evaluation;
use polars::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [run, truth] = args.as_slice() else {
        return Err("usage: auditee_frontier <run directory> <truth_declarations.csv>".into());
    };
    let run = Path::new(run);
    let read = |name: &str| mirador_io::read_parquet(&run.join(format!("{name}.parquet")));
    let (d, f, k, m) = (read("declarations")?, read("fraud_scores")?, read("kmeans_scores")?, read("mirror_exposure")?);
    let spec = SourceSpec { paths: vec![PathBuf::from(truth)], ..Default::default() };
    let truth = read_items(&spec, Path::new("."), "planted_lost_duty_usd")?;
    let (importers, _) = by_importer(&d, &truth.lined_up(&d)?)?;
    let share = |e: &DataFrame, policy: &str, pct: f64| -> f64 {
        let (p, t, s) = (
            e.column(auditee_evaluation::POLICY).unwrap().str().unwrap(),
            e.column(auditee_evaluation::TOP_PCT).unwrap().f64().unwrap(),
            e.column(auditee_evaluation::SHARE_OF_LOST_DUTY).unwrap().f64().unwrap(),
        );
        (0..e.height()).find(|&i| p.get(i) == Some(policy) && t.get(i) == Some(pct)).and_then(|i| s.get(i)).unwrap_or(f64::NAN)
    };
    let base = evaluate(&rank(&d, Some(&f), Some(&k), Some(&m), &RankParams::default())?, &importers)?.ok_or("no truth")?;
    for policy in ["oracle", "duty_paid", "declared_value", "random"] {
        println!("{policy:>14}: {}", [1.0, 5.0, 10.0, 20.0].map(|p| format!("{:.3}", share(&base, policy, p))).join(" "));
    }
    println!("concentration shrinkage mirror-weight | top 1 % 5 % 10 % 20 %");
    for concentration in [0.0, 0.5, 1.0, 1.5, 2.0, 3.0] {
        for shrinkage in [0.0, 2.0, 5.0, 20.0] {
            for mirror_weight in [0.0, 0.1, 1.0] {
                let p = RankParams { concentration, shrinkage, mirror_weight, ..RankParams::default() };
                let e = evaluate(&rank(&d, Some(&f), Some(&k), Some(&m), &p)?, &importers)?.ok_or("no truth")?;
                let at = [1.0, 5.0, 10.0, 20.0].map(|pct| format!("{:.3}", share(&e, "list", pct)));
                println!("{concentration:>13} {shrinkage:>9} {mirror_weight:>13} | {}", at.join(" "));
            }
        }
    }
    Ok(())
}
