//! The plotted report of one Mirador run.
//!
//! This crate sits at the very end of the pipeline. It takes the figures the stages produced —
//! input data quality, the revenue gap against mirror statistics, unit-price clusters, the
//! fraud model's gain, importance and rules, and the ranked list of importers — as plain
//! structs ([`ReportData`]), and writes:
//!
//! - every chart as PNG and SVG (`gap_by_chapter`, `gap_by_partner`, `mirror_scatter`,
//!   `price_clusters`, `gain_chart`, `feature_importance`, `data_quality`);
//! - `index.html`, one self-contained page (inline CSS, PNG charts as data URIs, no script and
//!   no external resource) that post-clearance audit teams can open or mail as is.
//!
//! Stages that did not run leave their part of [`ReportData`] empty; the page then says
//! "not computed in this run" instead of drawing an empty chart. Output is deterministic:
//! the same data always gives the same bytes. Chart text uses the bundled DejaVu Sans, so
//! rendering needs no system font.
//!
//! Rendering knows nothing of DataFrames: the `report` stage ([`Report`], in `stage.rs`) gathers
//! the run's datasets into the structs, and [`render`] draws them.
//!
//! # Example
//!
//! ```no_run
//! use std::path::Path;
//!
//! let data = mirador_report::fixture::sample_data();
//! let rendered = mirador_report::render(&data, Path::new("reports/nightly/08_reporting"))?;
//! println!("wrote {} and {} chart files", rendered.html.display(), rendered.charts.len());
//! # Ok::<(), mirador_report::ReportError>(())
//! ```

mod backtest;
mod challengers;
mod charts;
mod data;
#[doc(hidden)]
pub mod fixture;
mod forecast;
mod format;
mod html;
mod stage;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use backtest::{BacktestFigures, BacktestRow};
pub use challengers::ChallengerRow;
pub use data::{
    AuditeeCapture, AuditeeRow, CountryFigures, FraudMap, Frontier, FrontierCurve, FrontierPoint, Gain, GainIntervals, GapBar, GapTotal,
    MirrorPoint, PricePanel, PricePoint, QualityRow, ReleaseFigures, ReleaseGroup, ReportData, RuleRow, ScorePoint,
};
pub use forecast::{AlarmRow, FlaggedSeries, ForecastFigures};
pub use stage::{Report, gather};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot create report directory `{}`", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read back `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot draw chart `{chart}`: {message}")]
    Chart { chart: &'static str, message: String },
    #[error("the bundled DejaVu Sans font could not be registered")]
    Font,
}

/// Files written by [`render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The self-contained page, `<out_dir>/index.html`.
    pub html: PathBuf,
    /// Chart files, PNG then SVG for each chart drawn, in page order. Charts whose data is
    /// empty are not drawn and not listed.
    pub charts: Vec<PathBuf>,
}

/// Draws the backtest chart of `mirador backtest` into `out_dir`: the cumulative share of all
/// fraudulent duty found by each policy (`curves`: name, share by week, week 1 first), as
/// `backtest_cumulative.png` and `.svg`. Returns the two paths.
pub fn backtest_chart(curves: &[(String, Vec<f64>)], title: &str, out_dir: &Path) -> Result<[PathBuf; 2], ReportError> {
    let c = charts::render_backtest(curves, title, out_dir)?;
    Ok([c.png_path, c.svg_path])
}

/// Draws every chart of `data` and the HTML page into `out_dir` (created if missing).
///
/// Existing files of the same names are overwritten; nothing else in `out_dir` is touched.
pub fn render(data: &ReportData, out_dir: &Path) -> Result<Rendered, ReportError> {
    fs::create_dir_all(out_dir).map_err(|source| ReportError::CreateDir { path: out_dir.to_path_buf(), source })?;
    let charts = charts::render_all(data, out_dir)?;
    let page = html::page(data, &charts);
    let html_path = out_dir.join("index.html");
    write_file(&html_path, page.as_bytes())?;
    Ok(Rendered { html: html_path, charts: charts.into_iter().flat_map(|c| [c.png_path, c.svg_path]).collect() })
}

/// Writes atomically with owner-only permissions (the report shows taxpayer data).
pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    mirador_io::write_bytes(path, bytes).map_err(|e| ReportError::Write {
        path: path.to_path_buf(),
        source: match e {
            mirador_io::IoError::Fs { source, .. } => source,
            other @ mirador_io::IoError::Parquet { .. } => io::Error::other(other.to_string()),
        },
    })
}
