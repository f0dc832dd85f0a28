//! Number formatting shared by the charts and the HTML page.
//!
//! Everything here is locale-free and deterministic, so the same data always renders to the
//! same bytes.

/// Short money form for axis ticks and annotations: "350 k", "1.2 M", "3 B".
///
/// Below a hundred units of the chosen scale one decimal is kept ("1.2 M", "48.6 M"); a
/// trailing ".0" is dropped so that round ticks read "2 M" rather than "2.0 M".
pub(crate) fn money_short(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_owned();
    }
    let magnitude = value.abs();
    let (scaled, suffix) = if magnitude >= 1e9 {
        (value / 1e9, " B")
    } else if magnitude >= 1e6 {
        (value / 1e6, " M")
    } else if magnitude >= 1e3 {
        (value / 1e3, " k")
    } else {
        (value, "")
    };
    let digits = usize::from(scaled.abs() < 100.0 && !suffix.is_empty());
    let mut text = format!("{scaled:.digits$}");
    if text.ends_with(".0") {
        text.truncate(text.len() - 2);
    }
    if text == "-0" {
        text.remove(0);
    }
    text.push_str(suffix);
    text
}

/// Integer with thousands separators: "1,234,567".
pub(crate) fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Money rounded to whole units with thousands separators: "1,234,567" (negative: "-1,234").
pub(crate) fn money_full(value: f64) -> String {
    if !value.is_finite() {
        return "–".to_owned();
    }
    let rounded = value.round();
    let body = thousands(rounded.abs() as u64);
    if rounded < 0.0 { format!("-{body}") } else { body }
}

/// A share (0..1) as a percentage with the given number of decimals: "12.5 %".
pub(crate) fn percent(share: f64, decimals: usize) -> String {
    if !share.is_finite() {
        return "–".to_owned();
    }
    format!("{:.decimals$} %", share * 100.0)
}

/// Shortens `text` to at most `max_chars` characters, ending with "…" when cut.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_short_picks_scale_and_drops_trailing_zero() {
        assert_eq!(money_short(0.0), "0");
        assert_eq!(money_short(950.0), "950");
        assert_eq!(money_short(2_500.0), "2.5 k");
        assert_eq!(money_short(350_000.0), "350 k");
        assert_eq!(money_short(1_200_000.0), "1.2 M");
        assert_eq!(money_short(2_000_000.0), "2 M");
        assert_eq!(money_short(45_600_000.0), "45.6 M");
        assert_eq!(money_short(450_000_000.0), "450 M");
        assert_eq!(money_short(3_000_000_000.0), "3 B");
        assert_eq!(money_short(-1_500_000.0), "-1.5 M");
        assert_eq!(money_short(f64::NAN), "–");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(money_full(-1_234.4), "-1,234");
    }

    #[test]
    fn percent_and_truncate() {
        assert_eq!(percent(0.125, 1), "12.5 %");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
