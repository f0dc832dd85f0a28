//! The `revenue_forecast` stage on synthetic worlds: the planted leak flagged within its first two
//! months with few false alarms, the outputs in their declared schemas, a short history forecast
//! without a season (noted), a too-short one skipped (noted).

use mirador_forecast::{ForecastParams, RevenueForecast, run_forecasts, truth::score_leak};
use mirador_pipeline::{Stage, StageContext, StageOutput};
use mirador_schema::{catalog, datasets};
use mirador_synth::{LeakParams, SynthParams, generate};
use polars::prelude::*;

fn run(world: &mirador_synth::World, params: &str) -> StageOutput {
    let dir = std::env::temp_dir().join(format!("mirador-forecast-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ctx = StageContext::standalone("revenue_forecast", &dir)
        .with_input(datasets::DECLARATIONS, world.declarations.clone())
        .with_input(datasets::MIRROR_FLOWS, world.mirror_flows.clone())
        .with_params(params.parse().unwrap());
    RevenueForecast.run(&ctx).unwrap()
}

fn dataset<'o>(out: &'o StageOutput, id: &str) -> &'o DataFrame {
    &out.datasets.iter().find(|(d, _)| *d == id).unwrap().1
}

/// Four years with a yearly cycle; chapter 61's goods declared at 60 % of their value from
/// 2026-05 (the example `forecast_truth`'s world, smaller).
fn leaky(seed: u64, declarations: usize) -> SynthParams {
    SynthParams {
        declarations,
        months: 48,
        seasonality: Some(0.3),
        leak: Some(LeakParams { chapter: "61".into(), period: "2026-05".into(), depth: 0.4 }),
        ..SynthParams::small(seed)
    }
}

#[test]
fn the_planted_leak_is_flagged_within_two_months_with_at_most_one_false_alarm_a_year_per_20_series() {
    let (mut false_alarms, mut checked, mut listed) = (0, 0, Vec::new());
    for seed in [3, 8] {
        let world = generate(&leaky(seed, 400_000)).unwrap();
        let o = run_forecasts(&world.declarations, &world.mirror_flows, &ForecastParams::default()).unwrap();
        assert!(o.seasonal);
        let leak_month = o.months.iter().position(|m| m == "2026-05").unwrap();
        let score = score_leak(&o, "61", leak_month, &o.alarmable);
        // Flagged within its first two months, by either alarm (the ratio to the mirror exports is
        // the steadier: the chapter's duty alone is lumpy).
        assert!(score.first_flag().is_some_and(|d| d <= 1), "seed {seed}: {score:?}");
        false_alarms += score.false_alarms;
        checked += score.checked_series_months;
        listed.extend(score.false_list);
    }
    let score = mirador_forecast::truth::LeakScore {
        duty_delay: None,
        mirror_delay: None,
        false_alarms,
        checked_series_months: checked,
        false_list: Vec::new(),
    };
    assert!(checked > 500, "{checked}");
    assert!(score.false_per_20_series_year() <= 1.0, "{false_alarms} false alarms in {checked} series-months: {listed:?}");
}

#[test]
fn without_a_leak_the_chapter_is_not_alarmed() {
    let world = generate(&SynthParams { leak: None, ..leaky(3, 120_000) }).unwrap();
    let o = run_forecasts(&world.declarations, &world.mirror_flows, &ForecastParams::default()).unwrap();
    let on_61 = o.alarms.iter().filter(|a| o.series[a.series].group == "61").count();
    assert_eq!(on_61, 0);
}

#[test]
fn the_outputs_have_their_declared_columns_and_the_metrics_say_what_was_done() {
    let world = generate(&leaky(5, 60_000)).unwrap();
    let out = run(&world, "");
    for id in [datasets::FORECAST_SERIES, datasets::FORECAST_ALARMS, datasets::FORECAST_ACCURACY] {
        let entry = catalog::get(id).unwrap();
        let df = dataset(&out, id);
        assert!(df.height() > 0, "{id} is empty");
        assert_eq!(catalog::differences(&(entry.schema)(), df.schema(), &[]), Vec::<String>::new(), "{id}");
    }
    assert_eq!(out.metrics["model"], serde_json::json!("MSTL(12)+AutoETS"));
    assert!(out.metrics.get("note").is_none());
    assert!(out.metrics["mean_mase"].as_f64().unwrap() > 0.0);
    // Each series has its 48 months and 3 future ones.
    let s = dataset(&out, datasets::FORECAST_SERIES);
    let future = s.column("future").unwrap().bool().unwrap().sum().unwrap_or(0) as usize;
    let series = out.metrics["series"].as_u64().unwrap() as usize;
    assert_eq!(s.height(), series * 48 + future);
    assert!(future >= series * 3 * 9 / 10, "{future} future rows for {series} series");
}

#[test]
fn a_year_of_history_is_forecast_without_a_season_and_says_so() {
    let world = generate(&SynthParams::small(2)).unwrap();
    let out = run(&world, "");
    assert_eq!(out.metrics["model"], serde_json::json!("AutoETS (non-seasonal)"));
    assert!(out.metrics["note"].as_str().unwrap().contains("fewer than the 24"));
    assert!(out.metrics.get("skipped").is_none());
    let acc = dataset(&out, datasets::FORECAST_ACCURACY);
    assert!(acc.height() > 0);
    assert_eq!(acc.column("mase_seasonal_naive").unwrap().null_count(), acc.height(), "no seasonal naive within a year");
}

#[test]
fn a_history_shorter_than_min_history_is_skipped_with_a_note() {
    let world = generate(&SynthParams { months: 3, declarations: 3_000, ..SynthParams::small(4) }).unwrap();
    let out = run(&world, "");
    assert!(out.metrics["skipped"].as_str().unwrap().contains("3 month(s)"));
    for id in [datasets::FORECAST_SERIES, datasets::FORECAST_ALARMS, datasets::FORECAST_ACCURACY] {
        assert_eq!(dataset(&out, id).height(), 0, "{id}");
    }
}
