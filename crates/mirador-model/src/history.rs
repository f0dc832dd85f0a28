//! History features: what was known about an importer, declarant, seller, product, origin or
//! office *before* the day a declaration was lodged. Rows are processed day by day; a day's rows
//! see only earlier days, never each other and never the future, so a model trained on them
//! cannot learn from information it would not have had.

use std::collections::HashMap;

use mirador_schema::text::Coded;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Counts per id of one entity kind, hashed with a fixed-seed fast hasher (the saved model sorts
/// the keys, so the hasher does not show in the file).
pub type Entities = HashMap<String, Stats, foldhash::fast::FixedState>;

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
    pub entities: Vec<Entities>,
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

/// One history feature's values, row by row: the counts as integers (exact, and half the memory
/// of floats: ten million rows hold twelve count columns), the rates as floats.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Counts.
    Counts(Vec<u32>),
    /// Rates, or any value carried as a float.
    Floats(Vec<f64>),
}

impl Values {
    /// Row `i`'s value (NaN past the end).
    pub fn get(&self, i: usize) -> f64 {
        match self {
            Values::Counts(v) => v.get(i).map_or(f64::NAN, |&c| f64::from(c)),
            Values::Floats(v) => v.get(i).copied().unwrap_or(f64::NAN),
        }
    }

    /// Rows `range` of the column, of the same kind (empty for a range past the end).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Values {
        match self {
            Values::Counts(v) => Values::Counts(v.get(range).map(<[u32]>::to_vec).unwrap_or_default()),
            Values::Floats(v) => Values::Floats(v.get(range).map(<[f64]>::to_vec).unwrap_or_default()),
        }
    }

    /// Rows `range`'s values.
    pub fn range(&self, range: std::ops::Range<usize>) -> Vec<f64> {
        match self {
            Values::Counts(v) => v.get(range).map(|v| v.iter().map(|&c| f64::from(c)).collect()).unwrap_or_default(),
            Values::Floats(v) => v.get(range).map(<[f64]>::to_vec).unwrap_or_default(),
        }
    }
}

impl History {
    /// An empty history over these entity kinds.
    pub fn new(kinds: &[&str], smoothing: f64) -> Self {
        History {
            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            entities: vec![Entities::default(); kinds.len()],
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

    /// Computes the history features of `rows` and folds them into the history.
    ///
    /// `days[i]` is row `i`'s date, `ids[k][i]` its id for kind `k`, `labels[i]` its inspection
    /// outcome. Returns one column per feature (`kinds × PER_KIND` of them, in
    /// [`History::feature_names`] order), each in row order.
    pub fn advance(&mut self, days: &[i32], ids: &[Vec<Option<&str>>], labels: &[Option<bool>]) -> Vec<Values> {
        let coded = ids.par_iter().map(|kind| Coded::new(kind.iter().copied())).collect();
        self.advance_coded(days, coded, labels)
    }

    /// [`History::advance`] with each kind's ids already coded ([`Coded`]).
    ///
    /// Kinds are independent but for the global fraud rate that smooths them, so that rate is
    /// taken per day first and the kinds then run in parallel. Within a kind, the counts of the
    /// ids present are gathered into an array first, walked in date order by code, and written
    /// back at the end: one hash lookup per distinct id instead of two per row.
    pub fn advance_coded(&mut self, days: &[i32], ids: Vec<Coded<'_>>, labels: &[Option<bool>]) -> Vec<Values> {
        let mut order: Vec<usize> = (0..days.len()).collect();
        order.sort_by_key(|&i| (days[i], i));
        // Each day's rows (`order[start..end]`) with the global fraud rate before that day.
        let mut day_groups = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let day = days[order[start]];
            let end = start + order[start..].iter().take_while(|&&i| days[i] == day).count();
            let prior = if self.global.inspected > 0 { f64::from(self.global.fraud) / f64::from(self.global.inspected) } else { f64::NAN };
            day_groups.push((start, end, prior));
            for &i in &order[start..end] {
                self.global.bump(labels[i]);
            }
            self.last_day = Some(self.last_day.map_or(day, |d| d.max(day)));
            start = end;
        }
        let smoothing = self.smoothing;
        let per_kind: Vec<[Values; PER_KIND]> = self
            .entities
            .par_iter_mut()
            .zip(ids)
            .map(|(entities, coded)| {
                let mut stats: Vec<Stats> = coded.values.iter().map(|id| entities.get(*id).copied().unwrap_or_default()).collect();
                let (mut seen, mut inspected, mut rate) = (vec![0; days.len()], vec![0; days.len()], vec![0.0; days.len()]);
                for &(start, end, prior) in &day_groups {
                    // A day's rows see the days before it, never each other.
                    for &i in &order[start..end] {
                        let s = coded.codes.get(i).and_then(|&c| stats.get(c as usize)).copied().unwrap_or_default();
                        seen[i] = s.seen;
                        inspected[i] = s.inspected;
                        rate[i] = (f64::from(s.fraud) + smoothing * prior) / (f64::from(s.inspected) + smoothing);
                    }
                    for &i in &order[start..end] {
                        if let Some(s) = coded.codes.get(i).and_then(|&c| stats.get_mut(c as usize)) {
                            s.bump(labels[i]);
                        }
                    }
                }
                for (id, s) in coded.values.iter().zip(stats) {
                    match entities.get_mut(*id) {
                        Some(known) => *known = s,
                        None => {
                            entities.insert((*id).to_owned(), s);
                        }
                    }
                }
                [Values::Counts(seen), Values::Counts(inspected), Values::Floats(rate)]
            })
            .collect();
        per_kind.into_iter().flatten().collect()
    }
}

impl History {
    /// Folds in a label that arrived after its declaration was processed (`ids[k]` its id for
    /// kind `k`; `before` the label it had): the declaration counts as inspected, and as
    /// fraudulent if `after`, for the rows processed from now on. The earlier rows' features stay
    /// as they were, since the label was not known when they were lodged.
    pub fn learn_late(&mut self, ids: &[Option<&str>], before: Option<bool>, after: bool) {
        let update = |s: &mut Stats| {
            if before.is_none() {
                s.inspected += 1;
            }
            s.fraud = (s.fraud + u32::from(after)).saturating_sub(u32::from(before == Some(true)));
        };
        update(&mut self.global);
        for (entities, id) in self.entities.iter_mut().zip(ids) {
            if let Some(id) = id {
                update(entities.entry((*id).to_owned()).or_default());
            }
        }
    }
}

impl Stats {
    fn bump(&mut self, label: Option<bool>) {
        self.seen += 1;
        if let Some(l) = label {
            self.inspected += 1;
            self.fraud += u32::from(l);
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
        let row = |i: usize| f.iter().map(|column| column.get(i)).collect::<Vec<f64>>();
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
    fn a_late_label_counts_from_then_on() {
        let mut h = History::new(&["importer"], 0.0);
        h.advance(&[1, 2], &[vec![Some("A"), Some("A")]], &[None, Some(false)]);
        h.learn_late(&[Some("A")], None, true);
        // The day-1 row is now inspected and fraudulent; the day-2 row is revised to fraud.
        h.learn_late(&[Some("A")], Some(false), true);
        let f = h.advance(&[3], &[vec![Some("A")]], &[None]);
        assert_eq!(f.iter().map(|c| c.get(0)).collect::<Vec<f64>>(), vec![2.0, 2.0, 1.0]);
        assert_eq!((h.global.inspected, h.global.fraud), (2, 2));
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
        assert!((f[2].get(20) - 0.1).abs() < 1e-12);
    }
}
