//! `auc` on hand-made cases.

use mirador_gbdt::auc;
use proptest::prelude::*;

#[test]
fn perfect_reversed_and_tied() {
    let labels = [0.0, 0.0, 1.0, 1.0];
    assert!((auc(&[0.1, 0.2, 0.3, 0.4], &labels) - 1.0).abs() < 1e-15);
    assert!(auc(&[0.4, 0.3, 0.2, 0.1], &labels).abs() < 1e-15);
    assert!((auc(&[0.5; 4], &labels) - 0.5).abs() < 1e-15);
}

#[test]
fn textbook_cases() {
    // One inverted pair out of four.
    assert!((auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]) - 0.75).abs() < 1e-15);
    // A positive tied with two negatives counts half for each pair.
    assert!((auc(&[0.5, 0.5, 0.5, 0.9], &[0.0, 1.0, 0.0, 1.0]) - 0.75).abs() < 1e-15);
}

#[test]
fn degenerate_inputs_give_nan() {
    assert!(auc(&[0.1, 0.2], &[1.0, 1.0]).is_nan());
    assert!(auc(&[], &[]).is_nan());
    assert!(auc(&[0.1], &[1.0, 0.0]).is_nan());
}

proptest! {
    #[test]
    fn negating_scores_mirrors_auc(
        scores in prop::collection::vec(0u8..6, 2..60),
        labels in prop::collection::vec(any::<bool>(), 2..60),
    ) {
        let n = scores.len().min(labels.len());
        let scores: Vec<f64> = scores[..n].iter().map(|&s| f64::from(s)).collect();
        let labels: Vec<f64> = labels[..n].iter().map(|&l| f64::from(u8::from(l))).collect();
        prop_assume!(labels.iter().any(|&l| l > 0.5) && labels.iter().any(|&l| l < 0.5));
        let negated: Vec<f64> = scores.iter().map(|s| -s).collect();
        prop_assert!((auc(&scores, &labels) + auc(&negated, &labels) - 1.0).abs() < 1e-12);
    }
}
