use std::collections::HashSet;

use mirador_gap::{GapParams, analyse};
use mirador_schema::catalog::gap_by_cell;
use mirador_schema::col;
use mirador_synth::{SynthParams, generate};
use polars::prelude::*;

fn params() -> GapParams {
    GapParams { home_country: "KE".into(), ..GapParams::default() }
}

fn top_cells(df: &DataFrame, value: &str, n: usize) -> Vec<(String, String, String)> {
    let sorted = df.sort([value], SortMultipleOptions::new().with_order_descending(true)).unwrap();
    let h = sorted.column(col::HS6).unwrap().str().unwrap().clone();
    let p = sorted.column(col::PARTNER).unwrap().str().unwrap().clone();
    let y = sorted.column(col::PERIOD).unwrap().str().unwrap().clone();
    (0..n.min(sorted.height())).map(|i| (h.get(i).unwrap().into(), p.get(i).unwrap().into(), y.get(i).unwrap().into())).collect()
}

#[test]
fn estimated_lost_duty_matches_the_planted_total_and_finds_the_planted_cells() {
    let world = generate(&SynthParams::small(21)).unwrap();
    let r = analyse(&world.declarations, &world.mirror_flows, &world.tariffs, &params()).unwrap();
    let planted: f64 = world.truth.gaps.column("planted_lost_duty_usd").unwrap().f64().unwrap().sum().unwrap();
    let estimated: f64 = r.by_cell.column(gap_by_cell::LOST_DUTY_USD).unwrap().f64().unwrap().sum().unwrap();
    let rel = estimated / planted - 1.0;
    assert!(rel.abs() <= 0.10, "estimated {estimated:.0} vs planted {planted:.0} USD ({:+.1} %)", rel * 100.0);
    // Bounds bracket the estimate.
    let low: f64 = r.by_cell.column(gap_by_cell::LOST_DUTY_LOW_USD).unwrap().f64().unwrap().sum().unwrap();
    let high: f64 = r.by_cell.column(gap_by_cell::LOST_DUTY_HIGH_USD).unwrap().f64().unwrap().sum().unwrap();
    assert!(low <= estimated && estimated <= high, "{low} <= {estimated} <= {high}");

    let planted_top: HashSet<_> = top_cells(&world.truth.gaps, "planted_lost_duty_usd", 20).into_iter().collect();
    let estimated_top = top_cells(&r.by_cell, gap_by_cell::LOST_DUTY_USD, 20);
    let found = estimated_top.iter().filter(|c| planted_top.contains(*c)).count();
    assert!(found >= 16, "top-20 estimated cells hold {found} of the 20 planted ones");
    // The ranking column agrees with the ordering the auditors see.
    let rank = r.by_cell.column(gap_by_cell::GAP_RANK).unwrap().u32().unwrap().clone();
    assert_eq!(rank.get(0), Some(1));
}

#[test]
fn estimated_factors_are_close_to_the_planted_ones_and_the_non_reporter_is_flagged() {
    let world = generate(&SynthParams::small(22)).unwrap();
    let r = analyse(&world.declarations, &world.mirror_flows, &world.tariffs, &params()).unwrap();
    // The world's CIF/FOB factors lie in 1.06–1.10.
    for (partner, f) in &r.factors.by_partner {
        assert!((1.04..=1.12).contains(&f.factor), "{partner}: {f:?}");
    }
    let flags = r.by_cell.column(gap_by_cell::FLAGS).unwrap().str().unwrap().clone();
    let partner = r.by_cell.column(col::PARTNER).unwrap().str().unwrap().clone();
    for (f, p) in flags.iter().zip(partner.iter()) {
        if p == Some("PK") {
            assert!(f.unwrap().contains("partner_not_reporting"));
        }
    }
    // Every declaration gets an exposure row.
    assert_eq!(r.exposure.height(), world.declarations.height());
    let summary_periods = r.summary.column(col::PERIOD).unwrap().str().unwrap().clone();
    assert_eq!(summary_periods.iter().last().flatten(), Some("all"));
}

#[test]
fn declared_imports_can_come_from_declarations() {
    let world = generate(&SynthParams { declarations: 6_000, ..SynthParams::small(23) }).unwrap();
    let p = GapParams { declared_source: mirador_gap::DeclaredSource::Declarations, ..params() };
    let r = analyse(&world.declarations, &world.mirror_flows, &world.tariffs, &p).unwrap();
    assert_eq!(r.declared_source, "declarations");
    let declared: f64 = r.by_cell.column(gap_by_cell::DECLARED_VALUE_USD).unwrap().f64().unwrap().sum().unwrap();
    let total: f64 = world.declarations.column(col::VALUE_USD).unwrap().f64().unwrap().sum().unwrap();
    assert!((declared - total).abs() < 1e-6 * total);
}
