//! Stage `release_time`: how long goods wait between arrival and release (BACUDA series 7, the
//! WCO Time Release Study).
//!
//! Declarations may carry the lane and the times of arrival, lodgement, payment and release
//! ([`mirador_schema::schemas::RELEASE_TIME_COLUMNS`]). A goods item is measured when it has its
//! arrival, lodgement and release times. Its time splits into three steps that add up to the
//! total: **arrival to lodgement** (zero when lodged before arrival), **lodgement to payment** and
//! **payment to release** (an item with no payment time, or paid after release, spends all of
//! lodgement to release in the last step).
//!
//! - The distribution (declarations, median, p90, mean, hours) of each interval — the three
//!   steps, lodgement to release and the total — overall and per office, lane, HS chapter and
//!   month. The payment steps count only items with a payment time.
//! - Offices and lanes against the service level: a group breaches when its median total time
//!   exceeds `service-level-hours` or its p90 exceeds `p90-service-level-hours`; groups with fewer
//!   than `min-declarations` measured items are listed but never flagged. Worst first, by median
//!   over the service level.
//! - The share of the total time each step takes (sum of the step over sum of the total), overall
//!   and per office and lane, on items with all four times.
//!
//! A source without the time columns is not an error: the stage writes its outputs empty and says
//! why in the manifest (metric `skipped`).
//!
//! ## Inputs
//! - `declarations`: `office_id`, `lane`, `hs6`, `period`, `arrived_at`, `lodged_at`, `paid_at`,
//!   `released_at`.
//! ## Outputs
//! - `release_intervals`: `dimension` (`all`, `office`, `lane`, `hs_chapter`, `month`), `group`,
//!   `interval`, `declarations`, `median_hours`, `p90_hours`, `mean_hours`.
//! - `release_breaches`: `dimension` (`office`, `lane`), `group`, `declarations`, `median_hours`,
//!   `p90_hours`, `service_level_hours`, `p90_service_level_hours`, `median_ratio`, `breach`,
//!   `rank` (1 = worst of its dimension).
//! - `release_steps`: `dimension` (`all`, `office`, `lane`), `group`, `step`, `declarations`,
//!   `mean_hours`, `share`.

use std::collections::BTreeMap;

use mirador_pipeline::{Stage, StageContext, StageError, StageOutput, param_in_range, parse_params};
use mirador_schema::catalog::{release_breaches, release_intervals, release_steps};
use mirador_schema::text::Text;
use mirador_schema::{DatasetId, col, datasets};
use polars::prelude::*;
use serde::Deserialize;

/// The steps, in order; they add up to the total.
pub const STEPS: [&str; 3] = ["arrival_to_lodgement", "lodgement_to_payment", "payment_to_release"];
/// The intervals whose distributions are written: the steps, lodgement to release, the total.
pub const INTERVALS: [&str; 5] = ["arrival_to_lodgement", "lodgement_to_payment", "payment_to_release", "lodgement_to_release", "total"];
/// The dimensions of the distributions.
pub const DIMENSIONS: [&str; 5] = ["all", "office", "lane", "hs_chapter", "month"];

/// Parameters of the `release_time` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReleaseParams {
    /// The median total time (arrival to release) an office or lane should keep within, hours.
    pub service_level_hours: f64,
    /// The p90 total time an office or lane should keep within, hours.
    pub p90_service_level_hours: f64,
    /// Fewest measured items for a group to be flagged.
    pub min_declarations: usize,
}

impl Default for ReleaseParams {
    fn default() -> Self {
        ReleaseParams { service_level_hours: 24.0, p90_service_level_hours: 72.0, min_declarations: 30 }
    }
}

impl ReleaseParams {
    fn validate(&self, stage: &str) -> Result<(), StageError> {
        param_in_range(stage, "service-level-hours", self.service_level_hours, 0.01, 24.0 * 365.0)?;
        param_in_range(stage, "p90-service-level-hours", self.p90_service_level_hours, 0.01, 24.0 * 365.0)?;
        param_in_range(stage, "min-declarations", self.min_declarations, 1, 1_000_000)
    }
}

/// One measured goods item: its groups and its intervals, hours.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Office, lane, HS chapter, month (`None` when the item has none).
    pub groups: [Option<String>; 4],
    /// [`INTERVALS`], hours; `None` for the payment steps of an item without a payment time.
    pub hours: [Option<f64>; 5],
}

/// The clock points of one item (seconds): its intervals in hours, or `None` when it cannot be
/// measured (no arrival, lodgement or release time).
pub fn intervals(arrived: Option<i64>, lodged: Option<i64>, paid: Option<i64>, released: Option<i64>) -> Option<[Option<f64>; 5]> {
    let (t0, lodged, t3) = (arrived?, lodged?, released?);
    if t3 < t0 {
        return None;
    }
    let t1 = lodged.clamp(t0, t3);
    let paid = paid.filter(|p| (t1..=t3).contains(p));
    let h = |s: i64| s as f64 / 3_600.0;
    let (payment, release) = match paid {
        Some(t2) => (Some(h(t2 - t1)), Some(h(t3 - t2))),
        None => (None, None),
    };
    Some([Some(h(t1 - t0)), payment, release, Some(h(t3 - t1)), Some(h(t3 - t0))])
}

/// The `q` quantile (0–1) of sorted values, linearly interpolated between order statistics.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

/// Count, median, p90 and mean of `values` (sorted in place).
fn summary(values: &mut [f64]) -> (usize, f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    (values.len(), quantile(values, 0.5), quantile(values, 0.9), mean)
}

/// Reads the measured items of a declarations frame, and the number of items it could not
/// measure. `None` when the frame has no release times at all.
pub fn measure(declarations: &DataFrame) -> PolarsResult<Option<(Vec<Measured>, usize)>> {
    let has = |c: &str| declarations.schema().contains(c);
    if ![col::ARRIVED_AT, col::LODGED_AT, col::RELEASED_AT].iter().all(|c| has(c)) {
        return Ok(None);
    }
    let n = declarations.height();
    let times = |c: &str| -> PolarsResult<Vec<Option<i64>>> {
        if !has(c) {
            return Ok(vec![None; n]);
        }
        Ok(declarations.column(c)?.cast(&DataType::Int64)?.i64()?.iter().collect())
    };
    let text = |c: &str, f: fn(&str) -> Option<String>| -> PolarsResult<Vec<Option<String>>> {
        if !has(c) {
            return Ok(vec![None; n]);
        }
        Ok(Text::column(declarations, c)?.iter().map(|v| v.filter(|v| !v.is_empty() && *v != "-").and_then(f)).collect())
    };
    let (arrived, lodged, paid, released) =
        (times(col::ARRIVED_AT)?, times(col::LODGED_AT)?, times(col::PAID_AT)?, times(col::RELEASED_AT)?);
    let own = |v: &str| Some(v.to_owned());
    let office = text(col::OFFICE_ID, own)?;
    let lane = text(col::LANE, own)?;
    let chapter = text(col::HS6, |v| v.get(..2).map(str::to_owned))?;
    let month = text(col::PERIOD, own)?;
    let mut measured = Vec::with_capacity(n);
    for i in 0..n {
        if let Some(hours) = intervals(arrived[i], lodged[i], paid[i], released[i]) {
            measured.push(Measured { groups: [office[i].clone(), lane[i].clone(), chapter[i].clone(), month[i].clone()], hours });
        }
    }
    let unmeasured = n - measured.len();
    Ok(Some((measured, unmeasured)))
}

/// The items of each group of `dimension` (`all` or one of [`DIMENSIONS`]), by group name.
fn groups<'m>(items: &'m [Measured], dimension: &str) -> BTreeMap<&'m str, Vec<&'m Measured>> {
    let mut out: BTreeMap<&str, Vec<&Measured>> = BTreeMap::new();
    let slot = DIMENSIONS.iter().position(|d| *d == dimension).and_then(|i| i.checked_sub(1));
    for m in items {
        let key = match slot {
            None => Some("all"),
            Some(s) => m.groups[s].as_deref(),
        };
        if let Some(key) = key {
            out.entry(key).or_default().push(m);
        }
    }
    out
}

/// The `release_intervals` output.
pub fn interval_table(items: &[Measured]) -> PolarsResult<DataFrame> {
    let (mut dim, mut group, mut interval, mut count, mut median, mut p90, mut mean) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in DIMENSIONS {
        for (g, members) in groups(items, d) {
            for (k, name) in INTERVALS.iter().enumerate() {
                let mut v: Vec<f64> = members.iter().filter_map(|m| m.hours[k]).collect();
                if v.is_empty() {
                    continue;
                }
                let (n, md, p, mn) = summary(&mut v);
                dim.push(d);
                group.push(g.to_owned());
                interval.push(*name);
                count.push(n as i64);
                median.push(md);
                p90.push(p);
                mean.push(mn);
            }
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new(release_intervals::DIMENSION.into(), dim),
        Column::new(release_intervals::GROUP.into(), group),
        Column::new(release_intervals::INTERVAL.into(), interval),
        Column::new(release_intervals::DECLARATIONS.into(), count),
        Column::new(release_intervals::MEDIAN_HOURS.into(), median),
        Column::new(release_intervals::P90_HOURS.into(), p90),
        Column::new(release_intervals::MEAN_HOURS.into(), mean),
    ])
}

/// One office or lane against the service level.
#[derive(Debug, Clone, PartialEq)]
pub struct Breach {
    /// `office` or `lane`.
    pub dimension: &'static str,
    /// Office or lane.
    pub group: String,
    /// Measured items.
    pub declarations: usize,
    /// Median total time, hours.
    pub median_hours: f64,
    /// p90 total time, hours.
    pub p90_hours: f64,
    /// Median over the service level.
    pub median_ratio: f64,
    /// Whether it breaches.
    pub breach: bool,
    /// 1 = worst of its dimension.
    pub rank: usize,
}

/// Offices and lanes against the service level, each dimension worst first.
pub fn breaches(items: &[Measured], p: &ReleaseParams) -> Vec<Breach> {
    let mut out = Vec::new();
    for d in ["office", "lane"] {
        let mut rows: Vec<Breach> = groups(items, d)
            .into_iter()
            .map(|(g, members)| {
                let mut total: Vec<f64> = members.iter().filter_map(|m| m.hours[4]).collect();
                let (n, median, p90, _) = summary(&mut total);
                let breach = n >= p.min_declarations && (median > p.service_level_hours || p90 > p.p90_service_level_hours);
                Breach {
                    dimension: d,
                    group: g.to_owned(),
                    declarations: n,
                    median_hours: median,
                    p90_hours: p90,
                    median_ratio: median / p.service_level_hours,
                    breach,
                    rank: 0,
                }
            })
            .collect();
        // Flagged groups first, then by median over the service level.
        rows.sort_by(|a, b| b.breach.cmp(&a.breach).then(b.median_ratio.total_cmp(&a.median_ratio)).then(a.group.cmp(&b.group)));
        for (i, r) in rows.iter_mut().enumerate() {
            r.rank = i + 1;
        }
        out.extend(rows);
    }
    out
}

fn breach_table(rows: &[Breach], p: &ReleaseParams) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        Column::new(release_intervals::DIMENSION.into(), rows.iter().map(|r| r.dimension).collect::<Vec<_>>()),
        Column::new(release_intervals::GROUP.into(), rows.iter().map(|r| r.group.as_str()).collect::<Vec<_>>()),
        Column::new(release_intervals::DECLARATIONS.into(), rows.iter().map(|r| r.declarations as i64).collect::<Vec<_>>()),
        Column::new(release_intervals::MEDIAN_HOURS.into(), rows.iter().map(|r| r.median_hours).collect::<Vec<_>>()),
        Column::new(release_intervals::P90_HOURS.into(), rows.iter().map(|r| r.p90_hours).collect::<Vec<_>>()),
        Column::new(release_breaches::SERVICE_LEVEL_HOURS.into(), vec![p.service_level_hours; rows.len()]),
        Column::new(release_breaches::P90_SERVICE_LEVEL_HOURS.into(), vec![p.p90_service_level_hours; rows.len()]),
        Column::new(release_breaches::MEDIAN_RATIO.into(), rows.iter().map(|r| r.median_ratio).collect::<Vec<_>>()),
        Column::new(release_breaches::BREACH.into(), rows.iter().map(|r| r.breach).collect::<Vec<_>>()),
        Column::new(release_breaches::RANK.into(), rows.iter().map(|r| r.rank as i64).collect::<Vec<_>>()),
    ])
}

/// The `release_steps` output: each step's share of the total time, overall and per office and
/// lane, on the items with all four times.
pub fn step_table(items: &[Measured]) -> PolarsResult<DataFrame> {
    let (mut dim, mut group, mut step, mut count, mut mean, mut share) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in ["all", "office", "lane"] {
        for (g, members) in groups(items, d) {
            let full: Vec<&&Measured> = members.iter().filter(|m| m.hours[..3].iter().all(Option::is_some)).collect();
            if full.is_empty() {
                continue;
            }
            let total: f64 = full.iter().filter_map(|m| m.hours[4]).sum();
            for (k, name) in STEPS.iter().enumerate() {
                let sum: f64 = full.iter().filter_map(|m| m.hours[k]).sum();
                dim.push(d);
                group.push(g.to_owned());
                step.push(*name);
                count.push(full.len() as i64);
                mean.push(sum / full.len() as f64);
                share.push(if total > 0.0 { sum / total } else { 0.0 });
            }
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new(release_intervals::DIMENSION.into(), dim),
        Column::new(release_intervals::GROUP.into(), group),
        Column::new(release_steps::STEP.into(), step),
        Column::new(release_intervals::DECLARATIONS.into(), count),
        Column::new(release_intervals::MEAN_HOURS.into(), mean),
        Column::new(release_steps::SHARE.into(), share),
    ])
}

/// The stage.
pub struct ReleaseTime;

const INPUTS: &[DatasetId] = &[datasets::DECLARATIONS];
const OUTPUTS: &[DatasetId] = &[datasets::RELEASE_INTERVALS, datasets::RELEASE_BREACHES, datasets::RELEASE_STEPS];

impl Stage for ReleaseTime {
    fn name(&self) -> &'static str {
        "release_time"
    }

    fn inputs(&self) -> &'static [DatasetId] {
        INPUTS
    }

    fn input_columns(&self, id: &str) -> Option<Vec<&'static str>> {
        (id == datasets::DECLARATIONS).then(|| {
            vec![col::OFFICE_ID, col::LANE, col::HS6, col::PERIOD, col::ARRIVED_AT, col::LODGED_AT, col::PAID_AT, col::RELEASED_AT]
        })
    }

    fn outputs(&self) -> &'static [DatasetId] {
        OUTPUTS
    }

    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        parse_params::<ReleaseParams>(self.name(), params)?.validate(self.name())
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let p: ReleaseParams = ctx.params()?;
        p.validate(self.name())?;
        let declarations = ctx.input(datasets::DECLARATIONS)?;
        let (items, unmeasured, skipped) = match measure(declarations)? {
            None => (
                Vec::new(),
                declarations.height(),
                Some(format!(
                    "skipped: the declarations carry no release times (`{}`, `{}` and `{}` are needed); the outputs are empty",
                    col::ARRIVED_AT,
                    col::LODGED_AT,
                    col::RELEASED_AT
                )),
            ),
            Some((items, unmeasured)) if items.is_empty() => (
                items,
                unmeasured,
                Some(format!("skipped: none of the {unmeasured} declaration items has its arrival, lodgement and release times")),
            ),
            Some((items, unmeasured)) => (items, unmeasured, None),
        };
        let rows = breaches(&items, &p);
        let mut out = StageOutput::new()
            .with_dataset(datasets::RELEASE_INTERVALS, interval_table(&items)?)
            .with_dataset(datasets::RELEASE_BREACHES, breach_table(&rows, &p)?)
            .with_dataset(datasets::RELEASE_STEPS, step_table(&items)?)
            .with_metric("measured", items.len())
            .with_metric("unmeasured", unmeasured);
        if let Some(note) = skipped {
            return Ok(out.with_metric("skipped", note));
        }
        for d in ["office", "lane"] {
            let flagged: Vec<&Breach> = rows.iter().filter(|r| r.dimension == d && r.breach).collect();
            out = out.with_metric(&format!("{d}s_breaching"), flagged.len());
            if let Some(top) = flagged.first() {
                out = out
                    .with_metric(&format!("worst_{d}"), top.group.clone())
                    .with_metric(&format!("worst_{d}_median_hours"), top.median_hours);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.9) - 7.6).abs() < 1e-12);
        assert_eq!(quantile(&[5.0], 0.9), 5.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn the_steps_add_up_to_the_total_whatever_the_order() {
        let h = 3_600;
        // In order.
        let i = intervals(Some(0), Some(2 * h), Some(5 * h), Some(6 * h)).unwrap();
        assert_eq!(i, [Some(2.0), Some(3.0), Some(1.0), Some(4.0), Some(6.0)]);
        // Lodged before arrival: no time in the first step.
        let i = intervals(Some(2 * h), Some(0), Some(5 * h), Some(6 * h)).unwrap();
        assert_eq!(i, [Some(0.0), Some(3.0), Some(1.0), Some(4.0), Some(4.0)]);
        // No payment, or paid after release: the payment steps are not measured.
        for paid in [None, Some(9 * h)] {
            let i = intervals(Some(0), Some(2 * h), paid, Some(6 * h)).unwrap();
            assert_eq!(i, [Some(2.0), None, None, Some(4.0), Some(6.0)]);
        }
        // Not measurable.
        assert!(intervals(None, Some(0), None, Some(h)).is_none());
        assert!(intervals(Some(0), None, None, Some(h)).is_none());
        assert!(intervals(Some(h), Some(h), None, Some(0)).is_none());
    }

    #[test]
    fn a_small_group_is_listed_but_never_flagged() {
        let item = |office: &str, total: f64| Measured {
            groups: [Some(office.into()), Some("green".into()), Some("84".into()), Some("2023-01".into())],
            hours: [Some(0.0), None, None, Some(total), Some(total)],
        };
        let mut items: Vec<Measured> = (0..40).map(|i| item("A", 10.0 + f64::from(i % 3))).collect();
        items.extend((0..40).map(|_| item("B", 30.0)));
        items.extend((0..5).map(|_| item("C", 100.0)));
        let p = ReleaseParams::default();
        let rows = breaches(&items, &p);
        let offices: Vec<(&str, bool, usize)> =
            rows.iter().filter(|r| r.dimension == "office").map(|r| (r.group.as_str(), r.breach, r.rank)).collect();
        assert_eq!(offices, vec![("B", true, 1), ("C", false, 2), ("A", false, 3)]);
        assert!(ReleaseParams { service_level_hours: -1.0, ..p }.validate("release_time").is_err());
    }
}
