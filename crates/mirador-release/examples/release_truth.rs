//! The `release_time` stage on synthetic worlds against their planted truth: for each seed, the
//! top flagged office and lane and their measured medians beside the planted ones.
//!
//!     cargo run --release -p mirador-release --example release_truth -- 42 3 11

use mirador_pipeline::{Stage, StageContext};
use mirador_synth::{SynthParams, generate, release};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seeds: Vec<u64> = std::env::args().skip(1).filter_map(|s| s.parse().ok()).collect();
    let seeds = if seeds.is_empty() { vec![42] } else { seeds };
    println!("| seed | items | dimension | top flagged | planted | measured median (h) | planted median (h) | error |");
    println!("|---|---|---|---|---|---|---|---|");
    for seed in seeds {
        let world = generate(&SynthParams { seed, ..SynthParams::default() })?;
        let (times, truth) = release::release_times(&world.declarations, seed)?;
        let declarations = world.declarations.hstack(times.columns())?;
        let n = declarations.height();
        let dir = std::env::temp_dir().join(format!("mirador-release-example-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let out =
            mirador_release::ReleaseTime.run(&StageContext::standalone("release_time", &dir).with_input("declarations", declarations))?;
        let b = &out.datasets.iter().find(|(id, _)| *id == "release_breaches").ok_or("no release_breaches")?.1;
        let dim = b.column("dimension")?.str()?.clone();
        let group = b.column("group")?.str()?.clone();
        let median = b.column("median_hours")?.f64()?.clone();
        for (d, planted, medians) in
            [("office", &truth.slow_office, &truth.office_median_hours), ("lane", &truth.slow_lane, &truth.lane_median_hours)]
        {
            let top = (0..b.height()).find(|&i| dim.get(i) == Some(d)).ok_or("no group")?;
            let (g, m) = (group.get(top).unwrap_or_default(), median.get(top).unwrap_or(f64::NAN));
            let want = medians.get(g).copied().unwrap_or(f64::NAN);
            println!("| {seed} | {n} | {d} | {g} | {planted} | {m:.2} | {want:.2} | {:+.1} % |", (m / want - 1.0) * 100.0);
            if std::env::var_os("VERBOSE").is_some() {
                for i in (0..b.height()).filter(|&i| dim.get(i) == Some(d)) {
                    eprintln!(
                        "  {d} {:?}: median {:.2} p90 {:.2}",
                        group.get(i),
                        median.get(i).unwrap_or(f64::NAN),
                        b.column("p90_hours")?.f64()?.get(i).unwrap_or(f64::NAN)
                    );
                }
            }
        }
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
