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

/// The stages of a run given an engine (the address of a cluster's scheduler), or none: the
/// stages whose map work runs there in place of the local ones ([`on_engine`]).
pub(crate) fn on(engine: Option<&str>, stall_limit: Option<std::time::Duration>) -> impl Fn(&str) -> Option<Box<dyn Stage>> + Sync + use<> {
    let engine = engine.map(str::to_owned);
    move |name: &str| match (&engine, name) {
        (Some(address), "revenue_gap") => {
            Some(Box::new(mirador_engine::stages::RevenueGapOnEngine::new(address, stall_limit)) as Box<dyn Stage>)
        }
        _ => stage(name),
    }
}

/// Where stage `name` runs when a run is given an engine: `Ok` with what runs there, or `Err`
/// with why the whole stage runs here.
pub(crate) fn on_engine(name: &str) -> Result<&'static str, &'static str> {
    match name {
        "revenue_gap" => Ok("the map over every declaration item, the sums per cell key and the join with the cells (mirror_exposure) \
                             run there; the cells, one per HS6 x partner x period, are computed here"),
        "ingest" => Err("its validation rules are not engine functions yet, and its declarations file is what the engine reads"),
        "ingest_outcomes" => Err("inspection outcomes are a few percent of the declarations"),
        "kmeans_scores" => Err("scoring against the fitted peers needs them shipped to the executors (a codec not written yet)"),
        "fraud_model" => Err("training reads the labelled rows only; scoring and explaining every row need the model shipped to the \
                              executors (a codec not written yet)"),
        "rank" | "release_time" => Err("not written as an engine plan yet"),
        _ => Err("it works on summaries, not on every declaration"),
    }
}

/// Logs, for a run on `engine`, where each of `stages` runs and why.
pub(crate) fn log_placement<'a>(engine: &str, stages: impl Iterator<Item = &'a str>) {
    for name in stages {
        match on_engine(name) {
            Ok(what) => tracing::info!(stage = name, "On the engine {engine}: {what}."),
            Err(why) => tracing::info!(stage = name, "Runs here, not on the engine: {why}."),
        }
    }
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
