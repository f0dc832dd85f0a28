//! The revenue forecasts on seasonal synthetic worlds with a planted leak: for each seed, the
//! month the leak is flagged (0: its first month), the false alarms per 20 series per year, and
//! the rolling-origin backtest's mean MASE beside the seasonal-naive forecast's.
//!
//!     cargo run --release -p mirador-forecast --example forecast_truth -- 42 7 11
//!
//! The world: 48 months from 2023-01, a yearly cycle of amplitude 0.3, chapter 61's goods
//! declared at 60 % of their value from 2026-05 (`mirador synth --months 48 --seasonality 0.3
//! --leak-chapter 61 --leak-period 2026-05 --leak-depth 0.4`). Set DECLARATIONS to change its
//! size (default 1,000,000: about 20,000 items a month), LEVEL the intervals' coverage (default the stage's).

use mirador_forecast::{ForecastParams, mean_mase, run_forecasts, truth::score_leak};
use mirador_synth::{LeakParams, SynthParams, generate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seeds: Vec<u64> = std::env::args().skip(1).filter_map(|s| s.parse().ok()).collect();
    let seeds = if seeds.is_empty() { vec![42] } else { seeds };
    let declarations = std::env::var("DECLARATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let (chapter, period) = ("61", "2026-05");
    println!(
        "| seed | declarations | series checked | leak flagged (months after its start) | by duty below forecast | by value against mirror | false alarms / 20 series / year | mean MASE | seasonal-naive MASE | improvement |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut p = ForecastParams::default();
    if let Some(level) = std::env::var("LEVEL").ok().and_then(|v| v.parse().ok()) {
        p.level = level;
    }
    let (mut total_false, mut total_checked) = (0, 0);
    for seed in seeds {
        let params = SynthParams {
            seed,
            declarations,
            months: 48,
            seasonality: Some(0.3),
            leak: Some(LeakParams { chapter: chapter.into(), period: period.into(), depth: 0.4 }),
            ..SynthParams::small(seed)
        };
        let world = generate(&params)?;
        let o = run_forecasts(&world.declarations, &world.mirror_flows, &p)?;
        let leak_month = o.months.iter().position(|m| m == period).ok_or("leak month not in the history")?;
        let score = score_leak(&o, chapter, leak_month, &o.alarmable);
        total_false += score.false_alarms;
        total_checked += score.checked_series_months;
        let (mase, naive, _) = mean_mase(&o).ok_or("no series scored")?;
        let show = |d: Option<usize>| d.map_or("not flagged".to_owned(), |d| d.to_string());
        println!(
            "| {seed} | {declarations} | {} | {} | {} | {} | {:.2} ({} in {} series-months) | {mase:.3} | {naive:.3} | {:.1} % |",
            o.alarmable.iter().filter(|a| **a).count(),
            show(score.first_flag()),
            show(score.duty_delay),
            show(score.mirror_delay),
            score.false_per_20_series_year(),
            score.false_alarms,
            score.checked_series_months,
            100.0 * (1.0 - mase / naive)
        );
        if std::env::var_os("VERBOSE").is_some() {
            for a in &o.alarms {
                let s = &o.series[a.series];
                eprintln!(
                    "  {} {} {} {} {}: {:.0} < {:.0} (forecast {:.0})",
                    o.months[a.month], s.dimension, s.group, s.measure, a.kind, a.actual, a.lower, a.forecast
                );
            }
        }
    }
    let all = mirador_forecast::truth::LeakScore {
        duty_delay: None,
        mirror_delay: None,
        false_alarms: total_false,
        checked_series_months: total_checked,
        false_list: Vec::new(),
    };
    println!(
        "\nAll seeds: {total_false} false alarms in {total_checked} series-months, {:.2} per 20 series per year.",
        all.false_per_20_series_year()
    );
    Ok(())
}
