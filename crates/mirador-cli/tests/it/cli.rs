//! The command-line contract: checks, listing, clear errors and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn mirador(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mirador")).args(args).current_dir(cwd).env_remove("RUST_LOG").output().unwrap()
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// What readers of a run consume, compared byte for byte between runs that must agree.
pub(crate) const PUBLISHED: &[&str] = &[
    "declarations.parquet",
    "quarantine.parquet",
    "gap_by_cell.parquet",
    "kmeans_scores.parquet",
    "fraud_scores.parquet",
    "auditees.parquet",
    "auditees_shareable.parquet",
    "rank/auditees.csv",
    "fraud_model/model.json",
];

/// Asserts that two run directories hold byte-identical [`PUBLISHED`] files.
pub(crate) fn assert_same_outputs(a: &Path, b: &Path, context: &str) {
    for f in PUBLISHED {
        let (x, y) = (std::fs::read(a.join(f)), std::fs::read(b.join(f)));
        assert!(x.is_ok() && y.is_ok(), "{f} missing ({context})");
        assert!(x.unwrap() == y.unwrap(), "{f} differs ({context})");
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn check_accepts_the_shipped_pipelines() {
    let o = mirador(&["check", "pipelines/nightly.toml"], &repo());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("level 2"), "{}", text(&o));
}

#[test]
fn list_and_explain_name_every_stage() {
    let o = mirador(&["list"], &repo());
    assert!(o.status.success());
    for s in ["ingest", "ingest_outcomes", "revenue_gap", "kmeans_scores", "fraud_model", "rank", "report"] {
        assert!(text(&o).contains(s), "{s}");
    }
    let o = mirador(&["explain", "revenue_gap"], &repo());
    assert!(text(&o).contains("mirror_flows"), "{}", text(&o));
    let o = mirador(&["explain", "nope"], &repo());
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn commands_printing_to_a_reader_that_stopped_early_succeed() {
    // Stdout is a pipe whose reading end is closed before the command writes (`| head` that has
    // had its lines): every write fails with a broken pipe.
    for args in [&["list"][..], &["explain", "rank"], &["show-settings", "pipelines/nightly.toml"], &["schemas"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(env!("CARGO_BIN_EXE_mirador"))
            .args(args)
            .current_dir(repo())
            .env_remove("RUST_LOG")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args:?}: {:?} {stderr}", o.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_broken_pipeline_file_is_a_clear_error_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "name = \"bad\"\n[[stage]]\nname = \"revenue_gap\"\ninputs = [\"declarations\"]\noutputs = []\n").unwrap();
    let o = mirador(&["run", p.to_str().unwrap()], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("revenue_gap"), "{}", text(&o));
    assert!(!text(&o).contains("panicked"), "{}", text(&o));
    let o = mirador(&["run", "does-not-exist.toml"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("does-not-exist.toml"), "{}", text(&o));
}

#[test]
fn an_output_root_escaping_the_working_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("escape.toml");
    std::fs::write(&p, "name = \"e\"\nout = \"../../etc\"\n").unwrap();
    let o = mirador(&["run", p.to_str().unwrap()], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("escapes"), "{}", text(&o));
}

/// A pipeline file extending the repository's nightly.toml with `extra` appended, written to `dir`.
fn nightly_with(dir: &Path, extra: &str) -> PathBuf {
    let p = dir.join("variant.toml");
    let nightly = repo().join("pipelines/nightly.toml");
    std::fs::write(&p, format!("extends = \"{}\"\n{extra}", nightly.display())).unwrap();
    p
}

#[test]
fn check_parses_every_stages_parameters_and_the_key_before_any_data_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // A misspelt key in any stage, an out-of-range value, a wrong type.
        ("[[stage]]\nname = \"kmeans_scores\"\nparams = { max-kk = 4 }\n", "kmeans_scores", "max-kk"),
        ("[[stage]]\nname = \"fraud_model\"\nparams = { n-trees = 0 }\n", "fraud_model", "n-trees"),
        ("[[stage]]\nname = \"revenue_gap\"\nparams = { cif-fob-factor = 7.0 }\n", "revenue_gap", "cif-fob-factor"),
        ("[[stage]]\nname = \"rank\"\nparams = { top = \"ten\" }\n", "rank", "top"),
        ("[[stage]]\nname = \"ingest\"\nparams = { min-date = \"2030-01-01\", max-date = \"2020-01-01\" }\n", "ingest", "min-date"),
        // Outside the sample data, the demo pseudonymisation key is refused.
        ("sample-data = false\n", "pseudonym", "MIRADOR_PSEUDONYM_KEY"),
        // A check of a column that no producer writes, in the dataset or in a relationship target.
        ("[checks.auditees]\nnot-null = [\"importer_name\"]\n", "checks.auditees", "importer_name"),
        ("[checks.inspection_list]\nrelationships = { declaration_id = \"declarations.declaration_no\" }\n", "ingest", "declaration_no"),
    ];
    for (extra, stage, key) in cases {
        let p = nightly_with(dir.path(), extra);
        let o = Command::new(env!("CARGO_BIN_EXE_mirador"))
            .args(["check", p.to_str().unwrap()])
            .current_dir(repo())
            .env_remove("MIRADOR_PSEUDONYM_KEY")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{extra}: {}", text(&o));
        assert!(text(&o).contains(stage) && text(&o).contains(key), "{extra}: {}", text(&o));
        assert!(!text(&o).contains("OK"), "{extra}: {}", text(&o));
    }
    // The same file without the mistake passes.
    let p = nightly_with(dir.path(), "[[stage]]\nname = \"kmeans_scores\"\nparams = { max-k = 4 }\n");
    let o = mirador(&["check", p.to_str().unwrap()], &repo());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn the_committed_schema_files_are_the_catalogs() {
    let dir = tempfile::tempdir().unwrap();
    let o = mirador(&["schemas", "--out", dir.path().to_str().unwrap()], &repo());
    assert!(o.status.success(), "{}", text(&o));
    let files = |d: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".schema.json"))
            .collect();
        names.sort();
        names
    };
    let committed = repo().join("docs/schemas");
    let regenerate = "regenerate with `mirador schemas --out docs/schemas` and review the diff";
    assert_eq!(files(dir.path()), files(&committed), "{regenerate}");
    for name in files(dir.path()) {
        let (made, kept) =
            (std::fs::read_to_string(dir.path().join(&name)).unwrap(), std::fs::read_to_string(committed.join(&name)).unwrap());
        assert_eq!(made, kept, "docs/schemas/{name} is not the catalog's: {regenerate}");
    }
    // One dataset, by name; an unknown one is a user error.
    let o = mirador(&["schemas", "fraud_scores"], &repo());
    assert!(o.status.success() && text(&o).contains("selection_order"), "{}", text(&o));
    assert!(text(&o).contains("partitions it by period (declaration)"), "{}", text(&o));
    let o = mirador(&["schemas", "gap_by_cell"], &repo());
    assert!(o.status.success() && !text(&o).contains("row-level"), "{}", text(&o));
    let o = mirador(&["schemas", "fraud_score"], &repo());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}
