//! `mirador run` and `mirador show-settings`.

use std::io::IsTerminal;

use mirador_pipeline::{PipelineFile, RunOutcome};

use crate::RunArgs;
use crate::registry::stage;
use crate::settings::{CliRunFlags, Settings};

fn settings(args: &RunArgs) -> anyhow::Result<(PipelineFile, Settings)> {
    let file = PipelineFile::load(&args.pipeline)?;
    let flags = CliRunFlags {
        out: args.out.clone(),
        only: args.only.clone(),
        from: args.from.clone(),
        force: args.force,
        top: args.top,
        threads: args.threads,
    };
    let settings = Settings::resolve(args.pipeline.clone(), &file, flags)?;
    Ok((file, settings))
}

pub(crate) fn run(args: &RunArgs, progress: bool) -> anyhow::Result<()> {
    let (file, settings) = settings(args)?;
    if let Some(threads) = settings.threads {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().ok();
    }
    let opts = settings.run_options(progress && std::io::stderr().is_terminal());
    let outcome = mirador_pipeline::run(&file, &stage, &opts)?;
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

pub(crate) fn show_settings(args: &RunArgs) -> anyhow::Result<()> {
    let (_, settings) = settings(args)?;
    println!("{}", serde_json::to_string_pretty(&settings)?);
    Ok(())
}
