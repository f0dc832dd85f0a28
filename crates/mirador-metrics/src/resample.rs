//! How far the held-out figures could move on another sample of the same size: bootstrap
//! intervals of AUC, precision@n%, recall@n% and revenue@n%.
//!
//! revenue@n% in particular is decided by a handful of declarations when duty is heavy-tailed
//! (on the public KCS test months half the fraudulent duty sits on a dozen declarations), so a
//! single figure says little without its spread.
//!
//! Each resample draws the evaluated rows with replacement; the ranking itself does not change
//! (a row's copies sit where the row sits), so a resample is one pass over the fixed order.

use std::cmp::Ordering;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{cmp_score, ranking};

/// A two-sided percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

impl Interval {
    /// Whether `x` lies within the bounds.
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// The intervals of the top-n % figures at one `n_pct`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The percentage of rows selected.
    pub n_pct: f64,
    /// precision@n%.
    pub precision: Interval,
    /// recall@n%.
    pub recall: Interval,
    /// revenue@n%.
    pub revenue: Interval,
}

/// Bootstrap intervals of one ranking's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resampled {
    /// ROC AUC; `None` when a class is absent.
    pub auc: Option<Interval>,
    /// One per requested `n_pct`, in the order given.
    pub at: Vec<Spread>,
}

/// How many rows are drawn per resample, and which interval is kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    /// Resamples drawn.
    pub resamples: usize,
    /// Coverage of the interval, e.g. 0.9 for the 5th to the 95th percentile.
    pub level: f64,
    /// Seed of the draws: the same seed gives the same intervals.
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap { resamples: 200, level: 0.9, seed: 0 }
    }
}

/// One resample's figures: AUC, then (precision, recall, revenue) per `n_pct`.
type Draw = (Option<f64>, Vec<[f64; 3]>);

impl Bootstrap {
    /// Intervals of ranking rows by `scores` (as [`crate::top_share`] and [`crate::auc`] rank
    /// them). `None` when the lengths differ, there are no rows or no resamples.
    pub fn intervals(&self, scores: &[f64], labels: &[bool], revenue: &[f64], n_pcts: &[f64]) -> Option<Resampled> {
        self.intervals_of(&[scores], labels, revenue, n_pcts).pop().flatten()
    }

    /// [`Bootstrap::intervals`] of several rankings of the same rows, one per `rankings` entry,
    /// each exactly what `intervals` gives it: the resamples' draws (the same for every ranking,
    /// as they depend on the seed and the rows only) are made once and every ranking is
    /// measured on each.
    pub fn intervals_of(&self, rankings: &[&[f64]], labels: &[bool], revenue: &[f64], n_pcts: &[f64]) -> Vec<Option<Resampled>> {
        let n = labels.len();
        let usable = |scores: &&[f64]| n > 0 && scores.len() == n && revenue.len() == n && self.resamples > 0;
        // Each usable ranking's order, and the boundaries of runs of equal scores in it (AUC
        // counts ties one half).
        let ranked: Vec<Option<(Vec<usize>, Vec<usize>)>> = rankings
            .iter()
            .map(|scores| {
                usable(scores).then(|| {
                    let order = ranking(scores);
                    let mut tie_end = vec![0; n];
                    let mut start = 0;
                    for k in 1..=n {
                        if k == n || cmp_score(scores[order[k]], scores[order[start]]) != Ordering::Equal {
                            tie_end[start..k].fill(k);
                            start = k;
                        }
                    }
                    (order, tie_end)
                })
            })
            .collect();
        if ranked.iter().all(Option::is_none) {
            return vec![None; rankings.len()];
        }
        // Per resample, each ranking's figures.
        let draws: Vec<Vec<Option<Draw>>> = (0..self.resamples)
            .into_par_iter()
            .map(|b| {
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(self.seed ^ (b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let mut count = vec![0u32; n];
                for _ in 0..n {
                    count[rng.gen_range(0..n)] += 1;
                }
                let totals = Totals::of(&count, labels, revenue);
                ranked
                    .iter()
                    .map(|r| r.as_ref().map(|(order, tie_end)| draw_with(order, tie_end, &count, labels, revenue, n_pcts, &totals)))
                    .collect()
            })
            .collect();
        let pick = |mut v: Vec<f64>| -> Interval {
            v.sort_by(f64::total_cmp);
            let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
            let tail = (1.0 - self.level.clamp(0.0, 1.0)) / 2.0;
            Interval { lo: at(tail), hi: at(1.0 - tail) }
        };
        (0..rankings.len())
            .map(|r| {
                ranked[r].as_ref()?;
                let draws: Vec<&Draw> = draws.iter().filter_map(|d| d[r].as_ref()).collect();
                let aucs: Vec<f64> = draws.iter().filter_map(|d| d.0).collect();
                // A class can vanish from a tiny resample; the interval needs most draws to have both.
                let auc = (aucs.len() * 2 > draws.len()).then(|| pick(aucs));
                let at = n_pcts
                    .iter()
                    .enumerate()
                    .map(|(j, &n_pct)| {
                        let figure = |f: usize| pick(draws.iter().map(|d| d.1[j][f]).collect());
                        Spread { n_pct, precision: figure(0), recall: figure(1), revenue: figure(2) }
                    })
                    .collect();
                Some(Resampled { auc, at })
            })
            .collect()
    }
}

/// What every ranking's figures of one resample share: the rows drawn, and the positives'
/// copies and revenue among them.
struct Totals {
    rows: u64,
    positives: f64,
    revenue: f64,
}

impl Totals {
    /// The totals of a resample where row `i` was drawn `count[i]` times.
    fn of(count: &[u32], labels: &[bool], revenue: &[f64]) -> Totals {
        let rows: u64 = count.iter().map(|&c| u64::from(c)).sum();
        let (mut positives, mut total_revenue) = (0.0, 0.0);
        for (i, &c) in count.iter().enumerate() {
            if labels[i] {
                positives += f64::from(c);
                total_revenue += f64::from(c) * revenue[i].max(0.0);
            }
        }
        Totals { rows, positives, revenue: total_revenue }
    }
}

/// The figures of one resample, where row `i` was drawn `count[i]` times.
#[cfg(test)]
fn draw(order: &[usize], tie_end: &[usize], count: &[u32], labels: &[bool], revenue: &[f64], n_pcts: &[f64]) -> Draw {
    draw_with(order, tie_end, count, labels, revenue, n_pcts, &Totals::of(count, labels, revenue))
}

/// [`draw`] with the resample's [`Totals`] given.
fn draw_with(order: &[usize], tie_end: &[usize], count: &[u32], labels: &[bool], revenue: &[f64], n_pcts: &[f64], totals: &Totals) -> Draw {
    let &Totals { rows, positives, revenue: total_revenue } = totals;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    // Top-n %: walk the ranking once, taking each row's copies; the figures at each n are those
    // of the rows taken until its `selected` copies (the last row's copies in part), so each is
    // the sum, in ranking order, that a walk stopping there adds up.
    let selected: Vec<u64> = n_pcts.iter().map(|&n_pct| ((n_pct / 100.0) * rows as f64).ceil() as u64).collect();
    let mut by_size: Vec<usize> = (0..n_pcts.len()).collect();
    by_size.sort_by_key(|&j| selected[j]);
    let mut figures = vec![[0.0; 3]; n_pcts.len()];
    let mut put = |j: usize, hits: f64, recovered: f64| {
        figures[j] = [ratio(hits, selected[j] as f64), ratio(hits, positives), ratio(recovered, total_revenue)];
    };
    let mut next = by_size.iter().peekable();
    let (mut taken, mut hits, mut recovered) = (0u64, 0.0, 0.0);
    for &i in order {
        while let Some(&&j) = next.peek().filter(|&&&j| taken >= selected[j]) {
            put(j, hits, recovered);
            next.next();
        }
        if next.peek().is_none() {
            break;
        }
        let c = u64::from(count[i]);
        // The sizes this row's copies reach take only what they need of them.
        while let Some(&&j) = next.peek().filter(|&&&j| taken + c >= selected[j]) {
            let part = selected[j] - taken;
            if labels[i] {
                put(j, hits + part as f64, recovered + part as f64 * revenue[i].max(0.0));
            } else {
                put(j, hits, recovered);
            }
            next.next();
        }
        taken += c;
        if labels[i] {
            hits += c as f64;
            recovered += c as f64 * revenue[i].max(0.0);
        }
    }
    for &j in next {
        put(j, hits, recovered);
    }
    // AUC: for each positive, the negatives ranked below it, plus half the tied ones.
    let negatives = rows as f64 - positives;
    let auc = (positives > 0.0 && negatives > 0.0).then(|| {
        let (mut wins, mut negatives_above) = (0.0, 0.0);
        let mut k = 0;
        while k < order.len() {
            let group = &order[k..tie_end[k]];
            let (pos, neg) = group.iter().fold((0.0, 0.0), |(p, q), &i| {
                let c = f64::from(count[i]);
                if labels[i] { (p + c, q) } else { (p, q + c) }
            });
            wins += pos * (negatives - negatives_above - neg + neg / 2.0);
            negatives_above += neg;
            k = tie_end[k];
        }
        wins / (positives * negatives)
    });
    (auc, figures)
}

/// The fewest positive rows whose revenue makes up `share` of all positives' revenue (largest
/// first): how concentrated the revenue at stake is. 0 when the positives hold no revenue.
pub fn holders(labels: &[bool], revenue: &[f64], share: f64) -> usize {
    let mut held: Vec<f64> = labels.iter().zip(revenue).filter(|(l, _)| **l).map(|(_, r)| r.max(0.0)).collect();
    let total: f64 = held.iter().sum();
    if total <= 0.0 {
        return 0;
    }
    held.sort_by(|a, b| b.total_cmp(a));
    let mut sum = 0.0;
    for (k, r) in held.iter().enumerate() {
        sum += r;
        if sum >= share * total {
            return k + 1;
        }
    }
    held.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auc, top_share};

    fn sample(n: usize) -> (Vec<f64>, Vec<bool>, Vec<f64>) {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        let labels: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.2)).collect();
        let scores = labels.iter().map(|&l| f64::from(u8::from(l)) * 0.3 + rng.gen_range(0.0..1.0)).collect();
        let revenue = (0..n).map(|_| rng.gen_range(0.0..1.0f64).powi(4) * 1000.0).collect();
        (scores, labels, revenue)
    }

    #[test]
    fn one_draw_of_every_row_gives_the_point_figures() {
        let (scores, labels, revenue) = sample(500);
        let order = ranking(&scores);
        let b = Bootstrap::default();
        let n_pcts = [1.0, 5.0, 10.0, 50.0];
        let full = b.intervals(&scores, &labels, &revenue, &n_pcts).unwrap();
        // With every row drawn once, a draw is the sample itself.
        let tie_end: Vec<usize> = (1..=scores.len()).collect();
        let (a, figures) = draw(&order, &tie_end, &vec![1; scores.len()], &labels, &revenue, &n_pcts);
        assert!((a.unwrap() - auc(&scores, &labels).unwrap()).abs() < 1e-12);
        for (j, &n) in n_pcts.iter().enumerate() {
            let t = top_share(&scores, &labels, &revenue, n).unwrap();
            let point = [t.precision, t.recall, t.revenue];
            assert!(figures[j].iter().zip(point).all(|(a, b)| (a - b).abs() < 1e-12), "{:?} vs {point:?}", figures[j]);
            let s = full.at[j];
            assert!(s.precision.contains(t.precision) && s.recall.contains(t.recall), "{s:?} vs {t:?}");
            assert!(s.precision.lo <= s.precision.hi && s.revenue.contains(t.revenue));
        }
        let half = full.at[3];
        assert!(half.precision.lo < half.precision.hi && half.recall.lo < half.recall.hi && half.revenue.lo < half.revenue.hi);
        assert!(full.auc.unwrap().contains(auc(&scores, &labels).unwrap()));
    }

    /// The top-n % figures as a walk per size gives them, stopping at its `selected` copies.
    fn top_by_walks(order: &[usize], count: &[u32], labels: &[bool], revenue: &[f64], n_pcts: &[f64]) -> Vec<[f64; 3]> {
        let totals = Totals::of(count, labels, revenue);
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        n_pcts
            .iter()
            .map(|&n_pct| {
                let selected = ((n_pct / 100.0) * totals.rows as f64).ceil() as u64;
                let (mut taken, mut hits, mut recovered) = (0u64, 0.0, 0.0);
                for &i in order {
                    if taken >= selected {
                        break;
                    }
                    let c = u64::from(count[i]).min(selected - taken);
                    taken += c;
                    if labels[i] {
                        hits += c as f64;
                        recovered += c as f64 * revenue[i].max(0.0);
                    }
                }
                [ratio(hits, selected as f64), ratio(hits, totals.positives), ratio(recovered, totals.revenue)]
            })
            .collect()
    }

    #[test]
    fn one_walk_gives_each_size_the_figures_of_a_walk_of_its_own() {
        let (scores, labels, revenue) = sample(997);
        let order = ranking(&scores);
        let tie_end: Vec<usize> = (1..=scores.len()).collect();
        // Sizes out of order, repeated, nothing and everything, and one past every row.
        let n_pcts = [20.0, 1.0, 0.0, 5.0, 5.0, 100.0, 0.05, 150.0, 33.3];
        for seed in 0..20u64 {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            // Many rows not drawn, some drawn several times.
            let count: Vec<u32> = (0..scores.len()).map(|_| rng.gen_range(0..4u32).saturating_sub(1) * rng.gen_range(1..3u32)).collect();
            let (_, figures) = draw(&order, &tie_end, &count, &labels, &revenue, &n_pcts);
            let want = top_by_walks(&order, &count, &labels, &revenue, &n_pcts);
            let bits = |f: &[[f64; 3]]| f.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&figures), bits(&want), "seed {seed}");
        }
    }

    #[test]
    fn weighted_auc_counts_ties_one_half() {
        let scores = [0.9, 0.5, 0.5, 0.1];
        let labels = [true, true, false, false];
        let order = ranking(&scores);
        let tie_end = [1, 3, 3, 4];
        // Drawn twice, the tied positive/negative pair weighs double.
        let (a, _) = draw(&order, &tie_end, &[1, 2, 2, 1], &labels, &[0.0; 4], &[]);
        let (p, q) = (3.0, 3.0);
        let wins = 1.0 * 3.0 + 2.0 * (1.0 + 2.0 / 2.0);
        assert!((a.unwrap() - wins / (p * q)).abs() < 1e-12);
    }

    #[test]
    fn intervals_are_seeded_and_narrow_with_more_rows() {
        let b = Bootstrap { seed: 3, ..Bootstrap::default() };
        let (s, l, r) = sample(400);
        let small = b.intervals(&s, &l, &r, &[10.0]).unwrap();
        assert_eq!(small, b.intervals(&s, &l, &r, &[10.0]).unwrap());
        assert_ne!(small, Bootstrap { seed: 4, ..b }.intervals(&s, &l, &r, &[10.0]).unwrap());
        let (s, l, r) = sample(10_000);
        let large = b.intervals(&s, &l, &r, &[10.0]).unwrap();
        let width = |i: Interval| i.hi - i.lo;
        assert!(width(large.at[0].precision) < width(small.at[0].precision) / 2.0);
        assert!(width(large.auc.unwrap()) < width(small.auc.unwrap()) / 2.0);
        assert!(b.intervals(&s, &l[1..], &r, &[10.0]).is_none());
    }

    /// Several rankings measured on one set of draws give each what it gets alone, and a ranking
    /// of the wrong length is `None` without affecting the others.
    #[test]
    fn rankings_measured_together_get_what_each_gets_alone() {
        let b = Bootstrap { seed: 11, resamples: 60, ..Bootstrap::default() };
        let (s, l, r) = sample(3_000);
        let expected: Vec<f64> = s.iter().zip(&r).map(|(p, d)| p * d).collect();
        let ties: Vec<f64> = s.iter().map(|p| (p * 4.0).floor()).collect();
        let n_pcts = [1.0, 5.0, 20.0];
        let together = b.intervals_of(&[&s, &expected, &s[1..], &ties], &l, &r, &n_pcts);
        assert_eq!(together.len(), 4);
        assert_eq!(together[0], b.intervals(&s, &l, &r, &n_pcts));
        assert_eq!(together[1], b.intervals(&expected, &l, &r, &n_pcts));
        assert_eq!(together[2], None);
        assert_eq!(together[3], b.intervals(&ties, &l, &r, &n_pcts));
        assert!(together[0] != together[1] && together[0].is_some());
        assert_eq!(b.intervals_of(&[], &l, &r, &n_pcts), Vec::new());
    }

    #[test]
    fn a_perfect_ranking_keeps_perfect_precision() {
        let scores: Vec<f64> = (0..100).map(f64::from).collect();
        let labels: Vec<bool> = (0..100).map(|i| i >= 50).collect();
        let r = Bootstrap::default().intervals(&scores, &labels, &vec![1.0; 100], &[20.0]).unwrap();
        assert_eq!(r.at[0].precision, Interval { lo: 1.0, hi: 1.0 });
        assert_eq!(r.auc, Some(Interval { lo: 1.0, hi: 1.0 }));
    }

    #[test]
    fn holders_of_a_share_of_the_revenue() {
        let labels = [true, true, false, true, true];
        let revenue = [10.0, 60.0, 1000.0, 20.0, 10.0];
        assert_eq!(holders(&labels, &revenue, 0.5), 1);
        assert_eq!(holders(&labels, &revenue, 0.7), 2);
        assert_eq!(holders(&labels, &revenue, 1.0), 4);
        assert_eq!(holders(&[false], &[5.0], 0.5), 0);
    }
}
