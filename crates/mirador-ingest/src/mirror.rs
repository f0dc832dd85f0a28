//! Validation of mirror-trade flows (Comtrade-like statistics).

use std::collections::HashMap;

use foldhash::fast::FixedState;
use mirador_schema::col;
use polars::prelude::*;

use crate::rules::{self, Reject};
use crate::source::{Mapped, Quarantine, Reconciliation};

/// Canonical columns a mirror source must provide.
pub const MANDATORY: &[&str] = &[col::REPORTER, col::PARTNER, col::PERIOD, col::HS_CODE, col::FLOW, col::TRADE_VALUE_USD];

const FLOWS: &[&str] = &["import", "export", "re-import", "re-export"];

fn flow(raw: &str) -> Result<&'static str, Reject> {
    let v = raw.trim().to_ascii_lowercase().replace(['_', ' '], "-");
    let v = match v.as_str() {
        "m" | "imports" => "import",
        "x" | "exports" => "export",
        "rm" | "re-imports" => "re-import",
        "rx" | "re-exports" => "re-export",
        other => other,
    };
    FLOWS.iter().find(|f| **f == v).copied().ok_or_else(|| {
        Reject::new("bad_flow", col::FLOW, format!("`flow` = `{raw}` is not one of {FLOWS:?} (map source codes with `recode`)"))
    })
}

/// One valid flow.
struct Flow {
    reporter: &'static str,
    partner: &'static str,
    period: String,
    hs_code: String,
    flow: &'static str,
    vintage: Option<String>,
    value: f64,
    weight: Option<f64>,
    quantity: Option<f64>,
    unit: Option<String>,
    estimated: bool,
}

/// What must agree between two rows of one cell.
#[derive(PartialEq)]
struct Content {
    vintage: Option<String>,
    value: u64,
    weight: Option<u64>,
    quantity: Option<u64>,
    unit: Option<String>,
    estimated: bool,
}

/// Validates flows. A cell (reporter, partner, period, HS code, flow) given twice is a
/// `duplicate` (same figures: the copy is quarantined) or a `conflict` (different figures: every
/// row of the cell is quarantined). A yearly row beside monthly rows of the same cell and year
/// would count the year twice: the yearly row is quarantined (`overlapping_period`), the monthly
/// rows kept (they serve a monthly and a yearly analysis alike). A period that starts after
/// `run_day` is `date_in_future`.
pub fn ingest(
    sources: &[Mapped<'_>],
    hs_vintages: &[mirador_schema::hs::Vintage],
    run_day: chrono::NaiveDate,
    quarantine: &mut Quarantine,
) -> Result<(DataFrame, Reconciliation), crate::IngestError> {
    let mut rec = Reconciliation::default();
    let first_of_future = chrono::Datelike::year(&run_day) * 100 + chrono::Datelike::month(&run_day) as i32;
    let rows = crate::fx::parse_reference(
        sources,
        crate::MIRROR_FLOWS,
        quarantine,
        &mut rec,
        |m, raw| {
            let d = m.decimal();
            let r = rules::country_code(rules::required(m.get(raw, col::REPORTER), col::REPORTER)?, true, col::REPORTER)?;
            let p = rules::country_code(rules::required(m.get(raw, col::PARTNER), col::PARTNER)?, true, col::PARTNER)?;
            let per = rules::period(rules::required(m.get(raw, col::PERIOD), col::PERIOD)?, col::PERIOD)?;
            let (year, month): (i32, i32) = (per[..4].parse().unwrap_or(0), per.get(5..).and_then(|m| m.parse().ok()).unwrap_or(1));
            if year * 100 + month > first_of_future {
                return Err(Reject::new(
                    "date_in_future",
                    col::PERIOD,
                    format!("period {per} starts after the day of the run ({run_day}): a typo, or a clock set wrong"),
                ));
            }
            let hs = rules::hs_code(rules::required(m.get(raw, col::HS_CODE), col::HS_CODE)?, &[2, 4, 6], hs_vintages, col::HS_CODE)?;
            let f = flow(rules::required(m.get(raw, col::FLOW), col::FLOW)?)?;
            let v = rules::non_negative(rules::required(m.get(raw, col::TRADE_VALUE_USD), col::TRADE_VALUE_USD)?, d, col::TRADE_VALUE_USD)?;
            let w = rules::optional(m.get(raw, col::NET_WEIGHT_KG)).map(|x| rules::non_negative(x, d, col::NET_WEIGHT_KG)).transpose()?;
            let q = rules::optional(m.get(raw, col::QUANTITY)).map(|x| rules::non_negative(x, d, col::QUANTITY)).transpose()?;
            let est = rules::optional(m.get(raw, col::QUANTITY_ESTIMATED))
                .is_some_and(|x| matches!(x.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "4" | "6"));
            Ok(Flow {
                reporter: r,
                partner: p,
                period: per,
                hs_code: hs.code,
                flow: f,
                vintage: rules::optional(m.get(raw, col::HS_VINTAGE)).map(str::to_owned),
                value: v,
                weight: w,
                quantity: q,
                unit: rules::optional(m.get(raw, col::QUANTITY_UNIT)).map(str::to_owned),
                estimated: est,
            })
        },
        |f| {
            let key = (f.reporter, f.partner, f.period.clone(), f.hs_code.clone(), f.flow);
            let content = Content {
                vintage: f.vintage.clone(),
                value: f.value.to_bits(),
                weight: f.weight.map(f64::to_bits),
                quantity: f.quantity.map(f64::to_bits),
                unit: f.unit.clone(),
                estimated: f.estimated,
            };
            (key, content)
        },
        col::PERIOD,
        |(r, p, per, hs, f)| format!("{f} flow {r}←{p} of {hs} in {per}"),
        |c| format!("{} USD", f64::from_bits(c.value)),
    )?;
    // A yearly row beside monthly rows of the same cell and year.
    let year_key = |f: &Flow| (f.reporter, f.partner, f.hs_code.clone(), f.flow, f.period[..4].to_owned());
    let mut monthly: HashMap<_, (usize, f64), FixedState> = HashMap::default();
    for (_, _, f) in &rows {
        if f.period.len() == 7 {
            let e = monthly.entry(year_key(f)).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += f.value;
        }
    }
    let verdicts = rows
        .iter()
        .map(|(_, _, f)| {
            if f.period.len() != 4 {
                return None;
            }
            let (n, sum) = monthly.get(&year_key(f))?;
            Some(Reject::new(
                "overlapping_period",
                col::PERIOD,
                format!(
                    "yearly {} flow {}←{} of {} in {} ({} USD) beside {n} monthly rows of the same year ({sum} USD): counting both would count the year twice; the monthly rows are kept",
                    f.flow, f.reporter, f.partner, f.hs_code, f.period, f.value
                ),
            ))
        })
        .collect();
    let rows = crate::fx::settle(rows, verdicts, sources, crate::MIRROR_FLOWS, quarantine);
    rec.accepted = rows.len();
    rec.quarantined = rec.rows_in - rec.accepted;
    let flows: Vec<Flow> = rows.into_iter().map(|(_, _, f)| f).collect();
    let df = DataFrame::new_infer_height(vec![
        Column::new(col::REPORTER.into(), flows.iter().map(|f| f.reporter).collect::<Vec<_>>()),
        Column::new(col::PARTNER.into(), flows.iter().map(|f| f.partner).collect::<Vec<_>>()),
        Column::new(col::PERIOD.into(), flows.iter().map(|f| f.period.as_str()).collect::<Vec<_>>()),
        Column::new(col::HS_CODE.into(), flows.iter().map(|f| f.hs_code.as_str()).collect::<Vec<_>>()),
        Column::new(col::HS_VINTAGE.into(), flows.iter().map(|f| f.vintage.as_deref()).collect::<Vec<_>>()),
        Column::new(col::FLOW.into(), flows.iter().map(|f| f.flow).collect::<Vec<_>>()),
        Column::new(col::TRADE_VALUE_USD.into(), flows.iter().map(|f| f.value).collect::<Vec<_>>()),
        Column::new(col::NET_WEIGHT_KG.into(), flows.iter().map(|f| f.weight).collect::<Vec<_>>()),
        Column::new(col::QUANTITY.into(), flows.iter().map(|f| f.quantity).collect::<Vec<_>>()),
        Column::new(col::QUANTITY_UNIT.into(), flows.iter().map(|f| f.unit.as_deref()).collect::<Vec<_>>()),
        Column::new(col::QUANTITY_ESTIMATED.into(), flows.iter().map(|f| f.estimated).collect::<Vec<_>>()),
    ])?;
    Ok((df, rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_accept_common_spellings() {
        assert_eq!(flow("Import").unwrap(), "import");
        assert_eq!(flow("Re-Export").unwrap(), "re-export");
        assert_eq!(flow("X").unwrap(), "export");
        assert_eq!(flow("transit").unwrap_err().code, "bad_flow");
    }
}
