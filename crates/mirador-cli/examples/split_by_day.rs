//! Splits a declarations parquet file into one file per day, `<out>/<YYYY-MM-DD>.parquet`: what
//! a nightly run with carried state receives (`scripts/bench-history.sh` uses it for the nights of
//! its last month).
//!
//! ```sh
//! cargo run --release --example split_by_day -- target/history-world/declarations/2025-12.parquet target/history-world/days
//! ```

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(out)) = (args.next().map(PathBuf::from), args.next().map(PathBuf::from)) else {
        eprintln!("usage: split_by_day <declarations.parquet> <out dir>");
        std::process::exit(1);
    };
    let df = mirador_io::read_parquet(&input).expect("a declarations parquet file");
    std::fs::create_dir_all(&out).expect("output directory");
    let mut days = mirador_synth::split_by(&df, "date").expect("a `date` column");
    days.sort_by(|a, b| a.0.cmp(&b.0));
    for (day, mut part) in days {
        mirador_io::write_parquet(&mut part, &out.join(format!("{day}.parquet"))).expect("write");
        println!("{day}: {} rows", part.height());
    }
}
