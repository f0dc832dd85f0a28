//! Compares the datasets of two runs: the same parquet files, the same columns and types, the same
//! rows in the same order, integers, booleans, dates and text equal, floats equal to a relative
//! tolerance (default 1e-9; nulls and NaNs must sit in the same places). Exits 0 when every
//! dataset agrees, 1 with one line per difference otherwise.
//!
//! ```sh
//! cargo run --release --example compare_runs -- RUN_A RUN_B [--rel 1e-9]
//! scripts/compare-runs.sh RUN_A RUN_B            # the same, built first
//! ```
//!
//! A run is a run directory (`<out>/<run id>` or `<out>/latest`); every `*.parquet` at its top
//! level is a dataset. A dataset present in one run only is a difference.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use polars::prelude::*;

/// The first few differing rows of a column are named; the rest are counted.
const SHOWN: usize = 3;

fn datasets(dir: &Path) -> Result<BTreeSet<String>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = BTreeSet::new();
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.extension().is_some_and(|e| e == "parquet") && path.is_file() {
            names.insert(path.file_name().unwrap_or_default().to_string_lossy().into_owned());
        }
    }
    Ok(names)
}

/// Whether two floats agree: both null, both NaN, equal, or within `rel` of the larger magnitude.
fn close(a: Option<f64>, b: Option<f64>, rel: f64) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) if a.is_nan() || b.is_nan() => a.is_nan() && b.is_nan(),
        // Equal values (infinities too) agree exactly; others within the tolerance.
        #[allow(clippy::float_cmp)]
        (Some(a), Some(b)) => a == b || (a - b).abs() <= rel * a.abs().max(b.abs()),
        _ => false,
    }
}

/// The rows where two columns of the same type and length differ.
fn differing_rows(a: &Column, b: &Column, rel: f64) -> PolarsResult<Vec<usize>> {
    let a = a.as_materialized_series();
    let b = b.as_materialized_series();
    if a.dtype().is_float() {
        let (a, b) = (a.cast(&DataType::Float64)?, b.cast(&DataType::Float64)?);
        let (a, b) = (a.f64()?, b.f64()?);
        return Ok(a.iter().zip(b.iter()).enumerate().filter(|(_, (x, y))| !close(*x, *y, rel)).map(|(i, _)| i).collect());
    }
    // Everything else compares exactly, nulls equal to nulls.
    let same = a.equal_missing(b)?;
    Ok(same.iter().enumerate().filter(|(_, s)| *s != Some(true)).map(|(i, _)| i).collect())
}

fn compare(a: &DataFrame, b: &DataFrame, name: &str, rel: f64, out: &mut Vec<String>) -> PolarsResult<()> {
    let (sa, sb) = (a.schema(), b.schema());
    if sa != sb {
        let cols = |s: &Schema| s.iter().map(|(n, t)| format!("{n}: {t}")).collect::<Vec<_>>().join(", ");
        out.push(format!("{name}: columns differ\n  A: {}\n  B: {}", cols(sa), cols(sb)));
        return Ok(());
    }
    if a.height() != b.height() {
        out.push(format!("{name}: {} rows against {}", a.height(), b.height()));
        return Ok(());
    }
    for (ca, cb) in a.columns().iter().zip(b.columns()) {
        let rows = differing_rows(ca, cb, rel)?;
        if rows.is_empty() {
            continue;
        }
        let shown: Vec<String> =
            rows.iter().take(SHOWN).map(|&i| Ok(format!("row {i}: {} / {}", ca.get(i)?, cb.get(i)?))).collect::<PolarsResult<_>>()?;
        out.push(format!("{name}: column {} differs in {} of {} rows ({})", ca.name(), rows.len(), a.height(), shown.join("; ")));
    }
    Ok(())
}

fn run(a: &Path, b: &Path, rel: f64) -> Result<Vec<String>, String> {
    let (na, nb) = (datasets(a)?, datasets(b)?);
    let mut diffs = Vec::new();
    for only in na.symmetric_difference(&nb) {
        let side = if na.contains(only) { a } else { b };
        diffs.push(format!("{only}: only in {}", side.display()));
    }
    for name in na.intersection(&nb) {
        let read = |dir: &Path| mirador_io::read_parquet(&dir.join(name)).map_err(|e| e.to_string());
        let (da, db) = (read(a)?, read(b)?);
        let before = diffs.len();
        compare(&da, &db, name, rel, &mut diffs).map_err(|e| format!("{name}: {e}"))?;
        if diffs.len() == before {
            println!("same: {name} ({} rows, {} columns)", da.height(), da.width());
        }
    }
    if na.is_empty() && nb.is_empty() {
        diffs.push(format!("no parquet datasets in {} or {}", a.display(), b.display()));
    }
    Ok(diffs)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut rel = 1e-9;
    while let Some(arg) = args.next() {
        if arg == "--rel" {
            let Some(v) = args.next().and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite() && *v >= 0.0) else {
                eprintln!("--rel needs a finite non-negative number");
                return ExitCode::from(1);
            };
            rel = v;
        } else {
            dirs.push(arg.into());
        }
    }
    let [a, b] = dirs.as_slice() else {
        eprintln!("usage: compare_runs RUN_A RUN_B [--rel 1e-9]");
        return ExitCode::from(1);
    };
    match run(a, b, rel) {
        Ok(diffs) if diffs.is_empty() => {
            println!("The datasets of {} and {} agree (floats to {rel:e} relative).", a.display(), b.display());
            ExitCode::SUCCESS
        }
        Ok(diffs) => {
            for d in &diffs {
                println!("DIFF {d}");
            }
            println!("{} difference(s) between {} and {}.", diffs.len(), a.display(), b.display());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ids: &[&str], amounts: &[Option<f64>]) -> DataFrame {
        df!("id" => ids, "amount" => amounts).unwrap()
    }

    fn diffs(a: &DataFrame, b: &DataFrame) -> Vec<String> {
        let mut out = Vec::new();
        compare(a, b, "x.parquet", 1e-9, &mut out).unwrap();
        out
    }

    #[test]
    fn floats_agree_within_the_tolerance_and_nulls_and_nans_in_place() {
        assert!(close(Some(1.0), Some(1.0 + 1e-12), 1e-9));
        assert!(!close(Some(1.0), Some(1.0 + 1e-6), 1e-9));
        assert!(close(None, None, 1e-9) && close(Some(f64::NAN), Some(f64::NAN), 1e-9));
        assert!(!close(None, Some(0.0), 1e-9) && !close(Some(f64::NAN), Some(1.0), 1e-9));
        assert!(close(Some(0.0), Some(-0.0), 1e-9));
    }

    #[test]
    fn equal_frames_agree_and_each_kind_of_difference_is_named() {
        let a = frame(&["a", "b"], &[Some(1.0), None]);
        assert!(diffs(&a, &frame(&["a", "b"], &[Some(1.0 + 1e-13), None])).is_empty());
        let text = diffs(&a, &frame(&["a", "c"], &[Some(1.0), None]));
        assert!(text.len() == 1 && text[0].contains("column id differs in 1 of 2 rows"), "{text:?}");
        let float = diffs(&a, &frame(&["a", "b"], &[Some(1.1), None]));
        assert!(float.len() == 1 && float[0].contains("column amount"), "{float:?}");
        let null = diffs(&a, &frame(&["a", "b"], &[Some(1.0), Some(0.0)]));
        assert!(null.len() == 1 && null[0].contains("column amount"), "{null:?}");
        let order = diffs(&a, &frame(&["b", "a"], &[None, Some(1.0)]));
        assert_eq!(order.len(), 2, "rows in another order differ: {order:?}");
        assert!(diffs(&a, &frame(&["a"], &[Some(1.0)]))[0].contains("2 rows against 1"));
        let typed = df!("id" => ["a", "b"], "amount" => [Some(1i64), None]).unwrap();
        assert!(diffs(&a, &typed)[0].contains("columns differ"));
    }

    #[test]
    fn runs_with_a_dataset_missing_or_changed_differ() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let write = |dir: &Path, name: &str, mut df: DataFrame| mirador_io::write_parquet(&mut df, &dir.join(name)).map(drop).unwrap();
        write(a.path(), "x.parquet", frame(&["a"], &[Some(1.0)]));
        write(b.path(), "x.parquet", frame(&["a"], &[Some(1.0)]));
        assert!(run(a.path(), b.path(), 1e-9).unwrap().is_empty());
        write(a.path(), "y.parquet", frame(&["a"], &[Some(1.0)]));
        let missing = run(a.path(), b.path(), 1e-9).unwrap();
        assert!(missing.len() == 1 && missing[0].starts_with("y.parquet: only in"), "{missing:?}");
        write(b.path(), "y.parquet", frame(&["a"], &[Some(2.0)]));
        assert_eq!(run(a.path(), b.path(), 1e-9).unwrap().len(), 1);
    }
}
