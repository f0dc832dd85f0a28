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
use polars::prelude::{DataFrame, Schema};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tracing::{debug, info, info_span, warn};

use crate::check::{Plan, PlannedStage, Registry, plan};
use crate::checks::{CheckResult, checked_columns, referenced, run_checks_knowing};
use crate::error::{ConfigError, RunError, StageError};
use crate::manifest::{Attempt, InputRecord, Manifest, OutputRecord, StageRecord};
use crate::pipeline::PipelineFile;
use crate::stage::{Stage, StageContext};
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
/// Name of the publish record inside the output root: written (synced) before a publish moves
/// anything, removed after `latest` points at the new run. Found by the next run, it says which
/// publish to finish.
pub const PUBLISHING: &str = ".publishing.json";
/// The publish steps at which [`RunOptions::crash_at`] can kill the process.
pub const PUBLISH_STEPS: &[&str] = &["marked", "aside", "renamed", "pointed"];
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
    /// Kill the process (SIGKILL) at this step of the publish (fault injection for crash tests):
    /// `marked` (the publish is recorded, nothing moved), `aside` (a forced re-run moved the
    /// committed copy aside), `renamed` (the run is in `runs/`, `latest` not moved), `pointed`
    /// (`latest` moved, the publish record not yet removed).
    pub crash_at: Option<String>,
    /// Warnings to log at the start and record in the manifest (e.g. the sample data's demo
    /// pseudonym key).
    pub warnings: Vec<String>,
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
    crate::pipeline::check_name(&file.name)?;
    let plan = plan(file, registry)?;
    check_names(&plan)?;
    let selected = select(file, &plan, opts)?;
    mirador_io::create_dir(&opts.out_root)?;
    let _lock = lock(&opts.out_root)?;
    let runs_dir = opts.out_root.join("runs");
    mirador_io::create_dir(&runs_dir)?;
    // A publish that died half-way is finished first (or undone), before anything else looks
    // at `runs/` or `latest`.
    recover_publish(&opts.out_root)?;
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
        needs_nothing_reused(&plan, &selected, opts)?;
    }

    let started = Instant::now();
    let inputs = hash_sources(file)?;
    let stage_params = resolve_params(file, &plan, opts)?;
    let reused_from = if partial { previous.as_deref() } else { None };
    let run_key = run_key(file, &inputs, &stage_params, &selected, reused_from, opts);
    let run_id = format!("{}-{}", file.name, &run_key[..16]);
    let final_dir = runs_dir.join(&run_id);
    let carries = carries_state(&plan, &stage_params);
    if final_dir.join("manifest.json").is_file() && !opts.force {
        info!(run_id = %run_id, "Already committed with the same inputs, parameters and code; nothing to do.");
        let latest_id = previous.as_deref().and_then(Path::file_name).map(|p| p.to_string_lossy().into_owned());
        if carries && latest_id.as_deref().is_some_and(|l| l != run_id) {
            // A run that carries state from the previous one must continue from the newest run:
            // an older night's inputs given again do not move `latest` back. But a run committed
            // on top of `latest` that never became `latest` (a crash between the two steps of its
            // publish) is the chain's next run: the pointer is moved on to it.
            match chain_position(&opts.out_root, &run_id, latest_id.as_deref().unwrap_or_default()) {
                Chain::Continues => {
                    point_latest(&opts.out_root, &run_id)?;
                    journal(&opts.out_root, "completed", &run_id, "committed on top of latest, which had not moved to it");
                    warn!(run_id = %run_id, "The run was committed but `latest` had not moved to it: moved now.");
                }
                Chain::Earlier => info!(run_id = %run_id, "Stages carry state: `latest` stays on the newest run."),
                Chain::Unknown => warn!(
                    run_id = %run_id,
                    "Stages carry state: `latest` stays on the newest run (the chain between them was pruned, so not checked)."
                ),
                Chain::Apart(latest) => {
                    return Err(RunError::NoPreviousRun(format!(
                        "run `{run_id}` is committed but is not part of the chain `latest` ({latest}) continues: its data are not in \
                         the carried state. Give the nights after it again in order, or re-run it with --force to continue from \
                         `latest`"
                    )));
                }
            }
        } else {
            point_latest(&opts.out_root, &run_id)?;
        }
        journal(&opts.out_root, "already_committed", &run_id, "same inputs, parameters and code; nothing to do");
        return Ok(RunOutcome::AlreadyCommitted { run_id, dir: final_dir });
    }
    let tmp_dir = runs_dir.join(format!(".tmp-{run_id}"));
    mirador_io::create_dir(&tmp_dir)?;
    // Held until the run ends: no other process takes this directory for a dead attempt's remains.
    let _attempt_lock = lock_dir(&tmp_dir)?;
    let attempt =
        Mutex::new(Attempt { run_id: run_id.clone(), started_at: chrono_like_now(), pid: std::process::id(), stages_done: Vec::new() });
    record_attempt(&tmp_dir, &attempt)?;
    journal(&opts.out_root, "started", &run_id, &format!("pid {}", std::process::id()));
    for w in &opts.warnings {
        warn!("{w}");
    }

    let result = execute(file, &plan, opts, &selected, previous.as_deref(), &stage_params, &tmp_dir, &attempt);
    let (records, outputs, checks) = match result {
        Ok(r) => r,
        Err(e) => {
            journal(&opts.out_root, "failed", &run_id, &e.to_string());
            if opts.fail_after.is_some() {
                // Fault injection: leave the temporary directory as a crash would.
                return Err(e);
            }
            return Err(keep_failed(&opts.out_root, &tmp_dir, &run_id, e));
        }
    };
    let failed: Vec<&CheckResult> = checks.iter().filter(|c| !c.passed).collect();
    if !failed.is_empty() {
        let report = failed.iter().map(|c| format!("  {}: {} ({})", c.dataset, c.check, c.detail)).collect::<Vec<_>>();
        let err = RunError::Checks(report.join("\n"));
        journal(&opts.out_root, "failed", &run_id, &err.to_string());
        return Err(keep_failed(&opts.out_root, &tmp_dir, &run_id, err));
    }

    let manifest = Manifest {
        mirador_version: VERSION.to_owned(),
        build_id: build_id().to_owned(),
        pipeline: file.name.clone(),
        run_id: run_id.clone(),
        run_key,
        seed: file.seed,
        config_sha256: mirador_io::sha256_bytes(file.text.as_bytes()),
        started_at: chrono_like_now(),
        seconds: started.elapsed().as_secs_f64(),
        reused_from: if partial { previous.as_ref().map(|p| p.display().to_string()) } else { None },
        carried_from: if carries { previous.as_deref().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()) } else { None },
        warnings: opts.warnings.clone(),
        inputs,
        stages: records,
        outputs,
        checks,
        interrupted_attempts: interrupted,
    };
    let _ = fs::remove_file(tmp_dir.join(ATTEMPT_FILE));
    write_json(&tmp_dir.join("manifest.json"), &manifest)?;
    publish(&opts.out_root, &run_id, opts.crash_at.as_deref())?;
    journal(&opts.out_root, "committed", &run_id, &format!("{:.1} s", started.elapsed().as_secs_f64()));
    info!(run_id = %run_id, dir = %final_dir.display(), seconds = started.elapsed().as_secs_f64(), "Committed run.");
    if let Some(keep) = file.keep_runs {
        prune_runs(&opts.out_root, keep.max(1), &run_id);
    }
    Ok(RunOutcome::Committed { run_id, dir: final_dir })
}

/// Failed attempts kept under `<out>/failed/`, newest first; older ones are removed.
pub const KEEP_FAILED: usize = 5;
/// Directory of the failed attempts inside the output root.
pub const FAILED_DIR: &str = "failed";

/// Moves a failed attempt's temporary directory to `<out>/failed/<run id>` (replacing an earlier
/// failure of the same run id) with its error in `error.txt`, keeps the newest [`KEEP_FAILED`],
/// and returns the error saying where it is. If it cannot be kept, it is removed and the error
/// is returned as it is.
fn keep_failed(out_root: &Path, tmp_dir: &Path, run_id: &str, err: RunError) -> RunError {
    let failed = out_root.join(FAILED_DIR);
    let kept = failed.join(run_id);
    let moved = mirador_io::create_dir(&failed).is_ok()
        && (!kept.exists() || fs::remove_dir_all(&kept).is_ok())
        && fs::rename(tmp_dir, &kept).is_ok();
    if !moved {
        let _ = fs::remove_dir_all(tmp_dir);
        return err;
    }
    let _ = fs::remove_file(kept.join(ATTEMPT_FILE));
    let _ = mirador_io::write_bytes(&kept.join("error.txt"), format!("{err}\n").as_bytes());
    let _ = mirador_io::sync_dir(&failed);
    prune_failed(&failed, KEEP_FAILED);
    RunError::Failed { cause: Box::new(err), kept }
}

fn prune_failed(failed: &Path, keep: usize) {
    let Ok(entries) = fs::read_dir(failed) else { return };
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter_map(|e| Some((fs::metadata(e.path().join("error.txt")).and_then(|m| m.modified()).ok()?, e.path())))
        .collect();
    dirs.sort_by(|a, b| b.cmp(a));
    for (_, path) in dirs.into_iter().skip(keep) {
        let _ = fs::remove_dir_all(path);
    }
}

/// Where a committed run stands in the chain of a state-carrying pipeline, seen from `latest`.
enum Chain {
    /// It continued from `latest` itself: the chain's next run.
    Continues,
    /// It is one of `latest`'s ancestors.
    Earlier,
    /// The chain between them is pruned: cannot tell.
    Unknown,
    /// It continued from a run `latest` does not descend from (named).
    Apart(String),
}

fn chain_position(out_root: &Path, run_id: &str, latest: &str) -> Chain {
    // `None`: no such run, or a manifest written before runs recorded where they continued from.
    let carried_from = |id: &str| -> Option<Option<String>> {
        let bytes = fs::read(out_root.join("runs").join(id).join("manifest.json")).ok()?;
        let m: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Some(m.get("carried_from")?.as_str().map(str::to_owned))
    };
    if carried_from(run_id).flatten().as_deref() == Some(latest) {
        return Chain::Continues;
    }
    let mut at = latest.to_owned();
    let mut seen = BTreeSet::new();
    // A forced re-run continues from itself: a run seen twice ends the walk.
    while seen.insert(at.clone()) {
        match carried_from(&at) {
            None => return Chain::Unknown,
            Some(None) => return Chain::Apart(latest.to_owned()),
            Some(Some(parent)) if parent == run_id => return Chain::Earlier,
            Some(Some(parent)) => at = parent,
        }
    }
    Chain::Unknown
}

/// With `--only`/`--from` and no committed run to take the other stages' outputs from, the run
/// is possible only if no selected stage reads a dataset of a stage left out.
fn needs_nothing_reused(plan: &Plan, selected: &BTreeSet<String>, opts: &RunOptions) -> Result<(), RunError> {
    let mut missing = Vec::new();
    for s in plan.levels.iter().flatten().filter(|s| selected.contains(s.stage.name())) {
        for input in &s.inputs {
            if let Some(producer) = plan.producers.get(input).filter(|p| !selected.contains(*p)) {
                missing.push(format!("`{}` reads `{input}` (from `{producer}`)", s.stage.name()));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(RunError::NoPreviousRun(format!(
        "no run is committed in `{}` to take the other stages' outputs from: {}. Run the whole pipeline first, or add those \
         stages to --only",
        opts.out_root.display(),
        missing.join(", ")
    )))
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

/// The run's hold on its output root: a kernel lock (flock) on the output root directory itself,
/// which cannot be unlinked from under the run while it holds runs, and on the lock file inside
/// it (which a person may delete: the directory's lock still holds). Both are released by the
/// kernel when the process dies, so a crash leaves no stale lock.
pub struct RootLock {
    _dir: File,
    _file: File,
}

/// Takes the output root's lock, or [`RunError::Locked`] if another run holds it.
pub fn lock(out_root: &Path) -> Result<RootLock, RunError> {
    let dir = lock_dir(out_root)?;
    let path = out_root.join(LOCK_FILE);
    let mut options = File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path).map_err(io_err("open lock", &path))?;
    match mirador_io::try_lock_for(&file, LOCK_GRACE) {
        Ok(true) => Ok(RootLock { _dir: dir, _file: file }),
        Ok(false) => Err(RunError::Locked(out_root.to_owned())),
        Err(e) => Err(io_err("lock", &path)(e)),
    }
}

/// How long a lock held elsewhere is waited for before the run is refused. A program that starts
/// a child process on another thread lends the child its open descriptors until the child
/// executes, so a lock just released may stay held for a few milliseconds; a second run is still
/// told at once, in human terms.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_millis(1500);

/// An exclusive kernel lock on directory `dir` (held while the returned handle lives).
fn lock_dir(dir: &Path) -> Result<File, RunError> {
    let handle = File::open(dir).map_err(io_err("open for locking", dir))?;
    match mirador_io::try_lock_for(&handle, LOCK_GRACE) {
        Ok(true) => Ok(handle),
        Ok(false) => Err(RunError::Locked(dir.to_owned())),
        Err(e) => Err(io_err("lock", dir)(e)),
    }
}

/// Under the lock, a temporary run directory is the remains of a crashed run: removes them and
/// returns what each attempt had recorded of its progress. A directory whose attempt lock is
/// still held belongs to a live run and is never touched (whatever happened to the root's lock).
fn clean_stale_temporaries(runs_dir: &Path) -> Vec<Attempt> {
    let Ok(entries) = fs::read_dir(runs_dir) else { return Vec::new() };
    let mut found = Vec::new();
    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for path in names {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if ![".tmp-", ".old-", ".copy-"].iter().any(|p| name.starts_with(p)) {
            continue;
        }
        if path.is_dir() && matches!(lock_dir(&path), Err(RunError::Locked(_))) {
            warn!(dir = %path.display(), "A live run holds this temporary directory: left alone.");
            continue;
        }
        if let Some(run_id) = name.strip_prefix(".tmp-") {
            let attempt = fs::read(path.join(ATTEMPT_FILE)).ok().and_then(|b| serde_json::from_slice::<Attempt>(&b).ok());
            // A kill before the first record leaves a directory without one.
            found.push(attempt.unwrap_or_else(|| Attempt { run_id: run_id.to_owned(), started_at: 0, pid: 0, stages_done: Vec::new() }));
        }
        warn!(dir = %path.display(), "Removing the remains of an interrupted run.");
        let _ = fs::remove_dir_all(&path);
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

/// Whether a stage of the run carries state from run to run ([`Stage::carries_state`]).
fn carries_state(plan: &Plan, params: &BTreeMap<String, toml::Table>) -> bool {
    plan.levels.iter().flatten().any(|s| params.get(s.stage.name()).is_some_and(|p| s.stage.carries_state(p)))
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
    h.update(build_id().as_bytes());
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

    let run_id = attempt.lock().unwrap_or_else(std::sync::PoisonError::into_inner).run_id.clone();
    for (at, level) in plan.levels.iter().enumerate() {
        // The declarations' columns no stage from this level on reads are freed.
        datasets.narrow(plan.levels[at..].iter().flatten())?;
        // One read of each file-held dataset the level's stages read whole, before they start
        // (in parallel, each stage would read its own copy).
        datasets.load_whole_inputs(level.iter().filter(|p| selected.contains(p.stage.name())))?;
        // A level's reused outputs are taken (linked, hashed, checked) before its stages run, so
        // that a stage's seconds are its own work, not shared with hashing and checking others'.
        let (reused, ran): (Vec<&PlannedStage>, Vec<&PlannedStage>) = level.iter().partition(|p| !selected.contains(p.stage.name()));
        let step = |planned: &&PlannedStage| -> Result<(), RunError> {
            let name = planned.stage.name();
            if !selected.contains(name) && previous.is_none() {
                // `--only` with no committed run: nothing of this stage's is needed
                // (checked before the run started), so the run has none of its outputs.
                bar.inc(1);
                return Ok(());
            }
            let record = if selected.contains(name) {
                bar.set_message(format!("running {name}"));
                let r = run_stage(file, planned, params, opts, (&run_id, previous), tmp_dir, &datasets, &outputs, &checks)?;
                if opts.fail_after.as_deref() == Some(name) {
                    return Err(RunError::Stage {
                        stage: name.into(),
                        cause: StageError::Data("fault injected after the stage (--fail-after)".into()),
                    });
                }
                r
            } else {
                reuse_stage(file, planned, previous, tmp_dir, &datasets, &outputs, &checks)?
            };
            bar.inc(1);
            records.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(record);
            attempt.lock().unwrap_or_else(std::sync::PoisonError::into_inner).stages_done.push(name.to_owned());
            record_attempt(tmp_dir, attempt)?;
            Ok(())
        };
        for group in [reused, ran] {
            let results: Vec<Result<(), RunError>> = group.par_iter().map(step).collect();
            for r in results {
                r?;
            }
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
    (run_id, previous): (&str, Option<&Path>),
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
    for secret in planned.stage.secret_params() {
        if let Some(v) = recorded_params.get_mut(*secret) {
            *v = toml::Value::String("<secret>".into());
        }
    }
    if let Some(secret) = opts.secrets.get(name) {
        for (k, v) in secret {
            stage_params.insert(k.clone(), v.clone());
        }
    }
    // Inputs held only in files (the columns a stage reads of row-level scores) are read side by
    // side.
    let inputs: BTreeMap<String, Arc<DataFrame>> = planned
        .inputs
        .par_iter()
        .map(|id| Ok(datasets.input(planned.stage.as_ref(), id)?.map(|df| (id.clone(), df))))
        .collect::<Result<Vec<_>, RunError>>()?
        .into_iter()
        .flatten()
        .collect();
    debug!(seconds = started.elapsed().as_secs_f64(), "Inputs read.");
    let rows_in: BTreeMap<String, usize> = inputs.iter().map(|(k, v)| (k.clone(), v.height())).collect();
    let artifact_dir = tmp_dir.join(name);
    mirador_io::create_dir(&artifact_dir)?;
    let ctx = StageContext {
        stage: name.to_owned(),
        run_id: run_id.to_owned(),
        params: stage_params,
        inputs,
        sources: spec.sources.iter().filter_map(|s| file.sources.get(s).map(|v| (s.clone(), v.clone()))).collect(),
        artifact_dir: artifact_dir.clone(),
        dataset_dir: tmp_dir.to_owned(),
        base_dir: file.base_dir.clone(),
        seed: file.seed,
        previous_run: previous.map(Path::to_owned),
        warnings: opts.warnings.clone(),
        donor: datasets.declarations_written(),
        input_files: planned.inputs.iter().filter_map(|id| datasets.file(id).map(|f| (id.clone(), f))).collect(),
    };
    info!("Running stage.");
    let output = planned.stage.run(&ctx).map_err(|cause| RunError::Stage { stage: name.into(), cause })?;
    debug!(seconds = started.elapsed().as_secs_f64(), "Stage computed its outputs.");
    let mut rows_out = BTreeMap::new();
    let frames: Vec<(&'static str, Arc<DataFrame>)> = output.datasets.into_iter().map(|(id, df)| (id, Arc::new(df))).collect();
    let proven_unique = output.unique;
    // Checks may refer to datasets of earlier stages or to this stage's other outputs.
    let check = |id: &str, df: &DataFrame| -> Result<Vec<CheckResult>, RunError> {
        let Some(c) = file.checks.get(id) else { return Ok(Vec::new()) };
        let mut available = BTreeMap::new();
        for target in referenced(c) {
            let own = frames.iter().find(|(o, _)| *o == target).map(|(_, df)| Arc::clone(df));
            let target_df = match own {
                Some(df) => Some(df),
                None => datasets.whole_frame(target)?,
            };
            if let Some(df) = target_df {
                available.insert(target.to_owned(), df);
            }
        }
        let proven: Vec<Vec<&str>> = proven_unique.iter().filter(|(d, _)| *d == id).map(|(_, cols)| cols.clone()).collect();
        Ok(run_checks_knowing(id, df, c, &available, datasets.unique_keys(), datasets.keeps(id), &proven))
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
    for (id, df) in &frames {
        declared(planned.stage.as_ref(), id, df.schema())?;
    }
    for streamed in &output.streamed {
        declared(planned.stage.as_ref(), streamed.id, &streamed.schema)?;
    }
    // The outputs are written, and checked, side by side: a small file's syncs do not wait for
    // a large one's pages, and the checks run while the files are written.
    // Per-declaration outputs take their key columns' pages from the declarations' file.
    let path = |id: &str| tmp_dir.join(format!("{id}.parquet"));
    let donor = ctx.donor.as_ref().map(|(frame, file)| mirador_io::Donor { file, frame });
    let (written, checked): (Vec<_>, Vec<_>) = rayon::join(
        || frames.par_iter().map(|(id, df)| mirador_io::write_parquet_from(&mut DataFrame::clone(df), &path(id), donor)).collect(),
        || frames.par_iter().map(|(id, df)| check(id, df)).collect(),
    );
    debug!(seconds = started.elapsed().as_secs_f64(), "Written and checked.");
    for (((id, df), sha256), results) in frames.iter().zip(written).zip(checked) {
        let sha256 = sha256?;
        datasets.insert(id, Arc::clone(df), &path(id));
        checks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(results?);
        record(id, df.height(), sha256);
    }
    // Written by the stage as it went: kept as files, their checks read the columns they test
    // (key columns proven to be the declarations' from the file's bytes are the declarations'
    // own, so that their checks know them unique and related without hashing them again).
    for streamed in output.streamed {
        let id = streamed.id;
        datasets.insert_file(id, &streamed.path);
        if let Some(c) = file.checks.get(id) {
            let results = check(id, &datasets.read_columns(&streamed.path, &checked_columns(c))?)?;
            checks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(results);
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

/// Fails unless `written`, output `id` of `stage`, has the columns and types the stage declares.
fn declared(stage: &dyn Stage, id: &str, written: &Schema) -> Result<(), RunError> {
    let fail = |message: String| Err(RunError::Stage { stage: stage.name().into(), cause: StageError::Data(message) });
    let Some(schema) = stage.output_schema(id) else {
        return fail(format!("output `{id}` has no declared schema (add it to the catalog, mirador_schema::catalog)"));
    };
    let found = mirador_schema::catalog::differences_with(&schema, &stage.optional_output_columns(id), written, &[]);
    if found.is_empty() { Ok(()) } else { fail(format!("output `{id}` differs from its declared schema: {}", found.join("; "))) }
}

/// Takes a stage's outputs from the previous run. They are checked like fresh ones, against the
/// datasets of this run (a relationship check of a reused `fraud_scores` reads this run's
/// `declarations`): a reused output that no longer fits what was re-run fails the run.
fn reuse_stage(
    file: &PipelineFile,
    planned: &PlannedStage,
    previous: Option<&Path>,
    tmp_dir: &Path,
    datasets: &Store,
    outputs: &Mutex<Vec<OutputRecord>>,
    checks: &Mutex<Vec<CheckResult>>,
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
        if let Some(c) = file.checks.get(*id) {
            let mut available = BTreeMap::new();
            for target in referenced(c) {
                if let Some(df) = datasets.whole_frame(target)? {
                    available.insert(target.to_owned(), df);
                }
            }
            // A dataset the run keeps in memory is read whole now (a stage will read it), and
            // checked as held: its keys found unique are then known to be.
            let (df, kept) = match datasets.kept_whole(id)? {
                Some(df) => (df, true),
                None => (Arc::new(datasets.read_columns(&dst, &checked_columns(c))?), false),
            };
            let run = prev.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let results = run_checks_knowing(id, &df, c, &available, datasets.unique_keys(), kept, &[]).into_iter().map(|mut r| {
                if !r.passed {
                    r.detail = format!(
                        "{}; `{id}` was reused from run {run} and no longer fits this run's datasets: re-run `{name}` too (--from)",
                        r.detail
                    );
                }
                r
            });
            checks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(results);
        }
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
    mirador_io::create_dir(dst)?;
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

/// The publish record: which run a publish in progress commits.
#[derive(serde::Serialize, serde::Deserialize)]
struct Publishing {
    run_id: String,
}

/// Publishes the finished run `runs/.tmp-<run_id>`: records the publish (synced), renames the
/// directory to `runs/<run_id>`, points `latest` at it and removes the record. A forced re-run of
/// a committed key first makes a hard-linked copy of the committed run (`runs/.old-<run_id>`)
/// and points `latest` at it, so that `latest` points at a complete run at every moment, then
/// replaces the committed directory, and removes the copy last.
///
/// A crash at any step leaves the record, and the next run finishes the publish from where it
/// stopped ([`recover_publish`]) before it does anything else: a run in `runs/` is never left
/// behind `latest`, and a committed copy is never deleted before the new one is in place.
fn publish(out_root: &Path, run_id: &str, crash_at: Option<&str>) -> Result<(), RunError> {
    write_json(&out_root.join(PUBLISHING), &Publishing { run_id: run_id.to_owned() })?;
    finish_publish(out_root, run_id, crash_at)
}

fn crash_point(crash_at: Option<&str>, step: &str) {
    if crash_at == Some(step) {
        mirador_io::kill_self();
    }
}

/// The steps of a publish after its record is written; each one is skipped when already done.
fn finish_publish(out_root: &Path, run_id: &str, crash_at: Option<&str>) -> Result<(), RunError> {
    crash_point(crash_at, "marked");
    let runs = out_root.join("runs");
    let dir = |prefix: &str| runs.join(format!("{prefix}{run_id}"));
    let (tmp, final_dir, old, copy) = (dir(".tmp-"), dir(""), dir(".old-"), dir(".copy-"));
    let complete = |d: &Path| d.join("manifest.json").is_file();
    let remove = |d: &Path| if d.exists() { fs::remove_dir_all(d).map_err(io_err("remove", d)) } else { Ok(()) };
    remove(&copy)?;
    if complete(&tmp) {
        if final_dir.exists() {
            if !complete(&old) {
                // A complete copy of the committed run, made by hard links, renamed into place
                // whole: `.old-<run id>` exists only complete.
                remove(&old)?;
                copy_dir(&final_dir, &copy)?;
                fs::rename(&copy, &old).map_err(io_err("rename", &copy))?;
                mirador_io::sync_dir(&runs)?;
            }
            point_latest_at(out_root, &Path::new("runs").join(format!(".old-{run_id}")))?;
            crash_point(crash_at, "aside");
            remove(&final_dir)?;
        }
        fs::rename(&tmp, &final_dir).map_err(io_err("publish", &final_dir))?;
        mirador_io::sync_dir(&runs)?;
        crash_point(crash_at, "renamed");
    } else if !complete(&final_dir) && complete(&old) {
        // The new copy is not there: the committed one comes back.
        remove(&final_dir)?;
        fs::rename(&old, &final_dir).map_err(io_err("restore", &old))?;
        mirador_io::sync_dir(&runs)?;
    }
    if complete(&final_dir) {
        point_latest(out_root, run_id)?;
        crash_point(crash_at, "pointed");
    }
    remove(&old)?;
    let record = out_root.join(PUBLISHING);
    fs::remove_file(&record).map_err(io_err("remove", &record))?;
    mirador_io::sync_dir(out_root)?;
    Ok(())
}

/// Finishes a publish a crash interrupted (its record is in the output root), under the lock.
fn recover_publish(out_root: &Path) -> Result<(), RunError> {
    let record = out_root.join(PUBLISHING);
    let Ok(bytes) = fs::read(&record) else { return Ok(()) };
    let Some(p) = serde_json::from_slice::<Publishing>(&bytes).ok().filter(|p| is_run_id(&p.run_id)) else {
        warn!(path = %record.display(), "Unreadable publish record (the crash came while it was written): removed.");
        fs::remove_file(&record).map_err(io_err("remove", &record))?;
        return Ok(());
    };
    warn!(run_id = %p.run_id, "A publish was interrupted: finishing it.");
    finish_publish(out_root, &p.run_id, None)?;
    let detail = if out_root.join("runs").join(&p.run_id).join("manifest.json").is_file() {
        "an interrupted publish was finished: latest points at it"
    } else {
        "an interrupted publish of an incomplete run was abandoned"
    };
    journal(out_root, "recovered", &p.run_id, detail);
    Ok(())
}

/// A run id as the runner makes them: `<pipeline name>-<16 hex digits>`, a plain file name.
fn is_run_id(id: &str) -> bool {
    crate::pipeline::check_name(id).is_ok()
}

/// Build id of the running binary: the first 16 hex digits of the SHA-256 of its own bytes
/// (`std::env::current_exe`), computed once per process. Hashed into every run key and recorded
/// in the manifest: a binary rebuilt from changed code (any crate, any dependency, any flag)
/// does not take an earlier binary's runs for its own, while re-runs of one binary stay
/// idempotent. A binary whose bytes cannot be read falls back to the crate version.
pub fn build_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let hashed = std::env::current_exe().ok().and_then(|exe| mirador_io::sha256_file(&exe).ok());
        match hashed {
            Some((sha256, _)) => sha256[..16].to_owned(),
            None => {
                warn!("Cannot read the running binary to compute its build id: the run key uses the version only.");
                format!("version-{VERSION}")
            }
        }
    })
}

/// Atomically points `<out>/latest` at `runs/<run_id>` (a new symlink renamed over the old).
fn point_latest(out_root: &Path, run_id: &str) -> Result<(), RunError> {
    point_latest_at(out_root, &Path::new("runs").join(run_id))
}

fn point_latest_at(out_root: &Path, target: &Path) -> Result<(), RunError> {
    let link = out_root.join(LATEST);
    if fs::read_link(&link).is_ok_and(|t| t.as_path() == target) {
        return Ok(());
    }
    let tmp = out_root.join(".latest.tmp");
    let _ = fs::remove_file(&tmp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &tmp).map_err(io_err("create pointer", &tmp))?;
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
