//! The report's charts, each drawn once to PNG and once to SVG.
//!
//! Every chart implements [`Chart`]: one `draw` generic over the plotters backend, so the
//! bitmap and the vector file always show the same thing. All text uses the bundled DejaVu
//! Sans registered as "sans-serif" ([`register_fonts`]), so rendering never depends on the
//! fonts installed on the machine.

mod backtest;
mod bars;
mod forecast;
mod frontier;
mod gain;
mod map;
mod mirror;
mod prices;
mod quality;
mod release;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::ReportError;
use crate::data::ReportData;
pub(crate) use frontier::ranking_label;

/// Pixel size of every chart.
pub(crate) const SIZE: (u32, u32) = (1000, 600);
/// The one font family used for all chart text.
pub(crate) const FONT: &str = "sans-serif";
/// Bars shown in the gap and importance charts.
pub(crate) const TOP_BARS: usize = 15;
/// Price panels shown in the unit-price chart.
pub(crate) const MAX_PRICE_PANELS: usize = 4;

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static DEJAVU_SANS_BOLD: &[u8] = include_bytes!("../assets/DejaVuSans-Bold.ttf");

/// Registers the bundled fonts with plotters, once per process.
///
/// Headless machines often have no system fonts at all; plotters' `ab_glyph` text support
/// only draws fonts registered here.
pub(crate) fn register_fonts() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, DEJAVU_SANS_BOLD).is_ok()
    });
    if ok { Ok(()) } else { Err(ReportError::Font) }
}

/// Which chart; also decides the file stem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChartId {
    DataQuality,
    GapByChapter,
    GapByPartner,
    MirrorScatter,
    PriceClusters,
    GainChart,
    SelectionFrontier,
    FeatureImportance,
    FraudMapLostDuty,
    FraudMapFraudRate,
    FraudScoreVsPrice,
    ReleaseSteps,
    ReleaseDistributions,
    BacktestCumulative,
    /// The revenue forecast of the n-th alarmed series ([`crate::forecast::MAX_FORECAST_CHARTS`] at most).
    ForecastAlarm(u8),
}

impl ChartId {
    pub(crate) fn file_stem(self) -> &'static str {
        match self {
            Self::DataQuality => "data_quality",
            Self::GapByChapter => "gap_by_chapter",
            Self::GapByPartner => "gap_by_partner",
            Self::MirrorScatter => "mirror_scatter",
            Self::PriceClusters => "price_clusters",
            Self::GainChart => "gain_chart",
            Self::SelectionFrontier => "selection_frontier",
            Self::FeatureImportance => "feature_importance",
            Self::FraudMapLostDuty => "fraud_map_lost_duty",
            Self::FraudMapFraudRate => "fraud_map_fraud_rate",
            Self::FraudScoreVsPrice => "fraud_score_vs_price",
            Self::ReleaseSteps => "release_steps",
            Self::ReleaseDistributions => "release_distributions",
            Self::BacktestCumulative => "backtest_cumulative",
            Self::ForecastAlarm(i) => FORECAST_STEMS.get(usize::from(i)).copied().unwrap_or("forecast_alarm"),
        }
    }
}

/// File stems of the revenue-forecast charts, one per alarmed series shown.
const FORECAST_STEMS: [&str; crate::forecast::MAX_FORECAST_CHARTS] =
    ["forecast_alarm_1", "forecast_alarm_2", "forecast_alarm_3", "forecast_alarm_4", "forecast_alarm_5", "forecast_alarm_6"];

/// A chart written to disk.
#[derive(Debug, Clone)]
pub(crate) struct ChartOutput {
    pub(crate) id: ChartId,
    pub(crate) png_path: PathBuf,
    pub(crate) svg_path: PathBuf,
    /// The PNG bytes, kept for embedding into the HTML page.
    pub(crate) png: Vec<u8>,
}

pub(crate) type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// One chart, drawable on any plotters backend.
pub(crate) trait Chart {
    fn id(&self) -> ChartId;

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Draws every chart whose data is present, in report order.
pub(crate) fn render_all(data: &ReportData, out_dir: &Path) -> Result<Vec<ChartOutput>, ReportError> {
    register_fonts()?;
    let mut outputs = Vec::new();
    if let Some(chart) = quality::QualityChart::new(&data.quality) {
        outputs.push(write_chart(&chart, out_dir)?);
    }
    if let Some(chart) = bars::gap_chart(ChartId::GapByChapter, &data.gap_by_chapter) {
        outputs.push(write_chart(&chart, out_dir)?);
    }
    if let Some(chart) = bars::gap_chart(ChartId::GapByPartner, &data.gap_by_partner) {
        outputs.push(write_chart(&chart, out_dir)?);
    }
    if let Some(chart) = mirror::MirrorChart::new(&data.mirror_cells) {
        outputs.push(write_chart(&chart, out_dir)?);
    }
    if let Some(chart) = prices::PriceChart::new(&data.price_panels) {
        outputs.push(write_chart(&chart, out_dir)?);
    }
    if let Some(chart) = data.gain.as_ref().and_then(gain::GainChart::new) {
        outputs.push(write_chart(&chart, out_dir)?);
    }
    if let Some(chart) = data.frontier.as_ref().and_then(frontier::FrontierChart::new) {
        outputs.push(write_chart(&chart, out_dir)?);
    }
    if let Some(chart) = bars::importance_chart(&data.importance) {
        outputs.push(write_chart(&chart, out_dir)?);
    }
    if let Some(m) = &data.fraud_map {
        for measure in [map::Measure::LostDuty, map::Measure::FraudRate] {
            if let Some(chart) = map::MapChart::new(m, measure) {
                outputs.push(write_chart(&chart, out_dir)?);
            }
        }
        if let Some(chart) = map::ScoreChart::new(m) {
            outputs.push(write_chart(&chart, out_dir)?);
        }
    }
    if let Some(r) = &data.release {
        if let Some(chart) = release::StepChart::new(r) {
            outputs.push(write_chart(&chart, out_dir)?);
        }
        if let Some(chart) = release::DistributionChart::new(r) {
            outputs.push(write_chart(&chart, out_dir)?);
        }
    }
    for (k, s) in data.forecast.iter().flat_map(|f| f.flagged.iter()).enumerate() {
        if let Some(chart) = forecast::ForecastChart::new(k, s) {
            outputs.push(write_chart(&chart, out_dir)?);
        }
    }
    if let Some(b) = data.backtest.as_ref().filter(|b| b.curves.iter().any(|(_, v)| !v.is_empty())) {
        let title = "Share of all fraudulent duty found, per inspection policy";
        outputs.push(write_chart(&backtest::BacktestChart { curves: &b.curves, title }, out_dir)?);
    }
    Ok(outputs)
}

/// Draws the backtest chart ([`crate::backtest_chart`]).
pub(crate) fn render_backtest(curves: &[(String, Vec<f64>)], title: &str, out_dir: &Path) -> Result<ChartOutput, ReportError> {
    register_fonts()?;
    write_chart(&backtest::BacktestChart { curves, title }, out_dir)
}

fn write_chart<C: Chart>(chart: &C, out_dir: &Path) -> Result<ChartOutput, ReportError> {
    let id = chart.id();
    let chart_error = |error: &dyn std::fmt::Display| ReportError::Chart { chart: id.file_stem(), message: error.to_string() };

    // The bitmap backend encodes straight to a file: draw into a hidden scratch file, then publish
    // the bytes atomically with owner-only permissions like every other output.
    let png_path = out_dir.join(format!("{}.png", id.file_stem()));
    let scratch = out_dir.join(format!(".{}.drawing.png", id.file_stem()));
    {
        let root = BitMapBackend::new(&scratch, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| chart_error(&e))?;
        chart.draw(&root).map_err(|e| chart_error(&e))?;
        root.present().map_err(|e| chart_error(&e))?;
    }
    let png = fs::read(&scratch).map_err(|source| ReportError::Read { path: scratch.clone(), source })?;
    let _ = fs::remove_file(&scratch);
    crate::write_file(&png_path, &png)?;

    let svg_path = out_dir.join(format!("{}.svg", id.file_stem()));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| chart_error(&e))?;
        chart.draw(&root).map_err(|e| chart_error(&e))?;
        root.present().map_err(|e| chart_error(&e))?;
    }
    crate::write_file(&svg_path, svg.as_bytes())?;

    Ok(ChartOutput { id, png_path, svg_path, png })
}

// ---------------------------------------------------------------------------------------------
// Shared style

/// Categorical palette (Tableau 10), readable on white and distinguishable in print.
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(89, 161, 79),
    RGBColor(176, 122, 161),
    RGBColor(118, 183, 178),
    RGBColor(237, 201, 72),
    RGBColor(156, 117, 95),
    RGBColor(255, 157, 167),
    RGBColor(186, 176, 172),
    RGBColor(225, 87, 89),
];
pub(crate) const INK: RGBColor = RGBColor(40, 40, 40);
pub(crate) const MUTED: RGBColor = RGBColor(110, 110, 110);
pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);
pub(crate) const ALERT: RGBColor = RGBColor(214, 39, 40);
pub(crate) const OK_GREEN: RGBColor = RGBColor(89, 161, 79);

/// Regular text of `size` pixels.
pub(crate) fn text(size: u32) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(FontFamily::Name(FONT), f64::from(size), FontStyle::Normal)).color(&INK)
}

/// Bold text of `size` pixels.
pub(crate) fn bold(size: u32) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(FontFamily::Name(FONT), f64::from(size), FontStyle::Bold)).color(&INK)
}

/// `style` anchored at `h`/`v`.
pub(crate) fn anchored(style: &TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

/// Draws a centred title strip of `height` pixels and returns the area below it.
pub(crate) fn titled<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    size: u32,
    height: u32,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (strip, rest) = area.split_vertically(height);
    let (width, strip_height) = strip.dim_in_pixel();
    strip.draw(&Text::new(
        title.to_owned(),
        (width as i32 / 2, strip_height as i32 / 2 + 2),
        anchored(&bold(size), HPos::Center, VPos::Center),
    ))?;
    Ok(rest)
}

/// A chart builder on `area` with the house margins (12 px left, 30 px right) and label areas
/// of `x_labels` and `y_labels` pixels.
pub(crate) fn plot_on<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    x_labels: u32,
    y_labels: u32,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder.margin_left(12).margin_right(30).x_label_area_size(x_labels).y_label_area_size(y_labels);
    builder
}

/// The house style of a chart's mesh, on top of what the chart sets itself (formatters,
/// descriptions, which lines): axis descriptions in `desc`, tick labels in `labels`, grid lines
/// in [`GRID`] without light lines, axes in [`INK`]. Draw the result.
pub(crate) fn house_mesh<'m, 'a, 'b, X, Y, DB>(
    mesh: &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB>,
    desc: TextStyle<'b>,
    labels: TextStyle<'b>,
) -> &'m mut plotters::chart::MeshStyle<'a, 'b, X, Y, DB>
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
    DB: DrawingBackend,
{
    mesh.axis_desc_style(desc).label_style(labels).bold_line_style(GRID).max_light_lines(0).axis_style(INK)
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mark {
    /// Filled square.
    Swatch(RGBColor),
    /// Solid line of the given width.
    Line(RGBColor, u32),
    /// Dashed line of the given width.
    Dashed(RGBColor, u32),
    /// Filled dot.
    Dot(RGBColor),
}

/// Draws legend entries left to right from the area-relative `origin`, wrapping to a new row
/// when the area is full. Each entry takes at least `min_width` pixels, so entries of similar
/// length line up in columns.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    origin: (i32, i32),
    entries: &[(Mark, String)],
    min_width: i32,
    row_height: i32,
) -> DrawResult<DB> {
    let label_style = anchored(&text(14), HPos::Left, VPos::Center);
    let (area_width, _) = area.dim_in_pixel();
    let (mut x, mut y) = origin;
    for (mark, label) in entries {
        let (label_width, _) = area.estimate_text_size(label, &label_style)?;
        let width = (label_width as i32 + 32 + 28).max(min_width);
        if x > origin.0 && x + width > area_width as i32 {
            x = origin.0;
            y += row_height;
        }
        match *mark {
            Mark::Swatch(color) => {
                area.draw(&Rectangle::new([(x + 4, y - 7), (x + 20, y + 7)], color.filled()))?;
            }
            Mark::Line(color, stroke) => {
                area.draw(&PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(stroke)))?;
            }
            Mark::Dashed(color, stroke) => {
                for start in [x, x + 9, x + 18] {
                    area.draw(&PathElement::new(vec![(start, y), (start + 6, y)], color.stroke_width(stroke)))?;
                }
            }
            Mark::Dot(color) => {
                area.draw(&Circle::new((x + 12, y), 5, color.filled()))?;
            }
        }
        area.draw(&Text::new(label.clone(), (x + 32, y), label_style.clone()))?;
        x += width;
    }
    Ok(())
}

/// Width in pixels of the widest of `labels` in `style`.
pub(crate) fn max_text_width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: impl IntoIterator<Item = impl AsRef<str>>,
    style: &TextStyle,
) -> Result<u32, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut widest = 0;
    for label in labels {
        let (width, _) = area.estimate_text_size(label.as_ref(), style)?;
        widest = widest.max(width);
    }
    Ok(widest)
}

/// A linear f64 axis whose ticks are exactly the given values.
///
/// plotters' own f64 axis picks its ticks itself, and its key-point override loses the
/// label formatting; category axes (one tick per bar) and percent axes need both.
#[derive(Debug, Clone)]
pub(crate) struct LinearAxis {
    start: f64,
    end: f64,
    ticks: Vec<f64>,
}

impl LinearAxis {
    pub(crate) fn new(range: std::ops::Range<f64>, ticks: Vec<f64>) -> Self {
        Self { start: range.start, end: range.end, ticks }
    }

    /// Axis for `n` categories centred on 0, 1, …, n - 1.
    pub(crate) fn categories(n: usize) -> Self {
        Self::new(-0.5..n as f64 - 0.5, (0..n).map(|i| i as f64).collect())
    }
}

impl Ranged for LinearAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.end - self.start;
        let pixels = f64::from(limit.1 - limit.0);
        if span == 0.0 || !value.is_finite() {
            return i32::midpoint(limit.0, limit.1);
        }
        limit.0 + (pixels * (value - self.start) / span).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() { Vec::new() } else { self.ticks.clone() }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.start..self.end
    }
}

/// Tick values 1-2-5 × 10^k inside `[low, high]`, for log axes.
///
/// Uses only powers of ten when the range spans many decades, so labels never crowd, and
/// finer steps when it spans less than one, so there are always a few ticks.
pub(crate) fn log_ticks(low: f64, high: f64) -> Vec<f64> {
    if !(low > 0.0 && high > low) {
        return vec![];
    }
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    let decades = last - first;
    let collect = |steps: &[f64], stride: usize| {
        let mut ticks = Vec::new();
        for exponent in (first..=last).step_by(stride) {
            for step in steps {
                let tick = step * 10f64.powi(exponent);
                if tick >= low && tick <= high {
                    ticks.push(tick);
                }
            }
        }
        ticks
    };
    if decades > 8 {
        return collect(&[1.0], 2);
    }
    if decades > 3 {
        return collect(&[1.0], 1);
    }
    let ticks = collect(&[1.0, 2.0, 5.0], 1);
    if ticks.len() >= 3 {
        return ticks;
    }
    collect(&[1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 1)
}

/// Compact label for a value on a log axis: "0.5", "20", "3 k", "1.2 M".
pub(crate) fn log_tick_label(value: f64) -> String {
    if value >= 1_000.0 {
        crate::format::money_short(value)
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Deterministic value in `[-0.5, 0.5)` for the `index`-th point (golden-ratio sequence),
/// used to spread overlapping points without a random generator.
pub(crate) fn jitter(index: usize) -> f64 {
    const GOLDEN: f64 = 0.618_033_988_749_894_8;
    ((index as f64 + 1.0) * GOLDEN).fract() - 0.5
}

/// Linear blend of two colours, `t` in 0..1.
pub(crate) fn blend(from: RGBColor, to: RGBColor, t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    RGBColor(mix(from.0, to.0), mix(from.1, to.1), mix(from.2, to.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_one_two_five_within_range() {
        assert_eq!(log_ticks(0.8, 60.0), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        let wide = log_ticks(1_000.0, 1e9);
        assert_eq!(wide.first(), Some(&1_000.0));
        assert_eq!(wide.len(), 7);
        assert!(log_ticks(0.0, 10.0).is_empty());
        assert_eq!(log_ticks(2.5, 8.5), vec![3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    }

    #[test]
    fn jitter_is_bounded_and_deterministic() {
        for i in 0..1_000 {
            let j = jitter(i);
            assert!((-0.5..0.5).contains(&j));
            assert!((j - jitter(i)).abs() < f64::EPSILON);
        }
    }

    #[test]
    fn log_tick_labels_are_short() {
        assert_eq!(log_tick_label(0.5), "0.5");
        assert_eq!(log_tick_label(0.05), "0.05");
        assert_eq!(log_tick_label(20.0), "20");
        assert_eq!(log_tick_label(1.5), "1.5");
        assert_eq!(log_tick_label(2_000_000.0), "2 M");
    }
}
