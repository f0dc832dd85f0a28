//! The fraud map (BACUDA series 10): a world choropleth of the origin countries, shaded by lost
//! duty or by fraud rate among inspected declarations, and the fraud scores against the
//! unit-price ratio.
//!
//! Country outlines are Natural Earth's 1:110m admin-0 countries (public domain), bundled as
//! `assets/ne_110m_countries.txt` (see `assets/NATURAL_EARTH_LICENSE.md`), drawn in an
//! equirectangular projection from 58° S to 84° N (Antarctica left out).

use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{
    ALERT, Chart, ChartId, DrawResult, GRID, INK, LinearAxis, MUTED, Mark, PALETTE, anchored, blend, draw_legend, house_mesh,
    log_tick_label, log_ticks, plot_on, text, titled,
};
use crate::data::{FraudMap, ScorePoint};

static OUTLINES: &str = include_str!("../../assets/ne_110m_countries.txt");

/// One country's outline.
#[derive(Debug)]
pub(crate) struct Shape {
    /// ISO 3166 alpha-2, when the outline's numeric code is a country Mirador knows.
    pub(crate) iso2: Option<&'static str>,
    /// Outer rings, (longitude, latitude) degrees.
    pub(crate) rings: Vec<Vec<(f64, f64)>>,
}

/// The bundled outlines, parsed once; largest first, so that a country inside another is drawn
/// over it.
pub(crate) fn shapes() -> &'static [Shape] {
    static SHAPES: OnceLock<Vec<Shape>> = OnceLock::new();
    SHAPES.get_or_init(|| {
        let mut shapes: Vec<Shape> = Vec::new();
        // Whether the rings that follow belong to a shape kept (not Antarctica).
        let mut open = false;
        for line in OUTLINES.lines() {
            let mut parts = line.split('\t');
            match parts.next() {
                Some("C") => {
                    let numeric = parts.next().and_then(|n| n.parse::<u16>().ok());
                    // Antarctica (010) is left out.
                    let iso2 = numeric
                        .filter(|n| *n != 10)
                        .and_then(|n| mirador_schema::country::all().iter().find(|c| c.numeric == n))
                        .map(|c| c.iso2);
                    open = numeric != Some(10);
                    if open {
                        shapes.push(Shape { iso2, rings: Vec::new() });
                    }
                }
                Some("R") if open => {
                    let ring: Vec<(f64, f64)> = parts
                        .next()
                        .unwrap_or_default()
                        .split(' ')
                        .filter_map(|p| p.split_once(',').and_then(|(x, y)| Some((x.parse().ok()?, y.parse::<f64>().ok()?.max(SOUTH)))))
                        .collect();
                    if let Some(s) = shapes.last_mut() {
                        s.rings.push(unwrapped(ring));
                    }
                }
                _ => {}
            }
        }
        shapes.sort_by(|a, b| area(b).total_cmp(&area(a)));
        shapes
    })
}

/// A ring that crosses the antimeridian (Chukotka, Fiji) would be drawn across the whole map:
/// its points on the other side are pinned to the map's edge on the side of most of it.
fn unwrapped(ring: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if !ring.windows(2).any(|w| (w[0].0 - w[1].0).abs() > 180.0) {
        return ring;
    }
    let east = ring.iter().filter(|p| p.0 > 0.0).count() * 2 >= ring.len();
    ring.into_iter()
        .map(|(lon, lat)| {
            let lon = if east && lon < 0.0 {
                180.0
            } else if !east && lon > 0.0 {
                -180.0
            } else {
                lon
            };
            (lon, lat)
        })
        .collect()
}

/// Area of a shape's rings, square degrees (shoelace).
fn area(shape: &Shape) -> f64 {
    shape.rings.iter().map(|r| ring_area(r).abs()).sum()
}

fn ring_area(ring: &[(f64, f64)]) -> f64 {
    ring.iter().zip(ring.iter().cycle().skip(1)).map(|(a, b)| a.0 * b.1 - b.0 * a.1).sum::<f64>() / 2.0
}

/// The map's southern and northern edges, degrees of latitude.
const SOUTH: f64 = -58.0;
const NORTH: f64 = 84.0;
/// The map's frame in the chart, pixels: left, top, width, height.
pub(crate) const FRAME: (i32, i32, i32, i32) = (20, 56, 960, 380);

/// Pixel of (longitude, latitude) in the chart.
pub(crate) fn project(lon: f64, lat: f64) -> (i32, i32) {
    let (x0, y0, w, h) = FRAME;
    let x = f64::from(x0) + (lon + 180.0) / 360.0 * f64::from(w);
    let y = f64::from(y0) + (NORTH - lat.clamp(SOUTH, NORTH)) / (NORTH - SOUTH) * f64::from(h);
    (x.round() as i32, y.round() as i32)
}

/// Fewest inspected declarations for an origin's fraud rate to be shaded.
pub(crate) const MIN_INSPECTED: u32 = 20;
/// Rings smaller than this, in pixels across, are drawn without a border.
const MIN_OUTLINED_PX: i32 = 14;
/// Country borders.
const BORDER: RGBColor = RGBColor(150, 150, 150);
/// No figure for the country.
const NO_DATA: RGBColor = RGBColor(232, 232, 232);
/// The colour ramp (light yellow, orange, dark red): darker is more; luminance falls along it.
const RAMP: [RGBColor; 3] = [RGBColor(255, 237, 160), RGBColor(240, 59, 32), RGBColor(128, 0, 38)];

/// The ramp's colour at `t` in 0..1.
pub(crate) fn shade(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    if t < 0.5 { blend(RAMP[0], RAMP[1], t * 2.0) } else { blend(RAMP[1], RAMP[2], (t - 0.5) * 2.0) }
}

/// How values map to the ramp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scale {
    /// Logarithmic between the smallest and largest positive value (money spans decades).
    Log(f64, f64),
    /// Linear between 0 and the largest value.
    Linear(f64),
}

impl Scale {
    fn t(self, v: f64) -> f64 {
        match self {
            Scale::Log(lo, hi) if hi > lo => (v.max(lo).ln() - lo.ln()) / (hi.ln() - lo.ln()),
            Scale::Log(..) => 1.0,
            Scale::Linear(hi) if hi > 0.0 => v / hi,
            Scale::Linear(_) => 1.0,
        }
    }
}

/// What a choropleth shades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    LostDuty,
    FraudRate,
}

/// One choropleth: a value per country (ISO alpha-2).
pub(crate) struct MapChart {
    measure: Measure,
    values: Vec<(String, f64)>,
    scale: Scale,
}

impl MapChart {
    pub(crate) fn new(map: &FraudMap, measure: Measure) -> Option<Self> {
        let values: Vec<(String, f64)> = map
            .countries
            .iter()
            .filter_map(|c| {
                let v = match measure {
                    Measure::LostDuty => Some(c.lost_duty_usd()),
                    // A rate on a handful of inspections is noise: such origins get no shade.
                    Measure::FraudRate => c.fraud_rate().filter(|_| c.inspected >= MIN_INSPECTED),
                };
                v.filter(|v| v.is_finite() && *v >= 0.0).map(|v| (c.iso2.clone(), v))
            })
            .collect();
        let positive: Vec<f64> = values.iter().map(|v| v.1).filter(|v| *v > 0.0).collect();
        if positive.is_empty() {
            return None;
        }
        let (lo, hi) = positive.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        let scale = match measure {
            Measure::LostDuty => Scale::Log(lo, hi),
            Measure::FraudRate => Scale::Linear(hi),
        };
        Some(MapChart { measure, values, scale })
    }

    /// The fill of country `iso2`.
    pub(crate) fn fill(&self, iso2: Option<&str>) -> RGBColor {
        iso2.and_then(|c| self.values.iter().find(|v| v.0 == c)).map_or(NO_DATA, |v| shade(self.scale.t(v.1)))
    }

    /// The countries with a figure but no outline on the 110m map.
    fn unmapped(&self) -> Vec<&str> {
        self.values.iter().map(|v| v.0.as_str()).filter(|c| !shapes().iter().any(|s| s.iso2 == Some(c))).collect()
    }
}

impl Chart for MapChart {
    fn id(&self) -> ChartId {
        match self.measure {
            Measure::LostDuty => ChartId::FraudMapLostDuty,
            Measure::FraudRate => ChartId::FraudMapFraudRate,
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let title = match self.measure {
            Measure::LostDuty => "Lost duty by country of origin (mirror gap + model expected duty)",
            Measure::FraudRate => "Fraud rate among inspected declarations, by country of origin",
        };
        titled(root, title, 22, 44)?;
        let (x0, y0, w, h) = FRAME;
        root.draw(&Rectangle::new([(x0, y0), (x0 + w, y0 + h)], RGBColor(246, 249, 252).filled()))?;
        for shape in shapes() {
            let fill = self.fill(shape.iso2);
            for ring in &shape.rings {
                let points: Vec<(i32, i32)> = ring.iter().map(|&(lon, lat)| project(lon, lat)).collect();
                root.draw(&Polygon::new(points.clone(), fill.filled()))?;
                // Borders only where a country is large enough to keep its colour visible inside
                // them: a border around a few pixels would grey them out.
                let (xs, ys) = (points.iter().map(|p| p.0), points.iter().map(|p| p.1));
                let span = |v: &mut dyn Iterator<Item = i32>| v.fold((i32::MAX, i32::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
                let ((x_lo, x_hi), (y_lo, y_hi)) = (span(&mut xs.into_iter()), span(&mut ys.into_iter()));
                if x_hi - x_lo >= MIN_OUTLINED_PX && y_hi - y_lo >= MIN_OUTLINED_PX {
                    root.draw(&PathElement::new(points, BORDER.stroke_width(1)))?;
                }
            }
        }
        root.draw(&Rectangle::new([(x0, y0), (x0 + w, y0 + h)], GRID.stroke_width(1)))?;

        // The colour bar, with ticks.
        let (bx, by, bw, bh) = (x0 + 40, y0 + h + 40, 520, 18);
        for i in 0..bw {
            let c = shade(f64::from(i) / f64::from(bw - 1));
            root.draw(&Rectangle::new([(bx + i, by), (bx + i + 1, by + bh)], c.filled()))?;
        }
        root.draw(&Rectangle::new([(bx, by), (bx + bw, by + bh)], MUTED.stroke_width(1)))?;
        let ticks: Vec<(f64, String)> = match self.scale {
            Scale::Log(lo, hi) => log_ticks(lo, hi).into_iter().map(|t| (t, format!("USD {}", log_tick_label(t)))).collect(),
            Scale::Linear(hi) => (0..=4).map(|i| f64::from(i) / 4.0 * hi).map(|t| (t, format!("{:.0} %", t * 100.0))).collect(),
        };
        let tick_style = anchored(&text(13), HPos::Center, VPos::Top);
        let mut last_x: Option<i32> = None;
        for (v, label) in ticks {
            let x = bx + (self.scale.t(v) * f64::from(bw)).round() as i32;
            if last_x.is_some_and(|last| x - last < 70) {
                continue;
            }
            last_x = Some(x);
            root.draw(&PathElement::new(vec![(x, by + bh), (x, by + bh + 5)], INK.stroke_width(1)))?;
            root.draw(&Text::new(label, (x, by + bh + 7), tick_style.clone()))?;
        }
        let caption = match self.measure {
            Measure::LostDuty => "darker: more duty lost (log scale)",
            Measure::FraudRate => "darker: a larger share of inspected declarations found fraudulent (origins with 20 or more inspected)",
        };
        root.draw(&Text::new(caption, (bx, by - 16), anchored(&text(14), HPos::Left, VPos::Center)))?;
        let legend = vec![(Mark::Swatch(NO_DATA), "no figure".to_owned())];
        draw_legend(root, (bx + bw + 40, by + bh / 2), &legend, 120, 22)?;
        let unmapped = self.unmapped();
        if !unmapped.is_empty() {
            let note = format!("not on the 1:110m map: {}", unmapped.join(", "));
            root.draw(&Text::new(note, (bx + bw + 40, by + bh + 20), anchored(&text(13), HPos::Left, VPos::Center)))?;
        }
        Ok(())
    }
}

/// The second view: fraud score against the unit-price ratio, fraudulent against clean.
pub(crate) struct ScoreChart<'a> {
    points: &'a [ScorePoint],
}

impl<'a> ScoreChart<'a> {
    pub(crate) fn new(map: &'a FraudMap) -> Option<Self> {
        map.scores.iter().any(|p| p.price_ratio > 0.0 && p.price_ratio.is_finite()).then_some(ScoreChart { points: &map.scores })
    }
}

impl Chart for ScoreChart<'_> {
    fn id(&self) -> ChartId {
        ChartId::FraudScoreVsPrice
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = titled(root, "Fraud score against unit-price ratio, inspected declarations", 22, 44)?;
        let (_, body_height) = body.dim_in_pixel();
        let (plot, legend_area) = body.split_vertically(body_height.saturating_sub(44));
        let ok: Vec<&ScorePoint> =
            self.points.iter().filter(|p| p.price_ratio > 0.0 && p.price_ratio.is_finite() && p.fraud_probability.is_finite()).collect();
        let (lo, hi) = ok.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), p| (lo.min(p.price_ratio), hi.max(p.price_ratio)));
        let (lo, hi) = ((lo * 0.8).max(1e-4), (hi * 1.25).max(lo * 2.0));
        let x_ticks = log_ticks(lo, hi);
        let y_ticks: Vec<f64> = (0..=10).map(|i| f64::from(i) / 10.0).collect();
        let mut chart = plot_on(&plot, 52, 80).build_cartesian_2d(
            LinearAxis::new(lo.log10()..hi.log10(), x_ticks.iter().map(|t| t.log10()).collect()),
            LinearAxis::new(0.0..1.0, y_ticks),
        )?;
        house_mesh(
            chart
                .configure_mesh()
                .x_label_formatter(&|v| log_tick_label(10f64.powf(*v)))
                .y_label_formatter(&|v| format!("{v:.1}"))
                .x_desc("Declared unit price / median unit price of its HS6 (log scale)")
                .y_desc("Fraud probability (model)"),
            text(16),
            text(14),
        )
        .draw()?;
        chart.draw_series(DashedLineSeries::new([(0.0, 0.0), (0.0, 1.0)], 6, 6, MUTED.stroke_width(1)))?;
        // Clean first, so the fewer fraudulent points stay visible on top.
        for fraud in [false, true] {
            let style = if fraud { ALERT.filled() } else { PALETTE[0].mix(0.45).filled() };
            chart.draw_series(
                ok.iter().filter(|p| p.fraud == fraud).map(|p| Circle::new((p.price_ratio.log10(), p.fraud_probability), 3, style)),
            )?;
        }
        let (n_fraud, n_clean) = (ok.iter().filter(|p| p.fraud).count(), ok.iter().filter(|p| !p.fraud).count());
        let legend = vec![
            (Mark::Dot(ALERT), format!("found fraudulent ({n_fraud})")),
            (Mark::Dot(PALETTE[0]), format!("found clean ({n_clean})")),
            (Mark::Dashed(MUTED, 1), "declared at its HS6's median unit price".to_owned()),
        ];
        draw_legend(&legend_area, (100, 20), &legend, 260, 22)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::CountryFigures;

    /// A point well inside `shape`, away from every outline: the pixel a reader would look at.
    fn inside(shape: &Shape) -> (f64, f64) {
        let ring = shape.rings.iter().max_by(|a, b| ring_area(a).abs().total_cmp(&ring_area(b).abs())).unwrap();
        let contains = |x: f64, y: f64| {
            let mut c = false;
            for (a, b) in ring.iter().zip(ring.iter().cycle().skip(1)) {
                if (a.1 > y) != (b.1 > y) && x < (b.0 - a.0) * (y - a.1) / (b.1 - a.1) + a.0 {
                    c = !c;
                }
            }
            c
        };
        let (mut best, mut best_d) = ((0.0, 0.0), -1.0);
        let (x_lo, x_hi) = ring.iter().fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p.0), h.max(p.0)));
        let (y_lo, y_hi) = ring.iter().fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p.1), h.max(p.1)));
        let others: Vec<(f64, f64)> = shapes().iter().flat_map(|s| s.rings.iter().flatten().copied()).collect();
        for i in 0..40 {
            for j in 0..40 {
                let (x, y) = (x_lo + (x_hi - x_lo) * (f64::from(i) + 0.5) / 40.0, y_lo + (y_hi - y_lo) * (f64::from(j) + 0.5) / 40.0);
                if !contains(x, y) {
                    continue;
                }
                let d = others.iter().map(|p| (p.0 - x).hypot(p.1 - y)).fold(f64::MAX, f64::min);
                if d > best_d {
                    (best, best_d) = ((x, y), d);
                }
            }
        }
        best
    }

    /// The median luminance of the 3 × 3 pixels around `(x, y)`: what a reader sees there.
    fn luminance(buf: &[u8], (x, y): (i32, i32)) -> f64 {
        let mut v: Vec<f64> = (-1..=1)
            .flat_map(|dy| (-1..=1).map(move |dx| (x + dx, y + dy)))
            .map(|(x, y)| {
                let at = (y as usize * super::super::SIZE.0 as usize + x as usize) * 3;
                0.2126 * f64::from(buf[at]) + 0.7152 * f64::from(buf[at + 1]) + 0.0722 * f64::from(buf[at + 2])
            })
            .collect();
        v.sort_by(f64::total_cmp);
        v[4]
    }

    #[test]
    fn the_outlines_hold_every_partner_of_the_synthetic_world() {
        let s = shapes();
        assert!(s.len() > 170, "{}", s.len());
        for c in [
            "CN", "IN", "AE", "JP", "US", "DE", "ZA", "SA", "GB", "IT", "FR", "NL", "TR", "MY", "ID", "TH", "KR", "EG", "UG", "TZ", "RW",
            "PK", "VN", "BR", "BE", "ES", "KE",
        ] {
            assert!(s.iter().any(|x| x.iso2 == Some(c) && !x.rings.is_empty()), "{c}");
        }
        assert!(shade(0.0).0 > shade(1.0).0);
        // No ring is drawn across the map: none jumps more than half the world between points.
        for shape in s {
            for ring in &shape.rings {
                assert!(ring.windows(2).all(|w| (w[0].0 - w[1].0).abs() <= 180.0), "{:?}", shape.iso2);
            }
        }
    }

    #[test]
    fn the_ten_countries_with_the_largest_lost_duty_are_drawn_darkest() {
        // Lost duty over four decades, in an order unrelated to the countries' sizes.
        let origins = [
            "BE", "CN", "RW", "US", "NL", "IN", "UG", "BR", "AE", "DE", "KR", "ZA", "TZ", "EG", "JP", "PK", "VN", "FR", "SA", "GB", "IT",
            "TR", "MY", "ID", "TH", "ES",
        ];
        let countries: Vec<CountryFigures> = origins
            .iter()
            .enumerate()
            .map(|(i, c)| CountryFigures {
                iso2: (*c).to_owned(),
                mirror_lost_duty_usd: 3e6 * 0.7_f64.powi(((i * 7) % origins.len()) as i32),
                model_expected_duty_usd: 1e4 * (i % 3) as f64,
                inspected: 10,
                frauds: 1,
            })
            .collect();
        super::super::register_fonts().unwrap();
        let map = FraudMap { countries: countries.clone(), scores: Vec::new() };
        let chart = MapChart::new(&map, Measure::LostDuty).unwrap();
        let (w, h) = super::super::SIZE;
        let mut buf = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            chart.draw(&root).unwrap();
            root.present().unwrap();
        }
        let mut by_duty = countries.clone();
        by_duty.sort_by(|a, b| b.lost_duty_usd().total_cmp(&a.lost_duty_usd()));
        let shade_of = |iso2: &str| {
            let shape = shapes().iter().find(|s| s.iso2 == Some(iso2)).unwrap();
            let (lon, lat) = inside(shape);
            luminance(&buf, project(lon, lat))
        };
        let top: Vec<f64> = by_duty[..10].iter().map(|c| shade_of(&c.iso2)).collect();
        let rest: Vec<f64> = by_duty[10..].iter().map(|c| shade_of(&c.iso2)).collect();
        let lightest_top = top.iter().copied().fold(f64::MIN, f64::max);
        let darkest_rest = rest.iter().copied().fold(f64::MAX, f64::min);
        assert!(lightest_top < darkest_rest, "top ten {top:?}, the rest {rest:?}");
        // And the darkest of all is the largest.
        assert!(top[0] <= top.iter().copied().fold(f64::MAX, f64::min));
        // A country without a figure is grey, not the ramp's lightest.
        let kenya = shade_of("KE");
        assert!((kenya - luminance_of(NO_DATA)).abs() < 1.0, "{kenya}");
    }

    fn luminance_of(c: RGBColor) -> f64 {
        0.2126 * f64::from(c.0) + 0.7152 * f64::from(c.1) + 0.0722 * f64::from(c.2)
    }
}
