//! Mirror scatter: declared imports vs partner-reported exports per HS6 × partner cell.
//!
//! Cells above the y = x line are those where the partner reports shipping more than was
//! declared on arrival; point size and colour grow with the duty lost on the difference.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{Chart, ChartId, DrawResult, GRID, INK, MUTED, anchored, blend, bold, house_mesh, log_tick_label, log_ticks, text, titled};
use crate::data::MirrorPoint;
use crate::format::{money_short, truncate};

/// Cells labelled with their text.
const LABELLED: usize = 8;
const LOW: RGBColor = RGBColor(253, 212, 158);
const HIGH: RGBColor = RGBColor(153, 0, 13);
const NO_LOSS: RGBColor = RGBColor(160, 160, 160);
const MIN_RADIUS: f64 = 3.0;
const MAX_RADIUS: f64 = 15.0;

pub(crate) struct MirrorChart<'a> {
    /// Cells with positive, finite values (the only ones a log-log plot can show).
    points: Vec<&'a MirrorPoint>,
    max_lost: f64,
}

impl<'a> MirrorChart<'a> {
    pub(crate) fn new(cells: &'a [MirrorPoint]) -> Option<Self> {
        let points: Vec<&MirrorPoint> = cells
            .iter()
            .filter(|c| c.declared_usd.is_finite() && c.mirror_cif_usd.is_finite() && c.declared_usd > 0.0 && c.mirror_cif_usd > 0.0)
            .collect();
        if points.is_empty() {
            return None;
        }
        let max_lost = points.iter().map(|p| lost(p)).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
        Some(Self { points, max_lost })
    }

    /// 0..1 position of a lost-duty value on the size/colour scale (square root, so the
    /// point area, not its radius, is proportional to the loss).
    fn scale(&self, lost_usd: f64) -> f64 {
        (lost_usd / self.max_lost).clamp(0.0, 1.0).sqrt()
    }

    fn radius(&self, point: &MirrorPoint) -> i32 {
        let lost = lost(point);
        if lost > 0.0 { (MIN_RADIUS + (MAX_RADIUS - MIN_RADIUS) * self.scale(lost)).round() as i32 } else { MIN_RADIUS as i32 }
    }

    fn color(&self, point: &MirrorPoint) -> RGBColor {
        let lost = lost(point);
        if lost > 0.0 { blend(LOW, HIGH, self.scale(lost)) } else { NO_LOSS }
    }
}

fn lost(point: &MirrorPoint) -> f64 {
    if point.lost_duty_usd.is_finite() { point.lost_duty_usd } else { 0.0 }
}

/// Axis-aligned pixel box, for keeping labels apart.
#[derive(Debug, Clone, Copy)]
struct PixelBox {
    x0: i32,
    y0: i32,
    x1: i32,
    y1: i32,
}

impl PixelBox {
    fn overlaps(&self, other: &Self) -> bool {
        self.x0 < other.x1 && other.x0 < self.x1 && self.y0 < other.y1 && other.y0 < self.y1
    }

    fn inside(&self, x: &std::ops::Range<i32>, y: &std::ops::Range<i32>) -> bool {
        self.x0 >= x.start && self.x1 <= x.end && self.y0 >= y.start && self.y1 <= y.end
    }
}

impl Chart for MirrorChart<'_> {
    fn id(&self) -> ChartId {
        ChartId::MirrorScatter
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (low, high) = self
            .points
            .iter()
            .flat_map(|p| [p.declared_usd, p.mirror_cif_usd])
            .fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        // Same range on both axes so the diagonal is the true y = x line; padding keeps the
        // biggest points and their labels inside the frame.
        let (low, high) = (low / 2.0, high * 2.5);
        let ticks = log_ticks(low, high);

        let body = titled(root, "Declared imports vs partner-reported exports per HS6 × partner cell", 22, 52)?;
        let (plot_area, scale_area) = body.split_horizontally(880);
        let mut chart = ChartBuilder::on(&plot_area)
            .margin_left(12)
            .margin_right(16)
            .margin_bottom(12)
            .x_label_area_size(64)
            .y_label_area_size(96)
            .build_cartesian_2d((low..high).log_scale().with_key_points(ticks.clone()), (low..high).log_scale().with_key_points(ticks))?;
        house_mesh(
            chart
                .configure_mesh()
                .x_label_formatter(&|v| log_tick_label(*v))
                .y_label_formatter(&|v| log_tick_label(*v))
                .x_desc("Declared imports, CIF (USD, log scale)")
                .y_desc("Partner-reported exports, CIF (USD, log scale)"),
            text(16),
            text(14),
        )
        .draw()?;

        chart
            .draw_series(DashedLineSeries::new([(low, low), (high, high)], 8, 6, MUTED.stroke_width(2)))?
            .label("y = x: partner reports what was declared")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], MUTED.stroke_width(2)));

        let mut order: Vec<&MirrorPoint> = self.points.clone();
        // Smallest losses first so the largest points are drawn on top.
        order.sort_by(|a, b| lost(a).total_cmp(&lost(b)));
        let (no_loss, with_loss): (Vec<&MirrorPoint>, Vec<&MirrorPoint>) = order.iter().partition(|p| lost(p) <= 0.0);
        let outline = |p: &MirrorPoint| {
            Circle::new((p.declared_usd, p.mirror_cif_usd), self.radius(p), blend(self.color(p), BLACK, 0.35).stroke_width(1))
        };
        if !no_loss.is_empty() {
            chart
                .draw_series(
                    no_loss.iter().map(|p| Circle::new((p.declared_usd, p.mirror_cif_usd), self.radius(p), NO_LOSS.mix(0.85).filled())),
                )?
                .label("cell without lost duty")
                .legend(|(x, y)| Circle::new((x + 10, y), 4, NO_LOSS.filled()));
            chart.draw_series(no_loss.iter().map(|p| outline(p)))?;
        }
        if !with_loss.is_empty() {
            chart
                .draw_series(
                    with_loss
                        .iter()
                        .map(|p| Circle::new((p.declared_usd, p.mirror_cif_usd), self.radius(p), self.color(p).mix(0.85).filled())),
                )?
                .label("cell with lost duty (size and colour: amount)")
                .legend(|(x, y)| Circle::new((x + 10, y), 6, blend(LOW, HIGH, 0.6).filled()));
            chart.draw_series(with_loss.iter().map(|p| outline(p)))?;
        }

        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .margin(12)
            .label_font(text(14))
            .background_style(WHITE.mix(0.9))
            .border_style(GRID)
            .draw()?;

        self.draw_labels(root, &chart)?;
        if self.points.iter().any(|p| lost(p) > 0.0) {
            self.draw_scale(root, scale_area.get_pixel_range().0.start, &chart)?;
        }
        Ok(())
    }
}

type LogAxis = plotters::coord::combinators::WithKeyPoints<plotters::coord::combinators::LogCoord<f64>>;

impl MirrorChart<'_> {
    /// Labels the largest gaps, trying several spots around each point so labels neither
    /// overlap each other nor leave the plot.
    fn draw_labels<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &ChartContext<'_, DB, Cartesian2d<LogAxis, LogAxis>>,
    ) -> DrawResult<DB> {
        let mut largest: Vec<&MirrorPoint> = self.points.iter().copied().filter(|p| lost(p) > 0.0).collect();
        largest.sort_by(|a, b| lost(b).total_cmp(&lost(a)).then_with(|| a.label.cmp(&b.label)));
        largest.truncate(LABELLED);

        let (x_range, y_range) = chart.plotting_area().get_pixel_range();
        let style = text(13);
        let mut taken: Vec<PixelBox> = largest
            .iter()
            .map(|p| {
                let (px, py) = chart.backend_coord(&(p.declared_usd, p.mirror_cif_usd));
                let r = self.radius(p);
                PixelBox { x0: px - r, y0: py - r, x1: px + r, y1: py + r }
            })
            .collect();

        for point in &largest {
            let label = truncate(&point.label, 32);
            let (w, h) = root.estimate_text_size(&label, &style)?;
            let (w, h) = (w as i32 + 6, h as i32 + 4);
            let (px, py) = chart.backend_coord(&(point.declared_usd, point.mirror_cif_usd));
            let gap = self.radius(point) + 4;
            // Top-left corners of the candidate boxes: right, left, above, below, diagonals.
            let candidates = [
                (px + gap, py - h / 2),
                (px - gap - w, py - h / 2),
                (px - w / 2, py - gap - h),
                (px - w / 2, py + gap),
                (px + gap, py - gap - h / 2),
                (px - gap - w, py - gap - h / 2),
                (px + gap, py + gap - h / 2),
                (px - gap - w, py + gap - h / 2),
            ];
            let boxes: Vec<PixelBox> = candidates.iter().map(|&(x0, y0)| PixelBox { x0, y0, x1: x0 + w, y1: y0 + h }).collect();
            let chosen = boxes
                .iter()
                .find(|b| b.inside(&x_range, &y_range) && !taken.iter().any(|t| t.overlaps(b)))
                .or_else(|| boxes.iter().find(|b| b.inside(&x_range, &y_range)))
                .copied()
                .unwrap_or(boxes[0]);
            taken.push(chosen);
            root.draw(&Rectangle::new([(chosen.x0, chosen.y0), (chosen.x1, chosen.y1)], WHITE.mix(0.8).filled()))?;
            root.draw_text(&label, &anchored(&style, HPos::Left, VPos::Center), (chosen.x0 + 3, i32::midpoint(chosen.y0, chosen.y1)))?;
        }
        Ok(())
    }

    /// Colour scale for lost duty, right of the plot, starting at pixel column `left`.
    fn draw_scale<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        left: i32,
        chart: &ChartContext<'_, DB, Cartesian2d<LogAxis, LogAxis>>,
    ) -> DrawResult<DB> {
        let (_, y_range) = chart.plotting_area().get_pixel_range();
        let x0 = left + 10;
        let top = y_range.start + 50;
        let bottom = y_range.end - 10;
        area.draw_text("Lost duty", &anchored(&bold(14), HPos::Left, VPos::Bottom), (x0, top - 26))?;
        area.draw_text("(USD)", &anchored(&text(14), HPos::Left, VPos::Bottom), (x0, top - 8))?;
        let steps = 60;
        let step_height = f64::from(bottom - top) / f64::from(steps);
        for step in 0..steps {
            let t = (f64::from(step) + 0.5) / f64::from(steps);
            let y1 = bottom - (f64::from(step) * step_height) as i32;
            let y0 = bottom - (f64::from(step + 1) * step_height) as i32;
            area.draw(&Rectangle::new([(x0, y0), (x0 + 18, y1)], blend(LOW, HIGH, t).filled()))?;
        }
        area.draw(&Rectangle::new([(x0, top), (x0 + 18, bottom)], INK.stroke_width(1)))?;
        // Round amounts, placed on the square-root scale the points use.
        for value in scale_ticks(self.max_lost) {
            let y = bottom - (f64::from(bottom - top) * self.scale(value)).round() as i32;
            area.draw(&PathElement::new(vec![(x0 + 18, y), (x0 + 23, y)], INK))?;
            area.draw_text(&money_short(value), &anchored(&text(13), HPos::Left, VPos::Center), (x0 + 27, y))?;
        }
        Ok(())
    }
}

/// Round 1-2-5 amounts up to `max` for the colour scale, at least 8 % of its height apart
/// (positions are on a square-root scale, so small amounts would otherwise crowd at the
/// bottom).
fn scale_ticks(max: f64) -> Vec<f64> {
    const MIN_TICK_GAP: f64 = 0.08;
    if !(max.is_finite() && max > 0.0) {
        return vec![0.0];
    }
    let mut candidates = vec![0.0];
    let top = max.log10().floor() as i32;
    for exponent in (top - 4)..=top {
        for step in [1.0, 2.0, 5.0] {
            let value = step * 10f64.powi(exponent);
            if value <= max {
                candidates.push(value);
            }
        }
    }
    let mut ticks: Vec<f64> = Vec::new();
    // Walk from the top down so the largest round amount is always shown; zero always is.
    for value in candidates.into_iter().rev() {
        let position = (value / max).sqrt();
        let clear_of_zero = value == 0.0 || position >= MIN_TICK_GAP;
        let far_enough = ticks.last().is_none_or(|last| (last / max).sqrt() - position >= MIN_TICK_GAP);
        if clear_of_zero && far_enough {
            ticks.push(value);
        }
    }
    ticks.reverse();
    ticks
}

#[cfg(test)]
mod tests {
    use super::scale_ticks;

    #[test]
    fn scale_ticks_are_round_and_spread() {
        let ticks = scale_ticks(45e6);
        assert_eq!(ticks.first(), Some(&0.0));
        assert_eq!(ticks.last(), Some(&20e6));
        for pair in ticks.windows(2) {
            assert!(pair[0] < pair[1]);
        }
        for pair in ticks.windows(2) {
            assert!((pair[1] / 45e6).sqrt() - (pair[0] / 45e6).sqrt() >= 0.08);
        }
        assert_eq!(scale_ticks(0.0), vec![0.0]);
    }
}
