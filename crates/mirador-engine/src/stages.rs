//! Stages whose map work runs on the engine, in place of the local stage of the same name when a
//! run is given one (`mirador run … --engine ballista://HOST:PORT`). They read and write what the
//! local stage does, so the run's lock, checks, manifest and atomic publish are the same.

use std::collections::HashMap;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType as ArrowType, Float64Type, Int32Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use mirador_gap::{ExposureColumns, RevenueGap};
use mirador_pipeline::{Stage, StageContext, StageError, StageOutput};
use mirador_schema::catalog::mirror_exposure as exposure;
use mirador_schema::{DatasetId, col, datasets};
use polars::prelude::{DataFrame, DataType};

use crate::{Engine, EngineError};

/// The `revenue_gap` stage with its per-declaration work on the engine: the cells (one per HS6 ×
/// partner × period, a few thousand) and their sums are computed here, as locally; the map over
/// every declaration item, the sums per cell key and the join with the cells that make
/// `mirror_exposure` run on the cluster ([`Engine::mirror_exposure`]), reading the run's own
/// `declarations` file. The rows come back unordered and are put in the declarations' order, so
/// the dataset has the local stage's key columns, types and blocks.
pub struct RevenueGapOnEngine {
    address: String,
}

impl RevenueGapOnEngine {
    /// The stage on the cluster whose scheduler is at `address` (`ballista://HOST:PORT`).
    pub fn new(address: &str) -> Self {
        RevenueGapOnEngine { address: address.to_owned() }
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
        let params = mirador_gap::stage_params(ctx)?;
        let declarations = ctx.input(datasets::DECLARATIONS)?;
        let file = ctx.input_file(datasets::DECLARATIONS).ok_or_else(|| {
            StageError::Data("the engine reads the run's `declarations` file, and this run has none (a stage run outside a pipeline?)".into())
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
                "on the engine at {}: {e} (is the cluster up? `mirador cluster up` starts one; without --engine the stage runs here)",
                self.address
            ))
        };
        let engine = Engine::connect(&self.address).map_err(on_engine)?;
        let out = scratch.path().join(exposure::ID);
        let rows = engine.write_mirror_exposure(file, &cells, params.period, &out).map_err(on_engine)?;
        let columns = in_declarations_order(declarations, &out.join("part-00000.parquet"), rows)?;
        mirador_gap::write_exposure_columns(declarations, &columns, |block: DataFrame| stream.write(&block))?;
        Ok(mirador_gap::stage_output(r, stream.finish()?).with_metric("engine", engine.location()))
    }
}

/// The computed columns of the engine's `mirror_exposure` result (the parquet file `part`, of
/// `rows` rows), each row put at its declaration item's place in `declarations` (by
/// `declaration_id` and `item_no`, unique there). Fails unless every item has exactly one row.
fn in_declarations_order(declarations: &DataFrame, part: &Path, rows: u64) -> Result<ExposureColumns, StageError> {
    let n = declarations.height();
    if rows != n as u64 {
        return Err(StageError::Data(format!("the engine's mirror_exposure has {rows} rows for {n} declaration items")));
    }
    let ids = declarations.column(col::DECLARATION_ID)?.cast(&DataType::String)?;
    let items = declarations.column(col::ITEM_NO)?.cast(&DataType::Int32)?;
    let mut place: HashMap<(Option<&str>, Option<i32>), u32> = HashMap::with_capacity(n);
    for (i, key) in ids.str()?.iter().zip(items.i32()?.iter()).enumerate() {
        if place.insert(key, i as u32).is_some() {
            return Err(StageError::Data(format!("declarations: item {key:?} appears twice; the engine's rows could not be placed")));
        }
    }
    let mut out = ExposureColumns {
        period_codes: vec![u32::MAX; n],
        periods: Vec::new(),
        gap_ratio: vec![None; n],
        cell_lost_duty_usd: vec![0.0; n],
        duty_share_usd: vec![0.0; n],
    };
    let mut period_codes: HashMap<String, u32> = HashMap::new();
    let mut placed = vec![false; n];
    let data = |e: &dyn std::fmt::Display| StageError::Data(format!("reading the engine's mirror_exposure ({}): {e}", part.display()));
    let file = std::fs::File::open(part).map_err(|e| data(&e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).and_then(|b| b.build()).map_err(|e| data(&e))?;
    for batch in reader {
        let batch = batch.map_err(|e| data(&e))?;
        let column = |name: &str, to: &ArrowType| {
            let c = batch.column_by_name(name).ok_or_else(|| data(&format!("no column `{name}`")))?;
            cast(c, to).map_err(|e| data(&e))
        };
        let id = column(col::DECLARATION_ID, &ArrowType::Utf8)?;
        let item = column(col::ITEM_NO, &ArrowType::Int32)?;
        let period = column(exposure::GAP_PERIOD, &ArrowType::Utf8)?;
        let ratio = column(exposure::MIRROR_GAP_RATIO, &ArrowType::Float64)?;
        let lost = column(exposure::CELL_LOST_DUTY_USD, &ArrowType::Float64)?;
        let share = column(exposure::MIRROR_DUTY_SHARE_USD, &ArrowType::Float64)?;
        let (id, item, period) = (id.as_string::<i32>(), item.as_primitive::<Int32Type>(), period.as_string::<i32>());
        let (ratio, lost, share) = (ratio.as_primitive::<Float64Type>(), lost.as_primitive::<Float64Type>(), share.as_primitive::<Float64Type>());
        for r in 0..batch.num_rows() {
            let key = (id.is_valid(r).then(|| id.value(r)), item.is_valid(r).then(|| item.value(r)));
            let Some(&i) = place.get(&key) else {
                return Err(data(&format!("item {key:?} is not among the declarations")));
            };
            let i = i as usize;
            if std::mem::replace(&mut placed[i], true) {
                return Err(data(&format!("item {key:?} came back twice")));
            }
            if period.is_valid(r) {
                let text = period.value(r);
                let next = period_codes.len() as u32;
                out.period_codes[i] = match period_codes.get(text) {
                    Some(&code) => code,
                    None => {
                        period_codes.insert(text.to_owned(), next);
                        out.periods.push(text.to_owned());
                        next
                    }
                };
            }
            out.gap_ratio[i] = ratio.is_valid(r).then(|| ratio.value(r));
            out.cell_lost_duty_usd[i] = lost.value(r);
            out.duty_share_usd[i] = share.value(r);
        }
    }
    Ok(out)
}
