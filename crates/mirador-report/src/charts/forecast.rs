//! Revenue-forecast charts (BACUDA series 2): one per alarmed series, the monthly actuals with the
//! prediction interval of the forecast made the month before (and of the next months), the
//! alarmed months in red.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{ALERT, Chart, ChartId, DrawResult, INK, LinearAxis, Mark, PALETTE, draw_legend, house_mesh, plot_on, text, titled};
use crate::forecast::FlaggedSeries;
use crate::format::money_short;

/// One alarmed series.
pub(crate) struct ForecastChart<'a> {
    index: u8,
    s: &'a FlaggedSeries,
}

impl<'a> ForecastChart<'a> {
    pub(crate) fn new(index: usize, s: &'a FlaggedSeries) -> Option<Self> {
        (!s.periods.is_empty() && index < crate::forecast::MAX_FORECAST_CHARTS).then_some(ForecastChart { index: index as u8, s })
    }
}

/// A 1-2-5 step giving about six ticks up to `max`.
fn nice_step(max: f64) -> f64 {
    let raw = (max / 6.0).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(magnitude * 10.0)
}

impl Chart for ForecastChart<'_> {
    fn id(&self) -> ChartId {
        ChartId::ForecastAlarm(self.index)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let s = self.s;
        let measure = if s.measure == "duty" { "duty collected" } else { "declared value" };
        let body = titled(root, &format!("{}: monthly {measure} against its forecast", s.label), 22, 44)?;
        let (_, h) = body.dim_in_pixel();
        let (plot, legend_area) = body.split_vertically(h.saturating_sub(44));
        let n = s.periods.len();
        let max = s
            .actual
            .iter()
            .flatten()
            .copied()
            .chain(s.forecast.iter().flatten().map(|f| f.2))
            .filter(|v| v.is_finite())
            .fold(1.0, f64::max)
            * 1.08;
        let step = nice_step(max);
        let y_ticks: Vec<f64> = (0..).map(|i| f64::from(i) * step).take_while(|t| *t <= max).collect();
        // A tick every January (or every sixth month on short series).
        let every = if n > 24 { 12 } else { 3 };
        let x_ticks: Vec<f64> =
            (0..n).filter(|&i| s.periods[i].ends_with("-01") || (every < 12 && i % every == 0)).map(|i| i as f64).collect();
        let periods = &s.periods;
        let mut chart = plot_on(&plot, 52, 84)
            .build_cartesian_2d(LinearAxis::new(-0.5..n as f64 - 0.5, x_ticks), LinearAxis::new(0.0..max, y_ticks))?;
        house_mesh(
            chart
                .configure_mesh()
                .x_label_formatter(&|v| periods.get(v.round() as usize).cloned().unwrap_or_default())
                .y_label_formatter(&|v| money_short(*v))
                .x_desc("Month")
                .y_desc(format!("USD of {measure}")),
            text(16),
            text(14),
        )
        .draw()?;
        let band = PALETTE[0].mix(0.18);
        // The interval, one quad per pair of consecutive months that both have one.
        for i in 0..n.saturating_sub(1) {
            if let (Some(a), Some(b)) = (s.forecast[i], s.forecast[i + 1]) {
                let (x0, x1) = (i as f64, (i + 1) as f64);
                chart.draw_series(std::iter::once(Polygon::new(vec![(x0, a.1), (x1, b.1), (x1, b.2), (x0, a.2)], band.filled())))?;
            }
        }
        // A lone interval (a month between two without one) as a bar.
        for i in 0..n {
            let alone = (i == 0 || s.forecast[i - 1].is_none()) && (i + 1 == n || s.forecast[i + 1].is_none());
            if let (true, Some(f)) = (alone, s.forecast[i]) {
                chart.draw_series(std::iter::once(Rectangle::new([(i as f64 - 0.2, f.1), (i as f64 + 0.2, f.2)], band.filled())))?;
            }
        }
        let forecast: Vec<(f64, f64)> = s.forecast.iter().enumerate().filter_map(|(i, f)| f.map(|f| (i as f64, f.0))).collect();
        chart.draw_series(forecast.iter().map(|&p| Circle::new(p, 3, PALETTE[0].filled())))?;
        let actual: Vec<(f64, f64)> = s.actual.iter().enumerate().filter_map(|(i, a)| a.map(|a| (i as f64, a))).collect();
        chart.draw_series(LineSeries::new(actual.iter().copied(), INK.stroke_width(2)))?;
        let alarmed: Vec<(f64, f64)> =
            actual.iter().copied().filter(|(i, _)| s.alarms.get(*i as usize).is_some_and(|a| !a.is_empty())).collect();
        chart.draw_series(alarmed.iter().map(|&p| Circle::new(p, 7, ALERT.filled())))?;
        for (i, lower) in s.alarm_lower.iter().enumerate() {
            if let Some(l) = lower {
                let x = i as f64;
                chart.draw_series(std::iter::once(PathElement::new(vec![(x - 0.35, *l), (x + 0.35, *l)], ALERT.stroke_width(3))))?;
            }
        }
        let legend = vec![
            (Mark::Line(INK, 2), "actual".to_owned()),
            (Mark::Dot(PALETTE[0]), "forecast made the month before".to_owned()),
            (Mark::Swatch(band.to_rgba().into_rgb()), "prediction interval".to_owned()),
            (Mark::Dot(ALERT), "alarm".to_owned()),
            (Mark::Line(ALERT, 3), "bound it fell below".to_owned()),
        ];
        draw_legend(&legend_area, (40, 20), &legend, 150, 22)?;
        Ok(())
    }
}

trait IntoRgb {
    fn into_rgb(self) -> RGBColor;
}

impl IntoRgb for RGBAColor {
    /// The colour as drawn on white.
    fn into_rgb(self) -> RGBColor {
        let RGBAColor(r, g, b, a) = self;
        let over = |c: u8| (f64::from(c) * a + 255.0 * (1.0 - a)).round() as u8;
        RGBColor(over(r), over(g), over(b))
    }
}
