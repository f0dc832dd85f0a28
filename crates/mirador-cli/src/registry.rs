//! The one place that knows every stage: pipeline files name stages, this maps names to code.

use mirador_pipeline::Stage;

/// Every stage name, in pipeline order.
pub(crate) const STAGES: &[&str] = &[
    "ingest",
    "ingest_outcomes",
    "revenue_gap",
    "kmeans_scores",
    "release_time",
    "revenue_forecast",
    "fraud_model",
    "rank",
    "evaluate_auditees",
    "report",
];

/// Looks a stage up by name.
pub(crate) fn stage(name: &str) -> Option<Box<dyn Stage>> {
    Some(match name {
        "ingest" => Box::new(mirador_ingest::Ingest),
        "ingest_outcomes" => Box::new(mirador_ingest::IngestOutcomes),
        "revenue_gap" => Box::new(mirador_gap::RevenueGap),
        "kmeans_scores" => Box::new(mirador_kmeans::KMeansScores),
        "release_time" => Box::new(mirador_release::ReleaseTime),
        "revenue_forecast" => Box::new(mirador_forecast::RevenueForecast),
        "fraud_model" => Box::new(mirador_model::FraudModel),
        "rank" => Box::new(mirador_rank::Rank),
        "evaluate_auditees" => Box::new(mirador_rank::evaluation::EvaluateAuditees),
        "report" => Box::new(mirador_report::Report),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_stage_resolves_to_itself() {
        for name in STAGES {
            assert_eq!(stage(name).map(|s| s.name()), Some(*name));
        }
        assert!(stage("nope").is_none());
    }
}
