//! The self-contained HTML page: inline CSS, PNG charts as data URIs, no script, no external
//! resource, every piece of data text escaped.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::charts::{ChartId, ChartOutput, MAX_PRICE_PANELS, TOP_BARS};
use crate::data::{
    AuditeeCapture, AuditeeRow, Frontier, Gain, GainIntervals, GapBar, GapTotal, MirrorPoint, PricePanel, QualityRow, ReportData, RuleRow,
};
use crate::format::{money_full, money_short, percent, thousands};

/// Appends formatted text to a `String`; writing to a `String` cannot fail.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($out, $($arg)*);
    }};
}

/// Importers listed in the audit table.
pub(crate) const TOP_AUDITEES: usize = 25;
/// Mirror cells listed in the table under the scatter.
const TOP_MIRROR_ROWS: usize = 15;
/// The phrase every missing part of the report uses.
pub(crate) const NOT_COMPUTED: &str = "not computed in this run";

const CSS: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f5f2; color: #222; line-height: 1.45;
       font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
header { background: #1f3a5f; color: #fff; padding: 1.2rem 2rem 0.8rem; }
header h1 { margin: 0 0 0.2rem; font-size: 1.6rem; }
header p { margin: 0 0 0.6rem; color: #d9e2ee; }
header code { color: #fff; }
nav a { color: #fff; margin-right: 1.1rem; font-size: 0.9rem; text-decoration: none;
        border-bottom: 1px dotted #9fb3cc; }
main { max-width: 1120px; margin: 0 auto; padding: 0.5rem 1.5rem 3rem; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 0.6rem 1.5rem 1.2rem;
          margin: 1.2rem 0; }
h2 { font-size: 1.3rem; border-bottom: 2px solid #1f3a5f; padding-bottom: 0.3rem; }
h3 { font-size: 1.05rem; margin-top: 1.6rem; }
table { border-collapse: collapse; width: 100%; max-width: 100%; font-size: 0.88rem; margin: 0.6rem 0; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }
/* A long word wraps inside its cell rather than widening the table past its card; tables
   narrow their wordy columns first, so that ids and codes stay whole. */
td, th { overflow-wrap: break-word; }
th { background: #eef2f7; font-weight: 600; }
th.num { text-align: right; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
table.figures { width: auto; min-width: 50%; }
table.figures th { background: none; font-weight: normal; color: #444; }
table.figures td { font-weight: 600; overflow-wrap: anywhere; }
figure { margin: 1rem 0; max-width: 100%; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
figcaption { font-size: 0.85rem; color: #555; margin-top: 0.3rem; }
details { margin: 0.4rem 0 1rem; }
summary { cursor: pointer; color: #1f3a5f; }
.missing { color: #6b4a00; background: #fff8e5; border-left: 4px solid #e0a800; padding: 0.5rem 0.8rem; }
.warning { color: #6b0000; background: #fdecea; border-left: 4px solid #c62828; padding: 0.6rem 0.9rem;
           margin: 1.2rem 0 0; }
.total { font-size: 1.15rem; }
.note { color: #444; font-size: 0.92rem; }
footer { text-align: center; color: #777; font-size: 0.8rem; padding: 1rem; }
@media (max-width: 900px) {
  header { padding: 1rem 1rem 0.6rem; }
  main { padding: 0.3rem 0.6rem 2rem; }
  section { padding: 0.5rem 0.8rem 1rem; }
  table { font-size: 0.8rem; }
  th, td { padding: 0.3rem 0.3rem; }
}
@media print { body { background: #fff; } section { break-inside: avoid; border: none; } }
"#;

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The whole page.
pub(crate) fn page(data: &ReportData, charts: &[ChartOutput]) -> String {
    let chart = |id: ChartId| charts.iter().find(|c| c.id == id);
    let title = if data.title.is_empty() { "Mirador run" } else { data.title.as_str() };
    let mut out = String::with_capacity(64 * 1024 + charts.iter().map(|c| c.png.len() * 4 / 3).sum::<usize>());
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    put!(out, "<title>{} — {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n", escape(title), escape(&data.run_id));
    put!(out, "<header>\n<h1>{}</h1>\n<p>Run <code>{}</code></p>\n<nav>", escape(title), escape(&data.run_id));
    for (anchor, heading) in SECTIONS {
        put!(out, "<a href=\"#{anchor}\">{heading}</a>");
    }
    out.push_str("</nav>\n</header>\n<main>\n");
    for warning in &data.warnings {
        put!(out, "<p class=\"warning\" role=\"alert\"><strong>Warning.</strong> {}</p>\n", escape(warning));
    }

    out.push_str(&key_figures(&data.key_figures));
    out.push_str(&quality(&data.quality, chart(ChartId::DataQuality)));
    out.push_str(&revenue_gap(data, chart));
    out.push_str(&price_clusters(&data.price_panels, chart(ChartId::PriceClusters)));
    out.push_str(&fraud_model(data, chart));
    out.push_str(&auditees(&data.auditees, &data.auditee_capture));
    out.push_str(&fraud_map(data, &chart));
    out.push_str(&release_time(data, &chart));
    out.push_str(&crate::forecast::section(8, data.forecast.as_ref(), &chart));
    put!(out, "{}{}</section>\n", section_open(9), crate::backtest::section(data.backtest.as_ref(), chart(ChartId::BacktestCumulative)));

    put!(out, "</main>\n<footer>Mirador report · run <code>{}</code></footer>\n</body>\n</html>\n", escape(&data.run_id));
    out
}

/// (anchor, heading) of each section, in page order.
const SECTIONS: [(&str, &str); 10] = [
    ("key-figures", "Key figures"),
    ("data-quality", "Data quality"),
    ("revenue-gap", "Revenue gap"),
    ("price-clusters", "Unit-price clusters"),
    ("fraud-model", "Fraud model"),
    ("top-auditees", "Top auditees"),
    ("fraud-map", "Fraud map"),
    ("release-time", "Release time"),
    ("revenue-forecast", "Revenue forecast"),
    ("backtest", "Backtest"),
];

pub(crate) fn section_open(index: usize) -> String {
    let (anchor, heading) = SECTIONS[index];
    format!("<section id=\"{anchor}\">\n<h2>{heading}</h2>\n")
}

pub(crate) fn missing(what: &str) -> String {
    format!("<p class=\"missing\">{}: {NOT_COMPUTED}.</p>\n", escape(what))
}

pub(crate) fn figure(chart: &ChartOutput, alt: &str, caption: &str) -> String {
    let stem = chart.id.file_stem();
    format!(
        "<figure>\n<img src=\"data:image/png;base64,{}\" width=\"1000\" height=\"600\" alt=\"{}\">\n\
         <figcaption>{} Also written next to this page as <code>{stem}.png</code> and \
         <code>{stem}.svg</code>.</figcaption>\n</figure>\n",
        BASE64.encode(&chart.png),
        escape(alt),
        escape(caption),
    )
}

/// A table: header cells (`(label, numeric)`) and rows of already-escaped cells.
pub(crate) fn table(class: Option<&str>, header: &[(&str, bool)], rows: &[Vec<String>]) -> String {
    let mut out = match class {
        Some(class) => format!("<table class=\"{class}\">\n<thead><tr>"),
        None => "<table>\n<thead><tr>".to_owned(),
    };
    for (label, numeric) in header {
        let class = if *numeric { " class=\"num\"" } else { "" };
        put!(out, "<th{class}>{}</th>", escape(label));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (cell, (_, numeric)) in row.iter().zip(header) {
            let class = if *numeric { " class=\"num\"" } else { "" };
            put!(out, "<td{class}>{cell}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

fn details(summary: &str, body: &str) -> String {
    format!("<details>\n<summary>{}</summary>\n{body}</details>\n", escape(summary))
}

fn key_figures(figures: &[(String, String)]) -> String {
    let mut out = section_open(0);
    if figures.is_empty() {
        out.push_str(&missing("Key figures"));
    } else {
        let rows: Vec<Vec<String>> = figures.iter().map(|(label, value)| vec![escape(label), escape(value)]).collect();
        out.push_str(&table(Some("figures"), &[("Figure", false), ("Value", false)], &rows));
    }
    out.push_str("</section>\n");
    out
}

fn quality(rows: &[QualityRow], chart: Option<&ChartOutput>) -> String {
    let mut out = section_open(1);
    if rows.is_empty() {
        out.push_str(&missing("Data quality"));
        out.push_str("</section>\n");
        return out;
    }
    out.push_str(
        "<p class=\"note\">Rows that fail a validation rule are quarantined, not dropped: they \
         stay available for review but take no part in the analysis.</p>\n",
    );
    if let Some(chart) = chart {
        out.push_str(&figure(
            chart,
            "Stacked bars: share of rows accepted and quarantined per input dataset",
            "Share of rows accepted vs quarantined per input dataset; counts on the right.",
        ));
    }
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let quarantined = row.quarantined();
            let share = if row.rows_in > 0 { quarantined as f64 / row.rows_in as f64 } else { 0.0 };
            let mut reasons: Vec<&(String, u64)> = row.quarantined_by_reason.iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let reasons = if reasons.is_empty() {
                "—".to_owned()
            } else {
                reasons
                    .iter()
                    .map(|(reason, n)| format!("<code>{}</code>: {}", escape(reason), thousands(*n)))
                    .collect::<Vec<_>>()
                    .join("<br>")
            };
            vec![escape(&row.dataset), thousands(row.rows_in), thousands(row.accepted), thousands(quarantined), percent(share, 2), reasons]
        })
        .collect();
    out.push_str(&table(
        None,
        &[
            ("Dataset", false),
            ("Rows read", true),
            ("Accepted", true),
            ("Quarantined", true),
            ("Quarantined share", true),
            ("Quarantine reasons (rows)", false),
        ],
        &table_rows,
    ));
    out.push_str("</section>\n");
    out
}

fn gap_total(total: Option<&GapTotal>) -> String {
    let Some(total) = total else {
        return missing("Total lost duty");
    };
    let method = if total.cif_fob_method.is_empty() {
        String::new()
    } else {
        format!(" Partner-reported FOB exports are brought to a CIF basis by: {}.", escape(&total.cif_fob_method))
    };
    format!(
        "<p class=\"total\">Estimated lost duty: <strong>USD {}</strong> \
         (bounds USD {} – {}).</p>\n<p class=\"note\">USD {} (low USD {}, high USD {}).{method}</p>\n",
        money_short(total.lost_duty_usd),
        money_short(total.low_usd),
        money_short(total.high_usd),
        money_full(total.lost_duty_usd),
        money_full(total.low_usd),
        money_full(total.high_usd),
    )
}

fn gap_table(bars: &[GapBar], label: &str) -> String {
    let rows: Vec<Vec<String>> = bars
        .iter()
        .take(TOP_BARS)
        .map(|b| vec![escape(&b.label), money_full(b.lost_duty_usd), money_full(b.low_usd), money_full(b.high_usd)])
        .collect();
    details(
        "Show the numbers",
        &table(None, &[(label, false), ("Lost duty (USD)", true), ("Low (USD)", true), ("High (USD)", true)], &rows),
    )
}

fn mirror_table(cells: &[MirrorPoint]) -> String {
    let mut largest: Vec<&MirrorPoint> = cells.iter().collect();
    largest.sort_by(|a, b| b.lost_duty_usd.total_cmp(&a.lost_duty_usd).then_with(|| a.label.cmp(&b.label)));
    let rows: Vec<Vec<String>> = largest
        .iter()
        .take(TOP_MIRROR_ROWS)
        .map(|c| vec![escape(&c.label), money_full(c.declared_usd), money_full(c.mirror_cif_usd), money_full(c.lost_duty_usd)])
        .collect();
    details(
        &format!("Show the {} cells with the largest lost duty", rows.len()),
        &table(None, &[("Cell", false), ("Declared (USD)", true), ("Mirror CIF (USD)", true), ("Lost duty (USD)", true)], &rows),
    )
}

fn revenue_gap<'a>(data: &ReportData, chart: impl Fn(ChartId) -> Option<&'a ChartOutput>) -> String {
    let mut out = section_open(2);
    out.push_str(
        "<p class=\"note\">The gap compares what importers declared with what partner countries \
         report having exported to us (mirror statistics), per HS6 × partner cell, and prices \
         the difference at the applicable duty rate.</p>\n",
    );
    out.push_str("<h3>Total</h3>\n");
    out.push_str(&gap_total(data.gap_total.as_ref()));

    out.push_str("<h3>By HS chapter</h3>\n");
    match chart(ChartId::GapByChapter) {
        Some(c) => {
            out.push_str(&figure(
                c,
                "Bar chart of lost duty by HS chapter with low–high bounds",
                "Lost duty by HS chapter, largest first; whiskers show the low–high bounds.",
            ));
            out.push_str(&gap_table(&data.gap_by_chapter, "HS chapter"));
        }
        None => out.push_str(&missing("Lost duty by HS chapter")),
    }

    out.push_str("<h3>By partner country</h3>\n");
    match chart(ChartId::GapByPartner) {
        Some(c) => {
            out.push_str(&figure(
                c,
                "Bar chart of lost duty by partner country with low–high bounds",
                "Lost duty by partner country, largest first; whiskers show the low–high bounds.",
            ));
            out.push_str(&gap_table(&data.gap_by_partner, "Partner"));
        }
        None => out.push_str(&missing("Lost duty by partner country")),
    }

    out.push_str("<h3>Declared vs mirror values</h3>\n");
    match chart(ChartId::MirrorScatter) {
        Some(c) => {
            out.push_str(&figure(
                c,
                "Log-log scatter of declared imports against partner-reported exports per cell",
                "Each point is one HS6 × partner cell. Points above the dashed y = x line are \
                 cells where the partner reports more than was declared; the 8 largest gaps are \
                 labelled.",
            ));
            out.push_str(&mirror_table(&data.mirror_cells));
        }
        None => out.push_str(&missing("Mirror comparison per HS6 × partner cell")),
    }
    out.push_str("</section>\n");
    out
}

fn price_clusters(panels: &[PricePanel], chart: Option<&ChartOutput>) -> String {
    let mut out = section_open(3);
    let Some(chart) = chart else {
        out.push_str(&missing("Unit-price clusters"));
        out.push_str("</section>\n");
        return out;
    };
    out.push_str(
        "<p class=\"note\">Declared unit prices (USD/kg) of the HS codes with the largest gaps, \
         grouped by k-means. Lines priced far below their cluster or the reference price are \
         flagged as possible under-valuation.</p>\n",
    );
    out.push_str(&figure(
        chart,
        "Unit-price scatter per HS code with clusters, centroids and reference price",
        "One panel per HS code; points are spread vertically by cluster, flagged lines in red, \
         solid lines mark cluster centroids, the dashed line the reference price.",
    ));
    let shown = &panels[..panels.len().min(MAX_PRICE_PANELS)];
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|p| {
            let flagged = p.prices.iter().filter(|x| x.flagged).count() as u64;
            let centroids = p.centroids_usd_per_kg.iter().map(|c| format!("{c:.2}")).collect::<Vec<_>>().join(" · ");
            vec![
                escape(&p.hs),
                escape(&p.description),
                thousands(p.prices.len() as u64),
                thousands(flagged),
                centroids,
                p.reference_usd_per_kg.map_or_else(|| "—".to_owned(), |r| format!("{r:.2}")),
            ]
        })
        .collect();
    out.push_str(&table(
        None,
        &[
            ("HS", false),
            ("Description", false),
            ("Lines", true),
            ("Flagged", true),
            ("Centroids (USD/kg)", true),
            ("Reference (USD/kg)", true),
        ],
        &rows,
    ));
    if panels.len() > shown.len() {
        put!(out, "<p class=\"note\">Showing {} of {} HS codes.</p>\n", shown.len(), panels.len());
    }
    out.push_str("</section>\n");
    out
}

fn gain_table(gain: &Gain) -> String {
    let cell = |values: &[f64], i: usize| values.get(i).filter(|v| v.is_finite()).map_or_else(|| "—".to_owned(), |v| percent(*v, 1));
    // The figure, then its 90 % bootstrap interval when there is one.
    let with = |values: &[f64], i: usize, interval: fn(&GainIntervals) -> [f64; 2]| {
        let bounds = gain.intervals.get(i).copied().flatten().map(|s| interval(&s));
        let spread = bounds.map_or_else(String::new, |[lo, hi]| format!(" <small>({:.1}–{:.1})</small>", lo * 100.0, hi * 100.0));
        format!("{}{spread}", cell(values, i))
    };
    let rows: Vec<Vec<String>> = gain
        .n_pct
        .iter()
        .enumerate()
        .map(|(i, n)| {
            vec![
                format!("{n:.0} %"),
                with(&gain.precision, i, |s| s.precision),
                with(&gain.recall, i, |s| s.recall),
                with(&gain.revenue, i, |s| s.revenue),
                cell(&gain.revenue_expected_duty, i),
            ]
        })
        .collect();
    details(
        "Show the numbers",
        &table(
            None,
            &[
                ("Inspected (top n %)", true),
                ("Precision@n%", true),
                ("Recall@n%", true),
                ("Revenue@n%", true),
                ("Revenue@n% (expected duty)", true),
            ],
            &rows,
        ),
    )
}

fn frontier_table(f: &Frontier) -> String {
    let n_pcts: Vec<f64> = f
        .curves
        .iter()
        .find(|c| c.ranking == "selection")
        .or(f.curves.first())
        .map(|c| c.points.iter().map(|p| p.n_pct).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = n_pcts
        .iter()
        .map(|&n| {
            let mut row = vec![format!("{n:.0} %")];
            for c in &f.curves {
                row.push(
                    c.points
                        .iter()
                        .find(|p| (p.n_pct - n).abs() < 1e-9)
                        .map_or_else(|| "—".to_owned(), |p| format!("{} / {}", percent(p.precision, 1), percent(p.revenue, 1))),
                );
            }
            row
        })
        .collect();
    let labels: Vec<String> =
        f.curves.iter().map(|c| format!("{} (precision / revenue)", crate::charts::ranking_label(&c.ranking))).collect();
    let mut header: Vec<(&str, bool)> = vec![("Inspected (n %)", true)];
    header.extend(labels.iter().map(|l| (l.as_str(), true)));
    details("Show the numbers", &table(None, &header, &rows))
}

fn rules_table(rules: &[RuleRow]) -> String {
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            vec![
                format!("<code>{}</code>", escape(&r.rule)),
                thousands(u64::from(r.support_train)),
                percent(r.fraud_rate_train, 1),
                r.fraud_rate_test.map_or_else(|| "—".to_owned(), |rate| percent(rate, 1)),
            ]
        })
        .collect();
    table(None, &[("Rule", false), ("Support (train)", true), ("Fraud rate (train)", true), ("Fraud rate (test)", true)], &rows)
}

fn fraud_model<'a>(data: &ReportData, chart: impl Fn(ChartId) -> Option<&'a ChartOutput>) -> String {
    let mut out = section_open(4);
    out.push_str("<h3>Gain chart</h3>\n");
    match (data.gain.as_ref(), chart(ChartId::GainChart)) {
        (Some(gain), Some(c)) => {
            let auc = gain.auc.filter(|a| a.is_finite()).map_or_else(String::new, |a| {
                let spread = gain.auc_interval.map_or_else(String::new, |[lo, hi]| format!(" (90 % interval {lo:.3}–{hi:.3})"));
                format!(" ROC AUC: {a:.3}{spread}.")
            });
            let half = gain.frauds_holding_half_duty.filter(|n| *n > 0).map_or_else(String::new, |n| {
                format!(
                    " Half of the split's fraudulent duty sits on {} of its fraudulent declaration{}: the \
                     fewer they are, the more revenue@n% turns on where those few rank, and the more it \
                     moves from one period to the next.",
                    thousands(u64::from(n)),
                    if n == 1 { "" } else { "s" }
                )
            });
            put!(
                out,
                "<p class=\"note\">Evaluated on the <strong>{}</strong> split; base fraud rate {}.{auc} \
                 Rankings: precision@n% and revenue@n% ranking by fraud probability; revenue \
                 (expected duty) ranking by probability × duty. Recall@n% uses the fraud \
                 probability ranking too. In brackets: 90 % bootstrap intervals over the split's \
                 declarations.{half}</p>\n",
                escape(&gain.split),
                percent(gain.base_rate, 1),
            );
            out.push_str(&figure(
                c,
                "Line chart of precision, recall and revenue captured against the share of \
                 declarations inspected",
                "x: share of declarations inspected, taken from the top of the ranking; \
                 y: precision, recall or share of lost revenue found.",
            ));
            out.push_str(&gain_table(gain));
        }
        _ => out.push_str(&missing("Gain chart")),
    }
    out.push_str(&crate::challengers::html(&data.challengers));

    if let (Some(f), Some(c)) = (data.frontier.as_ref(), chart(ChartId::SelectionFrontier)) {
        out.push_str("<h3>Inspection list: precision against revenue</h3>\n");
        let policy = if f.policy.is_empty() { String::new() } else { format!(" The list: {}.", escape(&f.policy)) };
        put!(
            out,
            "<p class=\"note\">What inspecting n % of the <strong>{}</strong> split's declarations finds, \
             by ranking and for the inspection list, whose budget is split between the most probable \
             frauds, the largest expected duties and exploration.{policy} The list at any n % is the \
             declarations with <code>selection_order</code> up to n % of the split's rows.</p>\n",
            escape(&f.split)
        );
        out.push_str(&figure(
            c,
            "Line chart of precision against the share of fraudulent duty recovered, one line per ranking",
            "x: share of the fraudulent duty recovered; y: precision; one point per share inspected (1, 2, 5, 10, 20 %).",
        ));
        out.push_str(&frontier_table(f));
    }

    out.push_str("<h3>Feature importance</h3>\n");
    match chart(ChartId::FeatureImportance) {
        Some(c) => out.push_str(&figure(
            c,
            "Horizontal bar chart of the features' share of total split gain",
            "Share of the model's total split gain per feature, top 15.",
        )),
        None => out.push_str(&missing("Feature importance")),
    }

    out.push_str("<h3>Rules</h3>\n");
    if data.rules.is_empty() {
        out.push_str(&missing("Rules"));
    } else {
        out.push_str(
            "<p class=\"note\">Readable rules extracted from the model, with their support and \
             fraud rate on the training split and, where available, the test split.</p>\n",
        );
        out.push_str(&rules_table(&data.rules));
    }
    out.push_str("</section>\n");
    out
}

fn auditee_row(row: &AuditeeRow) -> Vec<String> {
    vec![
        row.rank.to_string(),
        format!("<code>{}</code>", escape(&row.importer_id)),
        money_full(row.revenue_at_risk_usd),
        thousands(u64::from(row.declarations)),
        thousands(u64::from(row.flagged_by_model)),
        thousands(u64::from(row.flagged_by_kmeans)),
        escape(&row.top_hs4),
        escape(&row.top_origins),
        escape(&row.reason),
    ]
}

/// The auditee list against the truth: one row per policy, one column per top %.
fn capture_table(capture: &[AuditeeCapture]) -> String {
    let Some(first) = capture.first() else { return String::new() };
    let names = [
        ("list", "This list"),
        ("oracle", "Oracle (by true lost duty)"),
        ("duty_paid", "By duty paid"),
        ("declared_value", "By declared value"),
        ("random", "Random (expected)"),
    ];
    let heads: Vec<String> = first.shares.iter().map(|(pct, _)| format!("Top {pct:.0} %")).collect();
    let mut header: Vec<(&str, bool)> = vec![("Order of importers", false)];
    header.extend(heads.iter().map(|h| (h.as_str(), true)));
    let rows: Vec<Vec<String>> = capture
        .iter()
        .map(|c| {
            let name = names.iter().find(|(k, _)| *k == c.policy).map_or(c.policy.as_str(), |(_, n)| n);
            let mut row = vec![escape(name)];
            row.extend(c.shares.iter().map(|(_, s)| percent(*s, 1)));
            row
        })
        .collect();
    let mut out = String::from(
        "<p class=\"note\">Share of all known lost duty held by the importers at the head of the list, \
         beside other orders of the same importers (the run's ground truth).</p>\n",
    );
    out.push_str(&table(None, &header, &rows));
    out
}

fn auditees(rows: &[AuditeeRow], capture: &[AuditeeCapture]) -> String {
    let mut out = section_open(5);
    out.push_str(&capture_table(capture));
    if rows.is_empty() {
        out.push_str(&missing("Ranked importers"));
        out.push_str("</section>\n");
        return out;
    }
    let shown = rows.len().min(TOP_AUDITEES);
    put!(out, "<p class=\"note\">Importers ranked for post-clearance audit; showing {shown} of {}.</p>\n", thousands(rows.len() as u64));
    let table_rows: Vec<Vec<String>> = rows.iter().take(TOP_AUDITEES).map(auditee_row).collect();
    out.push_str(&table(
        None,
        &[
            ("Rank", true),
            ("Importer", false),
            ("Revenue at risk (USD)", true),
            ("Declarations", true),
            ("Flagged by model", true),
            ("Flagged by k-means", true),
            ("Top HS", false),
            ("Top origins", false),
            ("Reason", false),
        ],
        &table_rows,
    ));
    out.push_str("</section>\n");
    out
}

fn fraud_map<'a>(data: &ReportData, chart: &impl Fn(ChartId) -> Option<&'a ChartOutput>) -> String {
    let mut out = section_open(6);
    out.push_str(
        "<p class=\"note\">Origin countries shaded by lost duty (the mirror gap plus the fraud model's expected duty at risk) \
         and by the fraud rate among inspected declarations (BACUDA series 10). Outlines: Natural Earth 1:110m, public domain.</p>\n",
    );
    let parts = [
        (
            ChartId::FraudMapLostDuty,
            "World map of origin countries shaded by lost duty",
            "Darker countries lost more duty; grey: no figure.",
            "Lost duty by origin country",
        ),
        (
            ChartId::FraudMapFraudRate,
            "World map of origin countries shaded by fraud rate among inspected declarations",
            "Darker countries had a larger share of their inspected declarations found fraudulent.",
            "Fraud rate by origin country",
        ),
        (
            ChartId::FraudScoreVsPrice,
            "Scatter of fraud probability against unit-price ratio, fraudulent and clean declarations",
            "Each point is one inspected declaration item (a sample of at most 4,000): its fraud probability against its unit price \
             over the median of its HS6. Fraudulent items cluster at low ratios and high scores.",
            "Fraud scores against unit-price ratio",
        ),
    ];
    for (id, alt, caption, what) in parts {
        match chart(id) {
            Some(c) => out.push_str(&figure(c, alt, caption)),
            None => out.push_str(&missing(what)),
        }
    }
    if let Some(m) = &data.fraud_map {
        let mut countries = m.countries.clone();
        countries.sort_by(|a, b| b.lost_duty_usd().total_cmp(&a.lost_duty_usd()).then(a.iso2.cmp(&b.iso2)));
        let rows: Vec<Vec<String>> = countries
            .iter()
            .take(10)
            .map(|c| {
                vec![
                    escape(&c.iso2),
                    money_full(c.lost_duty_usd()),
                    money_full(c.mirror_lost_duty_usd),
                    money_full(c.model_expected_duty_usd),
                    thousands(u64::from(c.inspected)),
                    c.fraud_rate().map_or_else(|| "–".to_owned(), |r| percent(r, 1)),
                ]
            })
            .collect();
        if !rows.is_empty() {
            out.push_str("<h3>The ten origins with the largest lost duty</h3>\n");
            out.push_str(&table(
                None,
                &[
                    ("Origin", false),
                    ("Lost duty (USD)", true),
                    ("Mirror gap (USD)", true),
                    ("Model expected (USD)", true),
                    ("Inspected", true),
                    ("Fraud rate", true),
                ],
                &rows,
            ));
        }
    }
    out.push_str("</section>\n");
    out
}

fn release_time<'a>(data: &ReportData, chart: &impl Fn(ChartId) -> Option<&'a ChartOutput>) -> String {
    let mut out = section_open(7);
    let Some(r) = &data.release else {
        out.push_str(&missing("Release times"));
        out.push_str("</section>\n");
        return out;
    };
    if let Some(note) = &r.skipped {
        put!(out, "<p class=\"missing\">Release times: {}.</p>\n", escape(note));
        out.push_str("</section>\n");
        return out;
    }
    let (sl, sl90) = r.service_level_hours;
    put!(
        out,
        "<p class=\"note\">Time from arrival to release (WCO Time Release Study, BACUDA series 7). An office or lane breaches the \
         service level when its median exceeds {sl:.0} h or its p90 exceeds {sl90:.0} h.</p>\n"
    );
    match chart(ChartId::ReleaseDistributions) {
        Some(c) => out.push_str(&figure(
            c,
            "Bar chart of the median and p90 release time per office and lane against the service level",
            "Bars: median hours from arrival to release; whiskers: to the p90; red: breaching the service level.",
        )),
        None => out.push_str(&missing("Release-time distributions")),
    }
    match chart(ChartId::ReleaseSteps) {
        Some(c) => out.push_str(&figure(
            c,
            "Stacked bar chart of the mean hours of each release step",
            "Mean hours of each step per group, with each step's share of the total.",
        )),
        None => out.push_str(&missing("Release-time steps")),
    }
    let rows: Vec<Vec<String>> = r
        .groups
        .iter()
        .map(|g| {
            vec![
                escape(&g.dimension),
                escape(&g.group),
                thousands(u64::from(g.declarations)),
                format!("{:.1}", g.median_hours),
                format!("{:.1}", g.p90_hours),
                if g.breach { "breach".to_owned() } else { "within".to_owned() },
            ]
        })
        .collect();
    out.push_str(&table(
        None,
        &[("Dimension", false), ("Group", false), ("Items", true), ("Median (h)", true), ("p90 (h)", true), ("Service level", false)],
        &rows,
    ));
    out.push_str("</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(escape(r#"<script>alert("x" & 'y')</script>"#), "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;");
        assert_eq!(escape("HS 851712 · CN"), "HS 851712 · CN");
    }

    #[test]
    fn empty_data_says_not_computed_in_every_section() {
        let html = page(&ReportData::default(), &[]);
        for (_, heading) in SECTIONS {
            assert!(html.contains(&format!("<h2>{heading}</h2>")), "{heading}");
        }
        assert!(html.matches(NOT_COMPUTED).count() >= 6);
        assert!(!html.contains("<img"));
        assert!(!html.contains("class=\"warning\""), "no run warning, no banner");
    }

    #[test]
    fn every_run_warning_is_shown_above_the_sections_escaped() {
        let data = ReportData { warnings: vec!["DEMO KEY <in use>".into(), "second".into()], ..ReportData::default() };
        let html = page(&data, &[]);
        let first = html.find("<strong>Warning.</strong> DEMO KEY &lt;in use&gt;").expect("the first warning, escaped");
        let second = html.find("<strong>Warning.</strong> second").expect("the second warning");
        assert!(first < second && second < html.find("id=\"key-figures\"").unwrap(), "above the first section, in order");
    }
}
