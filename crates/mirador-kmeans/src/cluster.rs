//! Clustering one product group's log unit prices and scoring each price against its peers.
//!
//! Prices are clustered on the log scale (unit values are multiplicative: a price half the
//! reference is as far below as double is above). `k` is chosen per group by the mean silhouette
//! over `k = 2..=max_k`, among the clusterings whose adjacent clusters are separated by a dip in
//! density ([`has_valleys`]); when no `k` separates the prices well (best silhouette below
//! `min_silhouette`) the group is one cluster. Each price is then compared with its *peer
//! cluster*: its own cluster when that cluster is a real market segment (at least
//! `segment_share` of the group), otherwise the group's mainstream cluster (the one holding the
//! group median). The distance below the peer centroid, in robust standard deviations of the
//! peer cluster, becomes an undervaluation score in [0, 1].

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_clustering::{KMeans, KMeansInit};
use linfa_nn::distance::{Distance, L2Dist};
use ndarray::{Array2, ArrayView, Dimension};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

/// Clustering parameters (part of the stage parameters).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ClusterParams {
    /// Largest number of clusters tried per group.
    pub max_k: usize,
    /// Smallest mean silhouette for which a split into `k ≥ 2` clusters is kept.
    pub min_silhouette: f64,
    /// Share of a group's rows that makes a cluster a market segment of its own.
    pub segment_share: f64,
    /// Groups larger than this are clustered on a seeded sample of this many rows; every row is
    /// then assigned to the nearest centroid.
    pub max_fit_rows: usize,
    /// Floor on a cluster's robust standard deviation of log price (avoids infinite z-scores when
    /// many declarations copy one price).
    pub min_spread: f64,
}

impl Default for ClusterParams {
    fn default() -> Self {
        ClusterParams { max_k: 4, min_silhouette: 0.55, segment_share: 0.2, max_fit_rows: 2_000, min_spread: 0.1 }
    }
}

/// How a group was scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// k-means clusters (possibly `k = 1`).
    KMeans,
    /// Too few rows to cluster: robust z-score against the group median.
    RobustZ,
}

impl Method {
    /// Name written in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::KMeans => "kmeans",
            Method::RobustZ => "robust_z",
        }
    }
}

/// A fitted group: clusters sorted by centroid (log price).
#[derive(Debug, Clone)]
pub struct GroupFit {
    /// How the group is scored.
    pub method: Method,
    /// Cluster centroids, log USD/kg, ascending.
    pub centroids: Vec<f64>,
    /// Rows of the fitting set per cluster.
    pub sizes: Vec<usize>,
    /// Robust standard deviation of log price per cluster (floored).
    pub spreads: Vec<f64>,
    /// Index of the mainstream cluster (holding the group median).
    pub mainstream: usize,
    /// Median log price of the group.
    pub median: f64,
    /// Mean silhouette of the chosen clustering (`None` for one cluster).
    pub silhouette: Option<f64>,
}

/// One price scored against its group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceScore {
    /// Cluster index (ascending by centroid).
    pub cluster: usize,
    /// Centroid of the row's own cluster, log.
    pub centroid: f64,
    /// Centroid of the peer cluster the row is compared with, log: the reference price.
    pub reference: f64,
    /// Distance below (negative) or above the reference, in robust standard deviations.
    pub z: f64,
    /// Undervaluation score in [0, 1]: `2Φ(−z) − 1` below the reference, 0 at or above it.
    pub score: f64,
}

/// Fits a group by k-means. `log_prices` must be finite; `seed` makes the fit reproducible.
pub fn fit_kmeans(log_prices: &[f64], params: &ClusterParams, seed: u64) -> GroupFit {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let fit_set: Vec<f64> = if log_prices.len() > params.max_fit_rows {
        let mut idx = sample(&mut rng, log_prices.len(), params.max_fit_rows).into_vec();
        idx.sort_unstable();
        idx.into_iter().map(|i| log_prices[i]).collect()
    } else {
        log_prices.to_vec()
    };
    let mut sorted = fit_set.clone();
    sorted.sort_by(f64::total_cmp);
    let distinct = 1 + sorted.windows(2).filter(|w| w[1] > w[0]).count();
    let mut best: Option<(f64, Vec<f64>)> = None;
    for k in 2..=params.max_k.min(distinct) {
        let Some(centroids) = kmeans_centroids(&fit_set, k, &mut rng) else { continue };
        let labels: Vec<usize> = sorted.iter().map(|&x| nearest(&centroids, x)).collect();
        if labels.iter().collect::<std::collections::BTreeSet<_>>().len() < 2 {
            continue;
        }
        if !has_valleys(&sorted, &centroids) {
            continue; // a split of one mode (e.g. a uniform spread) is not a price segment
        }
        let s = silhouette_sorted(&sorted, &labels, centroids.len());
        if best.as_ref().is_none_or(|(b, _)| s > *b) {
            best = Some((s, centroids));
        }
    }
    let (silhouette, centroids) = match best {
        Some((s, c)) if s >= params.min_silhouette => (Some(s), c),
        _ => (None, vec![sorted.iter().sum::<f64>() / sorted.len() as f64]),
    };
    summarise(Method::KMeans, &sorted, centroids, silhouette, params)
}

/// Fits a group too small to cluster: one "cluster" centred on the median.
pub fn fit_robust(log_prices: &[f64], params: &ClusterParams) -> GroupFit {
    let mut sorted = log_prices.to_vec();
    sorted.sort_by(f64::total_cmp);
    let centroids = vec![median_sorted(&sorted)];
    summarise(Method::RobustZ, &sorted, centroids, None, params)
}

fn summarise(method: Method, sorted: &[f64], centroids: Vec<f64>, silhouette: Option<f64>, params: &ClusterParams) -> GroupFit {
    let k = centroids.len();
    let mut members: Vec<Vec<f64>> = vec![Vec::new(); k];
    for &x in sorted {
        members[nearest(&centroids, x)].push(x);
    }
    let spreads = members.iter().map(|m| if m.len() < 5 { robust_sd(sorted) } else { robust_sd(m) }.max(params.min_spread)).collect();
    let median = median_sorted(sorted);
    let centroids = if method == Method::KMeans {
        // The centroid of a cluster as k-means left it may sit between modes when `k = 1`;
        // report the cluster median instead for the robust reference.
        members.iter().zip(&centroids).map(|(m, &c)| if m.is_empty() { c } else { median_sorted(m) }).collect()
    } else {
        centroids
    };
    GroupFit {
        method,
        mainstream: nearest(&centroids, median),
        sizes: members.iter().map(Vec::len).collect(),
        centroids,
        spreads,
        median,
        silhouette,
    }
}

impl GroupFit {
    /// Scores one log price.
    pub fn score(&self, log_price: f64, params: &ClusterParams) -> PriceScore {
        let cluster = nearest(&self.centroids, log_price);
        let total: usize = self.sizes.iter().sum();
        let own_is_segment = self.sizes[cluster] as f64 >= params.segment_share * total as f64;
        let peer = if own_is_segment { cluster } else { self.mainstream };
        let z = (log_price - self.centroids[peer]) / self.spreads[peer];
        let score = if z < 0.0 { (2.0 * normal_cdf(-z) - 1.0).clamp(0.0, 1.0) } else { 0.0 };
        PriceScore { cluster, centroid: self.centroids[cluster], reference: self.centroids[peer], z, score }
    }
}

/// k-means++ seeded k-means with linfa; centroids ascending. `None` if linfa declines the data.
fn kmeans_centroids(xs: &[f64], k: usize, rng: &mut Xoshiro256PlusPlus) -> Option<Vec<f64>> {
    let records = Array2::from_shape_vec((xs.len(), 1), xs.to_vec()).ok()?;
    let dataset = DatasetBase::from(records);
    let model = KMeans::params_with(k, rng.clone(), SliceL2)
        .init_method(KMeansInit::KMeansPlusPlus)
        .n_runs(3)
        .max_n_iterations(100)
        .tolerance(1e-6)
        .fit(&dataset)
        .ok()?;
    // Advance the caller's generator so the next k gets fresh randomness, deterministically.
    let _ = sample(rng, 2, 1);
    let mut c: Vec<f64> = model.centroids().iter().copied().filter(|v| v.is_finite()).collect();
    c.sort_by(f64::total_cmp);
    c.dedup();
    (c.len() >= 2).then_some(c)
}

/// Euclidean distance, as linfa's [`L2Dist`], summed straight over contiguous points.
///
/// Our points have one coordinate, and linfa calls the distance for every point, centroid and
/// iteration: `L2Dist` spends most of that call setting up ndarray's generic zip, where this
/// adds `(a - b)²` in the same order from the same zero, so results are identical.
#[derive(Debug, Clone, Copy)]
struct SliceL2;

impl Distance<f64> for SliceL2 {
    #[inline]
    fn distance<D: Dimension>(&self, a: ArrayView<f64, D>, b: ArrayView<f64, D>) -> f64 {
        self.rdistance(a, b).sqrt()
    }

    #[inline]
    fn rdistance<D: Dimension>(&self, a: ArrayView<f64, D>, b: ArrayView<f64, D>) -> f64 {
        match (a.as_slice(), b.as_slice()) {
            (Some(a), Some(b)) if a.len() == b.len() => a.iter().zip(b).fold(0.0, |sum, (x, y)| sum + (x - y) * (x - y)),
            _ => L2Dist.rdistance(a, b),
        }
    }

    #[inline]
    fn rdist_to_dist(&self, rdist: f64) -> f64 {
        rdist.sqrt()
    }

    #[inline]
    fn dist_to_rdist(&self, dist: f64) -> f64 {
        dist * dist
    }
}

/// Whether the density dips between every pair of adjacent centroids: fewer values lie near the
/// midpoint than near either centroid (half as many, within a quarter of their distance). Real
/// price segments are separated by such a valley; a k-means split of a single mode is not.
pub(crate) fn has_valleys(sorted: &[f64], centroids: &[f64]) -> bool {
    let count = |lo: f64, hi: f64| sorted.partition_point(|&v| v <= hi) - sorted.partition_point(|&v| v < lo);
    centroids.windows(2).all(|w| {
        let h = (w[1] - w[0]) / 4.0;
        let mid = f64::midpoint(w[0], w[1]);
        let at = |c: f64| count(c - h, c + h);
        2 * at(mid) < at(w[0]).min(at(w[1]))
    })
}

/// Index of the nearest centroid (centroids ascending; ties go to the lower one).
pub(crate) fn nearest(centroids: &[f64], x: f64) -> usize {
    let mut best = 0;
    for (i, c) in centroids.iter().enumerate() {
        if (x - c).abs() < (x - centroids[best]).abs() {
            best = i;
        }
    }
    best
}

/// Mean silhouette of a 1-D clustering of sorted values, exactly, in O(n·k·log n): mean
/// distances to a cluster come from prefix sums of its (sorted) members.
pub(crate) fn silhouette_sorted(sorted: &[f64], labels: &[usize], k: usize) -> f64 {
    let mut members: Vec<Vec<f64>> = vec![Vec::new(); k];
    for (&x, &l) in sorted.iter().zip(labels) {
        members[l].push(x);
    }
    let prefix: Vec<Vec<f64>> = members
        .iter()
        .map(|m| {
            let mut p = Vec::with_capacity(m.len() + 1);
            p.push(0.0);
            for &x in m {
                p.push(p.last().copied().unwrap_or(0.0) + x);
            }
            p
        })
        .collect();
    // Sum of |x - m| over the members m of a cluster.
    let abs_sum = |c: usize, x: f64| {
        let m = &members[c];
        let below = m.partition_point(|&v| v <= x);
        let (p, n) = (&prefix[c], m.len());
        (x * below as f64 - p[below]) + ((p[n] - p[below]) - x * (n - below) as f64)
    };
    let mut total = 0.0;
    for (&x, &l) in sorted.iter().zip(labels) {
        let own = members[l].len();
        if own <= 1 {
            continue; // silhouette 0 by convention
        }
        let a = abs_sum(l, x) / (own - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != l && !members[c].is_empty())
            .map(|c| abs_sum(c, x) / members[c].len() as f64)
            .fold(f64::INFINITY, f64::min);
        let s = if a.max(b) > 0.0 { (b - a) / a.max(b) } else { 0.0 };
        total += s;
    }
    total / sorted.len() as f64
}

pub(crate) fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { sorted[n / 2] } else { f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]) }
}

/// 1.4826 × median absolute deviation: a standard deviation that outliers do not inflate.
pub(crate) fn robust_sd(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let m = median_sorted(&v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    dev.sort_by(f64::total_cmp);
    1.4826 * median_sorted(&dev)
}

/// Standard normal CDF (Abramowitz & Stegun 7.1.26 for erf; absolute error < 1.5e-7).
pub(crate) fn normal_cdf(x: f64) -> f64 {
    let t = x.abs() / std::f64::consts::SQRT_2;
    let k = 1.0 / (1.0 + 0.327_591_1 * t);
    let poly = k * (0.254_829_592 + k * (-0.284_496_736 + k * (1.421_413_741 + k * (-1.453_152_027 + k * 1.061_405_429))));
    let erf = 1.0 - poly * (-t * t).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_tables() {
        for (x, p) in [(0.0, 0.5), (1.0, 0.841_344_7), (-1.959_964, 0.025), (3.0, 0.998_650_1)] {
            assert!((normal_cdf(x) - p).abs() < 1e-6, "{x}");
        }
    }

    #[test]
    fn silhouette_matches_the_quadratic_definition() {
        let xs: [f64; 7] = [0.0, 0.1, 0.3, 2.0, 2.2, 2.9, 5.0];
        let labels = [0, 0, 0, 1, 1, 1, 2];
        let mut expected = 0.0;
        for i in 0..xs.len() {
            let mean_to = |c: usize| {
                let d: Vec<f64> = (0..xs.len()).filter(|&j| j != i && labels[j] == c).map(|j| (xs[i] - xs[j]).abs()).collect();
                d.iter().sum::<f64>() / d.len() as f64
            };
            if labels.iter().filter(|&&l| l == labels[i]).count() == 1 {
                continue;
            }
            let a = mean_to(labels[i]);
            let b = (0..3).filter(|&c| c != labels[i]).map(mean_to).fold(f64::INFINITY, f64::min);
            expected += (b - a) / a.max(b);
        }
        expected /= xs.len() as f64;
        assert!((silhouette_sorted(&xs, &labels, 3) - expected).abs() < 1e-12);
    }

    #[test]
    fn two_price_tiers_give_two_segments_and_an_outlier_scores_high() {
        let mut xs = Vec::new();
        for i in 0..200 {
            let jitter = f64::from(i % 10) * 0.01;
            xs.push(1.0 + jitter); // tier A around e^1
            if i % 2 == 0 {
                xs.push(3.0 + jitter); // tier B around e^3
            }
        }
        let params = ClusterParams::default();
        let fit = fit_kmeans(&xs, &params, 7);
        assert_eq!(fit.centroids.len(), 2, "{fit:?}");
        // Both tiers are segments: their own members score zero-ish.
        assert!(fit.score(1.02, &params).score < 0.5);
        assert!(fit.score(3.02, &params).score < 0.5);
        // Far below the lower tier: high score.
        let low = fit.score(-0.5, &params);
        assert!(low.score > 0.99 && low.z < -3.0, "{low:?}");
        // Above the reference scores exactly zero.
        assert_eq!(fit.score(5.0, &params).score, 0.0);
        // Same input, same seed: same fit.
        assert_eq!(fit_kmeans(&xs, &params, 7).centroids, fit.centroids);
    }

    #[test]
    fn unimodal_prices_stay_one_cluster() {
        let xs: Vec<f64> = (0..300).map(|i| 2.0 + (f64::from(i) / 300.0 - 0.5) * 0.4).collect();
        let fit = fit_kmeans(&xs, &ClusterParams::default(), 1);
        assert_eq!(fit.centroids.len(), 1, "{fit:?}");
    }

    #[test]
    fn valleys_tell_segments_from_a_split_mode() {
        let uniform: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        assert!(!has_valleys(&uniform, &[0.25, 0.75]));
        let mut two: Vec<f64> = (0..50).map(|i| f64::from(i) / 500.0).collect();
        two.extend((0..50).map(|i| 1.0 + f64::from(i) / 500.0));
        assert!(has_valleys(&two, &[0.05, 1.05]));
    }

    #[test]
    fn robust_fit_ignores_one_wild_price() {
        let fit = fit_robust(&[1.0, 1.1, 0.9, 1.05, 0.95, 50.0], &ClusterParams::default());
        assert!((fit.centroids[0] - 1.025).abs() < 1e-9);
        assert!(fit.score(0.0, &ClusterParams::default()).score > 0.9);
    }
}
