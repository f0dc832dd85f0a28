//! Times the k-means and revenue-gap stages alone on a synthetic world written as parquet
//! (`mirador synth --format parquet`), skipping ingest: the synthetic declarations already have
//! the canonical schema.
//!
//! ```sh
//! cargo run --release --example stage_bench -- target/bench-world
//! ```

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/bench-world".into()));
    let read = |name: &str| mirador_io::read_parquet(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let t = Instant::now();
    let declarations = read("declarations.parquet");
    let mirror = read("mirror_flows.parquet");
    let tariffs = read("tariffs.parquet");
    println!("read {} declarations in {:.1} s", declarations.height(), t.elapsed().as_secs_f64());

    let t = Instant::now();
    let params = mirador_gap::GapParams { home_country: "KE".into(), ..Default::default() };
    let gap = mirador_gap::analyse(&declarations, &mirror, &tariffs, &params).expect("revenue gap");
    let gap_s = t.elapsed().as_secs_f64();
    println!("revenue_gap:   {gap_s:6.1} s  ({} cells, {:.0} declarations/s)", gap.by_cell.height(), declarations.height() as f64 / gap_s);

    let t = Instant::now();
    let scored = mirador_kmeans::score_declarations(&declarations, &mirador_kmeans::KMeansParams::default(), 42).expect("k-means");
    let km_s = t.elapsed().as_secs_f64();
    println!("kmeans_scores: {km_s:6.1} s  ({} groups, {:.0} declarations/s)", scored.groups.height(), declarations.height() as f64 / km_s);
}
