//! The generator itself.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use mirador_schema::col;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::catalog::{self, IMPORT_TYPES, NON_REPORTING, OFFICES, PARTNERS, PAYMENT_TYPES, PRODUCTS, TRANSPORT_MODES};
use crate::{SynthError, SynthParams, Truth, World};

type R = Xoshiro256PlusPlus;

fn normal(rng: &mut R) -> f64 {
    // Box–Muller; u1 in (0, 1].
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn lognormal(rng: &mut R, sigma: f64) -> f64 {
    (sigma * normal(rng)).exp()
}

/// Draws an index with probability proportional to its weight, from cumulative weights (one
/// binary search instead of a scan: importers number in the hundreds of thousands).
fn weighted_cum(rng: &mut R, cumulative: &[f64]) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let x = rng.r#gen::<f64>() * total;
    cumulative.partition_point(|c| *c <= x).min(cumulative.len().saturating_sub(1))
}

fn weighted(rng: &mut R, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.r#gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

pub(crate) struct Importer {
    pub(crate) id: String,
    pub(crate) weight: f64,
    pub(crate) high_risk: bool,
    pub(crate) products: Vec<usize>,
    pub(crate) origins: Vec<usize>,
    pub(crate) declarant: String,
}

/// Rate applicable to `product` from `origin`: MFN, or the preferential rate where the origin
/// qualifies.
fn rate(product: usize, origin: &str) -> (f64, &'static str) {
    let mfn = catalog::product(product).mfn_pct;
    match catalog::preference(origin) {
        Some((agreement, share)) => (mfn * share, agreement),
        None => (mfn, "MFN"),
    }
}

/// USD per KES in month `m` (a slowly depreciating shilling).
fn kes_rate(m: u32) -> f64 {
    0.0078 * (1.0 - 0.004 * f64::from(m))
}

#[derive(Default)]
pub(crate) struct Rows {
    declaration_id: Vec<String>,
    item_no: Vec<i32>,
    date: Vec<i32>,
    period: Vec<String>,
    office: Vec<&'static str>,
    process: Vec<&'static str>,
    import_type: Vec<&'static str>,
    import_use: Vec<&'static str>,
    payment: Vec<&'static str>,
    transport: Vec<&'static str>,
    declarant: Vec<String>,
    importer: Vec<String>,
    seller: Vec<String>,
    courier: Vec<Option<String>>,
    hs_code: Vec<String>,
    hs6: Vec<&'static str>,
    departure: Vec<&'static str>,
    origin: Vec<&'static str>,
    rate: Vec<f64>,
    tax_type: Vec<&'static str>,
    origin_indicator: Vec<&'static str>,
    mass: Vec<f64>,
    quantity: Vec<Option<f64>>,
    quantity_unit: Vec<Option<String>>,
    price: Vec<f64>,
    currency: Vec<&'static str>,
    value_usd: Vec<f64>,
    duty_usd: Vec<f64>,
    unit_price: Vec<Option<f64>>,
    fraud: Vec<Option<i8>>,
    critical: Vec<Option<i8>>,
    line: Vec<i32>,
    // truth
    kind: Vec<&'static str>,
    true_hs6: Vec<&'static str>,
    true_origin: Vec<&'static str>,
    true_value: Vec<f64>,
    lost_duty: Vec<f64>,
    /// With a shift only: the item belongs to the moved fraud.
    shifted: Vec<bool>,
}

/// Generates a world in memory.
pub fn generate(params: &SynthParams) -> Result<World, SynthError> {
    let mut g = Generator::new(params)?;
    let rows = g.next_chunk(usize::MAX).unwrap_or_default();
    let declarations = declarations_frame(&rows)?;
    let truth_declarations = truth_declarations(&rows)?;
    let importers = g.truth_importers(&rows)?;
    let (mirror_flows, gaps, tariffs, fx_rates) = g.finish()?;
    Ok(World { declarations, mirror_flows, tariffs, fx_rates, truth: Truth { declarations: truth_declarations, gaps, importers } })
}

/// Running totals over the rows generated so far: what the mirror statistics and the truth per
/// cell need, so that declarations can be written chunk by chunk in bounded memory.
#[derive(Default)]
struct Aggregates {
    /// Declared values by declared hs6 × origin × month.
    home: BTreeMap<(&'static str, &'static str, String), (f64, f64)>,
    /// True values by true hs6 × true origin × month (CIF).
    partner: BTreeMap<(&'static str, &'static str, String), (f64, f64)>,
    /// Per HS6 × partner × year: true CIF value − declared value.
    gap: BTreeMap<(&'static str, &'static str, String), f64>,
    /// Sum of true values.
    true_total: f64,
}

impl Aggregates {
    fn add(&mut self, rows: &Rows) {
        for i in 0..rows.hs6.len() {
            let h = self.home.entry((rows.hs6[i], rows.origin[i], rows.period[i].clone())).or_default();
            h.0 += rows.value_usd[i];
            h.1 += rows.mass[i];
            let p = self.partner.entry((rows.true_hs6[i], rows.true_origin[i], rows.period[i].clone())).or_default();
            p.0 += rows.true_value[i];
            p.1 += rows.mass[i];
            let year = rows.period[i][..4].to_owned();
            *self.gap.entry((rows.true_hs6[i], rows.true_origin[i], year.clone())).or_default() += rows.true_value[i];
            *self.gap.entry((rows.hs6[i], rows.origin[i], year)).or_default() -= rows.value_usd[i];
            self.true_total += rows.true_value[i];
        }
    }
}

/// The world generator: declarations come out in chunks (in order, the same rows whatever the
/// chunk size), the statistics and truth that summarise them at the end.
pub(crate) struct Generator<'p> {
    params: &'p SynthParams,
    rng: R,
    importers: Vec<Importer>,
    importer_cum: Vec<f64>,
    factors: Vec<f64>,
    year0: i32,
    month0: u32,
    next: usize,
    seq: usize,
    current: Option<(String, usize, usize, NaiveDate, u32)>, // id, importer, origin, date, month
    item: i32,
    agg: Aggregates,
    shift: Option<crate::shift::Shift>,
    /// With seasonality: the first declaration of each month.
    month_bounds: Option<Vec<usize>>,
    /// With a leak: its chapter, first month index and the share of value declared.
    leak: Option<(&'p str, u32, f64)>,
}

impl<'p> Generator<'p> {
    pub(crate) fn new(params: &'p SynthParams) -> Result<Self, SynthError> {
        let (year0, month0) = params.check()?;
        let mut rng = R::seed_from_u64(params.seed);
        let n_importers = (params.declarations / 25).clamp(20, 200_000);
        let partner_weights: Vec<f64> = PARTNERS.iter().map(|p| p.1).collect();
        let importers: Vec<Importer> = (0..n_importers)
            .map(|i| {
                let n_products = 1 + rng.gen_range(1..6);
                let n_origins = 1 + rng.gen_range(0..3);
                Importer {
                    id: format!("IMP{i:06}"),
                    weight: (1.0 - rng.r#gen::<f64>()).powf(-1.0 / 1.3),
                    high_risk: rng.r#gen::<f64>() < params.high_risk_share,
                    products: (0..n_products).map(|_| rng.gen_range(0..PRODUCTS.len())).collect(),
                    origins: (0..n_origins).map(|_| weighted(&mut rng, &partner_weights)).collect(),
                    declarant: format!("DCL{:03}", rng.gen_range(0..120)),
                }
            })
            .collect();
        let mut importers = importers;
        let importer_weights: Vec<f64> = importers.iter().map(|i| i.weight).collect();
        // Per-partner CIF/FOB factor and per-product price tiers.
        let factors: Vec<f64> = PARTNERS.iter().map(|_| rng.gen_range(1.06..1.10)).collect();

        let importer_cum: Vec<f64> = importer_weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w;
                Some(*acc)
            })
            .collect();
        // After the cumulative weights: the entrants are drawn only by the shift.
        let shift = crate::shift::Shift::new(params, (year0, month0), &mut importers)?;
        let month_bounds = params.seasonality.map(|a| crate::seasons::month_bounds(params.declarations, params.months, month0, a));
        let leak = match &params.leak {
            Some(l) => Some((l.chapter.as_str(), l.check((year0, month0), params.months)?, 1.0 - l.depth)),
            None => None,
        };
        Ok(Generator {
            params,
            rng,
            importers,
            importer_cum,
            factors,
            year0,
            month0,
            next: 0,
            seq: 0,
            current: None,
            item: 0,
            agg: Aggregates::default(),
            shift,
            month_bounds,
            leak,
        })
    }

    /// Truth per importer of `rows` (every item the world generated): `importer_id`, `high_risk`
    /// (the latent riskiness that sets its fraud rate), `declarations` (items) and
    /// `planted_lost_duty_usd`, importers in id order; those without an item are left out.
    fn truth_importers(&self, rows: &Rows) -> PolarsResult<DataFrame> {
        let mut tally: BTreeMap<&str, (u32, f64)> = BTreeMap::new();
        for (id, lost) in rows.importer.iter().zip(&rows.lost_duty) {
            let t = tally.entry(id.as_str()).or_default();
            t.0 += 1;
            t.1 += lost;
        }
        let high: BTreeMap<&str, bool> = self.importers.iter().map(|i| (i.id.as_str(), i.high_risk)).collect();
        DataFrame::new_infer_height(vec![
            Column::new(col::IMPORTER_ID.into(), tally.keys().copied().collect::<Vec<_>>()),
            Column::new("high_risk".into(), tally.keys().map(|id| high.get(id).copied().unwrap_or(false)).collect::<Vec<_>>()),
            Column::new("declarations".into(), tally.values().map(|t| t.0).collect::<Vec<_>>()),
            Column::new("planted_lost_duty_usd".into(), tally.values().map(|t| t.1).collect::<Vec<_>>()),
        ])
    }

    /// The next at most `max` declaration items, or `None` when all are out.
    pub(crate) fn next_chunk(&mut self, max: usize) -> Option<Rows> {
        let params = self.params;
        if self.next >= params.declarations {
            return None;
        }
        let end = self.next.saturating_add(max).min(params.declarations);
        let (year0, month0) = (self.year0, self.month0);
        let mut rng = self.rng.clone();
        let importers = &self.importers;
        let importer_cum = &self.importer_cum;
        let factors = &self.factors;
        let tiers = [0.55, 1.0, 1.9];
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
        let (mut seq, mut current, mut item) = (self.seq, self.current.take(), self.item);
        let mut rows = Rows::default();
        let _ = factors;
        let mut shift = self.shift.take();
        for n in self.next..end {
            // 25 % of items are further items of the previous declaration.
            let same = current.is_some() && item < 5 && rng.r#gen::<f64>() < 0.25;
            if !same {
                let m = crate::seasons::month_of(n, params.declarations, params.months, self.month_bounds.as_deref());
                let (y, mo) = (year0 + ((month0 - 1 + m) / 12) as i32, (month0 - 1 + m) % 12 + 1);
                let date = NaiveDate::from_ymd_opt(y, mo, rng.gen_range(1..=28)).unwrap_or(epoch);
                let mut imp = weighted_cum(&mut rng, importer_cum);
                let mut origin = importers[imp].origins[rng.gen_range(0..importers[imp].origins.len())];
                if let Some((entrant, entrant_origin)) = shift.as_mut().and_then(|s| s.entrant(m, importers)) {
                    (imp, origin) = (entrant, entrant_origin);
                }
                seq += 1;
                current = Some((format!("{y:04}{mo:02}{seq:07}"), imp, origin, date, m));
                item = 0;
            }
            item += 1;
            let Some((id, imp, origin_idx, date, m)) = current.clone() else { continue };
            let importer = &importers[imp];
            let product = importer.products[rng.gen_range(0..importer.products.len())];
            let origin = PARTNERS[origin_idx].0;
            // Quality, hence price, depends mostly on where goods come from: each origin sells a
            // product at one of three price tiers, with some items at another tier.
            let tier = if rng.r#gen::<f64>() < 0.8 {
                tiers[(product * 7 + origin_idx * 3) % tiers.len()]
            } else {
                tiers[weighted(&mut rng, &[0.3, 0.5, 0.2])]
            };
            let unit_price = catalog::product(product).price_usd_per_kg * tier * lognormal(&mut rng, 0.2);
            let mass = (200.0 * lognormal(&mut rng, 1.2)).max(1.0).round();
            let true_value = unit_price * mass;
            let (true_rate, _) = rate(product, origin);

            let mut fraud_rate = if importer.high_risk { params.high_risk_fraud_rate } else { params.low_risk_fraud_rate };
            if let Some(s) = &shift {
                fraud_rate = s.fraud_rate(imp, m, fraud_rate);
            }
            let mut kind = "none";
            let (mut declared_product, mut declared_origin, mut declared_value) = (product, origin, true_value);
            if rng.r#gen::<f64>() < fraud_rate {
                let roll: f64 = rng.r#gen();
                let cheaper: Vec<usize> = (0..PRODUCTS.len())
                    .filter(|&p| {
                        PRODUCTS[p].hs6[..2] == catalog::product(product).hs6[..2]
                            || PRODUCTS[p].mfn_pct + 15.0 <= catalog::product(product).mfn_pct
                    })
                    .filter(|&p| PRODUCTS[p].mfn_pct < catalog::product(product).mfn_pct)
                    .collect();
                if roll < 0.2 && !cheaper.is_empty() {
                    kind = "misclassification";
                    declared_product = cheaper[rng.gen_range(0..cheaper.len())];
                } else if roll < 0.4 && catalog::preference(origin).is_none() && catalog::product(product).mfn_pct > 0.0 {
                    kind = "false_origin";
                    declared_origin = ["UG", "TZ", "EG", "RW"][rng.gen_range(0..4)];
                } else {
                    kind = "undervaluation";
                    declared_value = true_value * rng.gen_range(0.2..0.55);
                }
            }
            // The planted leak: the chapter's goods declared at a fraction of their value.
            if let Some((chapter, from, kept)) = self.leak
                && m >= from
                && catalog::product(declared_product).hs6[..2] == *chapter
            {
                declared_value *= kept;
                if kind == "none" {
                    kind = "undervaluation";
                }
            }
            let (declared_rate, tax_type) = rate(declared_product, declared_origin);
            let usd_per_kes = kes_rate(m);
            let (currency, price) = if rng.r#gen::<f64>() < 0.15 { ("USD", declared_value) } else { ("KES", declared_value / usd_per_kes) };
            let price = (price * 100.0).round() / 100.0;
            let value_usd = if currency == "USD" { price } else { price * usd_per_kes };
            let duty = value_usd * declared_rate / 100.0;
            let lost = (true_value * true_rate / 100.0 - duty).max(0.0);

            let high = importer.high_risk;
            let inspected = rng.r#gen::<f64>() < params.inspection_rate * if high { 2.5 } else { 0.8 };
            let (fraud, critical) = if inspected {
                let planted = kind != "none";
                let observed = planted ^ (rng.r#gen::<f64>() < 0.03);
                (Some(i8::from(observed)), Some(if observed && lost > 500.0 { 2 } else { i8::from(observed) }))
            } else {
                (None, None)
            };

            let declared_hs6 = catalog::product(declared_product).hs6;
            rows.declaration_id.push(id);
            rows.item_no.push(item);
            rows.date.push((date - epoch).num_days() as i32);
            rows.period.push(date.format("%Y-%m").to_string());
            rows.office.push(OFFICES[imp % OFFICES.len()]);
            rows.process.push("B");
            rows.import_type.push(IMPORT_TYPES[weighted(&mut rng, &[0.8, 0.15, 0.05])]);
            rows.import_use.push("HC");
            rows.payment.push(PAYMENT_TYPES[weighted(&mut rng, &[0.3, 0.5, 0.1, 0.1])]);
            rows.transport.push(TRANSPORT_MODES[weighted(&mut rng, &[0.7, 0.2, 0.1])]);
            rows.declarant.push(importer.declarant.clone());
            rows.importer.push(importer.id.clone());
            rows.seller.push(format!("S{}{:04}", declared_origin, (imp * 7 + origin_idx) % 9973));
            rows.courier.push(None);
            rows.hs_code.push(format!("{declared_hs6}00"));
            rows.hs6.push(declared_hs6);
            rows.departure.push(if origin == "AE" || rng.r#gen::<f64>() > 0.1 { declared_origin } else { "AE" });
            rows.origin.push(declared_origin);
            rows.rate.push(declared_rate);
            rows.tax_type.push(tax_type);
            rows.origin_indicator.push(if tax_type == "MFN" { "N" } else { "C" });
            rows.mass.push(mass);
            rows.quantity.push(None);
            rows.quantity_unit.push(None);
            rows.price.push(price);
            rows.currency.push(currency);
            rows.value_usd.push(value_usd);
            rows.duty_usd.push(duty);
            rows.unit_price.push(Some(value_usd / mass));
            rows.fraud.push(fraud);
            rows.critical.push(critical);
            rows.line.push(n as i32 + 2);
            rows.kind.push(kind);
            rows.true_hs6.push(catalog::product(product).hs6);
            rows.true_origin.push(origin);
            rows.true_value.push(true_value);
            rows.lost_duty.push(lost);
            if let Some(s) = &shift {
                rows.shifted.push(s.shifted(imp));
            }
        }
        self.shift = shift;
        (self.rng, self.seq, self.current, self.item, self.next) = (rng, seq, current, item, end);
        self.agg.add(&rows);
        Some(rows)
    }

    /// Mirror statistics, truth per cell, tariffs and FX, once every chunk has been taken.
    pub(crate) fn finish(mut self) -> Result<(DataFrame, DataFrame, DataFrame, DataFrame), SynthError> {
        while self.next_chunk(1_000_000).is_some() {}
        let (year0, month0) = (self.year0, self.month0);
        let (mirror, unrecorded) = mirror_flows(self.params, &mut self.agg, &self.factors, &mut self.rng, year0, month0)?;
        let gaps = truth_gaps(&mut self.agg.gap, &unrecorded)?;
        Ok((mirror, gaps, tariffs(self.params.shift.is_some())?, fx(self.params, year0, month0)?))
    }
}

/// Unrecorded imports per (product, partner index, month): true CIF value.
type Unrecorded = BTreeMap<(&'static str, &'static str, String), f64>;

fn mirror_flows(
    params: &SynthParams,
    agg: &mut Aggregates,
    factors: &[f64],
    rng: &mut R,
    year0: i32,
    month0: u32,
) -> Result<(DataFrame, Unrecorded), SynthError> {
    let home = &agg.home;
    let partner = &mut agg.partner;
    // Unrecorded imports: large flows in a few cells, seen only by the partner.
    let mut unrecorded = Unrecorded::new();
    let monthly_total: f64 = agg.true_total / f64::from(params.months);
    for _ in 0..params.unrecorded_cells {
        let product = PRODUCTS[rng.gen_range(0..PRODUCTS.len())].hs6;
        let p = loop {
            let p = PARTNERS[weighted(rng, &PARTNERS.iter().map(|p| p.1).collect::<Vec<_>>())].0;
            if !NON_REPORTING.contains(&p) {
                break p;
            }
        };
        for m in 0..params.months {
            if rng.r#gen::<f64>() < 0.6 {
                let (y, mo) = (year0 + ((month0 - 1 + m) / 12) as i32, (month0 - 1 + m) % 12 + 1);
                let value = monthly_total * 0.004 * lognormal(rng, 0.4);
                *unrecorded.entry((product, p, format!("{y:04}-{mo:02}"))).or_default() += value;
                let e = partner.entry((product, p, format!("{y:04}-{mo:02}"))).or_default();
                e.0 += value;
                e.1 += value / PRODUCTS.iter().find(|x| x.hs6 == product).map_or(1.0, |x| x.price_usd_per_kg);
            }
        }
    }
    let home_country = params.home_country.as_str();
    let (mut reporter, mut partner_col, mut period, mut hs, mut flow, mut value, mut weight) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut world_totals: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for ((h, o, p), (v, w)) in home {
        reporter.push(home_country.to_owned());
        partner_col.push((*o).to_owned());
        period.push(p.clone());
        hs.push((*h).to_owned());
        flow.push("import");
        value.push((v * 100.0).round() / 100.0);
        weight.push(w.round());
        let t = world_totals.entry(((*h).to_owned(), p.clone())).or_default();
        t.0 += v;
        t.1 += w;
    }
    for ((h, p), (v, w)) in &world_totals {
        reporter.push(home_country.to_owned());
        partner_col.push(mirador_schema::country::WORLD.to_owned());
        period.push(p.clone());
        hs.push((*h).to_owned());
        flow.push("import");
        value.push((v * 100.0).round() / 100.0);
        weight.push(w.round());
    }
    for ((h, o, p), (v, w)) in partner.iter() {
        if NON_REPORTING.contains(o) {
            continue;
        }
        let idx = PARTNERS.iter().position(|x| x.0 == *o).unwrap_or(0);
        let fob = v / factors[idx] * lognormal(rng, 0.01);
        reporter.push((*o).to_owned());
        partner_col.push(home_country.to_owned());
        period.push(p.clone());
        hs.push((*h).to_owned());
        flow.push("export");
        value.push((fob * 100.0).round() / 100.0);
        weight.push((w * lognormal(rng, 0.02)).round());
    }
    let n = reporter.len();
    let df = DataFrame::new_infer_height(vec![
        Column::new(col::REPORTER.into(), reporter),
        Column::new(col::PARTNER.into(), partner_col),
        Column::new(col::PERIOD.into(), period),
        Column::new(col::HS_CODE.into(), hs),
        Column::new(col::HS_VINTAGE.into(), vec![Some("H6"); n]),
        Column::new(col::FLOW.into(), flow),
        Column::new(col::TRADE_VALUE_USD.into(), value),
        Column::new(col::NET_WEIGHT_KG.into(), weight.into_iter().map(Some).collect::<Vec<_>>()),
        Column::new(col::QUANTITY.into(), vec![None::<f64>; n]),
        Column::new(col::QUANTITY_UNIT.into(), vec![None::<String>; n]),
        Column::new(col::QUANTITY_ESTIMATED.into(), vec![false; n]),
    ])?;
    Ok((df, unrecorded))
}

/// Truth per declaration item.
pub(crate) fn truth_declarations(rows: &Rows) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        Column::new(col::DECLARATION_ID.into(), rows.declaration_id.clone()),
        Column::new(col::ITEM_NO.into(), rows.item_no.clone()),
        Column::new("fraud_kind".into(), rows.kind.clone()),
        Column::new("true_hs6".into(), rows.true_hs6.clone()),
        Column::new("true_origin".into(), rows.true_origin.clone()),
        Column::new("true_value_usd".into(), rows.true_value.clone()),
        Column::new("planted_lost_duty_usd".into(), rows.lost_duty.clone()),
    ])
    .and_then(|mut df| {
        if !rows.shifted.is_empty() {
            df.with_column(Column::new("shifted".into(), rows.shifted.clone()))?;
        }
        Ok(df)
    })
}

/// Truth per HS6 × partner × year, unrecorded imports included.
fn truth_gaps(gap: &mut BTreeMap<(&'static str, &'static str, String), f64>, unrecorded: &Unrecorded) -> Result<DataFrame, SynthError> {
    for ((h, p, period), v) in unrecorded {
        *gap.entry((*h, *p, period[..4].to_owned())).or_default() += v;
    }
    let (mut hs6, mut partner, mut period, mut planted_gap, mut planted_duty, mut reported) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((h, p, y), g) in std::mem::take(gap) {
        let product = catalog::product_index(h).unwrap_or(0);
        let (r, _) = rate(product, &p);
        reported.push(!NON_REPORTING.contains(&p));
        hs6.push(h);
        partner.push(p);
        period.push(y);
        planted_duty.push(g.max(0.0) * r / 100.0);
        planted_gap.push(g);
    }
    let gaps = DataFrame::new_infer_height(vec![
        Column::new(col::HS6.into(), hs6),
        Column::new(col::PARTNER.into(), partner),
        Column::new(col::PERIOD.into(), period),
        Column::new("planted_gap_usd".into(), planted_gap),
        Column::new("planted_lost_duty_usd".into(), planted_duty),
        Column::new("partner_reports".into(), reported),
    ])?;
    Ok(gaps)
}

/// Splits a frame by the values of a column (read as text), in order of first appearance.
pub fn split_by(df: &DataFrame, column: &str) -> PolarsResult<Vec<(String, DataFrame)>> {
    let keys = df.column(column)?.cast(&DataType::String)?;
    let keys = keys.str()?;
    let mut order: Vec<&str> = Vec::new();
    for k in keys.iter().flatten() {
        if !order.contains(&k) {
            order.push(k);
        }
    }
    order
        .into_iter()
        .map(|k| {
            let mask: BooleanChunked = keys.iter().map(|v| v == Some(k)).collect();
            Ok((k.to_owned(), df.filter(&mask)?))
        })
        .collect()
}

pub(crate) fn declarations_frame(r: &Rows) -> PolarsResult<DataFrame> {
    let date = Column::new(col::DATE.into(), r.date.clone()).cast(&DataType::Date)?;
    DataFrame::new_infer_height(vec![
        Column::new(col::DECLARATION_ID.into(), r.declaration_id.clone()),
        Column::new(col::ITEM_NO.into(), r.item_no.clone()),
        date,
        Column::new(col::PERIOD.into(), r.period.clone()),
        Column::new(col::OFFICE_ID.into(), r.office.clone()),
        Column::new(col::PROCESS_TYPE.into(), r.process.clone()),
        Column::new(col::IMPORT_TYPE.into(), r.import_type.clone()),
        Column::new(col::IMPORT_USE.into(), r.import_use.clone()),
        Column::new(col::PAYMENT_TYPE.into(), r.payment.clone()),
        Column::new(col::TRANSPORT_MODE.into(), r.transport.clone()),
        Column::new(col::DECLARANT_ID.into(), r.declarant.clone()),
        Column::new(col::IMPORTER_ID.into(), r.importer.clone()),
        Column::new(col::SELLER_ID.into(), r.seller.clone()),
        Column::new(col::COURIER_ID.into(), r.courier.clone()),
        Column::new(col::HS_CODE.into(), r.hs_code.clone()),
        Column::new(col::HS6.into(), r.hs6.clone()),
        Column::new(col::DEPARTURE_COUNTRY.into(), r.departure.clone()),
        Column::new(col::ORIGIN_COUNTRY.into(), r.origin.clone()),
        Column::new(col::TAX_RATE_PCT.into(), r.rate.clone()),
        Column::new(col::TAX_TYPE.into(), r.tax_type.clone()),
        Column::new(col::ORIGIN_INDICATOR.into(), r.origin_indicator.clone()),
        Column::new(col::NET_MASS_KG.into(), r.mass.clone()),
        Column::new(col::QUANTITY.into(), r.quantity.clone()),
        Column::new(col::QUANTITY_UNIT.into(), r.quantity_unit.clone()),
        Column::new(col::ITEM_PRICE.into(), r.price.clone()),
        Column::new(col::CURRENCY.into(), r.currency.clone()),
        Column::new(col::VALUE_USD.into(), r.value_usd.clone()),
        Column::new(col::DUTY_USD.into(), r.duty_usd.clone()),
        Column::new(col::UNIT_PRICE_USD_KG.into(), r.unit_price.clone()),
        Column::new(col::FRAUD.into(), r.fraud.clone()),
        Column::new(col::CRITICAL_FRAUD.into(), r.critical.clone()),
        Column::new(col::SOURCE_LINE.into(), r.line.clone()),
    ])
}

/// The tariff schedule: every product's MFN and preferential rates (with a shift, the new goods' too).
fn tariffs(with_shift_goods: bool) -> PolarsResult<DataFrame> {
    let (mut prefix, mut origin, mut agreement, mut rate_col) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let shift_goods = if with_shift_goods { catalog::SHIFT_PRODUCTS } else { &[] };
    for p in PRODUCTS.iter().chain(shift_goods) {
        prefix.push(p.hs6.to_owned());
        origin.push(None);
        agreement.push(None);
        rate_col.push(p.mfn_pct);
        for (o, a, share) in catalog::PREFERENCES {
            prefix.push(p.hs6.to_owned());
            origin.push(Some((*o).to_owned()));
            agreement.push(Some((*a).to_owned()));
            rate_col.push(p.mfn_pct * share);
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new(col::HS_PREFIX.into(), prefix),
        Column::new(col::PREFERENCE_ORIGIN.into(), origin),
        Column::new(col::AGREEMENT.into(), agreement),
        Column::new(col::RATE_PCT.into(), rate_col),
    ])
}

fn fx(params: &SynthParams, year0: i32, month0: u32) -> PolarsResult<DataFrame> {
    let (mut cur, mut per, mut rate_col) = (Vec::new(), Vec::new(), Vec::new());
    for m in 0..params.months {
        let (y, mo) = (year0 + ((month0 - 1 + m) / 12) as i32, (month0 - 1 + m) % 12 + 1);
        cur.push("KES");
        per.push(format!("{y:04}-{mo:02}"));
        rate_col.push(kes_rate(m));
    }
    DataFrame::new_infer_height(vec![
        Column::new(col::CURRENCY.into(), cur),
        Column::new(col::PERIOD.into(), per),
        Column::new(col::USD_PER_UNIT.into(), rate_col),
    ])
}

/// Adds a handful of broken rows, the kinds real declaration files contain: a lost leading zero
/// (repaired by ingest), a negative mass, an unknown country, an exact duplicate, a conflicting
/// duplicate, an impossible date and a non-numeric price. They are copies of real rows under new
/// ids (except the duplicates), so the world's truth is unchanged.
pub(crate) fn with_dirty_rows(declarations: &DataFrame, seed: u64) -> Result<DataFrame, SynthError> {
    let mut text =
        DataFrame::new_infer_height(declarations.columns().iter().map(|c| c.cast(&DataType::String)).collect::<PolarsResult<Vec<_>>>()?)?;
    let mut rng = R::seed_from_u64(seed ^ 0xD1A7);
    let n = text.height();
    let mut extra = Vec::new();
    let kinds: [(&str, &str); 7] = [
        (col::HS_CODE, "LOSTZERO"),
        (col::NET_MASS_KG, "-12"),
        (col::ORIGIN_COUNTRY, "QQ"),
        ("", "DUPLICATE"),
        (col::ITEM_PRICE, "CONFLICT"),
        (col::DATE, "2023-02-30"),
        (col::ITEM_PRICE, "n/a"),
    ];
    for (k, (column, value)) in kinds.iter().enumerate() {
        for j in 0..4 {
            let i = rng.gen_range(0..n);
            let mut row = text.slice(i as i64, 1);
            if *value != "DUPLICATE" && *value != "CONFLICT" {
                row.replace(col::DECLARATION_ID, Column::new(col::DECLARATION_ID.into(), [format!("X{k}{j}{i:07}")]))?;
            }
            let new_value = match *value {
                "LOSTZERO" => {
                    let hs = row.column(col::HS_CODE)?.str()?.get(0).unwrap_or("").to_owned();
                    hs.trim_start_matches('0').to_owned()
                }
                "CONFLICT" => "1.00".to_owned(),
                other => other.to_owned(),
            };
            if !column.is_empty() {
                row.replace(column, Column::new((*column).into(), [new_value]))?;
            }
            extra.push(row);
        }
    }
    for row in extra {
        text.vstack_mut(&row)?;
    }
    Ok(text)
}
