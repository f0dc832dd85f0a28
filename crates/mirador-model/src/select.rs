//! The inspection list: which declarations a budget of n % of a period's declarations inspects.
//!
//! Neither ranking of the model is a list a risk-management unit would send to its officers: the
//! probability ranking finds fraud but little of the duty (on the public KCS test months,
//! precision 0.98 but revenue 0.14 at 5 %), the expected-duty ranking finds the duty but mostly
//! clean declarations (revenue 0.98, precision 0.34). The list splits its budget between three
//! shares, each with its own queue:
//! - **probability**: highest fraud probability first;
//! - **revenue**: highest `probability ^ revenue-exponent × duty` first (exponent 1: the expected
//!   recoverable duty; a larger exponent asks more certainty of a large duty);
//! - **exploration**: the declarations the model knows least about (scores near the flag
//!   threshold, importers with little inspection history, HS6 × origin pairs new to the
//!   training months: [`novelty`]), drawn at random in proportion to that novelty, seeded.
//!
//! The shares are interleaved, not laid out in blocks: after every pick, each share has picked as
//! close to its part of the picks so far as whole picks allow. So the list at any budget is a
//! prefix of one order, and `selection_order` in `fraud_scores` recomputes it at any n %: the list
//! at n % is the rows with `selection_order <= ceil(n % × rows of the period)`. A declaration a
//! share picked is skipped by the others.
//!
//! [`tune`] chooses the revenue share and exponent on the validation months: the most revenue at
//! the budget under a precision floor, over a grid; the whole grid is the frontier it came from.

use mirador_metrics::{TopShare, ranking, top_share, top_share_in_order};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// The share of the budget that picked a declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    /// Highest fraud probability.
    Probability,
    /// Highest expected recoverable duty.
    Revenue,
    /// What the model knows least about.
    Exploration,
}

impl Share {
    /// The name written in `selected_by`.
    pub fn name(self) -> &'static str {
        match self {
            Share::Probability => "probability",
            Share::Revenue => "revenue",
            Share::Exploration => "exploration",
        }
    }
}

/// How the budget is split; the probability share is what the other two leave.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// Share of the picks by expected duty, in `[0, 1]`.
    pub revenue_share: f64,
    /// Share of the picks by exploration, in `[0, 1]`.
    pub exploration_share: f64,
    /// The revenue queue ranks by `probability ^ revenue_exponent × duty`.
    pub revenue_exponent: f64,
    /// The revenue queue takes only declarations at least this probable first (0: all).
    #[serde(default)]
    pub revenue_floor: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { revenue_share: 0.1, exploration_share: 0.0, revenue_exponent: 1.0, revenue_floor: 0.0 }
    }
}

impl Policy {
    /// Checks that the shares are proportions summing to at most 1 and the exponent is finite.
    pub fn check(&self) -> Result<(), String> {
        let share = |s: f64| (0.0..=1.0).contains(&s);
        if !share(self.revenue_share) || !share(self.exploration_share) || self.revenue_share + self.exploration_share > 1.0 + 1e-9 {
            return Err(format!(
                "revenue-share {} and exploration-share {} must be in [0, 1] and sum to at most 1",
                self.revenue_share, self.exploration_share
            ));
        }
        if !(0.0..=1.0).contains(&self.revenue_floor) {
            return Err(format!("revenue-floor {} must be in [0, 1]", self.revenue_floor));
        }
        if !self.revenue_exponent.is_finite() || self.revenue_exponent < 0.0 {
            return Err(format!("revenue-exponent {} must be a finite number ≥ 0", self.revenue_exponent));
        }
        Ok(())
    }

    /// The exploit part of the list: the same split of what exploration leaves, with no
    /// exploration (the whole list when the exploration share is 0). [`tune`] judges a policy by it.
    pub fn exploit(&self) -> Policy {
        let room = 1.0 - self.exploration_share;
        let revenue_share = if room > 1e-12 { (self.revenue_share / room).clamp(0.0, 1.0) } else { 0.0 };
        Policy { revenue_share, exploration_share: 0.0, ..*self }
    }

    fn weights(&self) -> [(Share, f64); 3] {
        let probability = (1.0 - self.revenue_share - self.exploration_share).max(0.0);
        [(Share::Probability, probability), (Share::Revenue, self.revenue_share), (Share::Exploration, self.exploration_share)]
    }
}

/// A period's declarations as the selection sees them, row by row.
#[derive(Debug, Clone, Copy)]
pub struct Candidates<'a> {
    /// Fraud probability.
    pub probability: &'a [f64],
    /// Duty at stake (non-finite or negative counts as 0).
    pub duty: &'a [f64],
    /// How little the model knows about the row, in `[0, 1]` ([`novelty`]).
    pub novelty: &'a [f64],
}

/// One pick of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// Row of the candidates.
    pub row: usize,
    /// The share that picked it.
    pub share: Share,
}

/// The revenue queue's score of each row: `probability ^ exponent × duty`; rows less probable
/// than `floor` come after all others (in the same order among themselves).
pub fn revenue_score(probability: &[f64], duty: &[f64], exponent: f64, floor: f64) -> Vec<f64> {
    probability
        .iter()
        .zip(duty)
        .map(|(p, d)| {
            let score = p.powf(exponent) * if d.is_finite() { d.max(0.0) } else { 0.0 };
            if *p >= floor { score } else { -1.0 / (1.0 + score) }
        })
        .collect()
}

/// The whole pick order of the candidates: every row exactly once, the first pick first. The list
/// at a budget of `k` declarations is the first `k` picks. Panics never; rows with non-finite
/// scores come last in their queue. `seed` seeds the exploration draw.
pub fn select(c: &Candidates<'_>, policy: &Policy, seed: u64) -> Vec<Pick> {
    select_queued(c, policy, seed, &mut Queues::default())
}

/// The queues of one set of candidates, kept from policy to policy: the probability and
/// exploration queues do not depend on the policy, the revenue queue only on its exponent and
/// floor ([`tune`] tries many policies on the same candidates).
#[derive(Default)]
struct Queues {
    by_probability: Option<Vec<usize>>,
    /// By (exponent, floor) bits.
    by_revenue: Vec<((u64, u64), Vec<usize>)>,
    by_exploration: Option<Vec<usize>>,
}

/// [`select`], with the queues of earlier policies on the same candidates and seed.
fn select_queued(c: &Candidates<'_>, policy: &Policy, seed: u64, queues: &mut Queues) -> Vec<Pick> {
    let n = c.probability.len();
    let weights = policy.weights();
    let by_probability = queues.by_probability.get_or_insert_with(|| ranking(c.probability)).as_slice();
    // A queue without a share is never read, and is left empty.
    let by_revenue = if weights[1].1 > 0.0 {
        let key = (policy.revenue_exponent.to_bits(), policy.revenue_floor.to_bits());
        let at = match queues.by_revenue.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                let queue = ranking(&revenue_score(c.probability, c.duty, policy.revenue_exponent, policy.revenue_floor));
                queues.by_revenue.push((key, queue));
                queues.by_revenue.len() - 1
            }
        };
        queues.by_revenue[at].1.as_slice()
    } else {
        &[]
    };
    // Weighted sampling without replacement (Efraimidis and Spirakis): the largest `ln(u) / w`
    // first, so that a row twice as novel is about twice as likely to come early.
    let by_exploration = if weights[2].1 > 0.0 {
        queues
            .by_exploration
            .get_or_insert_with(|| {
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
                let keys: Vec<f64> = (0..n)
                    .map(|i| {
                        let w = c.novelty.get(i).copied().filter(|w| w.is_finite()).unwrap_or(0.0).clamp(1e-6, 1.0);
                        let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
                        u.ln() / w
                    })
                    .collect();
                ranking(&keys)
            })
            .as_slice()
    } else {
        &[]
    };
    let queues = [by_probability, by_revenue, by_exploration];
    let mut next = [0usize; 3];
    let mut count = [0usize; 3];
    let mut taken = vec![false; n];
    let mut picks = Vec::with_capacity(n);
    for k in 1..=n {
        // The share furthest behind its part of the first `k` picks (ties: probability first).
        let mut best: Option<(usize, f64)> = None;
        for (s, &(_, w)) in weights.iter().enumerate() {
            if w <= 0.0 {
                continue;
            }
            let behind = w * k as f64 - count[s] as f64;
            if best.is_none_or(|(_, b)| behind > b + 1e-12) {
                best = Some((s, behind));
            }
        }
        let s = best.map_or(0, |(s, _)| s);
        let queue = &queues[s];
        while taken[queue[next[s]]] {
            next[s] += 1;
        }
        let row = queue[next[s]];
        taken[row] = true;
        count[s] += 1;
        picks.push(Pick { row, share: weights[s].0 });
    }
    picks
}

/// Each row's 1-based position in `picks` (`u32::MAX` for a row not picked).
pub fn order_of(picks: &[Pick], rows: usize) -> Vec<u32> {
    let mut order = vec![u32::MAX; rows];
    for (k, p) in picks.iter().enumerate() {
        if let Some(slot) = order.get_mut(p.row) {
            *slot = u32::try_from(k + 1).unwrap_or(u32::MAX);
        }
    }
    order
}

/// The rows of a list of `rows` declarations at `n_pct` %: `ceil(n_pct % × rows)`.
pub fn budget_rows(n_pct: f64, rows: usize) -> usize {
    ((n_pct / 100.0) * rows as f64).ceil() as usize
}

/// How little the model knows about a declaration, in `[0, 1]`: the mean of how close its
/// probability is to the flag threshold (1 on it, 0 at 0 or 1), how few inspections its importer
/// had before (`1 / (1 + inspections)`; unknown counts as none), and whether its HS6 × origin pair
/// is new to the training months (1) or not (0).
pub fn novelty(probability: f64, threshold: f64, importer_inspections: f64, new_pair: bool) -> f64 {
    let width = if probability >= threshold { 1.0 - threshold } else { threshold };
    let uncertainty =
        if width > 0.0 && probability.is_finite() { (1.0 - (probability - threshold).abs() / width).clamp(0.0, 1.0) } else { 0.0 };
    let inspections = if importer_inspections.is_finite() { importer_inspections.max(0.0) } else { 0.0 };
    (uncertainty + 1.0 / (1.0 + inspections) + f64::from(u8::from(new_pair))) / 3.0
}

/// Scores that rank rows in pick order (the first pick highest), for the ranking metrics.
pub fn order_scores(picks: &[Pick], rows: usize) -> Vec<f64> {
    let mut score = vec![f64::NEG_INFINITY; rows];
    for (k, p) in picks.iter().enumerate() {
        if let Some(slot) = score.get_mut(p.row) {
            *slot = (picks.len() - k) as f64;
        }
    }
    score
}

/// [`top_share`] of the [`order_scores`] of `picks` (every row once, as [`select`] gives them):
/// those scores rank the rows in pick order, so the picks are read in order, with no sort.
fn top_share_of(picks: &[Pick], labels: &[bool], revenue: &[f64], n_pct: f64) -> Option<TopShare> {
    if picks.len() != labels.len() || picks.iter().any(|p| p.row >= labels.len()) {
        return top_share(&order_scores(picks, labels.len()), labels, revenue, n_pct);
    }
    let order: Vec<usize> = picks.iter().map(|p| p.row).collect();
    top_share_in_order(&order, labels, revenue, n_pct)
}

/// One point of the frontier: a policy's figures at one budget on the validation months.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrontierPoint {
    /// The policy.
    pub policy: Policy,
    /// Its figures at one budget.
    pub at: TopShare,
}

/// What [`tune`] chose, and from what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuned {
    /// The chosen policy.
    pub policy: Policy,
    /// Whether some policy of the grid met the precision floor (otherwise the most precise one
    /// was taken).
    pub floor_met: bool,
    /// Every policy of the grid at every budget of `n_pcts`.
    pub frontier: Vec<FrontierPoint>,
}

/// The grid [`tune`] searches: exploit parts with revenue shares from 0 to `max_revenue_share` by
/// `step`, each with every exponent of `exponents`, and `exploration_share` of exploration set
/// apart: a policy's revenue share is its exploit part's times `1 - exploration_share`.
pub fn grid(exploration_share: f64, max_revenue_share: f64, step: f64, exponents: &[f64]) -> Vec<Policy> {
    let room = (1.0 - exploration_share).clamp(0.0, 1.0);
    let steps = if step > 0.0 { (max_revenue_share.min(1.0) / step + 1e-9).floor() as usize } else { 0 };
    (0..=steps)
        .flat_map(|k| {
            exponents.iter().map(move |&revenue_exponent| Policy {
                // Rounded to the step's precision, so that 6 × 0.025 reads 0.15.
                revenue_share: ((k as f64 * step * room * 1e6).round() / 1e6).min(room),
                exploration_share,
                revenue_exponent,
                revenue_floor: 0.0,
            })
        })
        .collect()
}

/// Chooses, among `policies`, the one with the most revenue at `budget_pct` % of the labelled
/// candidates whose precision there is at least `precision_floor` (ties: the earlier policy of
/// the grid); when none reaches the floor, the most precise. A policy is judged by its exploit
/// part ([`Policy::exploit`]): exploration is set apart from the floor, which it would otherwise
/// spend, leaving the revenue share no room (its worth shows over time, not on held-out labels).
/// Figures for every policy as applied (exploration included) at every `n_pcts` form the frontier.
pub fn tune(
    c: &Candidates<'_>,
    labels: &[bool],
    policies: &[Policy],
    budget_pct: f64,
    precision_floor: f64,
    n_pcts: &[f64],
    seed: u64,
) -> Option<Tuned> {
    if labels.is_empty() || labels.len() != c.probability.len() {
        return None;
    }
    let mut frontier = Vec::new();
    let mut best: Option<(Policy, TopShare)> = None;
    let mut most_precise: Option<(Policy, TopShare)> = None;
    let mut queues = Queues::default();
    for policy in policies {
        let exploit = policy.exploit();
        let judged = select_queued(c, &exploit, seed, &mut queues);
        let applied = if policy.exploration_share > 0.0 { select_queued(c, policy, seed, &mut queues) } else { judged.clone() };
        for &n in n_pcts {
            if let Some(at) = top_share_of(&applied, labels, c.duty, n) {
                frontier.push(FrontierPoint { policy: *policy, at });
            }
        }
        let Some(at) = top_share_of(&judged, labels, c.duty, budget_pct) else { continue };
        if at.precision >= precision_floor && best.is_none_or(|(_, b)| at.revenue > b.revenue) {
            best = Some((*policy, at));
        }
        if most_precise.is_none_or(|(_, b)| at.precision > b.precision) {
            most_precise = Some((*policy, at));
        }
    }
    let floor_met = best.is_some();
    best.or(most_precise).map(|(policy, _)| Tuned { policy, floor_met, frontier })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates<'a>(p: &'a [f64], d: &'a [f64], v: &'a [f64]) -> Candidates<'a> {
        Candidates { probability: p, duty: d, novelty: v }
    }

    #[test]
    fn figures_read_off_the_picks_are_the_metrics_figures() {
        let n = 3_000;
        let p: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1_000) as f64 / 1_000.0).collect();
        let d: Vec<f64> = (0..n).map(|i| if i % 13 == 0 { f64::NAN } else { ((i * 104_729) % 997) as f64 - 50.0 }).collect();
        let v: Vec<f64> = (0..n).map(|i| (i % 10) as f64 / 10.0).collect();
        let labels: Vec<bool> = (0..n).map(|i| (i * 31) % 7 < 2).collect();
        for policy in grid(0.1, 0.5, 0.1, &[1.0, 2.0]) {
            let picks = select(&candidates(&p, &d, &v), &policy, 5);
            for n_pct in [0.0, 1.0, 5.0, 33.3, 100.0, 101.0] {
                let read = top_share_of(&picks, &labels, &d, n_pct);
                let sorted = top_share(&order_scores(&picks, n), &labels, &d, n_pct);
                assert_eq!(
                    read.map(|t| (t.selected, t.precision.to_bits(), t.recall.to_bits(), t.revenue.to_bits())),
                    sorted.map(|t| (t.selected, t.precision.to_bits(), t.recall.to_bits(), t.revenue.to_bits()))
                );
            }
        }
        // Queues kept from policy to policy pick as fresh ones do.
        let mut queues = Queues::default();
        for policy in grid(0.2, 0.5, 0.05, &[1.0, 2.0, 0.5]) {
            assert_eq!(select_queued(&candidates(&p, &d, &v), &policy, 9, &mut queues), select(&candidates(&p, &d, &v), &policy, 9));
        }
    }

    #[test]
    fn every_row_is_picked_once_and_shares_hold_at_every_prefix() {
        let n = 1_000;
        let p: Vec<f64> = (0..n).map(|i| ((i * 7919) % n) as f64 / n as f64).collect();
        let d: Vec<f64> = (0..n).map(|i| ((i * 104_729) % 997) as f64).collect();
        let v: Vec<f64> = (0..n).map(|i| (i % 10) as f64 / 10.0).collect();
        let policy = Policy { revenue_share: 0.25, exploration_share: 0.1, ..Policy::default() };
        let picks = select(&candidates(&p, &d, &v), &policy, 7);
        let mut rows: Vec<usize> = picks.iter().map(|p| p.row).collect();
        rows.sort_unstable();
        assert_eq!(rows, (0..n).collect::<Vec<_>>());
        // Until a queue runs into rows the others took, every prefix holds its shares to a pick.
        for k in [10, 40, 100, 200] {
            let count = |s: Share| picks[..k].iter().filter(|p| p.share == s).count() as f64;
            assert!((count(Share::Revenue) - 0.25 * k as f64).abs() <= 1.0, "k {k}");
            assert!((count(Share::Exploration) - 0.1 * k as f64).abs() <= 1.0, "k {k}");
        }
    }

    #[test]
    fn shares_pick_from_their_own_queue_and_skip_taken_rows() {
        // Row 0: most probable; row 1: the biggest expected duty; row 2: both second.
        let p = [0.9, 0.3, 0.8, 0.1];
        let d = [1.0, 100.0, 10.0, 1.0];
        let v = [0.0; 4];
        let half = Policy { revenue_share: 0.5, ..Policy::default() };
        let picks = select(&candidates(&p, &d, &v), &half, 1);
        let got: Vec<(usize, Share)> = picks.iter().map(|p| (p.row, p.share)).collect();
        assert_eq!(got, vec![(0, Share::Probability), (1, Share::Revenue), (2, Share::Probability), (3, Share::Revenue)]);
        // No revenue share: the probability ranking.
        let none = Policy { revenue_share: 0.0, ..half };
        assert_eq!(select(&candidates(&p, &d, &v), &none, 1).iter().map(|p| p.row).collect::<Vec<_>>(), vec![0, 2, 1, 3]);
        // A large exponent asks certainty: row 2 (0.8 × 10) comes before row 1 (0.3 × 100).
        let sure = Policy { revenue_share: 1.0, revenue_exponent: 4.0, ..half };
        assert_eq!(select(&candidates(&p, &d, &v), &sure, 1)[0].row, 2);
        // A probability floor of 0.5 leaves row 1 (0.3) to the end of the revenue queue.
        let floored = Policy { revenue_share: 1.0, revenue_floor: 0.5, ..half };
        assert_eq!(select(&candidates(&p, &d, &v), &floored, 1).iter().map(|p| p.row).collect::<Vec<_>>(), vec![2, 0, 1, 3]);
    }

    #[test]
    fn exploration_is_seeded_and_favours_novel_rows() {
        let n = 2_000;
        let p = vec![0.5; n];
        let d = vec![1.0; n];
        let v: Vec<f64> = (0..n).map(|i| if i % 2 == 0 { 1.0 } else { 0.05 }).collect();
        let all = Policy { revenue_share: 0.0, exploration_share: 1.0, ..Policy::default() };
        let a = select(&candidates(&p, &d, &v), &all, 3);
        assert_eq!(a, select(&candidates(&p, &d, &v), &all, 3), "same seed, same list");
        assert_ne!(a, select(&candidates(&p, &d, &v), &all, 4), "another seed, another draw");
        let novel = a[..200].iter().filter(|p| p.row % 2 == 0).count();
        assert!(novel > 170, "{novel} of the first 200 picks are novel rows");
    }

    #[test]
    fn order_and_scores_agree_with_the_picks() {
        let picks = [Pick { row: 2, share: Share::Probability }, Pick { row: 0, share: Share::Revenue }];
        assert_eq!(order_of(&picks, 3), vec![2, u32::MAX, 1]);
        assert_eq!(ranking(&order_scores(&picks, 3)), vec![2, 0, 1]);
        assert_eq!(budget_rows(5.0, 8_481), 425);
        assert_eq!(budget_rows(0.0, 10), 0);
    }

    #[test]
    fn novelty_is_highest_for_an_uncertain_unknown_new_row() {
        assert!((novelty(0.3, 0.3, 0.0, true) - 1.0).abs() < 1e-12);
        assert!(novelty(0.99, 0.3, 50.0, false) < 0.05);
        assert!(novelty(0.3, 0.3, f64::NAN, false) > novelty(0.3, 0.3, 9.0, false));
        assert!(novelty(f64::NAN, 0.3, 0.0, false).is_finite());
    }

    #[test]
    fn policy_check_rejects_shares_over_the_budget() {
        assert!(Policy::default().check().is_ok());
        assert!(Policy { revenue_share: 0.7, exploration_share: 0.4, ..Policy::default() }.check().is_err());
        assert!(Policy { revenue_floor: 1.5, ..Policy::default() }.check().is_err());
        assert!(Policy { revenue_share: -0.1, ..Policy::default() }.check().is_err());
        assert!(Policy { revenue_exponent: f64::NAN, ..Policy::default() }.check().is_err());
    }

    #[test]
    fn tune_takes_the_most_revenue_above_the_floor() {
        // Ten fraudulent rows of duty 1 with high probability, one fraudulent row of duty 100 with
        // a lower one, and clean rows with large duties the revenue queue is tempted by.
        let mut p = vec![0.9; 10];
        let mut d = vec![1.0; 10];
        let mut y = vec![true; 10];
        p.push(0.4);
        d.push(100.0);
        y.push(true);
        for i in 0..89 {
            p.push(0.05 + f64::from(i) * 0.001);
            d.push(50.0);
            y.push(false);
        }
        let v = vec![0.0; p.len()];
        let c = candidates(&p, &d, &v);
        let policies = grid(0.0, 0.5, 0.1, &[1.0]);
        assert_eq!(policies.len(), 6);
        let tuned = tune(&c, &y, &policies, 10.0, 0.9, &[5.0, 10.0], 1).unwrap();
        assert!(tuned.floor_met);
        assert_eq!(tuned.frontier.len(), 12);
        // 10 % = 10 rows: one revenue pick finds the big fraud and keeps precision 1.0.
        assert!(tuned.policy.revenue_share > 0.0 && tuned.policy.revenue_share <= 0.1, "{:?}", tuned.policy);
        // An unreachable floor takes the most precise policy.
        let strict = tune(&c, &y, &policies, 10.0, 1.1, &[10.0], 1).unwrap();
        assert!(!strict.floor_met);
        // Exploration is set apart from the floor: the exploit part chosen is the same, its
        // shares scaled to what exploration leaves; the frontier holds the lists as applied.
        let v: Vec<f64> = (0..p.len()).map(|i| if i >= 11 { 1.0 } else { 0.0 }).collect();
        let c = candidates(&p, &d, &v);
        let exploring = grid(0.2, 0.5, 0.1, &[1.0]);
        assert_eq!(exploring.len(), 6);
        assert!((exploring[5].revenue_share - 0.4).abs() < 1e-9 && (exploring[5].exploit().revenue_share - 0.5).abs() < 1e-9);
        let with = tune(&c, &y, &exploring, 10.0, 0.9, &[10.0], 1).unwrap();
        assert!(with.floor_met, "exploration's clean picks do not count against the floor");
        assert!((with.policy.exploit().revenue_share - tuned.policy.revenue_share).abs() < 1e-9, "{:?}", with.policy);
        assert_eq!(with.policy.exploration_share, 0.2);
        let applied = with.frontier.iter().find(|f| f.policy == with.policy).unwrap();
        assert!(applied.at.precision < 0.9, "the frontier shows the list with its exploration: {:?}", applied.at);
    }
}
