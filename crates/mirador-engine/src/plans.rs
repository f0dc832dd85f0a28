//! The plans Mirador runs on the engine: its aggregations as DataFusion plans over a run's
//! parquet files, giving the datasets the local stages give (the same columns, in the same order
//! and types; floats may differ in the last bits, summed in another order).

use std::path::Path;

use datafusion::arrow::record_batch::RecordBatch;
use mirador_gap::PeriodGrain;
use mirador_schema::catalog::{gap_by_cell as cell, gap_by_chapter as chapter, mirror_exposure as exposure};
use mirador_schema::col;

use crate::functions::{GAP_YEAR, HS_CHAPTER};
use crate::{Engine, Part, Result};

impl Engine {
    /// `gap_by_chapter` from a run's `gap_by_cell` file: the cells summed per HS chapter ×
    /// period, largest lost duty first, as the `revenue_gap` stage sums them (a cell without a
    /// mirror counts its declared value as declared without mirror, and no gap).
    pub fn gap_by_chapter(&self, gap_by_cell: &Path) -> Result<Vec<RecordBatch>> {
        self.register_parquet(cell::ID, gap_by_cell)?;
        self.sql(&gap_by_chapter_sql())
    }
}

impl Engine {
    /// `mirror_exposure` from a run's `declarations` and `gap_by_cell` files: per declaration
    /// item, the gap ratio of its HS6 × origin × period cell (clamped to ±1) and its value share
    /// of the cell's lost duty, as the `revenue_gap` stage computes them, `grain` being the
    /// stage's `period`. Rows come in no particular order (their keys are `declaration_id`,
    /// `item_no`); `gap_period` is text. One home country: the cells' reporter is not a key.
    pub fn mirror_exposure(&self, declarations: &Path, gap_by_cell: &Path, grain: PeriodGrain) -> Result<Vec<RecordBatch>> {
        self.register_exposure_inputs(declarations, gap_by_cell)?;
        self.sql(&mirror_exposure_sql(grain))
    }

    /// [`Engine::mirror_exposure`] written as parquet into the new directory `out`
    /// ([`Engine::write_parquet`]). Returns the rows written.
    pub fn write_mirror_exposure(&self, declarations: &Path, gap_by_cell: &Path, grain: PeriodGrain, out: &Path) -> Result<u64> {
        self.register_exposure_inputs(declarations, gap_by_cell)?;
        self.write_parquet(&mirror_exposure_sql(grain), out)
    }

    /// [`Engine::mirror_exposure`]'s keys (`declaration_id`, `item_no`) and computed columns
    /// (`gap_period` and after), without the declarations' other columns, handed to `take` as
    /// they stream in ([`Engine::stream`]). Returns the rows handed.
    pub fn stream_mirror_exposure(
        &self,
        declarations: &Path,
        gap_by_cell: &Path,
        grain: PeriodGrain,
        take: impl FnMut(Part<'_>) -> Result<()>,
    ) -> Result<u64> {
        self.register_exposure_inputs(declarations, gap_by_cell)?;
        let columns = [
            col::DECLARATION_ID,
            col::ITEM_NO,
            exposure::GAP_PERIOD,
            exposure::MIRROR_GAP_RATIO,
            exposure::CELL_LOST_DUTY_USD,
            exposure::MIRROR_DUTY_SHARE_USD,
        ];
        self.stream(&format!("SELECT {} FROM ({})", columns.join(", "), mirror_exposure_sql(grain)), take)
    }

    fn register_exposure_inputs(&self, declarations: &Path, gap_by_cell: &Path) -> Result<()> {
        self.register_parquet("declarations", declarations)?;
        self.register_parquet(cell::ID, gap_by_cell)
    }
}

/// The query of [`Engine::mirror_exposure`], over tables `declarations` and `gap_by_cell`: the
/// rows' keys (a missing HS6 or origin is the empty text, as in the stage), the positive value
/// of each key summed, and the cells joined by HS6, partner and period.
fn mirror_exposure_sql(grain: PeriodGrain) -> String {
    let period = match grain {
        PeriodGrain::Year => format!("{GAP_YEAR}({})", col::PERIOD),
        PeriodGrain::AsReported => col::PERIOD.to_owned(),
    };
    let ratio = cell::GAP_SHARE_OF_MIRROR;
    format!(
        "WITH rows AS (
            SELECT {id}, {item}, {importer}, {hs6}, {origin},
                coalesce({hs6}, '') AS key_hs6, coalesce({origin}, '') AS key_origin, {period} AS key_period,
                greatest(coalesce({value}, 0.0), 0.0) AS positive_value
            FROM declarations),
        keys AS (
            SELECT key_hs6, key_origin, key_period, sum(positive_value) AS key_value FROM rows GROUP BY 1, 2, 3),
        cells AS (
            SELECT {hs6} AS cell_hs6, {partner} AS cell_partner, {cell_period} AS cell_period, {cell_duty} AS cell_duty,
                CASE WHEN {ratio} IS NULL THEN NULL ELSE greatest(least({ratio}, 1.0), -1.0) END AS cell_ratio
            FROM {cells})
        SELECT {id}, {item}, {importer}, {hs6}, {origin}, rows.key_period AS {gap_period},
            cell_ratio AS {gap_ratio}, coalesce(cell_duty, 0.0) AS {cell_lost},
            CASE WHEN key_value > 0.0 THEN positive_value / key_value * coalesce(cell_duty, 0.0) ELSE 0.0 END AS {share}
        FROM keys
        JOIN rows USING (key_hs6, key_origin, key_period)
        LEFT JOIN cells ON rows.key_hs6 = cell_hs6 AND rows.key_origin = cell_partner AND rows.key_period = cell_period",
        id = col::DECLARATION_ID,
        item = col::ITEM_NO,
        importer = col::IMPORTER_ID,
        hs6 = col::HS6,
        origin = col::ORIGIN_COUNTRY,
        value = col::VALUE_USD,
        partner = col::PARTNER,
        cell_period = col::PERIOD,
        cell_duty = cell::LOST_DUTY_USD,
        cells = cell::ID,
        gap_period = exposure::GAP_PERIOD,
        gap_ratio = exposure::MIRROR_GAP_RATIO,
        cell_lost = exposure::CELL_LOST_DUTY_USD,
        share = exposure::MIRROR_DUTY_SHARE_USD,
    )
}

/// The query of [`Engine::gap_by_chapter`], over table `gap_by_cell`.
fn gap_by_chapter_sql() -> String {
    let gap = cell::VALUE_GAP_USD;
    let mirrored = |x: &str| format!("CASE WHEN {gap} IS NULL THEN 0.0 ELSE {x} END");
    let sums = [
        (format!("sum({})", cell::DECLARED_VALUE_USD), chapter::DECLARED_VALUE_USD),
        (format!("sum({})", mirrored(&format!("coalesce({}, 0.0)", cell::MIRROR_CIF_USD))), chapter::MIRROR_CIF_USD),
        (format!("sum({})", mirrored(gap)), chapter::VALUE_GAP_USD),
        (format!("sum({})", mirrored(&format!("greatest({gap}, 0.0)"))), chapter::POSITIVE_GAP_USD),
        (format!("sum({})", cell::LOST_DUTY_USD), chapter::LOST_DUTY_USD),
        (format!("sum({})", cell::LOST_DUTY_LOW_USD), chapter::LOST_DUTY_LOW_USD),
        (format!("sum({})", cell::LOST_DUTY_HIGH_USD), chapter::LOST_DUTY_HIGH_USD),
        (
            format!("sum(CASE WHEN {gap} IS NULL THEN {} ELSE 0.0 END)", cell::DECLARED_VALUE_USD),
            chapter::DECLARED_VALUE_WITHOUT_MIRROR_USD,
        ),
        ("CAST(count(*) AS INT UNSIGNED)".to_owned(), chapter::CELLS),
        (format!("CAST(sum(CASE WHEN {gap} > 0.0 THEN 1 ELSE 0 END) AS INT UNSIGNED)"), chapter::CELLS_WITH_POSITIVE_GAP),
    ];
    let columns: Vec<String> = sums.iter().map(|(expr, name)| format!("{expr} AS {name}")).collect();
    format!(
        "SELECT {HS_CHAPTER}({hs6}) AS {hs2}, {period}, {columns} FROM {table} GROUP BY 1, 2 \
         ORDER BY {lost} DESC, {hs2}, {period}",
        hs6 = col::HS6,
        hs2 = col::HS2,
        period = col::PERIOD,
        columns = columns.join(", "),
        table = cell::ID,
        lost = chapter::LOST_DUTY_USD,
    )
}
