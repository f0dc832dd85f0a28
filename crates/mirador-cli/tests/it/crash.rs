//! Crash safety: the nightly run killed with SIGKILL at several points, then run again.
//!
//! Whatever the moment of the kill, nothing half-written is ever where a reader looks (`latest`
//! is absent or points at a complete run with its manifest), the lock dies with the process (the
//! re-run is not refused), the re-run cleans the remains of the killed one, and its outputs are
//! byte-identical to those of an uninterrupted run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cli::{mirador, repo};

const OUTPUTS: &[&str] = &[
    "declarations.parquet",
    "quarantine.parquet",
    "gap_by_cell.parquet",
    "kmeans_scores.parquet",
    "fraud_scores.parquet",
    "auditees.parquet",
    "auditees_shareable.parquet",
    "rank/auditees.csv",
];

fn run(out: &Path) {
    let o = mirador(&["-q", "run", "pipelines/nightly.toml", "--out", out.to_str().unwrap()], &repo());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_killed_run_leaves_nothing_half_written_and_a_rerun_matches_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    run(&reference);
    for delay_ms in [150u64, 600, 1_500, 3_000] {
        let out = dir.path().join(format!("killed-{delay_ms}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_mirador"))
            .args(["-q", "run", "pipelines/nightly.toml", "--out", out.to_str().unwrap()])
            .current_dir(repo())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL on Unix: no destructor, no cleanup
        let _ = child.wait();

        // A reader following `latest` finds a complete run or nothing.
        let latest = out.join("latest");
        if latest.exists() {
            assert!(latest.join("manifest.json").is_file(), "latest points at an incomplete run after a kill at {delay_ms} ms");
        }

        run(&out);
        for f in OUTPUTS {
            let a = std::fs::read(reference.join("latest").join(f)).unwrap();
            let b = std::fs::read(out.join("latest").join(f)).unwrap();
            assert!(a == b, "{f} differs from the uninterrupted run after a kill at {delay_ms} ms");
        }
        let leftovers: Vec<String> = std::fs::read_dir(out.join("runs"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".tmp-") || n.starts_with(".old-"))
            .collect();
        assert!(leftovers.is_empty(), "remains of the killed run: {leftovers:?}");
    }
}
