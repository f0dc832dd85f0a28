//! Horizontal bar charts: lost duty by chapter / partner (with bounds) and feature importance.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{Chart, ChartId, DrawResult, INK, LinearAxis, PALETTE, TOP_BARS, anchored, house_mesh, max_text_width, text, titled};
use crate::data::GapBar;
use crate::format::{money_short, truncate};

/// Longest category label drawn before it is shortened with "…".
const MAX_LABEL_CHARS: usize = 40;

/// One bar.
#[derive(Debug, Clone)]
pub(crate) struct HBar {
    pub(crate) label: String,
    pub(crate) value: f64,
    /// Low and high bound drawn as a whisker.
    pub(crate) whisker: Option<(f64, f64)>,
    /// Text drawn just right of the bar (or its whisker).
    pub(crate) annotation: String,
}

/// Horizontal bars, first bar on top.
#[derive(Debug, Clone)]
pub(crate) struct HBarChart {
    pub(crate) id: ChartId,
    pub(crate) title: String,
    pub(crate) x_desc: String,
    pub(crate) y_desc: String,
    pub(crate) bars: Vec<HBar>,
    pub(crate) tick: fn(f64) -> String,
    pub(crate) color: RGBColor,
}

/// Lost duty per chapter or partner, top 15, with low–high whiskers.
pub(crate) fn gap_chart(id: ChartId, gaps: &[GapBar]) -> Option<HBarChart> {
    let shown: Vec<&GapBar> = gaps.iter().filter(|g| g.lost_duty_usd.is_finite()).take(TOP_BARS).collect();
    if shown.is_empty() {
        return None;
    }
    let (what, y_desc) =
        if id == ChartId::GapByChapter { ("HS chapter", "HS chapter (2-digit)") } else { ("partner country", "Partner country") };
    let of_total = if gaps.len() > shown.len() { format!("top {} of {}", shown.len(), gaps.len()) } else { format!("all {}", shown.len()) };
    let bars = shown
        .iter()
        .map(|g| {
            let low = finite_or(g.low_usd, g.lost_duty_usd);
            let high = finite_or(g.high_usd, g.lost_duty_usd);
            HBar {
                label: g.label.clone(),
                value: g.lost_duty_usd,
                whisker: Some((low.min(high), high.max(low))),
                annotation: money_short(g.lost_duty_usd),
            }
        })
        .collect();
    Some(HBarChart {
        id,
        title: format!("Estimated lost customs duty by {what} ({of_total})"),
        x_desc: "Lost duty (USD) — bar: central estimate, whisker: low–high bound".to_owned(),
        y_desc: y_desc.to_owned(),
        bars,
        tick: money_short,
        color: PALETTE[0],
    })
}

/// Share of model gain per feature, top 15.
pub(crate) fn importance_chart(importance: &[(String, f64)]) -> Option<HBarChart> {
    let bars: Vec<HBar> = importance
        .iter()
        .filter(|(_, share)| share.is_finite())
        .take(TOP_BARS)
        .map(|(label, share)| HBar {
            label: label.clone(),
            value: share * 100.0,
            whisker: None,
            annotation: format!("{:.1} %", share * 100.0),
        })
        .collect();
    if bars.is_empty() {
        return None;
    }
    let of_total =
        if importance.len() > bars.len() { format!("top {} of {}", bars.len(), importance.len()) } else { format!("all {}", bars.len()) };
    Some(HBarChart {
        id: ChartId::FeatureImportance,
        title: format!("Fraud model: feature importance ({of_total} features)"),
        x_desc: "Share of total split gain (%)".to_owned(),
        y_desc: "Feature".to_owned(),
        bars,
        tick: |v| format!("{v:.0} %"),
        color: PALETTE[3],
    })
}

fn finite_or(value: f64, fallback: f64) -> f64 {
    if value.is_finite() { value } else { fallback }
}

impl Chart for HBarChart {
    fn id(&self) -> ChartId {
        self.id
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let n = self.bars.len();
        let labels: Vec<String> = self.bars.iter().map(|b| truncate(&b.label, MAX_LABEL_CHARS)).collect();
        let label_style = text(14);
        let label_width = max_text_width(root, &labels, &label_style)?;

        let largest = self.bars.iter().map(|b| b.whisker.map_or(b.value, |(_, high)| high.max(b.value))).fold(0.0, f64::max);
        // Room right of the longest bar for its annotation.
        let x_max = if largest > 0.0 { largest * 1.16 } else { 1.0 };
        let smallest = self.bars.iter().map(|b| b.value).fold(0.0, f64::min);

        let body = titled(root, &self.title, 22, 52)?;
        let mut chart = ChartBuilder::on(&body)
            .margin_left(12)
            .margin_right(36)
            .margin_bottom(12)
            .x_label_area_size(64)
            .y_label_area_size(label_width + 56)
            .build_cartesian_2d(smallest..x_max, LinearAxis::categories(n))?;

        // Bar i (0 = largest) sits at y = n - 1 - i so the list reads top-down.
        let label_of = |y: &f64| {
            let position = y.round() as usize;
            labels.get(n.saturating_sub(1).saturating_sub(position)).cloned().unwrap_or_default()
        };
        let tick = self.tick;
        house_mesh(
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_labels(8)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&label_of)
                .x_desc(self.x_desc.as_str())
                .y_desc(self.y_desc.as_str()),
            text(16),
            label_style,
        )
        .draw()?;

        let y_of = |i: usize| (n - 1 - i) as f64;
        chart.draw_series(self.bars.iter().enumerate().map(|(i, bar)| {
            let y = y_of(i);
            Rectangle::new([(0.0, y - 0.34), (bar.value, y + 0.34)], self.color.filled())
        }))?;

        for (i, bar) in self.bars.iter().enumerate() {
            let y = y_of(i);
            if let Some((low, high)) = bar.whisker {
                let style = INK.stroke_width(2);
                chart.draw_series([
                    PathElement::new(vec![(low, y), (high, y)], style),
                    PathElement::new(vec![(low, y - 0.16), (low, y + 0.16)], style),
                    PathElement::new(vec![(high, y - 0.16), (high, y + 0.16)], style),
                ])?;
            }
            let end = bar.whisker.map_or(bar.value, |(_, high)| high.max(bar.value));
            let (px, py) = chart.backend_coord(&(end.max(0.0), y));
            root.draw_text(&bar.annotation, &anchored(&text(13), HPos::Left, VPos::Center), (px + 7, py))?;
        }
        Ok(())
    }
}
