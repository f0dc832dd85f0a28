//! Runner behaviour with small fake stages: parallel levels, atomic publish, idempotent re-runs,
//! partial runs, blocking checks, the lock, and crash leftovers.

use std::path::{Path, PathBuf};
use std::process::Command;

use mirador_pipeline::{PipelineFile, RunError, RunOptions, RunOutcome, Stage, StageContext, StageError, StageOutput, latest_run, run};
use polars::prelude::*;

/// The columns every fake stage writes (the datasets are not in Mirador's catalog).
fn numbers_schema() -> Schema {
    Schema::from_iter([Field::new("id".into(), DataType::Int64), Field::new("x".into(), DataType::Float64)])
}

struct Source;
impl Stage for Source {
    fn name(&self) -> &'static str {
        "source"
    }
    fn secret_params(&self) -> &'static [&'static str] {
        &["pseudonym-key"]
    }
    fn carries_state(&self, params: &toml::Table) -> bool {
        params.get("carry-state").and_then(toml::Value::as_bool) == Some(true)
    }
    fn inputs(&self) -> &'static [&'static str] {
        &[]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["numbers"]
    }
    fn output_schema(&self, _: &str) -> Option<Schema> {
        Some(numbers_schema())
    }
    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default)]
        struct P {
            n: i64,
        }
        let p: P = ctx.params()?;
        let n = if p.n == 0 { 5 } else { p.n };
        let df = df!("id" => (0..n).collect::<Vec<i64>>(), "x" => (0..n).map(|i| i as f64 * 1.5).collect::<Vec<f64>>())?;
        Ok(StageOutput::new().with_dataset("numbers", df).with_metric("rows", n))
    }
}

struct Double;
impl Stage for Double {
    fn name(&self) -> &'static str {
        "double"
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["numbers"]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["doubled"]
    }
    fn output_schema(&self, _: &str) -> Option<Schema> {
        Some(numbers_schema())
    }
    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let mut df = ctx.input("numbers")?.clone();
        let doubled = (df.column("x")?.as_materialized_series() * 2.0).with_name("x".into());
        df.with_column(doubled.into_column())?;
        std::fs::write(ctx.artifact_dir().join("note.txt"), ctx.run_id()).map_err(|e| StageError::Data(e.to_string()))?;
        Ok(StageOutput::new().with_dataset("doubled", df))
    }
}

struct Fails;
impl Stage for Fails {
    fn name(&self) -> &'static str {
        "fails"
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["numbers"]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["nothing"]
    }
    fn run(&self, _: &StageContext) -> Result<StageOutput, StageError> {
        Err(StageError::Data("this stage always fails".into()))
    }
}

/// Reads one column of `doubled` (and one it does not have): no stage reads `doubled` whole.
struct Pick;
impl Stage for Pick {
    fn name(&self) -> &'static str {
        "pick"
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["doubled"]
    }
    fn input_columns(&self, id: &str) -> Option<Vec<&'static str>> {
        (id == "doubled").then(|| vec!["x", "absent"])
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["picked"]
    }
    fn output_schema(&self, _: &str) -> Option<Schema> {
        Some(Schema::from_iter([Field::new("x".into(), DataType::Float64)]))
    }
    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        Ok(StageOutput::new().with_dataset("picked", ctx.input("doubled")?.clone()))
    }
}

/// Beside `double` (both read `numbers`): writes whether `doubled` was already in the run when it
/// started (`x` = 1).
struct Sibling;
impl Stage for Sibling {
    fn name(&self) -> &'static str {
        "sibling"
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["numbers"]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["seen"]
    }
    fn output_schema(&self, _: &str) -> Option<Schema> {
        Some(numbers_schema())
    }
    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let there = ctx.artifact_dir().parent().is_some_and(|run| run.join("doubled.parquet").is_file());
        Ok(StageOutput::new().with_dataset("seen", df!("id" => [0_i64], "x" => [f64::from(u8::from(there))])?))
    }
}

fn registry(name: &str) -> Option<Box<dyn Stage>> {
    Some(match name {
        "source" => Box::new(Source),
        "pick" => Box::new(Pick),
        "double" => Box::new(Double),
        "fails" => Box::new(Fails),
        "sibling" => Box::new(Sibling),
        _ => return None,
    })
}

fn pipeline(dir: &Path, extra: &str) -> PipelineFile {
    let path = dir.join("p.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "t"
[[stage]]
name = "source"
outputs = ["numbers"]
[[stage]]
name = "double"
inputs = ["numbers"]
outputs = ["doubled"]
[checks.doubled]
unique = [["id"]]
not-null = ["x"]
relationships = {{ id = "numbers.id" }}
{extra}"#
        ),
    )
    .unwrap();
    PipelineFile::load(&path).unwrap()
}

fn opts(out: &Path) -> RunOptions {
    RunOptions { out_root: out.to_owned(), ..Default::default() }
}

#[test]
fn a_run_publishes_outputs_manifest_and_latest() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "");
    let out = dir.path().join("out");
    let RunOutcome::Committed { dir: run_dir, .. } = run(&file, &registry, &opts(&out)).unwrap() else { panic!("first run must commit") };
    assert!(run_dir.join("numbers.parquet").is_file());
    assert!(run_dir.join("doubled.schema.json").is_file());
    // A stage knows its run's id: the published directory's name.
    let note = std::fs::read_to_string(run_dir.join("double/note.txt")).unwrap();
    assert_eq!(note, run_dir.file_name().unwrap().to_string_lossy());
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(run_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["stages"][0]["name"], "source");
    assert_eq!(manifest["stages"][0]["metrics"]["rows"], 5);
    assert_eq!(manifest["outputs"].as_array().unwrap().len(), 2);
    assert!(manifest["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true));
    assert_eq!(latest_run(&out).unwrap(), run_dir);
    let names: Vec<String> =
        std::fs::read_dir(out.join("runs")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 1, "no temporary directory is left: {names:?}");
}

#[test]
fn a_second_identical_run_is_a_no_op_and_outputs_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "");
    let out = dir.path().join("out");
    let first = run(&file, &registry, &opts(&out)).unwrap();
    let RunOutcome::Committed { dir: d1, .. } = first else { panic!() };
    let bytes1 = std::fs::read(d1.join("doubled.parquet")).unwrap();
    assert!(matches!(run(&file, &registry, &opts(&out)).unwrap(), RunOutcome::AlreadyCommitted { .. }));
    let forced = run(&file, &registry, &RunOptions { force: true, ..opts(&out) }).unwrap();
    let RunOutcome::Committed { dir: d2, .. } = forced else { panic!() };
    assert_eq!(d1, d2);
    assert_eq!(bytes1, std::fs::read(d2.join("doubled.parquet")).unwrap(), "same inputs, same bytes");
}

#[test]
fn a_stage_naming_its_columns_gets_those_from_memory_or_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "[[stage]]\nname = \"pick\"\ninputs = [\"doubled\"]\noutputs = [\"picked\"]\n");
    let out = dir.path().join("out");
    let read = |run_dir: &Path, id: &str| mirador_io::read_parquet(&run_dir.join(format!("{id}.parquet"))).unwrap();
    // `doubled` is read back from its file for `pick` (no stage reads it whole), and its check
    // still sees `numbers`.
    let RunOutcome::Committed { dir: run_dir, .. } = run(&file, &registry, &opts(&out)).unwrap() else { panic!() };
    let doubled = read(&run_dir, "doubled");
    assert_eq!(read(&run_dir, "picked"), doubled.select(["x"]).unwrap());
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(run_dir.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true), "{manifest}");
    // The same when `doubled` is reused from the latest run.
    let only = RunOptions { only: vec!["pick".into()], force: true, ..opts(&out) };
    let RunOutcome::Committed { dir: run_dir, .. } = run(&file, &registry, &only).unwrap() else { panic!() };
    assert_eq!(read(&run_dir, "picked"), doubled.select(["x"]).unwrap());
}

#[test]
fn only_reuses_upstream_outputs_from_the_latest_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "");
    let out = dir.path().join("out");
    let only = RunOptions { only: vec!["double".into()], ..opts(&out) };
    assert!(matches!(run(&file, &registry, &only), Err(RunError::NoPreviousRun(_))));
    run(&file, &registry, &opts(&out)).unwrap();
    let RunOutcome::Committed { dir: d, .. } = run(&file, &registry, &only).unwrap() else { panic!() };
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["stages"][0]["status"].as_str().unwrap().starts_with("reused"), "source was not re-run");
    assert_eq!(manifest["stages"][1]["status"], "ran");
    assert!(d.join("numbers.parquet").is_file() && d.join("doubled.parquet").is_file());
}

#[test]
fn a_levels_reused_outputs_are_in_the_run_before_its_stages_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "[[stage]]\nname = \"sibling\"\ninputs = [\"numbers\"]\noutputs = [\"seen\"]\n");
    let out = dir.path().join("out");
    run(&file, &registry, &opts(&out)).unwrap();
    // `double` is reused, in the level of `sibling`: taken before `sibling` runs, so that the
    // stage's seconds are its own.
    for _ in 0..3 {
        let only = RunOptions { only: vec!["sibling".into()], force: true, ..opts(&out) };
        let RunOutcome::Committed { dir: d, .. } = run(&file, &registry, &only).unwrap() else { panic!() };
        let seen = mirador_io::read_parquet(&d.join("seen.parquet")).unwrap();
        assert_eq!(seen.column("x").unwrap().f64().unwrap().get(0), Some(1.0));
    }
}

#[test]
fn a_failing_stage_or_check_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "[[stage]]\nname = \"fails\"\ninputs = [\"numbers\"]\noutputs = [\"nothing\"]\n");
    let out = dir.path().join("out");
    let err = run(&file, &registry, &opts(&out)).unwrap_err();
    assert!(err.to_string().contains("always fails"), "{err}");
    assert!(latest_run(&out).is_none());
    assert_eq!(std::fs::read_dir(out.join("runs")).unwrap().count(), 0);

    let strict = pipeline(dir.path(), "[checks.numbers]\nrange = { x = [0.0, 1.0] }\n");
    let err = run(&strict, &registry, &opts(&out)).unwrap_err();
    assert!(matches!(err.cause(), RunError::Checks(_)), "{err}");
    assert!(err.to_string().contains("range(x"), "{err}");
    assert!(latest_run(&out).is_none());
}

#[test]
fn a_second_run_is_refused_while_the_lock_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let held = std::fs::File::create(out.join(".mirador.lock")).unwrap();
    held.lock().unwrap();
    assert!(matches!(run(&file, &registry, &opts(&out)), Err(RunError::Locked(_))));
    held.unlock().unwrap();
    assert!(run(&file, &registry, &opts(&out)).is_ok());
}

#[test]
fn an_interrupted_run_leaves_nothing_a_reader_would_take_as_complete() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "");
    let out = dir.path().join("out");
    let crash = RunOptions { fail_after: Some("source".into()), ..opts(&out) };
    assert!(run(&file, &registry, &crash).is_err());
    assert!(latest_run(&out).is_none());
    // The temporary directory is left as a crash would leave it, never under a run id...
    let leftovers: Vec<String> =
        std::fs::read_dir(out.join("runs")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(leftovers.iter().all(|n| n.starts_with(".tmp-")), "{leftovers:?}");
    // ...and the next run cleans it up and commits.
    let RunOutcome::Committed { .. } = run(&file, &registry, &opts(&out)).unwrap() else { panic!() };
    let names: Vec<String> =
        std::fs::read_dir(out.join("runs")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(!names[0].starts_with('.'));
}

#[test]
fn stage_params_change_the_run_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let a = pipeline(dir.path(), "");
    let RunOutcome::Committed { run_id: id_a, .. } = run(&a, &registry, &opts(&out)).unwrap() else { panic!() };
    let path = dir.path().join("p.toml");
    let text = std::fs::read_to_string(&path).unwrap().replacen("name = \"source\"", "name = \"source\"\nparams = { n = 7 }", 1);
    std::fs::write(&path, text).unwrap();
    let b = PipelineFile::load(&path).unwrap();
    let RunOutcome::Committed { run_id: id_b, dir } = run(&b, &registry, &opts(&out)).unwrap() else { panic!() };
    assert_ne!(id_a, id_b);
    assert_eq!(mirador_io::read_parquet(&dir.join("doubled.parquet")).unwrap().height(), 7);
}

#[test]
fn secret_parameters_never_reach_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let path = dir.path().join("p.toml");
    pipeline(dir.path(), "");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "name = \"source\"",
        "name = \"source\"\nparams = { pseudonym-key = \"s3cret-value\" }",
        1,
    );
    std::fs::write(&path, text).unwrap();
    let file = PipelineFile::load(&path).unwrap();
    let RunOutcome::Committed { dir, .. } = run(&file, &registry, &opts(&out)).unwrap() else { panic!() };
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(!manifest.contains("s3cret-value"));
    assert!(manifest.contains("<secret>"));
}

fn manifest_of(run_dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run_dir.join("manifest.json")).unwrap()).unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn latest_id(out: &Path) -> String {
    std::fs::read_link(out.join("latest")).unwrap().file_name().unwrap().to_string_lossy().into_owned()
}

/// A pipeline whose `source` stage writes `n` rows; `carry` marks its stages as carrying state.
fn sized_pipeline(dir: &Path, n: i64, carry: bool) -> PipelineFile {
    let file = pipeline(dir, "");
    let path = dir.join("p.toml");
    let params = if carry { format!("params = {{ n = {n}, carry-state = true }}") } else { format!("params = {{ n = {n} }}") };
    let text = file.text.replacen("name = \"source\"", &format!("name = \"source\"\n{params}"), 1);
    std::fs::write(&path, text).unwrap();
    PipelineFile::load(&path).unwrap()
}

#[test]
fn a_pipeline_name_that_is_not_a_plain_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("a/b");
    std::fs::create_dir_all(&base).unwrap();
    for name in ["../../../x", "..", "a/b", "/abs", ".hidden", "", "x y", "a\\\\b", "-dash", "tab\\tname", "n".repeat(65).as_str()] {
        let path = base.join("p.toml");
        std::fs::write(&path, format!("name = \"{name}\"\n")).unwrap();
        let err = PipelineFile::load(&path).unwrap_err();
        assert!(err.to_string().contains("not a plain name"), "{name:?}: {err}");
    }
    // A file built in code, not loaded, is refused by the runner, and nothing is written.
    let mut file = pipeline(dir.path(), "");
    file.name = "../../../x".into();
    let out = base.join("out");
    let err = run(&file, &registry, &opts(&out)).unwrap_err();
    assert!(matches!(err, RunError::Config(_)), "{err}");
    assert!(!out.exists() && !dir.path().join("x").exists());
    for name in ["nightly", "kcs_2024", "a-b", "N1"] {
        mirador_pipeline::pipeline::check_name(name).unwrap();
    }
}

#[test]
fn a_deleted_lock_file_does_not_let_a_second_writer_in() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let held = mirador_pipeline::runner::lock(&out).unwrap();
    std::fs::remove_file(out.join(".mirador.lock")).unwrap();
    assert!(matches!(run(&file, &registry, &opts(&out)), Err(RunError::Locked(_))), "the output root itself is locked");
    assert!(!out.join("runs").exists(), "the refused run touched nothing");
    drop(held);
    assert!(run(&file, &registry, &opts(&out)).is_ok());
}

#[test]
fn a_live_attempts_temporary_directory_is_never_removed() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "");
    let out = dir.path().join("out");
    // Another process's attempt, alive (it holds its directory's lock), though the root's lock
    // is free (e.g. its holder's lock was lost); and a dead one's remains.
    let live = out.join("runs/.tmp-t-live");
    let dead = out.join("runs/.tmp-t-dead");
    for d in [&live, &dead] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::write(d.join("numbers.parquet"), b"partial").unwrap();
    }
    let handle = std::fs::File::open(&live).unwrap();
    handle.lock().unwrap();
    run(&file, &registry, &opts(&out)).unwrap();
    assert!(live.join("numbers.parquet").is_file(), "the live attempt's directory is intact");
    assert!(!dead.exists(), "a dead attempt's remains are removed");
    drop(handle);
    run(&file, &registry, &RunOptions { force: true, ..opts(&out) }).unwrap();
    assert!(!live.exists(), "once its process is gone, its remains are removed");
}

#[test]
fn reused_outputs_that_no_longer_fit_a_rerun_stage_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run(&sized_pipeline(dir.path(), 7, false), &registry, &opts(&out)).unwrap();
    let head = latest_id(&out);
    // `source` re-run with fewer rows: the reused `doubled` points at ids `numbers` no longer has.
    let smaller = sized_pipeline(dir.path(), 3, false);
    let only = RunOptions { only: vec!["source".into()], force: true, ..opts(&out) };
    let err = run(&smaller, &registry, &only).unwrap_err();
    assert!(matches!(err.cause(), RunError::Checks(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("relationships") && text.contains("reused from run") && text.contains("re-run `double`"), "{text}");
    assert_eq!(latest_id(&out), head, "nothing published");
    // A re-run that still fits (more rows: every reused id exists) passes the same checks.
    let larger = sized_pipeline(dir.path(), 9, false);
    let RunOutcome::Committed { dir: d, .. } = run(&larger, &registry, &only).unwrap() else { panic!() };
    let manifest = manifest_of(&d);
    let reused_checks = manifest["checks"].as_array().unwrap().iter().filter(|c| c["dataset"] == "doubled").count();
    assert!(reused_checks >= 3, "the reused dataset's checks ran: {manifest}");
}

#[test]
fn a_failed_attempt_is_kept_with_its_error_under_the_output_root_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for n in 1..=7 {
        let file = sized_pipeline(dir.path(), n, false);
        let text = file.text.clone() + "[[stage]]\nname = \"fails\"\ninputs = [\"numbers\"]\noutputs = [\"nothing\"]\n";
        std::fs::write(dir.path().join("p.toml"), text).unwrap();
        let file = PipelineFile::load(&dir.path().join("p.toml")).unwrap();
        let err = run(&file, &registry, &opts(&out)).unwrap_err();
        let RunError::Failed { kept, .. } = &err else { panic!("{err}") };
        assert!(kept.starts_with(out.join("failed")), "{}", kept.display());
        assert!(err.to_string().contains(&kept.display().to_string()), "the error says where: {err}");
        assert!(kept.join("numbers.parquet").is_file(), "outputs written so far are kept");
        assert!(std::fs::read_to_string(kept.join("error.txt")).unwrap().contains("always fails"));
        assert!(err.is_user_error());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(names_in(&out.join("failed")).len(), mirador_pipeline::runner::KEEP_FAILED, "only the newest are kept");
    assert!(latest_run(&out).is_none() && names_in(&out.join("runs")).is_empty());
    // A failed check keeps its attempt too.
    let strict = pipeline(dir.path(), "[checks.numbers]\nrange = { x = [0.0, 1.0] }\n");
    let err = run(&strict, &registry, &opts(&out)).unwrap_err();
    let RunError::Failed { kept, .. } = &err else { panic!("{err}") };
    assert!(kept.join("numbers.parquet").is_file() && kept.join("doubled.parquet").is_file());
}

#[test]
fn only_a_stage_reading_only_sources_runs_without_a_committed_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline(dir.path(), "");
    let out = dir.path().join("out");
    let err = run(&file, &registry, &RunOptions { only: vec!["double".into()], ..opts(&out) }).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, RunError::NoPreviousRun(_)) && text.contains("`double` reads `numbers` (from `source`)"), "{text}");
    let RunOutcome::Committed { dir: d, .. } = run(&file, &registry, &RunOptions { only: vec!["source".into()], ..opts(&out) }).unwrap()
    else {
        panic!()
    };
    assert!(d.join("numbers.parquet").is_file() && !d.join("doubled.parquet").exists());
    // Then the rest can be run on top of it.
    let RunOutcome::Committed { dir: d, .. } = run(&file, &registry, &RunOptions { only: vec!["double".into()], ..opts(&out) }).unwrap()
    else {
        panic!()
    };
    assert!(d.join("doubled.parquet").is_file());
}

#[test]
fn the_build_id_is_in_the_run_key_and_the_manifest() {
    let id = mirador_pipeline::runner::build_id();
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(id, mirador_pipeline::runner::build_id(), "computed once, stable");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let RunOutcome::Committed { dir: d, .. } = run(&pipeline(dir.path(), ""), &registry, &opts(&out)).unwrap() else { panic!() };
    assert_eq!(manifest_of(&d)["build_id"], id);
}

/// The state a crash at a publish step leaves is recovered by the next run. The crash is real:
/// this test binary runs [`crash_child`] in a child process that kills itself (SIGKILL) at the
/// step.
fn crash_publish(out: &Path, pipeline: &Path, step: &str, force: bool) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("CRASH_CHILD_OUT", out)
        .env("CRASH_CHILD_PIPELINE", pipeline)
        .env("CRASH_CHILD_AT", step)
        .env("CRASH_CHILD_FORCE", if force { "1" } else { "" })
        .status()
        .unwrap();
    #[cfg(unix)]
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "killed at `{step}`: {status}");
}

/// Run by [`crash_publish`] only (does nothing in a normal test run).
#[test]
fn crash_child() {
    let Ok(out) = std::env::var("CRASH_CHILD_OUT") else { return };
    let file = PipelineFile::load(&PathBuf::from(std::env::var("CRASH_CHILD_PIPELINE").unwrap())).unwrap();
    let force = std::env::var("CRASH_CHILD_FORCE").is_ok_and(|f| !f.is_empty());
    let opts = RunOptions { force, crash_at: std::env::var("CRASH_CHILD_AT").ok(), ..opts(Path::new(&out)) };
    let _ = run(&file, &registry, &opts);
    panic!("the run was not killed at {:?}", opts.crash_at);
}

fn assert_clean(out: &Path, context: &str) {
    let latest = out.join("latest");
    assert!(latest.join("manifest.json").is_file(), "latest points at a complete run ({context})");
    let odd: Vec<String> = names_in(&out.join("runs")).into_iter().filter(|n| n.starts_with('.')).collect();
    assert!(odd.is_empty(), "{context}: {odd:?}");
    assert!(!out.join(mirador_pipeline::runner::PUBLISHING).exists(), "{context}");
}

#[test]
fn a_crash_at_any_publish_step_is_finished_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    for &step in mirador_pipeline::runner::PUBLISH_STEPS {
        for (force, carry) in [(false, false), (false, true), (true, false), (true, true)] {
            if step == "aside" && !force {
                continue; // only a forced re-run of a committed key moves a copy aside
            }
            let context = format!("crash at `{step}`, force {force}, carry-state {carry}");
            let out = dir.path().join(format!("{step}-{force}-{carry}"));
            let first = sized_pipeline(dir.path(), 5, carry);
            let RunOutcome::Committed { run_id: first_id, .. } = run(&first, &registry, &opts(&out)).unwrap() else { panic!() };
            let second = sized_pipeline(dir.path(), 7, carry);
            let target = if force { first.clone() } else { second.clone() };
            let path = dir.path().join(format!("{step}-{force}-{carry}.toml"));
            std::fs::write(&path, &target.text).unwrap();
            crash_publish(&out, &path, step, force);

            // Whatever the step, a reader of `latest` finds a complete run.
            assert!(out.join("latest/manifest.json").is_file(), "{context}");
            // The next run (another night, or the same one again) first finishes the publish.
            let next = run(&target, &registry, &opts(&out)).unwrap();
            let RunOutcome::AlreadyCommitted { run_id, dir: d } = next else { panic!("{context}: {next:?}") };
            assert_eq!(latest_id(&out), run_id, "{context}");
            assert_clean(&out, &context);
            let rows = mirador_io::read_parquet(&d.join("doubled.parquet")).unwrap().height();
            assert_eq!(rows, if force { 5 } else { 7 }, "{context}");
            let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
            assert!(step == "pointed" || journal.contains("\"recovered\""), "{context}: {journal}");
            if carry && !force {
                // The chain continues from the recovered night.
                assert_eq!(manifest_of(&d)["carried_from"], first_id, "{context}");
                let third = sized_pipeline(dir.path(), 9, carry);
                let RunOutcome::Committed { dir: d3, .. } = run(&third, &registry, &opts(&out)).unwrap() else { panic!() };
                assert_eq!(manifest_of(&d3)["carried_from"].as_str(), Some(run_id.as_str()), "{context}");
            }
        }
    }
}

#[test]
fn a_carried_run_committed_but_never_made_latest_is_completed_and_an_older_night_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let night1 = sized_pipeline(dir.path(), 5, true);
    let RunOutcome::Committed { run_id: id1, .. } = run(&night1, &registry, &opts(&out)).unwrap() else { panic!() };
    let night2 = sized_pipeline(dir.path(), 7, true);
    let path = dir.path().join("night2.toml");
    std::fs::write(&path, &night2.text).unwrap();
    crash_publish(&out, &path, "renamed", false);
    // Without the publish record (as a crash of an older binary would leave it), the chain rule
    // alone completes the run: it continued from `latest`.
    std::fs::remove_file(out.join(mirador_pipeline::runner::PUBLISHING)).unwrap();
    assert_eq!(latest_id(&out), id1);
    let RunOutcome::AlreadyCommitted { run_id: id2, .. } = run(&night2, &registry, &opts(&out)).unwrap() else { panic!() };
    assert_eq!(latest_id(&out), id2, "the committed night became latest");
    // The first night given again is an ancestor: `latest` stays.
    assert!(matches!(run(&night1, &registry, &opts(&out)).unwrap(), RunOutcome::AlreadyCommitted { .. }));
    assert_eq!(latest_id(&out), id2);
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"completed\""), "{journal}");
}

/// Writes `numbers` with a column its declared schema does not have.
struct Drifts;
impl Stage for Drifts {
    fn name(&self) -> &'static str {
        "source"
    }
    fn inputs(&self) -> &'static [&'static str] {
        &[]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["numbers"]
    }
    fn output_schema(&self, _: &str) -> Option<Schema> {
        Some(numbers_schema())
    }
    fn run(&self, _: &StageContext) -> Result<StageOutput, StageError> {
        let df = df!("id" => [1i64, 2], "x" => [1u32, 2], "extra" => ["a", "b"])?;
        Ok(StageOutput::new().with_dataset("numbers", df))
    }
}

/// Writes `numbers` without declaring its schema.
struct Undeclared;
impl Stage for Undeclared {
    fn name(&self) -> &'static str {
        "source"
    }
    fn inputs(&self) -> &'static [&'static str] {
        &[]
    }
    fn outputs(&self) -> &'static [&'static str] {
        &["numbers"]
    }
    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        Source.run(ctx)
    }
}

#[test]
fn a_dataset_written_with_other_columns_than_declared_fails_the_run_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "name = \"t\"\n[[stage]]\nname = \"source\"\noutputs = [\"numbers\"]\n").unwrap();
    let file = PipelineFile::load(&path).unwrap();
    let out = dir.path().join("out");
    let drifts = |_: &str| -> Option<Box<dyn Stage>> { Some(Box::new(Drifts)) };
    let err = run(&file, &drifts, &opts(&out)).unwrap_err().to_string();
    assert!(err.contains("`numbers` differs from its declared schema"), "{err}");
    assert!(err.contains("`x` is u32, declared f64") && err.contains("`extra` (str) is not declared"), "{err}");
    assert!(latest_run(&out).is_none());
    let undeclared = |_: &str| -> Option<Box<dyn Stage>> { Some(Box::new(Undeclared)) };
    let err = run(&file, &undeclared, &opts(&out)).unwrap_err().to_string();
    assert!(err.contains("`numbers` has no declared schema"), "{err}");
    assert!(latest_run(&out).is_none());
}
