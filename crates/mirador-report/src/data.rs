//! Plain data the report is drawn from.
//!
//! These structs carry no behaviour: an adapter upstream fills them from the pipeline's
//! datasets, and [`crate::render`] turns them into charts and HTML. Every vector may be empty
//! and every `Option` may be `None` when the stage that produces it did not run; the report
//! then says so instead of drawing an empty chart.

use serde::Serialize;

/// Everything one report shows, for one pipeline run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReportData {
    /// Page title, e.g. "Mirador nightly run".
    pub title: String,
    /// Identifier of the pipeline run the figures come from.
    pub run_id: String,
    /// The run's warnings (its manifest's), shown above everything else.
    pub warnings: Vec<String>,
    /// Label → already formatted value, shown as a table at the top of the page.
    pub key_figures: Vec<(String, String)>,
    /// Row accounting per input dataset.
    pub quality: Vec<QualityRow>,
    /// Lost duty per HS chapter, largest first; the report shows the first 15.
    pub gap_by_chapter: Vec<GapBar>,
    /// Lost duty per partner country, largest first; the report shows the first 15.
    pub gap_by_partner: Vec<GapBar>,
    /// Total lost duty with its bounds.
    pub gap_total: Option<GapTotal>,
    /// Declared vs mirror value per HS6 × partner cell.
    pub mirror_cells: Vec<MirrorPoint>,
    /// Unit-price clusters for the HS codes with the largest gaps; the report shows up to 4.
    pub price_panels: Vec<PricePanel>,
    /// Gain-chart data of the fraud model.
    pub gain: Option<Gain>,
    /// Precision against revenue of each ranking and of the inspection list.
    pub frontier: Option<Frontier>,
    /// Feature label → share of the model's total split gain (0..1), largest first.
    pub importance: Vec<(String, f64)>,
    /// Readable rules extracted from the model.
    pub rules: Vec<RuleRow>,
    /// Importers ranked for post-clearance audit; the report shows the first 25.
    pub auditees: Vec<AuditeeRow>,
    /// The fraud model beside its challengers on the test months (empty: no challenger ran).
    pub challengers: Vec<crate::ChallengerRow>,
    /// The auditee list measured against a known truth (when the run had one): per policy, the
    /// share of all lost duty held by its top importers.
    pub auditee_capture: Vec<AuditeeCapture>,
    /// The fraud map (BACUDA series 10): lost duty and fraud rate per origin country, and the
    /// fraud scores against the unit-price ratio.
    pub fraud_map: Option<FraudMap>,
    /// Release times (BACUDA series 7): the `release_time` stage's figures.
    pub release: Option<ReleaseFigures>,
    /// Revenue forecasts (BACUDA series 2): the alarmed series and the alarms.
    pub forecast: Option<crate::forecast::ForecastFigures>,
    /// The inspection backtest of the pipeline (`mirador backtest`), when the report stage is
    /// pointed at one.
    pub backtest: Option<crate::BacktestFigures>,
}

/// The fraud map's figures ([`ReportData::fraud_map`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FraudMap {
    /// One row per origin country with any figure.
    pub countries: Vec<CountryFigures>,
    /// Inspected declarations: fraud score against unit-price ratio (a deterministic sample).
    pub scores: Vec<ScorePoint>,
}

/// One origin country of the fraud map.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CountryFigures {
    /// ISO 3166 alpha-2.
    pub iso2: String,
    /// Lost duty from the mirror gaps (`gap_by_partner`), USD.
    pub mirror_lost_duty_usd: f64,
    /// The fraud model's expected duty at risk of its declarations, USD.
    pub model_expected_duty_usd: f64,
    /// Inspected declaration items (with a known outcome).
    pub inspected: u32,
    /// Of them, found fraudulent.
    pub frauds: u32,
}

impl CountryFigures {
    /// Lost duty: the mirror gap plus the model's expected duty.
    pub fn lost_duty_usd(&self) -> f64 {
        self.mirror_lost_duty_usd + self.model_expected_duty_usd
    }

    /// Fraud rate among inspected declarations; `None` when none was inspected.
    pub fn fraud_rate(&self) -> Option<f64> {
        (self.inspected > 0).then(|| f64::from(self.frauds) / f64::from(self.inspected))
    }
}

/// One inspected declaration of the fraud map's second view.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ScorePoint {
    /// Declared unit price over the median unit price of its HS6.
    pub price_ratio: f64,
    /// Fraud probability of the model.
    pub fraud_probability: f64,
    /// Found fraudulent on inspection.
    pub fraud: bool,
}

/// The release-time figures ([`ReportData::release`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReleaseFigures {
    /// Offices and lanes against the service level: (dimension, group, declarations, median
    /// hours, p90 hours, breach), worst first within each dimension.
    pub groups: Vec<ReleaseGroup>,
    /// Median and p90 total hours the service level asks for.
    pub service_level_hours: (f64, f64),
    /// Per group (`all`, offices, lanes): mean hours of each step (arrival to lodgement,
    /// lodgement to payment, payment to release).
    pub steps: Vec<(String, [f64; 3])>,
    /// The manifest note when the stage was skipped.
    pub skipped: Option<String>,
}

/// One office or lane of [`ReleaseFigures`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReleaseGroup {
    /// `office` or `lane`.
    pub dimension: String,
    /// Office or lane.
    pub group: String,
    /// Measured items.
    pub declarations: u32,
    /// Median total hours.
    pub median_hours: f64,
    /// p90 total hours.
    pub p90_hours: f64,
    /// Breaches the service level.
    pub breach: bool,
}

/// One order of importers measured against the truth ([`ReportData::auditee_capture`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditeeCapture {
    /// `list`, `oracle`, `duty_paid`, `declared_value` or `random`.
    pub policy: String,
    /// (top % of importers, share of all lost duty they hold), in increasing top %.
    pub shares: Vec<(f64, f64)>,
}

/// Row accounting of one input dataset after validation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QualityRow {
    /// Dataset name, e.g. "declarations".
    pub dataset: String,
    /// Rows read.
    pub rows_in: u64,
    /// Rows that passed every validation rule.
    pub accepted: u64,
    /// Quarantined rows per validation rule that rejected them.
    pub quarantined_by_reason: Vec<(String, u64)>,
}

impl QualityRow {
    /// Rows quarantined for any reason.
    pub fn quarantined(&self) -> u64 {
        self.quarantined_by_reason.iter().map(|(_, n)| n).sum()
    }
}

/// Lost duty of one group (an HS chapter such as "85", or a partner such as "CN").
#[derive(Debug, Clone, Default, Serialize)]
pub struct GapBar {
    /// Group label.
    pub label: String,
    /// Central estimate of lost duty, USD.
    pub lost_duty_usd: f64,
    /// Lower bound, USD.
    pub low_usd: f64,
    /// Upper bound, USD.
    pub high_usd: f64,
}

/// Total lost duty over all cells.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GapTotal {
    /// Central estimate, USD.
    pub lost_duty_usd: f64,
    /// Lower bound, USD.
    pub low_usd: f64,
    /// Upper bound, USD.
    pub high_usd: f64,
    /// How partner FOB exports were brought to a CIF basis, in words.
    pub cif_fob_method: String,
}

/// One HS6 × partner cell of the mirror comparison.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MirrorPoint {
    /// Cell label, e.g. "HS 851712 · CN".
    pub label: String,
    /// Imports declared at the border, USD.
    pub declared_usd: f64,
    /// Exports reported by the partner, brought to CIF, USD.
    pub mirror_cif_usd: f64,
    /// Duty lost on the difference, USD.
    pub lost_duty_usd: f64,
}

/// Unit prices of one HS code and the clusters found in them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PricePanel {
    /// HS code, e.g. "851712".
    pub hs: String,
    /// Short description of the HS code.
    pub description: String,
    /// One point per declaration line.
    pub prices: Vec<PricePoint>,
    /// Cluster centroids, USD/kg; index = cluster id.
    pub centroids_usd_per_kg: Vec<f64>,
    /// External reference price, USD/kg.
    pub reference_usd_per_kg: Option<f64>,
}

/// Unit price of one declaration line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PricePoint {
    /// Declared value over net mass, USD/kg.
    pub unit_price_usd_per_kg: f64,
    /// Cluster id (index into [`PricePanel::centroids_usd_per_kg`]).
    pub cluster: u32,
    /// Whether the line was flagged as suspiciously cheap.
    pub flagged: bool,
}

/// Gain-chart data of the fraud model, evaluated on one split.
///
/// All curves are indexed like `n_pct`; a curve may be empty when it was not computed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Gain {
    /// Evaluation split, e.g. "test".
    pub split: String,
    /// ROC AUC on that split.
    pub auc: Option<f64>,
    /// Share of declarations inspected, percent (1..20).
    pub n_pct: Vec<f64>,
    /// Precision among the top n % ranked by fraud probability (0..1).
    pub precision: Vec<f64>,
    /// Share of all frauds found in the top n % ranked by fraud probability (0..1).
    pub recall: Vec<f64>,
    /// Share of all lost revenue found in the top n % ranked by fraud probability (0..1).
    pub revenue: Vec<f64>,
    /// Share of all lost revenue found in the top n % ranked by probability × duty (0..1).
    pub revenue_expected_duty: Vec<f64>,
    /// Fraud rate of the split (0..1).
    pub base_rate: f64,
    /// 90 % bootstrap intervals (low, high) of `precision`, `recall` and `revenue`, indexed like
    /// `n_pct`; empty or `None` where they were not computed.
    pub intervals: Vec<Option<GainIntervals>>,
    /// 90 % bootstrap interval of the AUC.
    pub auc_interval: Option<[f64; 2]>,
    /// The fewest fraudulent declarations of the split that hold half its fraudulent duty.
    pub frauds_holding_half_duty: Option<u32>,
}

/// Bootstrap intervals of one row of the gain table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GainIntervals {
    /// Of precision@n%.
    pub precision: [f64; 2],
    /// Of recall@n%.
    pub recall: [f64; 2],
    /// Of revenue@n%.
    pub revenue: [f64; 2],
}

/// A readable rule extracted from the model.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleRow {
    /// The rule, e.g. "unit price < 0.4 × HS6 median AND origin = XX".
    pub rule: String,
    /// Training declarations matching the rule.
    pub support_train: u32,
    /// Fraud rate among them (0..1).
    pub fraud_rate_train: f64,
    /// Fraud rate among matching test declarations (0..1).
    pub fraud_rate_test: Option<f64>,
}

/// One importer of the ranked audit list.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditeeRow {
    /// Rank, 1 = audit first.
    pub rank: u32,
    /// Importer identifier.
    pub importer_id: String,
    /// Duty at risk, USD.
    pub revenue_at_risk_usd: f64,
    /// Declarations lodged in the period.
    pub declarations: u32,
    /// Declarations flagged by the fraud model.
    pub flagged_by_model: u32,
    /// Declarations flagged by the unit-price clustering.
    pub flagged_by_kmeans: u32,
    /// Most frequent HS4 headings, formatted.
    pub top_hs4: String,
    /// Most frequent origins, formatted.
    pub top_origins: String,
    /// Why the importer ranks where it does, in words.
    pub reason: String,
}

/// The precision–revenue frontier on one split: each ranking's and the inspection list's
/// figures over n % inspected, and the list at its configured budget.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Frontier {
    /// Split the figures come from, e.g. "test".
    pub split: String,
    /// One curve per ranking or list, in the order drawn.
    pub curves: Vec<FrontierCurve>,
    /// The inspection list at its configured budget.
    pub chosen: Option<FrontierPoint>,
    /// How the inspection list was made, in words.
    pub policy: String,
}

/// One ranking's (or the inspection list's) figures over n %.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FrontierCurve {
    /// `probability`, `expected_duty`, `selection`, or another ranking of `fraud_evaluation`.
    pub ranking: String,
    /// By n %, ascending.
    pub points: Vec<FrontierPoint>,
}

/// Figures at one n %.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FrontierPoint {
    /// Share of declarations inspected (%).
    pub n_pct: f64,
    /// precision@n%.
    pub precision: f64,
    /// recall@n%.
    pub recall: f64,
    /// revenue@n%.
    pub revenue: f64,
}
