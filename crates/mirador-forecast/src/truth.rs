//! The alarms and the backtest against a synthetic world's planted leak: what the bars of the
//! revenue forecasts are measured by (the `forecast_truth` example and the tests).

use crate::{DUTY_BELOW_FORECAST, Outcome, VALUE_AGAINST_MIRROR};

/// How the alarms of a run did against a planted leak of `chapter` from month `leak_month`
/// (index of the run's months).
#[derive(Debug, Clone, PartialEq)]
pub struct LeakScore {
    /// Months from the leak's first month to the first `duty_below_forecast` alarm on the
    /// chapter's duty (0: flagged in its first month), if flagged.
    pub duty_delay: Option<usize>,
    /// The same for the `value_against_mirror` alarm on the chapter's declared value.
    pub mirror_delay: Option<usize>,
    /// Alarms that are not the leak: any alarm before the leak month, and after it any alarm on a
    /// series that does not contain the chapter's goods.
    pub false_alarms: usize,
    /// Series × months checked, of the series that can give false alarms (alarmable series;
    /// after the leak, those not containing the chapter).
    pub checked_series_months: usize,
    /// The false alarms: series, month and kind, as `YYYY-MM dimension group measure kind`.
    pub false_list: Vec<String>,
}

impl LeakScore {
    /// Months from the leak's first month to its first alarm of either kind.
    pub fn first_flag(&self) -> Option<usize> {
        match (self.duty_delay, self.mirror_delay) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// False alarms per year per 20 series.
    pub fn false_per_20_series_year(&self) -> f64 {
        self.false_alarms as f64 / (self.checked_series_months.max(1) as f64 / 12.0) * 20.0
    }
}

/// Scores `outcome` against a leak of `chapter` from month index `leak_month`. `alarmable` tells
/// which series the run alarms (same order as the outcome's series).
pub fn score_leak(outcome: &Outcome, chapter: &str, leak_month: usize, alarmable: &[bool]) -> LeakScore {
    // Series that contain the leaked goods: the chapter's, the total, every office.
    let contains = |i: usize| {
        let s = &outcome.series[i];
        s.dimension != "hs_chapter" || s.group == chapter
    };
    let first = |kind: &str, measure: &str| {
        outcome
            .alarms
            .iter()
            .filter(|a| {
                let s = &outcome.series[a.series];
                a.kind == kind && s.dimension == "hs_chapter" && s.group == chapter && s.measure == measure && a.month >= leak_month
            })
            .map(|a| a.month - leak_month)
            .min()
    };
    let false_list: Vec<String> = outcome
        .alarms
        .iter()
        .filter(|a| a.month < leak_month || !contains(a.series))
        .map(|a| {
            let s = &outcome.series[a.series];
            format!("{} {} {} {} {}", outcome.months[a.month], s.dimension, s.group, s.measure, a.kind)
        })
        .collect();
    let mut checked = 0;
    for (i, f) in outcome.forecasts.iter().enumerate() {
        if !alarmable.get(i).copied().unwrap_or(false) {
            continue;
        }
        checked += f.checked.iter().enumerate().filter(|(m, c)| c.is_some() && (*m < leak_month || !contains(i))).count();
    }
    LeakScore {
        duty_delay: first(DUTY_BELOW_FORECAST, "duty"),
        mirror_delay: first(VALUE_AGAINST_MIRROR, "declared_value"),
        false_alarms: false_list.len(),
        checked_series_months: checked,
        false_list,
    }
}
