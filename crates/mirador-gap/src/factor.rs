//! The CIF/FOB factor that turns a partner's FOB export value into the CIF value the home
//! country's import statistics report: a configured constant, or estimated per partner as the
//! robust median of matched import/export ratios.
//!
//! Evasion only ever lowers the declared (import) side, so a factor estimated from the data
//! absorbs some of the gap it is meant to reveal when most flows are under-declared. The median
//! over many small matched flows (most of which carry no fraud) resists that better than a
//! value-weighted mean; the interquartile range of the ratios gives the bounds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How the factor is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FactorMethod {
    /// The configured `cif-fob-factor` for every partner.
    Configured,
    /// Estimated per partner from matched flows; the pooled estimate where a partner has too
    /// few pairs.
    Estimated,
}

/// Parameters of the factor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct FactorParams {
    /// Configured or estimated.
    pub factor_method: FactorMethod,
    /// The configured factor (and the fallback when nothing can be estimated).
    pub cif_fob_factor: f64,
    /// Half-width of the bounds around a configured factor.
    pub cif_fob_band: f64,
    /// Fewest matched pairs for a per-partner estimate.
    pub min_pairs: usize,
    /// Both sides of a pair must be at least this large (USD) to enter the estimate.
    pub min_pair_value_usd: f64,
    /// Ratios outside this range are reporting errors (unit slips, misallocated partners) and do
    /// not enter the estimate.
    pub plausible_ratio: [f64; 2],
}

impl Default for FactorParams {
    fn default() -> Self {
        FactorParams {
            factor_method: FactorMethod::Estimated,
            cif_fob_factor: 1.10,
            cif_fob_band: 0.05,
            min_pairs: 8,
            min_pair_value_usd: 1_000.0,
            plausible_ratio: [0.5, 2.0],
        }
    }
}

/// The factor applied to one partner's exports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Factor {
    /// Point value.
    pub factor: f64,
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Matched pairs behind an estimate (0 when configured).
    pub pairs: usize,
    /// `configured`, `estimated` or `pooled`.
    pub source: &'static str,
}

/// A matched flow: the home country's CIF imports from a partner and the partner's FOB exports
/// to the home country, for one HS code and period.
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    /// Partner (ISO alpha-2).
    pub partner: &'a str,
    /// Home imports, CIF USD.
    pub import_cif: f64,
    /// Partner exports, FOB USD.
    pub export_fob: f64,
}

/// Factors per partner, plus the pooled one for partners not listed.
#[derive(Debug, Clone, Serialize)]
pub struct Factors {
    /// Per partner.
    pub by_partner: BTreeMap<String, Factor>,
    /// Everyone else.
    pub pooled: Factor,
    /// Method used.
    pub method: FactorMethod,
}

impl Factors {
    /// The factor for a partner.
    pub fn get(&self, partner: &str) -> &Factor {
        self.by_partner.get(partner).unwrap_or(&self.pooled)
    }
}

/// Chooses the factors.
pub fn factors(pairs: &[Pair<'_>], params: &FactorParams) -> Factors {
    let configured = Factor {
        factor: params.cif_fob_factor,
        low: params.cif_fob_factor - params.cif_fob_band,
        high: params.cif_fob_factor + params.cif_fob_band,
        pairs: 0,
        source: "configured",
    };
    if params.factor_method == FactorMethod::Configured {
        return Factors { by_partner: BTreeMap::new(), pooled: configured, method: FactorMethod::Configured };
    }
    let usable = |p: &&Pair<'_>| p.import_cif >= params.min_pair_value_usd && p.export_fob >= params.min_pair_value_usd;
    let mut by: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut all = Vec::new();
    for p in pairs.iter().filter(usable) {
        let r = p.import_cif / p.export_fob;
        if r >= params.plausible_ratio[0] && r <= params.plausible_ratio[1] {
            by.entry(p.partner).or_default().push(r);
            all.push(r);
        }
    }
    let pooled = summarise(&mut all, "pooled").filter(|f| f.pairs >= params.min_pairs).unwrap_or(configured);
    let by_partner = by
        .into_iter()
        .filter(|(_, r)| r.len() >= params.min_pairs)
        .filter_map(|(p, mut r)| summarise(&mut r, "estimated").map(|f| (p.to_owned(), f)))
        .collect();
    Factors { by_partner, pooled, method: FactorMethod::Estimated }
}

/// Median and interquartile range of ratios.
fn summarise(ratios: &mut [f64], source: &'static str) -> Option<Factor> {
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    Some(Factor { factor: quantile(ratios, 0.5), low: quantile(ratios, 0.25), high: quantile(ratios, 0.75), pairs: ratios.len(), source })
}

/// Linear-interpolated quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The median CIF/FOB ratio of matched pairs where both sides exceed `min_value_usd` (the figure
/// published in mirror studies), or `None` without such pairs.
pub fn median_ratio(pairs: &[Pair<'_>], min_value_usd: f64) -> Option<f64> {
    let mut r: Vec<f64> = pairs
        .iter()
        .filter(|p| p.import_cif >= min_value_usd && p.export_fob >= min_value_usd)
        .map(|p| p.import_cif / p.export_fob)
        .collect();
    summarise(&mut r, "pooled").map(|f| f.factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(partner: &str, import_cif: f64, export_fob: f64) -> Pair<'_> {
        Pair { partner, import_cif, export_fob }
    }

    #[test]
    fn configured_factor_applies_to_everyone() {
        let f = factors(&[pair("CN", 110.0, 100.0)], &FactorParams { factor_method: FactorMethod::Configured, ..Default::default() });
        assert_eq!(f.get("CN").factor, 1.10);
        assert!((f.get("XY").low - 1.05).abs() < 1e-12 && (f.get("XY").high - 1.15).abs() < 1e-12);
    }

    #[test]
    fn estimate_is_the_median_and_ignores_implausible_and_tiny_pairs() {
        let mut pairs: Vec<Pair<'_>> =
            [1.05, 1.06, 1.07, 1.08, 1.09, 1.10, 1.11, 1.12, 1.13].iter().map(|r| pair("CN", 10_000.0 * r, 10_000.0)).collect();
        pairs.push(pair("CN", 1_000_000.0, 10_000.0)); // a unit slip: ratio 100
        pairs.push(pair("CN", 5.0, 100.0)); // too small to count
        let f = factors(&pairs, &FactorParams::default());
        let cn = f.get("CN");
        assert!((cn.factor - 1.09).abs() < 1e-12, "{cn:?}");
        assert_eq!(cn.pairs, 9);
        assert!((cn.low - 1.07).abs() < 1e-12 && (cn.high - 1.11).abs() < 1e-12);
        // A partner without enough pairs gets the pooled estimate.
        assert_eq!(f.get("DE").source, "pooled");
    }

    #[test]
    fn nothing_to_estimate_falls_back_to_the_configured_factor() {
        let f = factors(&[], &FactorParams::default());
        assert_eq!(f.get("CN").source, "configured");
    }

    #[test]
    fn cif_fob_arithmetic() {
        // FOB 100 with a factor of 1.08 is CIF 108: declared 90 leaves a gap of 18.
        let f = Factor { factor: 1.08, low: 1.05, high: 1.1, pairs: 1, source: "estimated" };
        assert!((100.0 * f.factor - 90.0 - 18.0).abs() < 1e-9);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
    }
}
