//! Ranking metrics.

/// Area under the ROC curve of `scores` against 0/1 `labels` (a label above 0.5 is positive).
///
/// Computed as the Mann–Whitney statistic with tied scores given their average rank, so a
/// constant score gives 0.5. Returns NaN when the lengths differ or either class is absent.
pub fn auc(scores: &[f64], labels: &[f64]) -> f64 {
    if scores.len() != labels.len() {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut positive_rank_sum = 0.0;
    let mut n_positive = 0usize;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]].total_cmp(&scores[order[start]]).is_eq() {
            end += 1;
        }
        // Ranks start+1 ..= end share their mean.
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        for &index in &order[start..end] {
            if labels[index] > 0.5 {
                positive_rank_sum += mean_rank;
                n_positive += 1;
            }
        }
        start = end;
    }
    let n_negative = scores.len() - n_positive;
    if n_positive == 0 || n_negative == 0 {
        return f64::NAN;
    }
    let (positives, negatives) = (n_positive as f64, n_negative as f64);
    (positive_rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}
