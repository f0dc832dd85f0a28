//! Pairing declared imports with partners' mirror exports per HS6 × partner × period and
//! computing the gap, the lost duty and the flags that explain a gap that is not fraud.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use foldhash::fast::FixedState;

use mirador_schema::{col, country};
use polars::prelude::*;

use crate::factor::{Factors, Pair, factors};
use crate::frames::KeyTexts;
use crate::tariff::TariffBook;
use crate::{DeclaredSource, GapParams};

/// Flows of one side of a cell.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Side {
    pub(crate) value: f64,
    pub(crate) weight: f64,
    pub(crate) rows: u32,
}

impl Side {
    fn add(&mut self, value: f64, weight: Option<f64>) {
        self.value += value;
        self.weight += weight.unwrap_or(0.0);
        self.rows += 1;
    }
}

/// (hs6, home country, partner, period)
pub(crate) type Key = (String, String, String, String);

/// A [`Key`] borrowed from the inputs' columns: the sides are summed and paired under these, and
/// only the cells' keys are owned.
pub(crate) type Borrowed<'a> = (&'a str, &'a str, &'a str, &'a str);

/// The two sides of every flow, at the periods the sources report.
pub(crate) struct Sides<'a> {
    pub(crate) declared: BTreeMap<Borrowed<'a>, Side>,
    pub(crate) mirror: BTreeMap<Borrowed<'a>, Side>,
    pub(crate) vintage: HashMap<Borrowed<'a>, (Option<&'a str>, Option<&'a str>), FixedState>,
    pub(crate) reporting_partners: BTreeSet<&'a str>,
    pub(crate) declared_source: &'static str,
    pub(crate) aggregate_rows: usize,
}

/// Reads both sides from the inputs: the mirror statistics, and the declared imports from them
/// or from the declarations' key columns `texts`.
pub(crate) fn sides<'a>(
    texts: &'a KeyTexts<'_>,
    declarations: &DataFrame,
    mirror_flows: &'a DataFrame,
    params: &'a GapParams,
) -> PolarsResult<Sides<'a>> {
    let home = params.home_country.as_str();
    let all_reporters = home == "*";
    let reporter = mirror_flows.column(col::REPORTER)?.str()?;
    let partner = mirror_flows.column(col::PARTNER)?.str()?;
    let period = mirror_flows.column(col::PERIOD)?.str()?;
    let hs = mirror_flows.column(col::HS_CODE)?.str()?;
    let flow = mirror_flows.column(col::FLOW)?.str()?;
    let value = mirror_flows.column(col::TRADE_VALUE_USD)?.f64()?;
    let weight = mirror_flows.column(col::NET_WEIGHT_KG)?.f64()?;
    let vintage = mirror_flows.column(col::HS_VINTAGE)?.str()?;

    // Summed under keys borrowed from the frame, rows in order, so each cell's sums and its last
    // reported vintage are the same.
    let mut stats_imports: HashMap<Borrowed<'_>, Side, FixedState> = HashMap::default();
    let mut mirror: HashMap<Borrowed<'_>, Side, FixedState> = HashMap::default();
    let mut vintages: HashMap<Borrowed<'_>, (Option<&str>, Option<&str>), FixedState> = HashMap::default();
    let mut reporting_partners: BTreeSet<&str> = BTreeSet::new();
    let mut aggregate_rows = 0;
    let is_area = |c: &str| c == country::WORLD || c == country::AREAS_NES;
    let columns = reporter.iter().zip(partner.iter()).zip(period.iter()).zip(hs.iter()).zip(flow.iter());
    let numbers = value.iter().zip(weight.iter()).zip(vintage.iter());
    for (((((r, p), per), h), f), ((v, w), vintage)) in columns.zip(numbers) {
        let (Some(r), Some(p), Some(per), Some(h), Some(f), Some(v)) = (r, p, per, h, f, v) else {
            continue;
        };
        if h.len() < 6 {
            aggregate_rows += 1; // HS2/HS4 totals: not paired at HS6
            continue;
        }
        let hs6 = &h[..6];
        if (all_reporters || r == home) && f == "import" && !is_area(p) && !is_area(r) {
            let key = (hs6, r, p, per);
            vintages.entry(key).or_default().0 = vintage;
            stats_imports.entry(key).or_default().add(v, w);
        } else if (all_reporters || p == home) && f == "export" && !is_area(r) && !is_area(p) {
            reporting_partners.insert(r);
            let key = (hs6, p, r, per);
            vintages.entry(key).or_default().1 = vintage;
            mirror.entry(key).or_default().add(v, w);
        }
    }
    let stats_imports: BTreeMap<Borrowed<'_>, Side> = stats_imports.into_iter().collect();
    let mirror: BTreeMap<Borrowed<'_>, Side> = mirror.into_iter().collect();
    let use_statistics = match params.declared_source {
        DeclaredSource::Statistics => true,
        DeclaredSource::Declarations => false,
        DeclaredSource::Auto => !stats_imports.is_empty(),
    };
    let declared = if use_statistics {
        stats_imports
    } else {
        let KeyTexts { hs6, origin, period } = texts;
        let value = declarations.column(col::VALUE_USD)?.f64()?;
        let mass = declarations.column(col::NET_MASS_KG)?.f64()?;
        // Summed under keys borrowed from the frame, rows in order, so each cell's sums are the
        // same.
        let mut sums: HashMap<(&str, &str, &str), Side, FixedState> = HashMap::default();
        let rows = hs6.iter().zip(origin.iter()).zip(period.iter()).zip(value.iter().zip(mass.iter()));
        for (((h, o), p), (v, m)) in rows {
            let (Some(h), Some(o), Some(p), Some(v)) = (h, o, p, v) else { continue };
            sums.entry((h, o, p)).or_default().add(v, m);
        }
        sums.into_iter().map(|((h, o, p), side)| ((h, home, o, p), side)).collect()
    };
    Ok(Sides {
        declared,
        mirror,
        vintage: vintages,
        reporting_partners,
        declared_source: if use_statistics { "statistics" } else { "declarations" },
        aggregate_rows,
    })
}

/// The matched pairs of the finest periods, for the CIF/FOB estimate.
pub(crate) fn pairs<'a>(sides: &Sides<'a>) -> Vec<Pair<'a>> {
    sides
        .mirror
        .iter()
        .filter_map(|(k, m)| sides.declared.get(k).map(|d| Pair { partner: k.2, import_cif: d.value, export_fob: m.value }))
        .collect()
}

/// One output cell.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    pub(crate) key: Key,
    pub(crate) declared: Side,
    pub(crate) mirror_fob: Side,
    pub(crate) mirror_cif: Option<f64>,
    pub(crate) mirror_cif_low: Option<f64>,
    pub(crate) mirror_cif_high: Option<f64>,
    pub(crate) factor: f64,
    pub(crate) rate_pct: Option<f64>,
    pub(crate) regime: Option<String>,
    pub(crate) flags: Vec<&'static str>,
    pub(crate) lost_duty: f64,
    pub(crate) lost_duty_low: f64,
    pub(crate) lost_duty_high: f64,
    pub(crate) quantity_weight: f64,
    pub(crate) material: bool,
}

impl Cell {
    pub(crate) fn gap(&self) -> Option<f64> {
        self.mirror_cif.map(|m| m - self.declared.value)
    }
}

/// Computes every cell at the output grain.
pub(crate) fn cells(sides: &Sides<'_>, tariffs: &TariffBook, params: &GapParams) -> (Vec<Cell>, Factors) {
    let factors = factors(&pairs(sides), &params.factor);
    // Aggregate both sides (mirror already converted to CIF per partner) to the output period.
    #[derive(Default)]
    struct Acc {
        declared: Side,
        fob: Side,
        cif: f64,
        cif_low: f64,
        cif_high: f64,
        vintage_mismatch: bool,
        other_vintage: bool,
    }
    // A side coded in another HS vintage than the configured one may hold codes that do not exist
    // (or mean something else) in the configured nomenclature.
    let other_vintage = |k: &Borrowed<'_>| {
        params
            .hs_vintage
            .as_deref()
            .is_some_and(|want| sides.vintage.get(k).is_some_and(|(a, b)| [a, b].into_iter().flatten().any(|v| *v != want)))
    };
    // Cells are keyed by borrowed text too; only their keys are owned, once per cell.
    let mut acc: BTreeMap<Borrowed<'_>, Acc> = BTreeMap::new();
    for (k, d) in &sides.declared {
        let a = acc.entry((k.0, k.1, k.2, params.period.of(k.3))).or_default();
        a.declared.value += d.value;
        a.declared.weight += d.weight;
        a.declared.rows += d.rows;
        a.other_vintage |= other_vintage(k);
    }
    for (k, m) in &sides.mirror {
        let f = factors.get(k.2);
        let a = acc.entry((k.0, k.1, k.2, params.period.of(k.3))).or_default();
        a.fob.value += m.value;
        a.fob.weight += m.weight;
        a.fob.rows += m.rows;
        a.cif += m.value * f.factor;
        a.cif_low += m.value * f.low;
        a.cif_high += m.value * f.high;
        a.other_vintage |= other_vintage(k);
        if let Some((Some(v1), Some(v2))) = sides.vintage.get(k)
            && v1 != v2
        {
            a.vintage_mismatch = true;
        }
    }
    let noise = params.reporting_noise;
    let all_reporters = params.home_country == "*";
    let cells = acc
        .into_iter()
        .map(|((hs6, home, partner, period), a)| {
            let key: Key = (hs6.to_owned(), home.to_owned(), partner.to_owned(), period.to_owned());
            let reports = sides.reporting_partners.contains(partner);
            let mut flags = Vec::new();
            if !reports {
                flags.push("partner_not_reporting");
            } else if a.fob.rows == 0 {
                flags.push("no_mirror_flow");
            }
            if a.declared.rows == 0 {
                flags.push("no_declared_imports");
            }
            if params.transit_hubs.iter().any(|h| h == &key.2) {
                flags.push("transit_hub");
            }
            if a.vintage_mismatch {
                flags.push("hs_vintage_mismatch");
            }
            if a.other_vintage {
                flags.push("hs_vintage_not_configured");
            }
            let material = a.declared.value.max(a.cif) >= params.materiality_usd;
            if !material {
                flags.push("below_materiality");
            }
            // The tariff schedule is the home country's; in all-reporters mode there is none.
            let applicable = if all_reporters { None } else { tariffs.applicable(&key.0, &key.2) };
            if applicable.is_none() {
                flags.push("no_tariff_line");
            }
            let rate = applicable.as_ref().map_or(0.0, |a| a.rate_pct) / 100.0;
            let (mirror_cif, low, high) = if reports { (Some(a.cif), Some(a.cif_low), Some(a.cif_high)) } else { (None, None, None) };
            let gap = mirror_cif.map(|m| m - a.declared.value);
            if gap.is_some_and(|g| g < 0.0) {
                flags.push("declared_exceeds_mirror");
            }
            // Within the reporting noise the sign of a gap means nothing: such cells count in
            // the point estimate and the upper bound, never in the lower bound.
            let within_noise = gap.zip(mirror_cif).is_some_and(|(g, m)| g.abs() <= noise * m.max(a.declared.value));
            if within_noise {
                flags.push("within_reporting_noise");
            }
            let lost = gap.map_or(0.0, |g| g.max(0.0) * rate);
            let lost_low = match low {
                Some(l) if material && !within_noise => ((l * (1.0 - noise)) - a.declared.value).max(0.0) * rate,
                _ => 0.0,
            };
            let lost_high = high.map_or(0.0, |h| ((h * (1.0 + noise)) - a.declared.value).max(0.0) * rate);
            let quantity_weight = quantity_agreement(a.declared.value, a.cif, a.declared.weight, a.fob.weight);
            Cell {
                factor: if a.fob.value > 0.0 { a.cif / a.fob.value } else { factors.get(&key.2).factor },
                key,
                declared: a.declared,
                mirror_fob: a.fob,
                mirror_cif,
                mirror_cif_low: low,
                mirror_cif_high: high,
                rate_pct: applicable.as_ref().map(|a| a.rate_pct),
                regime: applicable.map(|a| a.regime),
                flags,
                lost_duty: lost,
                lost_duty_low: lost_low.min(lost),
                lost_duty_high: lost_high.max(lost),
                quantity_weight,
                material,
            }
        })
        .collect();
    (cells, factors)
}

/// How much the quantities back the value gap, in [0.5, 1]. A value gap with matching weights
/// (the same goods declared cheaper) or with a weight gap of the same relative size (goods
/// missing altogether) is well supported: 1. A value gap the weights contradict — weights far
/// apart in the other direction, typically a unit or coverage problem — counts half.
pub(crate) fn quantity_agreement(declared_value: f64, mirror_value: f64, declared_weight: f64, mirror_weight: f64) -> f64 {
    if declared_weight <= 0.0 || mirror_weight <= 0.0 || mirror_value <= 0.0 {
        return 1.0;
    }
    let value_gap = (mirror_value - declared_value) / mirror_value;
    let weight_gap = (mirror_weight - declared_weight) / mirror_weight.max(declared_weight);
    if weight_gap.abs() <= 0.25 || (weight_gap.signum() == value_gap.signum() && weight_gap.abs() <= 2.0 * value_gap.abs() + 0.25) {
        1.0
    } else {
        0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_agreement_backs_undervaluation_and_missing_goods() {
        // Same weight, lower value: undervaluation.
        assert_eq!(quantity_agreement(60.0, 100.0, 1_000.0, 1_010.0), 1.0);
        // Half the value and half the weight missing: unrecorded goods.
        assert_eq!(quantity_agreement(50.0, 100.0, 500.0, 1_000.0), 1.0);
        // Value gap but declared weight far above the partner's: contradicts.
        assert_eq!(quantity_agreement(50.0, 100.0, 5_000.0, 1_000.0), 0.5);
        // No weights: nothing to contradict.
        assert_eq!(quantity_agreement(50.0, 100.0, 0.0, 1_000.0), 1.0);
    }
}
