//! Stages whose map work runs on the engine, in place of the local stage of the same name when a
//! run is given one (`mirador run … --engine ballista://HOST:PORT`). They read and write what the
//! local stage does, so the run's lock, checks, manifest and atomic publish are the same.

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType as ArrowType, Float64Type, Int32Type};
use foldhash::fast::FixedState;
use mirador_gap::{ExposureColumns, RevenueGap};
use mirador_pipeline::{Stage, StageContext, StageError, StageOutput};
use mirador_schema::catalog::mirror_exposure as exposure;
use mirador_schema::{DatasetId, col, datasets};
use polars::prelude::{DataFrame, DataType};

use crate::{Engine, EngineError, Part};

/// The `revenue_gap` stage with its per-declaration work on the engine: the cells (one per HS6 ×
/// partner × period, a few thousand) and their sums are computed here, as locally; the map over
/// every declaration item, the sums per cell key and the join with the cells that make
/// `mirror_exposure` run on the cluster ([`Engine::mirror_exposure`]), reading the run's own
/// `declarations` file. The rows come back unordered and are put in the declarations' order, so
/// the dataset has the local stage's key columns, types and blocks.
pub struct RevenueGapOnEngine {
    address: String,
    stall_limit: std::time::Duration,
}

impl RevenueGapOnEngine {
    /// The stage on the cluster whose scheduler is at `address` (`ballista://HOST:PORT`), its
    /// query abandoned and run again when no part of its result comes in `stall_limit`
    /// ([`Engine::with_stall_limit`]; [`crate::STALL_LIMIT`] by default).
    pub fn new(address: &str, stall_limit: Option<std::time::Duration>) -> Self {
        RevenueGapOnEngine { address: address.to_owned(), stall_limit: stall_limit.unwrap_or(crate::STALL_LIMIT) }
    }
}

impl Stage for RevenueGapOnEngine {
    fn name(&self) -> &'static str {
        RevenueGap.name()
    }

    fn inputs(&self) -> &'static [DatasetId] {
        RevenueGap.inputs()
    }

    fn outputs(&self) -> &'static [DatasetId] {
        RevenueGap.outputs()
    }

    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        RevenueGap.check_params(params)
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let started = std::time::Instant::now();
        let params = mirador_gap::stage_params(ctx)?;
        let declarations = ctx.input(datasets::DECLARATIONS)?;
        let file = ctx.input_file(datasets::DECLARATIONS).ok_or_else(|| {
            StageError::Data(
                "the engine reads the run's `declarations` file, and this run has none (a stage run outside a pipeline?)".into(),
            )
        })?;
        let r = mirador_gap::analyse_cells(declarations, ctx.input(datasets::MIRROR_FLOWS)?, ctx.input(datasets::TARIFFS)?, &params)?;
        let mut stream = ctx.dataset_stream(datasets::MIRROR_EXPOSURE);
        // The executors read the cells from a file beside the run's datasets (on the disk they
        // share with this process), removed when the stage ends: it never reaches the run.
        let scratch = tempfile::Builder::new()
            .prefix(".revenue_gap-engine-")
            .tempdir_in(stream.dir().unwrap_or(ctx.artifact_dir()))
            .map_err(|e| StageError::Data(format!("a scratch directory for the engine: {e}")))?;
        let cells = scratch.path().join("gap_by_cell.parquet");
        mirador_io::write_parquet(&mut r.by_cell.clone(), &cells)?;
        let on_engine = |e: EngineError| {
            StageError::Data(format!(
                "on the engine at {}: {e} (`mirador cluster up` starts a cluster; without --engine the stage runs here)",
                self.address
            ))
        };
        let engine = Engine::connect(&self.address).map_err(on_engine)?.with_stall_limit(self.stall_limit);
        tracing::debug!(
            seconds = started.elapsed().as_secs_f64(),
            cells = r.by_cell.height(),
            "Cells computed and written for the engine."
        );
        let mut placing = Placing::new(declarations)?;
        let rows = engine.stream_mirror_exposure(file, &cells, params.period, |part| placing.take(part)).map_err(on_engine)?;
        let columns = placing.finish(rows).map_err(on_engine)?;
        tracing::debug!(seconds = started.elapsed().as_secs_f64(), rows, "The engine's rows in the declarations' order.");
        mirador_gap::write_exposure_columns(declarations, &columns, |block: DataFrame| stream.write(&block))?;
        Ok(mirador_gap::stage_output(r, stream.finish()?).with_metric("engine", engine.location()))
    }
}

/// The engine's `mirror_exposure` rows, as they stream in, each put at its declaration item's
/// place (by `declaration_id` and `item_no`, unique in the declarations).
struct Placing<'a> {
    place: HashMap<(Option<&'a str>, Option<i32>), u32, FixedState>,
    placed: Vec<bool>,
    period_codes: HashMap<String, u32>,
    out: ExposureColumns,
}

impl<'a> Placing<'a> {
    /// Every item of `declarations` by its place (their `declaration_id` must be text), none
    /// placed yet.
    fn new(declarations: &'a DataFrame) -> Result<Self, StageError> {
        let n = declarations.height();
        let ids = match declarations.column(col::DECLARATION_ID)?.dtype() {
            DataType::String => declarations.column(col::DECLARATION_ID)?.str()?,
            other => return Err(StageError::Data(format!("declarations: `{}` is {other}, not text", col::DECLARATION_ID))),
        };
        let items = declarations.column(col::ITEM_NO)?.i32()?;
        let mut place = HashMap::with_capacity_and_hasher(n, FixedState::default());
        for (i, key) in ids.iter().zip(items.iter()).enumerate() {
            if place.insert(key, i as u32).is_some() {
                return Err(StageError::Data(format!("declarations: item {key:?} appears twice; the engine's rows cannot be placed")));
            }
        }
        Ok(Placing { place, placed: vec![false; n], period_codes: HashMap::new(), out: empty_columns(n) })
    }

    /// Takes a part of the result: on [`Part::Start`], forgets the rows of an earlier attempt.
    fn take(&mut self, part: Part<'_>) -> Result<(), EngineError> {
        let batch = match part {
            Part::Start => {
                let n = self.placed.len();
                (self.placed, self.out) = (vec![false; n], empty_columns(n));
                self.period_codes.clear();
                return Ok(());
            }
            Part::Batch(batch) => batch,
        };
        let column = |name: &str, to: &ArrowType| {
            let c = batch.column_by_name(name).ok_or_else(|| EngineError::Result(format!("mirror_exposure has no column `{name}`")))?;
            Ok::<_, EngineError>(cast(c, to)?)
        };
        let id = column(col::DECLARATION_ID, &ArrowType::Utf8)?;
        let item = column(col::ITEM_NO, &ArrowType::Int32)?;
        let period = column(exposure::GAP_PERIOD, &ArrowType::Utf8)?;
        let ratio = column(exposure::MIRROR_GAP_RATIO, &ArrowType::Float64)?;
        let lost = column(exposure::CELL_LOST_DUTY_USD, &ArrowType::Float64)?;
        let share = column(exposure::MIRROR_DUTY_SHARE_USD, &ArrowType::Float64)?;
        let (id, item, period) = (id.as_string::<i32>(), item.as_primitive::<Int32Type>(), period.as_string::<i32>());
        let (ratio, lost, share) =
            (ratio.as_primitive::<Float64Type>(), lost.as_primitive::<Float64Type>(), share.as_primitive::<Float64Type>());
        let out = &mut self.out;
        for r in 0..batch.num_rows() {
            let key = (id.is_valid(r).then(|| id.value(r)), item.is_valid(r).then(|| item.value(r)));
            let Some(&i) = self.place.get(&key) else {
                return Err(EngineError::Result(format!("mirror_exposure: item {key:?} is not among the declarations")));
            };
            let i = i as usize;
            if std::mem::replace(&mut self.placed[i], true) {
                return Err(EngineError::Result(format!("mirror_exposure: item {key:?} came back twice")));
            }
            if period.is_valid(r) {
                let text = period.value(r);
                out.period_codes[i] = match self.period_codes.get(text) {
                    Some(&code) => code,
                    None => {
                        let code = out.periods.len() as u32;
                        self.period_codes.insert(text.to_owned(), code);
                        out.periods.push(text.to_owned());
                        code
                    }
                };
            }
            out.gap_ratio[i] = ratio.is_valid(r).then(|| ratio.value(r));
            out.cell_lost_duty_usd[i] = lost.value(r);
            out.duty_share_usd[i] = share.value(r);
        }
        Ok(())
    }

    /// The placed columns, once the result's `rows` rows are in: every item placed once.
    fn finish(self, rows: u64) -> Result<ExposureColumns, EngineError> {
        let n = self.placed.len();
        if rows != n as u64 {
            return Err(EngineError::Result(format!("mirror_exposure has {rows} rows for {n} declaration items")));
        }
        // As many rows as items, none unknown or repeated: every item has its row.
        Ok(self.out)
    }
}

/// Columns of `n` rows, none placed yet.
fn empty_columns(n: usize) -> ExposureColumns {
    ExposureColumns {
        period_codes: vec![u32::MAX; n],
        periods: Vec::new(),
        gap_ratio: vec![None; n],
        cell_lost_duty_usd: vec![0.0; n],
        duty_share_usd: vec![0.0; n],
    }
}
