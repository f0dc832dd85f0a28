//! Best split of a leaf from its histograms.
//!
//! Numeric features scan thresholds over value bins with missing values tried on both sides.
//! Categorical features with at most [`ONE_VS_REST_MAX`] categories try each category against the
//! rest; with more, LightGBM's many-vs-many scan sorts categories by `G / (H + cat_smooth)` and grows
//! the left set from either end.

use rayon::prelude::*;

use crate::binning::BinMapper;
use crate::histogram::{BinStats, FeatureHistogram, Histogram};
use crate::params::Params;

/// Categorical features with at most this many categories are split one-vs-rest.
const ONE_VS_REST_MAX: usize = 4;

/// A set of bin indices, used to route binned rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BinSet([u64; 4]);

impl BinSet {
    pub(crate) fn insert(&mut self, bin: u8) {
        self.0[usize::from(bin >> 6)] |= 1 << (bin & 63);
    }

    pub(crate) fn contains(&self, bin: u8) -> bool {
        self.0[usize::from(bin >> 6)] & (1 << (bin & 63)) != 0
    }
}

/// How a split sends bins left.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Decision {
    /// Value bins `0..=bin` go left; the missing bin follows `default_left`.
    Threshold { bin: u8, default_left: bool },
    /// These category bins go left; all others (and missing) go right.
    Categories { left: Vec<u8> },
}

impl Decision {
    /// The bins that go left, including the missing bin when it does.
    pub(crate) fn left_bins(&self, missing_bin: u8) -> BinSet {
        let mut set = BinSet::default();
        match self {
            Decision::Threshold { bin, default_left } => {
                (0..=*bin).for_each(|b| set.insert(b));
                if *default_left {
                    set.insert(missing_bin);
                }
            }
            Decision::Categories { left } => left.iter().for_each(|&b| set.insert(b)),
        }
        set
    }
}

/// The best split found for a leaf.
#[derive(Clone, Debug)]
pub(crate) struct SplitCandidate {
    pub(crate) feature: usize,
    pub(crate) gain: f64,
    pub(crate) left: BinStats,
    pub(crate) right: BinStats,
    pub(crate) decision: Decision,
}

/// The parameters split finding needs, converted once per training.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SplitConfig {
    pub(crate) min_data: u32,
    pub(crate) min_hessian: f64,
    pub(crate) lambda: f64,
    pub(crate) min_gain: f64,
    pub(crate) cat_smooth: f64,
    pub(crate) max_cat_threshold: usize,
    pub(crate) min_data_per_group: u32,
}

impl SplitConfig {
    pub(crate) fn new(params: &Params) -> Self {
        let to_u32 = |value: usize| u32::try_from(value).unwrap_or(u32::MAX);
        Self {
            min_data: to_u32(params.min_data_in_leaf),
            min_hessian: params.min_sum_hessian_in_leaf,
            lambda: params.lambda_l2,
            min_gain: params.min_gain_to_split,
            cat_smooth: params.cat_smooth,
            max_cat_threshold: params.max_cat_threshold,
            min_data_per_group: to_u32(params.min_data_per_group),
        }
    }

    /// `G² / (H + λ)`: twice the loss reduction of a leaf at its optimal value.
    fn score(&self, stats: BinStats) -> f64 {
        let denominator = stats.h + self.lambda;
        if denominator > 0.0 { stats.g * stats.g / denominator } else { 0.0 }
    }

    /// The L2-regularised leaf value `-G / (H + λ)`.
    pub(crate) fn leaf_value(&self, stats: BinStats) -> f64 {
        let denominator = stats.h + self.lambda;
        if denominator > 0.0 { -stats.g / denominator } else { 0.0 }
    }

    /// Gain of a split, or `None` when a child is too small or the gain too low.
    fn gain(&self, left: BinStats, right: BinStats, parent_score: f64) -> Option<f64> {
        if left.n < self.min_data || right.n < self.min_data || left.h < self.min_hessian || right.h < self.min_hessian {
            return None;
        }
        let gain = 0.5 * (self.score(left) + self.score(right) - parent_score);
        (gain.is_finite() && gain > self.min_gain).then_some(gain)
    }
}

/// Best split over the active features; ties go to the lowest feature index.
pub(crate) fn best_split(
    histogram: &Histogram,
    total: BinStats,
    mappers: &[BinMapper],
    active: &[usize],
    config: &SplitConfig,
) -> Option<SplitCandidate> {
    let parent_score = config.score(total);
    let per_feature: Vec<Option<SplitCandidate>> = active
        .par_iter()
        .map(|&feature| {
            let bins = &histogram.features[feature];
            let mut best = match &mappers[feature] {
                BinMapper::Numeric { .. } => numeric_split(bins, mappers[feature].missing_bin(), total, parent_score, config),
                BinMapper::Categorical { codes, .. } => categorical_split(bins, codes.len(), total, parent_score, config),
            };
            if let Some(candidate) = &mut best {
                candidate.feature = feature;
            }
            best
        })
        .collect();
    let mut best: Option<SplitCandidate> = None;
    for candidate in per_feature.into_iter().flatten() {
        if best.as_ref().is_none_or(|b| candidate.gain > b.gain) {
            best = Some(candidate);
        }
    }
    best
}

fn numeric_split(
    bins: &FeatureHistogram,
    missing_bin: u8,
    total: BinStats,
    parent_score: f64,
    config: &SplitConfig,
) -> Option<SplitCandidate> {
    let value_bins = usize::from(missing_bin);
    let missing = bins[value_bins];
    let mut best: Option<SplitCandidate> = None;
    let mut consider = |left: BinStats, bin: usize, default_left: bool| {
        let right = total - left;
        if let Some(gain) = config.gain(left, right, parent_score)
            && best.as_ref().is_none_or(|b| gain > b.gain)
        {
            // With no missing rows here, send unseen missing values with the majority.
            let default_left = if missing.n == 0 { left.n >= right.n } else { default_left };
            best = Some(SplitCandidate { feature: 0, gain, left, right, decision: Decision::Threshold { bin: bin as u8, default_left } });
        }
    };
    let mut cumulative = BinStats::default();
    for (bin, &stats) in bins[..value_bins].iter().enumerate() {
        if stats.n == 0 {
            // Same rows on each side as the previous threshold, which already won any tie.
            continue;
        }
        cumulative += stats;
        if cumulative.n + missing.n < config.min_data {
            continue;
        }
        if (total - cumulative).n < config.min_data {
            // The right side only shrinks from here on.
            break;
        }
        // The last bin with missing on the right is the "missing vs present" split.
        if bin + 1 < value_bins || missing.n > 0 {
            consider(cumulative, bin, false);
        }
        if missing.n > 0 && bin + 1 < value_bins {
            consider(cumulative + missing, bin, true);
        }
    }
    best
}

fn categorical_split(
    bins: &FeatureHistogram,
    n_categories: usize,
    total: BinStats,
    parent_score: f64,
    config: &SplitConfig,
) -> Option<SplitCandidate> {
    let mut best: Option<(f64, BinStats, Vec<u8>)> = None;
    if n_categories <= ONE_VS_REST_MAX {
        for (bin, &left) in bins[..n_categories].iter().enumerate() {
            if let Some(gain) = config.gain(left, total - left, parent_score)
                && best.as_ref().is_none_or(|b| gain > b.0)
            {
                best = Some((gain, left, vec![bin as u8]));
            }
        }
    } else {
        let mut order: Vec<u8> =
            (0..n_categories).filter(|&bin| f64::from(bins[bin].n) >= config.cat_smooth.max(1.0)).map(|bin| bin as u8).collect();
        let ratio = |bin: u8| {
            let stats = bins[usize::from(bin)];
            stats.g / (stats.h + config.cat_smooth)
        };
        order.sort_by(|&a, &b| ratio(a).total_cmp(&ratio(b)).then(a.cmp(&b)));
        let max_left = config.max_cat_threshold.min(order.len().div_ceil(2));
        for descending in [false, true] {
            let mut left = BinStats::default();
            let mut group = 0u32;
            for i in 0..order.len().min(max_left) {
                let bin = if descending { order[order.len() - 1 - i] } else { order[i] };
                let stats = bins[usize::from(bin)];
                left += stats;
                group += stats.n;
                if left.n < config.min_data || left.h < config.min_hessian {
                    continue;
                }
                let right = total - left;
                if right.n < config.min_data || right.h < config.min_hessian {
                    break;
                }
                if group < config.min_data_per_group {
                    continue;
                }
                group = 0;
                if let Some(gain) = config.gain(left, right, parent_score)
                    && best.as_ref().is_none_or(|b| gain > b.0)
                {
                    let chosen = if descending { order[order.len() - 1 - i..].to_vec() } else { order[..=i].to_vec() };
                    best = Some((gain, left, chosen));
                }
            }
        }
    }
    best.map(|(gain, left, mut chosen)| {
        chosen.sort_unstable();
        SplitCandidate { feature: 0, gain, left, right: total - left, decision: Decision::Categories { left: chosen } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::BINS_PER_FEATURE;

    fn config() -> SplitConfig {
        SplitConfig::new(&Params { min_data_in_leaf: 1, min_data_per_group: 1, cat_smooth: 1.0, ..Params::default() })
    }

    fn histogram(stats: &[(f64, f64, u32)]) -> FeatureHistogram {
        let mut bins = [BinStats::default(); BINS_PER_FEATURE];
        for (bin, &(g, h, n)) in stats.iter().enumerate() {
            bins[bin] = BinStats { g, h, n };
        }
        bins
    }

    fn total(bins: &FeatureHistogram) -> BinStats {
        bins.iter().fold(BinStats::default(), |acc, &b| acc + b)
    }

    #[test]
    fn missing_goes_to_the_side_it_resembles() {
        // Bins 0..3 hold values; bin 3 holds missing rows whose gradients look like bin 2's.
        let bins = histogram(&[(5.0, 2.0, 8), (4.0, 2.0, 8), (-5.0, 2.0, 8), (-6.0, 2.0, 8)]);
        let config = config();
        let total = total(&bins);
        let best = numeric_split(&bins, 3, total, config.score(total), &config).unwrap();
        assert_eq!(best.decision, Decision::Threshold { bin: 1, default_left: false });
        let bins = histogram(&[(5.0, 2.0, 8), (-4.0, 2.0, 8), (-5.0, 2.0, 8), (6.0, 2.0, 8)]);
        let total = super::tests::total(&bins);
        let best = numeric_split(&bins, 3, total, config.score(total), &config).unwrap();
        assert_eq!(best.decision, Decision::Threshold { bin: 0, default_left: true });
    }

    #[test]
    fn many_vs_many_groups_alike_categories() {
        // Categories 0, 2, 4 push one way and 1, 3, 5 the other: one split separates them.
        let stats: Vec<(f64, f64, u32)> =
            (0..6).map(|c| (if c % 2 == 0 { 6.0 } else { -6.0 }, 3.0, 12)).chain(std::iter::once((0.0, 1.0, 4))).collect();
        let bins = histogram(&stats);
        let config = config();
        let total = total(&bins);
        let best = categorical_split(&bins, 6, total, config.score(total), &config).unwrap();
        let Decision::Categories { left } = best.decision else { panic!("expected a categorical decision") };
        assert!(left == vec![0, 2, 4] || left == vec![1, 3, 5], "{left:?}");
    }

    #[test]
    fn respects_min_data_in_leaf() {
        let bins = histogram(&[(5.0, 2.0, 3), (-5.0, 2.0, 30), (0.0, 0.0, 0)]);
        let config = SplitConfig { min_data: 5, ..config() };
        let total = total(&bins);
        assert!(numeric_split(&bins, 2, total, config.score(total), &config).is_none());
    }
}
