//! Carried peers (`carry-state = true`): a nightly run that reads only the night's declarations
//! would compare each with the few peers declared that night. Instead each run keeps the priced
//! rows of the last `peer-window-days` (at most `max-peers-per-group` per HS6 × origin, newest
//! first) in `kmeans_scores/peers.parquet`, and the next run adds them to its peer groups. The
//! file is bounded by the window and the cap, not by history.

use std::cmp::Reverse;

use mirador_schema::catalog::kmeans_peers;
use mirador_schema::col;
use mirador_schema::text::Text;
use polars::prelude::*;

use crate::KMeansParams;
use crate::groups::Row;

/// One kept peer: HS6, origin, day, log price per kg and per unit.
type Peer<'a> = (&'a str, &'a str, i32, Option<f64>, Option<f64>);

/// Carried peers, as read from a peers file.
pub(crate) struct Peers {
    hs6: StringChunked,
    origin: StringChunked,
    day: Vec<i32>,
    kg: Vec<Option<f64>>,
    unit: Vec<Option<f64>>,
}

impl Peers {
    pub(crate) fn read(df: &DataFrame) -> PolarsResult<Self> {
        let day = df.column(kmeans_peers::DAY)?.cast(&DataType::Int32)?;
        Ok(Peers {
            hs6: df.column(col::HS6)?.str()?.clone(),
            origin: df.column(col::ORIGIN_COUNTRY)?.str()?.clone(),
            day: day.i32()?.iter().map(|d| d.unwrap_or(i32::MIN)).collect(),
            kg: df.column(kmeans_peers::LOG_PRICE_KG)?.f64()?.iter().collect(),
            unit: df.column(kmeans_peers::LOG_PRICE_UNIT)?.f64()?.iter().collect(),
        })
    }

    /// The peers priced per kilogram and per unit, as group rows.
    pub(crate) fn rows(&self) -> (Vec<Row<'_>>, Vec<Row<'_>>) {
        let mut kg = Vec::new();
        let mut unit = Vec::new();
        for (i, (h, o)) in self.hs6.iter().zip(self.origin.iter()).enumerate() {
            let (hs6, origin) = (h.unwrap_or(""), o.unwrap_or(""));
            if let Some(p) = self.kg[i] {
                kg.push(Row { hs6, origin, log_price: Some(p) });
            }
            if let Some(p) = self.unit[i] {
                unit.push(Row { hs6, origin, log_price: Some(p) });
            }
        }
        (kg, unit)
    }
}

/// The peers to carry forward: this run's priced declarations and the carried peers still in the
/// window, at most `max-peers-per-group` per HS6 × origin, newest first.
pub(crate) fn next(
    declarations: &DataFrame,
    per_kg: &[Option<f64>],
    per_unit: &[Option<f64>],
    carried: Option<&Peers>,
    params: &KMeansParams,
) -> PolarsResult<DataFrame> {
    let log = |p: Option<f64>| p.filter(|p| p.is_finite() && *p > 0.0).map(f64::ln);
    let hs6 = Text::column(declarations, col::HS6)?;
    let origin = Text::column(declarations, col::ORIGIN_COUNTRY)?;
    let day: Vec<i32> = declarations.column(col::DATE)?.cast(&DataType::Int32)?.i32()?.iter().map(|d| d.unwrap_or(i32::MIN)).collect();
    let newest = day.iter().copied().max().unwrap_or(i32::MIN);
    let start = newest.saturating_sub(i32::try_from(params.peer_window_days).unwrap_or(i32::MAX));
    let mut entries: Vec<Peer<'_>> = Vec::new();
    if let Some(c) = carried {
        for (i, (h, o)) in c.hs6.iter().zip(c.origin.iter()).enumerate() {
            if c.day[i] > start {
                entries.push((h.unwrap_or(""), o.unwrap_or(""), c.day[i], c.kg[i], c.unit[i]));
            }
        }
    }
    for (i, (h, o)) in hs6.iter().zip(origin.iter()).enumerate() {
        let (kg, unit) = (log(per_kg[i]), log(per_unit[i]));
        if (kg.is_some() || unit.is_some()) && day[i] > start {
            entries.push((h.unwrap_or(""), o.unwrap_or(""), day[i], kg, unit));
        }
    }
    // Stable: among rows of one day, carried peers first, then this run's in input order.
    entries.sort_by_key(|e| (e.0, e.1, Reverse(e.2)));
    let mut kept = Vec::with_capacity(entries.len());
    let mut run = 0;
    for (i, e) in entries.iter().enumerate() {
        run = if i > 0 && (entries[i - 1].0, entries[i - 1].1) == (e.0, e.1) { run + 1 } else { 0 };
        if run < params.max_peers_per_group {
            kept.push(*e);
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new(col::HS6.into(), kept.iter().map(|e| e.0).collect::<Vec<_>>()),
        Column::new(col::ORIGIN_COUNTRY.into(), kept.iter().map(|e| e.1).collect::<Vec<_>>()),
        Column::new(kmeans_peers::DAY.into(), kept.iter().map(|e| e.2).collect::<Vec<_>>()),
        Column::new(kmeans_peers::LOG_PRICE_KG.into(), kept.iter().map(|e| e.3).collect::<Vec<_>>()),
        Column::new(kmeans_peers::LOG_PRICE_UNIT.into(), kept.iter().map(|e| e.4).collect::<Vec<_>>()),
    ])
}
