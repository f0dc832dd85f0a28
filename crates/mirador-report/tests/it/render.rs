use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use mirador_report::{ReportData, fixture::sample_data, render};

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
const CHARTS: [&str; 15] = [
    "data_quality",
    "gap_by_chapter",
    "gap_by_partner",
    "mirror_scatter",
    "price_clusters",
    "gain_chart",
    "selection_frontier",
    "feature_importance",
    "fraud_map_lost_duty",
    "fraud_map_fraud_rate",
    "fraud_score_vs_price",
    "release_steps",
    "release_distributions",
    "forecast_alarm_1",
    "backtest_cumulative",
];
const SECTION_HEADINGS: [&str; 10] = [
    "<h2>Key figures</h2>",
    "<h2>Data quality</h2>",
    "<h2>Revenue gap</h2>",
    "<h2>Unit-price clusters</h2>",
    "<h2>Fraud model</h2>",
    "<h2>Top auditees</h2>",
    "<h2>Fraud map</h2>",
    "<h2>Release time</h2>",
    "<h2>Revenue forecast</h2>",
    "<h2>Backtest</h2>",
];

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path =
            std::env::temp_dir().join(format!("mirador-report-{name}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        let _ = fs::remove_dir_all(&path);
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// PNG width and height from the IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24, "PNG too short");
    assert_eq!(&bytes[..8], &PNG_SIGNATURE, "not a PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk is not IHDR");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (width, height)
}

fn data_with_hostile_reason() -> ReportData {
    let mut data = sample_data();
    data.auditees[0].reason.push_str(" <script>alert('owned')</script> & more");
    data
}

#[test]
fn fixture_renders_every_chart_and_section() {
    let dir = TempDir::new("fixture");
    let rendered = render(&data_with_hostile_reason(), dir.path()).expect("render");

    assert_eq!(rendered.html, dir.path().join("index.html"));
    assert_eq!(rendered.charts.len(), CHARTS.len() * 2);
    for chart in CHARTS {
        let png_path = dir.path().join(format!("{chart}.png"));
        let svg_path = dir.path().join(format!("{chart}.svg"));
        assert!(rendered.charts.contains(&png_path), "{chart}.png not listed");
        assert!(rendered.charts.contains(&svg_path), "{chart}.svg not listed");

        let png = fs::read(&png_path).unwrap_or_else(|e| panic!("{chart}.png: {e}"));
        assert!(png.len() > 10 * 1024, "{chart}.png is only {} bytes", png.len());
        assert_eq!(png_size(&png), (1000, 600), "{chart}.png size");

        let svg = fs::read_to_string(&svg_path).unwrap_or_else(|e| panic!("{chart}.svg: {e}"));
        assert!(svg.starts_with("<svg"), "{chart}.svg does not start with <svg");
        assert!(svg.contains("<text"), "{chart}.svg has no text");
        assert!(svg.trim_end().ends_with("</svg>"), "{chart}.svg is truncated");
    }

    let html = fs::read_to_string(&rendered.html).expect("read index.html");
    for heading in SECTION_HEADINGS {
        assert!(html.contains(heading), "missing {heading}");
    }
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), CHARTS.len(), "every chart is embedded once");
    assert!(!html.contains("http"), "no external references");
    assert!(!html.contains("<script"), "no script, and data text is escaped");
    assert!(html.contains("&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt; &amp; more"));
    assert!(!html.contains("not computed in this run"));
    assert!(html.contains(
        "precision@n% and revenue@n% ranking by fraud probability; revenue (expected duty) \
         ranking by probability × duty"
    ));
    // Top 25 of 40 importers.
    assert!(html.contains("showing 25 of 40"));
    assert_eq!(html.matches("<code>IMP-").count(), 25);
    // The list against the truth: a row per order, a column per top %.
    for cell in
        ["<th class=\"num\">Top 5 %</th>", "<td>Oracle (by true lost duty)</td>", "<td>By duty paid</td>", "<td class=\"num\">60.0 %</td>"]
    {
        assert!(html.contains(cell), "missing {cell}");
    }
}

#[test]
fn empty_data_renders_without_charts() {
    let dir = TempDir::new("empty");
    let rendered = render(&ReportData::default(), dir.path()).expect("render");
    assert!(rendered.charts.is_empty());
    let html = fs::read_to_string(&rendered.html).expect("read index.html");
    for heading in SECTION_HEADINGS {
        assert!(html.contains(heading), "missing {heading}");
    }
    assert!(html.matches("not computed in this run").count() >= 6);
    assert!(!html.contains("<img"));
    let files: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, vec!["index.html"]);
}

#[test]
fn partial_data_marks_only_missing_parts() {
    let mut data = sample_data();
    data.gain = None;
    data.price_panels.clear();
    let dir = TempDir::new("partial");
    let rendered = render(&data, dir.path()).expect("render");
    assert_eq!(rendered.charts.len(), (CHARTS.len() - 2) * 2);
    assert!(!dir.path().join("gain_chart.png").exists());
    let html = fs::read_to_string(&rendered.html).unwrap();
    assert!(html.contains("Gain chart: not computed in this run"));
    assert!(html.contains("Unit-price clusters: not computed in this run"));
    assert_eq!(html.matches("not computed in this run").count(), 2);
    // Without a ground truth the list is shown without its evaluation.
    data.auditee_capture.clear();
    let html = fs::read_to_string(render(&data, dir.path()).expect("render").html).unwrap();
    assert!(html.contains("showing 25 of 40") && !html.contains("Oracle (by true lost duty)"));
}

#[test]
fn same_data_gives_identical_bytes() {
    let data = sample_data();
    let first = TempDir::new("det-a");
    let second = TempDir::new("det-b");
    let a = render(&data, first.path()).expect("render a");
    let b = render(&data, second.path()).expect("render b");
    assert_eq!(fs::read(&a.html).unwrap(), fs::read(&b.html).unwrap());
    for (x, y) in a.charts.iter().zip(&b.charts) {
        assert_eq!(fs::read(x).unwrap(), fs::read(y).unwrap(), "{}", x.display());
    }
}

#[test]
fn fixture_serialises_to_json() {
    let json = serde_json::to_string(&sample_data()).expect("serialise");
    assert!(json.contains("\"run_id\":\"nightly-2025-06-30-r042\""));
}

#[test]
fn degenerate_values_still_render() {
    use mirador_report::{Frontier, FrontierCurve, FrontierPoint, Gain, GapBar, MirrorPoint, PricePanel, PricePoint, QualityRow};

    let mut data = ReportData { title: "Edge cases".to_owned(), ..ReportData::default() };
    data.quality = vec![QualityRow {
        dataset: "an_input_dataset_with_a_remarkably_long_name_indeed".to_owned(),
        rows_in: 0,
        accepted: 0,
        quarantined_by_reason: vec![],
    }];
    data.gap_by_chapter = vec![GapBar { label: "85".to_owned(), lost_duty_usd: 0.0, low_usd: f64::NAN, high_usd: 0.0 }];
    data.gap_by_partner = vec![GapBar {
        label: "a partner label far longer than any ISO code could ever be, truly".to_owned(),
        lost_duty_usd: 1.0e6,
        low_usd: 2.0e6,
        high_usd: 0.5e6,
    }];
    data.mirror_cells = vec![
        MirrorPoint { label: "HS 851712 · CN".to_owned(), declared_usd: 1.0e6, mirror_cif_usd: 1.0e6, lost_duty_usd: f64::NAN },
        MirrorPoint { label: "zero declared".to_owned(), declared_usd: 0.0, mirror_cif_usd: 5.0e5, lost_duty_usd: 1.0e5 },
    ];
    data.price_panels = vec![PricePanel {
        hs: "851712".to_owned(),
        description: String::new(),
        prices: vec![PricePoint { unit_price_usd_per_kg: 12.0, cluster: 0, flagged: true }],
        centroids_usd_per_kg: vec![],
        reference_usd_per_kg: Some(f64::INFINITY),
    }];
    data.gain = Some(Gain {
        split: "test".to_owned(),
        auc: Some(f64::NAN),
        n_pct: vec![1.0, 2.0],
        precision: vec![0.5],
        base_rate: f64::NAN,
        ..Gain::default()
    });
    data.importance = vec![("only_feature".to_owned(), 1.0)];
    // A frontier with a missing figure, a single point and a ranking it has no label for.
    let point = |n_pct: f64, precision: f64, revenue: f64| FrontierPoint { n_pct, precision, recall: f64::NAN, revenue };
    data.frontier = Some(Frontier {
        split: "test".to_owned(),
        curves: vec![
            FrontierCurve { ranking: "selection".to_owned(), points: vec![point(5.0, f64::NAN, 0.5), point(10.0, 0.9, 0.8)] },
            FrontierCurve { ranking: "a_challenger_with_a_long_name".to_owned(), points: vec![point(5.0, 1.0, 0.0)] },
            FrontierCurve { ranking: "empty".to_owned(), points: vec![] },
        ],
        chosen: Some(point(5.0, f64::NAN, 0.5)),
        policy: String::new(),
    });
    // A backtest with a missing week, an empty curve and a summary without figures.
    data.backtest = Some(mirador_report::BacktestFigures {
        source: String::new(),
        settings: String::new(),
        curves: vec![("random".to_owned(), vec![f64::NAN, 0.5, 1.5]), ("empty".to_owned(), vec![])],
        summary: vec![mirador_report::BacktestRow { policy: "random".to_owned(), precision: f64::NAN, ..Default::default() }],
    });

    // A forecast with a non-finite actual, a month without a forecast, a bound that is not finite.
    data.forecast = Some(mirador_report::ForecastFigures {
        flagged: vec![mirador_report::FlaggedSeries {
            label: "HS chapter 61".to_owned(),
            measure: "duty".to_owned(),
            periods: vec!["2024-01".to_owned(), "2024-02".to_owned()],
            actual: vec![Some(f64::NAN), None],
            forecast: vec![None, Some((1.0, f64::NAN, 2.0))],
            alarms: vec![vec!["duty_below_forecast".to_owned()], vec![]],
            alarm_lower: vec![Some(f64::INFINITY), None],
            shortfall_usd: f64::NAN,
        }],
        ..mirador_report::ForecastFigures::default()
    });
    let dir = TempDir::new("edge");
    let rendered = render(&data, dir.path()).expect("render");
    // Every chart but the fraud map's three and the release times' two, which have no data here.
    assert_eq!(rendered.charts.len(), (CHARTS.len() - 5) * 2);
    for chart in &rendered.charts {
        assert!(fs::metadata(chart).unwrap().len() > 1_000, "{}", chart.display());
    }
}
