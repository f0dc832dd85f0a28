//! Fraud that moves: from a chosen month, part of the planted fraud leaves the importers that
//! carried it and appears with new importers declaring new goods, as fraud does when an
//! administration's controls have caught up with the old schemes. A selector trained only on the
//! labels of its own picks keeps looking where fraud was; this is the world that shows it.
//!
//! From the shift month on:
//! - every importer of the world before the shift plants fraud at `1 − share` of its rate;
//! - new entrants (importers that declare nothing before the shift) lodge a part of the
//!   declarations, chosen so that they carry about `share` of the world's planted fraud; an
//!   entrant's items are mostly new goods ([`SHIFT_PRODUCTS`](crate::catalog::SHIFT_PRODUCTS)),
//!   and planted fraud at [`ENTRANT_FRAUD_RATE`].
//!
//! The truth says which items belong to the moved fraud (`shifted` in `truth_declarations`). All
//! the shift's draws come from a random stream of their own, so with the shift off the world is
//! the one the seed always gave, byte for byte.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use crate::catalog::{PARTNERS, PRODUCTS, SHIFT_PRODUCTS};
use crate::world::Importer;
use crate::{SynthError, SynthParams};

/// When and how much fraud moves.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ShiftParams {
    /// First month of the shift, `YYYY-MM`, within the world's months.
    pub period: String,
    /// Share of the planted fraud that moves to new importers and new goods, in `[0, 1]`.
    pub share: f64,
}

impl ShiftParams {
    /// The shift month as an index of the world's months (0: the first), checked.
    pub(crate) fn check(&self, (year0, month0): (i32, u32), months: u32) -> Result<u32, SynthError> {
        let bad = |m: String| Err(SynthError::Params(m));
        if !(0.0..=1.0).contains(&self.share) {
            return bad(format!("shift-share = {} is not in [0, 1]", self.share));
        }
        let parsed = self.period.split_once('-').and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)));
        let Some((y, m)) = parsed.filter(|(_, m)| (1..=12).contains(m) && self.period.len() == 7) else {
            return bad(format!("shift-period `{}` is not a YYYY-MM month", self.period));
        };
        let index = (y - year0) * 12 + m as i32 - month0 as i32;
        if index < 1 || index >= months as i32 {
            return bad(format!("shift-period {} must be after the first month and within the world's {months} months", self.period));
        }
        Ok(index as u32)
    }
}

/// Fraud rate of a new entrant's items.
pub(crate) const ENTRANT_FRAUD_RATE: f64 = 0.6;
/// New goods each entrant declares (beside one product of the world before the shift).
const NEW_GOODS: usize = 3;

/// The shift as the generator applies it.
pub(crate) struct Shift {
    /// Month index from which it applies.
    pub(crate) month: u32,
    share: f64,
    rng: Xoshiro256PlusPlus,
    /// Index of the first entrant in the generator's importers (entrants follow the others).
    pub(crate) first_entrant: usize,
    entrant_cum: Vec<f64>,
    /// Share of the declarations lodged by entrants from the shift month on.
    declaration_share: f64,
}

impl Shift {
    /// The shift of `params` (`None` when off), appending its entrants to `importers`.
    pub(crate) fn new(params: &SynthParams, start: (i32, u32), importers: &mut Vec<Importer>) -> Result<Option<Self>, SynthError> {
        let Some(shift) = &params.shift else { return Ok(None) };
        let month = shift.check(start, params.months)?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(params.seed ^ 0x5_1F7_5E1F);
        let first_entrant = importers.len();
        let n = (first_entrant / 10).max(10);
        let partner_weights: f64 = PARTNERS.iter().map(|p| p.1).sum();
        for i in 0..n {
            let mut products: Vec<usize> = (0..NEW_GOODS).map(|_| PRODUCTS.len() + rng.gen_range(0..SHIFT_PRODUCTS.len())).collect();
            products.push(rng.gen_range(0..PRODUCTS.len()));
            let origins = (0..1 + rng.gen_range(0..2))
                .map(|_| {
                    let mut x = rng.r#gen::<f64>() * partner_weights;
                    PARTNERS
                        .iter()
                        .position(|p| {
                            x -= p.1;
                            x < 0.0
                        })
                        .unwrap_or(0)
                })
                .collect();
            importers.push(Importer {
                id: format!("IMP{:06}", first_entrant + i),
                weight: (1.0 - rng.r#gen::<f64>()).powf(-1.0 / 1.3),
                high_risk: true,
                products,
                origins,
                declarant: format!("DCL{:03}", rng.gen_range(0..120)),
            });
        }
        let entrant_cum = importers[first_entrant..]
            .iter()
            .scan(0.0, |acc, imp| {
                *acc += imp.weight;
                Some(*acc)
            })
            .collect();
        // The old importers' planted fraud per item; the entrants take `share` of it.
        let old_rate = params.high_risk_share * params.high_risk_fraud_rate + (1.0 - params.high_risk_share) * params.low_risk_fraud_rate;
        let declaration_share = (shift.share * old_rate / ENTRANT_FRAUD_RATE).clamp(0.0, 0.5);
        Ok(Some(Shift { month, share: shift.share, rng, first_entrant, entrant_cum, declaration_share }))
    }

    /// The fraud rate of an item of importer `importer` in month `m`, whose rate without the
    /// shift is `rate`.
    pub(crate) fn fraud_rate(&self, importer: usize, m: u32, rate: f64) -> f64 {
        if importer >= self.first_entrant {
            ENTRANT_FRAUD_RATE
        } else if m >= self.month {
            rate * (1.0 - self.share)
        } else {
            rate
        }
    }

    /// For a new declaration of month `m`: the entrant that lodges it instead, with its origin
    /// (index of `PARTNERS`), or `None`.
    pub(crate) fn entrant(&mut self, m: u32, importers: &[Importer]) -> Option<(usize, usize)> {
        if m < self.month || self.rng.r#gen::<f64>() >= self.declaration_share {
            return None;
        }
        let total = self.entrant_cum.last().copied().unwrap_or(0.0);
        let x = self.rng.r#gen::<f64>() * total;
        let k = self.entrant_cum.partition_point(|c| *c <= x).min(self.entrant_cum.len().saturating_sub(1));
        let imp = self.first_entrant + k;
        let origins = &importers[imp].origins;
        Some((imp, origins[self.rng.gen_range(0..origins.len())]))
    }

    /// Whether an item of `importer` belongs to the moved fraud.
    pub(crate) fn shifted(&self, importer: usize) -> bool {
        importer >= self.first_entrant
    }
}
