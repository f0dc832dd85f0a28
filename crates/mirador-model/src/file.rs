//! The saved model file: everything needed to score new declarations without retraining.

use std::path::Path;

use mirador_gbdt::Booster;
use mirador_schema::catalog::selection_frontier;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::evaluate::Evaluation;
use crate::features::FeatureSpec;
use crate::history::History;
use crate::*;

/// Version of the model file format; bumped on incompatible changes.
pub const MODEL_FORMAT: u32 = 1;

/// The saved model: everything needed to score new declarations without retraining.
#[derive(Serialize, Deserialize)]
pub struct ModelFile {
    /// [`MODEL_FORMAT`].
    pub format: u32,
    /// Mirador version that trained it.
    pub mirador_version: String,
    /// Training window.
    pub train_end: String,
    /// Validation window end.
    pub valid_end: String,
    /// Last labelled day the model was trained and evaluated on (a carried-state run retrains
    /// when this is `retrain-every-days` old).
    #[serde(default)]
    pub trained_through: Option<String>,
    /// The parameters it was trained with (a carried-state run retrains when they change).
    #[serde(default)]
    pub params: Option<ModelParams>,
    /// Flag threshold on the probability (F1-optimal on the validation months).
    pub threshold: f64,
    /// Feature vocabularies and reference prices.
    pub spec: FeatureSpec,
    /// History up to the last declaration the model saw.
    pub history: History,
    /// The trees.
    pub booster: Booster,
    /// Held-out figures.
    pub evaluation: Vec<Evaluation>,
    /// The challengers' held-out figures, when they ran.
    #[serde(default)]
    pub challengers: Vec<challengers::Challenger>,
    /// The inspection list's policy, and the frontier it was chosen from.
    #[serde(default)]
    pub selection: Option<Selection>,
}

/// The selection policy a model applies, as chosen on its validation months.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The policy applied.
    pub policy: select::Policy,
    /// Whether it was tuned (otherwise it is the configured one).
    pub tuned: bool,
    /// With tuning: whether a policy met the precision floor.
    pub floor_met: bool,
    /// The absolute precision floor at the budget on the validation months.
    pub precision_floor: f64,
    /// The budget the policy was chosen at, in % of the period's declarations.
    #[serde(default)]
    pub budget_pct: f64,
    /// Every policy searched, at every budget, on the validation months.
    pub frontier: Vec<select::FrontierPoint>,
}

impl Selection {
    /// The `selection_frontier` rows.
    pub fn frontier_frame(&self) -> PolarsResult<DataFrame> {
        let f = &self.frontier;
        let chosen: Vec<bool> = f.iter().map(|p| p.policy == self.policy).collect();
        DataFrame::new_infer_height(vec![
            Column::new(selection_frontier::SPLIT.into(), vec!["valid"; f.len()]),
            Column::new(selection_frontier::REVENUE_SHARE.into(), f.iter().map(|p| p.policy.revenue_share).collect::<Vec<_>>()),
            Column::new(selection_frontier::EXPLORATION_SHARE.into(), f.iter().map(|p| p.policy.exploration_share).collect::<Vec<_>>()),
            Column::new(selection_frontier::REVENUE_EXPONENT.into(), f.iter().map(|p| p.policy.revenue_exponent).collect::<Vec<_>>()),
            Column::new(selection_frontier::REVENUE_FLOOR.into(), f.iter().map(|p| p.policy.revenue_floor).collect::<Vec<_>>()),
            Column::new(selection_frontier::N_PCT.into(), f.iter().map(|p| p.at.n_pct).collect::<Vec<_>>()),
            Column::new(selection_frontier::SELECTED.into(), f.iter().map(|p| p.at.selected as u32).collect::<Vec<_>>()),
            Column::new(selection_frontier::PRECISION.into(), f.iter().map(|p| p.at.precision).collect::<Vec<_>>()),
            Column::new(selection_frontier::RECALL.into(), f.iter().map(|p| p.at.recall).collect::<Vec<_>>()),
            Column::new(selection_frontier::REVENUE.into(), f.iter().map(|p| p.at.revenue).collect::<Vec<_>>()),
            Column::new(selection_frontier::CHOSEN.into(), chosen),
            Column::new(selection_frontier::BUDGET_PCT.into(), vec![self.budget_pct; f.len()]),
        ])
    }
}

impl ModelFile {
    /// Reads a model file, checking its format version.
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let file_err = |message: String| ModelError::File { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let model: ModelFile = serde_json::from_str(&text).map_err(|e| file_err(format!("not a Mirador model file: {e}")))?;
        if model.format != MODEL_FORMAT {
            return Err(file_err(format!("format version {} is not supported (this Mirador reads {MODEL_FORMAT})", model.format)));
        }
        Ok(model)
    }
}
