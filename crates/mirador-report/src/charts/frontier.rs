//! The precision–revenue frontier: what each ranking and the inspection list find at every share
//! of declarations inspected, precision against the share of the fraudulent duty recovered.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{ALERT, Chart, ChartId, DrawResult, INK, LinearAxis, Mark, PALETTE, draw_legend, house_mesh, plot_on, text, titled};
use crate::data::Frontier;

pub(crate) struct FrontierChart<'a> {
    frontier: &'a Frontier,
}

impl<'a> FrontierChart<'a> {
    pub(crate) fn new(frontier: &'a Frontier) -> Option<Self> {
        frontier.curves.iter().any(|c| !c.points.is_empty()).then_some(Self { frontier })
    }
}

/// The legend label of a ranking of `fraud_evaluation`.
pub(crate) fn ranking_label(ranking: &str) -> String {
    match ranking {
        "probability" => "ranked by fraud probability".to_owned(),
        "expected_duty" => "ranked by probability × duty".to_owned(),
        "selection" => "inspection list (shares of the budget)".to_owned(),
        other => format!("ranked by {}", other.replace('_', " ")),
    }
}

impl Chart for FrontierChart<'_> {
    fn id(&self) -> ChartId {
        ChartId::SelectionFrontier
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let f = self.frontier;
        let title = format!("Precision against revenue recovered, {} split (points: 1, 2, 5, 10, 20 % inspected)", f.split);
        let body = titled(root, &title, 20, 52)?;
        let (_, body_height) = body.dim_in_pixel();
        let (plot_area, legend_area) = body.split_vertically(body_height.saturating_sub(78));
        let ticks: Vec<f64> = (0..=10).map(|i| f64::from(i) / 10.0).collect();
        let mut chart =
            plot_on(&plot_area, 56, 84).build_cartesian_2d(LinearAxis::new(0.0..1.0, ticks.clone()), LinearAxis::new(0.0..1.0, ticks))?;
        house_mesh(
            chart
                .configure_mesh()
                .x_label_formatter(&|v| format!("{:.0} %", v * 100.0))
                .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
                .x_desc("Revenue@n%: share of the fraudulent duty recovered")
                .y_desc("Precision@n%"),
            text(16),
            text(14),
        )
        .draw()?;
        let mut legend = Vec::new();
        for (k, curve) in f.curves.iter().enumerate() {
            let color = if curve.ranking == "selection" { ALERT } else { PALETTE[k % PALETTE.len()] };
            let points: Vec<(f64, f64)> =
                curve.points.iter().map(|p| (p.revenue, p.precision)).filter(|(x, y)| x.is_finite() && y.is_finite()).collect();
            chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(3)))?;
            chart.draw_series(points.iter().map(|&point| Circle::new(point, 4, color.filled())))?;
            legend.push((Mark::Line(color, 3), ranking_label(&curve.ranking)));
        }
        if let Some(c) = f.chosen.filter(|c| c.revenue.is_finite() && c.precision.is_finite()) {
            chart.draw_series(std::iter::once(Circle::new((c.revenue, c.precision), 11, INK.stroke_width(3))))?;
            legend.push((Mark::Line(INK, 3), format!("ringed: the inspection list at its budget, {:.0} %", c.n_pct)));
        }
        draw_legend(&legend_area, (110, 18), &legend, 440, 24)?;
        Ok(())
    }
}
