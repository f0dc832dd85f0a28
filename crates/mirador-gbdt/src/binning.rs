//! Discretises feature columns into `u8` bins, column-major.
//!
//! Numeric features get quantile bins learnt from the training data (every distinct value gets its
//! own bin when there are few); the bin after the last value bin holds missing values. Categorical
//! features give each frequent category its own bin; the bin after them, "other", holds missing,
//! unseen and overflow categories and never goes left in a split. Validation data is binned with
//! the training mappers, and each bin's upper bound is a real value, so a split learnt on bins
//! reads `x <= threshold` on raw data with the same outcome.

use std::collections::HashMap;

use rand::SeedableRng;
use rand::seq::index;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::dataset::{Column, Dataset, MISSING_CATEGORY};

/// Rows sampled to find bin boundaries; beyond this, quantiles are estimated from a sample.
const BIN_SAMPLE_ROWS: usize = 200_000;

/// How one feature's raw values map to bins.
#[derive(Clone, Debug)]
pub(crate) enum BinMapper {
    /// Value bin `i` holds `(upper_bounds[i - 1], upper_bounds[i]]`; the last bound is `+inf`.
    Numeric { upper_bounds: Vec<f64> },
    /// Bin `i` holds the category `codes[i]`; bin `codes.len()` holds everything else.
    Categorical { codes: Vec<u32>, lookup: HashMap<u32, u8> },
}

impl BinMapper {
    /// Bin of missing values (numeric) or of missing/other categories (categorical).
    pub(crate) fn missing_bin(&self) -> u8 {
        let value_bins = match self {
            BinMapper::Numeric { upper_bounds } => upper_bounds.len(),
            BinMapper::Categorical { codes, .. } => codes.len(),
        };
        value_bins as u8
    }

    /// Upper bound of a numeric value bin, used as the split threshold.
    pub(crate) fn upper_bound(&self, bin: u8) -> f64 {
        match self {
            BinMapper::Numeric { upper_bounds } => upper_bounds.get(usize::from(bin)).copied().unwrap_or(f64::INFINITY),
            BinMapper::Categorical { .. } => f64::INFINITY,
        }
    }

    /// Category code held by a categorical bin.
    pub(crate) fn category(&self, bin: u8) -> Option<u32> {
        match self {
            BinMapper::Categorical { codes, .. } => codes.get(usize::from(bin)).copied(),
            BinMapper::Numeric { .. } => None,
        }
    }

    fn fit(column: &Column, sample: Option<&[usize]>, max_bins: usize) -> Self {
        match column {
            Column::Numeric(values) => {
                let mut finite: Vec<f64> = match sample {
                    Some(rows) => rows.iter().map(|&row| values[row]).collect(),
                    None => values.clone(),
                };
                finite.retain(|value| !value.is_nan());
                finite.sort_unstable_by(f64::total_cmp);
                BinMapper::Numeric { upper_bounds: quantile_bounds(&finite, max_bins) }
            }
            Column::Categorical(codes) => {
                let mut counts: HashMap<u32, usize> = HashMap::new();
                let mut count = |code: u32| {
                    if code != MISSING_CATEGORY {
                        *counts.entry(code).or_default() += 1;
                    }
                };
                match sample {
                    Some(rows) => rows.iter().for_each(|&row| count(codes[row])),
                    None => codes.iter().for_each(|&code| count(code)),
                }
                let mut by_count: Vec<(u32, usize)> = counts.into_iter().collect();
                by_count.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                by_count.truncate(max_bins);
                let codes: Vec<u32> = by_count.iter().map(|&(code, _)| code).collect();
                let lookup = codes.iter().enumerate().map(|(bin, &code)| (code, bin as u8)).collect();
                BinMapper::Categorical { codes, lookup }
            }
        }
    }

    /// Bins a column of the matching kind; a column of the other kind bins to all-missing.
    fn bin_column(&self, column: &Column) -> Vec<u8> {
        let missing = self.missing_bin();
        match (self, column) {
            (BinMapper::Numeric { upper_bounds }, Column::Numeric(values)) => {
                values.iter().map(|&value| numeric_bin(upper_bounds, value, missing)).collect()
            }
            (BinMapper::Categorical { lookup, .. }, Column::Categorical(codes)) => {
                codes.iter().map(|code| lookup.get(code).copied().unwrap_or(missing)).collect()
            }
            _ => vec![missing; column.len()],
        }
    }
}

/// First bin whose upper bound is `>= value`; NaN goes to the missing bin.
fn numeric_bin(upper_bounds: &[f64], value: f64, missing: u8) -> u8 {
    if value.is_nan() {
        return missing;
    }
    let bin = upper_bounds.partition_point(|&bound| bound < value);
    bin.min(upper_bounds.len().saturating_sub(1)) as u8
}

/// Greedy equal-count bins over sorted non-missing values; the last bound is `+inf`.
#[allow(clippy::float_cmp, reason = "equal values, including -0 and +0, share a bin")]
fn quantile_bounds(sorted: &[f64], max_bins: usize) -> Vec<f64> {
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for &value in sorted {
        match distinct.last_mut() {
            Some((last, count)) if *last == value => *count += 1,
            _ => distinct.push((value, 1)),
        }
    }
    let mut bounds = Vec::new();
    if distinct.len() <= max_bins {
        for pair in distinct.windows(2) {
            bounds.push(midpoint(pair[0].0, pair[1].0));
        }
    } else {
        let mut rest = sorted.len();
        let mut bins_left = max_bins;
        let mut in_bin = 0;
        for pair in distinct.windows(2) {
            in_bin += pair[0].1;
            let target = rest as f64 / bins_left as f64;
            // Close the bin once it is full, or early when the next value alone would overfill it.
            if in_bin as f64 >= target || (in_bin + pair[1].1) as f64 > 1.5 * target {
                bounds.push(midpoint(pair[0].0, pair[1].0));
                rest -= in_bin;
                in_bin = 0;
                bins_left -= 1;
                if bins_left == 1 {
                    break;
                }
            }
        }
    }
    bounds.push(f64::INFINITY);
    bounds
}

/// A bound `m` with `low <= m < high`, so `low` bins left of it and `high` right.
fn midpoint(low: f64, high: f64) -> f64 {
    let mid = low / 2.0 + high / 2.0;
    if mid >= low && mid < high { mid } else { low }
}

/// Feature columns as bin indices, column-major.
pub(crate) struct BinnedData {
    pub(crate) columns: Vec<Vec<u8>>,
}

/// Learns one mapper per feature from the training data.
pub(crate) fn fit_mappers(data: &Dataset, max_bins: usize, seed: u64) -> Vec<BinMapper> {
    let n_rows = data.n_rows();
    let sample = (n_rows > BIN_SAMPLE_ROWS).then(|| {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x6269_6e73);
        let mut rows = index::sample(&mut rng, n_rows, BIN_SAMPLE_ROWS).into_vec();
        rows.sort_unstable();
        rows
    });
    data.columns.par_iter().map(|column| BinMapper::fit(column, sample.as_deref(), max_bins)).collect()
}

/// Bins every column with the given mappers (one per column, same kinds).
pub(crate) fn bin_dataset(data: &Dataset, mappers: &[BinMapper]) -> BinnedData {
    let columns = data.columns.par_iter().zip(mappers).map(|(column, mapper)| mapper.bin_column(column)).collect();
    BinnedData { columns }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_get_their_own_bins() {
        let bounds = quantile_bounds(&[1.0, 1.0, 2.0, 3.0, 3.0], 255);
        assert_eq!(bounds, vec![1.5, 2.5, f64::INFINITY]);
        let missing = bounds.len() as u8;
        assert_eq!(numeric_bin(&bounds, 1.0, missing), 0);
        assert_eq!(numeric_bin(&bounds, 1.5, missing), 0);
        assert_eq!(numeric_bin(&bounds, 2.0, missing), 1);
        assert_eq!(numeric_bin(&bounds, 99.0, missing), 2);
        assert_eq!(numeric_bin(&bounds, f64::INFINITY, missing), 2);
        assert_eq!(numeric_bin(&bounds, f64::NAN, missing), 3);
    }

    #[test]
    fn many_values_give_at_most_max_bins_of_similar_size() {
        let values: Vec<f64> = (0..10_000).map(f64::from).collect();
        let bounds = quantile_bounds(&values, 16);
        assert_eq!(bounds.len(), 16);
        let mut counts = vec![0usize; 17];
        for &value in &values {
            counts[usize::from(numeric_bin(&bounds, value, 16))] += 1;
        }
        assert!(counts[..16].iter().all(|&count| (500..=750).contains(&count)), "{counts:?}");
    }

    #[test]
    fn bin_membership_matches_threshold_rule() {
        let values: Vec<f64> = (0..1000).map(|i| (f64::from(i) * 0.37).sin() * 1e3).collect();
        let mut sorted = values.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        let bounds = quantile_bounds(&sorted, 20);
        for &value in &values {
            let bin = numeric_bin(&bounds, value, 20);
            for (threshold_bin, &bound) in bounds.iter().enumerate() {
                assert_eq!(usize::from(bin) <= threshold_bin, value <= bound);
            }
        }
    }

    #[test]
    fn rare_and_unseen_categories_share_the_other_bin() {
        let column = Column::Categorical(vec![3, 3, 3, 7, 7, 9, MISSING_CATEGORY]);
        let mapper = BinMapper::fit(&column, None, 2);
        assert_eq!(mapper.missing_bin(), 2);
        let binned = mapper.bin_column(&Column::Categorical(vec![3, 7, 9, 11, MISSING_CATEGORY]));
        assert_eq!(binned, vec![0, 1, 2, 2, 2]);
    }
}
