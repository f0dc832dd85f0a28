//! Exchange rates and the tariff schedule: small reference tables, validated like any input.

use std::collections::HashMap;

use foldhash::fast::FixedState;
use mirador_schema::col;
use polars::prelude::*;

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

/// Validates exchange rates.
pub fn ingest_fx(sources: &[Mapped<'_>], quarantine: &mut Quarantine) -> Result<(DataFrame, FxTable, Reconciliation), crate::IngestError> {
    let mut table = FxTable::default();
    let (mut cur, mut per, mut rate) = (Vec::new(), Vec::new(), Vec::new());
    let mut rec = Reconciliation::default();
    for m in sources {
        while let Some(raw) = m.next_row()? {
            let raw = &raw;
            rec.rows_in += 1;
            let parsed = (|| {
                if let Some(why) = &raw.malformed {
                    return Err(Reject::new(why.code, "", format!("line {} {why}", raw.line)));
                }
                let c = rules::currency(rules::required(m.get(raw, col::CURRENCY), col::CURRENCY)?, col::CURRENCY)?;
                let p = rules::period(rules::required(m.get(raw, col::PERIOD), col::PERIOD)?, col::PERIOD)?;
                let r = rules::number(rules::required(m.get(raw, col::USD_PER_UNIT), col::USD_PER_UNIT)?, m.decimal(), col::USD_PER_UNIT)?;
                if r <= 0.0 {
                    return Err(Reject::new("non_positive_rate", col::USD_PER_UNIT, format!("rate {r} is not positive")));
                }
                if table.rates.get(&c).is_some_and(|by_period| by_period.contains_key(&p)) {
                    return Err(Reject::new("duplicate", col::PERIOD, format!("second rate for {c} in {p}")));
                }
                Ok((c, p, r))
            })();
            match parsed {
                Ok((c, p, r)) => {
                    table.insert(&c, &p, r);
                    cur.push(c);
                    per.push(p);
                    rate.push(r);
                }
                Err(reject) => quarantine.push(crate::FX_RATES, m, raw, &reject),
            }
        }
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

/// Validates tariff lines.
pub fn ingest_tariffs(sources: &[Mapped<'_>], quarantine: &mut Quarantine) -> Result<(DataFrame, Reconciliation), crate::IngestError> {
    let (mut prefix, mut origin, mut agreement, mut rate) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut rec = Reconciliation::default();
    for m in sources {
        while let Some(raw) = m.next_row()? {
            let raw = &raw;
            rec.rows_in += 1;
            let parsed = (|| {
                if let Some(why) = &raw.malformed {
                    return Err(Reject::new(why.code, "", format!("line {} {why}", raw.line)));
                }
                let hs = rules::hs_code(rules::required(m.get(raw, col::HS_PREFIX), col::HS_PREFIX)?, &[2, 4, 6, 8, 10], col::HS_PREFIX)?;
                let o = match rules::optional(m.get(raw, col::PREFERENCE_ORIGIN)) {
                    Some(v) => Some(rules::country_code(v, false, col::PREFERENCE_ORIGIN)?.to_owned()),
                    None => None,
                };
                let a = rules::optional(m.get(raw, col::AGREEMENT)).map(str::to_owned);
                let r = rules::rate_pct(rules::required(m.get(raw, col::RATE_PCT), col::RATE_PCT)?, m.decimal(), col::RATE_PCT)?;
                Ok((hs.code, o, a, r))
            })();
            match parsed {
                Ok((h, o, a, r)) => {
                    prefix.push(h);
                    origin.push(o);
                    agreement.push(a);
                    rate.push(r);
                }
                Err(reject) => quarantine.push(crate::TARIFFS, m, raw, &reject),
            }
        }
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
