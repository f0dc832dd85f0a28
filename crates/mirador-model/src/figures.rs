//! The `fraud_metrics` rows ([`mirador_schema::catalog::fraud_metrics`]): the run's figures
//! beside the evaluation, one row per figure, a number or a text.

use mirador_schema::catalog::fraud_metrics as m;
use polars::prelude::*;

use crate::ModelFile;
use crate::outcomes::Applied;

/// The `fraud_metrics` rows, in the order they are added.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    section: Vec<&'static str>,
    metric: Vec<&'static str>,
    value: Vec<Option<f64>>,
    text: Vec<Option<String>>,
}

/// What a carried-state run reports of its state.
#[derive(Debug, Clone, Default)]
pub struct Carried {
    /// Declarations awaiting an outcome, carried to the next run.
    pub pending_rows: usize,
    /// Rows of the training window the previous run left.
    pub carried_window_rows: usize,
    /// Rows of the training window carried to the next run.
    pub window_rows: usize,
    /// Why the model was retrained (`None`: the carried one scored).
    pub retrain_reason: Option<String>,
    /// Why a retrain that was due could not be done.
    pub retrain_skipped: Option<String>,
}

impl Figures {
    /// Adds a number.
    pub fn number(&mut self, section: &'static str, metric: &'static str, value: f64) -> &mut Self {
        self.push(section, metric, Some(value), None)
    }

    /// Adds a text (null when `None`).
    pub fn text(&mut self, section: &'static str, metric: &'static str, text: Option<String>) -> &mut Self {
        self.push(section, metric, None, text)
    }

    fn push(&mut self, section: &'static str, metric: &'static str, value: Option<f64>, text: Option<String>) -> &mut Self {
        self.section.push(section);
        self.metric.push(metric);
        self.value.push(value);
        self.text.push(text);
        self
    }

    /// The run's figures: the model's (and its selection policy's, when it has one) with the
    /// run's budget, the carried state's with `carry-state`, the outcomes feed's with a feed.
    pub fn of_run(model: &ModelFile, budget_pct: f64, carried: Option<&Carried>, applied: Option<&Applied>) -> Self {
        let mut f = Figures::default();
        f.number(m::MODEL, m::TREES, model.booster.n_trees() as f64)
            .number(m::MODEL, m::THRESHOLD, model.threshold)
            .text(m::MODEL, m::TRAIN_END, Some(model.train_end.clone()))
            .text(m::MODEL, m::VALID_END, Some(model.valid_end.clone()));
        if let Some(s) = &model.selection {
            let flag = |b: bool| f64::from(u8::from(b));
            f.number(m::SELECTION, m::REVENUE_SHARE, s.policy.revenue_share)
                .number(m::SELECTION, m::EXPLORATION_SHARE, s.policy.exploration_share)
                .number(m::SELECTION, m::REVENUE_EXPONENT, s.policy.revenue_exponent)
                .number(m::SELECTION, m::REVENUE_FLOOR, s.policy.revenue_floor)
                .number(m::SELECTION, m::TUNED, flag(s.tuned))
                .number(m::SELECTION, m::FLOOR_MET, flag(s.floor_met))
                .number(m::SELECTION, m::PRECISION_FLOOR, s.precision_floor)
                .number(m::SELECTION, m::BUDGET_PCT, budget_pct);
        }
        if let Some(c) = carried {
            f.number(m::CARRIED_STATE, m::PENDING_ROWS, c.pending_rows as f64)
                .number(m::CARRIED_STATE, m::CARRIED_WINDOW_ROWS, c.carried_window_rows as f64)
                .number(m::CARRIED_STATE, m::WINDOW_ROWS, c.window_rows as f64)
                .number(m::CARRIED_STATE, m::RETRAINED, f64::from(u8::from(c.retrain_reason.is_some())))
                .text(m::CARRIED_STATE, m::RETRAIN_REASON, c.retrain_reason.clone())
                .text(m::CARRIED_STATE, m::RETRAIN_SKIPPED, c.retrain_skipped.clone());
        }
        if let Some(a) = applied {
            for (metric, n) in [
                (m::ITEMS, a.items),
                (m::LABELLED, a.labelled),
                (m::CONFIRMED, a.confirmed),
                (m::REVISED, a.revised),
                (m::LATE, a.late),
                (m::UNAPPLIED, a.unapplied),
            ] {
                f.number(m::INSPECTION_OUTCOMES, metric, n as f64);
            }
        }
        f
    }

    /// The rows as a `fraud_metrics` frame.
    pub fn frame(&self) -> PolarsResult<DataFrame> {
        DataFrame::new_infer_height(vec![
            Column::new(m::SECTION.into(), self.section.clone()),
            Column::new(m::METRIC.into(), self.metric.clone()),
            Column::new(m::VALUE.into(), self.value.clone()),
            Column::new(m::TEXT.into(), self.text.clone()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_is_a_number_or_a_text_and_the_frame_has_the_declared_schema() {
        let mut f = Figures::default();
        f.number(m::INSPECTION_OUTCOMES, m::ITEMS, 12.0).text(m::CARRIED_STATE, m::RETRAIN_REASON, None).text(
            m::MODEL,
            m::TRAIN_END,
            Some("2023-06-30".into()),
        );
        let df = f.frame().unwrap();
        let declared = (mirador_schema::catalog::get(m::ID).unwrap().schema)();
        assert!(mirador_schema::catalog::differences(&declared, df.schema(), &[]).is_empty());
        assert_eq!(df.height(), 3);
        let value = df.column(m::VALUE).unwrap().f64().unwrap().clone();
        let text = df.column(m::TEXT).unwrap().str().unwrap().clone();
        assert_eq!((value.get(0), text.get(0)), (Some(12.0), None));
        assert_eq!((value.get(1), text.get(1)), (None, None), "a reason that is not there is null");
        assert_eq!((value.get(2), text.get(2)), (None, Some("2023-06-30")));
        // No rows still has the declared columns and types.
        let empty = Figures::default().frame().unwrap();
        assert!(mirador_schema::catalog::differences(&declared, empty.schema(), &[]).is_empty());
    }
}
