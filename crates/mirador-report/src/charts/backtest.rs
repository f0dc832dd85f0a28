//! The backtest chart: the share of all fraudulent duty each inspection policy has found, week
//! after week of a replay (`mirador backtest`).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Chart, ChartId, DrawResult, LinearAxis, MUTED, Mark, PALETTE, draw_legend, house_mesh, plot_on, text, titled};

pub(crate) struct BacktestChart<'a> {
    /// (policy, cumulative share by week, week 1 first).
    pub(crate) curves: &'a [(String, Vec<f64>)],
    pub(crate) title: &'a str,
}

impl Chart for BacktestChart<'_> {
    fn id(&self) -> ChartId {
        ChartId::BacktestCumulative
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = titled(root, self.title, 20, 52)?;
        let (_, body_height) = body.dim_in_pixel();
        let legend_rows = self.curves.len().div_ceil(2) as u32;
        let (plot_area, legend_area) = body.split_vertically(body_height.saturating_sub(30 + 24 * legend_rows));
        let weeks = self.curves.iter().map(|(_, v)| v.len()).max().unwrap_or(1).max(1) as f64;
        let step = (weeks / 12.0).ceil().max(1.0);
        let x_ticks: Vec<f64> = (0..).map(|i| 1.0 + step * f64::from(i)).take_while(|w| *w <= weeks).collect();
        let y_ticks: Vec<f64> = (0..=10).map(|i| f64::from(i) / 10.0).collect();
        let mut chart = plot_on(&plot_area, 56, 84)
            .build_cartesian_2d(LinearAxis::new(0.5..weeks + 0.5, x_ticks), LinearAxis::new(0.0..1.0, y_ticks))?;
        house_mesh(
            chart
                .configure_mesh()
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
                .x_desc("Week of the replay")
                .y_desc("Fraudulent duty found so far (%)"),
            text(16),
            text(14),
        )
        .draw()?;
        let mut legend = Vec::new();
        for (k, (name, values)) in self.curves.iter().enumerate() {
            let color = if name == "random" { MUTED } else { PALETTE[k % PALETTE.len()] };
            let points: Vec<(f64, f64)> =
                values.iter().enumerate().map(|(w, v)| (w as f64 + 1.0, *v)).filter(|(_, v)| v.is_finite()).collect();
            if name == "random" {
                chart.draw_series(DashedLineSeries::new(points, 8, 6, color.stroke_width(2)))?;
                legend.push((Mark::Dashed(color, 2), name.replace('_', " ")));
            } else {
                chart.draw_series(LineSeries::new(points, color.stroke_width(3)))?;
                legend.push((Mark::Line(color, 3), name.replace('_', " ")));
            }
        }
        draw_legend(&legend_area, (110, 12), &legend, 300, 24)?;
        Ok(())
    }
}
