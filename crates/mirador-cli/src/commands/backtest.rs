//! `mirador backtest`: the inspection policies replayed week by week over a pipeline's history
//! ([`mirador_model::backtest`]), written to an output directory with a chart.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use mirador_model::backtest::{self, BacktestParams, ReplayData, TruthSources};
use mirador_pipeline::{PipelineFile, RunError, Stage, StageContext, StageError};
use mirador_schema::{catalog, datasets};
use polars::prelude::*;

use super::UserError;

/// Arguments of `mirador backtest`.
#[derive(Args)]
pub(crate) struct BacktestArgs {
    /// Pipeline file: its ingest stage reads the declarations (and `ingest_outcomes` the late
    /// outcomes), its `fraud_model` parameters configure the model, its `ground_truth` source (if
    /// any) is the truth.
    pipeline: PathBuf,
    /// First replayed month (`YYYY-MM`): labels of declarations before it are what the
    /// administration had.
    #[arg(long)]
    from: String,
    /// Last replayed month (`YYYY-MM`, inclusive).
    #[arg(long)]
    to: String,
    /// Declarations inspected each week, e.g. `5%`.
    #[arg(long, default_value = "5%")]
    budget: String,
    /// Weeks between two retrainings of each policy's model.
    #[arg(long, default_value_t = 4)]
    retrain_weeks: u32,
    /// Exploration share of the `mixed_exploration` policy.
    #[arg(long, default_value_t = 0.1)]
    exploration: f64,
    /// Output directory (default: reports/backtest/<pipeline name>), replaced atomically.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed (default: the pipeline's).
    #[arg(long)]
    seed: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// The first day of month `YYYY-MM` and the first day of the month after it.
fn month_days(flag: &str, text: &str) -> Result<(i32, i32), UserError> {
    let bad = || UserError(format!("--{flag} `{text}`: not a YYYY-MM month (e.g. 2020-07)"));
    let (y, m) = text.trim().split_once('-').ok_or_else(bad)?;
    let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if text.trim().len() != 7 || !(1900..=2200).contains(&y) || !(1..=12).contains(&m) {
        return Err(bad());
    }
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let first = mirador_schema::day::parse(&format!("{y:04}-{m:02}-01")).ok_or_else(bad)?;
    let next = mirador_schema::day::parse(&format!("{ny:04}-{nm:02}-01")).ok_or_else(bad)?;
    Ok((first, next))
}

/// `5%` or `5` → 5.0, in (0, 100].
fn budget_pct(text: &str) -> Result<f64, UserError> {
    let v: f64 = text
        .trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| UserError(format!("--budget `{text}`: not a percentage (e.g. 5%)")))?;
    if !(v > 0.0 && v <= 100.0) {
        return Err(UserError(format!("--budget `{text}`: must be more than 0 % and at most 100 %")));
    }
    Ok(v)
}

/// Runs stage `name` of `file` alone on its sources; returns its dataset `id`.
fn run_source_stage(file: &PipelineFile, stage: &dyn Stage, id: &str, scratch: &Path) -> anyhow::Result<Option<DataFrame>> {
    let Some(spec) = file.stages.iter().find(|s| s.name == stage.name()) else { return Ok(None) };
    let (params, _) = file.stage_params(spec)?;
    let dir = scratch.join(stage.name());
    mirador_io::create_dir(&dir)?;
    let mut ctx = StageContext::standalone(stage.name(), &dir).with_params(params).with_base_dir(&file.base_dir).with_seed(file.seed);
    for source in &spec.sources {
        let Some(s) = file.sources.get(source) else {
            return Err(UserError(format!("stage `{}` reads source `{source}`, which the pipeline does not declare", stage.name())).into());
        };
        ctx = ctx.with_source(source, s.clone());
    }
    let as_run_error = |cause: StageError| RunError::Stage { stage: stage.name().into(), cause };
    stage.check_params(&file.stage_params(spec)?.0).map_err(as_run_error)?;
    let output = stage.run(&ctx).map_err(as_run_error)?;
    if let Some((_, df)) = output.datasets.into_iter().find(|(d, _)| *d == id) {
        return Ok(Some(df));
    }
    let streamed = dir.join(format!("{id}.parquet"));
    if streamed.is_file() {
        return Ok(Some(mirador_io::read_parquet(&streamed)?));
    }
    Err(anyhow::anyhow!("stage `{}` produced no `{id}`", stage.name()))
}

pub(crate) fn backtest(args: &BacktestArgs) -> anyhow::Result<()> {
    let (from, _) = month_days("from", &args.from)?;
    let (_, to) = month_days("to", &args.to)?;
    if to <= from {
        return Err(UserError(format!("--to {} ends before --from {} starts", args.to, args.from)).into());
    }
    let budget = budget_pct(&args.budget)?;
    if args.retrain_weeks == 0 {
        return Err(UserError("--retrain-weeks must be at least 1".into()).into());
    }
    if !(0.0..=1.0).contains(&args.exploration) {
        return Err(UserError(format!("--exploration {} must be in [0, 1]", args.exploration)).into());
    }
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().ok();
    }
    let file = PipelineFile::load(&args.pipeline)?;
    let mut model = match file.stages.iter().find(|s| s.name == "fraud_model") {
        Some(spec) => {
            let (table, _) = file.stage_params(spec)?;
            mirador_pipeline::parse_params::<mirador_model::ModelParams>("fraud_model", &table)
                .map_err(|cause| RunError::Stage { stage: "fraud_model".into(), cause })?
        }
        None => mirador_model::ModelParams::default(),
    };
    model.budget_pct = budget;
    model.carry_state = false;
    let seed = args.seed.unwrap_or(file.seed);
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("reports/backtest").join(&file.name));

    let started = std::time::Instant::now();
    let scratch = tempfile::Builder::new().prefix(".mirador-backtest-").tempdir().context("creating a scratch directory")?;
    let declarations = run_source_stage(&file, &mirador_ingest::Ingest, datasets::DECLARATIONS, scratch.path())?
        .ok_or_else(|| UserError(format!("{}: the pipeline has no `ingest` stage to read the declarations", args.pipeline.display())))?;
    let outcomes = run_source_stage(&file, &mirador_ingest::IngestOutcomes, datasets::INSPECTION_OUTCOMES, scratch.path())?;
    let truth = match file.sources.get(mirador_rank::evaluation::SOURCE) {
        Some(spec) => Some(
            mirador_rank::evaluation::read_truth(spec, &file.base_dir, "planted_lost_duty_usd")
                .map_err(|cause| RunError::Stage { stage: "backtest".into(), cause })?,
        ),
        None => None,
    };
    let read_seconds = started.elapsed().as_secs_f64();
    let data = ReplayData::build(&declarations, &TruthSources { ground_truth: truth.as_ref(), outcomes: outcomes.as_ref() }, from)
        .map_err(|e| UserError(format!("{}: {e}", args.pipeline.display())))?;
    if data.without_truth > 0 {
        eprintln!("warning: {} replayed declarations are not in the ground truth; they count as clean", data.without_truth);
    }
    let params = BacktestParams { from, to, budget_pct: budget, retrain_weeks: args.retrain_weeks, seed, model };
    let policies = backtest::standard_policies(args.exploration);
    let result = backtest::replay(&data, &params, &policies).map_err(|e| match e {
        mirador_model::ModelError::Data(m) | mirador_model::ModelError::Params(m) => anyhow::Error::new(UserError(m)),
        other => anyhow::Error::new(other),
    })?;
    let replay_seconds = started.elapsed().as_secs_f64() - read_seconds;

    let mut weeks = result.weeks_frame()?;
    let mut summary = result.summary_frame()?;
    let publish = Publish::begin(&out)?;
    for (id, df) in [(catalog::backtest_weeks::ID, &mut weeks), (catalog::backtest_summary::ID, &mut summary)] {
        declared(id, df)?;
        mirador_io::write_parquet(df, &publish.tmp.join(format!("{id}.parquet")))?;
        mirador_io::write_csv(df, &publish.tmp.join(format!("{id}.csv")))?;
    }
    let curves: Vec<(String, Vec<f64>)> = result
        .policies()
        .iter()
        .map(|p| (p.to_string(), result.weeks.iter().filter(|r| r.policy == *p).map(|r| r.cumulative_share).collect()))
        .collect();
    let title = format!("{}: share of all fraudulent duty found, {} % a week, {} to {}", file.name, budget, args.from, args.to);
    mirador_report::backtest_chart(&curves, &title, &publish.tmp)?;
    let meta = serde_json::json!({
        "pipeline": args.pipeline.display().to_string(),
        "from": args.from, "to": args.to, "budget_pct": budget, "retrain_weeks": args.retrain_weeks,
        "exploration_share": args.exploration, "seed": seed,
        "declarations": declarations.height(),
        "truth": if truth.is_some() { "ground_truth source" } else { "declarations' own labels" },
        "outcomes": outcomes.as_ref().map_or(0, DataFrame::height),
        "declarations_without_truth": data.without_truth,
        "seconds": { "read": read_seconds, "replay": replay_seconds },
    });
    mirador_io::write_bytes(&publish.tmp.join("backtest.json"), serde_json::to_string_pretty(&meta)?.as_bytes())?;
    publish.commit()?;

    let n_weeks = result.weeks.iter().map(|r| r.week).max().unwrap_or(0);
    let quarter = backtest::last_quarter_from(n_weeks.max(1));
    println!(
        "backtest of {} ({} declarations): {n_weeks} weeks from {} to {}, {budget} % a week, retrained every {} weeks",
        file.name,
        declarations.height(),
        args.from,
        args.to,
        args.retrain_weeks
    );
    println!("{:<20} {:>10} {:>10} {:>14} {:>10} {:>14}", "policy", "precision", "duty share", "(last quarter)", "precision", "duty share");
    for p in result.policies() {
        let (s, f, found, total) = result.totals(p, 1);
        let (qs, qf, qfound, qtotal) = result.totals(p, quarter);
        let r = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        println!(
            "{p:<20} {:>10.3} {:>10.3} {:>14} {:>10.3} {:>14.3}",
            r(f as f64, s as f64),
            r(found, total),
            "",
            r(qf as f64, qs as f64),
            r(qfound, qtotal)
        );
    }
    println!("replay: {replay_seconds:.1} s (reading {read_seconds:.1} s)");
    println!("outputs: {}", out.display());
    Ok(())
}

/// An output directory replaced atomically: everything is written into a hidden sibling, which
/// then takes the directory's place.
struct Publish {
    out: PathBuf,
    tmp: PathBuf,
}

impl Publish {
    fn begin(out: &Path) -> anyhow::Result<Self> {
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "backtest".into());
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        mirador_io::create_dir(parent)?;
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
        }
        mirador_io::create_dir(&tmp)?;
        Ok(Publish { out: out.to_owned(), tmp })
    }

    fn commit(self) -> anyhow::Result<()> {
        let old = self.tmp.with_extension("old");
        if self.out.exists() {
            std::fs::rename(&self.out, &old).with_context(|| format!("moving {} aside", self.out.display()))?;
        }
        std::fs::rename(&self.tmp, &self.out).with_context(|| format!("publishing {}", self.out.display()))?;
        if old.exists() {
            let _ = std::fs::remove_dir_all(&old);
        }
        if let Some(parent) = self.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            mirador_io::sync_dir(parent)?;
        }
        Ok(())
    }
}

/// Fails unless `df` has the columns the catalog declares for backtest table `id`, as the runner
/// refuses a stage output that drifted from its declaration.
fn declared(id: &str, df: &DataFrame) -> anyhow::Result<()> {
    let found = catalog::get(id).ok_or_else(|| anyhow::anyhow!("`{id}` is not in the catalog"))?.differences(df.schema());
    anyhow::ensure!(found.is_empty(), "`{id}` differs from its declared schema: {}", found.join("; "));
    Ok(())
}
