//! Times the kernels of `revenue_gap` and `rank` on a committed run's datasets, apart from the
//! runner: `mirador_gap::analyse`, then writing `mirror_exposure`; `mirador_rank::rank`, then its
//! shareable copy, its two CSVs and its parquet file. Wall and CPU seconds (CPU of the whole
//! process, every thread, from `/proc/self/stat`: Linux only) for each of REPS repetitions.
//!
//! ```sh
//! cargo run --release --example stage_kernels -- /tmp/bench/1000000/runs/latest [REPS]
//! ```
//!
//! The score datasets get the declarations' key columns where they equal them, as the runner
//! hands them to `rank`. Files are written under the system's temporary directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use polars::prelude::*;

// The same allocator as the `mirador` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU seconds of this process so far (user + system, all threads).
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `f`, printing its wall and CPU seconds under `name`.
fn timed<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let (wall, c) = (Instant::now(), cpu());
    let out = f();
    println!("  {name:<24} wall {:6.3} s  cpu {:6.2} s", wall.elapsed().as_secs_f64(), cpu() - c);
    out
}

fn main() {
    let run = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp/bench/1000000/runs/latest".into()));
    let reps: usize = std::env::args().nth(2).and_then(|r| r.parse().ok()).unwrap_or(3);
    let read = |name: &str| mirador_io::read_parquet(&run.join(format!("{name}.parquet"))).expect(name);
    let out = std::env::temp_dir().join(format!("mirador-stage-kernels-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temporary directory");
    let declarations = read("declarations");
    let (mirror, tariffs) = (read("mirror_flows"), read("tariffs"));
    // As the runner hands them over: the declarations' own key columns where equal.
    let shared = |mut df: DataFrame| -> DataFrame {
        for key in ["declaration_id", "item_no"] {
            let theirs = declarations.column(key).expect(key).clone();
            if df.column(key).expect(key).as_materialized_series().equals_missing(theirs.as_materialized_series()) {
                df.with_column(theirs).expect(key);
            }
        }
        df
    };
    let columns =
        |name: &str, cols: &[&str]| shared(mirador_io::read_parquet_columns(&run.join(format!("{name}.parquet")), cols).expect(name));
    let keyed = |signals: &[&'static str]| -> Vec<&'static str> { ["declaration_id", "item_no"].iter().chain(signals).copied().collect() };
    let fraud = columns("fraud_scores", &keyed(&["fraud_probability", "expected_duty_at_risk_usd", "fraud_flag", "top_features"]));
    let kmeans = columns("kmeans_scores", &keyed(&["undervaluation_flag", "price_ratio", "undervalued_duty_usd"]));
    let exposure = columns("mirror_exposure", &keyed(&["mirror_duty_share_usd"]));
    let gap_params = mirador_gap::GapParams { home_country: "KE".into(), ..Default::default() };
    let rank_params = mirador_rank::RankParams::default();
    let key = mirador_rank::pseudonym::Pseudonymiser::new("stage-kernels-timing-key").expect("key");
    let write = |df: &mut DataFrame, name: &str| mirador_io::write_parquet(df, &out.join(name)).expect(name);
    let csv = |df: &DataFrame, name: &str| mirador_io::write_spreadsheet_csv(df, &out.join(name)).expect(name);
    for rep in 1..=reps {
        println!("repetition {rep} ({} declarations)", declarations.height());
        let mut gap =
            timed("revenue_gap: analyse", || mirador_gap::analyse(&declarations, &mirror, &tariffs, &gap_params).expect("analyse"));
        timed("revenue_gap: write exposure", || write(&mut gap.exposure, "mirror_exposure.parquet"));
        let mut auditees = timed("rank: rank", || {
            mirador_rank::rank(&declarations, Some(&fraud), Some(&kmeans), Some(&exposure), &rank_params).expect("rank")
        });
        let shareable = timed("rank: shareable copy", || mirador_rank::shareable(&auditees, &key).expect("shareable"));
        timed("rank: two CSVs", || {
            rayon::join(|| csv(&auditees, "auditees.csv"), || csv(&shareable, "auditees_shareable.csv"));
        });
        timed("rank: write auditees", || write(&mut auditees, "auditees.parquet"));
    }
    let _ = std::fs::remove_dir_all(Path::new(&out));
}
