//! `mirror_exposure` of a committed run computed by the engine and written as parquet, timed:
//! what `scripts/bench-cluster.sh` runs on a local cluster, beside an executor killed midway.
//!
//! ```sh
//! cargo run --release -p mirador-engine --example exposure -- RUN_DIR ENGINE OUT_DIR [EXPECTED_DIR]
//! ```
//!
//! `ENGINE` is `ballista://HOST:PORT` or `local`. With `EXPECTED_DIR` (an earlier output), the
//! rows are compared with it (keys exactly, floats to 1e-9 relative) and the differences printed;
//! the exit code is 1 when there are any.

use std::path::PathBuf;
use std::time::Instant;

use mirador_engine::{Engine, compare};
use mirador_gap::PeriodGrain;
use mirador_schema::col;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [run, engine, out, rest @ ..] = args.as_slice() else {
        return Err("usage: exposure RUN_DIR (ballista://HOST:PORT | local) OUT_DIR [EXPECTED_DIR]".into());
    };
    let (run, out) = (PathBuf::from(run), PathBuf::from(out));
    let engine = if engine == "local" { Engine::local()? } else { Engine::connect(engine)? };
    let started = Instant::now();
    let rows = engine.write_mirror_exposure(&run.join("declarations.parquet"), &run.join("gap_by_cell.parquet"), PeriodGrain::Year, &out)?;
    println!("{{\"engine\": \"{}\", \"rows\": {rows}, \"seconds\": {:.2}}}", engine.location(), started.elapsed().as_secs_f64());
    if let Some(expected) = rest.first() {
        let local = Engine::local()?;
        local.register_parquet("expected", &PathBuf::from(expected))?;
        local.register_parquet("actual", &out)?;
        let d = compare::differences(&local.sql("SELECT * FROM expected")?, &local.sql("SELECT * FROM actual")?, &[col::DECLARATION_ID, col::ITEM_NO], 1e-9)?;
        println!("differences from {expected}: {}", d.len());
        for line in &d {
            println!("  {line}");
        }
        if !d.is_empty() {
            std::process::exit(1);
        }
    }
    Ok(())
}
