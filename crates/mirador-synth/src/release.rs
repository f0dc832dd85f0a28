//! Release times of the synthetic world (WCO Time Release Study): for every declaration item,
//! the selectivity lane and the times of arrival, lodgement, payment and release, with one slow
//! office and one slow lane planted.
//!
//! The values are drawn from their own seeded random stream, never the world generator's: the
//! world's other columns are the same with or without them.
//!
//! Each item is lodged on its declaration date, during office hours. Arrival precedes lodgement
//! by a log-normal wait (median [`ARRIVAL_TO_LODGEMENT_H`] hours); payment follows lodgement
//! (median [`LODGEMENT_TO_PAYMENT_H`]) and release follows payment (median
//! [`PAYMENT_TO_RELEASE_H`]). The office's factor scales every step, the lane's factor the two
//! steps after lodgement (document checks and inspections). Items with no duty due carry no
//! payment time. The planted truth ([`ReleaseTruth`]) is the population median of the total time
//! (arrival to release) per office and per lane, computed from the same distributions by a large
//! independent simulation.

use std::collections::BTreeMap;

use mirador_schema::{col, day};
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::SynthError;

type R = Xoshiro256PlusPlus;

/// Median hours from arrival to lodgement at a normal office.
pub const ARRIVAL_TO_LODGEMENT_H: f64 = 5.0;
/// Median hours from lodgement to payment at a normal office, in the green lane.
pub const LODGEMENT_TO_PAYMENT_H: f64 = 4.0;
/// Median hours from payment to release at a normal office, in the green lane.
pub const PAYMENT_TO_RELEASE_H: f64 = 3.0;
/// Log-normal spread of each step.
const SIGMA: f64 = 0.6;

/// The office planted slow, and its factor on every step.
pub const SLOW_OFFICE: (&str, f64) = ("MLB", 2.6);
/// The lanes, their shares of the items and their factors on the steps after lodgement; `red`
/// (physical inspection) is the planted slow lane.
pub const LANES: [(&str, f64, f64); 3] = [("green", 0.62, 1.0), ("yellow", 0.25, 1.3), ("red", 0.13, 4.5)];
/// The planted slow lane.
pub const SLOW_LANE: &str = "red";

/// Draws used to compute the planted medians.
const TRUTH_DRAWS: usize = 400_000;

/// What was planted.
#[derive(Debug, Clone)]
pub struct ReleaseTruth {
    /// The slow office.
    pub slow_office: String,
    /// The slow lane.
    pub slow_lane: String,
    /// Population median of the total time (arrival to release), hours, per office.
    pub office_median_hours: BTreeMap<String, f64>,
    /// Population median of the total time, hours, per lane.
    pub lane_median_hours: BTreeMap<String, f64>,
}

fn normal(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn lognormal(rng: &mut R, median: f64) -> f64 {
    median * (SIGMA * normal(rng)).exp()
}

fn lane(rng: &mut R) -> usize {
    let mut x = rng.r#gen::<f64>();
    for (i, (_, share, _)) in LANES.iter().enumerate() {
        if x < *share {
            return i;
        }
        x -= share;
    }
    LANES.len() - 1
}

fn office_factor(office: &str) -> f64 {
    if office == SLOW_OFFICE.0 { SLOW_OFFICE.1 } else { 1.0 }
}

/// The three steps, hours: arrival to lodgement, lodgement to payment, payment to release.
fn steps(rng: &mut R, office: f64, lane: usize) -> [f64; 3] {
    let l = LANES[lane].2;
    [
        lognormal(rng, ARRIVAL_TO_LODGEMENT_H * office),
        lognormal(rng, LODGEMENT_TO_PAYMENT_H * office * l),
        lognormal(rng, PAYMENT_TO_RELEASE_H * office * l),
    ]
}

/// The release-time columns for `declarations` (a world's declarations frame): `lane` and the
/// four times as whole seconds since 1970-01-01 ([`mirador_schema::schemas::declaration_release_times`]),
/// row for row, and what was planted.
pub fn release_times(declarations: &DataFrame, seed: u64) -> Result<(DataFrame, ReleaseTruth), SynthError> {
    let offices: Vec<String> =
        declarations.column(col::OFFICE_ID)?.cast(&DataType::String)?.str()?.iter().map(|o| o.unwrap_or("-").to_owned()).collect();
    let dates = declarations.column(col::DATE)?.cast(&DataType::Int32)?;
    let dates = dates.i32()?;
    let duty = declarations.column(col::DUTY_USD)?.cast(&DataType::Float64)?;
    let duty = duty.f64()?;
    let mut rng = R::seed_from_u64(seed ^ 0x7E1E_A5E0);
    let n = declarations.height();
    let (mut lanes, mut arrived, mut lodged, mut paid, mut released) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let seconds = |hours: f64| (hours * 3_600.0).round() as i64;
    for (i, office) in offices.iter().enumerate() {
        let l = lane(&mut rng);
        let [a, p, r] = steps(&mut rng, office_factor(office), l);
        // Lodged during office hours (07:00–18:00) on the declaration's date, to the minute.
        let minute: i64 = rng.gen_range(7 * 60..18 * 60);
        let lodged_at = i64::from(dates.get(i).unwrap_or_default()) * 86_400 + minute * 60;
        lanes.push(LANES[l].0);
        arrived.push(lodged_at - seconds(a));
        lodged.push(lodged_at);
        paid.push((duty.get(i).unwrap_or_default() > 0.0).then(|| lodged_at + seconds(p)));
        released.push(lodged_at + seconds(p + r));
    }
    let frame = DataFrame::new_infer_height(vec![
        Column::new(col::LANE.into(), lanes),
        Column::new(col::ARRIVED_AT.into(), arrived),
        Column::new(col::LODGED_AT.into(), lodged),
        Column::new(col::PAID_AT.into(), paid),
        Column::new(col::RELEASED_AT.into(), released),
    ])?;
    Ok((frame, truth(&offices, seed)))
}

/// The population medians per office and per lane, by simulation (independent of the world's own
/// draws); the lane medians mix the offices in the world's proportions.
fn truth(offices: &[String], seed: u64) -> ReleaseTruth {
    let mut rng = R::seed_from_u64(seed ^ 0x7E1E_7207);
    let distinct: std::collections::BTreeSet<&str> = offices.iter().map(String::as_str).collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut office_median_hours = BTreeMap::new();
    for office in distinct {
        let totals = (0..TRUTH_DRAWS).map(|_| {
            let l = lane(&mut rng);
            steps(&mut rng, office_factor(office), l).iter().sum()
        });
        office_median_hours.insert(office.to_owned(), median(totals.collect()));
    }
    let mut lane_median_hours = BTreeMap::new();
    for (l, (name, _, _)) in LANES.iter().enumerate() {
        let totals = (0..TRUTH_DRAWS).map(|_| {
            let office = offices.get(rng.gen_range(0..offices.len().max(1))).map_or("-", String::as_str);
            steps(&mut rng, office_factor(office), l).iter().sum()
        });
        lane_median_hours.insert((*name).to_owned(), median(totals.collect()));
    }
    ReleaseTruth { slow_office: SLOW_OFFICE.0.to_owned(), slow_lane: SLOW_LANE.to_owned(), office_median_hours, lane_median_hours }
}

/// `declarations` with its release-time columns appended as a source file would carry them: the
/// lane, and each time as `YYYY-MM-DD HH:MM` text (empty when null). What written worlds hold.
pub fn with_release_times(declarations: &DataFrame, seed: u64) -> Result<DataFrame, SynthError> {
    let (times, _) = release_times(declarations, seed)?;
    let mut out = declarations.clone();
    out.with_column(times.column(col::LANE)?.clone())?;
    for name in [col::ARRIVED_AT, col::LODGED_AT, col::PAID_AT, col::RELEASED_AT] {
        let text: StringChunked = times.column(name)?.i64()?.iter().map(|s| s.map(stamp)).collect();
        out.with_column(text.with_name(name.into()).into_column())?;
    }
    Ok(out)
}

/// Seconds since 1970-01-01 as `YYYY-MM-DD HH:MM`.
pub fn stamp(seconds: i64) -> String {
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    format!("{} {:02}:{:02}", day::text(days as i32), rest / 3_600, rest % 3_600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_come_in_order_and_leave_the_world_unchanged() {
        let params = crate::SynthParams { declarations: 3_000, ..crate::SynthParams::small(4) };
        let world = crate::generate(&params).unwrap();
        let (times, truth) = release_times(&world.declarations, 4).unwrap();
        assert_eq!(times.height(), world.declarations.height());
        let get = |c: &str| times.column(c).unwrap().i64().unwrap().clone();
        let (a, l, p, r) = (get(col::ARRIVED_AT), get(col::LODGED_AT), get(col::PAID_AT), get(col::RELEASED_AT));
        for i in 0..times.height() {
            let (a, l, r) = (a.get(i).unwrap(), l.get(i).unwrap(), r.get(i).unwrap());
            assert!(a <= l && l <= r, "row {i}");
            if let Some(p) = p.get(i) {
                assert!(l <= p && p <= r, "row {i}");
            }
        }
        assert!(p.null_count() > 0 && p.null_count() < times.height());
        // The slow office and lane have the largest planted medians.
        let top = |m: &BTreeMap<String, f64>| m.iter().max_by(|x, y| x.1.total_cmp(y.1)).map(|(k, _)| k.clone()).unwrap();
        assert_eq!(top(&truth.office_median_hours), SLOW_OFFICE.0);
        assert_eq!(top(&truth.lane_median_hours), SLOW_LANE);
        // The generator's own columns are untouched by drawing the times.
        assert!(crate::generate(&params).unwrap().declarations.equals_missing(&world.declarations));
        let written = with_release_times(&world.declarations, 4).unwrap();
        assert!(written.select(world.declarations.get_column_names().into_iter().cloned()).unwrap().equals_missing(&world.declarations));
        assert_eq!(stamp(19_722 * 86_400 + 3_600 * 13 + 60 * 5), "2023-12-31 13:05");
    }
}
