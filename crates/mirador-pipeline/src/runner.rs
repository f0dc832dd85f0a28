//! The runner: executes a checked plan level by level (stages of a level in parallel), writes
//! every output into a temporary run directory, runs the blocking data-quality checks, writes the
//! manifest and publishes the run atomically (rename the directory, then swap the `latest`
//! pointer). One run at a time per output root (a kernel file lock, released if the process dies).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use polars::prelude::DataFrame;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tracing::{info, info_span, warn};

use crate::check::{Plan, PlannedStage, Registry, plan};
use crate::checks::{CheckResult, checked_columns, referenced, run_checks};
use crate::error::{ConfigError, RunError, StageError};
use crate::manifest::{Attempt, InputRecord, Manifest, OutputRecord, StageRecord};
use crate::pipeline::PipelineFile;
use crate::stage::StageContext;
use crate::store::Store;

/// Name of the pointer (a symlink) to the newest committed run inside the output root.
pub const LATEST: &str = "latest";
/// Name of the lock file inside the output root.
pub const LOCK_FILE: &str = ".mirador.lock";
/// Name of the journal inside the output root: one JSON line per run event (started, committed,
/// already committed, failed, interrupted attempt found), appended, never rewritten.
pub const JOURNAL: &str = "journal.jsonl";
/// Name of the progress record inside a run's temporary directory.
const ATTEMPT_FILE: &str = "attempt.json";
/// Parameter names whose values are secrets: passed to stages, hashed into run keys, never
/// recorded in the manifest or logged.
pub const SECRET_PARAMS: &[&str] = &["pseudonym-key"];
/// Mirador's version, recorded in manifests and hashed into run keys.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How to run a pipeline.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Output root; runs land in `<out>/runs/<run id>`, `<out>/latest` points to the newest.
    pub out_root: PathBuf,
    /// Run only these stages; the others' outputs are taken from the latest run.
    pub only: Vec<String>,
    /// Run this stage and everything downstream of it; the rest is taken from the latest run.
    pub from: Option<String>,
    /// Re-run even if a run with the same key is committed.
    pub force: bool,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// Extra parameters per stage from the resolved settings (CLI flags, env), merged over the
    /// pipeline file's parameters and recorded in the manifest.
    pub overrides: BTreeMap<String, toml::Table>,
    /// Secret parameters per stage (e.g. the pseudonymisation key): passed to the stage, hashed
    /// into the run key, never written to the manifest or logs.
    pub secrets: BTreeMap<String, toml::Table>,
    /// Abort right after this stage has written its outputs (fault injection for crash tests).
    pub fail_after: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// A new run was committed.
    Committed {
        /// Run id.
        run_id: String,
        /// Its directory.
        dir: PathBuf,
    },
    /// A run with the same key (same inputs, parameters, code) was already committed: nothing to do.
    AlreadyCommitted {
        /// Run id.
        run_id: String,
        /// Its directory.
        dir: PathBuf,
    },
}

/// Runs `file` with the stages of `registry`.
pub fn run(file: &PipelineFile, registry: &Registry, opts: &RunOptions) -> Result<RunOutcome, RunError> {
    let plan = plan(file, registry)?;
    check_names(&plan)?;
    let selected = select(file, &plan, opts)?;
    fs::create_dir_all(&opts.out_root).map_err(io_err("create output root", &opts.out_root))?;
    let _lock = lock(&opts.out_root)?;
    let runs_dir = opts.out_root.join("runs");
    fs::create_dir_all(&runs_dir).map_err(io_err("create", &runs_dir))?;
    let interrupted = clean_stale_temporaries(&runs_dir);
    for a in &interrupted {
        journal(
            &opts.out_root,
            "interrupted",
            &a.run_id,
            &format!(
                "attempt started at {} by pid {} died after stages {:?}; its remains were removed",
                a.started_at, a.pid, a.stages_done
            ),
        );
    }

    let previous = latest_run(&opts.out_root);
    let partial = selected.len() < plan.stage_names().len();
    if partial && previous.is_none() {
        return Err(RunError::NoPreviousRun(format!(
            "--only/--from need the outputs of a previous run in `{}`; run the whole pipeline first",
            opts.out_root.display()
        )));
    }

    let started = Instant::now();
    let inputs = hash_sources(file)?;
    let stage_params = resolve_params(file, &plan, opts)?;
    let reused_from = if partial { previous.as_deref() } else { None };
    let run_key = run_key(file, &inputs, &stage_params, &selected, reused_from, opts);
    let run_id = format!("{}-{}", file.name, &run_key[..16]);
    let final_dir = runs_dir.join(&run_id);
    if final_dir.join("manifest.json").is_file() && !opts.force {
        info!(run_id = %run_id, "Already committed with the same inputs, parameters and code; nothing to do.");
        // A run that carries state from the previous one must continue from the newest run, so an
        // older run's inputs given again do not move `latest` back to it.
        let head = previous.as_deref().and_then(Path::file_name).is_some_and(|p| p != run_id.as_str());
        if carries_state(&stage_params) && head {
            info!(run_id = %run_id, "Stages carry state: `latest` stays on the newest run.");
        } else {
            point_latest(&opts.out_root, &run_id)?;
        }
        journal(&opts.out_root, "already_committed", &run_id, "same inputs, parameters and code; nothing to do");
        return Ok(RunOutcome::AlreadyCommitted { run_id, dir: final_dir });
    }
    let tmp_dir = runs_dir.join(format!(".tmp-{run_id}"));
    fs::create_dir_all(&tmp_dir).map_err(io_err("create", &tmp_dir))?;
    let attempt =
        Mutex::new(Attempt { run_id: run_id.clone(), started_at: chrono_like_now(), pid: std::process::id(), stages_done: Vec::new() });
    record_attempt(&tmp_dir, &attempt)?;
    journal(&opts.out_root, "started", &run_id, &format!("pid {}", std::process::id()));

    let result = execute(file, &plan, opts, &selected, previous.as_deref(), &stage_params, &tmp_dir, &attempt);
    let (records, outputs, checks) = match result {
        Ok(r) => r,
        Err(e) => {
            if opts.fail_after.is_none() {
                let _ = fs::remove_dir_all(&tmp_dir);
            }
            journal(&opts.out_root, "failed", &run_id, &e.to_string());
            return Err(e);
        }
    };
    let failed: Vec<&CheckResult> = checks.iter().filter(|c| !c.passed).collect();
    if !failed.is_empty() {
        let report = failed.iter().map(|c| format!("  {}: {} ({})", c.dataset, c.check, c.detail)).collect::<Vec<_>>();
        let _ = fs::remove_dir_all(&tmp_dir);
        let err = RunError::Checks(report.join("\n"));
        journal(&opts.out_root, "failed", &run_id, &err.to_string());
        return Err(err);
    }

    let manifest = Manifest {
        mirador_version: VERSION.to_owned(),
        pipeline: file.name.clone(),
        run_id: run_id.clone(),
        run_key,
        seed: file.seed,
        config_sha256: mirador_io::sha256_bytes(file.text.as_bytes()),
        started_at: chrono_like_now(),
        seconds: started.elapsed().as_secs_f64(),
        reused_from: if partial { previous.as_ref().map(|p| p.display().to_string()) } else { None },
        inputs,
        stages: records,
        outputs,
        checks,
        interrupted_attempts: interrupted,
    };
    let _ = fs::remove_file(tmp_dir.join(ATTEMPT_FILE));
    write_json(&tmp_dir.join("manifest.json"), &manifest)?;
    publish(&tmp_dir, &final_dir)?;
    point_latest(&opts.out_root, &run_id)?;
    journal(&opts.out_root, "committed", &run_id, &format!("{:.1} s", started.elapsed().as_secs_f64()));
    info!(run_id = %run_id, dir = %final_dir.display(), seconds = started.elapsed().as_secs_f64(), "Committed run.");
    if let Some(keep) = file.keep_runs {
        prune_runs(&opts.out_root, keep.max(1), &run_id);
    }
    Ok(RunOutcome::Committed { run_id, dir: final_dir })
}

/// Removes the oldest committed runs beyond `keep` (by the time their manifest was written),
/// never `current`. A failure to remove is logged, not fatal: the run is already committed.
fn prune_runs(out_root: &Path, keep: usize, current: &str) {
    let Ok(entries) = fs::read_dir(out_root.join("runs")) else { return };
    let mut runs: Vec<(std::time::SystemTime, String, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let modified = fs::metadata(e.path().join("manifest.json")).and_then(|m| m.modified()).ok()?;
            (!name.starts_with('.')).then(|| (modified, name, e.path()))
        })
        .collect();
    runs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    let mut kept = usize::from(runs.iter().any(|r| r.1 == current));
    for (_, name, path) in runs {
        if name == current {
            continue;
        }
        if kept < keep {
            kept += 1;
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => journal(out_root, "pruned", &name, &format!("keep-runs = {keep}")),
            Err(e) => warn!(run = %name, error = %e, "Could not remove an old run."),
        }
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RunError + 'a {
    move |source| RunError::Io(mirador_io::IoError::Fs { action, path: path.to_owned(), source })
}

/// Dataset and stage names become file names: only `[a-z0-9_]`, so no name can escape the run
/// directory.
fn check_names(plan: &Plan) -> Result<(), ConfigError> {
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    for name in plan.producers.keys().map(String::as_str).chain(plan.stage_names()) {
        if !ok(name) {
            return Err(ConfigError::PathEscape(name.to_owned()));
        }
    }
    Ok(())
}

/// Refuses an output root from a pipeline file that is absolute or climbs with `..`.
pub fn check_out_root(path: &Path) -> Result<(), ConfigError> {
    if path.is_absolute() || path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(ConfigError::PathEscape(path.display().to_string()));
    }
    Ok(())
}

fn select(file: &PipelineFile, plan: &Plan, opts: &RunOptions) -> Result<BTreeSet<String>, RunError> {
    let all: Vec<&str> = plan.stage_names();
    for name in opts.only.iter().chain(opts.from.iter()) {
        if !all.contains(&name.as_str()) {
            return Err(ConfigError::UnknownStage(format!("{name}` in pipeline `{}", file.name)).into());
        }
    }
    if !opts.only.is_empty() {
        return Ok(opts.only.iter().cloned().collect());
    }
    let Some(from) = &opts.from else {
        return Ok(all.iter().map(|s| (*s).to_owned()).collect());
    };
    // `from` and everything downstream of it.
    let mut selected = BTreeSet::from([from.clone()]);
    let mut changed = true;
    while changed {
        changed = false;
        for s in plan.levels.iter().flatten() {
            if selected.contains(s.stage.name()) {
                continue;
            }
            let downstream = s.inputs.iter().any(|i| plan.producers.get(i).is_some_and(|p| selected.contains(p)));
            if downstream {
                selected.insert(s.stage.name().to_owned());
                changed = true;
            }
        }
    }
    Ok(selected)
}

fn lock(out_root: &Path) -> Result<File, RunError> {
    let path = out_root.join(LOCK_FILE);
    let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(io_err("open lock", &path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(RunError::Locked(out_root.to_owned())),
        Err(fs::TryLockError::Error(e)) => Err(io_err("lock", &path)(e)),
    }
}

/// Under the lock, any temporary run directory is the remains of a crashed run: removes them and
/// returns what each attempt had recorded of its progress.
fn clean_stale_temporaries(runs_dir: &Path) -> Vec<Attempt> {
    let Ok(entries) = fs::read_dir(runs_dir) else { return Vec::new() };
    let mut found = Vec::new();
    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for path in names {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(run_id) = name.strip_prefix(".tmp-") {
            let attempt = fs::read(path.join(ATTEMPT_FILE)).ok().and_then(|b| serde_json::from_slice::<Attempt>(&b).ok());
            // A kill before the first record leaves a directory without one.
            found.push(attempt.unwrap_or_else(|| Attempt { run_id: run_id.to_owned(), started_at: 0, pid: 0, stages_done: Vec::new() }));
        }
        if name.starts_with(".tmp-") || name.starts_with(".old-") {
            warn!(dir = %path.display(), "Removing the remains of an interrupted run.");
            let _ = fs::remove_dir_all(&path);
        }
    }
    found
}

/// Rewrites the attempt's progress record (atomically) in its temporary directory.
fn record_attempt(tmp_dir: &Path, attempt: &Mutex<Attempt>) -> Result<(), RunError> {
    let a = attempt.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    write_json(&tmp_dir.join(ATTEMPT_FILE), &*a)
}

/// Writes a run record (manifest, attempt) as pretty JSON, atomically.
fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<(), RunError> {
    let json = serde_json::to_vec_pretty(value)
        .map_err(|e| RunError::Stage { stage: "manifest".into(), cause: StageError::Data(e.to_string()) })?;
    mirador_io::write_bytes(path, &json)?;
    Ok(())
}

/// Appends one event to the output root's journal. Best effort: a journal that cannot be written
/// is logged, never fails the run.
fn journal(out_root: &Path, event: &str, run_id: &str, detail: &str) {
    use std::io::Write as _;
    let line = serde_json::json!({ "at": chrono_like_now(), "event": event, "run_id": run_id, "detail": detail });
    let path = out_root.join(JOURNAL);
    let mut options = File::options();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&path).and_then(|mut f| {
        f.write_all(format!("{line}\n").as_bytes())?;
        f.sync_data()
    });
    if let Err(e) = written {
        warn!(path = %path.display(), error = %e, "Cannot append to the run journal.");
    }
}

/// The directory `latest` points to, if any.
pub fn latest_run(out_root: &Path) -> Option<PathBuf> {
    let link = out_root.join(LATEST);
    let target = fs::read_link(&link).ok()?;
    let dir = out_root.join(target);
    dir.join("manifest.json").is_file().then_some(dir)
}

fn hash_sources(file: &PipelineFile) -> Result<Vec<InputRecord>, RunError> {
    let mut out = Vec::new();
    for (id, spec) in &file.sources {
        for p in &spec.paths {
            let path = file.base_dir.join(p);
            let (sha256, bytes) = mirador_io::sha256_file(&path)
                .map_err(|e| RunError::Stage { stage: "ingest".into(), cause: StageError::Data(format!("source `{id}`: {e}")) })?;
            out.push(InputRecord { source: id.clone(), path: path.display().to_string(), sha256, bytes });
        }
    }
    Ok(out)
}

fn resolve_params(file: &PipelineFile, plan: &Plan, opts: &RunOptions) -> Result<BTreeMap<String, toml::Table>, RunError> {
    let mut out = BTreeMap::new();
    for s in plan.levels.iter().flatten() {
        let spec = &file.stages[s.spec_index];
        let (mut table, _) = file.stage_params(spec)?;
        if let Some(over) = opts.overrides.get(&spec.name) {
            for (k, v) in over {
                table.insert(k.clone(), v.clone());
            }
        }
        out.insert(spec.name.clone(), table);
    }
    Ok(out)
}

/// Whether a stage carries state from run to run (its parameters set `carry-state = true`).
fn carries_state(params: &BTreeMap<String, toml::Table>) -> bool {
    params.values().any(|t| t.get("carry-state").and_then(toml::Value::as_bool) == Some(true))
}

fn run_key(
    file: &PipelineFile,
    inputs: &[InputRecord],
    params: &BTreeMap<String, toml::Table>,
    selected: &BTreeSet<String>,
    previous: Option<&Path>,
    opts: &RunOptions,
) -> String {
    let mut h = Sha256::new();
    h.update(VERSION.as_bytes());
    h.update(file.text.as_bytes());
    for i in inputs {
        h.update(i.path.as_bytes());
        h.update(i.sha256.as_bytes());
    }
    for (stage, table) in params {
        h.update(stage.as_bytes());
        h.update(table.to_string().as_bytes());
    }
    for (stage, table) in &opts.secrets {
        h.update(stage.as_bytes());
        h.update(Sha256::digest(table.to_string().as_bytes()));
    }
    for s in selected {
        h.update(s.as_bytes());
    }
    if let Some(p) = previous {
        h.update(p.display().to_string().as_bytes());
    }
    hex::encode(h.finalize())
}

type Executed = (Vec<StageRecord>, Vec<OutputRecord>, Vec<CheckResult>);

#[allow(clippy::too_many_arguments)]
fn execute(
    file: &PipelineFile,
    plan: &Plan,
    opts: &RunOptions,
    selected: &BTreeSet<String>,
    previous: Option<&Path>,
    params: &BTreeMap<String, toml::Table>,
    tmp_dir: &Path,
    attempt: &Mutex<Attempt>,
) -> Result<Executed, RunError> {
    let datasets = Store::new(plan);
    let records = Mutex::new(Vec::new());
    let outputs = Mutex::new(Vec::new());
    let checks = Mutex::new(Vec::new());
    let total = plan.stage_names().len() as u64;
    let bar = if opts.progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} stages  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));

    for level in &plan.levels {
        // One read of each file-held dataset the level's stages read whole, before they start
        // (in parallel, each stage would read its own copy).
        datasets.load_whole_inputs(level.iter().filter(|p| selected.contains(p.stage.name())))?;
        let results: Vec<Result<(), RunError>> = level
            .par_iter()
            .map(|planned| {
                let name = planned.stage.name();
                let record = if selected.contains(name) {
                    bar.set_message(format!("running {name}"));
                    let r = run_stage(file, planned, params, opts, previous, tmp_dir, &datasets, &outputs, &checks)?;
                    if opts.fail_after.as_deref() == Some(name) {
                        return Err(RunError::Stage {
                            stage: name.into(),
                            cause: StageError::Data("fault injected after the stage (--fail-after)".into()),
                        });
                    }
                    r
                } else {
                    reuse_stage(planned, previous, tmp_dir, &datasets, &outputs)?
                };
                bar.inc(1);
                records.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(record);
                attempt.lock().unwrap_or_else(std::sync::PoisonError::into_inner).stages_done.push(name.to_owned());
                record_attempt(tmp_dir, attempt)?;
                Ok(())
            })
            .collect();
        for r in results {
            r?;
        }
    }
    bar.finish_and_clear();
    let mut records = records.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let order = plan.stage_names();
    records.sort_by_key(|r: &StageRecord| order.iter().position(|n| *n == r.name));
    let mut outputs = outputs.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    outputs.sort_by(|a: &OutputRecord, b| a.dataset.cmp(&b.dataset));
    let mut checks = checks.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    checks.sort_by(|a, b| (&a.dataset, &a.check).cmp(&(&b.dataset, &b.check)));
    // Row-count reconciliation reported by stages: rows in = accepted + quarantined (+ deferred:
    // valid rows dated after the run's as-of day, left for a later run).
    for rec in &records {
        if let Some(serde_json::Value::Object(rec_map)) = rec.metrics.get("reconciliation") {
            for (source, v) in rec_map {
                let get = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(u64::MAX);
                let (rows_in, accepted, quarantined) = (get("rows_in"), get("accepted"), get("quarantined"));
                let deferred = v.get("deferred").and_then(serde_json::Value::as_u64).unwrap_or(0);
                let passed = rows_in != u64::MAX && rows_in == accepted.saturating_add(quarantined).saturating_add(deferred);
                let (check, detail) = if deferred == 0 {
                    ("reconciliation(rows_in = accepted + quarantined)", format!("{rows_in} = {accepted} + {quarantined}"))
                } else {
                    (
                        "reconciliation(rows_in = accepted + quarantined + deferred)",
                        format!("{rows_in} = {accepted} + {quarantined} + {deferred}"),
                    )
                };
                checks.push(CheckResult { dataset: source.clone(), check: check.into(), passed, detail });
            }
        }
    }
    Ok((records, outputs, checks))
}

#[allow(clippy::too_many_arguments)]
fn run_stage(
    file: &PipelineFile,
    planned: &PlannedStage,
    params: &BTreeMap<String, toml::Table>,
    opts: &RunOptions,
    previous: Option<&Path>,
    tmp_dir: &Path,
    datasets: &Store,
    outputs: &Mutex<Vec<OutputRecord>>,
    checks: &Mutex<Vec<CheckResult>>,
) -> Result<StageRecord, RunError> {
    let name = planned.stage.name();
    let spec = &file.stages[planned.spec_index];
    let span = info_span!("stage", stage = name);
    let _enter = span.enter();
    let started = Instant::now();
    let mut stage_params = params.get(name).cloned().unwrap_or_default();
    let mut recorded_params = stage_params.clone();
    for secret in SECRET_PARAMS {
        if let Some(v) = recorded_params.get_mut(*secret) {
            *v = toml::Value::String("<secret>".into());
        }
    }
    if let Some(secret) = opts.secrets.get(name) {
        for (k, v) in secret {
            stage_params.insert(k.clone(), v.clone());
        }
    }
    let mut inputs: BTreeMap<String, Arc<DataFrame>> = BTreeMap::new();
    for id in &planned.inputs {
        if let Some(df) = datasets.input(planned.stage.as_ref(), id)? {
            inputs.insert(id.clone(), df);
        }
    }
    let rows_in: BTreeMap<String, usize> = inputs.iter().map(|(k, v)| (k.clone(), v.height())).collect();
    let artifact_dir = tmp_dir.join(name);
    fs::create_dir_all(&artifact_dir).map_err(io_err("create", &artifact_dir))?;
    let ctx = StageContext {
        stage: name.to_owned(),
        params: stage_params,
        inputs,
        sources: spec.sources.iter().filter_map(|s| file.sources.get(s).map(|v| (s.clone(), v.clone()))).collect(),
        artifact_dir: artifact_dir.clone(),
        dataset_dir: tmp_dir.to_owned(),
        base_dir: file.base_dir.clone(),
        seed: file.seed,
        previous_run: previous.map(Path::to_owned),
    };
    info!("Running stage.");
    let output = planned.stage.run(&ctx).map_err(|cause| RunError::Stage { stage: name.into(), cause })?;
    let mut rows_out = BTreeMap::new();
    // Checks may refer to datasets of earlier stages or to this stage's other outputs.
    let check = |id: &str, df: &DataFrame| -> Result<(), RunError> {
        if let Some(c) = file.checks.get(id) {
            let mut available = BTreeMap::new();
            for target in referenced(c) {
                if let Some(df) = datasets.whole_frame(target)? {
                    available.insert(target.to_owned(), df);
                }
            }
            let results = run_checks(id, df, c, &available);
            checks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(results);
        }
        Ok(())
    };
    let mut record = |id: &str, rows: usize, sha256: String| {
        info!(dataset = id, rows, "Wrote dataset.");
        rows_out.insert(id.to_owned(), rows);
        outputs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(OutputRecord {
            dataset: id.to_owned(),
            path: format!("{id}.parquet"),
            rows,
            sha256,
        });
    };
    for (id, mut df) in output.datasets {
        let path = tmp_dir.join(format!("{id}.parquet"));
        let sha256 = mirador_io::write_parquet(&mut df, &path)?;
        let df = Arc::new(df);
        datasets.insert(id, Arc::clone(&df), &path);
        check(id, &df)?;
        record(id, df.height(), sha256);
    }
    // Written by the stage as it went: kept as files, their checks read the columns they test.
    for streamed in output.streamed {
        let id = streamed.id;
        datasets.insert_file(id, &streamed.path);
        if let Some(c) = file.checks.get(id) {
            check(id, &mirador_io::read_parquet_columns(&streamed.path, &checked_columns(c))?)?;
        }
        record(id, streamed.rows, streamed.sha256);
    }
    if fs::read_dir(&artifact_dir).map(|mut d| d.next().is_none()).unwrap_or(false) {
        let _ = fs::remove_dir(&artifact_dir);
    }
    Ok(StageRecord {
        name: name.to_owned(),
        status: "ran".into(),
        seconds: started.elapsed().as_secs_f64(),
        rows_in,
        rows_out,
        params: serde_json::to_value(&recorded_params).unwrap_or_default(),
        metrics: output.metrics,
    })
}

fn reuse_stage(
    planned: &PlannedStage,
    previous: Option<&Path>,
    tmp_dir: &Path,
    datasets: &Store,
    outputs: &Mutex<Vec<OutputRecord>>,
) -> Result<StageRecord, RunError> {
    let name = planned.stage.name();
    let prev = previous.ok_or_else(|| RunError::NoPreviousRun(format!("no previous run to reuse `{name}` from")))?;
    let mut rows_out = BTreeMap::new();
    for id in planned.stage.outputs() {
        let src = prev.join(format!("{id}.parquet"));
        if !src.is_file() {
            return Err(RunError::NoPreviousRun(format!(
                "the latest run `{}` has no `{id}` to reuse; run the whole pipeline",
                prev.display()
            )));
        }
        let dst = tmp_dir.join(format!("{id}.parquet"));
        copy_file(&src, &dst)?;
        copy_file(&src.with_extension("schema.json"), &dst.with_extension("schema.json"))?;
        let (sha256, _) = mirador_io::sha256_file(&dst)?;
        let rows = mirador_io::parquet_rows(&dst)?;
        rows_out.insert((*id).to_owned(), rows);
        outputs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(OutputRecord {
            dataset: (*id).to_owned(),
            path: format!("{id}.parquet"),
            rows,
            sha256,
        });
        datasets.insert_file(id, &dst);
    }
    let artifacts = prev.join(name);
    if artifacts.is_dir() {
        copy_dir(&artifacts, &tmp_dir.join(name))?;
    }
    Ok(StageRecord {
        name: name.to_owned(),
        status: format!("reused from {}", prev.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
        seconds: 0.0,
        rows_in: BTreeMap::new(),
        rows_out,
        params: serde_json::Value::Null,
        metrics: serde_json::Map::new(),
    })
}

/// Puts a reused file into the new run: a hard link where the file system allows (a committed
/// run's files are never written again, and Mirador replaces files by renaming, never in place),
/// a copy otherwise. Either way the file is not read into memory. A half-done copy lies in the
/// run's temporary directory, which is never published.
fn copy_file(src: &Path, dst: &Path) -> Result<(), RunError> {
    if !src.is_file() {
        return Ok(());
    }
    Ok(mirador_io::link_or_copy(src, dst)?)
}

fn copy_dir(src: &Path, dst: &Path) -> Result<(), RunError> {
    fs::create_dir_all(dst).map_err(io_err("create", dst))?;
    for entry in fs::read_dir(src).map_err(io_err("read", src))?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &dst.join(entry.file_name()))?;
        } else {
            copy_file(&path, &dst.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// Renames the finished temporary directory into place. A forced re-run of a committed key moves
/// the old directory aside first and deletes it after.
fn publish(tmp_dir: &Path, final_dir: &Path) -> Result<(), RunError> {
    let parent = final_dir.parent().unwrap_or(Path::new("."));
    let mut old = None;
    if final_dir.exists() {
        let aside = parent.join(format!(".old-{}", final_dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
        let _ = fs::remove_dir_all(&aside);
        fs::rename(final_dir, &aside).map_err(io_err("move aside", final_dir))?;
        old = Some(aside);
    }
    fs::rename(tmp_dir, final_dir).map_err(io_err("publish", final_dir))?;
    mirador_io::sync_dir(parent)?;
    if let Some(old) = old {
        let _ = fs::remove_dir_all(old);
    }
    Ok(())
}

/// Atomically points `<out>/latest` at `runs/<run_id>` (a new symlink renamed over the old).
fn point_latest(out_root: &Path, run_id: &str) -> Result<(), RunError> {
    let link = out_root.join(LATEST);
    let target = Path::new("runs").join(run_id);
    if fs::read_link(&link).is_ok_and(|t| t == target) {
        return Ok(());
    }
    let tmp = out_root.join(".latest.tmp");
    let _ = fs::remove_file(&tmp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &tmp).map_err(io_err("create pointer", &tmp))?;
    #[cfg(not(unix))]
    return Err(io_err("create pointer", &tmp)(std::io::Error::other("symlinks need a unix system")));
    fs::rename(&tmp, &link).map_err(io_err("swap pointer", &link))?;
    mirador_io::sync_dir(out_root)?;
    Ok(())
}

/// Wall-clock start time for the manifest only (never inside stage outputs): seconds since the
/// Unix epoch.
fn chrono_like_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
