//! Seeded row bagging and feature sampling.

use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Random draws for training, one stream for rows and one for features, both from the seed.
pub(crate) struct Sampler {
    rows: Xoshiro256PlusPlus,
    features: Xoshiro256PlusPlus,
}

impl Sampler {
    pub(crate) fn new(seed: u64) -> Self {
        Self { rows: Xoshiro256PlusPlus::seed_from_u64(seed), features: Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15) }
    }

    /// Each row joins the bag with probability `fraction`; rows stay in ascending order.
    pub(crate) fn bag(&mut self, n_rows: usize, fraction: f64) -> Vec<u32> {
        (0..n_rows as u32).filter(|_| self.rows.r#gen::<f64>() < fraction).collect()
    }

    /// `round(fraction * n_features)` features (at least one), ascending.
    pub(crate) fn features(&mut self, n_features: usize, fraction: f64) -> Vec<usize> {
        if fraction >= 1.0 {
            return (0..n_features).collect();
        }
        let amount = ((fraction * n_features as f64).round() as usize).clamp(1, n_features);
        let mut chosen = index::sample(&mut self.features, n_features, amount).into_vec();
        chosen.sort_unstable();
        chosen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws() {
        let (mut a, mut b) = (Sampler::new(7), Sampler::new(7));
        assert_eq!(a.bag(1000, 0.5), b.bag(1000, 0.5));
        assert_eq!(a.features(10, 0.3), b.features(10, 0.3));
        let bag = Sampler::new(7).bag(10_000, 0.5);
        assert!((4500..5500).contains(&bag.len()));
        assert_eq!(Sampler::new(1).features(10, 0.01).len(), 1);
    }
}
