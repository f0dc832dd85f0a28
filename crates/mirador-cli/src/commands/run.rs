//! `mirador run` and `mirador show-settings`.

use std::io::IsTerminal;

use mirador_pipeline::check::Registry;
use mirador_pipeline::pipeline::ParamsSpec;
use mirador_pipeline::{PipelineFile, RunOutcome};

use crate::RunArgs;
use crate::commands::UserError;
use crate::registry;
use crate::settings::{CliRunFlags, Settings};

fn settings(args: &RunArgs) -> anyhow::Result<(PipelineFile, Settings)> {
    let mut file = PipelineFile::load(&args.pipeline)?;
    override_sources(&mut file, &args.sources)?;
    let flags = CliRunFlags {
        out: args.out.clone(),
        only: args.only.clone(),
        from: args.from.clone(),
        force: args.force,
        top: args.top,
        threads: args.threads,
        engine: args.engine.clone(),
    };
    let settings = Settings::resolve(args.pipeline.clone(), &file, flags)?;
    Ok((file, settings))
}

/// Applies `--source ID=PATH` overrides: the files replace the pipeline's for that source.
fn override_sources(file: &mut PipelineFile, overrides: &[String]) -> anyhow::Result<()> {
    let mut given: std::collections::BTreeMap<&str, Vec<std::path::PathBuf>> = std::collections::BTreeMap::new();
    for o in overrides {
        let Some((id, path)) = o.split_once('=').filter(|(id, path)| !id.is_empty() && !path.is_empty()) else {
            return Err(UserError(format!("--source `{o}`: expected ID=PATH, e.g. declarations=incoming/today.csv")).into());
        };
        if !file.sources.contains_key(id) {
            let known: Vec<&str> = file.sources.keys().map(String::as_str).collect();
            return Err(UserError(format!("--source `{o}`: the pipeline has no source `{id}` (it has: {})", known.join(", "))).into());
        }
        let path = std::path::absolute(path).map_err(|e| UserError(format!("--source `{o}`: {e}")))?;
        given.entry(id).or_default().push(path);
    }
    for (id, paths) in given {
        if let Some(spec) = file.sources.get_mut(id) {
            spec.paths = paths;
        }
    }
    Ok(())
}

pub(crate) fn run(args: &RunArgs, progress: bool) -> anyhow::Result<()> {
    let (file, mut settings) = settings(args)?;
    settings.check_pseudonym_key(&file)?;
    if let Some(threads) = settings.threads {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().ok();
    }
    let progress = progress && std::io::stderr().is_terminal();
    let registry = registry::on(settings.engine.as_deref(), settings.engine_stall_seconds.map(std::time::Duration::from_secs));
    if let Some(engine) = &settings.engine {
        registry::log_placement(engine, file.stages.iter().map(|s| s.name.as_str()));
    }
    let Some(range) = &args.period else {
        return run_once(&file, &registry, &settings.run_options(progress));
    };
    // A backfill: one independent run per month, in order. Each period's run is exactly the run
    // `--period <that month>` does alone (same options, same output root), so a backfill and
    // single-period runs give identical outputs, and a re-run skips the periods already committed.
    let periods = months(range)?;
    for (i, period) in periods.iter().enumerate() {
        if periods.len() > 1 {
            println!("period {period} ({}/{})", i + 1, periods.len());
        }
        let opts = settings.period_options(period, progress);
        run_once(&file, &registry, &opts).map_err(|e| e.context(format!("period {period} failed (earlier periods are committed)")))?;
    }
    Ok(())
}

/// The months of `2023-01..2023-03` (inclusive) or of a single `2023-01`.
fn months(range: &str) -> anyhow::Result<Vec<String>> {
    let parse = |s: &str| {
        let s = s.trim();
        let ok = s.len() == 7 && s.as_bytes()[4] == b'-';
        let year: Option<i32> = s.get(..4).and_then(|y| y.parse().ok());
        let month: Option<u32> = s.get(5..).and_then(|m| m.parse().ok());
        match (ok, year, month) {
            (true, Some(y), Some(m)) if (1900..=2200).contains(&y) && (1..=12).contains(&m) => Ok((y, m)),
            _ => Err(UserError(format!("--period `{range}`: `{s}` is not a YYYY-MM month (e.g. 2023-01 or 2023-01..2023-03)"))),
        }
    };
    let (first, last) = match range.split_once("..") {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(range)?, parse(range)?),
    };
    if first > last {
        return Err(UserError(format!("--period `{range}`: the range ends before it starts")).into());
    }
    let mut out = Vec::new();
    let (mut y, mut m) = first;
    if (last.0 - first.0) * 12 + last.1 as i32 - first.1 as i32 >= 1200 {
        return Err(UserError(format!("--period `{range}`: more than 100 years of monthly runs")).into());
    }
    while (y, m) <= last {
        out.push(format!("{y:04}-{m:02}"));
        (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    }
    Ok(out)
}

fn run_once(file: &PipelineFile, registry: &Registry, opts: &mirador_pipeline::RunOptions) -> anyhow::Result<()> {
    let outcome = mirador_pipeline::run(file, registry, opts)?;
    let (verb, run_id, dir) = match outcome {
        RunOutcome::Committed { run_id, dir } => ("committed", run_id, dir),
        RunOutcome::AlreadyCommitted { run_id, dir } => ("already committed (same inputs, parameters and code)", run_id, dir),
    };
    println!("run {run_id} {verb}");
    println!("outputs: {}", dir.display());
    println!("latest:  {}", opts.out_root.join(mirador_pipeline::runner::LATEST).display());
    let report = dir.join("report").join("index.html");
    if report.is_file() {
        println!("report:  {}", report.display());
    }
    Ok(())
}

/// Prints the resolved settings and the pipeline as the run will see it: merged over the file it
/// `extends`, every stage's parameters read from their files, secrets masked.
pub(crate) fn show_settings(args: &RunArgs) -> anyhow::Result<()> {
    let (mut file, settings) = settings(args)?;
    for i in 0..file.stages.len() {
        let (mut table, _) = file.stage_params(&file.stages[i])?;
        let secrets = crate::registry::stage(&file.stages[i].name).map(|s| s.secret_params()).unwrap_or_default();
        for secret in secrets {
            if let Some(v) = table.get_mut(*secret) {
                *v = toml::Value::String("(secret)".into());
            }
        }
        file.stages[i].params = Some(ParamsSpec::Inline(table));
    }
    let mut shown = serde_json::to_value(&settings)?;
    shown["pipeline"] = serde_json::to_value(&file)?;
    crate::commands::print_all(&(serde_json::to_string_pretty(&shown)? + "\n"))
}
