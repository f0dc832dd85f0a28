//! Writes the training bench's rows to CSV for other libraries and trains mirador-gbdt on them.
//!
//! `OUT_DIR/train.csv` holds the training rows and `OUT_DIR/held_out.csv` the held-out rows (a
//! fifth as many), exactly as `benches/train.rs` generates them: columns `num_0`..`num_24` as
//! floats (shortest round-trip form), `cat_0`..`cat_4` as integer codes, then `label` (0/1);
//! missing values are empty fields. The example then trains with the bench's parameters on
//! `MIRADOR_THREADS` threads (default 2) and prints the training time and the held-out AUC, and
//! splits that time into setup (input checks and binning) and per-tree growth by also training a
//! one-split model. `scripts/lightgbm_compare.py` trains LightGBM on the same files.
//!
//! ```text
//! cargo run --release --example export_bench_data -- target/bench-data 1000000 [--no-export]
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use mirador_gbdt::{Booster, Column, Dataset, MISSING_CATEGORY, Params, auc};

#[path = "../benches/common/synthetic.rs"]
mod synthetic;

use synthetic::{HELD_OUT_SEED, Synthetic, TRAIN_SEED, bench_params, generate, held_out_rows};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut positional = Vec::new();
    let mut export = true;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--no-export" => export = false,
            _ => positional.push(arg),
        }
    }
    let Some(out_dir) = positional.first().map(PathBuf::from) else {
        return Err("usage: export_bench_data OUT_DIR [ROWS] [--no-export]".into());
    };
    let rows = match positional.get(1) {
        Some(rows) => rows.replace('_', "").parse()?,
        None => 1_000_000,
    };
    let threads = match std::env::var("MIRADOR_THREADS") {
        Ok(threads) => threads.parse()?,
        Err(_) => 2,
    };
    rayon::ThreadPoolBuilder::new().num_threads(threads).build_global()?;

    let held_out_rows = held_out_rows(rows);
    let started = Instant::now();
    let train = generate(rows, TRAIN_SEED);
    let held_out = generate(held_out_rows, HELD_OUT_SEED);
    eprintln!("generated {rows} + {held_out_rows} rows in {:.2} s", started.elapsed().as_secs_f64());
    if export {
        let started = Instant::now();
        std::fs::create_dir_all(&out_dir)?;
        write_csv(&out_dir.join("train.csv"), &train)?;
        write_csv(&out_dir.join("held_out.csv"), &held_out)?;
        eprintln!(
            "wrote {} and {} in {:.2} s",
            out_dir.join("train.csv").display(),
            out_dir.join("held_out.csv").display(),
            started.elapsed().as_secs_f64()
        );
    }

    let params = bench_params();
    let (model, seconds) = timed_train(&train, &params)?;
    let scores = model.predict_proba(&held_out.data)?;
    println!(
        "mirador-gbdt: trained {} trees on {rows} rows x {} features in {seconds:.2} s ({} threads); held-out AUC {:.4} (true probabilities {:.4})",
        model.n_trees(),
        train.data.n_features(),
        rayon::current_num_threads(),
        auc(&scores, &held_out.labels),
        auc(&held_out.true_probability, &held_out.labels),
    );

    // A single split costs little beyond the checks and binning every training run starts with.
    let (_, setup) = timed_train(&train, &Params { n_trees: 1, num_leaves: 2, ..params.clone() })?;
    let per_tree = (seconds - setup) / model.n_trees().max(1) as f64;
    println!(
        "mirador-gbdt phases: setup (checks + binning) ~{setup:.2} s, growth ~{:.2} s = {:.1} ms per tree",
        seconds - setup,
        per_tree * 1e3
    );
    Ok(())
}

fn timed_train(data: &Synthetic, params: &Params) -> Result<(Booster, f64), mirador_gbdt::GbdtError> {
    let started = Instant::now();
    let model = Booster::train(&data.data, &data.labels, None, None, params)?;
    Ok((model, started.elapsed().as_secs_f64()))
}

/// Writes the feature columns and the label as CSV and flushes the file to disk.
fn write_csv(path: &Path, rows: &Synthetic) -> std::io::Result<()> {
    let data: &Dataset = &rows.data;
    let file = File::create(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    writeln!(out, "{},label", data.names.join(","))?;
    for row in 0..data.n_rows() {
        for column in &data.columns {
            match column {
                Column::Numeric(values) if !values[row].is_nan() => write!(out, "{},", values[row])?,
                Column::Categorical(codes) if codes[row] != MISSING_CATEGORY => write!(out, "{},", codes[row])?,
                // Missing values are empty fields.
                _ => out.write_all(b",")?,
            }
        }
        writeln!(out, "{}", u8::from(rows.labels[row] > 0.5))?;
    }
    // Flushed and synced, so write-back does not overlap the timed training that follows.
    out.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_all()
}
