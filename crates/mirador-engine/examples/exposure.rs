//! `mirror_exposure` of a committed run computed by the engine and written as parquet, timed:
//! what `scripts/bench-cluster.sh` runs on a local cluster, beside an executor killed midway.
//!
//! ```sh
//! cargo run --release -p mirador-engine --example exposure -- RUN_DIR ENGINE OUT_DIR [EXPECTED_DIR | xK]
//! ```
//!
//! `ENGINE` is `ballista://HOST:PORT` or `local`. With `EXPECTED_DIR` (an earlier output), the
//! rows are compared with it (keys exactly, floats to 1e-9 relative) and the differences printed;
//! the exit code is 1 when there are any. With `xK` (e.g. `x10`), the declarations are K copies of
//! the run's (hard links beside `OUT_DIR`): a world K times larger, whose output has K times the
//! rows (checked; the copies' rows are not compared).

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
    let copies: Option<u64> = rest.first().and_then(|a| a.strip_prefix('x')).map(str::parse).transpose()?;
    let declarations = match copies {
        None => run.join("declarations.parquet"),
        Some(k) => {
            let dir = out.with_extension("declarations");
            std::fs::create_dir_all(&dir)?;
            for i in 0..k {
                let link = dir.join(format!("part-{i:03}.parquet"));
                if !link.exists() {
                    std::fs::hard_link(run.join("declarations.parquet"), link)?;
                }
            }
            dir
        }
    };
    let started = Instant::now();
    let rows = engine.write_mirror_exposure(&declarations, &run.join("gap_by_cell.parquet"), PeriodGrain::Year, &out)?;
    println!("{{\"engine\": \"{}\", \"rows\": {rows}, \"seconds\": {:.2}}}", engine.location(), started.elapsed().as_secs_f64());
    if let Some(k) = copies {
        let one: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("manifest.json"))?)?;
        let per_copy =
            one["outputs"].as_array().into_iter().flatten().find(|o| o["dataset"] == "declarations").and_then(|o| o["rows"].as_u64());
        if per_copy.map(|r| r * k) != Some(rows) {
            return Err(format!("{rows} rows written, {k} x {per_copy:?} expected").into());
        }
        return Ok(());
    }
    if let Some(expected) = rest.first() {
        let local = Engine::local()?;
        local.register_parquet("expected", &PathBuf::from(expected))?;
        local.register_parquet("actual", &out)?;
        let d = compare::differences(
            &local.sql("SELECT * FROM expected")?,
            &local.sql("SELECT * FROM actual")?,
            &[col::DECLARATION_ID, col::ITEM_NO],
            1e-9,
        )?;
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
