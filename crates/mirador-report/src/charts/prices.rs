//! Unit-price clusters: one panel per HS code, declaration lines spread by cluster.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    ALERT, Chart, ChartId, DrawResult, INK, LinearAxis, MAX_PRICE_PANELS, Mark, bold, draw_legend, house_mesh, jitter, log_tick_label,
    log_ticks, text, titled,
};
use crate::data::PricePanel;
use crate::format::truncate;

/// Cluster colours; red is kept for flagged lines.
const CLUSTER_COLORS: [RGBColor; 8] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(89, 161, 79),
    RGBColor(176, 122, 161),
    RGBColor(118, 183, 178),
    RGBColor(237, 201, 72),
    RGBColor(156, 117, 95),
    RGBColor(150, 150, 150),
];

pub(crate) struct PriceChart<'a> {
    panels: &'a [PricePanel],
}

impl<'a> PriceChart<'a> {
    pub(crate) fn new(panels: &'a [PricePanel]) -> Option<Self> {
        let panels = &panels[..panels.len().min(MAX_PRICE_PANELS)];
        (!panels.is_empty()).then_some(Self { panels })
    }
}

/// Reference-price line colour.
const REFERENCE: RGBColor = RGBColor(106, 61, 154);

fn cluster_color(cluster: u32) -> RGBColor {
    CLUSTER_COLORS[cluster as usize % CLUSTER_COLORS.len()]
}

fn positive(value: f64) -> bool {
    value.is_finite() && value > 0.0
}

impl Chart for PriceChart<'_> {
    fn id(&self) -> ChartId {
        ChartId::PriceClusters
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = titled(root, "Declared unit prices and their k-means clusters, HS codes with the largest gaps", 20, 44)?;
        let (legend_area, grid_area) = body.split_vertically(30);
        draw_legend(
            &legend_area,
            (60, 12),
            &[
                (Mark::Dot(ALERT), "flagged: suspiciously low".to_owned()),
                (Mark::Dot(CLUSTER_COLORS[0]), "declaration line (colour: cluster)".to_owned()),
                (Mark::Line(INK, 3), "cluster centroid".to_owned()),
                (Mark::Dashed(REFERENCE, 2), "reference price".to_owned()),
            ],
            0,
            22,
        )?;
        let grid = match self.panels.len() {
            1 => (1, 1),
            2 => (1, 2),
            _ => (2, 2),
        };
        for (panel, area) in self.panels.iter().zip(grid_area.split_evenly(grid)) {
            draw_panel(&area, panel)?;
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &PricePanel) -> DrawResult<DB> {
    let values = panel
        .prices
        .iter()
        .map(|p| p.unit_price_usd_per_kg)
        .chain(panel.centroids_usd_per_kg.iter().copied())
        .chain(panel.reference_usd_per_kg)
        .filter(|v| positive(*v));
    let (low, high) = values.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (low, high) = if high > 0.0 { (low / 1.4, high * 1.4) } else { (0.1, 10.0) };
    let ticks = log_ticks(low, high);

    let clusters = panel.prices.iter().map(|p| p.cluster as usize + 1).max().unwrap_or(0).max(panel.centroids_usd_per_kg.len()).max(1);

    let (width, _) = area.dim_in_pixel();
    let full_caption = if panel.description.trim().is_empty() {
        format!("HS {}", panel.hs)
    } else {
        format!("HS {} — {}", panel.hs, panel.description.trim())
    };
    let mut caption = full_caption.clone();
    let mut max_chars = full_caption.chars().count();
    while max_chars > 12 && area.estimate_text_size(&caption, &bold(15))?.0 + 24 > width {
        max_chars -= 1;
        caption = truncate(&full_caption, max_chars);
    }

    let mut chart = ChartBuilder::on(area)
        .caption(caption, bold(15))
        .margin(8)
        .margin_right(20)
        .x_label_area_size(46)
        .y_label_area_size(86)
        .build_cartesian_2d((low..high).log_scale().with_key_points(ticks), LinearAxis::categories(clusters))?;
    house_mesh(
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_label_formatter(&|v| log_tick_label(*v))
            .y_label_formatter(&|v| format!("cluster {}", v.round() as i64))
            .x_desc("Unit price (USD/kg, log scale)")
            .y_desc("k-means cluster"),
        text(13),
        text(12),
    )
    .draw()?;

    let point = |i: usize, price: f64, cluster: u32| (price, f64::from(cluster) + 0.7 * jitter(i));
    chart.draw_series(
        panel
            .prices
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.flagged && positive(p.unit_price_usd_per_kg))
            .map(|(i, p)| Circle::new(point(i, p.unit_price_usd_per_kg, p.cluster), 3, cluster_color(p.cluster).mix(0.6).filled())),
    )?;
    chart.draw_series(
        panel
            .prices
            .iter()
            .enumerate()
            .filter(|(_, p)| p.flagged && positive(p.unit_price_usd_per_kg))
            .map(|(i, p)| Circle::new(point(i, p.unit_price_usd_per_kg, p.cluster), 4, ALERT.filled())),
    )?;

    chart.draw_series(panel.centroids_usd_per_kg.iter().enumerate().filter(|(_, c)| positive(**c)).map(|(cluster, &centroid)| {
        let y = cluster as f64;
        PathElement::new(vec![(centroid, y - 0.45), (centroid, y + 0.45)], INK.stroke_width(3))
    }))?;
    if let Some(reference) = panel.reference_usd_per_kg.filter(|r| positive(*r)) {
        chart.draw_series(DashedLineSeries::new(
            [(reference, -0.5), (reference, clusters as f64 - 0.5)],
            7,
            5,
            REFERENCE.stroke_width(2),
        ))?;
    }
    Ok(())
}
