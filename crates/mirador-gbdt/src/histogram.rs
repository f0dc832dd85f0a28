//! Gradient/hessian histograms per feature and bin.
//!
//! Each feature's bins are summed sequentially in row order, and features are spread over rayon
//! tasks, so the sums do not depend on the number of threads.

use std::ops::{Add, AddAssign, Sub};

use rayon::prelude::*;

use crate::binning::BinnedData;

/// Bins per feature histogram: every `u8` bin index.
pub(crate) const BINS_PER_FEATURE: usize = 256;

/// First and second derivative of the loss for one row (already weighted).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct GradPair {
    pub(crate) g: f64,
    pub(crate) h: f64,
}

/// Sums over a set of rows: gradient, hessian and row count.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct BinStats {
    pub(crate) g: f64,
    pub(crate) h: f64,
    pub(crate) n: u32,
}

impl BinStats {
    pub(crate) fn of_rows(rows: &[u32], grads: &[GradPair]) -> Self {
        let mut sums = Self::default();
        for &row in rows {
            let pair = grads[row as usize];
            sums.g += pair.g;
            sums.h += pair.h;
            sums.n += 1;
        }
        sums
    }
}

impl AddAssign for BinStats {
    fn add_assign(&mut self, other: Self) {
        self.g += other.g;
        self.h += other.h;
        self.n = self.n.wrapping_add(other.n);
    }
}

impl Add for BinStats {
    type Output = Self;
    fn add(mut self, other: Self) -> Self {
        self += other;
        self
    }
}

impl Sub for BinStats {
    type Output = Self;
    fn sub(self, other: Self) -> Self {
        Self { g: self.g - other.g, h: self.h - other.h, n: self.n.wrapping_sub(other.n) }
    }
}

/// One feature's bins.
pub(crate) type FeatureHistogram = [BinStats; BINS_PER_FEATURE];

/// Histograms of every feature for one leaf; inactive features are left stale and never read.
pub(crate) struct Histogram {
    pub(crate) features: Vec<FeatureHistogram>,
}

impl Histogram {
    pub(crate) fn new(n_features: usize) -> Self {
        Self { features: vec![[BinStats::default(); BINS_PER_FEATURE]; n_features] }
    }

    /// Sums `ordered[i]` into the bin of `rows[i]` for each active feature. The active features
    /// go [`FEATURES_PER_PASS`] at a time, in parallel: a pass reads the rows and their
    /// gradients once for all of its features.
    pub(crate) fn build(&mut self, data: &BinnedData, rows: &[u32], ordered: &[GradPair], active: &[bool]) {
        let mut jobs = self.jobs(data, active);
        jobs.par_chunks_mut(FEATURES_PER_PASS).for_each(|pass| match pass {
            [a, b] => accumulate_each([&mut *a.0, &mut *b.0], [a.1, b.1], rows, ordered),
            [a] => accumulate_each([&mut *a.0], [a.1], rows, ordered),
            _ => {}
        });
    }

    /// Like [`Histogram::build`] for the rows `0..grads.len()`, read in order without indices.
    pub(crate) fn build_all_rows(&mut self, data: &BinnedData, grads: &[GradPair], active: &[bool]) {
        let mut jobs = self.jobs(data, active);
        jobs.par_chunks_mut(FEATURES_PER_PASS).for_each(|pass| match pass {
            [a, b] => accumulate_all([&mut *a.0, &mut *b.0], [a.1, b.1], grads),
            [a] => accumulate_all([&mut *a.0], [a.1], grads),
            _ => {}
        });
    }

    /// Each active feature's histogram with its binned column.
    fn jobs<'h>(&'h mut self, data: &'h BinnedData, active: &[bool]) -> Vec<(&'h mut FeatureHistogram, &'h [u8])> {
        self.features
            .iter_mut()
            .zip(&data.columns)
            .zip(active)
            .filter(|(_, is_active)| **is_active)
            .map(|((histogram, column), _)| (histogram, column.as_slice()))
            .collect()
    }

    /// Turns a parent's histogram into its larger child's by subtracting the smaller child.
    pub(crate) fn subtract(&mut self, smaller: &Histogram, active: &[bool]) {
        for ((parent, child), &is_active) in self.features.iter_mut().zip(&smaller.features).zip(active) {
            if is_active {
                for (bin, &child_bin) in parent.iter_mut().zip(child) {
                    *bin = *bin - child_bin;
                }
            }
        }
    }
}

/// Features whose histograms one pass over a node's rows builds ([`Histogram::build`]): two
/// measured faster than one (the rows and gradients are read half as often) and than four.
const FEATURES_PER_PASS: usize = 2;

/// Sums rows into each of `N` features' bins, in one pass over the rows.
///
/// For each feature, even and odd rows go to separate histograms that are merged at the end:
/// consecutive rows often share a bin, and two independent chains of additions run faster than
/// one. Each feature's bins get their rows in the same order whatever `N` is.
fn accumulate_each<const N: usize>(histograms: [&mut FeatureHistogram; N], columns: [&[u8]; N], rows: &[u32], ordered: &[GradPair]) {
    let mut even = histograms;
    let mut odd = [[BinStats::default(); BINS_PER_FEATURE]; N];
    for histogram in &mut even {
        histogram.fill(BinStats::default());
    }
    let mut row_pairs = rows.chunks_exact(2);
    let mut gradient_pairs = ordered.chunks_exact(2);
    for (rows, pairs) in row_pairs.by_ref().zip(gradient_pairs.by_ref()) {
        let (first, second) = (rows[0] as usize, rows[1] as usize);
        for ((even, odd), column) in even.iter_mut().zip(&mut odd).zip(&columns) {
            add(&mut even[usize::from(column[first])], &pairs[0]);
            add(&mut odd[usize::from(column[second])], &pairs[1]);
        }
    }
    for (&row, pair) in row_pairs.remainder().iter().zip(gradient_pairs.remainder()) {
        for (even, column) in even.iter_mut().zip(&columns) {
            add(&mut even[usize::from(column[row as usize])], pair);
        }
    }
    for (even, odd) in even.iter_mut().zip(&odd) {
        merge(even, odd);
    }
}

/// [`accumulate_each`] for the rows `0..grads.len()`, read in order without indices. One
/// function taking each row through a closure would serve both, but trains slower
/// (`docs/performance.md`, tried and dropped).
fn accumulate_all<const N: usize>(histograms: [&mut FeatureHistogram; N], columns: [&[u8]; N], grads: &[GradPair]) {
    let mut even = histograms;
    let mut odd = [[BinStats::default(); BINS_PER_FEATURE]; N];
    for histogram in &mut even {
        histogram.fill(BinStats::default());
    }
    let mut pairs = grads.chunks_exact(2);
    for (row, pairs) in (0..).step_by(2).zip(pairs.by_ref()) {
        for ((even, odd), column) in even.iter_mut().zip(&mut odd).zip(&columns) {
            add(&mut even[usize::from(column[row])], &pairs[0]);
            add(&mut odd[usize::from(column[row + 1])], &pairs[1]);
        }
    }
    let last = grads.len() - pairs.remainder().len();
    for (pair, row) in pairs.remainder().iter().zip(last..) {
        for (even, column) in even.iter_mut().zip(&columns) {
            add(&mut even[usize::from(column[row])], pair);
        }
    }
    for (even, odd) in even.iter_mut().zip(&odd) {
        merge(even, odd);
    }
}

#[inline]
fn add(bin: &mut BinStats, pair: &GradPair) {
    bin.g += pair.g;
    bin.h += pair.h;
    bin.n += 1;
}

fn merge(histogram: &mut FeatureHistogram, other: &FeatureHistogram) {
    for (bin, &other) in histogram.iter_mut().zip(other) {
        *bin += other;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One feature's bins summed on their own: even rows into one histogram, odd rows into
    /// another, merged at the end.
    fn one_feature(column: &[u8], rows: &[u32], ordered: &[GradPair]) -> FeatureHistogram {
        let (mut even, mut odd) = ([BinStats::default(); BINS_PER_FEATURE], [BinStats::default(); BINS_PER_FEATURE]);
        for (i, (&row, pair)) in rows.iter().zip(ordered).enumerate() {
            add(if i % 2 == 0 { &mut even[usize::from(column[row as usize])] } else { &mut odd[usize::from(column[row as usize])] }, pair);
        }
        merge(&mut even, &odd);
        even
    }

    #[test]
    fn features_summed_together_equal_each_summed_alone() {
        let n = 1_001;
        let columns: Vec<Vec<u8>> = (0..5).map(|f| (0..n).map(|i| ((i * (f + 3) + i / 7) % 251) as u8).collect()).collect();
        let data = BinnedData { columns };
        let grads: Vec<GradPair> = (0..n).map(|i| GradPair { g: (i as f64 * 0.37).sin() / 3.0, h: 0.1 + (i % 13) as f64 / 17.0 }).collect();
        // Every active count, odd and even, and an inactive feature between active ones.
        for active in [[true; 5], [true, false, true, true, false], [false, false, true, false, false]] {
            let all: Vec<u32> = (0..n as u32).collect();
            let some: Vec<u32> = (0..n as u32).filter(|r| r % 3 != 1).collect();
            for rows in [&all, &some] {
                let ordered: Vec<GradPair> = rows.iter().map(|&r| grads[r as usize]).collect();
                let mut built = Histogram::new(5);
                built.build(&data, rows, &ordered, &active);
                let mut streamed = Histogram::new(5);
                streamed.build_all_rows(&data, &grads, &active);
                for (feature, column) in data.columns.iter().enumerate().filter(|(f, _)| active[*f]) {
                    let alone = one_feature(column, rows, &ordered);
                    assert_eq!(built.features[feature], alone, "feature {feature}");
                    if rows.len() == n {
                        assert_eq!(streamed.features[feature], alone, "feature {feature}, every row");
                    }
                }
            }
        }
    }

    #[test]
    fn subtraction_equals_direct_build() {
        let data = BinnedData { columns: vec![vec![0, 1, 2, 1, 0, 3], vec![5, 5, 4, 4, 5, 0]] };
        let grads: Vec<GradPair> = (0..6).map(|i| GradPair { g: f64::from(i) - 2.5, h: 0.25 }).collect();
        let active = [true, true];
        let all: Vec<u32> = (0..6).collect();
        let (left, right): (Vec<u32>, Vec<u32>) = all.iter().partition(|&&row| row % 3 == 0);
        let gather = |rows: &[u32]| -> Vec<GradPair> { rows.iter().map(|&r| grads[r as usize]).collect() };

        let mut parent = Histogram::new(2);
        parent.build(&data, &all, &gather(&all), &active);
        let mut small = Histogram::new(2);
        small.build(&data, &left, &gather(&left), &active);
        let mut direct = Histogram::new(2);
        direct.build(&data, &right, &gather(&right), &active);
        parent.subtract(&small, &active);
        for feature in 0..2 {
            for bin in 0..BINS_PER_FEATURE {
                let (a, b) = (parent.features[feature][bin], direct.features[feature][bin]);
                assert_eq!(a.n, b.n);
                assert!((a.g - b.g).abs() < 1e-12 && (a.h - b.h).abs() < 1e-12);
            }
        }
    }
}
