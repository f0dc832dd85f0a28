//! The `fraud_model` stage: parameters, inputs and outputs, carried state.

use std::collections::BTreeMap;

use mirador_pipeline::{Stage, StageContext, StageError, StageOutput};
use mirador_schema::{DatasetId, col, datasets};
use tracing::warn;

use crate::features::SIGNALS;
use crate::*;

/// The gradient-boosted fraud model.
///
/// ## Inputs
/// - `declarations`; optional `kmeans_scores`, `mirror_exposure` (used as features),
///   `inspection_outcomes` (late labels: [`outcomes`]).
/// ## Outputs
/// - `fraud_scores`, `fraud_rules`, `fraud_importance`, `fraud_evaluation`.
pub struct FraudModel;

impl Stage for FraudModel {
    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        let params: ModelParams = mirador_pipeline::parse_params(self.name(), params)?;
        params.validate(self.name())?;
        params.check_selection().map_err(|e| StageError::Params { stage: self.name().into(), message: e.to_string() })
    }

    fn name(&self) -> &'static str {
        "fraud_model"
    }

    fn carries_state(&self, params: &mirador_pipeline::toml::Table) -> bool {
        mirador_pipeline::parse_params::<ModelParams>(self.name(), params).is_ok_and(|p| p.carry_state)
    }

    fn inputs(&self) -> &'static [DatasetId] {
        &[datasets::DECLARATIONS]
    }

    fn optional_inputs(&self) -> &'static [DatasetId] {
        &[datasets::KMEANS_SCORES, datasets::MIRROR_EXPOSURE, datasets::INSPECTION_OUTCOMES]
    }

    /// Of the other stages' outputs, the signals ([`features::SIGNALS`]) and the keys.
    fn input_columns(&self, id: &str) -> Option<Vec<&'static str>> {
        (id != datasets::DECLARATIONS && id != datasets::INSPECTION_OUTCOMES).then(|| {
            let signals = SIGNALS.iter().filter(|(_, dataset, _)| *dataset == id).map(|(_, _, column)| *column);
            [col::DECLARATION_ID, col::ITEM_NO].into_iter().chain(signals).collect()
        })
    }

    fn outputs(&self) -> &'static [DatasetId] {
        &[
            datasets::FRAUD_SCORES,
            datasets::FRAUD_RULES,
            datasets::FRAUD_IMPORTANCE,
            datasets::FRAUD_EVALUATION,
            datasets::INSPECTION_LIST,
            datasets::SELECTION_FRONTIER,
        ]
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let params: ModelParams = ctx.params()?;
        params.validate(self.name())?;
        let declarations = ctx.input(datasets::DECLARATIONS)?;
        let mut signals = BTreeMap::new();
        for id in [datasets::KMEANS_SCORES, datasets::MIRROR_EXPOSURE] {
            if let Some(df) = ctx.optional_input(id) {
                signals.insert(id, df);
            }
        }
        let stage_err = |e| match e {
            ModelError::Params(message) => StageError::Params { stage: self.name().into(), message },
            ModelError::Data(m) => StageError::Data(m),
            other => StageError::Other(Box::new(other)),
        };
        let feed = ctx.optional_input(datasets::INSPECTION_OUTCOMES);
        let mut outcomes = feed.map(outcomes::Outcomes::from_frame).transpose().map_err(stage_err)?.unwrap_or_default();
        let mut carried = serde_json::Map::new();
        // Every declaration's scores and reasons are written as they are scored, not held.
        let mut scores = ctx.dataset_stream(datasets::FRAUD_SCORES);
        let mut sink = ScoreSink::Stream(&mut scores);
        let t = if params.carry_state {
            let state = ctx.previous_run().map(carry::load).transpose().map_err(stage_err)?.flatten();
            let carried_rows = state.as_ref().map_or(0, |s| s.window.height());
            let mut outcome =
                carry::run_to(declarations, &signals, &mut outcomes, &params, ctx.seed(), state, &mut sink).map_err(stage_err)?;
            mirador_io::write_parquet(&mut outcome.window, &ctx.artifact_dir().join(carry::WINDOW_FILE))?;
            outcome.pending.write(&ctx.artifact_dir().join(pending::PENDING_DIR)).map_err(stage_err)?;
            carried.insert("pending_rows".into(), outcome.pending.rows().map_err(stage_err)?.into());
            carried.insert("carried_window_rows".into(), carried_rows.into());
            carried.insert("window_rows".into(), outcome.window.height().into());
            carried.insert("retrained".into(), outcome.retrained.is_some().into());
            carried.insert("retrain_reason".into(), outcome.retrained.clone().into());
            carried.insert("retrain_skipped".into(), outcome.retrain_skipped.clone().into());
            outcome.trained
        } else {
            let labelled = outcomes.labelled(declarations).map_err(stage_err)?;
            train_to(&labelled, &signals, &params, ctx.seed(), &mut sink).map_err(stage_err)?
        };
        let applied = feed.is_some().then(|| outcomes.applied());
        if let Some(applied) = &applied {
            let mut unapplied = outcomes.unapplied_frame().map_err(stage_err)?;
            mirador_io::write_parquet(&mut unapplied, &ctx.artifact_dir().join(outcomes::UNAPPLIED_FILE))?;
            if applied.unapplied > 0 {
                warn!(
                    unapplied = applied.unapplied,
                    file = outcomes::UNAPPLIED_FILE,
                    "Inspection outcomes found no declaration; they are listed with the reason."
                );
            }
        }
        let scores = scores.finish()?;
        let json = serde_json::to_vec(&t.model).map_err(|e| StageError::Data(e.to_string()))?;
        timed("model file written", || mirador_io::write_bytes(&ctx.artifact_dir().join("model.json"), &json))?;
        let metrics = serde_json::json!({
            "train_end": t.model.train_end,
            "valid_end": t.model.valid_end,
            "trees": t.model.booster.n_trees(),
            "threshold": t.model.threshold,
            "evaluation": t.model.evaluation,
            "selection": t.model.selection.as_ref().map(|s| serde_json::json!({
                "policy": s.policy, "tuned": s.tuned, "floor_met": s.floor_met, "precision_floor": s.precision_floor,
                "budget_pct": params.budget_pct,
            })),
            "ranking_note": "by_probability ranks by fraud probability; by_expected_duty by probability x duty",
            "carried_state": &carried,
            "inspection_outcomes": &applied,
        });
        mirador_io::write_bytes(&ctx.artifact_dir().join("metrics.json"), &serde_json::to_vec_pretty(&metrics).unwrap_or_default())?;
        mirador_io::write_spreadsheet_csv(&t.inspection_list, &ctx.artifact_dir().join("inspection_list.csv"))?;
        let mut out = StageOutput::new().with_metric("trees", t.model.booster.n_trees()).with_metric("threshold", t.model.threshold);
        if let Some(selection) = &t.model.selection {
            out = out
                .with_metric("selection_revenue_share", selection.policy.revenue_share)
                .with_metric("selection_revenue_exponent", selection.policy.revenue_exponent)
                .with_metric("selection_exploration_share", selection.policy.exploration_share)
                .with_metric("selection_floor_met", selection.floor_met)
                .with_metric("inspection_list_rows", t.inspection_list.height());
        }
        if let Some(applied) = &applied {
            out = out.with_metric("inspection_outcomes", serde_json::to_value(applied).unwrap_or_default());
        }
        if params.carry_state {
            out = out.with_metric("retrained", carried["retrained"].clone()).with_metric("window_rows", carried["window_rows"].clone());
        }
        if let Some(test) = t.model.evaluation.iter().find(|e| e.split == "test") {
            out = out.with_metric("test_rows", test.rows);
            if let Some(auc) = test.auc {
                out = out.with_metric("test_auc", auc);
            }
            for n in [5.0, 10.0] {
                if let Some(a) = test.selection_at(n) {
                    out = out
                        .with_metric(&format!("test_selection_precision_at_{n}pct"), a.precision)
                        .with_metric(&format!("test_selection_revenue_at_{n}pct"), a.revenue);
                }
            }
            for n in [1.0, 5.0, 10.0] {
                if let Some(a) = test.at(n) {
                    out = out
                        .with_metric(&format!("test_precision_at_{n}pct"), a.precision)
                        .with_metric(&format!("test_recall_at_{n}pct"), a.recall)
                        .with_metric(&format!("test_revenue_at_{n}pct"), a.revenue);
                }
            }
        }
        Ok(out
            .with_streamed(scores)
            .with_dataset(datasets::FRAUD_RULES, t.rules)
            .with_dataset(datasets::FRAUD_IMPORTANCE, t.importance)
            .with_dataset(datasets::FRAUD_EVALUATION, t.evaluation)
            .with_dataset(datasets::INSPECTION_LIST, t.inspection_list)
            .with_dataset(datasets::SELECTION_FRONTIER, t.frontier))
    }
}
