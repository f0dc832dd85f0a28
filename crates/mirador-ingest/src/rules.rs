//! Validation rules: one rule, one function, one test. Each turns a raw text value into a typed
//! value or a [`Reject`] that sends the row to quarantine with a reason code.

use std::borrow::Cow;

use chrono::NaiveDate;
use mirador_schema::{col, country, hs};

use crate::read::Raw;

/// Why a row is quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Machine-readable reason code.
    pub code: &'static str,
    /// Canonical column concerned.
    pub column: String,
    /// Human-readable message, with the raw value.
    pub message: String,
}

impl Reject {
    pub(crate) fn new(code: &'static str, column: &str, message: String) -> Self {
        Reject { code, column: column.to_owned(), message }
    }
}

/// A mandatory text field.
pub fn required<'a>(raw: Option<&'a str>, column: &str) -> Result<&'a str, Reject> {
    match raw.map(str::trim) {
        Some(v) if !v.is_empty() => {
            if v.contains('\0') {
                Err(Reject::new("control_character", column, format!("`{column}` contains a NUL byte")))
            } else {
                Ok(v)
            }
        }
        _ => Err(Reject::new("missing_value", column, format!("mandatory `{column}` is empty"))),
    }
}

/// An optional text field: empty → `None`.
pub fn optional(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|v| !v.is_empty())
}

/// A mandatory field of a block's row: text as [`required`] takes it; a typed value is never
/// empty.
#[inline]
pub fn required_value<'r>(raw: Option<Raw<'r>>, column: &str) -> Result<Raw<'r>, Reject> {
    match raw {
        Some(Raw::Text(s)) => required(Some(s), column).map(Raw::Text),
        Some(typed) => Ok(typed),
        None => required(None, column).map(Raw::Text),
    }
}

/// An optional field of a block's row: empty text → `None`.
#[inline]
pub fn optional_value(raw: Option<Raw<'_>>) -> Option<Raw<'_>> {
    match raw {
        Some(Raw::Text(s)) => optional(Some(s)).map(Raw::Text),
        typed => typed,
    }
}

/// A number in the source's dialect. With decimal `,`, `.` is a thousands mark (`1.299,99`);
/// with decimal `.`, `,` is accepted only as a thousands mark in groups of three (`1,299.99`).
/// NaN, infinities and anything else are rejected with the raw string.
pub fn number(raw: &str, decimal: char, column: &str) -> Result<f64, Reject> {
    let bad = || Reject::new("not_a_number", column, format!("`{column}` = `{raw}` is not a number"));
    let s: String = raw.trim().chars().filter(|c| *c != ' ' && *c != '\u{a0}' && *c != '_').collect();
    if s.is_empty() {
        return Err(bad());
    }
    let normalised = if decimal == ',' {
        s.replace('.', "").replace(',', ".")
    } else if s.contains(',') {
        let int_part = s.split('.').next().unwrap_or("");
        let groups: Vec<&str> = int_part.trim_start_matches(['-', '+']).split(',').collect();
        let ok = groups.len() > 1 && !groups[0].is_empty() && groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3);
        if !ok {
            return Err(bad());
        }
        s.replace(',', "")
    } else {
        s
    };
    if !normalised.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) {
        return Err(bad());
    }
    let v: f64 = normalised.parse().map_err(|_| bad())?;
    if !v.is_finite() {
        return Err(Reject::new("not_finite", column, format!("`{column}` = `{raw}` is not finite")));
    }
    Ok(v)
}

/// A number of a block's row: text as [`number`] reads it, a typed number as it is (a file's
/// number has no decimal mark to interpret). NaN and infinities are rejected as their text is.
pub fn number_value(raw: Raw<'_>, decimal: char, column: &str) -> Result<f64, Reject> {
    match raw {
        Raw::Number(x) if x.is_finite() => Ok(x),
        Raw::Integer(x) => Ok(x as f64),
        Raw::Text(s) => number(s, decimal, column),
        other => number(&other.text(), decimal, column),
    }
}

/// Whether `text` holds a control character (NUL, escape, line break, ...). Printable ASCII,
/// nearly every value, is told without decoding characters.
#[inline]
pub fn has_control(text: &str) -> bool {
    !text.bytes().all(|b| (0x20..0x7f).contains(&b)) && text.chars().any(char::is_control)
}

/// A declaration id of a block's row: mandatory, without control characters.
pub fn declaration_id_value<'r>(raw: Option<Raw<'r>>, column: &str) -> Result<Cow<'r, str>, Reject> {
    let id = required_value(raw, column)?.text();
    if has_control(&id) {
        return Err(Reject::new("control_character", column, format!("`{column}` contains a control character")));
    }
    Ok(id)
}

/// A goods item number of a block's row: absent → 1, else a whole number 1–100 000.
pub fn item_no_value(raw: Option<Raw<'_>>, decimal: char, column: &str) -> Result<i32, Reject> {
    let Some(v) = optional_value(raw) else { return Ok(1) };
    let x = number_value(v, decimal, column)?;
    if x < 1.0 || x.fract() != 0.0 || x > 100_000.0 {
        return Err(Reject::new("bad_item_no", column, format!("`{column}` = `{}` is not a positive integer", v.text())));
    }
    Ok(x as i32)
}

/// A number that must not be negative.
pub fn non_negative(raw: &str, decimal: char, column: &str) -> Result<f64, Reject> {
    non_negative_value(Raw::Text(raw), decimal, column)
}

/// A number of a block's row that must not be negative.
pub fn non_negative_value(raw: Raw<'_>, decimal: char, column: &str) -> Result<f64, Reject> {
    let v = number_value(raw, decimal, column)?;
    if v < 0.0 {
        return Err(Reject::new("negative_value", column, format!("`{column}` = `{}` is negative", raw.text())));
    }
    Ok(v)
}

/// A rate in percent, 0–1000.
pub fn rate_pct(raw: &str, decimal: char, column: &str) -> Result<f64, Reject> {
    rate_pct_value(Raw::Text(raw), decimal, column)
}

/// A rate in percent of a block's row, 0–1000.
pub fn rate_pct_value(raw: Raw<'_>, decimal: char, column: &str) -> Result<f64, Reject> {
    let v = non_negative_value(raw, decimal, column)?;
    if v > 1000.0 {
        return Err(Reject::new("out_of_range", column, format!("`{column}` = `{}` % is above 1000 %", raw.text())));
    }
    Ok(v)
}

/// A date in the source's declared format, within `[min, max]`.
pub fn date(raw: &str, format: &str, min: NaiveDate, max: NaiveDate, column: &str) -> Result<NaiveDate, Reject> {
    let d = NaiveDate::parse_from_str(raw.trim(), format)
        .map_err(|_| Reject::new("bad_date", column, format!("`{column}` = `{raw}` does not match the format `{format}`")))?;
    in_range(d, || Cow::Borrowed(raw), min, max, column)
}

/// A date of a block's row: text as [`date`] reads it; a file's date needs no format.
pub fn date_value(raw: Raw<'_>, format: &str, min: NaiveDate, max: NaiveDate, column: &str) -> Result<NaiveDate, Reject> {
    match raw {
        Raw::Day(days) => match mirador_schema::day::date(days) {
            // The date's text is made only for the message of a date out of range.
            Some(d) => in_range(d, || raw.text(), min, max, column),
            None => date(&raw.text(), format, min, max, column),
        },
        Raw::Text(s) => date(s, format, min, max, column),
        other => date(&other.text(), format, min, max, column),
    }
}

fn in_range<'t>(
    d: NaiveDate,
    raw: impl FnOnce() -> Cow<'t, str>,
    min: NaiveDate,
    max: NaiveDate,
    column: &str,
) -> Result<NaiveDate, Reject> {
    if d < min || d > max {
        return Err(Reject::new("date_out_of_range", column, format!("`{column}` = `{}` is outside {min} .. {max}", raw())));
    }
    Ok(d)
}

/// A country code of any scheme, normalised to alpha-2. Sentinels (world, areas n.e.s.) are
/// accepted only where `allow_sentinels` (mirror partners), never as a declaration's origin.
pub fn country_code(raw: &str, allow_sentinels: bool, column: &str) -> Result<&'static str, Reject> {
    match country::normalise(raw) {
        Some(country::Normalised::Country(c)) => Ok(c),
        Some(n) if allow_sentinels => Ok(n.code()),
        Some(_) => Err(Reject::new("not_a_country", column, format!("`{column}` = `{raw}` is an aggregate, not a country"))),
        None => Err(Reject::new("unknown_country", column, format!("`{column}` = `{raw}` is not an ISO 3166 country code"))),
    }
}

/// A declaration's country: a real country, or `XX` when the declarant gave the user-assigned
/// "unknown" code (`ZZ`, `XX`); aggregates such as "world" are rejected.
pub fn declared_country(raw: &str, column: &str) -> Result<&'static str, Reject> {
    match country::normalise(raw) {
        Some(country::Normalised::Country(c)) => Ok(c),
        Some(country::Normalised::Unknown) => Ok(country::AREAS_NES),
        Some(country::Normalised::World) => {
            Err(Reject::new("not_a_country", column, format!("`{column}` = `{raw}` is an aggregate, not a country")))
        }
        None => Err(Reject::new("unknown_country", column, format!("`{column}` = `{raw}` is not an ISO 3166 country code"))),
    }
}

/// An HS code, normalised; `repaired` tells whether a leading zero was restored (only into a
/// code known in one of `vintages`: otherwise `hs_length`).
pub fn hs_code(raw: &str, lengths: &[usize], vintages: &[hs::Vintage], column: &str) -> Result<hs::HsCode, Reject> {
    hs::normalise_known(raw, lengths, vintages).map_err(|e| {
        let code = match e {
            hs::HsError::Empty => "missing_value",
            hs::HsError::NotDigits(_) => "hs_not_digits",
            hs::HsError::Length { .. } | hs::HsError::UnknownRepair { .. } => "hs_length",
        };
        Reject::new(code, column, format!("`{column}`: {e}"))
    })
}

/// Which HS codes must be known codes of the configured vintages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HsKnown {
    /// Only a code whose lost leading zero is restored (the repair must give a known code).
    Repairs,
    /// Every code's HS6.
    All,
}

/// A normalised HS code that must be known when `known` is [`HsKnown::All`]: `hs_unknown`
/// otherwise.
pub fn known_hs(code: hs::HsCode, raw: &str, known: HsKnown, vintages: &[hs::Vintage], column: &str) -> Result<hs::HsCode, Reject> {
    if known == HsKnown::All && !hs::is_known(&code.code, vintages) {
        let names: Vec<&str> = vintages.iter().map(|v| v.name()).collect();
        return Err(Reject::new(
            "hs_unknown",
            column,
            format!("`{column}` = `{raw}`: HS6 {} is not a known HS {} code", &code.code[..6.min(code.code.len())], names.join("/")),
        ));
    }
    Ok(code)
}

/// How party ids are normalised once trimmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdCase {
    /// Upper case (`imp-01` → `IMP-01`).
    Upper,
    /// Lower case.
    Lower,
    /// As written.
    Keep,
}

/// A party id (importer, declarant, seller, courier): trimmed, then cased by `case`. Borrowed
/// when already in shape.
pub fn party_id(id: Cow<'_, str>, case: IdCase) -> Cow<'_, str> {
    let id = match id {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) if s.trim().len() != s.len() => Cow::Owned(s.trim().to_owned()),
        owned => owned,
    };
    let change = match case {
        IdCase::Upper if id.is_ascii() => id.bytes().any(|b| b.is_ascii_lowercase()),
        IdCase::Lower if id.is_ascii() => id.bytes().any(|b| b.is_ascii_uppercase()),
        IdCase::Upper => id.chars().any(char::is_lowercase),
        IdCase::Lower => id.chars().any(char::is_uppercase),
        IdCase::Keep => false,
    };
    if !change {
        return id;
    }
    Cow::Owned(if case == IdCase::Upper { id.to_uppercase() } else { id.to_lowercase() })
}

/// Plausibility bounds of one goods item.
#[derive(Debug, Clone, Copy)]
pub struct ItemBounds {
    /// Largest value, USD.
    pub max_value_usd: f64,
    /// Largest net mass, kg.
    pub max_mass_kg: f64,
    /// Unit price bounds, USD per kg.
    pub unit_price_usd_per_kg: [f64; 2],
}

impl ItemBounds {
    /// Checks an item's value (USD), mass (kg) and unit price (when it has both).
    pub fn check(&self, value_usd: f64, mass_kg: f64) -> Result<(), Reject> {
        if !(value_usd <= self.max_value_usd) {
            return Err(Reject::new(
                "implausible_value",
                col::ITEM_PRICE,
                format!(
                    "one goods item worth {value_usd:.3e} USD (more than max-item-value-usd = {:e}) is a keying, unit or exchange-rate error",
                    self.max_value_usd
                ),
            ));
        }
        if !(mass_kg <= self.max_mass_kg) {
            return Err(Reject::new(
                "implausible_mass",
                col::NET_MASS_KG,
                format!(
                    "one goods item of {mass_kg:.3e} kg (more than max-item-mass-kg = {:e}) is a keying or unit error",
                    self.max_mass_kg
                ),
            ));
        }
        if value_usd > 0.0 && mass_kg > 0.0 {
            let unit = value_usd / mass_kg;
            let [lo, hi] = self.unit_price_usd_per_kg;
            if !(lo..=hi).contains(&unit) {
                return Err(Reject::new(
                    "implausible_unit_price",
                    col::ITEM_PRICE,
                    format!(
                        "{value_usd:.2} USD for {mass_kg} kg is {unit:.3e} USD/kg, outside unit-price-usd-per-kg = [{lo:e}, {hi:e}]: a keying or unit error (grams for kilograms, cents for units)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// An inspection label: empty → not inspected; otherwise one of `allowed`.
pub fn label(raw: Option<&str>, allowed: &[i8], column: &str) -> Result<Option<i8>, Reject> {
    let Some(v) = optional(raw) else { return Ok(None) };
    let v = v.strip_suffix(".0").unwrap_or(v);
    match v.parse::<i8>() {
        Ok(x) if allowed.contains(&x) => Ok(Some(x)),
        _ => Err(Reject::new("bad_label", column, format!("`{column}` = `{v}` is not one of {allowed:?}"))),
    }
}

/// An inspection label of a block's row (see [`label`]).
pub fn label_value(raw: Option<Raw<'_>>, allowed: &[i8], column: &str) -> Result<Option<i8>, Reject> {
    match raw {
        Some(Raw::Integer(x)) if allowed.iter().any(|a| i64::from(*a) == x) => Ok(i8::try_from(x).ok()),
        // A label column of floats (as a file with missing labels often has it): `1.0` is `1`.
        #[allow(clippy::float_cmp, reason = "a label is an exact small integer")]
        Some(Raw::Number(x)) if allowed.iter().any(|a| f64::from(*a) == x) => Ok(Some(x as i8)),
        Some(Raw::Text(s)) => label(Some(s), allowed, column),
        Some(other) => label(Some(&other.text()), allowed, column),
        None => Ok(None),
    }
}

/// An ISO 4217-shaped currency code.
pub fn currency(raw: &str, column: &str) -> Result<String, Reject> {
    currency_code(raw, column).map(Cow::into_owned)
}

/// An ISO 4217-shaped currency code, borrowed from `raw` when it is written as it should be.
pub fn currency_code<'r>(raw: &'r str, column: &str) -> Result<Cow<'r, str>, Reject> {
    let v = raw.trim();
    if v.len() == 3 && v.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(if v.bytes().all(|b| b.is_ascii_uppercase()) { Cow::Borrowed(v) } else { Cow::Owned(v.to_ascii_uppercase()) })
    } else {
        Err(Reject::new("bad_currency", column, format!("`{column}` = `{raw}` is not an ISO 4217 code")))
    }
}

/// A period, `YYYY` or `YYYY-MM` (also `YYYYMM` and `YYYY.0`), normalised to `YYYY` / `YYYY-MM`.
pub fn period(raw: &str, column: &str) -> Result<String, Reject> {
    let v = raw.trim();
    let v = v.strip_suffix(".0").unwrap_or(v);
    let bad = || Reject::new("bad_period", column, format!("`{column}` = `{raw}` is not YYYY or YYYY-MM"));
    let (year, month) = match v.len() {
        4 => (v, None),
        6 => (&v[..4], Some(&v[4..])),
        7 if v.as_bytes()[4] == b'-' => (&v[..4], Some(&v[5..])),
        _ => return Err(bad()),
    };
    let y: u32 = year.parse().map_err(|_| bad())?;
    if !(1900..=2200).contains(&y) {
        return Err(bad());
    }
    match month {
        None => Ok(format!("{y:04}")),
        Some(m) => {
            let m: u32 = m.parse().map_err(|_| bad())?;
            if (1..=12).contains(&m) { Ok(format!("{y:04}-{m:02}")) } else { Err(bad()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn control_characters_are_told_as_decoding_every_character_tells_them(text in "(\\PC|[\u{0}-\u{1f}\u{7f}-\u{a0}]|[a-zA-Z ]){0,12}") {
            proptest::prop_assert_eq!(has_control(&text), text.chars().any(char::is_control));
        }

        #[test]
        fn party_ids_are_cased_as_the_unicode_rules_case_them(id in "(\\PC|[a-zA-Z0-9 -]){0,10}") {
            let trimmed = id.trim();
            let upper = if trimmed.chars().any(char::is_lowercase) { trimmed.to_uppercase() } else { trimmed.to_owned() };
            let lower = if trimmed.chars().any(char::is_uppercase) { trimmed.to_lowercase() } else { trimmed.to_owned() };
            proptest::prop_assert_eq!(party_id(Cow::Borrowed(&id), IdCase::Upper), upper);
            proptest::prop_assert_eq!(party_id(Cow::Borrowed(&id), IdCase::Lower), lower);
            proptest::prop_assert_eq!(party_id(Cow::Borrowed(&id), IdCase::Keep), trimmed);
        }
    }

    #[test]
    fn item_numbers_default_to_one_and_are_whole_and_positive() {
        let item = |raw: Option<Raw<'_>>| item_no_value(raw, '.', "item_no");
        assert_eq!(item(None).unwrap(), 1);
        assert_eq!(item(Some(Raw::Text(" "))).unwrap(), 1);
        assert_eq!(item(Some(Raw::Text("3"))).unwrap(), 3);
        assert_eq!(item(Some(Raw::Integer(7))).unwrap(), 7);
        for bad in ["0", "-1", "1.5", "100001"] {
            assert_eq!(item(Some(Raw::Text(bad))).unwrap_err().code, "bad_item_no", "{bad}");
        }
        assert_eq!(item(Some(Raw::Text("x"))).unwrap_err().code, "not_a_number");
    }

    #[test]
    fn declaration_ids_are_mandatory_and_free_of_control_characters() {
        assert_eq!(declaration_id_value(Some(Raw::Text(" D1 ")), "declaration_id").unwrap(), "D1");
        assert_eq!(declaration_id_value(Some(Raw::Integer(42)), "declaration_id").unwrap(), "42");
        assert_eq!(declaration_id_value(Some(Raw::Text("")), "declaration_id").unwrap_err().code, "missing_value");
        assert_eq!(declaration_id_value(Some(Raw::Text("D\u{7}1")), "declaration_id").unwrap_err().code, "control_character");
    }

    #[test]
    fn required_rejects_empty_and_nul() {
        assert_eq!(required(Some(" x "), "c").unwrap(), "x");
        assert_eq!(required(Some(""), "c").unwrap_err().code, "missing_value");
        assert_eq!(required(None, "c").unwrap_err().code, "missing_value");
        assert_eq!(required(Some("a\0b"), "c").unwrap_err().code, "control_character");
    }

    #[test]
    fn numbers_follow_the_dialect() {
        assert_eq!(number("1.299,99", ',', "v").unwrap(), 1299.99);
        assert_eq!(number("1,299.99", '.', "v").unwrap(), 1299.99);
        assert_eq!(number("372254.4", '.', "v").unwrap(), 372_254.4);
        assert_eq!(number("1,5", '.', "v").unwrap_err().code, "not_a_number");
        assert_eq!(number("abc", '.', "v").unwrap_err().code, "not_a_number");
        assert_eq!(number("NaN", '.', "v").unwrap_err().code, "not_a_number");
        assert_eq!(number("1e999", '.', "v").unwrap_err().code, "not_finite");
    }

    #[test]
    fn negative_values_are_rejected() {
        assert_eq!(non_negative("-3", '.', "m").unwrap_err().code, "negative_value");
        assert_eq!(non_negative("0", '.', "m").unwrap(), 0.0);
    }

    #[test]
    fn rates_are_bounded() {
        assert_eq!(rate_pct("8.0", '.', "r").unwrap(), 8.0);
        assert_eq!(rate_pct("5000", '.', "r").unwrap_err().code, "out_of_range");
    }

    #[test]
    fn dates_use_the_declared_format_and_range() {
        let min = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
        let max = NaiveDate::from_ymd_opt(2030, 12, 31).unwrap();
        assert!(date("2020-01-31", "%Y-%m-%d", min, max, "d").is_ok());
        assert_eq!(date("31/01/2020", "%Y-%m-%d", min, max, "d").unwrap_err().code, "bad_date");
        assert_eq!(date("1899-01-01", "%Y-%m-%d", min, max, "d").unwrap_err().code, "date_out_of_range");
        assert_eq!(date("2020-02-30", "%Y-%m-%d", min, max, "d").unwrap_err().code, "bad_date");
    }

    #[test]
    fn countries_normalise_and_sentinels_depend_on_context() {
        assert_eq!(country_code("KOR", false, "o").unwrap(), "KR");
        assert_eq!(country_code("Q9", false, "o").unwrap_err().code, "unknown_country");
        assert_eq!(country_code("0", false, "o").unwrap_err().code, "not_a_country");
        assert_eq!(country_code("0", true, "p").unwrap(), "W0");
        assert_eq!(declared_country("ZZ", "o").unwrap(), "XX");
        assert_eq!(declared_country("WLD", "o").unwrap_err().code, "not_a_country");
    }

    #[test]
    fn hs_codes_are_repaired_or_rejected() {
        let all = &hs::Vintage::ALL[..];
        assert_eq!(hs_code("10121", &[6], all, "h").unwrap().code, "010121");
        assert_eq!(hs_code("1234", &[6, 8, 10], all, "h").unwrap_err().code, "hs_length");
        assert_eq!(hs_code("12AB56", &[6], all, "h").unwrap_err().code, "hs_not_digits");
        // A repair into a code that does not exist is a length error, whatever the length.
        for raw in ["8471300", "847130000", "84713"] {
            assert_eq!(hs_code(raw, &[6, 8, 10], all, "h").unwrap_err().code, "hs_length", "{raw}");
        }
        // 0309.10 (fish flours) is new in 2022: repaired under 2022, refused under 2017 alone.
        assert_eq!(hs_code("30910", &[6], &[hs::Vintage::Hs2022], "h").unwrap().code, "030910");
        assert_eq!(hs_code("30910", &[6], &[hs::Vintage::Hs2017], "h").unwrap_err().code, "hs_length");
    }

    #[test]
    fn unknown_codes_pass_unless_every_code_must_be_known() {
        let all = &hs::Vintage::ALL[..];
        let code = |raw: &str| hs_code(raw, &[6, 8], all, "h").unwrap();
        assert!(known_hs(code("08030000"), "08030000", HsKnown::Repairs, all, "h").is_ok());
        assert_eq!(known_hs(code("08030000"), "08030000", HsKnown::All, all, "h").unwrap_err().code, "hs_unknown");
        assert_eq!(known_hs(code("851713"), "851713", HsKnown::All, &[hs::Vintage::Hs2017], "h").unwrap_err().code, "hs_unknown");
        assert!(known_hs(code("85171300"), "85171300", HsKnown::All, all, "h").is_ok());
    }

    #[test]
    fn party_ids_are_trimmed_and_cased() {
        for raw in [" imp-01", "IMP-01", "Imp-01 ", "\timp-01"] {
            assert_eq!(party_id(Cow::Borrowed(raw), IdCase::Upper), "IMP-01", "{raw:?}");
            assert_eq!(party_id(Cow::Owned(raw.to_owned()), IdCase::Lower), "imp-01", "{raw:?}");
        }
        assert_eq!(party_id(Cow::Borrowed(" Imp-01 "), IdCase::Keep), "Imp-01");
        assert!(matches!(party_id(Cow::Borrowed("IMP-01"), IdCase::Upper), Cow::Borrowed(_)));
        assert_eq!(party_id(Cow::Borrowed("straße"), IdCase::Upper), "STRASSE");
    }

    #[test]
    fn items_outside_the_plausible_ranges_are_named() {
        let b = ItemBounds { max_value_usd: 1e10, max_mass_kg: 1e9, unit_price_usd_per_kg: [1e-6, 1e8] };
        assert!(b.check(1e9, 10.0).is_ok());
        assert!(b.check(0.0, 0.0).is_ok(), "a free item without mass has no unit price");
        assert_eq!(b.check(9.9e12, 1e6).unwrap_err().code, "implausible_value");
        assert_eq!(b.check(f64::INFINITY, 1.0).unwrap_err().code, "implausible_value");
        assert_eq!(b.check(1.0, 2e9).unwrap_err().code, "implausible_mass");
        assert_eq!(b.check(5e9, 1.0).unwrap_err().code, "implausible_unit_price");
        assert_eq!(b.check(0.001, 1e6).unwrap_err().code, "implausible_unit_price");
    }

    #[test]
    fn labels_accept_only_known_values() {
        assert_eq!(label(Some(""), &[0, 1], "f").unwrap(), None);
        assert_eq!(label(Some("1"), &[0, 1], "f").unwrap(), Some(1));
        assert_eq!(label(Some("2"), &[0, 1], "f").unwrap_err().code, "bad_label");
    }

    #[test]
    fn typed_labels_read_as_their_text() {
        for raw in
            [Raw::Integer(1), Raw::Integer(3), Raw::Number(1.0), Raw::Number(-0.0), Raw::Number(0.5), Raw::Number(f64::NAN), Raw::Text("1")]
        {
            assert_eq!(label_value(Some(raw), &[0, 1], "f"), label(Some(&raw.text()), &[0, 1], "f"), "{raw:?}");
        }
    }

    #[test]
    fn currencies_and_periods() {
        assert_eq!(currency("krw", "c").unwrap(), "KRW");
        assert_eq!(currency("K1", "c").unwrap_err().code, "bad_currency");
        assert_eq!(period("2009.0", "p").unwrap(), "2009");
        assert_eq!(period("202103", "p").unwrap(), "2021-03");
        assert_eq!(period("2021-13", "p").unwrap_err().code, "bad_period");
    }
}
