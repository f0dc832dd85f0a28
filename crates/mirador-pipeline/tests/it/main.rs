//! Runner behaviour with small fake stages: parallel levels, atomic publish, idempotent re-runs,
//! partial runs, blocking checks, the lock, and crash leftovers.

use std::path::Path;

use mirador_pipeline::{PipelineFile, RunError, RunOptions, RunOutcome, Stage, StageContext, StageError, StageOutput, latest_run, run};
use polars::prelude::*;

struct Source;
impl Stage for Source {
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
    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let df = ctx.input("numbers")?.clone().lazy().with_column(col("x") * lit(2.0)).collect()?;
        std::fs::write(ctx.artifact_dir().join("note.txt"), "artifact").map_err(|e| StageError::Data(e.to_string()))?;
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
    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        Ok(StageOutput::new().with_dataset("picked", ctx.input("doubled")?.clone()))
    }
}

fn registry(name: &str) -> Option<Box<dyn Stage>> {
    Some(match name {
        "source" => Box::new(Source),
        "pick" => Box::new(Pick),
        "double" => Box::new(Double),
        "fails" => Box::new(Fails),
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
    assert!(run_dir.join("double/note.txt").is_file());
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
    assert!(matches!(err, RunError::Checks(_)), "{err}");
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
