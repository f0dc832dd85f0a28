//! Copies of a committed run's row-level datasets in the layout other engines read without
//! conversion: hive-partitioned by period.
//!
//! ```text
//! <out>/
//!   _mirador_export.json                      # the manifest: files, rows, checksums, source run
//!   declarations/period=2023-01/part-00000.parquet
//!   declarations/period=2023-02/part-00000.parquet
//!   quarantine/period=__HIVE_DEFAULT_PARTITION__/part-00000.parquet
//!   ...
//! ```
//!
//! The key is in the paths only: no file holds a `period` column (a file that also stores the key
//! breaks DataFusion's reader). Which datasets are row-level, and how each row gets its period,
//! is the catalog's ([`mirador_schema::catalog::PeriodOf`]). Within a partition rows keep the
//! run's order. A dataset directory holds nothing but its partitions' parquet files; the manifest
//! sits beside the dataset directories, under a name readers skip.
//!
//! The export is written into a temporary sibling of `<out>`, every file and directory synced,
//! and renamed into place: a reader sees the previous export or the new one, never part of one.
//! Its bytes depend only on the run and the Mirador version: exporting again gives the same bytes
//! (and leaves an identical export in place).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use mirador_schema::catalog::{self, Dataset, FieldDoc, NULL_PARTITION, PARTITION_KEY, PeriodOf};
use mirador_schema::col;
use polars::prelude::*;

/// The manifest's file name, in the export's root. Spark skips `_`-prefixed names, DataFusion
/// lists only `*.parquet`, and no reader is pointed at the root.
pub const MANIFEST: &str = "_mirador_export.json";

/// The file of each partition.
pub const PART_FILE: &str = "part-00000.parquet";

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The run, a dataset or the output directory is not what an export needs (exit code 1).
    #[error("{0}")]
    Input(String),
    /// Writing the export failed (exit code 2).
    #[error(transparent)]
    Io(#[from] mirador_io::IoError),
    /// A check of what was written failed (exit code 2).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ExportError {
    /// Whether the user can fix it (bad input rather than a failure of Mirador or the disk).
    pub fn is_user_error(&self) -> bool {
        matches!(self, ExportError::Input(_))
    }
}

type Result<T, E = ExportError> = std::result::Result<T, E>;

fn input(msg: impl Into<String>) -> ExportError {
    ExportError::Input(msg.into())
}

fn polars_input(path: &Path) -> impl FnOnce(PolarsError) -> ExportError + '_ {
    move |e| input(format!("cannot read `{}`: {e}", path.display()))
}

fn internal(e: PolarsError) -> ExportError {
    ExportError::Internal(e.to_string())
}

/// The manifest of an export ([`MANIFEST`]). It holds no time: the same run exported twice gives
/// the same bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExportManifest {
    /// `hive`.
    pub layout: String,
    /// The partition key ([`PARTITION_KEY`]).
    pub partition_key: String,
    /// The partition of rows without a period ([`NULL_PARTITION`]).
    pub null_partition: String,
    /// The Mirador version that wrote it.
    pub mirador_version: String,
    /// The run exported.
    pub run_id: String,
    /// That run's key.
    pub run_key: String,
    /// One entry per dataset exported, in catalog order.
    pub datasets: Vec<DatasetExport>,
}

/// One dataset of an export.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DatasetExport {
    /// Dataset id; its directory in the export.
    pub dataset: String,
    /// Its file in the run.
    pub source: String,
    /// That file's SHA-256, as the run's manifest states it (checked).
    pub source_sha256: String,
    /// How each row got its period ([`PeriodOf::describe`]).
    pub period_of: String,
    /// Rows read from the run.
    pub rows_in: usize,
    /// Rows in the written files (read back from them): always `rows_in`.
    pub rows_written: usize,
    /// Rows in the null partition.
    pub rows_without_period: usize,
    /// A column of the run's file left out of the files because the paths hold it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped_column: Option<String>,
    /// The columns of the files, in order (the partition key is not one of them).
    pub columns: Vec<FieldDoc>,
    /// The files, by period (the null partition last).
    pub files: Vec<PartFile>,
}

/// One file of a partitioned dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartFile {
    /// Path relative to the export's root.
    pub path: String,
    /// Its period (`YYYY-MM`), or [`NULL_PARTITION`].
    pub period: String,
    /// Rows.
    pub rows: usize,
    /// Bytes.
    pub bytes: u64,
    /// SHA-256.
    pub sha256: String,
}

/// What [`export_hive`] did.
#[derive(Debug)]
pub struct Export {
    /// The run directory exported.
    pub run_dir: PathBuf,
    /// The manifest written (or found identical).
    pub manifest: ExportManifest,
    /// An identical export was already in place and was left as it was.
    pub unchanged: bool,
    /// Row-level datasets the run does not hold (when none were asked for by name).
    pub absent: Vec<&'static str>,
    /// Remains of interrupted exports to the same place, removed.
    pub cleaned: usize,
}

/// The run directory of `run`: a run directory itself (it has a `manifest.json`), or an output
/// root whose `latest` run is taken.
pub fn resolve_run(run: &Path) -> Result<PathBuf> {
    if run.join("manifest.json").is_file() {
        return Ok(run.to_owned());
    }
    mirador_pipeline::latest_run(run).ok_or_else(|| {
        input(format!("`{}` is not a committed Mirador run (no manifest.json) nor an output root with a `latest` run", run.display()))
    })
}

/// The catalog entries of `names` (all row-level datasets the run holds when `names` is empty),
/// in catalog order, and the row-level datasets left out because the run does not hold them.
fn select(run_dir: &Path, names: &[String]) -> Result<(Vec<&'static Dataset>, Vec<&'static str>)> {
    let row_level: Vec<&'static Dataset> = catalog::row_level().collect();
    let known_ids = row_level.iter().map(|d| d.id).collect::<Vec<_>>().join(", ");
    let known = || known_ids.clone();
    if names.is_empty() {
        let (held, absent): (Vec<_>, Vec<_>) = row_level.into_iter().partition(|d| run_dir.join(d.location).is_file());
        if held.is_empty() {
            return Err(input(format!("the run `{}` holds none of the row-level datasets ({})", run_dir.display(), known())));
        }
        return Ok((held, absent.into_iter().map(|d| d.id).collect()));
    }
    for name in names {
        let Some(d) = row_level.iter().find(|d| d.id == name) else {
            let why = if catalog::get(name).is_some() { "is not a row-level dataset" } else { "is not a dataset" };
            return Err(input(format!("`{name}` {why}; the row-level datasets are {}", known())));
        };
        if !run_dir.join(d.location).is_file() {
            return Err(input(format!("the run `{}` has no `{name}` ({} is missing)", run_dir.display(), d.location)));
        }
    }
    Ok((row_level.into_iter().filter(|d| names.iter().any(|n| n == d.id)).collect(), Vec::new()))
}

/// The periods of a dataset's rows: distinct keys, sorted (the null partition last), and each
/// row's index into them.
#[derive(Clone)]
struct Periods {
    keys: Vec<String>,
    of_row: Vec<u32>,
}

impl Periods {
    /// From one optional `YYYY-MM` per row (`None`: the null partition).
    fn from_rows<'a>(rows: impl Iterator<Item = Option<&'a str>>) -> Periods {
        let mut index: HashMap<Option<&str>, u32> = HashMap::new();
        let mut first: Vec<Option<&str>> = Vec::new();
        let of_row: Vec<u32> = rows
            .map(|p| {
                *index.entry(p).or_insert_with(|| {
                    first.push(p);
                    (first.len() - 1) as u32
                })
            })
            .collect();
        // Sorted keys, the null partition last; rows renumbered to them.
        let mut order: Vec<u32> = (0..first.len() as u32).collect();
        order.sort_by(|&a, &b| match (first[a as usize], first[b as usize]) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        let mut rank = vec![0u32; first.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        let keys = order.iter().map(|&i| first[i as usize].map_or_else(|| NULL_PARTITION.to_owned(), str::to_owned)).collect();
        Periods { keys, of_row: of_row.into_iter().map(|i| rank[i as usize]).collect() }
    }

    /// The rows of each key, in the run's order.
    fn rows(&self) -> Vec<Vec<IdxSize>> {
        let mut out = vec![Vec::new(); self.keys.len()];
        for (row, &k) in self.of_row.iter().enumerate() {
            out[k as usize].push(row as IdxSize);
        }
        out
    }
}

/// Whether `p` is a period (`YYYY-MM`, month 01 to 12): what a partition directory may be named.
pub fn is_period(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() == 7
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..].iter().all(u8::is_ascii_digit)
        && matches!(&p[5..], "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12")
}

/// A text column as strings (categoricals too).
fn text(df: &DataFrame, name: &str, path: &Path) -> Result<StringChunked> {
    let c = df.column(name).map_err(|_| input(format!("`{}` has no column `{name}`", path.display())))?;
    let c = c.cast(&DataType::String).map_err(polars_input(path))?;
    Ok(c.str().map_err(polars_input(path))?.clone())
}

/// The periods of a `YYYY-MM` column; a value that is not one is an error naming its row.
fn periods_of_column(df: &DataFrame, name: &str, path: &Path, first_row: usize) -> Result<Periods> {
    let values = text(df, name, path)?;
    if let Some((row, v)) = values.iter().enumerate().find(|(_, v)| !v.is_some_and(is_period)) {
        return Err(input(format!(
            "`{}` row {}: `{name}` is {}, not a period (YYYY-MM)",
            path.display(),
            first_row + row + 1,
            v.map_or_else(|| "null".to_owned(), |v| format!("`{v}`"))
        )));
    }
    Ok(Periods::from_rows(values.iter()))
}

/// How the date of a quarantined raw row is read: the source's header of its date (`date` for
/// sources with Mirador's column names) and the source's date format (`None`: `YYYY-MM-DD`).
#[derive(Debug, Clone, Copy)]
pub struct RawDate<'a> {
    /// The raw row's field holding the date.
    pub field: &'a str,
    /// Its format (chrono's `strftime` syntax, as in the pipeline's `date-format`).
    pub format: Option<&'a str>,
}

impl Default for RawDate<'_> {
    fn default() -> Self {
        RawDate { field: col::DATE, format: None }
    }
}

/// The month (`YYYY-MM`) of a quarantined raw row (JSON, header to raw text): its date field
/// read with the given format, else as `YYYY-MM-DD` (a time after the day is ignored).
pub fn raw_row_period(raw: &str, how: RawDate<'_>) -> Option<String> {
    let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw).ok()?;
    let date = row.get(how.field)?.as_str()?.trim();
    let date_format = how.format;
    let parsed = date_format
        .and_then(|f| chrono::NaiveDate::parse_from_str(date, f).ok())
        .or_else(|| date.get(..10).and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()))?;
    Some(parsed.format("%Y-%m").to_string())
}

/// The periods of quarantined rows ([`raw_row_period`]).
fn periods_of_raw_rows(df: &DataFrame, path: &Path, how: RawDate<'_>) -> Result<Periods> {
    let raw = text(df, col::RAW_ROW, path)?;
    let months: Vec<Option<String>> = raw.iter().map(|r| r.and_then(|r| raw_row_period(r, how))).collect();
    Ok(Periods::from_rows(months.iter().map(Option::as_deref)))
}

/// The run's declarations, which per-declaration datasets take their periods from and are
/// checked against.
struct DeclarationSource {
    path: PathBuf,
    rows: usize,
}

impl DeclarationSource {
    /// The run's declarations, checked against the run's manifest (`record`) as every exported
    /// file is.
    fn open(run_dir: &Path, record: Option<&mirador_pipeline::manifest::OutputRecord>) -> Result<DeclarationSource> {
        let path = run_dir.join(declarations().location);
        if !path.is_file() {
            return Err(input(format!(
                "the run `{}` has no declarations ({}): per-declaration datasets take their period from them",
                run_dir.display(),
                declarations().location
            )));
        }
        let record = record.ok_or_else(|| input(format!("the run's manifest does not list `{}`", declarations().id)))?;
        committed(&path, record)?;
        Ok(DeclarationSource { path, rows: record.rows })
    }

    /// Whether the key columns of the dataset at `path` are the declarations', proven from the
    /// files' bytes ([`mirador_io::same_columns`]: the stages write them so); otherwise they are
    /// compared slice by slice.
    fn keys_proven(&self, path: &Path) -> bool {
        let keys = [col::DECLARATION_ID, col::ITEM_NO];
        mirador_io::same_columns(&self.path, path, &keys).is_ok_and(|same| same.len() == keys.len())
    }

    /// The periods of rows `first_row..` of a dataset whose rows are the declarations' rows
    /// (`df`); an error naming the first row that is not, unless `proven`.
    fn periods_of(&self, df: &DataFrame, path: &Path, first_row: usize, proven: bool) -> Result<Periods> {
        let columns: &[&str] = if proven { &[col::PERIOD] } else { &[col::DECLARATION_ID, col::ITEM_NO, col::PERIOD] };
        let own = mirador_io::read_parquet_slice(&self.path, Some(columns), first_row, df.height()).map_err(|e| input(e.to_string()))?;
        if !proven {
            let key = |df: &DataFrame, path: &Path| -> Result<(StringChunked, Int64Chunked)> {
                let items = df
                    .column(col::ITEM_NO)
                    .and_then(|c| c.cast(&DataType::Int64))
                    .map_err(|_| input(format!("`{}` has no integer column `{}`", path.display(), col::ITEM_NO)))?;
                Ok((text(df, col::DECLARATION_ID, path)?, items.i64().map_err(polars_input(path))?.clone()))
            };
            let ((ids, items), (own_ids, own_items)) = (key(df, path)?, key(&own, &self.path)?);
            let mismatch = ids.iter().zip(items.iter()).zip(own_ids.iter().zip(own_items.iter())).position(|(a, b)| a != b);
            if let Some(row) = mismatch {
                let show = |id: Option<&str>, item: Option<i64>| {
                    format!("({}, {})", id.unwrap_or("null"), item.map_or_else(|| "null".to_owned(), |i| i.to_string()))
                };
                return Err(input(format!(
                    "`{}` row {}: {} is not the declarations' row {} {}: its rows do not line up with the declarations",
                    path.display(),
                    first_row + row + 1,
                    show(ids.get(row), items.get(row)),
                    first_row + row + 1,
                    show(own_ids.get(row), own_items.get(row)),
                )));
            }
        }
        periods_of_column(&own, col::PERIOD, &self.path, first_row)
    }
}

fn declarations() -> &'static Dataset {
    catalog::get(mirador_schema::datasets::DECLARATIONS).unwrap_or_else(|| unreachable!("the catalog lists the declarations"))
}

/// Checks that `path` is the file the run committed (`record`'s SHA-256); returns the SHA-256.
fn committed(path: &Path, record: &mirador_pipeline::manifest::OutputRecord) -> Result<String> {
    let (sha256, _) = mirador_io::sha256_file(path).map_err(|e| input(e.to_string()))?;
    if sha256 != record.sha256 {
        return Err(input(format!("`{}` is not the file the run committed (its SHA-256 differs from the run's manifest)", path.display())));
    }
    Ok(sha256)
}

/// Options of [`export_hive`].
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Datasets to export (row-level ones); empty: every row-level dataset the run holds.
    pub datasets: Vec<String>,
    /// The declarations source's date format, for the periods of quarantined rows (default:
    /// `YYYY-MM-DD`).
    pub date_format: Option<String>,
    /// The declarations source's header of the date, for the same (default: `date`, Mirador's
    /// column name; a source mapped in the pipeline's `columns` has its own).
    pub date_field: Option<String>,
    /// Rows read from the run at a time (default [`SLICE_ROWS`]); what the export holds in
    /// memory besides each partition's last part of a row group. The files do not depend on it.
    pub slice_rows: Option<usize>,
}

/// Rows read from the run at a time: one row group.
pub const SLICE_ROWS: usize = mirador_io::ROW_GROUP_ROWS;

/// Exports the row-level datasets of the committed run `run` (a run directory, or an output root
/// whose `latest` run is taken) into `out`, hive-partitioned by period.
///
/// `out` must not exist, be empty, or hold an earlier export (it is replaced whole); anything else
/// is refused rather than overwritten.
pub fn export_hive(run: &Path, out: &Path, opts: &ExportOptions) -> Result<Export> {
    let run_dir = resolve_run(run)?;
    let manifest_path = run_dir.join("manifest.json");
    let run_manifest: mirador_pipeline::Manifest =
        serde_json::from_slice(&fs::read(&manifest_path).map_err(|e| input(format!("cannot read `{}`: {e}", manifest_path.display())))?)
            .map_err(|e| input(format!("`{}` is not a run manifest: {e}", manifest_path.display())))?;
    let (datasets, absent) = select(&run_dir, &opts.datasets)?;
    check_out(&run_dir, out)?;

    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    mirador_io::create_dir(parent)?;
    let prefix = temporary_prefix(out);
    let cleaned = clean_interrupted(parent, &prefix);
    let tmp = tempfile::Builder::new().prefix(&prefix).tempdir_in(parent).map_err(|source| mirador_io::IoError::Fs {
        action: "create temporary directory in",
        path: parent.to_owned(),
        source,
    })?;
    // Held until the export is published: an export that finds the directory unlocked knows
    // its writer died.
    let _hold = hold(tmp.path()).map_err(|source| mirador_io::IoError::Fs { action: "lock", path: tmp.path().to_owned(), source })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).map_err(|source| mirador_io::IoError::Fs {
            action: "set permissions of",
            path: tmp.path().to_owned(),
            source,
        })?;
    }

    let needs_declarations = datasets.iter().any(|d| d.period == Some(PeriodOf::Declaration));
    let record_of = |id: &str| run_manifest.outputs.iter().find(|o| o.dataset == id);
    let declaration_rows = if needs_declarations { Some(DeclarationSource::open(&run_dir, record_of(declarations().id))?) } else { None };
    let mut exported = Vec::with_capacity(datasets.len());
    for d in datasets {
        let record = record_of(d.id).ok_or_else(|| {
            input(format!("the run's manifest `{}` does not list `{}`: not a committed output of the run", manifest_path.display(), d.id))
        })?;
        exported.push(export_dataset(
            &run_dir,
            tmp.path(),
            d,
            record,
            declaration_rows.as_ref(),
            raw_date(opts),
            opts.slice_rows.unwrap_or(SLICE_ROWS).max(1),
        )?);
    }
    let manifest = ExportManifest {
        layout: "hive".into(),
        partition_key: PARTITION_KEY.into(),
        null_partition: NULL_PARTITION.into(),
        mirador_version: env!("CARGO_PKG_VERSION").into(),
        run_id: run_manifest.run_id.clone(),
        run_key: run_manifest.run_key.clone(),
        datasets: exported,
    };
    let mut json = serde_json::to_string_pretty(&manifest).map_err(|e| ExportError::Internal(e.to_string()))?;
    json.push('\n');
    mirador_io::write_bytes(&tmp.path().join(MANIFEST), json.as_bytes())?;
    mirador_io::sync_dir(tmp.path())?;

    if fs::read(out.join(MANIFEST)).is_ok_and(|old| old == json.as_bytes()) && same_files(out, &manifest) {
        return Ok(Export { run_dir, manifest, unchanged: true, absent, cleaned });
    }
    publish(tmp, out, parent, exchange)?;
    Ok(Export { run_dir, manifest, unchanged: false, absent, cleaned })
}

/// The name of an export's temporary directories beside `out` (`.mirador-tmp-export-<name>-`).
fn temporary_prefix(out: &Path) -> String {
    let name = out.file_name().map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    format!(".mirador-tmp-export-{name}-")
}

/// An exclusive kernel lock on directory `dir`, held while the handle lives (released by the
/// kernel when the process dies).
fn hold(dir: &Path) -> std::io::Result<fs::File> {
    let handle = fs::File::open(dir)?;
    if mirador_io::try_lock_for(&handle, std::time::Duration::ZERO)? {
        Ok(handle)
    } else {
        Err(std::io::Error::other("held by another process"))
    }
}

/// Removes the remains of exports to the same place that died before publishing (killed, power
/// cut): temporary directories named with `prefix` whose lock no live export holds. Returns how
/// many were removed.
fn clean_interrupted(parent: &Path, prefix: &str) -> usize {
    let Ok(entries) = fs::read_dir(parent) else { return 0 };
    let mut removed = 0;
    for e in entries.flatten() {
        let path = e.path();
        if !e.file_name().to_string_lossy().starts_with(prefix) || !path.is_dir() {
            continue;
        }
        if let Ok(_lock) = hold(&path)
            && fs::remove_dir_all(&path).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// How [`ExportOptions`] says the quarantined rows' dates are read.
fn raw_date(opts: &ExportOptions) -> RawDate<'_> {
    RawDate { field: opts.date_field.as_deref().unwrap_or(col::DATE), format: opts.date_format.as_deref() }
}

/// Refuses an output directory that is the run's or inside it, or that holds something other
/// than an earlier export.
fn check_out(run_dir: &Path, out: &Path) -> Result<()> {
    let canonical_run = fs::canonicalize(run_dir).unwrap_or_else(|_| run_dir.to_owned());
    let mut probe = Some(out);
    while let Some(p) = probe {
        if fs::canonicalize(p).is_ok_and(|c| c.starts_with(&canonical_run)) {
            return Err(input(format!(
                "`{}` is inside the run `{}`: a run is never changed after it is committed",
                out.display(),
                run_dir.display()
            )));
        }
        probe = p.parent().filter(|p| !p.as_os_str().is_empty());
    }
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(input(format!("`{}` exists and is not a directory", out.display())));
    }
    let empty = fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false);
    if !empty && !out.join(MANIFEST).is_file() {
        return Err(input(format!("`{}` exists and is not a Mirador export (no {MANIFEST}): refusing to replace it", out.display())));
    }
    Ok(())
}

/// Whether the files of `manifest` are in `dir` with their sizes (their checksums being the
/// manifest's, which equals the one in `dir`).
fn same_files(dir: &Path, manifest: &ExportManifest) -> bool {
    manifest.datasets.iter().flat_map(|d| &d.files).all(|f| fs::metadata(dir.join(&f.path)).is_ok_and(|m| m.len() == f.bytes))
}

/// One partition's file being written: its rows go out in whole row groups, the rest waits for
/// more, so that the file has the bytes of its rows written at once
/// ([`mirador_io::ROW_GROUP_ROWS`]).
struct Part {
    stream: mirador_io::ParquetStream,
    pending: Option<DataFrame>,
    rows: usize,
}

impl Part {
    fn push(&mut self, df: DataFrame) -> Result<()> {
        self.rows += df.height();
        let mut pending = match self.pending.take() {
            None => df,
            Some(mut p) => {
                p.vstack_mut(&df).map_err(internal)?;
                p
            }
        };
        let whole = pending.height() / mirador_io::ROW_GROUP_ROWS * mirador_io::ROW_GROUP_ROWS;
        if whole > 0 {
            self.stream.write(&pending.slice(0, whole))?;
            pending = pending.slice(i64::try_from(whole).unwrap_or(i64::MAX), usize::MAX);
        }
        self.pending = (pending.height() > 0).then_some(pending);
        Ok(())
    }

    /// Writes the rest, publishes the file; its SHA-256.
    fn finish(mut self) -> Result<String> {
        if let Some(rest) = self.pending.take() {
            self.stream.write(&rest)?;
        }
        Ok(self.stream.finish_file()?)
    }
}

/// Writes one dataset's partitions into `tmp/<id>/`, reading the run's file `slice_rows` rows at
/// a time.
fn export_dataset(
    run_dir: &Path,
    tmp: &Path,
    d: &Dataset,
    record: &mirador_pipeline::manifest::OutputRecord,
    declarations: Option<&DeclarationSource>,
    raw_date: RawDate<'_>,
    slice_rows: usize,
) -> Result<DatasetExport> {
    let path = run_dir.join(d.location);
    let sha256 = committed(&path, record)?;
    let rows_in = mirador_io::parquet_rows(&path).map_err(|e| input(e.to_string()))?;
    if rows_in != record.rows {
        return Err(input(format!("`{}` has {rows_in} rows where the run's manifest states {}", path.display(), record.rows)));
    }
    let period_of = d.period.unwrap_or_else(|| unreachable!("only row-level datasets are selected"));
    let proven = match (period_of, declarations) {
        (PeriodOf::Declaration, Some(decl)) => {
            if rows_in != decl.rows {
                return Err(input(format!(
                    "`{}` has {rows_in} rows where the declarations have {}: its rows do not line up with the declarations",
                    path.display(),
                    decl.rows
                )));
            }
            decl.keys_proven(&path)
        }
        (PeriodOf::Declaration, None) => return Err(ExportError::Internal("declarations not read".into())),
        _ => false,
    };
    let dir = tmp.join(d.id);
    mirador_io::create_dir(&dir)?;
    let rel = |key: &str| format!("{}/{PARTITION_KEY}={key}/{PART_FILE}", d.id);
    let mut parts: std::collections::BTreeMap<String, Part> = std::collections::BTreeMap::new();
    let mut columns: Option<Schema> = None;
    let mut dropped: Option<String>;
    let mut offset = 0;
    loop {
        let mut df = mirador_io::read_parquet_slice(&path, None, offset, slice_rows).map_err(|e| input(e.to_string()))?;
        let periods = match period_of {
            PeriodOf::Column(c) => periods_of_column(&df, c, &path, offset)?,
            PeriodOf::Declaration => declarations.map_or_else(
                || Err(ExportError::Internal("declarations not read".into())),
                |decl| decl.periods_of(&df, &path, offset, proven),
            )?,
            PeriodOf::RawRowDate => periods_of_raw_rows(&df, &path, raw_date)?,
        };
        // The key lives in the paths: a column of that name, or the one the period came from, is
        // left out of the files.
        dropped = match period_of {
            PeriodOf::Column(c) => Some(c.to_owned()),
            _ => df.get_column_names().iter().any(|n| n.as_str() == PARTITION_KEY).then(|| PARTITION_KEY.to_owned()),
        };
        if let Some(c) = &dropped {
            df = df.drop(c).map_err(internal)?;
        }
        let schema = columns.get_or_insert_with(|| df.schema().as_ref().clone()).clone();
        let height = df.height();
        // A dataset without rows is one empty file in the null partition: readers that take the
        // schema from the files (DataFusion, polars) read it as zero rows rather than failing.
        let (keys, rows) = if offset == 0 && height == 0 {
            (vec![NULL_PARTITION.to_owned()], vec![Vec::new()])
        } else {
            (periods.keys.clone(), periods.rows())
        };
        for (key, rows) in keys.into_iter().zip(rows) {
            let part = df.take(&IdxCa::from_vec("rows".into(), rows)).map_err(internal)?;
            if !parts.contains_key(&key) {
                let file = tmp.join(rel(&key));
                mirador_io::create_dir(file.parent().unwrap_or(tmp))?;
                parts.insert(key.clone(), Part { stream: mirador_io::ParquetStream::create(&file, &schema)?, pending: None, rows: 0 });
            }
            if let Some(p) = parts.get_mut(&key) {
                p.push(part)?;
            }
        }
        offset += height;
        if height == 0 || offset >= rows_in {
            break;
        }
    }
    if offset != rows_in {
        return Err(input(format!("`{}`: {offset} rows read where the file states {rows_in}", path.display())));
    }
    // Partitions in key order: the months, then the null partition (`_` sorts after digits).
    let mut files = Vec::with_capacity(parts.len());
    let mut rows_without_period = 0;
    for (key, part) in parts {
        let written = part.rows;
        let sha256 = part.finish()?;
        let file = tmp.join(rel(&key));
        let rows = mirador_io::parquet_rows(&file)?;
        if rows != written {
            return Err(ExportError::Internal(format!("`{}` holds {rows} rows, {written} were written", file.display())));
        }
        if key == NULL_PARTITION {
            rows_without_period = rows;
        }
        let bytes = fs::metadata(&file).map_err(|source| mirador_io::IoError::Fs { action: "stat", path: file.clone(), source })?.len();
        // The partition's file was renamed into its directory: sync it.
        mirador_io::sync_dir(file.parent().unwrap_or(tmp))?;
        files.push(PartFile { path: rel(&key), period: key, rows, bytes, sha256 });
    }
    mirador_io::sync_dir(&dir)?;
    let rows_written: usize = files.iter().map(|f| f.rows).sum();
    if rows_written != rows_in {
        return Err(ExportError::Internal(format!("`{}`: {rows_in} rows read, {rows_written} written", d.id)));
    }
    let columns = columns.unwrap_or_default().iter().map(|(n, t)| FieldDoc { name: n.to_string(), dtype: t.to_string() }).collect();
    Ok(DatasetExport {
        dataset: d.id.to_owned(),
        source: d.location.to_owned(),
        source_sha256: sha256,
        period_of: period_of.describe(),
        rows_in,
        rows_written,
        rows_without_period,
        dropped_column: dropped,
        columns,
        files,
    })
}

/// Renames the finished export `tmp` to `out` in one step: a plain rename where `out` is absent
/// or empty; where an earlier export is there, the two are exchanged (Linux `renameat2`) and the
/// earlier one removed. Elsewhere the earlier export is moved aside first, so that for a moment
/// `out` is absent (never partly written).
fn publish(tmp: tempfile::TempDir, out: &Path, parent: &Path, exchange: fn(&Path, &Path) -> bool) -> Result<()> {
    let fs_err = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| mirador_io::IoError::Fs { action, path, source }
    };
    let staged = tmp.keep();
    let removed = |r: Result<()>| {
        if r.is_err() {
            let _ = fs::remove_dir_all(&staged);
        }
        r
    };
    if out.is_dir() && fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false) {
        removed(fs::remove_dir(out).map_err(|e| fs_err("remove empty directory", out)(e).into()))?;
    }
    if !out.exists() {
        removed(fs::rename(&staged, out).map_err(|e| fs_err("rename into", out)(e).into()))?;
        mirador_io::sync_dir(parent)?;
        return Ok(());
    }
    if !exchange(&staged, out) {
        // `staged` takes the earlier export's place in two renames.
        let mut aside = staged.clone().into_os_string();
        aside.push(".old");
        let aside = PathBuf::from(aside);
        removed(fs::rename(out, &aside).map_err(|e| fs_err("move aside", out)(e).into()))?;
        if let Err(e) = fs::rename(&staged, out) {
            let _ = fs::rename(&aside, out);
            let _ = fs::remove_dir_all(&staged);
            return Err(fs_err("rename into", out)(e).into());
        }
        mirador_io::sync_dir(parent)?;
        let _ = fs::remove_dir_all(&aside);
        return Ok(());
    }
    mirador_io::sync_dir(parent)?;
    // `staged` now holds the earlier export.
    fs::remove_dir_all(&staged).map_err(fs_err("remove the earlier export moved to", &staged))?;
    Ok(())
}

/// Exchanges two directories atomically; false where the system cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> bool {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishing_replaces_an_earlier_export_whole_with_or_without_an_atomic_exchange() {
        let no_exchange: fn(&Path, &Path) -> bool = |_, _| false;
        for swap in [exchange, no_exchange] {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("ex.v2");
            let stage = |file: &str| {
                let tmp = tempfile::Builder::new().prefix(&temporary_prefix(&out)).tempdir_in(dir.path()).unwrap();
                fs::write(tmp.path().join(file), file).unwrap();
                tmp
            };
            publish(stage("first"), &out, dir.path(), swap).unwrap();
            publish(stage("second"), &out, dir.path(), swap).unwrap();
            let names = |d: &Path| fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect::<Vec<_>>();
            assert_eq!(names(&out), ["second"]);
            assert_eq!(names(dir.path()), ["ex.v2"], "nothing left beside it");
        }
    }

    #[test]
    fn periods_are_sorted_the_null_partition_last_and_rows_keep_their_order() {
        let rows = [Some("2023-02"), None, Some("2023-01"), Some("2023-02"), None, Some("2023-01")];
        let p = Periods::from_rows(rows.iter().copied());
        assert_eq!(p.keys, ["2023-01", "2023-02", NULL_PARTITION]);
        assert_eq!(p.rows(), [vec![2, 5], vec![0, 3], vec![1, 4]]);
    }

    #[test]
    fn only_months_name_partitions() {
        for ok in ["2023-01", "1999-12"] {
            assert!(is_period(ok), "{ok}");
        }
        for bad in ["2023-13", "2023-00", "2023-1", "2023", "2023-01-05", "../x-01", "2023/01", ""] {
            assert!(!is_period(bad), "{bad}");
        }
    }

    #[test]
    fn a_raw_row_takes_the_month_of_its_date_when_it_parses() {
        let iso = RawDate::default();
        assert_eq!(raw_row_period(r#"{"date":"2023-04-30","hs_code":"x"}"#, iso).as_deref(), Some("2023-04"));
        assert_eq!(raw_row_period(r#"{"date":"2023-04-30 10:12"}"#, iso).as_deref(), Some("2023-04"));
        let own = RawDate { field: "Date", format: Some("%d/%m/%Y") };
        assert_eq!(raw_row_period(r#"{"Date":"30/04/2023","date":"2020-01-01"}"#, own).as_deref(), Some("2023-04"));
        assert_eq!(raw_row_period(r#"{"date":"30/04/2023"}"#, own), None, "another field");
        for none in [r#"{"date":"2023-02-30"}"#, r#"{"date":"not a date"}"#, r#"{"date":null}"#, r#"{"period":"2023-04"}"#, "not json", ""]
        {
            assert_eq!(raw_row_period(none, iso), None, "{none}");
        }
    }
}
