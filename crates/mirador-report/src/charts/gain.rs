//! Gain chart of the fraud model: what inspecting the top n % of declarations buys.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{ALERT, Chart, ChartId, DrawResult, LinearAxis, MUTED, Mark, PALETTE, draw_legend, house_mesh, plot_on, text, titled};
use crate::data::Gain;
use crate::format::percent;

pub(crate) struct GainChart<'a> {
    gain: &'a Gain,
}

impl<'a> GainChart<'a> {
    pub(crate) fn new(gain: &'a Gain) -> Option<Self> {
        let any_curve = [&gain.precision, &gain.recall, &gain.revenue, &gain.revenue_expected_duty].iter().any(|curve| !curve.is_empty());
        (!gain.n_pct.is_empty() && any_curve).then_some(Self { gain })
    }

    /// (legend label, values, colour) of each curve present.
    fn curves(&self) -> Vec<(&'static str, &'a [f64], RGBColor)> {
        let g = self.gain;
        [
            ("precision@n% (ranked by fraud probability)", g.precision.as_slice(), PALETTE[0]),
            ("recall@n% (ranked by fraud probability)", g.recall.as_slice(), PALETTE[2]),
            ("revenue@n% (ranked by fraud probability)", g.revenue.as_slice(), PALETTE[1]),
            ("revenue@n% (ranked by probability × expected duty)", g.revenue_expected_duty.as_slice(), ALERT),
        ]
        .into_iter()
        .filter(|(_, values, _)| !values.is_empty())
        .collect()
    }
}

impl Chart for GainChart<'_> {
    fn id(&self) -> ChartId {
        ChartId::GainChart
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let g = self.gain;
        let title = match g.auc {
            Some(auc) if auc.is_finite() => {
                format!("Fraud model gain on the {} split (ROC AUC {auc:.3})", g.split)
            }
            _ => format!("Fraud model gain on the {} split", g.split),
        };
        let body = titled(root, &title, 22, 52)?;
        let (_, body_height) = body.dim_in_pixel();
        let (plot_area, legend_area) = body.split_vertically(body_height.saturating_sub(78));

        let x_max = g.n_pct.iter().copied().filter(|v| v.is_finite()).fold(1.0, f64::max);
        let x_ticks: Vec<f64> = if g.n_pct.len() <= 25 {
            g.n_pct.iter().copied().filter(|v| v.is_finite()).collect()
        } else {
            (0..=10).map(|i| (x_max * f64::from(i) / 10.0).round()).collect()
        };
        let y_ticks: Vec<f64> = (0..=10).map(|i| f64::from(i) / 10.0).collect();

        let mut chart = plot_on(&plot_area, 56, 84)
            .build_cartesian_2d(LinearAxis::new(0.0..x_max + 1.0, x_ticks), LinearAxis::new(0.0..1.0, y_ticks))?;
        house_mesh(
            chart
                .configure_mesh()
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
                .x_desc("Declarations inspected: top n % of the ranking (%)")
                .y_desc("Precision, recall or revenue share (%)"),
            text(16),
            text(14),
        )
        .draw()?;

        if g.base_rate.is_finite() {
            chart.draw_series(DashedLineSeries::new([(0.0, g.base_rate), (x_max + 1.0, g.base_rate)], 8, 6, MUTED.stroke_width(2)))?;
        }
        let mut legend = Vec::new();
        for (label, values, color) in self.curves() {
            let points: Vec<(f64, f64)> =
                g.n_pct.iter().zip(values).map(|(&n, &v)| (n, v)).filter(|(n, v)| n.is_finite() && v.is_finite()).collect();
            chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(3)))?;
            chart.draw_series(points.iter().map(|&point| Circle::new(point, 4, color.filled())))?;
            legend.push((Mark::Line(color, 3), label.to_owned()));
        }
        if g.base_rate.is_finite() {
            legend.push((Mark::Dashed(MUTED, 2), format!("base fraud rate ({}): precision of random inspection", percent(g.base_rate, 1))));
        }
        draw_legend(&legend_area, (110, 18), &legend, 440, 24)?;
        Ok(())
    }
}
