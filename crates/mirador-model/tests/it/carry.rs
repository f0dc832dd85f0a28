//! Carried state: a chain of runs, each given only its new months, continues the history exactly
//! as one run over all months would, keeps a bounded training window, and retrains on schedule.

use std::collections::BTreeMap;

use mirador_model::carry::{self, Outcome, State};
use mirador_model::history::History;
use mirador_model::{ModelParams, features};
use mirador_synth::{SynthParams, generate};
use polars::prelude::*;

fn months(df: &DataFrame, from: &str, to: &str) -> DataFrame {
    let p = df.column("period").unwrap().str().unwrap().clone();
    let mask: BooleanChunked = p.iter().map(|v| v.is_some_and(|v| v >= from && v <= to)).collect();
    df.filter(&mask).unwrap()
}

fn state(o: Outcome) -> State {
    State { model: o.trained.model, window: o.window, rules: o.trained.rules, pending: Vec::new() }
}

fn json(h: &History) -> String {
    // A `serde_json::Value` keeps object keys sorted.
    serde_json::to_value(h).unwrap().to_string()
}

fn day(s: &str) -> i32 {
    mirador_schema::day::parse(s).unwrap()
}

#[test]
fn a_chain_of_carried_runs_continues_the_history_and_retrains_on_schedule() {
    let world = generate(&SynthParams { months: 12, ..SynthParams::small(41) }).unwrap();
    let all = &world.declarations;
    let params = ModelParams {
        n_trees: 60,
        learning_rate: 0.1,
        carry_state: true,
        retrain_every_days: 45,
        train_window_days: 120,
        ..ModelParams::default()
    };
    let run = |df: &DataFrame, s: Option<State>, p: &ModelParams| carry::run(df, &BTreeMap::new(), p, 42, s);

    // First run, no state: trained on its own declarations, all of them scored.
    let jan_aug = months(all, "2023-01", "2023-08");
    let first = run(&jan_aug, None, &params).unwrap();
    assert_eq!(first.retrained.as_deref(), Some("no carried state"));
    assert_eq!(first.trained.scores.height(), jan_aug.height());
    let trained_through = first.trained.model.trained_through.clone().unwrap();
    assert!(trained_through.starts_with("2023-08"), "{trained_through}");

    // Next month: the carried model scores it without retraining (30 days < 45)…
    let sep = months(all, "2023-09", "2023-09");
    let second = run(&sep, Some(state(first)), &params).unwrap();
    assert_eq!(second.retrained, None);
    assert_eq!(second.trained.model.trained_through.as_deref(), Some(trained_through.as_str()));
    assert_eq!(second.trained.scores.height(), sep.height());
    let split = second.trained.scores.column("split").unwrap().str().unwrap().clone();
    assert!(split.iter().all(|s| matches!(s, Some("live" | "unlabelled"))));
    let evaluation = &second.trained.model.evaluation;
    assert!(evaluation.iter().all(|e| e.split != "live"), "the model keeps its held-out figures");
    let live = second.trained.evaluation.column("split").unwrap().str().unwrap().clone();
    assert!(live.iter().any(|s| s == Some("live")), "the carried model is judged on the new labelled rows");
    // The night is one period: its declarations, labelled or not, are ordered 1..=n together, and
    // the inspection list is the first budget-pct of them.
    let order = second.trained.scores.column("selection_order").unwrap().u32().unwrap().clone();
    let mut sorted: Vec<u32> = order.iter().map(Option::unwrap).collect();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=sep.height() as u32).collect::<Vec<_>>());
    let list = &second.trained.inspection_list;
    assert_eq!(list.height(), (params.budget_pct / 100.0 * sep.height() as f64).ceil() as usize);
    let ranks: Vec<u32> = list.column("pick_rank").unwrap().u32().unwrap().iter().map(Option::unwrap).collect();
    assert_eq!(ranks, (1..=list.height() as u32).collect::<Vec<_>>());

    // …and its history is exactly the one a single pass over both periods builds.
    let ab = months(all, "2023-01", "2023-09");
    let mut one_pass = History::new(&features::HISTORY.iter().map(|(k, _)| *k).collect::<Vec<_>>(), params.history_smoothing);
    let texts: Vec<Vec<Option<String>>> = features::HISTORY
        .iter()
        .map(|(_, c)| ab.column(c).unwrap().cast(&DataType::String).unwrap().str().unwrap().iter().map(|v| v.map(str::to_owned)).collect())
        .collect();
    let ids: Vec<Vec<Option<&str>>> = texts.iter().map(|t| t.iter().map(Option::as_deref).collect()).collect();
    let days: Vec<i32> = ab.column("date").unwrap().cast(&DataType::Int32).unwrap().i32().unwrap().iter().map(Option::unwrap).collect();
    let labels: Vec<Option<bool>> =
        ab.column("fraud").unwrap().cast(&DataType::Int8).unwrap().i8().unwrap().iter().map(|v| v.map(|v| v == 1)).collect();
    one_pass.advance(&days, &ids, &labels);
    assert_eq!(json(&second.trained.model.history), json(&one_pass));

    // The window holds the labelled declarations of the last 120 days only.
    let newest = days.iter().copied().max().unwrap();
    assert!(newest >= day("2023-09-01"));
    let window = &second.window;
    let wdays = window.column("date").unwrap().cast(&DataType::Int32).unwrap();
    assert!(wdays.i32().unwrap().iter().flatten().all(|d| d > newest - 120));
    let expected = days.iter().zip(&labels).filter(|(d, l)| l.is_some() && **d > newest - 120).count();
    assert_eq!(window.height(), expected);
    assert!(window.get_column_names().iter().any(|c| c.as_str() == "history:importer_past_fraud_rate"));

    // Two more months later the model is 45+ days old: retrained on window + new rows.
    let oct_nov = months(all, "2023-10", "2023-11");
    let third = run(&oct_nov, Some(state(second)), &params).unwrap();
    assert!(third.retrained.as_deref().unwrap().contains("days before the newest declaration"), "{:?}", third.retrained);
    assert!(third.trained.model.trained_through.as_deref().unwrap() >= "2023-11-01");
    assert_eq!(third.trained.scores.height(), oct_nov.height(), "only the new declarations are scored");
    assert!(third.trained.model.evaluation.iter().any(|e| e.split == "test"));

    // Changing a parameter retrains at once.
    let dec = months(all, "2023-12", "2023-12");
    let changed = ModelParams { min_data_in_leaf: 40, ..params.clone() };
    let fourth = run(&dec, Some(state(third)), &changed).unwrap();
    assert_eq!(fourth.retrained.as_deref(), Some("the model parameters changed"));

    // The same month again is refused: its rows are already in the state.
    let err = run(&dec, Some(state(fourth)), &changed).err().unwrap().to_string();
    assert!(err.contains("on or before"), "{err}");
}

#[test]
fn carried_state_survives_the_files_it_is_saved_in() {
    let world = generate(&SynthParams { months: 7, ..SynthParams::small(43) }).unwrap();
    let params = ModelParams { n_trees: 40, learning_rate: 0.1, carry_state: true, ..ModelParams::default() };
    let first = carry::run(&months(&world.declarations, "2023-01", "2023-05"), &BTreeMap::new(), &params, 42, None).unwrap();

    let dir = tempfile::tempdir().unwrap();
    assert!(carry::load(&carry::Stored::default()).unwrap().is_none(), "no state without a previous run");
    let stored = carry::Stored {
        model: Some(dir.path().join(carry::MODEL_FILE)),
        window: Some(dir.path().join("window.parquet")),
        rules: Some(dir.path().join("rules.parquet")),
        pending: None,
    };
    std::fs::write(stored.model.as_ref().unwrap(), serde_json::to_vec(&first.trained.model).unwrap()).unwrap();
    let mut window = first.window.clone();
    mirador_io::write_parquet(&mut window, stored.window.as_ref().unwrap()).unwrap();
    let no_window = carry::Stored { window: None, ..stored.clone() };
    assert!(carry::load(&no_window).unwrap().is_none(), "a run that carried no window left no state");
    let no_rules = carry::Stored { rules: None, ..stored.clone() };
    let err = carry::load(&no_rules).err().unwrap().to_string();
    assert!(err.contains("fraud_rules"), "a model without its rules is an error: {err}");
    let mut rules = first.trained.rules.clone();
    mirador_io::write_parquet(&mut rules, stored.rules.as_ref().unwrap()).unwrap();

    let loaded = carry::load(&stored).unwrap().unwrap();
    let june = months(&world.declarations, "2023-06", "2023-06");
    let from_files = carry::run(&june, &BTreeMap::new(), &params, 42, Some(loaded)).unwrap();
    let in_memory = carry::run(&june, &BTreeMap::new(), &params, 42, Some(state(first))).unwrap();
    assert_eq!(from_files.retrained, in_memory.retrained);
    assert!(from_files.trained.scores.equals_missing(&in_memory.trained.scores));
    assert!(from_files.window.equals_missing(&in_memory.window));

    // A retrain the window cannot support (three days of labels, then two days of July) leaves the carried model in
    // service, and says why.
    let july = months(&world.declarations, "2023-07", "2023-07");
    let first_days: BooleanChunked = july
        .column("date")
        .unwrap()
        .cast(&DataType::String)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|d| d.is_some_and(|d| d <= "2023-07-02"))
        .collect();
    let july = july.filter(&first_days).unwrap();
    let narrow = ModelParams { train_window_days: 3, ..params.clone() };
    let kept = carry::run(&july, &BTreeMap::new(), &narrow, 42, Some(state(from_files))).unwrap();
    assert_eq!(kept.retrained, None);
    let skipped = kept.retrain_skipped.unwrap();
    assert!(skipped.contains("parameters changed") && skipped.contains("inspected"), "{skipped}");
    assert_eq!(kept.trained.scores.height(), july.height());

    // Fixed split dates make no sense for a moving window.
    let fixed = ModelParams { train_end: Some("2023-03-31".into()), ..params };
    let err = carry::run(&june, &BTreeMap::new(), &fixed, 42, None).err().unwrap().to_string();
    assert!(err.contains("train-end"), "{err}");
}
