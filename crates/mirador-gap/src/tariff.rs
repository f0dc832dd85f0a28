//! The applicable duty rate of a flow: the longest tariff prefix of its HS code, MFN or the
//! preferential rate when the origin qualifies.

use std::collections::HashMap;

use mirador_schema::col;
use polars::prelude::*;

/// A tariff schedule indexed by HS prefix.
#[derive(Debug, Default, Clone)]
pub struct TariffBook {
    /// prefix → MFN rate (%).
    mfn: HashMap<String, f64>,
    /// (prefix, origin) → (preferential rate %, agreement).
    preference: HashMap<(String, String), (f64, String)>,
}

/// The rate a flow pays.
#[derive(Debug, Clone, PartialEq)]
pub struct Applicable {
    /// Duty rate, percent.
    pub rate_pct: f64,
    /// `MFN` or the preference agreement.
    pub regime: String,
}

impl TariffBook {
    /// Builds the book from the canonical `tariffs` dataset.
    pub fn from_frame(tariffs: &DataFrame) -> PolarsResult<Self> {
        let prefix = tariffs.column(col::HS_PREFIX)?.str()?;
        let origin = tariffs.column(col::PREFERENCE_ORIGIN)?.str()?;
        let agreement = tariffs.column(col::AGREEMENT)?.str()?;
        let rate = tariffs.column(col::RATE_PCT)?.f64()?;
        let mut book = TariffBook::default();
        for i in 0..tariffs.height() {
            let (Some(p), Some(r)) = (prefix.get(i), rate.get(i)) else { continue };
            match origin.get(i) {
                None => book.insert_mfn(p, r),
                Some(o) => book.insert_preference(p, o, r, agreement.get(i).unwrap_or("preference")),
            }
        }
        Ok(book)
    }

    /// Adds an MFN line.
    pub fn insert_mfn(&mut self, prefix: &str, rate_pct: f64) {
        self.mfn.insert(prefix.to_owned(), rate_pct);
    }

    /// Adds a preferential line for one origin.
    pub fn insert_preference(&mut self, prefix: &str, origin: &str, rate_pct: f64, agreement: &str) {
        self.preference.insert((prefix.to_owned(), origin.to_owned()), (rate_pct, agreement.to_owned()));
    }

    /// The rate for goods of `hs` (any length ≥ 2) from `origin`: the longest matching MFN
    /// prefix, replaced by a preferential rate on an equal-or-longer prefix when the origin
    /// qualifies and the preference is lower. `None` when no line covers the code.
    pub fn applicable(&self, hs: &str, origin: &str) -> Option<Applicable> {
        let mut mfn = None;
        let mut pref: Option<&(f64, String)> = None;
        for len in (2..=hs.len()).rev() {
            let p = &hs[..len];
            if mfn.is_none() {
                mfn = self.mfn.get(p).copied();
            }
            if pref.is_none() {
                pref = self.preference.get(&(p.to_owned(), origin.to_owned()));
            }
        }
        match (mfn, pref) {
            (Some(m), Some((r, a))) if *r < m => Some(Applicable { rate_pct: *r, regime: a.clone() }),
            (Some(m), _) => Some(Applicable { rate_pct: m, regime: "MFN".into() }),
            (None, Some((r, a))) => Some(Applicable { rate_pct: *r, regime: a.clone() }),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> TariffBook {
        let mut b = TariffBook::default();
        b.insert_mfn("85", 10.0);
        b.insert_mfn("851712", 0.0);
        b.insert_mfn("6109", 35.0);
        b.insert_preference("6109", "UG", 0.0, "EAC");
        b.insert_preference("61", "EG", 17.5, "COMESA");
        b
    }

    #[test]
    fn longest_prefix_wins() {
        let b = book();
        assert_eq!(b.applicable("851712", "CN").unwrap().rate_pct, 0.0);
        assert_eq!(b.applicable("850440", "CN").unwrap().rate_pct, 10.0);
        assert!(b.applicable("010229", "CN").is_none());
    }

    #[test]
    fn preference_applies_only_to_qualifying_origins() {
        let b = book();
        assert_eq!(b.applicable("610910", "UG").unwrap(), Applicable { rate_pct: 0.0, regime: "EAC".into() });
        assert_eq!(b.applicable("610910", "EG").unwrap(), Applicable { rate_pct: 17.5, regime: "COMESA".into() });
        assert_eq!(b.applicable("610910", "CN").unwrap(), Applicable { rate_pct: 35.0, regime: "MFN".into() });
    }
}
