//! The `fraud_model` stage: parameters, inputs and outputs, carried state.

use std::collections::BTreeMap;

use mirador_pipeline::{Stage, StageContext, StageError, StageOutput};
use mirador_schema::catalog::{fraud_metrics as m, fraud_rules, model_pending, model_training_window, unapplied_outcomes};
use mirador_schema::{DatasetId, col, datasets};
use tracing::warn;

use crate::features::SIGNALS;
use crate::figures::{Carried, Figures};
use crate::score::timed;
use crate::{ModelError, ModelParams, ScoreSink, carry, outcomes, train_to};

/// The declarations' columns the model reads ([`FraudModel::input_columns`]).
const DECLARATION_COLUMNS: &[&str] = &[
    model_training_window::DECLARATION_ID,
    model_training_window::ITEM_NO,
    model_training_window::IMPORTER_ID,
    model_training_window::DATE,
    model_training_window::FRAUD,
    col::CRITICAL_FRAUD,
    model_training_window::DUTY_USD,
    model_training_window::HS6,
    model_training_window::OFFICE_ID,
    model_training_window::PROCESS_TYPE,
    model_training_window::IMPORT_TYPE,
    model_training_window::IMPORT_USE,
    model_training_window::PAYMENT_TYPE,
    model_training_window::TRANSPORT_MODE,
    model_training_window::TAX_TYPE,
    model_training_window::ORIGIN_INDICATOR,
    model_training_window::ORIGIN_COUNTRY,
    model_training_window::DEPARTURE_COUNTRY,
    model_training_window::TAX_RATE_PCT,
    model_training_window::NET_MASS_KG,
    model_training_window::VALUE_USD,
    model_training_window::UNIT_PRICE_USD_KG,
    model_training_window::DECLARANT_ID,
    model_training_window::SELLER_ID,
];

/// The gradient-boosted fraud model.
///
/// ## Inputs
/// - `declarations`; optional `kmeans_scores`, `mirror_exposure` (used as features),
///   `inspection_outcomes` (late labels: [`outcomes`]).
/// ## Outputs
/// - `fraud_scores`, `fraud_rules`, `fraud_importance`, `fraud_evaluation`, `fraud_metrics`,
///   `inspection_list`, `selection_frontier`.
/// ## Carried state
/// - `model_training_window`, `model_pending` (with `carry-state`), `unapplied_outcomes` (with an
///   outcomes feed), and the model file ([`carry::MODEL_FILE`]), all found and placed by the
///   runner ([`StageContext::previous_state`], [`StageContext::state_path`]).
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
    /// Of the declarations, those the model reads: the training window's columns (what a carried
    /// window keeps of them) and the critical-fraud label the inspection outcomes update; of the
    /// other stages' scores, the keys and the signals.
    fn input_columns(&self, id: &str) -> Option<Vec<&'static str>> {
        match id {
            datasets::DECLARATIONS => Some(DECLARATION_COLUMNS.to_vec()),
            datasets::INSPECTION_OUTCOMES => None,
            _ => {
                let signals = SIGNALS.iter().filter(|(_, dataset, _)| *dataset == id).map(|(_, _, column)| *column);
                Some([col::DECLARATION_ID, col::ITEM_NO].into_iter().chain(signals).collect())
            }
        }
    }

    fn outputs(&self) -> &'static [DatasetId] {
        &[
            datasets::FRAUD_SCORES,
            datasets::FRAUD_RULES,
            datasets::FRAUD_IMPORTANCE,
            datasets::FRAUD_EVALUATION,
            datasets::FRAUD_METRICS,
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
        let mut carried = None;
        // Every declaration's scores and reasons are written as they are scored, not held.
        let mut scores = ctx.dataset_stream(datasets::FRAUD_SCORES);
        let mut sink = ScoreSink::Stream(&mut scores);
        let t = if params.carry_state {
            let stored = carry::Stored {
                model: ctx.previous_artifact(carry::MODEL_FILE),
                window: ctx.previous_state(model_training_window::ID),
                rules: ctx.previous_output(fraud_rules::ID),
                pending: ctx.previous_state(model_pending::ID),
            };
            let state = carry::load(&stored).map_err(stage_err)?;
            let carried_rows = state.as_ref().map_or(0, |s| s.window.height());
            let mut outcome =
                carry::run_to(declarations, &signals, &mut outcomes, &params, ctx.seed(), state, &mut sink).map_err(stage_err)?;
            ctx.write_state(model_training_window::ID, &mut outcome.window)?;
            outcome.pending.write(&ctx.state_path(model_pending::ID)?).map_err(stage_err)?;
            carried = Some(Carried {
                pending_rows: outcome.pending.rows().map_err(stage_err)?,
                carried_window_rows: carried_rows,
                window_rows: outcome.window.height(),
                retrain_reason: outcome.retrained.clone(),
                retrain_skipped: outcome.retrain_skipped.clone(),
            });
            outcome.trained
        } else {
            let labelled = outcomes.labelled(declarations).map_err(stage_err)?;
            train_to(&labelled, &signals, &params, ctx.seed(), &mut sink).map_err(stage_err)?
        };
        let applied = feed.is_some().then(|| outcomes.applied());
        if let Some(applied) = &applied {
            let mut unapplied = outcomes.unapplied_frame().map_err(stage_err)?;
            let path = ctx.write_state(unapplied_outcomes::ID, &mut unapplied)?;
            if applied.unapplied > 0 {
                warn!(
                    unapplied = applied.unapplied,
                    file = %path.display(),
                    "Inspection outcomes found no declaration; they are listed with the reason."
                );
            }
        }
        let scores = scores.finish()?;
        let json = serde_json::to_vec(&t.model).map_err(|e| StageError::Data(e.to_string()))?;
        timed("model file written", || mirador_io::write_bytes(&ctx.artifact_dir().join(carry::MODEL_FILE), &json))?;
        let figures = Figures::of_run(&t.model, params.budget_pct, carried.as_ref(), applied.as_ref()).frame()?;
        // For people only (nothing reads it): the same figures, with the evaluation, as one JSON.
        let mut carried_json = serde_json::Map::new();
        if let Some(c) = &carried {
            carried_json.insert(m::PENDING_ROWS.into(), c.pending_rows.into());
            carried_json.insert(m::CARRIED_WINDOW_ROWS.into(), c.carried_window_rows.into());
            carried_json.insert(m::WINDOW_ROWS.into(), c.window_rows.into());
            carried_json.insert(m::RETRAINED.into(), c.retrain_reason.is_some().into());
            carried_json.insert(m::RETRAIN_REASON.into(), c.retrain_reason.clone().into());
            carried_json.insert(m::RETRAIN_SKIPPED.into(), c.retrain_skipped.clone().into());
        }
        let metrics = serde_json::json!({
            (m::TRAIN_END): t.model.train_end,
            (m::VALID_END): t.model.valid_end,
            (m::TREES): t.model.booster.n_trees(),
            (m::THRESHOLD): t.model.threshold,
            "evaluation": t.model.evaluation,
            (m::SELECTION): t.model.selection.as_ref().map(|s| serde_json::json!({
                "policy": s.policy, (m::TUNED): s.tuned, (m::FLOOR_MET): s.floor_met, (m::PRECISION_FLOOR): s.precision_floor,
                (m::BUDGET_PCT): params.budget_pct,
            })),
            "ranking_note": "by_probability ranks by fraud probability; by_expected_duty by probability x duty",
            (m::CARRIED_STATE): &carried_json,
            (m::INSPECTION_OUTCOMES): &applied,
        });
        mirador_io::write_bytes(&ctx.artifact_dir().join("metrics.json"), &serde_json::to_vec_pretty(&metrics).unwrap_or_default())?;
        mirador_io::write_spreadsheet_csv(&t.inspection_list, &ctx.artifact_dir().join("inspection_list.csv"))?;
        let mut out = StageOutput::new().with_metric(m::TREES, t.model.booster.n_trees()).with_metric(m::THRESHOLD, t.model.threshold);
        if let Some(selection) = &t.model.selection {
            out = out
                .with_metric("selection_revenue_share", selection.policy.revenue_share)
                .with_metric("selection_revenue_exponent", selection.policy.revenue_exponent)
                .with_metric("selection_exploration_share", selection.policy.exploration_share)
                .with_metric("selection_floor_met", selection.floor_met)
                .with_metric("inspection_list_rows", t.inspection_list.height());
        }
        if let Some(applied) = &applied {
            out = out.with_metric(m::INSPECTION_OUTCOMES, serde_json::to_value(applied).unwrap_or_default());
        }
        if let Some(c) = &carried {
            out = out.with_metric(m::RETRAINED, c.retrain_reason.is_some()).with_metric(m::WINDOW_ROWS, c.window_rows);
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
            .with_dataset(datasets::FRAUD_METRICS, figures)
            .with_dataset(datasets::INSPECTION_LIST, t.inspection_list)
            .with_dataset(datasets::SELECTION_FRONTIER, t.frontier))
    }
}
