//! Stage `revenue_forecast`: monthly duty and declared value forecast with prediction intervals,
//! and alarms where the duty falls below them or the declared value moves against the mirror
//! flows (BACUDA series 2).
//!
//! - **Series.** The duty collected and the declared value per month, in total, per HS chapter
//!   and per office. Months without declarations count zero.
//! - **Model.** With at least two years of history, MSTL (seasonal-trend decomposition with
//!   LOESS, a yearly season) with an automatic ETS model of the deseasonalised series
//!   (`augurs-mstl`, `augurs-ets`); with less, the automatic non-seasonal ETS alone (the manifest
//!   says so). Series that are positive throughout are modelled on the log scale, so that the
//!   season and the interval are proportional to the level.
//! - **Alarms.** The last `backtest-origins` months are checked against the forecasts made before
//!   them (fitted on the months before): a month is alarmed when it and the month before both fell
//!   below the lower bounds of the `level` prediction intervals of the forecast made before the two
//!   — `duty_below_forecast` for the duty collected (possible leakage, a tariff change or a
//!   reclassification wave), `value_against_mirror` for a chapter's declared value against what its
//!   ratio to the partners' exports of the same goods predicted (the log ratio forecast by ETS),
//!   i.e. declared value moving against the mirror flows. One low month alone is not alarmed: trade
//!   is lumpy, and a single month far below its forecast is noise far more often than a leak.
//! - **Accuracy.** The same origins are a rolling-origin backtest: the model's forecasts up to
//!   `horizon` months ahead scored by MASE beside the seasonal-naive forecast's (same months, same
//!   scale: the in-sample mean absolute seasonal difference before the first origin).
//!
//! A history shorter than `min-history` months is not an error: the stage writes its outputs
//! empty and says why in the manifest (metric `skipped`).
//!
//! ## Inputs
//! - `declarations`: `period`, `office_id`, `hs6`, `value_usd`, `duty_usd`.
//! - `mirror_flows`: `reporter`, `partner`, `period`, `hs_code`, `flow`, `trade_value_usd` (the
//!   partners' exports to `home-country`).
//! ## Outputs
//! - `forecast_series`, `forecast_alarms`, `forecast_accuracy` (see the catalog).

pub mod truth;

use std::collections::BTreeMap;

use augurs_core::{Fit, Forecast, Predict};
use augurs_ets::AutoETS;
use augurs_mstl::MSTLModel;
use mirador_pipeline::{Stage, StageContext, StageError, StageOutput, param_in_range, parse_params};
use mirador_schema::catalog::{forecast_accuracy, forecast_alarms, forecast_series};
use mirador_schema::text::Text;
use mirador_schema::{DatasetId, col, country, datasets};
use polars::prelude::*;
use rayon::prelude::*;
use serde::Deserialize;

/// Alarm kind: the duty collected fell below its prediction interval.
pub const DUTY_BELOW_FORECAST: &str = "duty_below_forecast";
/// Alarm kind: the declared value fell against the mirror exports.
pub const VALUE_AGAINST_MIRROR: &str = "value_against_mirror";

/// Parameters of the `revenue_forecast` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ForecastParams {
    /// Coverage of the prediction intervals (alarms fire below the lower bound).
    pub level: f64,
    /// Months forecast after the history, and the furthest month ahead the backtest scores.
    pub horizon: usize,
    /// Months in a season.
    pub season: usize,
    /// Fewest months of history to forecast at all (and to fit before the first checked month);
    /// at least 9, what the automatic ETS search needs.
    pub min_history: usize,
    /// The last months checked for alarms, each the origin of a backtest forecast.
    pub backtest_origins: usize,
    /// A chapter or office whose duty is below this share of the total is still forecast but not
    /// alarmed (its months are too few and lumpy to tell a leak from noise).
    pub min_share: f64,
    /// The declaring country (ISO alpha-2): the mirror exports are the partners' exports to it.
    /// Empty: every partner's exports in the mirror flows (a file of flows to one country).
    pub home_country: String,
}

impl Default for ForecastParams {
    fn default() -> Self {
        ForecastParams {
            level: 0.99,
            horizon: 3,
            season: 12,
            min_history: 9,
            backtest_origins: 12,
            min_share: 0.005,
            home_country: String::new(),
        }
    }
}

impl ForecastParams {
    fn validate(&self, stage: &str) -> Result<(), StageError> {
        param_in_range(stage, "level", self.level, 0.5, 0.9999)?;
        param_in_range(stage, "horizon", self.horizon, 1, 36)?;
        param_in_range(stage, "season", self.season, 2, 53)?;
        // The automatic ETS search needs more than 8 months (its trended models have 4 parameters).
        param_in_range(stage, "min-history", self.min_history, 9, 240)?;
        param_in_range(stage, "backtest-origins", self.backtest_origins, 1, 240)?;
        param_in_range(stage, "min-share", self.min_share, 0.0, 0.5)?;
        if !self.home_country.is_empty() && country::by_iso2(&self.home_country).is_none() {
            return Err(StageError::Params {
                stage: stage.to_owned(),
                message: format!("home-country = \"{}\" is not an ISO 3166 alpha-2 code such as \"KE\"", self.home_country),
            });
        }
        Ok(())
    }

    /// Whether `months` of history are enough for the seasonal model.
    pub fn seasonal(&self, months: usize) -> bool {
        months >= 2 * self.season
    }
}

/// One monthly series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// `total`, `hs_chapter` or `office`.
    pub dimension: &'static str,
    /// The chapter or office; `all` for the total.
    pub group: String,
    /// `duty` or `declared_value`.
    pub measure: &'static str,
    /// One value per month of the history, USD.
    pub values: Vec<f64>,
}

/// `YYYY-MM` as a month count, or `None`.
fn month_index(p: &str) -> Option<i32> {
    let (y, m) = p.split_once('-')?;
    let (y, m) = (y.parse::<i32>().ok()?, m.parse::<i32>().ok()?);
    (p.len() == 7 && (1..=12).contains(&m)).then_some(y * 12 + m - 1)
}

fn month_name(i: i32) -> String {
    format!("{:04}-{:02}", i.div_euclid(12), i.rem_euclid(12) + 1)
}

/// The months of the declarations, first to last without gaps, and the duty and declared-value
/// series in total, per HS chapter and per office. Rows without a readable period are not counted.
pub fn monthly_series(declarations: &DataFrame) -> PolarsResult<(Vec<String>, Vec<Series>)> {
    let period = Text::column(declarations, col::PERIOD)?;
    let months: Vec<Option<i32>> = period.iter().map(|p| p.and_then(month_index)).collect();
    let (Some(first), Some(last)) = (months.iter().flatten().min().copied(), months.iter().flatten().max().copied()) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let n = (last - first + 1) as usize;
    let office = Text::column(declarations, col::OFFICE_ID)?;
    let hs6 = Text::column(declarations, col::HS6)?;
    let num = |c: &str| -> PolarsResult<Vec<f64>> {
        Ok(declarations.column(c)?.cast(&DataType::Float64)?.f64()?.iter().map(|v| v.filter(|v| v.is_finite()).unwrap_or(0.0)).collect())
    };
    let (value, duty) = (num(col::VALUE_USD)?, num(col::DUTY_USD)?);
    // (dimension, group) -> (duty, value) per month.
    let mut sums: BTreeMap<(&'static str, String), (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    let (offices, chapters): (Vec<Option<&str>>, Vec<Option<&str>>) = (office.iter().collect(), hs6.iter().collect());
    for i in 0..declarations.height() {
        let Some(m) = months[i] else { continue };
        let m = (m - first) as usize;
        let mut add = |dim: &'static str, group: &str| {
            let e = sums.entry((dim, group.to_owned())).or_insert_with(|| (vec![0.0; n], vec![0.0; n]));
            e.0[m] += duty[i];
            e.1[m] += value[i];
        };
        add("total", "all");
        if let Some(c) = chapters[i].and_then(|h| h.get(..2)) {
            add("hs_chapter", c);
        }
        if let Some(o) = offices[i].filter(|o| !o.is_empty()) {
            add("office", o);
        }
    }
    let order = |d: &str| ["total", "hs_chapter", "office"].iter().position(|x| *x == d).unwrap_or(3);
    let mut keys: Vec<(&'static str, String)> = sums.keys().cloned().collect();
    keys.sort_by(|a, b| order(a.0).cmp(&order(b.0)).then(a.1.cmp(&b.1)));
    let mut series = Vec::new();
    for key in keys {
        let (d, v) = sums.remove(&key).unwrap_or_default();
        series.push(Series { dimension: key.0, group: key.1.clone(), measure: "duty", values: d });
        series.push(Series { dimension: key.0, group: key.1, measure: "declared_value", values: v });
    }
    Ok(((first..=last).map(month_name).collect(), series))
}

/// The partners' exports to `home` (every partner when empty) per HS chapter over `months`: mirror
/// flows with flow `export`, world and not-elsewhere-specified areas left out.
pub fn mirror_exports(mirror: &DataFrame, months: &[String], home: &str) -> PolarsResult<BTreeMap<String, Vec<f64>>> {
    let index: BTreeMap<&str, usize> = months.iter().enumerate().map(|(i, m)| (m.as_str(), i)).collect();
    let (period, hs, flow) = (Text::column(mirror, col::PERIOD)?, Text::column(mirror, col::HS_CODE)?, Text::column(mirror, col::FLOW)?);
    let (reporter, partner) = (Text::column(mirror, col::REPORTER)?, Text::column(mirror, col::PARTNER)?);
    let (reporter, partner): (Vec<Option<&str>>, Vec<Option<&str>>) = (reporter.iter().collect(), partner.iter().collect());
    let is_area = |c: Option<&str>| c.is_none_or(|c| c == country::WORLD || c == country::AREAS_NES);
    let value = mirror.column(col::TRADE_VALUE_USD)?.cast(&DataType::Float64)?;
    let value = value.f64()?;
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (i, (((p, h), f), v)) in period.iter().zip(hs.iter()).zip(flow.iter()).zip(value.iter()).enumerate() {
        if is_area(reporter[i]) || is_area(partner[i]) || (!home.is_empty() && partner[i] != Some(home)) {
            continue;
        }
        let (Some(p), Some(h), Some("export"), Some(v)) = (p, h, f, v) else { continue };
        let (Some(&m), Some(c)) = (index.get(p), h.get(..2)) else { continue };
        if v.is_finite() {
            out.entry(c.to_owned()).or_insert_with(|| vec![0.0; months.len()])[m] += v;
        }
    }
    Ok(out)
}

/// A forecast: point and interval per month ahead.
#[derive(Debug, Clone, PartialEq)]
pub struct Ahead {
    /// Point forecasts.
    pub point: Vec<f64>,
    /// Lower bounds.
    pub lower: Vec<f64>,
    /// Upper bounds.
    pub upper: Vec<f64>,
}

/// Fits the model to `y` and forecasts `horizon` months with intervals at `level`: MSTL with an
/// automatic ETS trend when `seasonal` (yearly season of `season` months), else automatic
/// non-seasonal ETS; on the log scale when every value is positive. Returns the forecast and the
/// model's name, or the library's error.
pub fn forecast(y: &[f64], horizon: usize, level: f64, season: usize, seasonal: bool) -> Result<(Ahead, String), String> {
    let log = y.iter().all(|v| *v > 0.0);
    let z: Vec<f64> = if log { y.iter().map(|v| v.ln()).collect() } else { y.to_vec() };
    let (f, name): (Forecast, &str) = if seasonal {
        let model = MSTLModel::new(vec![season], AutoETS::non_seasonal().into_trend_model());
        let fit = model.fit(&z).map_err(|e| e.to_string())?;
        (fit.predict(horizon, level).map_err(|e| e.to_string())?, "MSTL+AutoETS")
    } else {
        let fit = AutoETS::non_seasonal().fit(&z).map_err(|e| e.to_string())?;
        (fit.predict(horizon, level).map_err(|e| e.to_string())?, "AutoETS")
    };
    let intervals = f.intervals.ok_or("the model gave no prediction interval")?;
    let back = |v: &[f64]| -> Vec<f64> { if log { v.iter().map(|x| x.exp()).collect() } else { v.to_vec() } };
    let ahead = Ahead { point: back(&f.point), lower: back(&intervals.lower), upper: back(&intervals.upper) };
    if ahead.point.iter().chain(&ahead.lower).chain(&ahead.upper).any(|v| !v.is_finite()) {
        return Err("the model's forecast is not finite".into());
    }
    let name = if seasonal { format!("MSTL({season})+AutoETS") } else { name.to_owned() };
    Ok((ahead, if log { format!("{name} log") } else { name }))
}

/// The seasonal-naive forecast of `y[origin + k]` made at `origin`: the same month a season
/// earlier than the forecast month, within the history before `origin`.
pub fn seasonal_naive(y: &[f64], origin: usize, k: usize, season: usize) -> Option<f64> {
    let back = season * (k / season + 1);
    (origin + k).checked_sub(back).filter(|&i| i < origin).map(|i| y[i])
}

/// One series forecast: the one-month-ahead checks of the backtest origins, the backtest's
/// errors, and the forecast after the history.
#[derive(Debug, Clone, Default)]
pub struct SeriesForecast {
    /// Per month of the history: (forecast, lower, upper) made the month before, where checked.
    pub checked: Vec<Option<(f64, f64, f64)>>,
    /// Per origin: (forecast, lower, upper) of the origin's month and of the next (within the
    /// history), made before the origin; what the alarms test.
    pub ahead: Vec<Option<Vec<(f64, f64, f64)>>>,
    /// The forecast after the history.
    pub future: Option<Ahead>,
    /// The model's name.
    pub model: String,
    /// Origins backtested.
    pub origins: usize,
    /// Absolute errors of the model and of the seasonal naive (where it exists) on the same
    /// months, and their count.
    pub abs_errors: (f64, f64, usize),
    /// Whether the seasonal naive exists for every scored month.
    pub naive_complete: bool,
    /// The MASE scale: in-sample mean absolute seasonal (or, on short histories, monthly)
    /// difference before the first origin.
    pub scale: f64,
    /// Fits that failed (the month is left unchecked).
    pub failed: usize,
}

/// Forecasts one series (`y`, the history) at each backtest origin and after the history.
pub fn forecast_series_values(y: &[f64], p: &ForecastParams) -> SeriesForecast {
    let n = y.len();
    let mut out = SeriesForecast { checked: vec![None; n], ahead: vec![None; n], naive_complete: true, ..Default::default() };
    if n < p.min_history {
        return out;
    }
    let first = p.min_history.max(n.saturating_sub(p.backtest_origins));
    let lag = if first > p.season { p.season } else { 1 };
    let diffs: Vec<f64> = (lag..first).map(|t| (y[t] - y[t - lag]).abs()).collect();
    out.scale = diffs.iter().sum::<f64>() / diffs.len().max(1) as f64;
    for origin in first..n {
        match forecast(&y[..origin], p.horizon, p.level, p.season, p.seasonal(origin)) {
            Ok((a, model)) => {
                out.checked[origin] = Some((a.point[0], a.lower[0], a.upper[0]));
                out.ahead[origin] = Some((0..2.min(n - origin).min(a.point.len())).map(|k| (a.point[k], a.lower[k], a.upper[k])).collect());
                out.origins += 1;
                out.model = model;
                for k in 0..p.horizon.min(n - origin) {
                    let naive = seasonal_naive(y, origin, k, p.season);
                    out.naive_complete &= naive.is_some();
                    out.abs_errors.0 += (y[origin + k] - a.point[k]).abs();
                    out.abs_errors.1 += naive.map_or(0.0, |f| (y[origin + k] - f).abs());
                    out.abs_errors.2 += 1;
                }
            }
            Err(_) => out.failed += 1,
        }
    }
    match forecast(y, p.horizon, p.level, p.season, p.seasonal(n)) {
        Ok((a, model)) => {
            out.future = Some(a);
            out.model = model;
        }
        Err(_) => out.failed += 1,
    }
    out
}

/// One alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Alarm {
    /// Index of the series in the stage's list.
    pub series: usize,
    /// Month index in the history.
    pub month: usize,
    /// [`DUTY_BELOW_FORECAST`] or [`VALUE_AGAINST_MIRROR`].
    pub kind: &'static str,
    /// The month's value, USD.
    pub actual: f64,
    /// Its forecast, USD.
    pub forecast: f64,
    /// The interval's lower bound, USD.
    pub lower: f64,
    /// Consecutive alarmed months up to this one.
    pub run: usize,
}

/// The declared-value-against-mirror checks of one chapter: the log ratio of declared value to
/// the partners' exports forecast like a series, the declared value expected from it. Returns,
/// per origin, (expected, lower, upper) in USD of declared value for the origin's month and the
/// next (within the history), forecast before the origin.
pub fn mirror_checks(value: &[f64], mirror: &[f64], p: &ForecastParams) -> Vec<Option<Vec<(f64, f64, f64)>>> {
    let n = value.len();
    let mut out = vec![None; n];
    if value.iter().zip(mirror).any(|(v, m)| *v <= 0.0 || *m <= 0.0) || n < p.min_history {
        return out;
    }
    let ratio: Vec<f64> = value.iter().zip(mirror).map(|(v, m)| (v / m).ln()).collect();
    let first = p.min_history.max(n.saturating_sub(p.backtest_origins));
    for origin in first..n {
        // The ratio's level, not its season: both flows follow the same season.
        let months = 2.min(n - origin);
        if let Ok(fit) = AutoETS::non_seasonal().fit(&ratio[..origin])
            && let Ok(f) = fit.predict(months, p.level)
            && let Some(iv) = f.intervals
            && f.point.iter().chain(&iv.lower).chain(&iv.upper).all(|v| v.is_finite())
        {
            let at = |k: usize, r: f64| mirror[origin + k] * r.exp();
            out[origin] = Some((0..months).map(|k| (at(k, f.point[k]), at(k, iv.lower[k]), at(k, iv.upper[k]))).collect());
        }
    }
    out
}

/// The alarms of one series and kind from its per-origin checks ([`SeriesForecast::ahead`]): month
/// `t` is alarmed when it and the month before both fell below the lower bounds of the forecast
/// made before the two (a single low month is the noise of lumpy trade more often than a leak;
/// two in a row, unseen by the model, rarely are). Consecutive alarms are counted.
pub fn alarms_of(series: usize, kind: &'static str, checks: &[Option<Vec<(f64, f64, f64)>>], actual: &[f64]) -> Vec<Alarm> {
    let mut out = Vec::new();
    let mut run = 0;
    for t in 1..actual.len() {
        match checks.get(t - 1).and_then(Option::as_ref) {
            Some(c) if c.len() == 2 && actual[t - 1] < c[0].1 && actual[t] < c[1].1 => {
                run += 1;
                out.push(Alarm { series, month: t, kind, actual: actual[t], forecast: c[1].0, lower: c[1].1, run });
            }
            _ => run = 0,
        }
    }
    out
}

/// Everything the stage computes.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The history's months.
    pub months: Vec<String>,
    /// The series.
    pub series: Vec<Series>,
    /// Their forecasts, in the same order.
    pub forecasts: Vec<SeriesForecast>,
    /// The alarms, by series then month.
    pub alarms: Vec<Alarm>,
    /// Whether the seasonal model was used (history of two seasons or more).
    pub seasonal: bool,
    /// Per series: whether its months are checked for alarms (duty series of a large enough
    /// share, declared value of chapters with mirror exports).
    pub alarmable: Vec<bool>,
}

/// Runs the forecasts, the backtest and the alarms.
pub fn run_forecasts(declarations: &DataFrame, mirror: &DataFrame, p: &ForecastParams) -> PolarsResult<Outcome> {
    let (months, series) = monthly_series(declarations)?;
    let exports = mirror_exports(mirror, &months, &p.home_country)?;
    let forecasts: Vec<SeriesForecast> = series.par_iter().map(|s| forecast_series_values(&s.values, p)).collect();
    let total_duty: f64 = series.iter().find(|s| s.dimension == "total" && s.measure == "duty").map_or(0.0, |s| s.values.iter().sum());
    let share = |s: &Series| {
        let duty = series.iter().find(|x| x.dimension == s.dimension && x.group == s.group && x.measure == "duty");
        duty.map_or(0.0, |d| d.values.iter().sum::<f64>() / total_duty.max(f64::MIN_POSITIVE))
    };
    let mirror_checks: Vec<(usize, Vec<Option<Vec<(f64, f64, f64)>>>)> = series
        .par_iter()
        .enumerate()
        .filter(|(_, s)| s.dimension == "hs_chapter" && s.measure == "declared_value" && share(s) >= p.min_share)
        .filter_map(|(i, s)| exports.get(&s.group).map(|m| (i, mirror_checks(&s.values, m, p))))
        .collect();
    let mut alarms = Vec::new();
    let mut alarmable = vec![false; series.len()];
    for (i, (s, f)) in series.iter().zip(&forecasts).enumerate() {
        if s.measure == "duty" && share(s) >= p.min_share {
            alarmable[i] = true;
            alarms.extend(alarms_of(i, DUTY_BELOW_FORECAST, &f.ahead, &s.values));
        }
    }
    for (i, checks) in &mirror_checks {
        alarmable[*i] = true;
        alarms.extend(alarms_of(*i, VALUE_AGAINST_MIRROR, checks, &series[*i].values));
    }
    alarms.sort_by_key(|a| (a.series, a.kind, a.month));
    let seasonal = p.seasonal(months.len());
    Ok(Outcome { months, series, forecasts, alarms, seasonal, alarmable })
}

/// Mean MASE of the model and of the seasonal naive over the series where both are scored
/// (`None` when none is).
pub fn mean_mase(outcome: &Outcome) -> Option<(f64, f64, usize)> {
    let scored: Vec<(f64, f64)> = outcome
        .forecasts
        .iter()
        .filter(|f| f.abs_errors.2 > 0 && f.naive_complete && f.scale > 0.0)
        .map(|f| {
            let n = f.abs_errors.2 as f64;
            (f.abs_errors.0 / n / f.scale, f.abs_errors.1 / n / f.scale)
        })
        .collect();
    if scored.is_empty() {
        return None;
    }
    let k = scored.len() as f64;
    Some((scored.iter().map(|s| s.0).sum::<f64>() / k, scored.iter().map(|s| s.1).sum::<f64>() / k, scored.len()))
}

fn series_table(o: &Outcome) -> PolarsResult<DataFrame> {
    let (mut dim, mut group, mut measure, mut period, mut actual, mut fc, mut lower, mut upper, mut future, mut model) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let last = o.months.last().and_then(|m| month_index(m)).unwrap_or(0);
    for (s, f) in o.series.iter().zip(&o.forecasts) {
        let mut push = |p: String, a: Option<f64>, c: Option<(f64, f64, f64)>, fut: bool| {
            dim.push(s.dimension);
            group.push(s.group.clone());
            measure.push(s.measure);
            period.push(p);
            actual.push(a);
            fc.push(c.map(|c| c.0));
            lower.push(c.map(|c| c.1));
            upper.push(c.map(|c| c.2));
            future.push(fut);
            model.push(f.model.clone());
        };
        for (m, name) in o.months.iter().enumerate() {
            push(name.clone(), Some(s.values[m]), f.checked[m], false);
        }
        if let Some(a) = &f.future {
            for k in 0..a.point.len() {
                push(month_name(last + 1 + k as i32), None, Some((a.point[k], a.lower[k], a.upper[k])), true);
            }
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new(forecast_series::DIMENSION.into(), dim),
        Column::new(forecast_series::GROUP.into(), group),
        Column::new(forecast_series::MEASURE.into(), measure),
        Column::new(forecast_series::PERIOD.into(), period),
        Column::new(forecast_series::ACTUAL.into(), actual),
        Column::new(forecast_series::FORECAST.into(), fc),
        Column::new(forecast_series::LOWER.into(), lower),
        Column::new(forecast_series::UPPER.into(), upper),
        Column::new(forecast_series::FUTURE.into(), future),
        Column::new(forecast_series::MODEL.into(), model),
    ])
}

fn alarm_table(o: &Outcome) -> PolarsResult<DataFrame> {
    let a = &o.alarms;
    let s = |f: fn(&Series) -> String| a.iter().map(|x| f(&o.series[x.series])).collect::<Vec<_>>();
    DataFrame::new_infer_height(vec![
        Column::new(forecast_alarms::DIMENSION.into(), s(|x| x.dimension.to_owned())),
        Column::new(forecast_alarms::GROUP.into(), s(|x| x.group.clone())),
        Column::new(forecast_alarms::MEASURE.into(), s(|x| x.measure.to_owned())),
        Column::new(forecast_alarms::PERIOD.into(), a.iter().map(|x| o.months[x.month].clone()).collect::<Vec<_>>()),
        Column::new(forecast_alarms::ALARM.into(), a.iter().map(|x| x.kind).collect::<Vec<_>>()),
        Column::new(forecast_alarms::ACTUAL.into(), a.iter().map(|x| x.actual).collect::<Vec<_>>()),
        Column::new(forecast_alarms::FORECAST.into(), a.iter().map(|x| x.forecast).collect::<Vec<_>>()),
        Column::new(forecast_alarms::LOWER.into(), a.iter().map(|x| x.lower).collect::<Vec<_>>()),
        Column::new(forecast_alarms::SHORTFALL_USD.into(), a.iter().map(|x| x.forecast - x.actual).collect::<Vec<_>>()),
        Column::new(forecast_alarms::RUN_MONTHS.into(), a.iter().map(|x| x.run as i64).collect::<Vec<_>>()),
    ])
}

fn accuracy_table(o: &Outcome) -> PolarsResult<DataFrame> {
    let (mut dim, mut group, mut measure, mut model, mut origins, mut count, mut mase, mut naive, mut rel) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (s, f) in o.series.iter().zip(&o.forecasts) {
        let (e_model, e_naive, k) = f.abs_errors;
        if k == 0 || f.scale <= 0.0 {
            continue;
        }
        let m = e_model / k as f64 / f.scale;
        let nv = f.naive_complete.then(|| e_naive / k as f64 / f.scale);
        dim.push(s.dimension);
        group.push(s.group.clone());
        measure.push(s.measure);
        model.push(f.model.clone());
        origins.push(f.origins as i64);
        count.push(k as i64);
        mase.push(m);
        naive.push(nv);
        rel.push(nv.filter(|v| *v > 0.0).map(|v| m / v));
    }
    DataFrame::new_infer_height(vec![
        Column::new(forecast_accuracy::DIMENSION.into(), dim),
        Column::new(forecast_accuracy::GROUP.into(), group),
        Column::new(forecast_accuracy::MEASURE.into(), measure),
        Column::new(forecast_accuracy::MODEL.into(), model),
        Column::new(forecast_accuracy::ORIGINS.into(), origins),
        Column::new(forecast_accuracy::FORECASTS.into(), count),
        Column::new(forecast_accuracy::MASE.into(), mase),
        Column::new(forecast_accuracy::MASE_SEASONAL_NAIVE.into(), naive),
        Column::new(forecast_accuracy::RELATIVE_MASE.into(), rel),
    ])
}

/// The stage.
pub struct RevenueForecast;

const INPUTS: &[DatasetId] = &[datasets::DECLARATIONS, datasets::MIRROR_FLOWS];
const OUTPUTS: &[DatasetId] = &[datasets::FORECAST_SERIES, datasets::FORECAST_ALARMS, datasets::FORECAST_ACCURACY];

impl Stage for RevenueForecast {
    fn name(&self) -> &'static str {
        "revenue_forecast"
    }

    fn inputs(&self) -> &'static [DatasetId] {
        INPUTS
    }

    fn input_columns(&self, id: &str) -> Option<Vec<&'static str>> {
        match id {
            datasets::DECLARATIONS => Some(vec![col::PERIOD, col::OFFICE_ID, col::HS6, col::VALUE_USD, col::DUTY_USD]),
            datasets::MIRROR_FLOWS => Some(vec![col::REPORTER, col::PARTNER, col::PERIOD, col::HS_CODE, col::FLOW, col::TRADE_VALUE_USD]),
            _ => None,
        }
    }

    fn outputs(&self) -> &'static [DatasetId] {
        OUTPUTS
    }

    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        parse_params::<ForecastParams>(self.name(), params)?.validate(self.name())
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let p: ForecastParams = ctx.params()?;
        p.validate(self.name())?;
        let declarations = ctx.input(datasets::DECLARATIONS)?;
        let mirror = ctx.input(datasets::MIRROR_FLOWS)?;
        let months = monthly_series(declarations)?.0.len();
        if months < p.min_history {
            let empty = Outcome::default();
            return Ok(StageOutput::new()
                .with_dataset(datasets::FORECAST_SERIES, series_table(&empty)?)
                .with_dataset(datasets::FORECAST_ALARMS, alarm_table(&empty)?)
                .with_dataset(datasets::FORECAST_ACCURACY, accuracy_table(&empty)?)
                .with_metric("months", months)
                .with_metric(
                    "skipped",
                    format!(
                        "skipped: the declarations span {months} month(s), fewer than the {} min-history needs; the outputs are empty",
                        p.min_history
                    ),
                ));
        }
        let o = run_forecasts(declarations, mirror, &p)?;
        let mut out = StageOutput::new()
            .with_dataset(datasets::FORECAST_SERIES, series_table(&o)?)
            .with_dataset(datasets::FORECAST_ALARMS, alarm_table(&o)?)
            .with_dataset(datasets::FORECAST_ACCURACY, accuracy_table(&o)?)
            .with_metric("months", months)
            .with_metric("series", o.series.len())
            .with_metric("model", if o.seasonal { format!("MSTL({})+AutoETS", p.season) } else { "AutoETS (non-seasonal)".to_owned() })
            .with_metric("failed_fits", o.forecasts.iter().map(|f| f.failed).sum::<usize>());
        if !o.seasonal {
            out = out.with_metric(
                "note",
                format!(
                    "the history spans {months} months, fewer than the {} a seasonal model needs: non-seasonal ETS, and no seasonal-naive comparison where a season of history is missing",
                    2 * p.season
                ),
            );
        }
        let count = |kind: &str| o.alarms.iter().filter(|a| a.kind == kind).count();
        out = out.with_metric("duty_alarms", count(DUTY_BELOW_FORECAST)).with_metric("mirror_alarms", count(VALUE_AGAINST_MIRROR));
        // The chapters alarmed in the last month, the news of the run.
        let last = o.months.len().saturating_sub(1);
        let latest: Vec<String> = o
            .alarms
            .iter()
            .filter(|a| a.month == last && o.series[a.series].dimension == "hs_chapter")
            .map(|a| format!("{} {}", o.series[a.series].group, a.kind))
            .collect();
        out = out.with_metric("alarms_latest_month", latest);
        if let Some((model, naive, n)) = mean_mase(&o) {
            out = out
                .with_metric("mean_mase", model)
                .with_metric("mean_mase_seasonal_naive", naive)
                .with_metric("mase_improvement_pct", 100.0 * (1.0 - model / naive))
                .with_metric("mase_series", n);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seasonal_naive_takes_the_same_month_a_season_earlier_within_the_history() {
        let y: Vec<f64> = (0..30).map(f64::from).collect();
        assert_eq!(seasonal_naive(&y, 24, 0, 12), Some(12.0));
        assert_eq!(seasonal_naive(&y, 24, 2, 12), Some(14.0));
        assert_eq!(seasonal_naive(&y, 24, 12, 12), Some(12.0));
        assert_eq!(seasonal_naive(&y, 6, 0, 12), None);
    }

    #[test]
    fn months_run_without_gaps_and_parse_strictly() {
        assert_eq!(month_index("2023-01"), Some(2023 * 12));
        assert_eq!(month_name(2023 * 12 + 11), "2023-12");
        assert_eq!(month_name(month_index("2024-02").unwrap() + 11), "2025-01");
        for bad in ["2023-13", "2023-1", "x", ""] {
            assert_eq!(month_index(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_seasonal_series_is_forecast_with_its_season_and_a_drop_is_alarmed() {
        // Four years of a yearly cycle with 5 % noise, then a 40 % drop in the last month.
        let mut state = 7_u64;
        let mut noise = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1_u64 << 53) as f64 - 0.5
        };
        let mut y: Vec<f64> =
            (0..48).map(|t| 1000.0 * (1.0 + 0.3 * (std::f64::consts::TAU * f64::from(t) / 12.0).cos()) * (1.0 + 0.1 * noise())).collect();
        let p = ForecastParams::default();
        let clean = forecast_series_values(&y, &p);
        assert!(clean.model.starts_with("MSTL"), "{}", clean.model);
        let future = clean.future.as_ref().unwrap();
        // The next month (t = 48, a January peak) is forecast near the cycle's peak.
        assert!((future.point[0] / 1300.0 - 1.0).abs() < 0.1, "{:?}", future.point);
        assert!(future.lower[0] < future.point[0] && future.point[0] < future.upper[0]);
        let (model, naive, k) = clean.abs_errors;
        assert!(k > 0 && model < naive, "{model} vs {naive}");
        let normal = alarms_of(0, DUTY_BELOW_FORECAST, &clean.ahead, &y);
        assert!(normal.is_empty(), "{normal:?}");
        // One low month is not alarmed; two in a row are, at the second.
        y[46] *= 0.6;
        let once = forecast_series_values(&y, &p);
        assert!(alarms_of(0, DUTY_BELOW_FORECAST, &once.ahead, &y).is_empty());
        y[47] *= 0.6;
        let leaky = forecast_series_values(&y, &p);
        let alarms = alarms_of(0, DUTY_BELOW_FORECAST, &leaky.ahead, &y);
        assert_eq!(alarms.iter().map(|a| a.month).collect::<Vec<_>>(), vec![47]);
    }

    #[test]
    fn a_short_history_uses_non_seasonal_ets_and_a_too_short_one_nothing() {
        let y: Vec<f64> = (0..12).map(|t| 100.0 + f64::from(t)).collect();
        let f = forecast_series_values(&y, &ForecastParams::default());
        assert_eq!(f.model, "AutoETS log");
        assert!(!f.naive_complete, "no seasonal naive within a year");
        assert_eq!(f.origins, 3, "months 10 to 12 are checked, each fitted on the 9 or more before");
        let f = forecast_series_values(&y[..4], &ForecastParams::default());
        assert!(f.future.is_none() && f.origins == 0);
    }

    #[test]
    fn bad_parameters_are_refused() {
        for bad in ["level = 1.5", "horizon = 0", "min-history = 6", "home-country = \"Kenya\"", "nope = 1"] {
            let err = RevenueForecast.check_params(&bad.parse().unwrap()).unwrap_err().to_string();
            assert!(err.contains("revenue_forecast"), "{err}");
        }
    }
}
