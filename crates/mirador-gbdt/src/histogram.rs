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

    /// Sums `ordered[i]` into the bin of `rows[i]` for each active feature.
    pub(crate) fn build(&mut self, data: &BinnedData, rows: &[u32], ordered: &[GradPair], active: &[bool]) {
        self.features
            .par_iter_mut()
            .zip(&data.columns)
            .zip(active)
            .filter(|(_, is_active)| **is_active)
            .for_each(|((histogram, column), _)| accumulate(histogram, column, rows, ordered));
    }

    /// Like [`Histogram::build`] for the rows `0..grads.len()`, read in order without indices.
    pub(crate) fn build_all_rows(&mut self, data: &BinnedData, grads: &[GradPair], active: &[bool]) {
        self.features.par_iter_mut().zip(&data.columns).zip(active).filter(|(_, is_active)| **is_active).for_each(
            |((histogram, column), _)| {
                let mut odd = [BinStats::default(); BINS_PER_FEATURE];
                histogram.fill(BinStats::default());
                let mut bins = column.chunks_exact(2);
                let mut pairs = grads.chunks_exact(2);
                for (bins, pairs) in bins.by_ref().zip(pairs.by_ref()) {
                    add(&mut histogram[usize::from(bins[0])], &pairs[0]);
                    add(&mut odd[usize::from(bins[1])], &pairs[1]);
                }
                for (&bin, pair) in bins.remainder().iter().zip(pairs.remainder()) {
                    add(&mut histogram[usize::from(bin)], pair);
                }
                merge(histogram, &odd);
            },
        );
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

/// Sums rows into one feature's bins.
///
/// Even and odd rows go to separate histograms that are merged at the end: consecutive rows often
/// share a bin, and two independent chains of additions run faster than one.
fn accumulate(histogram: &mut FeatureHistogram, column: &[u8], rows: &[u32], ordered: &[GradPair]) {
    let mut odd = [BinStats::default(); BINS_PER_FEATURE];
    histogram.fill(BinStats::default());
    let mut row_pairs = rows.chunks_exact(2);
    let mut gradient_pairs = ordered.chunks_exact(2);
    for (rows, pairs) in row_pairs.by_ref().zip(gradient_pairs.by_ref()) {
        add(&mut histogram[usize::from(column[rows[0] as usize])], &pairs[0]);
        add(&mut odd[usize::from(column[rows[1] as usize])], &pairs[1]);
    }
    for (&row, pair) in row_pairs.remainder().iter().zip(gradient_pairs.remainder()) {
        add(&mut histogram[usize::from(column[row as usize])], pair);
    }
    merge(histogram, &odd);
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
