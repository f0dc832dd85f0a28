//! The revenue forecasts in the report (BACUDA series 2): the series that raised an alarm, each
//! charted with its forecast and prediction interval, the alarms in a table and in the key
//! figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mirador_pipeline::columns;
use mirador_schema::catalog::{forecast_alarms as fa, forecast_series as fs};
use mirador_schema::datasets;
use polars::prelude::*;
use serde::Serialize;

use crate::charts::{ChartId, ChartOutput};
use crate::format::money_short;
use crate::html::{escape, figure, missing, section_open, table};
use crate::stage::texts_or_empty;

/// Flagged series charted, at most (the largest shortfalls first).
pub(crate) const MAX_FORECAST_CHARTS: usize = 6;

/// The revenue forecasts' figures ([`crate::ReportData::forecast`]).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ForecastFigures {
    /// Why nothing was forecast (the stage's outputs are empty), if so.
    pub skipped: Option<String>,
    /// The model of the total duty series.
    pub model: String,
    /// Months of history.
    pub months: usize,
    /// Months of the history checked against a forecast made before them.
    pub checked_months: usize,
    /// The series with an alarm, largest shortfall first.
    pub flagged: Vec<FlaggedSeries>,
    /// Every alarm, newest month first.
    pub alarms: Vec<AlarmRow>,
}

/// One alarmed series with its history, checks and forecast.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlaggedSeries {
    /// e.g. `HS chapter 61`, `office KEMBA`, `total`.
    pub label: String,
    /// `duty` or `declared_value`.
    pub measure: String,
    /// Months, history then future.
    pub periods: Vec<String>,
    /// Actual values (`None` in the future).
    pub actual: Vec<Option<f64>>,
    /// Forecast, lower and upper bound where made.
    pub forecast: Vec<Option<(f64, f64, f64)>>,
    /// Alarm kinds per month (empty: none).
    pub alarms: Vec<Vec<String>>,
    /// Per month: the lowest lower bound an alarm of the month fell below (the interval of the
    /// forecast made before it and the month before), if alarmed.
    pub alarm_lower: Vec<Option<f64>>,
    /// Sum of the alarms' shortfalls, USD.
    pub shortfall_usd: f64,
}

/// One alarm as the table shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AlarmRow {
    /// Series label.
    pub label: String,
    /// `duty` or `declared_value`.
    pub measure: String,
    /// `YYYY-MM`.
    pub period: String,
    /// `duty_below_forecast` or `value_against_mirror`.
    pub alarm: String,
    /// Actual, forecast, lower bound, shortfall (USD).
    pub actual: f64,
    pub forecast: f64,
    pub lower: f64,
    pub shortfall_usd: f64,
    /// Consecutive alarmed months.
    pub run_months: i64,
}

/// Numeric column `name`, a null or a value that is not finite as `None`.
fn opt_nums(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    Ok(columns::numbers(df, name)?.into_iter().map(|v| v.filter(|v| v.is_finite())).collect())
}

fn label(dimension: &str, group: &str) -> String {
    match dimension {
        "total" => "total".to_owned(),
        "hs_chapter" => format!("HS chapter {group}"),
        other => format!("{other} {group}"),
    }
}

/// The figures from `forecast_series` and `forecast_alarms`; `None` when the run has neither.
pub(crate) fn gather<'d>(get: &impl Fn(&str) -> Option<&'d DataFrame>) -> PolarsResult<Option<ForecastFigures>> {
    let (Some(s), Some(a)) = (get(datasets::FORECAST_SERIES), get(datasets::FORECAST_ALARMS)) else { return Ok(None) };
    if s.height() == 0 {
        return Ok(Some(ForecastFigures {
            skipped: Some(
                "the history is too short to forecast, so the revenue_forecast stage wrote nothing (see its note in the manifest)".into(),
            ),
            ..ForecastFigures::default()
        }));
    }
    let mut figures = ForecastFigures::default();
    let (ad, ag, am, ap, ak) = (
        texts_or_empty(a, fa::DIMENSION)?,
        texts_or_empty(a, fa::GROUP)?,
        texts_or_empty(a, fa::MEASURE)?,
        texts_or_empty(a, fa::PERIOD)?,
        texts_or_empty(a, fa::ALARM)?,
    );
    let (aa, af, al, ash) =
        (opt_nums(a, fa::ACTUAL)?, opt_nums(a, fa::FORECAST)?, opt_nums(a, fa::LOWER)?, opt_nums(a, fa::SHORTFALL_USD)?);
    let run = a.column(fa::RUN_MONTHS)?.cast(&DataType::Int64)?;
    let run: Vec<i64> = run.i64()?.iter().map(|v| v.unwrap_or(0)).collect();
    // (dimension, group, measure) -> (alarms and lowest bound by period, shortfall).
    type ByPeriod = BTreeMap<String, (Vec<String>, f64)>;
    let mut flagged: BTreeMap<(String, String, String), (ByPeriod, f64)> = BTreeMap::new();
    for i in 0..a.height() {
        let e = flagged.entry((ad[i].clone(), ag[i].clone(), am[i].clone())).or_default();
        let p = e.0.entry(ap[i].clone()).or_insert_with(|| (Vec::new(), f64::INFINITY));
        p.0.push(ak[i].clone());
        p.1 = p.1.min(al[i].unwrap_or(f64::INFINITY));
        e.1 += ash[i].unwrap_or(0.0);
        figures.alarms.push(AlarmRow {
            label: label(&ad[i], &ag[i]),
            measure: am[i].clone(),
            period: ap[i].clone(),
            alarm: ak[i].clone(),
            actual: aa[i].unwrap_or(f64::NAN),
            forecast: af[i].unwrap_or(f64::NAN),
            lower: al[i].unwrap_or(f64::NAN),
            shortfall_usd: ash[i].unwrap_or(f64::NAN),
            run_months: run[i],
        });
    }
    figures.alarms.sort_by(|x, y| y.period.cmp(&x.period).then(y.shortfall_usd.total_cmp(&x.shortfall_usd)));
    let (sd, sg, sm, sp) =
        (texts_or_empty(s, fs::DIMENSION)?, texts_or_empty(s, fs::GROUP)?, texts_or_empty(s, fs::MEASURE)?, texts_or_empty(s, fs::PERIOD)?);
    let (sa, sf, sl, su) = (opt_nums(s, fs::ACTUAL)?, opt_nums(s, fs::FORECAST)?, opt_nums(s, fs::LOWER)?, opt_nums(s, fs::UPPER)?);
    let model = texts_or_empty(s, fs::MODEL)?;
    let future = s.column(fs::FUTURE)?.bool()?.clone();
    let mut rows: BTreeMap<(String, String, String), FlaggedSeries> = BTreeMap::new();
    for i in 0..s.height() {
        if sd[i] == "total" && sm[i] == "duty" {
            figures.model.clone_from(&model[i]);
            figures.months += usize::from(future.get(i) == Some(false));
            figures.checked_months += usize::from(future.get(i) == Some(false) && sf[i].is_some());
        }
        let key = (sd[i].clone(), sg[i].clone(), sm[i].clone());
        let Some((alarms, shortfall)) = flagged.get(&key) else { continue };
        let row = rows.entry(key).or_insert_with(|| FlaggedSeries {
            label: label(&sd[i], &sg[i]),
            measure: sm[i].clone(),
            shortfall_usd: *shortfall,
            ..FlaggedSeries::default()
        });
        row.periods.push(sp[i].clone());
        row.actual.push(sa[i]);
        row.forecast.push(match (sf[i], sl[i], su[i]) {
            (Some(f), Some(l), Some(u)) => Some((f, l, u)),
            _ => None,
        });
        let alarm = alarms.get(&sp[i]);
        row.alarms.push(alarm.map(|a| a.0.clone()).unwrap_or_default());
        row.alarm_lower.push(alarm.map(|a| a.1).filter(|v| v.is_finite()));
    }
    figures.flagged = rows.into_values().collect();
    figures.flagged.sort_by(|x, y| y.shortfall_usd.total_cmp(&x.shortfall_usd).then(x.label.cmp(&y.label)));
    Ok(Some(figures))
}

/// The key figure: alarms in the latest month and in the run, with the series alarmed latest.
pub(crate) fn key_figure(f: &ForecastFigures) -> Option<(String, String)> {
    if f.skipped.is_some() {
        return None;
    }
    let latest = f.alarms.first().map(|a| a.period.clone());
    let value = match &latest {
        None => format!("none in the last {} months checked", f.checked_months),
        Some(p) => {
            let now: Vec<String> = f
                .alarms
                .iter()
                .filter(|a| &a.period == p)
                .take(4)
                .map(|a| format!("{} ({})", a.label, a.alarm.replace('_', " ")))
                .collect();
            format!("{} in the run; latest {p}: {}", f.alarms.len(), now.join(", "))
        }
    };
    Some(("Revenue forecast alarms".into(), value))
}

/// The report's section.
pub(crate) fn section<'a>(index: usize, f: Option<&ForecastFigures>, chart: &impl Fn(ChartId) -> Option<&'a ChartOutput>) -> String {
    let mut out = section_open(index);
    let Some(f) = f else {
        out.push_str(&missing("Revenue forecast"));
        out.push_str("</section>\n");
        return out;
    };
    if let Some(note) = &f.skipped {
        let _ = writeln!(out, "<p class=\"missing\">Revenue forecast: {}.</p>", escape(note));
        out.push_str("</section>\n");
        return out;
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">Monthly duty and declared value in total, per HS chapter and per office, forecast by {} on {} months \
         (BACUDA series 2). Each of the last months is checked against the forecast made the month before: an alarm when the duty \
         fell below the prediction interval (possible leakage, a tariff change or a reclassification wave), or when a chapter's \
         declared value fell against the partners' exports of the same goods.</p>",
        escape(&f.model),
        f.months
    );
    if f.flagged.is_empty() {
        out.push_str("<p>No series raised an alarm.</p>\n");
    }
    for (k, s) in f.flagged.iter().take(MAX_FORECAST_CHARTS).enumerate() {
        if let Some(c) = chart(ChartId::ForecastAlarm(k as u8)) {
            out.push_str(&figure(
                c,
                &format!("Line chart of the monthly {} of {} with its forecast interval and alarms", s.measure.replace('_', " "), s.label),
                "Line: actual; dots and band: the forecast made the month before and its prediction interval (and the next months'); \
                 red dot: an alarmed month (it and the month before fell below the interval of the forecast made before both), \
                 red dash: that interval's lower bound.",
            ));
        }
    }
    let rows: Vec<Vec<String>> = f
        .alarms
        .iter()
        .take(30)
        .map(|a| {
            vec![
                escape(&a.period),
                escape(&a.label),
                escape(&a.measure.replace('_', " ")),
                escape(&a.alarm.replace('_', " ")),
                money_short(a.actual),
                money_short(a.forecast),
                money_short(a.lower),
                money_short(a.shortfall_usd),
                a.run_months.to_string(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push_str(&table(
            None,
            &[
                ("Month", false),
                ("Series", false),
                ("Measure", false),
                ("Alarm", false),
                ("Actual", true),
                ("Forecast", true),
                ("Lower bound", true),
                ("Shortfall", true),
                ("Months in a row", true),
            ],
            &rows,
        ));
    }
    out.push_str("</section>\n");
    out
}

/// A filled example for the sample report: one chapter whose duty falls below its interval in
/// the last two months of three years.
pub(crate) fn fixture() -> ForecastFigures {
    let n = 36;
    let periods: Vec<String> = (0..n + 3).map(|i| format!("{:04}-{:02}", 2023 + i / 12, i % 12 + 1)).collect();
    let season = |i: usize| 1.0 + 0.3 * (std::f64::consts::TAU * (i as f64 - 10.0) / 12.0).cos();
    let level = 250_000.0;
    let actual: Vec<Option<f64>> = (0..n + 3)
        .map(|i| (i < n).then(|| level * season(i) * if i >= n - 2 { 0.6 } else { 1.0 + 0.03 * ((i * 7 % 5) as f64 - 2.0) }))
        .collect();
    let forecast: Vec<Option<(f64, f64, f64)>> =
        (0..n + 3).map(|i| (i >= n - 12).then(|| (level * season(i), level * season(i) * 0.8, level * season(i) * 1.22))).collect();
    // The last month is alarmed: it and the month before fell below the forecast made before both.
    let alarms: Vec<Vec<String>> = (0..n + 3).map(|i| if i == n - 1 { vec!["duty_below_forecast".to_owned()] } else { vec![] }).collect();
    let alarm_lower: Vec<Option<f64>> = (0..n + 3).map(|i| (i == n - 1).then(|| level * season(i) * 0.75)).collect();
    let rows: Vec<AlarmRow> = [n - 1]
        .iter()
        .map(|&i| {
            let (f, l, _) = forecast[i].unwrap_or_default();
            let a = actual[i].unwrap_or_default();
            AlarmRow {
                label: "HS chapter 61".into(),
                measure: "duty".into(),
                period: periods[i].clone(),
                alarm: "duty_below_forecast".into(),
                actual: a,
                forecast: f,
                lower: l,
                shortfall_usd: f - a,
                run_months: 1,
            }
        })
        .collect();
    ForecastFigures {
        skipped: None,
        model: "MSTL(12)+AutoETS log".into(),
        months: n,
        checked_months: 12,
        flagged: vec![FlaggedSeries {
            label: "HS chapter 61".into(),
            measure: "duty".into(),
            shortfall_usd: rows.iter().map(|r| r.shortfall_usd).sum(),
            periods,
            actual,
            forecast,
            alarms,
            alarm_lower,
        }],
        alarms: rows,
    }
}
