//! A late inspection outcomes feed for a world: what post-clearance audits decide weeks or months
//! after clearance. Audits reach a few of the declarations nobody inspected, and re-examine
//! inspected ones whose inspection got it wrong (the world's inspections err 3 % of the time).
//! Audits find the truth.

use mirador_schema::col;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::SynthError;

/// Share of uninspected declarations a post-clearance audit reaches.
const AUDITED: f64 = 0.04;
/// Share of wrongly decided inspections an audit later corrects.
const CORRECTED: f64 = 0.6;
/// Days from declaration to the audit's decision.
const DELAY_DAYS: std::ops::RangeInclusive<i32> = 30..=150;

/// The outcomes decided on or before the world's last declaration day, in decision order:
/// `declaration_id`, `item_no`, `decided_on`, `fraud`, `critical_fraud`. `truth` is the world's
/// `truth_declarations`, row for row with `declarations`.
pub fn inspection_outcomes(declarations: &DataFrame, truth: &DataFrame, seed: u64) -> Result<DataFrame, SynthError> {
    let last = declarations.column(col::DATE)?.cast(&DataType::Int32)?.i32()?.max().unwrap_or(i32::MIN);
    decided_by(declarations, truth, seed, last)
}

/// [`inspection_outcomes`] of some of a world's declarations (a chunk of a streamed world, `seed`
/// differing per chunk), keeping those decided on or before `last` (days since 1970-01-01).
pub(crate) fn decided_by(declarations: &DataFrame, truth: &DataFrame, seed: u64, last: i32) -> Result<DataFrame, SynthError> {
    if declarations.height() != truth.height() {
        return Err(SynthError::Params("the truth must match the declarations row for row".into()));
    }
    let id = declarations.column(col::DECLARATION_ID)?.str()?.clone();
    let item = declarations.column(col::ITEM_NO)?.i32()?.clone();
    let date = declarations.column(col::DATE)?.cast(&DataType::Int32)?;
    let date = date.i32()?;
    let label = declarations.column(col::FRAUD)?.cast(&DataType::Int8)?;
    let label = label.i8()?;
    let kind = truth.column("fraud_kind")?.str()?.clone();
    let lost = truth.column("planted_lost_duty_usd")?.f64()?.clone();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0xA0D1);
    let mut out: Vec<(i32, &str, i32, i8, i8)> = Vec::new();
    for i in 0..declarations.height() {
        let (Some(d), Some(declaration), Some(item_no)) = (date.get(i), id.get(i), item.get(i)) else { continue };
        let planted = kind.get(i).is_some_and(|k| k != "none");
        let chance = match label.get(i) {
            None => AUDITED,
            Some(observed) if (observed == 1) != planted => CORRECTED,
            Some(_) => 0.0,
        };
        if rng.r#gen::<f64>() >= chance {
            continue;
        }
        let decided = d + rng.gen_range(DELAY_DAYS);
        if decided > last {
            continue;
        }
        let fraud = i8::from(planted);
        let critical = if planted && lost.get(i).unwrap_or(0.0) > 500.0 { 2 } else { fraud };
        out.push((decided, declaration, item_no, fraud, critical));
    }
    out.sort_unstable();
    let decided = Column::new(col::DECIDED_ON.into(), out.iter().map(|r| r.0).collect::<Vec<i32>>()).cast(&DataType::Date)?;
    Ok(DataFrame::new_infer_height(vec![
        Column::new(col::DECLARATION_ID.into(), out.iter().map(|r| r.1).collect::<Vec<&str>>()),
        Column::new(col::ITEM_NO.into(), out.iter().map(|r| r.2).collect::<Vec<i32>>()),
        decided,
        Column::new(col::FRAUD.into(), out.iter().map(|r| r.3).collect::<Vec<i8>>()),
        Column::new(col::CRITICAL_FRAUD.into(), out.iter().map(|r| r.4).collect::<Vec<i8>>()),
    ])?)
}
