//! The optional release-time columns of declarations (WCO Time Release Study): the lane and the
//! times of arrival, lodgement, payment and release
//! ([`mirador_schema::schemas::RELEASE_TIME_COLUMNS`]).
//!
//! A time is `YYYY-MM-DD HH:MM[:SS]` (or with a `T` between date and time) or, in a typed file,
//! whole seconds since 1970-01-01. Each may be empty on a row. A row whose times cannot be true
//! is quarantined: released before the goods arrived (`release_before_arrival`), released before
//! the declaration was lodged (`release_before_lodgement`), paid before it was lodged
//! (`payment_before_lodgement`), or a time more than [`MAX_DAYS_FROM_DATE`] days from the
//! declaration's date (`release_time_out_of_range`, a year typed wrong). Lodging before arrival
//! is allowed (pre-arrival lodgement), and so is paying after release (deferred payment).

use std::borrow::Cow;

use chrono::{NaiveDate, NaiveDateTime};
use mirador_schema::col;
use polars::prelude::*;

use crate::read::{BlockRow, Raw};
use crate::rules::Reject;
use crate::source::{Field, Mapped};

/// The four time columns, in the order of [`Release::times`].
pub const TIMES: [&str; 4] = [col::ARRIVED_AT, col::LODGED_AT, col::PAID_AT, col::RELEASED_AT];

/// Most days a time may lie from the declaration's date.
pub const MAX_DAYS_FROM_DATE: i64 = 120;

/// Whether any of the sources carries a release-time column: then the declarations get all of
/// them (null where a source has none).
pub(crate) fn carried(sources: &[Mapped<'_>]) -> bool {
    sources.iter().any(|m| mirador_schema::schemas::RELEASE_TIME_COLUMNS.iter().any(|c| m.has(c)))
}

/// The source columns of the release times, resolved once per file.
pub(crate) struct ReleaseFields<'a> {
    lane: Field<'a>,
    times: [Field<'a>; 4],
    /// Whether the file carries any of them (mapped or defaulted): without, every row's release
    /// times are empty ([`Release::default`]) and valid.
    pub(crate) carried: bool,
}

impl<'a> ReleaseFields<'a> {
    pub(crate) fn new(m: &Mapped<'a>) -> Self {
        let carried = mirador_schema::schemas::RELEASE_TIME_COLUMNS.iter().any(|c| m.has(c));
        ReleaseFields { lane: m.field(col::LANE), times: TIMES.map(|c| m.field(c)), carried }
    }
}

/// One row's validated release times: seconds since 1970-01-01.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Release<'r> {
    pub(crate) lane: Option<Cow<'r, str>>,
    pub(crate) times: [Option<i64>; 4],
}

/// A time as seconds since 1970-01-01.
pub fn time_value(raw: Raw<'_>, column: &str) -> Result<i64, Reject> {
    let bad = |why: &str| Reject::new("time_unparsable", column, format!("`{column}` = `{}` {why}", raw.text()));
    match raw {
        Raw::Integer(s) => Ok(s),
        Raw::Text(s) => {
            let s = s.trim().trim_end_matches('Z');
            for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
                if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
                    return Ok(t.and_utc().timestamp());
                }
            }
            Err(bad("is not a time (`YYYY-MM-DD HH:MM[:SS]`)"))
        }
        Raw::Day(_) => Err(bad("is a date without a time of day")),
        Raw::Number(_) => Err(bad("is not a time (`YYYY-MM-DD HH:MM[:SS]`, or whole seconds since 1970)")),
    }
}

fn text(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(|| seconds.to_string(), |t| t.naive_utc().format("%Y-%m-%d %H:%M").to_string())
}

/// Validates a row's release times against each other and the declaration's date.
pub(crate) fn validate<'r>(f: &ReleaseFields<'r>, raw: BlockRow<'r>, date: NaiveDate) -> Result<Release<'r>, Reject> {
    let lane = match crate::rules::optional_value(f.lane.value(raw)) {
        Some(v) => {
            let v = v.text();
            if v.chars().any(char::is_control) {
                return Err(Reject::new("control_character", col::LANE, format!("`{}` contains a control character", col::LANE)));
            }
            Some(v)
        }
        None => None,
    };
    let mut times = [None; 4];
    let day = i64::from(mirador_schema::day::of(date)) * 86_400;
    for ((slot, field), name) in times.iter_mut().zip(&f.times).zip(TIMES) {
        if let Some(v) = crate::rules::optional_value(field.value(raw)) {
            let t = time_value(v, name)?;
            if (t - day).abs() > MAX_DAYS_FROM_DATE * 86_400 {
                return Err(Reject::new(
                    "release_time_out_of_range",
                    name,
                    format!("`{name}` = {} is more than {MAX_DAYS_FROM_DATE} days from the declaration's date {date}", text(t)),
                ));
            }
            *slot = Some(t);
        }
    }
    let [arrived, lodged, paid, released] = times;
    let order = |code: &'static str, column: &str, (a, a_name): (Option<i64>, &str), (b, b_name): (Option<i64>, &str)| match (a, b) {
        (Some(a), Some(b)) if b < a => {
            Err(Reject::new(code, column, format!("`{b_name}` = {} is before `{a_name}` = {}", text(b), text(a))))
        }
        _ => Ok(()),
    };
    order("release_before_arrival", col::RELEASED_AT, (arrived, col::ARRIVED_AT), (released, col::RELEASED_AT))?;
    order("release_before_lodgement", col::RELEASED_AT, (lodged, col::LODGED_AT), (released, col::RELEASED_AT))?;
    order("payment_before_lodgement", col::PAID_AT, (lodged, col::LODGED_AT), (paid, col::PAID_AT))?;
    Ok(Release { lane, times })
}

/// The release-time columns of accepted rows ([`mirador_schema::schemas::declaration_release_times`]).
pub(crate) fn columns<'x, 'r: 'x>(rows: impl Iterator<Item = &'x Release<'r>> + Clone) -> Vec<Column> {
    let mut out = vec![rows.clone().map(|r| r.lane.as_deref()).collect::<StringChunked>().with_name(col::LANE.into()).into_column()];
    for (i, name) in TIMES.iter().enumerate() {
        out.push(rows.clone().map(|r| r.times[i]).collect::<Int64Chunked>().with_name((*name).into()).into_column());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_the_accepted_forms_and_nothing_else() {
        let t = 19_722 * 86_400 + 13 * 3_600 + 5 * 60;
        for text in ["2023-12-31 13:05", "2023-12-31T13:05", "2023-12-31 13:05:00", "2023-12-31T13:05:00Z", " 2023-12-31 13:05 "] {
            assert_eq!(time_value(Raw::Text(text), "arrived_at"), Ok(t), "{text}");
        }
        assert_eq!(time_value(Raw::Integer(t), "arrived_at"), Ok(t));
        for raw in
            [Raw::Text("2023-12-31"), Raw::Text("31/12/2023 13:05"), Raw::Text("2023-12-31 25:00"), Raw::Day(19_722), Raw::Number(1.5)]
        {
            let err = time_value(raw, "paid_at").unwrap_err();
            assert_eq!(err.code, "time_unparsable");
            assert!(err.message.contains("`paid_at`"), "{}", err.message);
        }
    }
}
