//! A structural guard on the page layout, without a browser: the CSS keeps every table, cell
//! and chart inside its card, and nothing on the page asks for more width than a card has.
//! (`just report-check` measures the real layout in headless Chromium where it is installed.)

use std::fs;

use mirador_report::{fixture::sample_data, render};

/// Pixels per rem (the page keeps the browser's default font size).
const REM_PX: f64 = 16.0;

/// The page's CSS as (selectors, declarations) rules; `@media` blocks give their inner rules.
fn rules(html: &str) -> Vec<(Vec<String>, Vec<(String, String)>)> {
    let start = html.find("<style>").expect("a <style> element") + "<style>".len();
    let end = html[start..].find("</style>").expect("</style>") + start;
    let mut css = html[start..end].to_owned();
    while let Some(open) = css.find("/*") {
        let close = css[open..].find("*/").expect("closed comment") + open + 2;
        css.replace_range(open..close, "");
    }
    css.split('}')
        .filter_map(|chunk| {
            let (head, body) = chunk.rsplit_once('{')?;
            let selectors = head.rsplit('{').next().unwrap_or(head);
            let selectors: Vec<String> = selectors.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
            let declarations = body
                .split(';')
                .filter_map(|d| d.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.split_whitespace().collect::<Vec<_>>().join(" ")))
                .collect();
            (!selectors.is_empty()).then_some((selectors, declarations))
        })
        .collect()
}

/// The value of `property` in the first rule whose selectors include `selector` exactly.
fn value<'r>(rules: &'r [(Vec<String>, Vec<(String, String)>)], selector: &str, property: &str) -> Option<&'r str> {
    rules.iter().filter(|(s, _)| s.iter().any(|s| s == selector)).flat_map(|(_, d)| d).find(|(k, _)| k == property).map(|(_, v)| v.as_str())
}

/// A CSS length in px (`px` or `rem`).
fn px(length: &str) -> f64 {
    if let Some(rem) = length.strip_suffix("rem") {
        rem.parse::<f64>().expect("rem length") * REM_PX
    } else {
        length.strip_suffix("px").unwrap_or(length).parse().unwrap_or_else(|_| panic!("`{length}` is not a px or rem length"))
    }
}

/// Left plus right of a `padding` shorthand.
fn horizontal(padding: &str) -> f64 {
    let v: Vec<f64> = padding.split_whitespace().map(px).collect();
    match v.as_slice() {
        [all] => 2.0 * all,
        [_, x] | [_, x, _] => 2.0 * x,
        [_, right, _, left] => right + left,
        _ => panic!("padding `{padding}`"),
    }
}

/// The fixture's page, rendered in a directory of the test's own (`name`).
fn page(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("mirador-report-layout-{name}-{}", std::process::id()));
    let rendered = render(&sample_data(), &dir).expect("render");
    let html = fs::read_to_string(&rendered.html).expect("index.html");
    let _ = fs::remove_dir_all(&dir);
    html
}

/// Text of every `<td class="num">` cell, tags and entities left out.
fn numeric_cells(html: &str) -> Vec<String> {
    html.split("<td class=\"num\">")
        .skip(1)
        .map(|rest| {
            let cell = &rest[..rest.find("</td>").expect("closed cell")];
            let mut text = String::new();
            let mut in_tag = false;
            for c in cell.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text
        })
        .collect()
}

#[test]
fn tables_cells_and_charts_are_held_to_their_card() {
    let html = page("css");
    assert!(html.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
    let css = rules(&html);
    assert_eq!(value(&css, "table", "max-width"), Some("100%"), "a table is never wider than its card");
    assert_eq!(value(&css, "td", "overflow-wrap"), Some("break-word"), "a long word wraps inside its cell");
    assert_eq!(value(&css, "table.figures td", "overflow-wrap"), Some("anywhere"), "a long key figure wraps anywhere");
    assert_eq!(value(&css, "figure img", "max-width"), Some("100%"), "a chart shrinks to its card");
    assert_eq!(value(&css, "figure img", "height"), Some("auto"), "a chart keeps its aspect ratio");
    for selector in ["table.figures td", "td", "th"] {
        assert_ne!(value(&css, selector, "white-space"), Some("nowrap"), "`{selector}` must wrap");
    }
}

#[test]
fn cells_that_do_not_wrap_hold_short_figures() {
    let html = page("cells");
    let css = rules(&html);
    assert_eq!(value(&css, "td.num", "white-space"), Some("nowrap"));
    let cells = numeric_cells(&html);
    assert!(cells.len() > 50, "only {} numeric cells", cells.len());
    for cell in cells {
        assert!(cell.chars().count() <= 32, "a numeric cell does not wrap, and `{cell}` is too long for one line of a narrow card");
    }
    // The fixture's longest key figure is a sentence; it is a wrapping cell.
    assert!(html.contains("<td>834: 780 labelled a declaration"));
}

#[test]
fn no_inline_width_exceeds_a_card() {
    let html = page("widths");
    let css = rules(&html);
    let main_width = px(value(&css, "main", "max-width").expect("main has a max-width"));
    let card = main_width
        - horizontal(value(&css, "main", "padding").expect("main padding"))
        - horizontal(value(&css, "section", "padding").expect("section padding"))
        - 2.0 * px(value(&css, "section", "border").and_then(|b| b.split_whitespace().next()).expect("section border"));
    // The body only: the style sheet's own widths are relative or limits.
    let body = &html[html.find("</style>").expect("</style>")..];
    let mut widths = Vec::new();
    for attribute in ["width=\"", "width:"] {
        for rest in body.split(attribute).skip(1) {
            let digits: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
            if let Ok(w) = digits.parse::<f64>() {
                widths.push(w);
            }
        }
    }
    assert!(!widths.is_empty(), "the charts carry their width");
    for w in widths {
        assert!(w <= card, "an inline width of {w} px exceeds a card's {card} px");
    }
}
