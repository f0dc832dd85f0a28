//! `mirador check`, `mirador list`, `mirador explain`.

use std::path::Path;

use anyhow::Context;
use mirador_pipeline::{PipelineFile, check_columns, plan};
use mirador_schema::catalog;

use crate::commands::{UserError, print_all};
use crate::registry::{STAGES, stage};
use crate::settings::{CliRunFlags, Settings};

pub(crate) fn check(pipeline: &Path) -> anyhow::Result<()> {
    let file = PipelineFile::load(pipeline)?;
    let plan = plan(&file, &stage)?;
    // The pseudonymisation key, as `mirador run` would resolve it.
    let flags = CliRunFlags { out: None, only: Vec::new(), from: None, force: false, top: None, threads: None, engine: None };
    Settings::resolve(pipeline.to_owned(), &file, flags)?.check_pseudonym_key(&file)?;
    // Every stage's parameters, as the run would parse them, before any data is read.
    for level in &plan.levels {
        for planned in level {
            let (params, _) = file.stage_params(&file.stages[planned.spec_index])?;
            planned.stage.check_params(&params).map_err(|e| UserError(e.to_string()))?;
        }
    }
    // Every column a stage or a check reads, against what its producer declares.
    check_columns(&file, &plan)?;
    for (id, spec) in &file.sources {
        for p in &spec.paths {
            let path = file.base_dir.join(p);
            if !path.is_file() {
                return Err(UserError(format!("source `{id}`: `{}` does not exist", path.display())).into());
            }
        }
    }
    println!("{}: OK", pipeline.display());
    for (i, level) in plan.levels.iter().enumerate() {
        let names: Vec<&str> = level.iter().map(|s| s.stage.name()).collect();
        println!("  level {}: {}", i + 1, names.join(", "));
    }
    Ok(())
}

pub(crate) fn list() -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut text = String::new();
    for name in STAGES {
        let s = stage(name).context("registry")?;
        // A stage reading raw files shows its source ids in brackets.
        let reads: Vec<String> = if s.inputs().is_empty() {
            s.sources().iter().map(|id| format!("[{id}]")).collect()
        } else {
            s.inputs().iter().map(|i| (*i).to_owned()).collect()
        };
        let _ = writeln!(text, "{name:<16} {} -> {}", reads.join(", "), s.outputs().join(", "));
    }
    print_all(&text)
}

pub(crate) fn explain(name: &str) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let s = stage(name).ok_or_else(|| UserError(format!("unknown stage `{name}` (see `mirador list`)")))?;
    let mut text = String::new();
    let _ = writeln!(text, "stage: {}", s.name());
    if !s.sources().is_empty() {
        let _ = writeln!(text, "sources: {}", s.sources().join(", "));
    }
    let _ = writeln!(text, "inputs: {}", if s.inputs().is_empty() { "-".into() } else { s.inputs().join(", ") });
    if !s.optional_inputs().is_empty() {
        let _ = writeln!(text, "optional inputs (used when the pipeline produces them): {}", s.optional_inputs().join(", "));
    }
    let _ = writeln!(text, "outputs: {}", if s.outputs().is_empty() { "- (files only)".into() } else { s.outputs().join(", ") });
    print_all(&text)
}

pub(crate) fn schemas(dataset: Option<&str>, out: Option<&Path>) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let chosen: Vec<&catalog::Dataset> = match dataset {
        Some(id) => vec![catalog::get(id).ok_or_else(|| UserError(format!("no dataset `{id}` in the catalog (see `mirador schemas`)")))?],
        None => catalog::ALL.iter().collect(),
    };
    if let Some(dir) = out {
        mirador_io::create_dir(dir)?;
        for d in &chosen {
            mirador_io::write_bytes(&dir.join(format!("{}.schema.json", d.id)), catalog::json(d).as_bytes())?;
        }
        println!("{} schema files in {}", chosen.len(), dir.display());
        return Ok(());
    }
    let mut text = String::new();
    for d in chosen {
        let schema = (d.schema)();
        let _ = writeln!(text, "{} ({}, written by {}): {} columns", d.id, d.kind.as_str(), d.producer, schema.len());
        for (name, dtype) in schema.iter() {
            let _ = writeln!(text, "  {name:<36} {dtype}");
        }
        for prefix in d.open_prefixes {
            let _ = writeln!(text, "  {:<36} (as configured)", format!("{prefix}*"));
        }
        if let Some(p) = d.period {
            let _ = writeln!(text, "  row-level: `mirador export` partitions it by {} ({})", catalog::PARTITION_KEY, p.describe());
        }
    }
    print_all(&text)
}
