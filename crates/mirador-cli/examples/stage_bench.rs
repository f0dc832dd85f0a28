//! Times ingest, then the k-means and the revenue-gap stages on what ingest accepted, on a
//! synthetic world written as parquet (`mirador synth --format parquet`).
//!
//! ```sh
//! cargo run --release --example stage_bench -- target/bench-world
//! ```

use std::path::PathBuf;

// The same allocator as the `mirador` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Instant;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/bench-world".into()));
    let t = Instant::now();
    let spec = |name: &str| mirador_pipeline::SourceSpec { paths: vec![dir.join(name)], ..Default::default() };
    let sources = std::collections::BTreeMap::from(
        ["declarations", "mirror_flows", "tariffs", "fx_rates"].map(|id| (id.to_owned(), spec(&format!("{id}.parquet")))),
    );
    let ingested =
        mirador_ingest::ingest_sources(&sources, std::path::Path::new("."), &mirador_ingest::IngestParams::default()).expect("ingest");
    let ingest_s = t.elapsed().as_secs_f64();
    let accepted = ingested.declarations.height();
    println!("ingest:        {ingest_s:6.1} s  ({accepted} accepted, {:.0} rows/s)", accepted as f64 / ingest_s);
    let mirador_ingest::Ingested { declarations, mirror_flows: mirror, tariffs, .. } = ingested;

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
