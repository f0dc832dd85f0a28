//! Renders the sample report into a directory, for looking at the charts:
//!
//! ```text
//! cargo run --release -p mirador-report --example preview -- /tmp/report-preview
//! ```

use std::path::PathBuf;

fn main() -> Result<(), mirador_report::ReportError> {
    let out_dir = std::env::args_os().nth(1).map_or_else(|| PathBuf::from("report-preview"), PathBuf::from);
    let rendered = mirador_report::render(&mirador_report::fixture::sample_data(), &out_dir)?;
    eprintln!("Wrote {} and {} chart files.", rendered.html.display(), rendered.charts.len());
    Ok(())
}
