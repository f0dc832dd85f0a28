//! Exchange rates and the tariff schedule: small reference tables, validated like any input.

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::FixedState;
use mirador_schema::col;
use polars::prelude::*;

use crate::read::RawRow;
use crate::reference;
use crate::rules::{self, Reject};
use crate::source::{Mapped, Quarantine, Reconciliation};

/// USD per unit of a currency, by period. A declaration dated in `YYYY-MM` uses that month's
/// rate, else the year's: never today's rate for an old declaration.
#[derive(Debug, Default, Clone)]
pub struct FxTable {
    /// Currency → period → rate: looked up by borrowed text for every declaration.
    rates: HashMap<String, HashMap<String, f64, FixedState>, FixedState>,
}

impl FxTable {
    /// The rate for `currency` in `period` (`YYYY-MM`); USD is always 1.
    pub fn rate(&self, currency: &str, period: &str) -> Option<f64> {
        if currency == "USD" {
            return Some(1.0);
        }
        let by_period = self.rates.get(currency)?;
        by_period.get(period).or_else(|| by_period.get(period.get(..4).unwrap_or(period))).copied()
    }

    /// Adds a rate (tests).
    pub fn insert(&mut self, currency: &str, period: &str, usd_per_unit: f64) {
        self.rates.entry(currency.to_owned()).or_default().insert(period.to_owned(), usd_per_unit);
    }
}

/// Canonical columns an FX source must provide.
pub const FX_MANDATORY: &[&str] = &[col::CURRENCY, col::PERIOD, col::USD_PER_UNIT];
/// Canonical columns a tariff source must provide.
pub const TARIFF_MANDATORY: &[&str] = &[col::HS_PREFIX, col::RATE_PCT];

/// Plausibility of exchange rates (from the ingest parameters).
#[derive(Debug, Clone, Default)]
pub struct FxBounds {
    /// USD per unit of any currency.
    pub usd_per_unit: [f64; 2],
    /// Bands of named currencies.
    pub bands: BTreeMap<String, [f64; 2]>,
    /// Largest factor between a rate and its currency's median.
    pub max_ratio_to_median: f64,
}

impl FxBounds {
    fn check(&self, currency: &str, rate: f64) -> Result<(), Reject> {
        let [lo, hi] = self.usd_per_unit;
        if !(lo..=hi).contains(&rate) {
            return Err(Reject::new(
                "implausible_fx_rate",
                col::USD_PER_UNIT,
                format!(
                    "{rate} USD per {currency} is outside fx-usd-per-unit = [{lo:e}, {hi}]: an inverted rate (units per USD) or a slipped decimal"
                ),
            ));
        }
        if let Some(&[lo, hi]) = self.bands.get(currency)
            && !(lo..=hi).contains(&rate)
        {
            return Err(Reject::new(
                "implausible_fx_rate",
                col::USD_PER_UNIT,
                format!("{rate} USD per {currency} is outside its band fx-bands.{currency} = [{lo}, {hi}]"),
            ));
        }
        Ok(())
    }
}

/// A source's rows as read: valid ones with their file, the others already quarantined.
struct Parsed<T> {
    rows: Vec<(usize, RawRow, T)>,
}

/// Reads every row of `sources`, quarantining those `parse` rejects.
fn parse_all<T>(
    sources: &[Mapped<'_>],
    dataset: &str,
    quarantine: &mut Quarantine,
    rec: &mut Reconciliation,
    mut parse: impl FnMut(&Mapped<'_>, &RawRow) -> Result<T, Reject>,
) -> Result<Parsed<T>, crate::IngestError> {
    let mut rows = Vec::new();
    for (f, m) in sources.iter().enumerate() {
        while let Some(raw) = m.next_row()? {
            rec.rows_in += 1;
            let parsed = match &raw.malformed {
                Some(why) => Err(Reject::new(why.code, "", format!("line {} {why}", raw.line))),
                None => parse(m, &raw),
            };
            match parsed {
                Ok(t) => rows.push((f, raw, t)),
                Err(reject) => quarantine.push(dataset, m, &raw, &reject),
            }
        }
    }
    Ok(Parsed { rows })
}

impl<T> Parsed<T> {
    /// Quarantines the rows `verdicts` rejects, keeps the others (in order).
    fn settle(self, verdicts: Vec<Option<Reject>>, sources: &[Mapped<'_>], dataset: &str, quarantine: &mut Quarantine) -> Self {
        let mut rows = Vec::with_capacity(self.rows.len());
        for ((f, raw, t), verdict) in self.rows.into_iter().zip(verdicts) {
            match verdict {
                Some(reject) => quarantine.push(dataset, &sources[f], &raw, &reject),
                None => rows.push((f, raw, t)),
            }
        }
        Parsed { rows }
    }
}

#[allow(clippy::too_many_arguments, reason = "each closure is one concern of the table")]
/// Reads and settles a reference table: rows parsed, then repeats of a key quarantined
/// ([`reference::repeats`]).
pub(crate) fn parse_reference<T, K: std::hash::Hash + Eq, C: PartialEq>(
    sources: &[Mapped<'_>],
    dataset: &str,
    quarantine: &mut Quarantine,
    rec: &mut Reconciliation,
    parse: impl FnMut(&Mapped<'_>, &RawRow) -> Result<T, Reject>,
    key: impl Fn(&T) -> (K, C),
    column: &str,
    what: impl Fn(&K) -> String,
    show: impl Fn(&C) -> String,
) -> Result<Vec<(usize, RawRow, T)>, crate::IngestError> {
    let parsed = parse_all(sources, dataset, quarantine, rec, parse)?;
    let keyed: Vec<reference::Keyed<K, C>> = parsed
        .rows
        .iter()
        .map(|(_, raw, t)| {
            let (key, content) = key(t);
            reference::Keyed { key, content, line: raw.line }
        })
        .collect();
    let verdicts = reference::repeats(&keyed, column, what, show);
    drop(keyed);
    Ok(parsed.settle(verdicts, sources, dataset, quarantine).rows)
}

/// Quarantines the rows `verdict` rejects among `rows`, keeping the others in order.
pub(crate) fn settle<T>(
    rows: Vec<(usize, RawRow, T)>,
    verdicts: Vec<Option<Reject>>,
    sources: &[Mapped<'_>],
    dataset: &str,
    quarantine: &mut Quarantine,
) -> Vec<(usize, RawRow, T)> {
    Parsed { rows }.settle(verdicts, sources, dataset, quarantine).rows
}

/// Validates exchange rates: one rate per currency and period (a copy is a `duplicate`, rates
/// that disagree are all `conflict`), within the plausible bounds, and within
/// `max_ratio_to_median` of the median of the currency's rates (`implausible_fx_rate`).
pub fn ingest_fx(
    sources: &[Mapped<'_>],
    bounds: &FxBounds,
    quarantine: &mut Quarantine,
) -> Result<(DataFrame, FxTable, Reconciliation), crate::IngestError> {
    let mut rec = Reconciliation::default();
    let rows = parse_reference(
        sources,
        crate::FX_RATES,
        quarantine,
        &mut rec,
        |m, raw| {
            let c = rules::currency(rules::required(m.get(raw, col::CURRENCY), col::CURRENCY)?, col::CURRENCY)?;
            let p = rules::period(rules::required(m.get(raw, col::PERIOD), col::PERIOD)?, col::PERIOD)?;
            let r = rules::number(rules::required(m.get(raw, col::USD_PER_UNIT), col::USD_PER_UNIT)?, m.decimal(), col::USD_PER_UNIT)?;
            if r <= 0.0 {
                return Err(Reject::new("non_positive_rate", col::USD_PER_UNIT, format!("rate {r} is not positive")));
            }
            bounds.check(&c, r)?;
            Ok((c, p, r))
        },
        |(c, p, r)| ((c.clone(), p.clone()), r.to_bits()),
        col::PERIOD,
        |(c, p)| format!("rate of {c} in {p}"),
        |bits| f64::from_bits(*bits).to_string(),
    )?;
    // An inverted or slipped rate among right ones: far from its currency's median.
    let mut by_currency: HashMap<&str, Vec<f64>> = HashMap::new();
    for (_, _, (c, _, r)) in &rows {
        by_currency.entry(c.as_str()).or_default().push(*r);
    }
    let medians: HashMap<String, f64> = by_currency
        .into_iter()
        .filter(|(_, rates)| rates.len() >= 3)
        .map(|(c, mut rates)| {
            rates.sort_by(f64::total_cmp);
            (c.to_owned(), rates[rates.len() / 2])
        })
        .collect();
    let k = bounds.max_ratio_to_median;
    let verdicts = rows
        .iter()
        .map(|(_, _, (c, p, r))| {
            let median = *medians.get(c)?;
            let ratio = r / median;
            (ratio > k || ratio < 1.0 / k).then(|| {
                Reject::new(
                    "implausible_fx_rate",
                    col::USD_PER_UNIT,
                    format!(
                        "{r} USD per {c} in {p} is {ratio:.3e} times the median of the {c} rates ({median}), beyond fx-max-ratio-to-median = {k}: an inverted rate or a slipped decimal"
                    ),
                )
            })
        })
        .collect();
    let rows = settle(rows, verdicts, sources, crate::FX_RATES, quarantine);
    let mut table = FxTable::default();
    let (mut cur, mut per, mut rate) = (Vec::new(), Vec::new(), Vec::new());
    for (_, _, (c, p, r)) in rows {
        table.insert(&c, &p, r);
        cur.push(c);
        per.push(p);
        rate.push(r);
    }
    rec.accepted = cur.len();
    rec.quarantined = rec.rows_in - rec.accepted;
    let df = DataFrame::new_infer_height(vec![
        Column::new(col::CURRENCY.into(), cur),
        Column::new(col::PERIOD.into(), per),
        Column::new(col::USD_PER_UNIT.into(), rate),
    ])?;
    Ok((df, table, rec))
}

/// Validates tariff lines: one rate per HS prefix and preference origin (the MFN line has
/// none). A copy is a `duplicate`; lines that disagree (rate or agreement) are all `conflict`,
/// and the flows they cover take the next shorter prefix's rate, or none.
pub fn ingest_tariffs(
    sources: &[Mapped<'_>],
    hs_vintages: &[mirador_schema::hs::Vintage],
    quarantine: &mut Quarantine,
) -> Result<(DataFrame, Reconciliation), crate::IngestError> {
    let mut rec = Reconciliation::default();
    let rows = parse_reference(
        sources,
        crate::TARIFFS,
        quarantine,
        &mut rec,
        |m, raw| {
            let hs = rules::hs_code(
                rules::required(m.get(raw, col::HS_PREFIX), col::HS_PREFIX)?,
                &[2, 4, 6, 8, 10],
                hs_vintages,
                col::HS_PREFIX,
            )?;
            let o = match rules::optional(m.get(raw, col::PREFERENCE_ORIGIN)) {
                Some(v) => Some(rules::country_code(v, false, col::PREFERENCE_ORIGIN)?.to_owned()),
                None => None,
            };
            let a = rules::optional(m.get(raw, col::AGREEMENT)).map(str::to_owned);
            let r = rules::rate_pct(rules::required(m.get(raw, col::RATE_PCT), col::RATE_PCT)?, m.decimal(), col::RATE_PCT)?;
            Ok((hs.code, o, a, r))
        },
        |(h, o, a, r)| ((h.clone(), o.clone()), (a.clone(), r.to_bits())),
        col::HS_PREFIX,
        |(h, o)| match o {
            Some(o) => format!("tariff line {h} for origin {o}"),
            None => format!("MFN tariff line {h}"),
        },
        |(a, bits)| match a {
            Some(a) => format!("{} % ({a})", f64::from_bits(*bits)),
            None => format!("{} %", f64::from_bits(*bits)),
        },
    )?;
    let (mut prefix, mut origin, mut agreement, mut rate) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (_, _, (h, o, a, r)) in rows {
        prefix.push(h);
        origin.push(o);
        agreement.push(a);
        rate.push(r);
    }
    rec.accepted = prefix.len();
    rec.quarantined = rec.rows_in - rec.accepted;
    let df = DataFrame::new_infer_height(vec![
        Column::new(col::HS_PREFIX.into(), prefix),
        Column::new(col::PREFERENCE_ORIGIN.into(), origin),
        Column::new(col::AGREEMENT.into(), agreement),
        Column::new(col::RATE_PCT.into(), rate),
    ])?;
    Ok((df, rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monthly_rate_then_annual_then_none() {
        let mut fx = FxTable::default();
        fx.insert("KRW", "2020-01", 0.00086);
        fx.insert("KRW", "2020", 0.00085);
        assert_eq!(fx.rate("KRW", "2020-01"), Some(0.00086));
        assert_eq!(fx.rate("KRW", "2020-07"), Some(0.00085));
        assert_eq!(fx.rate("KRW", "2021-01"), None);
        assert_eq!(fx.rate("USD", "1999-01"), Some(1.0));
    }
}
