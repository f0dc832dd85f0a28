//! Seasonality and the planted revenue leak: the monthly volume follows the cycle, the leak's
//! chapter loses declared value (and duty) from its month while its mirror exports do not, and
//! the rest of the world is the one without the leak.

use std::collections::BTreeMap;

use mirador_schema::col;
use mirador_synth::{LeakParams, SynthParams, generate};
use polars::prelude::*;

fn strs(df: &DataFrame, c: &str) -> Vec<String> {
    df.column(c).unwrap().cast(&DataType::String).unwrap().str().unwrap().iter().map(|v| v.unwrap_or("").to_owned()).collect()
}

fn nums(df: &DataFrame, c: &str) -> Vec<f64> {
    df.column(c).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap_or(0.0)).collect()
}

fn seasonal(seed: u64, leak: Option<LeakParams>) -> SynthParams {
    SynthParams { months: 24, seasonality: Some(0.3), leak, ..SynthParams::small(seed) }
}

#[test]
fn the_monthly_volume_follows_the_yearly_cycle() {
    let world = generate(&seasonal(3, None)).unwrap();
    let mut per_month: BTreeMap<String, usize> = BTreeMap::new();
    for p in strs(&world.declarations, col::PERIOD) {
        *per_month.entry(p).or_default() += 1;
    }
    let n = |p: &str| per_month[p] as f64;
    assert_eq!(per_month.len(), 24);
    // November well above May, in both years; the two years alike.
    for y in ["2023", "2024"] {
        assert!(n(&format!("{y}-11")) > 1.6 * n(&format!("{y}-05")), "{per_month:?}");
    }
    assert!((n("2023-11") / n("2024-11") - 1.0).abs() < 0.05);
    // The partners' exports follow the same cycle (values are heavy-tailed: a quarter of each
    // year around the peak against the quarter around the trough).
    let m = &world.mirror_flows;
    let (flow, period, value) = (strs(m, col::FLOW), strs(m, col::PERIOD), nums(m, col::TRADE_VALUE_USD));
    let exports = |months: &[&str]| {
        (0..m.height()).filter(|&i| flow[i] == "export" && months.iter().any(|x| period[i].ends_with(x))).map(|i| value[i]).sum::<f64>()
    };
    let (peak, trough) = (exports(&["-10", "-11", "-12"]), exports(&["-04", "-05", "-06"]));
    assert!(peak > 1.3 * trough, "{peak} vs {trough}");
}

#[test]
fn the_leak_cuts_its_chapters_declared_value_but_not_its_mirror_exports() {
    let leak = LeakParams { chapter: "61".into(), period: "2024-05".into(), depth: 0.4 };
    let plain = generate(&seasonal(7, None)).unwrap();
    let leaky = generate(&seasonal(7, Some(leak))).unwrap();
    let (a, b) = (&plain.declarations, &leaky.declarations);
    assert_eq!(a.height(), b.height());
    let (period, hs6) = (strs(b, col::PERIOD), strs(b, col::HS6));
    let (va, vb) = (nums(a, col::VALUE_USD), nums(b, col::VALUE_USD));
    let (da, db) = (nums(a, col::DUTY_USD), nums(b, col::DUTY_USD));
    let (mut leaked, mut duty_before, mut duty_after) = (0, 0.0, 0.0);
    for i in 0..b.height() {
        if hs6[i].starts_with("61") && period[i].as_str() >= "2024-05" {
            leaked += 1;
            // The declared value is cut to 60 % (prices are rounded to the cent in their currency).
            assert!((vb[i] / va[i] - 0.6).abs() < 1e-3, "row {i}: {} vs {}", vb[i], va[i]);
            duty_before += da[i];
            duty_after += db[i];
        } else {
            assert_eq!((va[i], da[i]), (vb[i], db[i]), "row {i} outside the leak changed");
        }
    }
    assert!(leaked > 50, "{leaked}");
    assert!((duty_after / duty_before - 0.6).abs() < 1e-3);
    // Its items are fraud in the truth (undervaluation unless they carried another), with planted
    // lost duty.
    let kind = strs(&leaky.truth.declarations, "fraud_kind");
    let lost = nums(&leaky.truth.declarations, "planted_lost_duty_usd");
    let leak_rows: Vec<usize> = (0..b.height()).filter(|&i| hs6[i].starts_with("61") && period[i].as_str() >= "2024-05").collect();
    // (Items that already carried another fraud keep its kind; duty-free preferential imports
    // lose no duty.)
    assert!(leak_rows.iter().all(|&i| kind[i] != "none"));
    assert!(leak_rows.iter().filter(|&&i| lost[i] > 0.0).count() > leak_rows.len() / 2);
    assert!(leak_rows.iter().filter(|&&i| kind[i] == "undervaluation").count() > leak_rows.len() / 2);
    // The partners' exports of the chapter are the same as without the leak.
    let exports = |w: &mirador_synth::World| {
        let m = &w.mirror_flows;
        let (flow, hs, value) = (strs(m, col::FLOW), strs(m, col::HS_CODE), nums(m, col::TRADE_VALUE_USD));
        (0..m.height()).filter(|&i| flow[i] == "export" && hs[i].starts_with("61")).map(|i| value[i]).sum::<f64>()
    };
    assert!((exports(&leaky) / exports(&plain) - 1.0).abs() < 1e-9);
}

#[test]
fn a_leak_outside_the_world_is_a_parameter_error() {
    let leak = LeakParams { chapter: "61".into(), period: "2026-01".into(), depth: 0.4 };
    let err = generate(&seasonal(1, Some(leak))).err().unwrap().to_string();
    assert!(err.contains("leak-period"), "{err}");
    let err = generate(&SynthParams { seasonality: Some(1.5), ..SynthParams::small(1) }).err().unwrap().to_string();
    assert!(err.contains("seasonality"), "{err}");
}
