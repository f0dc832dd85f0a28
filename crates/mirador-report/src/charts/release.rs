//! Release-time charts (BACUDA series 7): where the time goes between arrival and release, and
//! the distribution of the total time per office and lane against the service level.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{
    ALERT, Chart, ChartId, DrawResult, INK, LinearAxis, MUTED, Mark, PALETTE, anchored, draw_legend, house_mesh, plot_on, text, titled,
};
use crate::data::ReleaseFigures;

/// The steps, as the legend names them.
const STEPS: [&str; 3] = ["arrival to lodgement", "lodgement to payment", "payment to release"];

/// Mean hours of each step, stacked, per group (all, offices, lanes).
pub(crate) struct StepChart<'a> {
    r: &'a ReleaseFigures,
}

impl<'a> StepChart<'a> {
    pub(crate) fn new(r: &'a ReleaseFigures) -> Option<Self> {
        (!r.steps.is_empty()).then_some(StepChart { r })
    }
}

impl Chart for StepChart<'_> {
    fn id(&self) -> ChartId {
        ChartId::ReleaseSteps
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = titled(root, "Where the release time goes: mean hours of each step", 22, 44)?;
        let (_, h) = body.dim_in_pixel();
        let (plot, legend_area) = body.split_vertically(h.saturating_sub(44));
        let steps = &self.r.steps;
        let max = steps.iter().map(|(_, s)| s.iter().sum::<f64>()).fold(1.0, f64::max) * 1.4;
        let labels: Vec<String> = steps.iter().map(|(g, _)| if g == "all" { "all offices".to_owned() } else { g.clone() }).collect();
        let n = steps.len();
        let mut chart = hour_rows(&plot, max, &labels, 110, "Hours (mean per declaration item with all four times)")?;
        for (i, (_, s)) in steps.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let mut x = 0.0;
            for (k, hours) in s.iter().enumerate() {
                chart.draw_series(std::iter::once(Rectangle::new([(x, y - 0.32), (x + hours, y + 0.32)], PALETTE[k].filled())))?;
                x += hours;
            }
            let total: f64 = s.iter().sum();
            let shares =
                s.iter().map(|h| format!("{:.0} %", if total > 0.0 { h / total * 100.0 } else { 0.0 })).collect::<Vec<_>>().join(" · ");
            chart.draw_series(std::iter::once(Text::new(
                format!("{total:.1} h ({shares})"),
                (x + max * 0.01, y),
                anchored(&text(13), HPos::Left, VPos::Center),
            )))?;
        }
        let legend: Vec<(Mark, String)> = STEPS.iter().enumerate().map(|(k, s)| (Mark::Swatch(PALETTE[k]), (*s).to_owned())).collect();
        draw_legend(&legend_area, (120, 20), &legend, 240, 22)?;
        Ok(())
    }
}

/// Median and p90 of the total time per office and lane, with the service levels.
pub(crate) struct DistributionChart<'a> {
    r: &'a ReleaseFigures,
}

impl<'a> DistributionChart<'a> {
    pub(crate) fn new(r: &'a ReleaseFigures) -> Option<Self> {
        (!r.groups.is_empty()).then_some(DistributionChart { r })
    }
}

impl Chart for DistributionChart<'_> {
    fn id(&self) -> ChartId {
        ChartId::ReleaseDistributions
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = titled(root, "Time from arrival to release per office and lane: median and p90", 22, 44)?;
        let (_, h) = body.dim_in_pixel();
        let (plot, legend_area) = body.split_vertically(h.saturating_sub(44));
        let g = &self.r.groups;
        let (sl, sl90) = self.r.service_level_hours;
        let max = g.iter().map(|x| x.p90_hours).chain([sl, sl90]).filter(|v| v.is_finite()).fold(1.0, f64::max) * 1.08;
        let labels: Vec<String> = g.iter().map(|x| format!("{} {}", x.dimension, x.group)).collect();
        let n = g.len();
        let mut chart = hour_rows(&plot, max, &labels, 130, "Hours from arrival to release")?;
        for (i, x) in g.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let color = if x.breach { ALERT } else { PALETTE[0] };
            chart.draw_series(std::iter::once(Rectangle::new([(0.0, y - 0.3), (x.median_hours, y + 0.3)], color.filled())))?;
            chart.draw_series(std::iter::once(PathElement::new(vec![(x.median_hours, y), (x.p90_hours, y)], INK.stroke_width(2))))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x.p90_hours, y - 0.25), (x.p90_hours, y + 0.25)],
                INK.stroke_width(2),
            )))?;
        }
        let top = n as f64 - 0.5;
        chart.draw_series(DashedLineSeries::new([(sl, -0.5), (sl, top)], 8, 6, ALERT.stroke_width(2)))?;
        chart.draw_series(DashedLineSeries::new([(sl90, -0.5), (sl90, top)], 3, 5, MUTED.stroke_width(2)))?;
        let legend = vec![
            (Mark::Swatch(PALETTE[0]), "median, within the service level".to_owned()),
            (Mark::Swatch(ALERT), "median, breaching".to_owned()),
            (Mark::Line(INK, 2), "to the p90".to_owned()),
            (Mark::Dashed(ALERT, 2), format!("median target {sl:.0} h")),
            (Mark::Dashed(MUTED, 2), format!("p90 target {sl90:.0} h")),
        ];
        draw_legend(&legend_area, (40, 20), &legend, 150, 22)?;
        Ok(())
    }
}

/// A round tick step giving about six ticks up to `max`.
fn nice_step(max: f64) -> f64 {
    let raw = max / 6.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(magnitude * 10.0)
}

/// A chart of one row per label, the first on top, over `0..max` hours (ticks at a nice step),
/// its mesh drawn with the labels in a `label_width`-pixel area: what both release-time charts
/// draw on.
fn hour_rows<'a, DB: DrawingBackend>(
    plot: &'a DrawingArea<DB, Shift>,
    max: f64,
    labels: &[String],
    label_width: u32,
    x_desc: &str,
) -> Result<ChartContext<'a, DB, Cartesian2d<LinearAxis, LinearAxis>>, DrawingAreaErrorKind<DB::ErrorType>> {
    let step = nice_step(max);
    let ticks: Vec<f64> = (0..).map(|i| f64::from(i) * step).take_while(|t| *t <= max).collect();
    let n = labels.len();
    let mut chart = plot_on(plot, 52, label_width).build_cartesian_2d(LinearAxis::new(0.0..max, ticks), LinearAxis::categories(n))?;
    house_mesh(
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| labels.get(n - 1 - v.round() as usize).cloned().unwrap_or_default())
            .x_desc(x_desc),
        text(16),
        text(14),
    )
    .draw()?;
    Ok(chart)
}
