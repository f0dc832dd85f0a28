//! Sources mostly quarantined and parameters out of range stop the run with exit code 1 and a
//! message naming what is wrong, before anything is published.

use std::path::Path;

use crate::cli::{mirador, repo};

/// The ingest and revenue_gap stages of the nightly pipeline on the sample data, with
/// `ingest_params` and `gap_params` (TOML lines).
fn pipeline(dir: &Path, ingest_params: &str, gap_params: &str) -> std::path::PathBuf {
    let data = repo().join("sample_data");
    let source = |id: &str| format!("[sources.{id}]\npaths = [\"{}\"]\n", data.join(format!("{id}.csv")).display());
    let text = format!(
        "name = \"rules\"\nseed = 42\n{}{}{}{}\n\
         [[stage]]\nname = \"ingest\"\nsources = [\"declarations\", \"mirror_flows\", \"tariffs\", \"fx_rates\"]\n\
         outputs = [\"declarations\", \"mirror_flows\", \"tariffs\", \"fx_rates\", \"quarantine\"]\n[stage.params]\n{ingest_params}\n\n\
         [[stage]]\nname = \"revenue_gap\"\ninputs = [\"declarations\", \"mirror_flows\", \"tariffs\"]\n\
         outputs = [\"gap_by_cell\", \"gap_by_chapter\", \"gap_by_partner\", \"gap_summary\", \"mirror_exposure\"]\n\
         [stage.params]\nhome-country = \"KE\"\n{gap_params}\n",
        source("declarations"),
        source("mirror_flows"),
        source("tariffs"),
        source("fx_rates"),
    );
    let path = dir.join("rules.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(dir: &Path, pipeline: &Path) -> (Option<i32>, String) {
    let out = dir.join("out");
    let o = mirador(&["-q", "run", pipeline.to_str().unwrap(), "--out", out.to_str().unwrap()], &repo());
    assert!(!out.join("latest").exists() || o.status.success(), "a failed run published");
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn the_sample_stages_run_with_the_default_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(dir.path(), &pipeline(dir.path(), "", ""));
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_source_quarantined_whole_fails_at_ingest_with_its_reasons() {
    // The sample's national codes have 8 digits: with hs-lengths = [6] every row is refused.
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(dir.path(), &pipeline(dir.path(), "hs-lengths = [6]", ""));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("stage `ingest` failed") && err.contains("% of rows quarantined") && err.contains("hs_length"), "{err}");
}

#[test]
fn a_non_finite_cif_fob_factor_is_refused_naming_the_stage_and_key() {
    for value in ["inf", "nan", "-inf", "0.0", "50.0"] {
        let dir = tempfile::tempdir().unwrap();
        let (code, err) = run(dir.path(), &pipeline(dir.path(), "", &format!("factor-method = \"configured\"\ncif-fob-factor = {value}")));
        assert_eq!(code, Some(1), "{value}: {err}");
        assert!(err.contains("revenue_gap") && err.contains("cif-fob-factor"), "{value}: {err}");
    }
}
