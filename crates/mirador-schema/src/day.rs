//! Dates as the datasets hold them: a `date` column is a day number, the days since 1970-01-01
//! (arrow's and parquet's date). One place converts between day numbers, dates and
//! `YYYY-MM-DD` text.

use chrono::NaiveDate;

/// 1970-01-01, day 0.
fn epoch() -> NaiveDate {
    NaiveDate::default()
}

/// The day number of `date` (saturating at the ends of `i32`).
pub fn of(date: NaiveDate) -> i32 {
    i32::try_from((date - epoch()).num_days()).unwrap_or(if date < epoch() { i32::MIN } else { i32::MAX })
}

/// The date of day number `day`; `None` past the calendar.
pub fn date(day: i32) -> Option<NaiveDate> {
    epoch().checked_add_signed(chrono::TimeDelta::days(i64::from(day)))
}

/// Day number `day` as `YYYY-MM-DD` (a day past the calendar says so instead).
pub fn text(day: i32) -> String {
    date(day).map_or_else(|| format!("day {day} (past the calendar)"), |d| d.format("%Y-%m-%d").to_string())
}

/// The day number of a `YYYY-MM-DD` text.
pub fn parse(text: &str) -> Option<i32> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_dates_and_text_agree() {
        assert_eq!(text(0), "1970-01-01");
        assert_eq!(parse("2023-12-31"), Some(19_722));
        assert_eq!(text(19_722), "2023-12-31");
        assert_eq!(of(NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()), -1);
        assert_eq!(date(-1), NaiveDate::from_ymd_opt(1969, 12, 31));
        assert_eq!(parse("31/12/2023"), None);
        assert!(date(i32::MAX).is_none() && text(i32::MAX).contains("past the calendar"));
    }
}
