//! Ranking metrics used to judge customs risk scores, shared by every stage that ranks
//! declarations (k-means undervaluation scores, the fraud model, the auditee list).
//!
//! The customs-literature metrics look at the top *n* % of a ranking, because that is what an
//! administration can afford to inspect or audit:
//! - **precision@n%**: share of the selected rows that are truly fraudulent;
//! - **recall@n%**: share of all fraudulent rows that the selection catches;
//! - **revenue@n%**: share of the duty on fraudulent rows that the selection recovers.
//!
//! Lists of entities (importers to audit) are judged by their [`capture`] curve: the share of a
//! known truth (each importer's lost duty) held by the head of the list.
//!
//! ```
//! use mirador_metrics::{auc, top_share};
//! let scores = [0.9, 0.8, 0.3, 0.1];
//! let labels = [true, false, true, false];
//! assert_eq!(auc(&scores, &labels), Some(0.75));
//! let at50 = top_share(&scores, &labels, &[10.0, 1.0, 30.0, 5.0], 50.0).unwrap();
//! assert_eq!(at50.precision, 0.5);
//! assert_eq!(at50.revenue, 0.25);
//! ```

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

mod resample;
pub use resample::{Bootstrap, Interval, Resampled, Spread, holders};

/// ROC AUC of `scores` against boolean `labels`; ties count one half. `None` when either class
/// is absent or the lengths differ. Non-finite scores rank lowest.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() {
        return None;
    }
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| cmp_score(scores[a], scores[b]));
    // Mann–Whitney U with average ranks over ties.
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && cmp_score(scores[order[j + 1]], scores[order[i]]) == Ordering::Equal {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += avg_rank * order[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum_pos - p * (p + 1.0) / 2.0) / (p * n))
}

/// What the top `n_pct` % of a ranking achieves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TopShare {
    /// The percentage of rows selected.
    pub n_pct: f64,
    /// Rows selected (`ceil(n_pct % × rows)`).
    pub selected: usize,
    /// Share of selected rows that are positive.
    pub precision: f64,
    /// Share of all positives that are selected.
    pub recall: f64,
    /// Share of the positives' revenue (e.g. duty) held by the selected positives.
    pub revenue: f64,
}

/// precision@n%, recall@n% and revenue@n% of ranking rows by `scores` (highest first; ties
/// broken by row order, so the result is deterministic). `revenue` is each row's amount at stake;
/// only positives' amounts count. `None` when the lengths differ or there are no rows.
pub fn top_share(scores: &[f64], labels: &[bool], revenue: &[f64], n_pct: f64) -> Option<TopShare> {
    if scores.len() != labels.len() {
        return None;
    }
    top_share_in_order(&ranking(scores), labels, revenue, n_pct)
}

/// [`top_share`] of rows taken in a given order, the first the most suspicious (a list's picks,
/// already ranked): the same figures, summed in the same order, as `top_share` of scores that
/// rank the rows so. `None` when the lengths differ, there are no rows or `order` names a row
/// that is not there.
pub fn top_share_in_order(order: &[usize], labels: &[bool], revenue: &[f64], n_pct: f64) -> Option<TopShare> {
    if labels.len() != revenue.len() || labels.is_empty() || !(0.0..=100.0).contains(&n_pct) || order.iter().any(|&i| i >= labels.len()) {
        return None;
    }
    let selected = ((n_pct / 100.0) * labels.len() as f64).ceil() as usize;
    let positives = labels.iter().filter(|&&l| l).count();
    let total_revenue: f64 = labels.iter().zip(revenue).filter(|(l, _)| **l).map(|(_, r)| r.max(0.0)).sum();
    let top = &order[..selected.min(order.len())];
    let hits = top.iter().filter(|&&i| labels[i]).count();
    let recovered: f64 = top.iter().filter(|&&i| labels[i]).map(|&i| revenue[i].max(0.0)).sum();
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Some(TopShare {
        n_pct,
        selected,
        precision: ratio(hits as f64, selected as f64),
        recall: ratio(hits as f64, positives as f64),
        revenue: ratio(recovered, total_revenue),
    })
}

/// How much of a quantity the head of an ordering of entities holds: the share of all `truth`
/// (e.g. each importer's lost duty) held by the first `ceil(n_pct % × entities)` entities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    /// The percentage of entities selected.
    pub n_pct: f64,
    /// Entities selected.
    pub selected: usize,
    /// Share of the total truth (negative amounts count as zero) the selected entities hold.
    pub share: f64,
}

/// The capture curve of ordering entities by `scores` (highest first, ties by entity order, as
/// [`ranking`]) against each entity's `truth`, at each percentage of `n_pcts`. The oracle's curve
/// is `capture(truth, truth, ..)`; a random order holds `selected / entities` in expectation
/// ([`random_capture`]). `None` when the lengths differ, there are no entities, no truth to hold,
/// or a percentage is outside [0, 100].
///
/// ```
/// use mirador_metrics::capture;
/// let truth = [0.0, 30.0, 10.0, 60.0];
/// let curve = capture(&[4.0, 3.0, 2.0, 1.0], &truth, &[25.0, 50.0]).unwrap();
/// assert_eq!((curve[0].share, curve[1].share), (0.0, 0.3));
/// assert_eq!(capture(&truth, &truth, &[25.0]).unwrap()[0].share, 0.6);
/// ```
pub fn capture(scores: &[f64], truth: &[f64], n_pcts: &[f64]) -> Option<Vec<Capture>> {
    if scores.len() != truth.len() || scores.is_empty() || n_pcts.iter().any(|p| !(0.0..=100.0).contains(p)) {
        return None;
    }
    let held = |t: f64| if t.is_finite() { t.max(0.0) } else { 0.0 };
    let total: f64 = truth.iter().map(|t| held(*t)).sum();
    if total <= 0.0 {
        return None;
    }
    let order = ranking(scores);
    let mut cumulative = Vec::with_capacity(order.len() + 1);
    cumulative.push(0.0);
    for &i in &order {
        cumulative.push(cumulative[cumulative.len() - 1] + held(truth[i]));
    }
    Some(
        n_pcts
            .iter()
            .map(|&n_pct| {
                let selected = selected(n_pct, scores.len());
                Capture { n_pct, selected, share: cumulative[selected] / total }
            })
            .collect(),
    )
}

/// What a random order of `entities` holds in expectation at `n_pct` %: the share of entities it
/// selects, whatever the truth.
pub fn random_capture(entities: usize, n_pct: f64) -> Capture {
    let selected = selected(n_pct, entities);
    Capture { n_pct, selected, share: if entities == 0 { 0.0 } else { selected as f64 / entities as f64 } }
}

/// Entities in the top `n_pct` % of `n`: `ceil(n_pct % × n)`, at most `n`.
fn selected(n_pct: f64, n: usize) -> usize {
    // Multiplied before dividing, so that whole percentages of whole counts are exact.
    ((n_pct.clamp(0.0, 100.0) * n as f64 / 100.0).ceil() as usize).min(n)
}

/// Row indices ordered by score, highest first, ties by row order; non-finite scores last.
///
/// The order is total, so the rows are sorted on keys (the score's bits in the order of
/// [`f64::total_cmp`], reversed, then the row), in parallel, with no comparison reading the scores
/// back: several times faster than a comparison sort on the millions of rows of a period.
pub fn ranking(scores: &[f64]) -> Vec<usize> {
    use rayon::prelude::*;
    let mut keyed: Vec<(u64, usize)> = scores
        .par_iter()
        .enumerate()
        .map(|(row, &x)| {
            let bits = if x.is_finite() { x } else { f64::NEG_INFINITY }.to_bits();
            // The bits in the order of `f64::total_cmp`, then reversed: highest first.
            let ascending = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
            (!ascending, row)
        })
        .collect();
    keyed.par_sort_unstable();
    keyed.into_par_iter().map(|(_, row)| row).collect()
}

fn cmp_score(a: f64, b: f64) -> Ordering {
    let key = |x: f64| if x.is_finite() { x } else { f64::NEG_INFINITY };
    key(a).total_cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_holds_the_truth_of_the_head_of_the_order() {
        let truth = [5.0, 0.0, 20.0, 75.0, -3.0];
        // The oracle holds the largest truths first; the reversed order holds them last.
        let oracle = capture(&truth, &truth, &[20.0, 40.0, 100.0]).unwrap();
        assert_eq!(oracle.iter().map(|c| c.selected).collect::<Vec<_>>(), [1, 2, 5]);
        assert_eq!(oracle.iter().map(|c| c.share).collect::<Vec<_>>(), [0.75, 0.95, 1.0]);
        let reversed: Vec<f64> = truth.iter().map(|t| -t).collect();
        let worst = capture(&reversed, &truth, &[40.0]).unwrap();
        assert_eq!(worst[0].share, 0.0, "negative truth counts as zero");
        // Any order holds no more than the oracle at every percentage, and all of it at 100 %.
        let orders = [[1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 1.0, 4.0, 2.0, 3.0], [0.0; 5]];
        for scores in orders {
            for pct in [0.0, 10.0, 20.0, 50.0, 80.0, 100.0] {
                let c = capture(&scores, &truth, &[pct]).unwrap()[0];
                let best = capture(&truth, &truth, &[pct]).unwrap()[0];
                assert!(c.share <= best.share + 1e-12 && (0.0..=1.0).contains(&c.share));
                assert_eq!(c.selected, best.selected);
            }
            assert_eq!(capture(&scores, &truth, &[100.0]).unwrap()[0].share, 1.0);
        }
        // Ties keep entity order: all-equal scores select the first entities.
        assert_eq!(capture(&[0.0; 5], &truth, &[60.0]).unwrap()[0].share, 0.25);
        assert_eq!(capture(&[1.0], &[1.0, 2.0], &[5.0]), None);
        assert_eq!(capture(&[1.0, 2.0], &[0.0, -1.0], &[5.0]), None, "nothing to hold");
        assert_eq!(capture(&[1.0], &[1.0], &[101.0]), None);
        assert_eq!(random_capture(200, 5.0).share, 0.05);
        assert_eq!(random_capture(30, 5.0).selected, 2);
        assert_eq!(random_capture(0, 5.0).share, 0.0);
    }

    #[test]
    fn auc_of_perfect_reversed_and_tied_rankings() {
        let labels = [true, true, false, false];
        assert_eq!(auc(&[4.0, 3.0, 2.0, 1.0], &labels), Some(1.0));
        assert_eq!(auc(&[1.0, 2.0, 3.0, 4.0], &labels), Some(0.0));
        assert_eq!(auc(&[1.0; 4], &labels), Some(0.5));
        assert_eq!(auc(&[1.0, 2.0], &[true, true]), None);
        assert_eq!(auc(&[1.0], &[true, false]), None);
    }

    #[test]
    fn auc_matches_pairwise_count() {
        let scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.2, 0.9];
        let labels = [false, false, true, true, true, false, false];
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for i in 0..scores.len() {
            for j in 0..scores.len() {
                if labels[i] && !labels[j] {
                    pairs += 1.0;
                    wins += match scores[i].partial_cmp(&scores[j]) {
                        Some(Ordering::Greater) => 1.0,
                        Some(Ordering::Equal) => 0.5,
                        _ => 0.0,
                    };
                }
            }
        }
        assert!((auc(&scores, &labels).unwrap() - wins / pairs).abs() < 1e-12);
    }

    #[test]
    fn top_share_counts_the_selected_rows() {
        let scores = [0.9, 0.1, 0.8, 0.7, 0.2, f64::NAN, 0.3, 0.4, 0.5, 0.6];
        let labels = [true, true, false, true, false, true, false, false, false, false];
        let revenue = [100.0, 50.0, 0.0, 25.0, 0.0, 25.0, 0.0, 0.0, 0.0, 0.0];
        let t = top_share(&scores, &labels, &revenue, 30.0).unwrap();
        assert_eq!(t.selected, 3);
        assert!((t.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((t.recall - 0.5).abs() < 1e-12);
        assert!((t.revenue - 125.0 / 200.0).abs() < 1e-12);
        let all = top_share(&scores, &labels, &revenue, 100.0).unwrap();
        assert_eq!((all.recall, all.revenue), (1.0, 1.0));
        assert!(top_share(&scores, &labels, &revenue, 120.0).is_none());
        // The same figures from the rows in their ranked order; a row that is not there is refused.
        let order = ranking(&scores);
        for n in [10.0, 30.0, 55.0, 100.0] {
            assert_eq!(top_share_in_order(&order, &labels, &revenue, n), top_share(&scores, &labels, &revenue, n));
        }
        assert_eq!(top_share_in_order(&[2, 0], &labels, &revenue, 20.0).unwrap().precision, 0.5, "rows taken as given");
        assert!(top_share_in_order(&[0, 10], &labels, &revenue, 10.0).is_none());
    }

    #[test]
    fn ranking_puts_nan_last_and_breaks_ties_by_order() {
        assert_eq!(ranking(&[0.5, f64::NAN, 0.5, 0.9]), vec![3, 0, 2, 1]);
    }

    #[test]
    fn ranking_is_the_comparison_sort_of_the_scores() {
        let specials = [0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1.0, -1.0, f64::MIN_POSITIVE, f64::MAX, f64::MIN];
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for n in [0, 1, 2, 7, 100, 5_000] {
            let scores: Vec<f64> = (0..n)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Many ties, the special values and spread values.
                    match rng % 4 {
                        0 => specials[(rng >> 8) as usize % specials.len()],
                        1 => ((rng >> 8) % 5) as f64 / 4.0,
                        _ => ((rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1e3,
                    }
                })
                .collect();
            let mut sorted: Vec<usize> = (0..scores.len()).collect();
            sorted.sort_by(|&a, &b| cmp_score(scores[b], scores[a]).then(a.cmp(&b)));
            assert_eq!(ranking(&scores), sorted, "{n} rows");
        }
    }
}
