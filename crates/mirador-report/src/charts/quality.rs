//! Data quality: per input dataset, the share of rows accepted vs quarantined.
//!
//! Datasets differ in size by orders of magnitude, so bars show shares of the rows read
//! (every bar spans 0–100 %) and the counts are written next to each bar.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{
    ALERT, Chart, ChartId, DrawResult, LinearAxis, MUTED, Mark, OK_GREEN, anchored, bold, draw_legend, house_mesh, max_text_width, text,
    titled,
};
use crate::data::QualityRow;
use crate::format::{percent, thousands, truncate};

const OTHER: RGBColor = RGBColor(189, 189, 189);

pub(crate) struct QualityChart<'a> {
    rows: &'a [QualityRow],
}

impl<'a> QualityChart<'a> {
    pub(crate) fn new(rows: &'a [QualityRow]) -> Option<Self> {
        (!rows.is_empty()).then_some(Self { rows })
    }
}

/// Shares (accepted, quarantined, unaccounted) of the rows read, in percent.
fn shares(row: &QualityRow) -> (f64, f64, f64) {
    let total = row.rows_in.max(row.accepted + row.quarantined());
    if total == 0 {
        return (0.0, 0.0, 0.0);
    }
    let total = total as f64;
    let accepted = row.accepted as f64 / total * 100.0;
    let quarantined = row.quarantined() as f64 / total * 100.0;
    (accepted, quarantined, (100.0 - accepted - quarantined).max(0.0))
}

impl Chart for QualityChart<'_> {
    fn id(&self) -> ChartId {
        ChartId::DataQuality
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let n = self.rows.len();
        let labels: Vec<String> = self.rows.iter().map(|r| truncate(&r.dataset, 28)).collect();
        let label_style = text(15);
        let label_width = max_text_width(root, &labels, &label_style)?;
        let any_other = self.rows.iter().any(|r| shares(r).2 > 0.0);

        let body = titled(root, "Input data quality: rows accepted vs quarantined", 22, 52)?;
        let (legend_area, plot_area) = body.split_vertically(34);
        let mut entries = vec![
            (Mark::Swatch(OK_GREEN), "accepted".to_owned()),
            (Mark::Swatch(ALERT), "quarantined (reasons in the table below the chart)".to_owned()),
        ];
        if any_other {
            entries.push((Mark::Swatch(OTHER), "neither: read but not accounted for".to_owned()));
        }
        draw_legend(&legend_area, (label_width as i32 + 70, 14), &entries, 0, 24)?;

        let mut chart = ChartBuilder::on(&plot_area)
            .margin_left(12)
            .margin_right(250)
            .margin_bottom(12)
            .x_label_area_size(64)
            .y_label_area_size(label_width + 56)
            .build_cartesian_2d(LinearAxis::new(0.0..100.0, (0..=10).map(|i| f64::from(i) * 10.0).collect()), LinearAxis::categories(n))?;
        let label_of = |y: &f64| {
            let position = y.round() as usize;
            labels.get(n.saturating_sub(1).saturating_sub(position)).cloned().unwrap_or_default()
        };
        house_mesh(
            chart
                .configure_mesh()
                .disable_y_mesh()
                .x_labels(11)
                .x_label_formatter(&|v| format!("{v:.0} %"))
                .y_label_formatter(&label_of)
                .x_desc("Share of rows read (%)")
                .y_desc("Input dataset"),
            text(16),
            label_style,
        )
        .draw()?;

        for (i, row) in self.rows.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let (accepted, quarantined, other) = shares(row);
            let segments = [
                (0.0, accepted, OK_GREEN),
                (accepted, accepted + quarantined, ALERT),
                (accepted + quarantined, accepted + quarantined + other, OTHER),
            ];
            chart.draw_series(
                segments
                    .iter()
                    .filter(|(from, to, _)| to > from)
                    .map(|&(from, to, color)| Rectangle::new([(from, y - 0.32), (to, y + 0.32)], color.filled())),
            )?;

            // Counts to the right of the plot, two lines per dataset.
            let (px, py) = chart.backend_coord(&(100.0, y));
            let quarantined_rows = row.quarantined();
            let share = if row.rows_in > 0 { quarantined_rows as f64 / row.rows_in as f64 } else { 0.0 };
            let mut lines = vec![(format!("{} rows read", thousands(row.rows_in)), bold(14))];
            lines.push((
                format!("{} quarantined ({})", thousands(quarantined_rows), percent(share, 2)),
                text(14).color(if quarantined_rows > 0 { &ALERT } else { &MUTED }),
            ));
            let other_rows = row.rows_in.saturating_sub(row.accepted + quarantined_rows);
            if other_rows > 0 {
                lines.push((format!("{} neither", thousands(other_rows)), text(14).color(&MUTED)));
            }
            let line_height = 18;
            let first = py - line_height * (lines.len() as i32 - 1) / 2;
            for (k, (line, style)) in lines.into_iter().enumerate() {
                root.draw_text(&line, &anchored(&style, HPos::Left, VPos::Center), (px + 14, first + line_height * k as i32))?;
            }
        }
        Ok(())
    }
}
