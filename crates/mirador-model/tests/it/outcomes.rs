//! Inspection outcomes that arrive after their declarations: they label the declarations of a
//! whole-history run, and, in carried runs, the declarations still in the carried window, whose
//! entity histories count them from then on. Outcomes that find no declaration are listed.

use std::collections::BTreeMap;

use mirador_model::ModelParams;
use mirador_model::carry::{self, Outcome, State};
use mirador_model::outcomes::{Applied, Outcomes};
use mirador_model::pending::{self, PendingDay};
use mirador_model::{ScoreSink, history::History};
use mirador_schema::col;
use mirador_schema::text::Text;
use mirador_synth::{SynthParams, generate};
use polars::prelude::*;

fn months(df: &DataFrame, from: &str, to: &str) -> DataFrame {
    let p = df.column("period").unwrap().str().unwrap().clone();
    let mask: BooleanChunked = p.iter().map(|v| v.is_some_and(|v| v >= from && v <= to)).collect();
    df.filter(&mask).unwrap()
}

fn day(s: &str) -> i32 {
    mirador_schema::day::parse(s).unwrap()
}

/// One outcome row: (declaration id, item, decided on, fraud, critical).
type Row<'a> = (&'a str, i32, &'a str, i8, Option<i8>);

fn feed(rows: &[Row<'_>]) -> DataFrame {
    let decided = Column::new(col::DECIDED_ON.into(), rows.iter().map(|r| day(r.2)).collect::<Vec<i32>>()).cast(&DataType::Date).unwrap();
    DataFrame::new_infer_height(vec![
        Column::new(col::DECLARATION_ID.into(), rows.iter().map(|r| r.0).collect::<Vec<&str>>()),
        Column::new(col::ITEM_NO.into(), rows.iter().map(|r| r.1).collect::<Vec<i32>>()),
        decided,
        Column::new(col::FRAUD.into(), rows.iter().map(|r| r.3).collect::<Vec<i8>>()),
        Column::new(col::CRITICAL_FRAUD.into(), rows.iter().map(|r| r.4).collect::<Vec<Option<i8>>>()),
    ])
    .unwrap()
}

/// (declaration id, item, date as YYYY-MM-DD, label) of every row of `df`.
fn keyed(df: &DataFrame) -> Vec<(String, i32, String, Option<i8>)> {
    let id = df.column(col::DECLARATION_ID).unwrap().str().unwrap().clone();
    let item = df.column(col::ITEM_NO).unwrap().i32().unwrap().clone();
    let date = df.column(col::DATE).unwrap().cast(&DataType::Int32).unwrap();
    let fraud = df.column(col::FRAUD).unwrap().cast(&DataType::Int8).unwrap();
    (0..df.height())
        .map(|i| {
            let d = date.i32().unwrap().get(i).unwrap();
            (id.get(i).unwrap().to_owned(), item.get(i).unwrap(), mirador_schema::day::text(d), fraud.i8().unwrap().get(i))
        })
        .collect()
}

/// The label of goods item (`id`, `item`), which `df` must hold.
fn label_of(df: &DataFrame, id: &str, item: i32) -> Option<i8> {
    keyed(df).into_iter().find(|r| r.0 == id && r.1 == item).unwrap_or_else(|| panic!("{id} item {item} is not in the frame")).3
}

#[test]
fn outcomes_label_a_whole_history_run_and_the_unmatched_are_listed() {
    let world = generate(&SynthParams { months: 3, ..SynthParams::small(7) }).unwrap();
    let rows = keyed(&world.declarations);
    let unlabelled: Vec<_> = rows.iter().filter(|r| r.3.is_none()).take(3).collect();
    let frauds: Vec<_> = rows.iter().filter(|r| r.3 == Some(1)).take(2).collect();
    let clean = rows.iter().find(|r| r.3 == Some(0)).unwrap();
    let later = |r: &(String, i32, String, Option<i8>)| {
        mirador_schema::day::text(day(&r.2) + 40) // decided 40 days after the declaration
    };
    let (u0, u1, u2) = (later(unlabelled[0]), later(unlabelled[1]), later(unlabelled[2]));
    let (f0, f1, c0) = (later(frauds[0]), later(frauds[1]), later(clean));
    let outcomes = feed(&[
        (&unlabelled[0].0, unlabelled[0].1, &u0, 1, Some(1)),
        // Two decisions on one item: the newer one counts.
        (&unlabelled[1].0, unlabelled[1].1, &u1, 1, Some(1)),
        (&unlabelled[1].0, unlabelled[1].1, "2023-01-01", 0, None),
        (&unlabelled[2].0, unlabelled[2].1, &u2, 0, None),
        // An audit clears a declaration found fraudulent at inspection, and confirms another.
        (&frauds[0].0, frauds[0].1, &f0, 0, Some(0)),
        (&frauds[1].0, frauds[1].1, &f1, 1, Some(2)),
        // An audit finds a clean declaration fraudulent.
        (&clean.0, clean.1, &c0, 1, None),
        // Never declared; an item the declaration does not have.
        ("NO-SUCH-ID", 1, "2023-02-01", 1, None),
        (&clean.0, clean.1 + 1000, &c0, 1, None),
    ]);
    let mut o = Outcomes::from_frame(&outcomes).unwrap();
    let labelled = o.labelled(&world.declarations).unwrap();
    assert_eq!(labelled.height(), world.declarations.height());
    assert_eq!(label_of(&labelled, &unlabelled[0].0, unlabelled[0].1), Some(1));
    assert_eq!(label_of(&labelled, &unlabelled[1].0, unlabelled[1].1), Some(1));
    assert_eq!(label_of(&labelled, &unlabelled[2].0, unlabelled[2].1), Some(0));
    assert_eq!(label_of(&labelled, &frauds[0].0, frauds[0].1), Some(0));
    assert_eq!(label_of(&labelled, &clean.0, clean.1), Some(1));
    // Every other row keeps its label.
    let changed = keyed(&world.declarations).iter().zip(keyed(&labelled)).filter(|(a, b)| a.3 != b.3).count();
    assert_eq!(changed, 5);
    // critical_fraud follows the outcome (its own class, or the fraud flag when it gives none).
    let crit = labelled.column(col::CRITICAL_FRAUD).unwrap().cast(&DataType::Int8).unwrap();
    let row = keyed(&labelled).iter().position(|r| r.0 == frauds[1].0 && r.1 == frauds[1].1).unwrap();
    assert_eq!(crit.i8().unwrap().get(row), Some(2));
    assert_eq!(o.applied(), Applied { items: 8, labelled: 3, confirmed: 1, revised: 2, late: 0, unapplied: 2 });

    // The two that found no declaration are listed with the reason.
    let un = o.unapplied_frame().unwrap();
    assert_eq!(un.height(), 2);
    let reasons: Vec<String> = un.column("reason").unwrap().str().unwrap().iter().map(|r| r.unwrap().to_owned()).collect();
    assert!(reasons.iter().any(|r| r.contains("no such goods item")), "{reasons:?}");
    let ids: Vec<&str> = un.column(col::DECLARATION_ID).unwrap().str().unwrap().iter().map(Option::unwrap).collect();
    assert!(ids.contains(&"NO-SUCH-ID"), "{ids:?}");
}

#[test]
fn an_outcome_decided_before_its_declaration_is_not_applied() {
    let world = generate(&SynthParams { months: 2, ..SynthParams::small(8) }).unwrap();
    let r = keyed(&world.declarations).into_iter().find(|r| r.3.is_none()).unwrap();
    let before = mirador_schema::day::text(day(&r.2) - 3);
    let mut o = Outcomes::from_frame(&feed(&[(&r.0, r.1, &before, 1, None)])).unwrap();
    let labelled = o.labelled(&world.declarations).unwrap();
    assert_eq!(label_of(&labelled, &r.0, r.1), None);
    let reason = o.unapplied_frame().unwrap().column("reason").unwrap().str().unwrap().get(0).unwrap().to_owned();
    assert!(reason.contains("before the declaration's date"), "{reason}");
}

/// The state a run leaves, its pending days written to `dir` (as the stage writes them).
fn state(o: Outcome, dir: &std::path::Path) -> State {
    let parts = dir.join("pending");
    o.pending.write(&parts).unwrap();
    State { model: o.trained.model, window: o.window, rules: o.trained.rules, pending: pending::load(&parts).unwrap() }
}

/// Every row of a run's pending days, in one frame.
fn pending_rows(o: &Outcome) -> DataFrame {
    let mut all: Option<DataFrame> = None;
    for (_, d) in &o.pending.days {
        let df = d.frame().unwrap();
        match all.as_mut() {
            Some(a) => {
                a.vstack_mut(&df).unwrap();
            }
            None => all = Some(df),
        }
    }
    all.unwrap()
}

fn stats(h: &History, kind: usize, id: &str) -> (u32, u32, u32) {
    let s = h.entities[kind].get(id).copied().unwrap_or_default();
    (s.seen, s.inspected, s.fraud)
}

#[test]
fn a_late_outcome_labels_the_carried_window_and_counts_from_then_on() {
    let world = generate(&SynthParams { months: 10, ..SynthParams::small(43) }).unwrap();
    let all = &world.declarations;
    let params = ModelParams {
        n_trees: 40,
        carry_state: true,
        retrain_every_days: 400,
        train_window_days: 120,
        label_wait_days: 60,
        ..ModelParams::default()
    };
    let jan_aug = months(all, "2023-01", "2023-08");
    let sep = months(all, "2023-09", "2023-09");
    let first = carry::run(&jan_aug, &BTreeMap::new(), &params, 42, None).unwrap();
    // The training window keeps labelled declarations; the unlabelled ones of the last 60 days
    // (August's, not January's) wait apart, one frame per day.
    let window = keyed(&first.window);
    assert!(window.iter().all(|r| r.3.is_some()));
    assert!(window.iter().any(|r| r.2.starts_with("2023-05")));
    let pending = keyed(&pending_rows(&first));
    assert!(pending.iter().all(|r| r.3.is_none()));
    assert!(pending.iter().any(|r| r.2.starts_with("2023-08")));
    assert!(!pending.iter().any(|r| r.2.starts_with("2023-01")));
    assert!(first.pending.days.iter().all(|(d, p)| matches!(p, PendingDay::Rows(df) if keyed(df).iter().all(|r| day(&r.2) == *d))));

    // September's feed decides five of August's waiting declarations, one of January's (too old
    // to be waited for) and one of September's own.
    let waiting: Vec<_> = pending.iter().filter(|r| r.2.starts_with("2023-08")).take(5).cloned().collect();
    let january = keyed(&jan_aug).into_iter().find(|r| r.3.is_none() && r.2.starts_with("2023-01")).unwrap();
    // (One of the last day's, so that no later row of the night sees its label either.)
    let own = keyed(&sep).into_iter().filter(|r| r.3.is_none()).max_by(|a, b| a.2.cmp(&b.2)).unwrap();
    let mut rows: Vec<Row<'_>> =
        waiting.iter().enumerate().map(|(k, r)| (r.0.as_str(), r.1, "2023-09-10", i8::from(k < 3), None)).collect();
    rows.push((&january.0, january.1, "2023-09-12", 1, None));
    rows.push((&own.0, own.1, "2023-09-30", 1, None));
    let outcomes_feed = feed(&rows);

    let continue_with = |o: &mut Outcomes| {
        let first = carry::run(&jan_aug, &BTreeMap::new(), &params, 42, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let next = carry::run_to(&sep, &BTreeMap::new(), o, &params, 42, Some(state(first, dir.path())), &mut ScoreSink::Collect);
        // The pending days the next run carries unchanged are the files written here.
        let next = next.unwrap();
        let unchanged = next.pending.days.iter().filter(|(_, p)| matches!(p, PendingDay::Unchanged(_))).count();
        (next, unchanged, dir)
    };
    let mut o = Outcomes::from_frame(&outcomes_feed).unwrap();
    let (with, unchanged_with, _d1) = continue_with(&mut o);
    let (without, unchanged_without, _d2) = continue_with(&mut Outcomes::none());
    // Only the days an outcome reached were read whole and written again.
    assert!(unchanged_with > 0 && unchanged_with < unchanged_without, "{unchanged_with} against {unchanged_without}");
    assert_eq!(o.applied(), Applied { items: 7, labelled: 6, confirmed: 0, revised: 0, late: 5, unapplied: 1 });
    let un = o.unapplied_frame().unwrap();
    assert_eq!(un.column(col::DECLARATION_ID).unwrap().str().unwrap().get(0), Some(january.0.as_str()));

    // The decided rows leave the pending days for the training window, and so for retraining.
    let still_waiting = keyed(&pending_rows(&with));
    for (k, r) in waiting.iter().enumerate() {
        assert_eq!(label_of(&with.window, &r.0, r.1), Some(i8::from(k < 3)), "{r:?}");
        assert!(!still_waiting.iter().any(|w| w.0 == r.0 && w.1 == r.1), "{r:?}");
        assert_eq!(label_of(&pending_rows(&without), &r.0, r.1), None);
    }
    // (September's own decided row never waits.)
    assert_eq!(still_waiting.len() + 6, keyed(&pending_rows(&without)).len());
    assert_eq!(label_of(&with.window, &own.0, own.1), Some(1));

    // The histories count the late labels from now on: five more inspections, three more frauds
    // (and September's own row, labelled on arrival), while September's rows were scored on
    // the same history features as without the feed, since none of them preceded the outcome.
    let (h_with, h_without) = (&with.trained.model.history, &without.trained.model.history);
    assert_eq!(h_with.global.inspected, h_without.global.inspected + 6);
    assert_eq!(h_with.global.fraud, h_without.global.fraud + 4);
    let first_waiting = keyed(&jan_aug).iter().position(|r| r.0 == waiting[0].0 && r.1 == waiting[0].1).unwrap();
    let importers = Text::column(&jan_aug, col::IMPORTER_ID).unwrap();
    let id = importers.iter().nth(first_waiting).flatten().unwrap().to_owned();
    let (seen_w, inspected_w, fraud_w) = stats(h_with, 0, &id);
    let (seen_o, inspected_o, fraud_o) = stats(h_without, 0, &id);
    assert_eq!(seen_w, seen_o);
    assert!(inspected_w > inspected_o && fraud_w > fraud_o, "{id}: {inspected_w}/{fraud_w} against {inspected_o}/{fraud_o}");
    let probability = |t: &Outcome| t.trained.scores.column("fraud_probability").unwrap().f64().unwrap().iter().collect::<Vec<_>>();
    let (p_with, p_without) = (probability(&with), probability(&without));
    assert_eq!(p_with.len(), sep.height());
    let differ = p_with.iter().zip(&p_without).filter(|(a, b)| a != b).count();
    assert_eq!(differ, 0, "{differ} of September's scores moved");
}

#[test]
fn without_label_wait_days_late_outcomes_for_unlabelled_rows_are_listed() {
    let world = generate(&SynthParams { months: 9, ..SynthParams::small(44) }).unwrap();
    let params = ModelParams { n_trees: 30, carry_state: true, retrain_every_days: 400, train_window_days: 120, ..ModelParams::default() };
    let jan_aug = months(&world.declarations, "2023-01", "2023-08");
    let first = carry::run(&jan_aug, &BTreeMap::new(), &params, 42, None).unwrap();
    assert!(keyed(&first.window).iter().all(|r| r.3.is_some()));
    let waiting = keyed(&jan_aug).into_iter().rev().find(|r| r.3.is_none()).unwrap();
    let labelled = keyed(&first.window).into_iter().last().unwrap();
    let flipped = 1 - labelled.3.unwrap();
    let mut o = Outcomes::from_frame(&feed(&[
        (&waiting.0, waiting.1, "2023-09-05", 1, None),
        (&labelled.0, labelled.1, "2023-09-05", flipped, None),
    ]))
    .unwrap();
    let sep = months(&world.declarations, "2023-09", "2023-09");
    let dir = tempfile::tempdir().unwrap();
    let second =
        carry::run_to(&sep, &BTreeMap::new(), &mut o, &params, 42, Some(state(first, dir.path())), &mut ScoreSink::Collect).unwrap();
    // The labelled window row is revised; the unlabelled one was not kept, so its outcome is listed.
    assert_eq!(o.applied(), Applied { items: 2, labelled: 0, confirmed: 0, revised: 1, late: 1, unapplied: 1 });
    assert_eq!(label_of(&second.window, &labelled.0, labelled.1), Some(flipped));
}
