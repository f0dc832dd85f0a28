//! History features: what was known about an importer, declarant, seller, product, origin or
//! office *before* the day a declaration was lodged. Rows are processed day by day; a day's rows
//! see only earlier days, never each other and never the future, so a model trained on them
//! cannot learn from information it would not have had.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Counts about one entity up to some day.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct Stats {
    /// Declarations seen.
    pub seen: u32,
    /// Of which inspected (labelled).
    pub inspected: u32,
    /// Of which found fraudulent.
    pub fraud: u32,
}

/// Accumulated history, per entity kind and id. Saved in the model file so that scoring new
/// declarations continues from where training stopped.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct History {
    /// Entity kinds, in feature order (e.g. `importer`, `seller`).
    pub kinds: Vec<String>,
    /// `kinds[k]` → id → counts.
    #[serde(serialize_with = "crate::sorted::each")]
    pub entities: Vec<HashMap<String, Stats>>,
    /// All rows.
    pub global: Stats,
    /// Pseudo-count of the smoothed fraud rate: an entity with `m` inspections weighs as much as
    /// the global rate.
    pub smoothing: f64,
    /// Last day (days since 1970-01-01) folded into the history.
    pub last_day: Option<i32>,
}

/// Number of features per entity kind.
pub const PER_KIND: usize = 3;

impl History {
    /// An empty history over these entity kinds.
    pub fn new(kinds: &[&str], smoothing: f64) -> Self {
        History {
            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            entities: vec![HashMap::new(); kinds.len()],
            global: Stats::default(),
            smoothing,
            last_day: None,
        }
    }

    /// Feature names, `PER_KIND` per kind.
    pub fn feature_names(&self) -> Vec<String> {
        self.kinds
            .iter()
            .flat_map(|k| [format!("{k}_past_declarations"), format!("{k}_past_inspections"), format!("{k}_past_fraud_rate")])
            .collect()
    }

    fn features_of(&self, kind: usize, id: Option<&str>) -> [f64; PER_KIND] {
        let prior = if self.global.inspected > 0 { f64::from(self.global.fraud) / f64::from(self.global.inspected) } else { f64::NAN };
        let s = id.and_then(|id| self.entities[kind].get(id)).copied().unwrap_or_default();
        let rate = (f64::from(s.fraud) + self.smoothing * prior) / (f64::from(s.inspected) + self.smoothing);
        [f64::from(s.seen), f64::from(s.inspected), rate]
    }

    /// Computes the history features of `rows` and folds them into the history.
    ///
    /// `days[i]` is row `i`'s date, `ids[k][i]` its id for kind `k`, `labels[i]` its inspection
    /// outcome. Returns one column per feature (`kinds × PER_KIND` of them, in
    /// [`History::feature_names`] order), each in row order.
    pub fn advance(&mut self, days: &[i32], ids: &[Vec<Option<&str>>], labels: &[Option<bool>]) -> Vec<Vec<f64>> {
        let mut order: Vec<usize> = (0..days.len()).collect();
        order.sort_by_key(|&i| (days[i], i));
        let mut out = vec![vec![0.0; days.len()]; self.kinds.len() * PER_KIND];
        let mut start = 0;
        while start < order.len() {
            let day = days[order[start]];
            let end = start + order[start..].iter().take_while(|&&i| days[i] == day).count();
            for &i in &order[start..end] {
                for k in 0..self.kinds.len() {
                    for (j, v) in self.features_of(k, ids[k][i]).into_iter().enumerate() {
                        out[k * PER_KIND + j][i] = v;
                    }
                }
            }
            for &i in &order[start..end] {
                self.fold(ids.iter().map(|kind| kind[i]), labels[i]);
            }
            self.last_day = Some(self.last_day.map_or(day, |d| d.max(day)));
            start = end;
        }
        out
    }

    fn fold<'a>(&mut self, ids: impl Iterator<Item = Option<&'a str>>, label: Option<bool>) {
        let bump = |s: &mut Stats| {
            s.seen += 1;
            if let Some(l) = label {
                s.inspected += 1;
                s.fraud += u32::from(l);
            }
        };
        bump(&mut self.global);
        for (k, id) in ids.enumerate() {
            if let Some(id) = id {
                // Look up before inserting: most ids are already known, and an owned key costs an
                // allocation per row.
                match self.entities[k].get_mut(id) {
                    Some(s) => bump(s),
                    None => bump(self.entities[k].entry(id.to_owned()).or_default()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_never_sees_its_own_day_or_the_future() {
        let mut h = History::new(&["importer"], 0.0);
        let days = [3, 1, 1, 2];
        let ids = vec![vec![Some("A"), Some("A"), Some("A"), Some("A")]];
        let labels = [Some(true), Some(true), Some(false), None];
        let f = h.advance(&days, &ids, &labels);
        let row = |i: usize| f.iter().map(|column| column[i]).collect::<Vec<f64>>();
        // Day 1: nothing known yet.
        assert_eq!(row(1)[..2], [0.0, 0.0]);
        assert_eq!(row(2)[..2], [0.0, 0.0]);
        // Day 2: both day-1 rows, one fraud out of two inspections.
        assert_eq!(row(3), vec![2.0, 2.0, 0.5]);
        // Day 3: three seen, still two inspected (day 2 was not inspected).
        assert_eq!(row(0), vec![3.0, 2.0, 0.5]);
        assert_eq!(h.global.seen, 4);
    }

    #[test]
    fn smoothing_pulls_rare_entities_to_the_global_rate() {
        let mut h = History::new(&["importer"], 10.0);
        let days: Vec<i32> = (0..21).collect();
        let mut ids: Vec<Option<&str>> = vec![Some("B"); 20];
        ids.push(Some("A"));
        let mut labels = vec![Some(false); 20];
        labels[0] = Some(true);
        labels[1] = Some(true);
        labels.push(None);
        // A is new on day 20: its rate is the global rate so far, 2/20.
        let f = h.advance(&days, &[ids], &labels);
        assert!((f[2][20] - 0.1).abs() < 1e-12);
    }
}
