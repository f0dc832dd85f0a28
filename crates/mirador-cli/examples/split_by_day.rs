//! Splits a declarations parquet file into one file per day, `<out>/<YYYY-MM-DD>.parquet`: what
//! a nightly run with carried state receives (`scripts/bench-history.sh` uses it for the nights of
//! its last month). A third argument names another day column: `decided_on` splits an inspection
//! outcomes file by decision day.
//!
//! ```sh
//! cargo run --release --example split_by_day -- target/history-world/declarations/2025-12.parquet target/history-world/days
//! cargo run --release --example split_by_day -- target/history-world/outcomes/2025-12.parquet target/history-world/outcome-days decided_on
//! ```

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(out)) = (args.next().map(PathBuf::from), args.next().map(PathBuf::from)) else {
        eprintln!("usage: split_by_day <parquet file> <out dir> [day column, default `date`]");
        std::process::exit(1);
    };
    let column = args.next().unwrap_or_else(|| "date".to_owned());
    let df = mirador_io::read_parquet(&input).expect("a parquet file");
    std::fs::create_dir_all(&out).expect("output directory");
    let mut days = mirador_synth::split_by(&df, &column).unwrap_or_else(|e| panic!("a `{column}` column: {e}"));
    days.sort_by(|a, b| a.0.cmp(&b.0));
    for (day, mut part) in days {
        mirador_io::write_parquet(&mut part, &out.join(format!("{day}.parquet"))).expect("write");
        println!("{day}: {} rows", part.height());
    }
}
