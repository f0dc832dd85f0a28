//! The backtest in the report: what `mirador backtest` wrote for the pipeline (its
//! `backtest_weeks`, `backtest_summary` and `backtest.json`), read back into [`BacktestFigures`],
//! drawn as the cumulative chart of fraudulent duty found per policy and tabled per policy over
//! the whole replay and its last quarter.
//!
//! The report stage reads it from the directory its `backtest` parameter names (relative to the
//! pipeline file); without the parameter, or without a backtest there yet, the section says in
//! one line how to produce one.

use std::path::Path;

use mirador_schema::catalog::{backtest_summary as bs, backtest_weeks as bw};
use polars::prelude::*;
use serde::Serialize;

use crate::charts::{ChartId, ChartOutput};
use crate::format::percent;
use crate::html::{escape, figure, table};
use crate::stage::{numbers_or_nan, texts_or_empty};

/// A backtest's figures, as `mirador backtest` wrote them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BacktestFigures {
    /// The directory read, as the pipeline names it.
    pub source: String,
    /// The replay's settings in words (months, budget, retraining, exploration).
    pub settings: String,
    /// Per policy, in the replay's order: the share of all fraudulent duty found so far, week
    /// by week (week 1 first).
    pub curves: Vec<(String, Vec<f64>)>,
    /// Per policy, in the same order: the whole replay and its last quarter.
    pub summary: Vec<BacktestRow>,
}

/// One policy of [`BacktestFigures::summary`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct BacktestRow {
    /// Policy name.
    pub policy: String,
    /// Precision of its picks over the whole replay.
    pub precision: f64,
    /// Share of all the fraudulent duty it found over the whole replay.
    pub duty_found: f64,
    /// Weeks of the last quarter.
    pub quarter_weeks: u32,
    /// Precision of its picks over the last quarter.
    pub quarter_precision: f64,
    /// Share of the last quarter's fraudulent duty it found.
    pub quarter_duty_found: f64,
}

/// What the report says without a backtest to show (HTML).
pub(crate) const HOW_TO: &str = "No backtest shown: <code>mirador backtest &lt;pipeline.toml&gt; --from YYYY-MM --to YYYY-MM \
     --budget 5%</code> writes one to <code>reports/backtest/&lt;pipeline&gt;/</code>; the report stage's <code>backtest</code> \
     parameter, set to that directory, shows it here.";

/// Reads the backtest in `dir` (`shown` is how the pipeline names it). `Ok(None)` when `dir`
/// holds no `backtest_summary.parquet` (no backtest written there yet); an error naming the file
/// when one is there but cannot be read or lacks a column.
pub(crate) fn read(dir: &Path, shown: &str) -> Result<Option<BacktestFigures>, String> {
    let (summary_path, weeks_path) = (dir.join(format!("{}.parquet", bs::ID)), dir.join(format!("{}.parquet", bw::ID)));
    if !summary_path.is_file() {
        return Ok(None);
    }
    let load = |path: &Path| mirador_io::read_parquet(path).map_err(|e| format!("backtest `{}`: {e}", path.display()));
    let (summary, weeks) = (load(&summary_path)?, load(&weeks_path)?);
    let bad = |path: &Path, e: PolarsError| format!("backtest `{}`: {e}", path.display());
    let curves = curves(&weeks).map_err(|e| bad(&weeks_path, e))?;
    let summary = rows(&summary).map_err(|e| bad(&summary_path, e))?;
    let meta: serde_json::Value =
        std::fs::read(dir.join("backtest.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(serde_json::Value::Null);
    let text = |k: &str| meta.get(k).and_then(serde_json::Value::as_str).map(str::to_owned);
    let number = |k: &str| meta.get(k).and_then(serde_json::Value::as_f64);
    let settings = match (text("from"), text("to"), number("budget_pct")) {
        (Some(from), Some(to), Some(budget)) => format!(
            "{from} to {to}, {budget} % of each week's declarations inspected, each policy's model retrained every {} weeks on \
             the labels its own picks and the outcome feed revealed; exploration share {}",
            number("retrain_weeks").map_or_else(|| "?".to_owned(), |w| format!("{w}")),
            number("exploration_share").map_or_else(|| "?".to_owned(), |e| format!("{e}")),
        ),
        _ => "settings unknown (no readable backtest.json)".to_owned(),
    };
    Ok(Some(BacktestFigures { source: shown.to_owned(), settings, curves, summary }))
}

fn curves(w: &DataFrame) -> PolarsResult<Vec<(String, Vec<f64>)>> {
    let (policy, week, share) = (texts_or_empty(w, bw::POLICY)?, numbers_or_nan(w, bw::WEEK)?, numbers_or_nan(w, bw::CUMULATIVE_SHARE)?);
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for i in 0..w.height() {
        match out.iter_mut().find(|(p, _)| *p == policy[i]) {
            Some((_, v)) => v.push((week[i], share[i])),
            None => out.push((policy[i].clone(), vec![(week[i], share[i])])),
        }
    }
    Ok(out
        .into_iter()
        .map(|(p, mut v)| {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            (p, v.into_iter().map(|(_, s)| s).collect())
        })
        .collect())
}

fn rows(s: &DataFrame) -> PolarsResult<Vec<BacktestRow>> {
    let (policy, period) = (texts_or_empty(s, bs::POLICY)?, texts_or_empty(s, bs::PERIOD)?);
    let (weeks, precision, share) =
        (numbers_or_nan(s, bs::WEEKS)?, numbers_or_nan(s, bs::PRECISION)?, numbers_or_nan(s, bs::FRAUD_DUTY_SHARE)?);
    let mut out: Vec<BacktestRow> = Vec::new();
    for i in 0..s.height() {
        let at = match out.iter().position(|r| r.policy == policy[i]) {
            Some(at) => at,
            None => {
                out.push(BacktestRow { policy: policy[i].clone(), ..BacktestRow::default() });
                out.len() - 1
            }
        };
        let r = &mut out[at];
        match period[i].as_str() {
            "whole" => (r.precision, r.duty_found) = (precision[i], share[i]),
            "last_quarter" => (r.quarter_weeks, r.quarter_precision, r.quarter_duty_found) = (weeks[i] as u32, precision[i], share[i]),
            _ => {}
        }
    }
    Ok(out)
}

/// The report's backtest section body (its heading is the page's).
pub(crate) fn section(b: Option<&BacktestFigures>, chart: Option<&ChartOutput>) -> String {
    let Some(b) = b else { return format!("<p class=\"missing\">{HOW_TO}</p>\n") };
    let mut out = format!(
        "<p class=\"note\">The inspection policies replayed week by week (<code>{}</code>): {}. Only a policy's own picks and \
         the outcome feed reveal labels to its model.</p>\n",
        escape(&b.source),
        escape(&b.settings)
    );
    if let Some(c) = chart.filter(|c| c.id == ChartId::BacktestCumulative) {
        out.push_str(&figure(
            c,
            "Line chart of the share of all fraudulent duty each inspection policy found, week after week of the replay",
            "Cumulative share of all the fraudulent duty of the replayed weeks found by each policy's picks.",
        ));
    }
    let pct = |x: f64| percent(x, 1);
    let quarter = b.summary.first().map_or(0, |r| r.quarter_weeks);
    let rows: Vec<Vec<String>> = b
        .summary
        .iter()
        .map(|r| {
            vec![
                escape(&r.policy.replace('_', " ")),
                pct(r.precision),
                pct(r.duty_found),
                pct(r.quarter_precision),
                pct(r.quarter_duty_found),
            ]
        })
        .collect();
    let (qp, qd) = (format!("Last {quarter} weeks: precision"), format!("Last {quarter} weeks: duty found"));
    out.push_str(&table(None, &[("Policy", false), ("Precision", true), ("Duty found", true), (&qp, true), (&qd, true)], &rows));
    out
}

/// The sample report's backtest: five policies over 40 weeks, shaped like a shifting world's.
pub(crate) fn sample() -> BacktestFigures {
    let policies = [
        ("probability", 0.45, 0.69, 0.38, 0.63),
        ("expected_duty", 0.55, 0.43, 0.53, 0.72),
        ("mixed", 0.5, 0.68, 0.48, 0.84),
        ("mixed_exploration", 0.49, 0.68, 0.46, 0.73),
        ("random", 0.06, 0.06, 0.06, 0.06),
    ];
    let curves = policies
        .iter()
        .map(|&(name, start, _, whole, _)| {
            let values = (1..=40).map(|w| start * (1.0 - (-f64::from(w) / 6.0).exp()) + (whole - start) * f64::from(w) / 40.0).collect();
            (name.to_owned(), values)
        })
        .collect();
    let summary = policies
        .iter()
        .map(|&(name, _, precision, whole, quarter)| BacktestRow {
            policy: name.to_owned(),
            precision: precision * 0.8,
            duty_found: whole,
            quarter_weeks: 10,
            quarter_precision: precision,
            quarter_duty_found: quarter,
        })
        .collect();
    BacktestFigures {
        source: "../reports/backtest/backtest".to_owned(),
        settings: "2023-04 to 2023-12, 5 % of each week's declarations inspected, each policy's model retrained every 4 weeks on the \
                   labels its own picks and the outcome feed revealed; exploration share 0.1"
            .to_owned(),
        curves,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path) {
        let mut weeks = df!(
            "policy" => ["probability", "probability", "mixed", "mixed"],
            "week" => [2_u32, 1, 1, 2],
            "cumulative_share" => [0.3, 0.1, 0.2, 0.5],
        )
        .unwrap();
        let mut summary = df!(
            "policy" => ["probability", "probability", "mixed", "mixed"],
            "period" => ["whole", "last_quarter", "whole", "last_quarter"],
            "weeks" => [2_u32, 1, 2, 1],
            "precision" => [0.9, 0.8, 0.7, 0.6],
            "fraud_duty_share" => [0.3, 0.4, 0.5, 0.65],
        )
        .unwrap();
        mirador_io::write_parquet(&mut weeks, &dir.join("backtest_weeks.parquet")).unwrap();
        mirador_io::write_parquet(&mut summary, &dir.join("backtest_summary.parquet")).unwrap();
        let meta = r#"{"from": "2023-04", "to": "2023-12", "budget_pct": 5.0, "retrain_weeks": 4, "exploration_share": 0.1}"#;
        std::fs::write(dir.join("backtest.json"), meta).unwrap();
    }

    #[test]
    fn a_backtest_is_read_back_per_policy_in_week_order() {
        let dir = std::env::temp_dir().join(format!("mirador-report-backtest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(read(&dir, "x").unwrap().is_none(), "no backtest written there yet");
        write(&dir);
        let b = read(&dir, "../reports/backtest/x").unwrap().unwrap();
        assert_eq!(b.curves, vec![("probability".to_owned(), vec![0.1, 0.3]), ("mixed".to_owned(), vec![0.2, 0.5])]);
        assert_eq!(b.summary.len(), 2);
        assert_eq!((b.summary[1].duty_found, b.summary[1].quarter_duty_found, b.summary[1].quarter_weeks), (0.5, 0.65, 1));
        assert!(b.settings.starts_with("2023-04 to 2023-12, 5 % of each week"), "{}", b.settings);
        let html = section(Some(&b), None);
        assert!(html.contains("65.0 %") && html.contains("Last 1 weeks: duty found") && html.contains("../reports/backtest/x"), "{html}");
        // A summary without its columns is an error naming the file.
        let mut broken = df!("policy" => ["p"]).unwrap();
        mirador_io::write_parquet(&mut broken, &dir.join("backtest_summary.parquet")).unwrap();
        let err = read(&dir, "x").unwrap_err();
        assert!(err.contains("backtest_summary.parquet") && err.contains("period"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        // Without a backtest: one line saying how to make one.
        assert!(section(None, None).contains("mirador backtest"));
    }
}
