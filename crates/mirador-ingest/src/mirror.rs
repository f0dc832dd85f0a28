//! Validation of mirror-trade flows (Comtrade-like statistics).

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

/// Validates flows.
pub fn ingest(sources: &[Mapped<'_>], quarantine: &mut Quarantine) -> Result<(DataFrame, Reconciliation), crate::IngestError> {
    let mut reporter = Vec::new();
    let mut partner = Vec::new();
    let mut period = Vec::new();
    let mut hs_code = Vec::new();
    let mut vintage: Vec<Option<String>> = Vec::new();
    let mut flows = Vec::new();
    let mut value = Vec::new();
    let mut weight: Vec<Option<f64>> = Vec::new();
    let mut quantity: Vec<Option<f64>> = Vec::new();
    let mut unit: Vec<Option<String>> = Vec::new();
    let mut estimated = Vec::new();
    let mut rec = Reconciliation::default();
    for m in sources {
        let d = m.decimal();
        while let Some(raw) = m.next_row()? {
            let raw = &raw;
            rec.rows_in += 1;
            let parsed = (|| {
                if let Some(why) = &raw.malformed {
                    return Err(Reject::new(why.code, "", format!("line {} {why}", raw.line)));
                }
                let r = rules::country_code(rules::required(m.get(raw, col::REPORTER), col::REPORTER)?, true, col::REPORTER)?;
                let p = rules::country_code(rules::required(m.get(raw, col::PARTNER), col::PARTNER)?, true, col::PARTNER)?;
                let per = rules::period(rules::required(m.get(raw, col::PERIOD), col::PERIOD)?, col::PERIOD)?;
                let hs = rules::hs_code(rules::required(m.get(raw, col::HS_CODE), col::HS_CODE)?, &[2, 4, 6], col::HS_CODE)?;
                let f = flow(rules::required(m.get(raw, col::FLOW), col::FLOW)?)?;
                let v =
                    rules::non_negative(rules::required(m.get(raw, col::TRADE_VALUE_USD), col::TRADE_VALUE_USD)?, d, col::TRADE_VALUE_USD)?;
                let w =
                    rules::optional(m.get(raw, col::NET_WEIGHT_KG)).map(|x| rules::non_negative(x, d, col::NET_WEIGHT_KG)).transpose()?;
                let q = rules::optional(m.get(raw, col::QUANTITY)).map(|x| rules::non_negative(x, d, col::QUANTITY)).transpose()?;
                let est = rules::optional(m.get(raw, col::QUANTITY_ESTIMATED))
                    .is_some_and(|x| matches!(x.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "4" | "6"));
                Ok((r, p, per, hs.code, f, v, w, q, est))
            })();
            match parsed {
                Ok((r, p, per, hs, f, v, w, q, est)) => {
                    reporter.push(r);
                    partner.push(p);
                    period.push(per);
                    hs_code.push(hs);
                    vintage.push(rules::optional(m.get(raw, col::HS_VINTAGE)).map(str::to_owned));
                    flows.push(f);
                    value.push(v);
                    weight.push(w);
                    quantity.push(q);
                    unit.push(rules::optional(m.get(raw, col::QUANTITY_UNIT)).map(str::to_owned));
                    estimated.push(est);
                }
                Err(reject) => quarantine.push(crate::MIRROR_FLOWS, m, raw, &reject),
            }
        }
    }
    rec.accepted = reporter.len();
    rec.quarantined = rec.rows_in - rec.accepted;
    let df = DataFrame::new_infer_height(vec![
        Column::new(col::REPORTER.into(), reporter),
        Column::new(col::PARTNER.into(), partner),
        Column::new(col::PERIOD.into(), period),
        Column::new(col::HS_CODE.into(), hs_code),
        Column::new(col::HS_VINTAGE.into(), vintage),
        Column::new(col::FLOW.into(), flows),
        Column::new(col::TRADE_VALUE_USD.into(), value),
        Column::new(col::NET_WEIGHT_KG.into(), weight),
        Column::new(col::QUANTITY.into(), quantity),
        Column::new(col::QUANTITY_UNIT.into(), unit),
        Column::new(col::QUANTITY_ESTIMATED.into(), estimated),
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
