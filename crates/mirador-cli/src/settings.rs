//! Settings, resolved once: defaults → pipeline file and its params files → `MIRADOR_*`
//! environment → command-line flags. Library crates never read the environment; they get
//! parameters from here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use mirador_pipeline::{PipelineFile, RunOptions};

use crate::commands::UserError;

/// Environment variable: output root (overridden by `--out`).
pub(crate) const ENV_OUT: &str = "MIRADOR_OUT";
/// Environment variable: key for pseudonymising importer ids in shareable outputs. Secret: never
/// written to outputs, logs or the manifest.
pub(crate) const ENV_PSEUDONYM_KEY: &str = "MIRADOR_PSEUDONYM_KEY";
/// Environment variable: worker threads (default: all cores).
pub(crate) const ENV_THREADS: &str = "MIRADOR_THREADS";
/// Environment variable: the Ballista cluster the stages that can run on (overridden by
/// `--engine`).
pub(crate) const ENV_ENGINE: &str = "MIRADOR_ENGINE";
/// Environment variable: how long (seconds) a query on the engine may go without a part of its
/// result before it is run again (default `mirador_engine::STALL_LIMIT`).
pub(crate) const ENV_ENGINE_STALL: &str = "MIRADOR_ENGINE_STALL_SECONDS";

/// Resolved settings of one `mirador run`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Settings {
    pub(crate) pipeline: PathBuf,
    pub(crate) out_root: PathBuf,
    pub(crate) out_root_from: &'static str,
    pub(crate) threads: Option<usize>,
    /// The cluster's scheduler (`ballista://HOST:PORT`), or none: every stage runs here.
    pub(crate) engine: Option<String>,
    /// [`ENV_ENGINE_STALL`], when set.
    pub(crate) engine_stall_seconds: Option<u64>,
    pub(crate) only: Vec<String>,
    pub(crate) from: Option<String>,
    pub(crate) force: bool,
    pub(crate) seed: u64,
    pub(crate) stage_overrides: BTreeMap<String, toml::Table>,
    pub(crate) pseudonym_key: &'static str,
    #[serde(skip)]
    secret_key: Option<String>,
    /// Warnings recorded in the run's manifest and logged (see [`Settings::check_pseudonym_key`]).
    pub(crate) warnings: Vec<String>,
}

/// What the command line says.
pub(crate) struct CliRunFlags {
    pub(crate) out: Option<PathBuf>,
    pub(crate) only: Vec<String>,
    pub(crate) from: Option<String>,
    pub(crate) force: bool,
    pub(crate) top: Option<i64>,
    pub(crate) threads: Option<usize>,
    pub(crate) engine: Option<String>,
}

impl Settings {
    pub(crate) fn resolve(pipeline: PathBuf, file: &PipelineFile, flags: CliRunFlags) -> anyhow::Result<Self> {
        let env_out = std::env::var_os(ENV_OUT).map(PathBuf::from);
        let (out_root, out_root_from) = match (flags.out, env_out) {
            (Some(o), _) => (o, "--out"),
            (None, Some(o)) => (o, ENV_OUT),
            (None, None) => {
                let o = file.default_out();
                mirador_pipeline::runner::check_out_root(&o)?;
                (o, "pipeline file")
            }
        };
        let threads = match flags.threads {
            Some(t) => Some(t),
            None => match std::env::var(ENV_THREADS) {
                Ok(v) => Some(v.parse().map_err(|_| anyhow::anyhow!("{ENV_THREADS}=`{v}` is not a number"))?),
                Err(_) => None,
            },
        };
        let engine = flags.engine.or_else(|| std::env::var(ENV_ENGINE).ok()).filter(|e| !e.is_empty());
        if let Some(address) = &engine {
            mirador_engine::scheduler_of(address).map_err(|e| UserError(format!("--engine / {ENV_ENGINE}: {e}")))?;
        }
        let engine_stall_seconds = match std::env::var(ENV_ENGINE_STALL) {
            Ok(v) => Some(
                v.parse()
                    .ok()
                    .filter(|&s| s > 0)
                    .ok_or_else(|| UserError(format!("{ENV_ENGINE_STALL}=`{v}` is not a number of seconds")))?,
            ),
            Err(_) => None,
        };
        let mut stage_overrides = BTreeMap::new();
        if let Some(top) = flags.top {
            let mut t = toml::Table::new();
            t.insert("top".into(), toml::Value::Integer(top));
            stage_overrides.insert("rank".to_owned(), t);
        }
        let secret_key = std::env::var(ENV_PSEUDONYM_KEY).ok().filter(|k| !k.is_empty());
        Ok(Settings {
            pipeline,
            out_root,
            out_root_from,
            threads,
            engine,
            engine_stall_seconds,
            only: flags.only,
            from: flags.from,
            force: flags.force,
            seed: file.seed,
            stage_overrides,
            pseudonym_key: if secret_key.is_some() { "set (from MIRADOR_PSEUDONYM_KEY)" } else { "not set" },
            secret_key,
            warnings: Vec::new(),
        })
    }

    /// The pseudonymisation key policy, before anything runs. A pipeline with a `rank` stage
    /// needs a key: from `MIRADOR_PSEUDONYM_KEY`, or from the stage's parameters. A missing key,
    /// or one of the keys written in the repository ([`mirador_rank::pseudonym::DEMO_KEYS`]), is
    /// refused (exit 1), except in a pipeline marked `sample-data = true` (the bundled synthetic
    /// data), which may use the demo key with a warning in the manifest and the log.
    pub(crate) fn check_pseudonym_key(&mut self, file: &PipelineFile) -> anyhow::Result<()> {
        use mirador_rank::pseudonym::is_demo_key;
        for spec in file.stages.iter().filter(|s| s.name == "rank") {
            let (params, _) = file.stage_params(spec)?;
            let in_params = params.get("pseudonym-key").and_then(toml::Value::as_str).map(str::to_owned);
            let (key, from) = match (&self.secret_key, in_params) {
                (Some(k), _) => (Some(k.clone()), ENV_PSEUDONYM_KEY),
                (None, k) => (k, "the `rank` stage's `pseudonym-key` parameter"),
            };
            match key {
                None if !file.sample_data => {
                    return Err(UserError(format!(
                        "pipeline `{}`: stage `rank` needs a pseudonymisation key for the shareable auditee list: set {ENV_PSEUDONYM_KEY} \
                         to a secret of at least {} bytes kept out of the repository",
                        file.name,
                        mirador_rank::pseudonym::MIN_KEY_LEN
                    ))
                    .into());
                }
                Some(k) if is_demo_key(&k) && !file.sample_data => {
                    return Err(UserError(format!(
                        "pipeline `{}`: the pseudonymisation key from {from} is the demo key published in Mirador's repository, so \
                         anyone could re-identify the shareable auditee list: set {ENV_PSEUDONYM_KEY} to a secret of your own \
                         (the demo key is for pipelines marked `sample-data = true` only)",
                        file.name
                    ))
                    .into());
                }
                Some(k) if is_demo_key(&k) => self.warnings.push(format!(
                    "DEMO PSEUDONYM KEY: the shareable auditee list of pipeline `{}` is pseudonymised with the demo key published in \
                     Mirador's repository, so anyone can re-identify it. Allowed because the pipeline runs on the bundled synthetic \
                     sample data (`sample-data = true`); with real data set {ENV_PSEUDONYM_KEY}.",
                    file.name
                )),
                _ => {}
            }
        }
        Ok(())
    }

    pub(crate) fn run_options(&self, progress: bool) -> RunOptions {
        let mut secrets = BTreeMap::new();
        if let Some(key) = &self.secret_key {
            let mut t = toml::Table::new();
            t.insert("pseudonym-key".into(), toml::Value::String(key.clone()));
            secrets.insert("rank".to_owned(), t);
        }
        RunOptions {
            out_root: self.out_root.clone(),
            only: self.only.clone(),
            from: self.from.clone(),
            force: self.force,
            progress,
            overrides: self.stage_overrides.clone(),
            secrets,
            fail_after: std::env::var("MIRADOR_FAIL_AFTER").ok(),
            crash_at: std::env::var("MIRADOR_CRASH_AT").ok(),
            warnings: self.warnings.clone(),
        }
    }

    /// The options of the run for one past month (`YYYY-MM`): ingest sees only what was dated up
    /// to the month's end (declarations, mirror flows, and the inspection outcomes decided by
    /// then), the auditee list covers the month, and the run has its own output
    /// root `<out>/periods/<month>` (its own lock, runs and `latest`).
    pub(crate) fn period_options(&self, period: &str, progress: bool) -> RunOptions {
        let mut opts = self.run_options(progress);
        opts.out_root = self.out_root.join("periods").join(period);
        for stage in ["ingest", "ingest_outcomes"] {
            let ingest = opts.overrides.entry(stage.to_owned()).or_default();
            ingest.insert("as-of".into(), toml::Value::String(period.to_owned()));
        }
        let rank = opts.overrides.entry("rank".to_owned()).or_default();
        rank.insert("periods".into(), toml::Value::Array(vec![toml::Value::String(period.to_owned())]));
        opts
    }
}
