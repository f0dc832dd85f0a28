//! Binary logloss: gradients, the initial score and the validation metric.

use rayon::prelude::*;

use crate::histogram::GradPair;

/// Rows per parallel task when computing gradients or scoring.
pub(crate) const ROW_CHUNK: usize = 16_384;

/// Probabilities are clipped to `[EPSILON, 1 - EPSILON]` in the logloss.
const EPSILON: f64 = 1e-15;

/// The logistic function.
pub(crate) fn sigmoid(margin: f64) -> f64 {
    1.0 / (1.0 + (-margin).exp())
}

/// True for a positive label (labels are checked to be exactly 0 or 1).
pub(crate) fn is_positive(label: f64) -> bool {
    label > 0.5
}

/// Log-odds of the weighted positive rate.
pub(crate) fn initial_score(labels: &[f64], weights: &[f64]) -> f64 {
    let mut positive = 0.0;
    let mut total = 0.0;
    for (&label, &weight) in labels.iter().zip(weights) {
        total += weight;
        if is_positive(label) {
            positive += weight;
        }
    }
    let rate = positive / total;
    (rate / (1.0 - rate)).ln()
}

/// Weighted gradient `w (p - y)` and hessian `w p (1 - p)` per row.
pub(crate) fn gradients(scores: &[f64], labels: &[f64], weights: &[f64], out: &mut [GradPair]) {
    out.par_chunks_mut(ROW_CHUNK)
        .zip(scores.par_chunks(ROW_CHUNK))
        .zip(labels.par_chunks(ROW_CHUNK).zip(weights.par_chunks(ROW_CHUNK)))
        .for_each(|((out, scores), (labels, weights))| {
            for (((pair, &score), &label), &weight) in out.iter_mut().zip(scores).zip(labels).zip(weights) {
                let p = sigmoid(score);
                let y = if is_positive(label) { 1.0 } else { 0.0 };
                *pair = GradPair { g: weight * (p - y), h: weight * p * (1.0 - p) };
            }
        });
}

/// Mean (unweighted) binary logloss of margins against 0/1 labels, summed in row order.
pub(crate) fn logloss(scores: &[f64], labels: &[f64]) -> f64 {
    let total: f64 = scores
        .iter()
        .zip(labels)
        .map(|(&score, &label)| {
            let p = sigmoid(score).clamp(EPSILON, 1.0 - EPSILON);
            if is_positive(label) { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum();
    total / scores.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_score_is_weighted_log_odds() {
        let score = initial_score(&[1.0, 0.0, 0.0, 0.0], &[3.0, 1.0, 1.0, 1.0]);
        assert!(score.abs() < 1e-12);
        let score = initial_score(&[1.0, 0.0, 0.0, 0.0], &[1.0; 4]);
        assert!((score - (1.0f64 / 3.0).ln()).abs() < 1e-12);
    }

    #[test]
    fn gradients_match_closed_form() {
        let mut out = vec![GradPair::default(); 2];
        gradients(&[0.0, 2.0], &[1.0, 0.0], &[1.0, 2.0], &mut out);
        assert!((out[0].g + 0.5).abs() < 1e-12 && (out[0].h - 0.25).abs() < 1e-12);
        let p = sigmoid(2.0);
        assert!((out[1].g - 2.0 * p).abs() < 1e-12);
        assert!((out[1].h - 2.0 * p * (1.0 - p)).abs() < 1e-12);
    }

    #[test]
    fn logloss_of_a_coin_is_ln_two() {
        assert!((logloss(&[0.0, 0.0], &[0.0, 1.0]) - std::f64::consts::LN_2).abs() < 1e-12);
    }
}
