//! Crash safety: the nightly run killed with SIGKILL, then run again.
//!
//! Two kinds of kill: at fixed times into the run (wherever it happens to be), and in the middle
//! of writing a given output file (`MIRADOR_CRASH_IN_WRITE`: half the file is on disk when the
//! process dies). Whatever the moment, nothing half-written is ever where a reader looks (`latest`
//! is absent or points at a complete run with its manifest), the lock dies with the process (the
//! re-run is not refused), the re-run cleans the remains of the killed one and records them in its
//! manifest and in the journal, and its outputs are byte-identical to those of an uninterrupted
//! run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cli::{assert_same_outputs, mirador, repo};

fn run(out: &Path) -> serde_json::Value {
    let o = mirador(&["-q", "run", "pipelines/nightly.toml", "--out", out.to_str().unwrap()], &repo());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(out.join("latest/manifest.json")).unwrap()).unwrap()
}

/// A reader following `latest` finds a complete run or nothing.
fn assert_latest_complete_or_absent(out: &Path, context: &str) {
    let latest = out.join("latest");
    if latest.exists() {
        assert!(latest.join("manifest.json").is_file(), "latest points at an incomplete run ({context})");
    }
}

fn assert_no_leftovers(out: &Path, context: &str) {
    let mut leftovers = Vec::new();
    for dir in [out.join("runs"), out.join("latest"), out.join("latest/rank"), out.join("latest/report")] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".tmp-") || n.starts_with(".old-") || n.starts_with(".mirador-tmp-") || n == "attempt.json" {
                leftovers.push(format!("{}/{n}", dir.display()));
            }
        }
    }
    assert!(leftovers.is_empty(), "remains of the killed run ({context}): {leftovers:?}");
}

fn journal_events(out: &Path) -> Vec<String> {
    std::fs::read_to_string(out.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_run_killed_at_any_time_leaves_nothing_half_written_and_a_rerun_matches_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    run(&reference);
    for delay_ms in [150u64, 600, 1_500, 3_000] {
        let context = format!("kill at {delay_ms} ms");
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

        assert_latest_complete_or_absent(&out, &context);
        run(&out);
        assert_same_outputs(&reference.join("latest"), &out.join("latest"), &context);
        assert_no_leftovers(&out, &context);
    }
}

#[test]
fn a_run_killed_in_the_middle_of_writing_a_file_is_recorded_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    run(&reference);
    // One file per stage that writes data, and the report page; with the stage that was running.
    let cases = [
        ("declarations.parquet", "ingest"),
        ("kmeans_scores.parquet", "kmeans_scores"),
        ("fraud_scores.parquet", "fraud_model"),
        ("auditees.csv", "rank"),
        ("index.html", "report"),
    ];
    for (file, stage) in cases {
        let context = format!("kill while writing {file}");
        let out = dir.path().join(format!("killed-{stage}"));
        let o = Command::new(env!("CARGO_BIN_EXE_mirador"))
            .args(["-q", "run", "pipelines/nightly.toml", "--out", out.to_str().unwrap()])
            .current_dir(repo())
            .env("MIRADOR_CRASH_IN_WRITE", file)
            .output()
            .unwrap();
        assert!(!o.status.success(), "the run was not killed ({context})");

        // The half-written file exists, but only as a temporary inside the unpublished run.
        let tmp_runs: Vec<_> = std::fs::read_dir(out.join("runs"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .map(|e| e.path())
            .collect();
        assert_eq!(tmp_runs.len(), 1, "{context}");
        assert!(!out.join("latest").exists(), "nothing may be published ({context})");
        let attempt: serde_json::Value = serde_json::from_slice(&std::fs::read(tmp_runs[0].join("attempt.json")).unwrap()).unwrap();
        let done: Vec<&str> = attempt["stages_done"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert!(!done.contains(&stage), "{stage} cannot be done while its file is half-written ({context}): {done:?}");

        let manifest = run(&out);
        assert_same_outputs(&reference.join("latest"), &out.join("latest"), &context);
        assert_no_leftovers(&out, &context);
        // The manifest and the journal tell what happened.
        let interrupted = manifest["interrupted_attempts"].as_array().unwrap();
        assert_eq!(interrupted.len(), 1, "{context}");
        assert_eq!(interrupted[0]["run_id"], manifest["run_id"], "{context}");
        assert_eq!(interrupted[0]["stages_done"], attempt["stages_done"], "{context}");
        assert_eq!(journal_events(&out), ["started", "interrupted", "started", "committed"], "{context}");
    }
}

/// Starts `n` runs of the sample pipeline on output root `out` at once and waits for them all.
fn runs_at_once(out: &Path, n: usize) -> Vec<std::process::Output> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_mirador"))
                .args(["run", "pipelines/nightly.toml", "--out", out.to_str().unwrap()])
                .current_dir(repo())
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

#[test]
fn of_several_runs_started_at_once_exactly_one_commits_and_the_others_are_refused_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();

    // While another process holds the output root, every run is refused with the `locked` code,
    // however long it would take.
    let held = mirador_pipeline::runner::lock(&out).unwrap();
    for o in runs_at_once(&out, 3) {
        assert_eq!(o.status.code(), Some(75), "a locked root refuses the run: {}", String::from_utf8_lossy(&o.stderr));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(out.to_str().unwrap()), "the refusal names the output root: {err}");
    }
    assert!(!out.join("latest").exists(), "a refused run publishes nothing");
    drop(held);

    // Runs started together: exactly one does the work and commits. Each of the others is
    // refused as locked, or, when the winner finished within the lock's short grace, finds the
    // same run committed and does nothing (a sample run can be that fast).
    let outputs = runs_at_once(&out, 4);
    let stdout = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let committed =
        outputs.iter().filter(|o| o.status.success() && stdout(o).contains("committed") && !stdout(o).contains("already committed"));
    assert_eq!(committed.count(), 1, "exactly one run commits");
    for o in outputs.iter().filter(|o| !(o.status.success() && !stdout(o).contains("already committed"))) {
        let err = String::from_utf8_lossy(&o.stderr);
        let refused = o.status.code() == Some(75) && err.contains(out.to_str().unwrap());
        let no_op = o.status.success() && stdout(o).contains("already committed");
        assert!(refused || no_op, "another run is refused as locked or finds the run committed: {:?} {err}", o.status);
    }
    let runs = std::fs::read_dir(out.join("runs")).unwrap().flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count();
    assert_eq!(runs, 1, "one run directory");
}
