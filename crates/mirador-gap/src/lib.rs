//! The `revenue_gap` stage: mirror-trade analysis and estimated lost duty (BACUDA's "Mirror
//! Data Analysis" and "Revenue GAP Analysis" in one stage).
//!
//! For the home country and each partner, HS6 code and period, the home country's declared
//! imports (CIF, from its import statistics or aggregated from accepted declarations) are set
//! against the partner's reported exports to it (FOB, turned into CIF with a factor,
//! [`factor`]). A positive gap — the partner shipped more than arrived on the books — times the
//! applicable duty rate ([`tariff`]) is the estimated lost duty, with bounds from the factor's
//! uncertainty and the reporting noise. Flags explain gaps that are not fraud: the partner does
//! not report, the flow is below materiality, the partner is a transit hub, the two sides code
//! the goods in different HS vintages.
//!
//! ## Inputs
//! - `declarations`, `mirror_flows`, `tariffs`.
//! ## Outputs (money in USD, weights in kg; column names carry the unit)
//! - `gap_by_cell`: one row per HS6 × partner × period.
//! - `gap_by_chapter`, `gap_by_partner`: the same summed per HS2 × period and partner × period.
//! - `gap_summary`: totals per period and overall (`period = "all"`), with bounds.
//! - `mirror_exposure`: per declaration item, the gap ratio of its HS6 × origin × period cell and
//!   its value share of the cell's lost duty.

mod cells;
pub mod factor;
mod frames;
pub mod tariff;

use mirador_pipeline::{Stage, StageContext, StageError, StageOutput};
use mirador_schema::catalog::gap_summary;
use mirador_schema::{DatasetId, datasets};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub use factor::{Factor, FactorMethod, FactorParams, Factors, Pair, median_ratio};
pub use frames::{EXPOSURE_BLOCK_ROWS, ExposureColumns, write_exposure_columns};
pub use tariff::{Applicable, TariffBook};

/// Where declared imports come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeclaredSource {
    /// The home country's import statistics in `mirror_flows` when there are any, else the
    /// accepted declarations.
    Auto,
    /// Always the import statistics.
    Statistics,
    /// Always the declarations, aggregated.
    Declarations,
}

/// The period of the output cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeriodGrain {
    /// Calendar year (monthly noise and timing differences between the two sides cancel).
    Year,
    /// The period the sources report.
    AsReported,
}

impl PeriodGrain {
    /// The output period a reported period (`YYYY-MM` or `YYYY`) falls in.
    pub fn of(self, period: &str) -> &str {
        match self {
            PeriodGrain::Year => period.get(..4).unwrap_or(period),
            PeriodGrain::AsReported => period,
        }
    }
}

/// Parameters of the `revenue_gap` stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct GapParams {
    /// The declaring country (ISO alpha-2), or `*` to treat every reporter of the mirror
    /// statistics as a home country (no duty then: the tariff schedule is one country's).
    pub home_country: String,
    /// Source of declared imports.
    pub declared_source: DeclaredSource,
    /// Output period.
    pub period: PeriodGrain,
    /// Flows below this (USD, larger side) are flagged and stay out of the lower bound and the
    /// top of the ranking.
    pub materiality_usd: f64,
    /// Relative reporting noise: gaps within this share of the flow are not evidence.
    pub reporting_noise: f64,
    /// Partners whose exports are often re-exports of other origins' goods.
    pub transit_hubs: Vec<String>,
    /// The HS vintage the analysis works in (e.g. `H6` for HS 2022); cells with a side reported
    /// in another vintage are flagged `hs_vintage_not_configured`. Unset: no check.
    pub hs_vintage: Option<String>,
    /// CIF/FOB factor.
    #[serde(flatten)]
    pub factor: FactorParams,
}

impl Default for GapParams {
    fn default() -> Self {
        GapParams {
            home_country: String::new(),
            declared_source: DeclaredSource::Auto,
            period: PeriodGrain::Year,
            materiality_usd: 10_000.0,
            reporting_noise: 0.02,
            transit_hubs: ["AE", "SG", "HK", "PA", "NL", "BE"].map(str::to_owned).to_vec(),
            hs_vintage: None,
            factor: FactorParams::default(),
        }
    }
}

impl GapParams {
    /// Checks every numeric parameter against its sensible range, naming the key: a factor of
    /// `inf` or `nan` would otherwise publish NaN revenue at risk.
    pub fn validate(&self) -> Result<(), String> {
        let f = &self.factor;
        let within = |key: &str, v: f64, lo: f64, hi: f64, why: &str| {
            if v.is_finite() && (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("{key} = {v} must be a finite number within [{lo}, {hi}]{why}"))
            }
        };
        within("cif-fob-factor", f.cif_fob_factor, 1.0, 2.0, " (CIF is FOB plus freight and insurance, rarely more than 30 % of it)")?;
        within("cif-fob-band", f.cif_fob_band, 0.0, 0.5, "")?;
        within("min-pair-value-usd", f.min_pair_value_usd, 0.0, 1e12, "")?;
        within("materiality-usd", self.materiality_usd, 0.0, 1e12, "")?;
        within("reporting-noise", self.reporting_noise, 0.0, 0.5, " (a share of the flow)")?;
        let [lo, hi] = f.plausible_ratio;
        if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo < 1.0 && 1.0 < hi && hi <= 100.0) {
            return Err(format!("plausible-ratio = [{lo}, {hi}] must be two finite numbers with 0 < low < 1 < high <= 100"));
        }
        if f.min_pairs == 0 {
            return Err("min-pairs = 0 must be at least 1".into());
        }
        Ok(())
    }
}

/// The result of a gap analysis.
pub struct GapResult {
    /// `gap_by_cell`.
    pub by_cell: DataFrame,
    /// `gap_by_chapter`.
    pub by_chapter: DataFrame,
    /// `gap_by_partner`.
    pub by_partner: DataFrame,
    /// `gap_summary`.
    pub summary: DataFrame,
    /// `mirror_exposure` (empty when it was written in blocks: [`analyse_in_blocks`]).
    pub exposure: DataFrame,
    /// The factors used.
    pub factors: Factors,
    /// Where declared imports came from.
    pub declared_source: &'static str,
    /// Mirror rows at HS2/HS4 that were not paired.
    pub aggregate_rows: usize,
}

/// Runs the analysis.
///
/// `params` are taken as [`GapParams::validate`] accepts them (the stage checks them first).
pub fn analyse(declarations: &DataFrame, mirror_flows: &DataFrame, tariffs: &DataFrame, params: &GapParams) -> PolarsResult<GapResult> {
    let mut exposure: Option<DataFrame> = None;
    let mut r = analyse_in_blocks(declarations, mirror_flows, tariffs, params, |block| mirador_io::stack(&mut exposure, block))?;
    r.exposure = exposure.unwrap_or_default();
    Ok(r)
}

/// [`analyse`], handing `write_exposure` the rows of `mirror_exposure` (one per declaration)
/// [`EXPOSURE_BLOCK_ROWS`] at a time, in order (at least one block, empty when there are
/// no declarations), rather than holding them whole: the result's `exposure` is empty.
pub fn analyse_in_blocks<E: From<PolarsError>>(
    declarations: &DataFrame,
    mirror_flows: &DataFrame,
    tariffs: &DataFrame,
    params: &GapParams,
    write_exposure: impl FnMut(DataFrame) -> Result<(), E>,
) -> Result<GapResult, E> {
    let book = TariffBook::from_frame(tariffs)?;
    // The declarations' cell keys are coded while the cells are computed from the two sides.
    let texts = frames::KeyTexts::of(declarations)?;
    let (cells, rows) = rayon::join(
        || -> PolarsResult<_> {
            let sides = cells::sides(&texts, declarations, mirror_flows, params)?;
            let (cells, factors) = cells::cells(&sides, &book, params);
            Ok((sides, cells, factors))
        },
        || frames::RowKeys::of(&texts, declarations, params.period),
    );
    let ((sides, cells, factors), rows) = (cells?, rows?);
    // The small per-cell frames first, then the row-level exposure (every declaration), a block
    // at a time.
    let result = cell_frames(&sides, &cells, factors)?;
    frames::exposure_in_blocks(declarations, &rows, &cells, write_exposure)?;
    Ok(result)
}

/// [`analyse`] without `mirror_exposure` (the result's `exposure` is empty): the cells and their
/// sums, for a run whose per-declaration map and join run elsewhere (on the engine,
/// [`write_exposure_columns`] making the dataset of their columns).
pub fn analyse_cells(
    declarations: &DataFrame,
    mirror_flows: &DataFrame,
    tariffs: &DataFrame,
    params: &GapParams,
) -> PolarsResult<GapResult> {
    let book = TariffBook::from_frame(tariffs)?;
    let texts = frames::KeyTexts::of(declarations)?;
    let sides = cells::sides(&texts, declarations, mirror_flows, params)?;
    let (cells, factors) = cells::cells(&sides, &book, params);
    cell_frames(&sides, &cells, factors)
}

/// The per-cell datasets of a result, its `exposure` empty.
fn cell_frames(sides: &cells::Sides, cells: &[cells::Cell], factors: Factors) -> PolarsResult<GapResult> {
    Ok(GapResult {
        by_cell: frames::by_cell(cells)?,
        by_chapter: frames::by_group(cells, |c| c.key.0[..2].to_owned(), mirador_schema::col::HS2)?,
        by_partner: frames::by_partner(cells, &factors)?,
        summary: frames::summary(cells, &factors, sides.declared_source)?,
        exposure: DataFrame::empty(),
        factors,
        declared_source: sides.declared_source,
        aggregate_rows: sides.aggregate_rows,
    })
}

/// The stage's parameters, read from `ctx` and checked: the ranges of [`GapParams::validate`],
/// and a home country that is an ISO alpha-2 code or `*`.
pub fn stage_params(ctx: &StageContext) -> Result<GapParams, StageError> {
    let stage = || ctx.stage().to_owned();
    let params: GapParams = ctx.params()?;
    params.validate().map_err(|message| StageError::Params { stage: stage(), message })?;
    let iso2 = params.home_country.len() == 2 && params.home_country.bytes().all(|b| b.is_ascii_uppercase());
    if !iso2 && params.home_country != "*" {
        return Err(StageError::Params {
            stage: stage(),
            message: format!(
                "home-country must be an ISO 3166 alpha-2 code such as \"KE\" (or \"*\" to pair every reporter's \
                 imports with its partners' exports), not `{}`",
                params.home_country
            ),
        });
    }
    Ok(params)
}

/// The stage's output of `r` and the `mirror_exposure` written as it went: the four per-cell
/// datasets and the run's metrics (cells, the declared side's source, the CIF/FOB factors, the
/// lost duty and its bounds).
pub fn stage_output(r: GapResult, exposure: mirador_pipeline::StreamedDataset) -> StageOutput {
    let total = |name: &str| -> f64 { r.summary.column(name).ok().and_then(|c| c.f64().ok().and_then(|v| v.last())).unwrap_or(0.0) };
    let out = StageOutput::new()
        .with_metric("cells", r.by_cell.height())
        .with_metric("declared_source", r.declared_source)
        .with_metric("cif_fob_method", serde_json::to_value(r.factors.method).unwrap_or_default())
        .with_metric("cif_fob_factors", serde_json::to_value(&r.factors).unwrap_or_default())
        .with_metric("lost_duty_usd", total(gap_summary::LOST_DUTY_USD))
        .with_metric("lost_duty_low_usd", total(gap_summary::LOST_DUTY_LOW_USD))
        .with_metric("lost_duty_high_usd", total(gap_summary::LOST_DUTY_HIGH_USD))
        .with_metric("unpaired_aggregate_rows", r.aggregate_rows);
    out.with_dataset(datasets::GAP_BY_CELL, r.by_cell)
        .with_dataset(datasets::GAP_BY_CHAPTER, r.by_chapter)
        .with_dataset(datasets::GAP_BY_PARTNER, r.by_partner)
        .with_dataset(datasets::GAP_SUMMARY, r.summary)
        .with_streamed(exposure)
}

/// Mirror discrepancy and estimated lost duty.
///
/// ## Inputs
/// - `declarations`, `mirror_flows`, `tariffs`.
/// ## Outputs
/// - `gap_by_cell`, `gap_by_chapter`, `gap_by_partner`, `gap_summary`, `mirror_exposure`.
pub struct RevenueGap;

impl Stage for RevenueGap {
    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        let params: GapParams = mirador_pipeline::parse_params(self.name(), params)?;
        params.validate().map_err(|message| StageError::Params { stage: self.name().into(), message })
    }

    fn name(&self) -> &'static str {
        "revenue_gap"
    }

    fn inputs(&self) -> &'static [DatasetId] {
        &[datasets::DECLARATIONS, datasets::MIRROR_FLOWS, datasets::TARIFFS]
    }

    fn outputs(&self) -> &'static [DatasetId] {
        &[datasets::GAP_BY_CELL, datasets::GAP_BY_CHAPTER, datasets::GAP_BY_PARTNER, datasets::GAP_SUMMARY, datasets::MIRROR_EXPOSURE]
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let params = stage_params(ctx)?;
        // `mirror_exposure` (a row per declaration) is written block by block as it is computed.
        let mut exposure = ctx.dataset_stream(datasets::MIRROR_EXPOSURE);
        let r = analyse_in_blocks(
            ctx.input(datasets::DECLARATIONS)?,
            ctx.input(datasets::MIRROR_FLOWS)?,
            ctx.input(datasets::TARIFFS)?,
            &params,
            |block: DataFrame| exposure.write(&block),
        )?;
        Ok(stage_output(r, exposure.finish()?))
    }
}
