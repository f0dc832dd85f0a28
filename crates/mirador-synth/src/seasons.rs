//! Seasonality and a planted revenue leak, for the revenue forecasts (both off by default).
//!
//! - **Seasonality**: the number of declarations per month follows a yearly cycle, `1 + a ×
//!   cos(2π (month − 11) / 12)` (a peak in November before the year-end trade, a trough in May),
//!   with `a` the amplitude. Mirror exports follow, since partners report the same goods.
//! - **Leak** ([`LeakParams`]): from a chosen month, the goods of one HS chapter are declared at a
//!   fraction of their value (an undervaluation wave: the duty collected on the chapter quietly
//!   falls) while the partners' exports of the same goods, reported at their true value, do not.
//!   The leak is the ground truth of the forecasts' alarms: its chapter and first month are in
//!   `world.json`, and its items are `undervaluation` in `truth_declarations`.
//!
//! Neither draws a random number, so with both off the world is the one the seed always gave,
//! byte for byte.

use serde::Serialize;

use crate::SynthError;
use crate::catalog::PRODUCTS;

/// A planted revenue leak.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct LeakParams {
    /// The HS chapter (two digits) whose duty leaks; one of the world's products' chapters.
    pub chapter: String,
    /// First month of the leak, `YYYY-MM`, within the world's months (not the first).
    pub period: String,
    /// Share of the declared value (hence of the duty) that the chapter's items lose, in (0, 1).
    pub depth: f64,
}

impl LeakParams {
    /// The leak's first month as an index of the world's months, checked.
    pub(crate) fn check(&self, (year0, month0): (i32, u32), months: u32) -> Result<u32, SynthError> {
        let bad = |m: String| Err(SynthError::Params(m));
        if !(self.depth > 0.0 && self.depth < 1.0) {
            return bad(format!("leak-depth = {} is not in (0, 1)", self.depth));
        }
        if !PRODUCTS.iter().any(|p| p.hs6[..2] == *self.chapter) {
            let mut chapters: Vec<&str> = PRODUCTS.iter().map(|p| &p.hs6[..2]).collect();
            chapters.dedup();
            return bad(format!("leak-chapter `{}` is not a chapter of the world's goods ({})", self.chapter, chapters.join(", ")));
        }
        let parsed = self.period.split_once('-').and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)));
        let Some((y, m)) = parsed.filter(|(_, m)| (1..=12).contains(m) && self.period.len() == 7) else {
            return bad(format!("leak-period `{}` is not a YYYY-MM month", self.period));
        };
        let index = (y - year0) * 12 + m as i32 - month0 as i32;
        if index < 1 || index >= months as i32 {
            return bad(format!("leak-period {} must be after the first month and within the world's {months} months", self.period));
        }
        Ok(index as u32)
    }
}

/// The relative volume of calendar month `month` (1–12) with amplitude `a`.
pub(crate) fn weight(month: u32, a: f64) -> f64 {
    1.0 + a * (std::f64::consts::TAU * (f64::from(month) - 11.0) / 12.0).cos()
}

/// With seasonality of amplitude `a`: the index of the first declaration of each month and the
/// total, `bounds[m]..bounds[m + 1]` being month `m`'s declarations.
pub(crate) fn month_bounds(declarations: usize, months: u32, month0: u32, a: f64) -> Vec<usize> {
    let w: Vec<f64> = (0..months).map(|m| weight((month0 - 1 + m) % 12 + 1, a)).collect();
    let total: f64 = w.iter().sum();
    let mut bounds = Vec::with_capacity(months as usize + 1);
    let mut acc = 0.0;
    bounds.push(0);
    for x in &w {
        acc += x;
        bounds.push(((acc / total) * declarations as f64).round() as usize);
    }
    if let Some(last) = bounds.last_mut() {
        *last = declarations;
    }
    bounds
}

/// The month of declaration `n`: from `bounds` ([`month_bounds`]) with seasonality, else the
/// world's equal months.
pub(crate) fn month_of(n: usize, declarations: usize, months: u32, bounds: Option<&[usize]>) -> u32 {
    match bounds {
        Some(b) => (b.partition_point(|&x| x <= n).saturating_sub(1) as u32).min(months - 1),
        None => (n as u64 * u64::from(months) / declarations as u64) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonal_months_cover_every_declaration_and_follow_the_cycle() {
        let b = month_bounds(12_000, 24, 1, 0.3);
        assert_eq!((b[0], b[24]), (0, 12_000));
        let sizes: Vec<usize> = b.windows(2).map(|w| w[1] - w[0]).collect();
        // November is the peak, May the trough, each year alike.
        assert!(sizes[10] > sizes[4] * 17 / 10, "{sizes:?}");
        assert_eq!(sizes[10].abs_diff(sizes[22]) <= 1, true);
        for n in [0, 1, 5_999, 11_999] {
            let m = month_of(n, 12_000, 24, Some(&b)) as usize;
            assert!(b[m] <= n && n < b[m + 1]);
        }
        // Without seasonality the months are the world's equal ones.
        assert_eq!(month_of(11_999, 12_000, 12, None), 11);
    }

    #[test]
    fn a_leak_outside_the_world_or_of_no_chapter_is_refused() {
        let leak = |c: &str, p: &str, d: f64| LeakParams { chapter: c.into(), period: p.into(), depth: d };
        assert_eq!(leak("61", "2023-06", 0.4).check((2023, 1), 12).unwrap(), 5);
        for bad in [
            leak("61", "2023-01", 0.4),
            leak("61", "2024-01", 0.4),
            leak("05", "2023-06", 0.4),
            leak("61", "2023-06", 1.0),
            leak("61", "23-06", 0.4),
        ] {
            assert!(bad.check((2023, 1), 12).is_err(), "{bad:?}");
        }
    }
}
