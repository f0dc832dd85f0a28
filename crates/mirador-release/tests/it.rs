//! The `release_time` stage on a synthetic world against its planted truth, and on declarations
//! without release times.

use mirador_pipeline::{Stage, StageContext};
use mirador_release::ReleaseTime;
use mirador_schema::{col, datasets};
use mirador_synth::{SynthParams, generate, release};
use polars::prelude::*;

fn run(declarations: DataFrame, params: &str) -> mirador_pipeline::StageOutput {
    let dir = tempfile_dir();
    let ctx = StageContext::standalone("release_time", &dir)
        .with_input(datasets::DECLARATIONS, declarations)
        .with_params(params.parse().unwrap());
    ReleaseTime.run(&ctx).unwrap()
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mirador-release-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn dataset<'o>(out: &'o mirador_pipeline::StageOutput, id: &str) -> &'o DataFrame {
    &out.datasets.iter().find(|(d, _)| *d == id).unwrap().1
}

fn strs(df: &DataFrame, c: &str) -> Vec<String> {
    df.column(c).unwrap().str().unwrap().iter().map(|v| v.unwrap().to_owned()).collect()
}

fn nums(df: &DataFrame, c: &str) -> Vec<f64> {
    df.column(c).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect()
}

#[test]
fn the_planted_slow_office_and_lane_are_the_top_flagged_with_their_medians() {
    for seed in [3, 11] {
        let world = generate(&SynthParams::small(seed)).unwrap();
        let (times, truth) = release::release_times(&world.declarations, seed).unwrap();
        let declarations = world.declarations.hstack(times.columns()).unwrap();
        let out = run(declarations, "");
        let b = dataset(&out, datasets::RELEASE_BREACHES);
        let (dim, group, breach, median) =
            (strs(b, "dimension"), strs(b, "group"), b.column("breach").unwrap().bool().unwrap().clone(), nums(b, "median_hours"));
        for (d, planted, medians) in
            [("office", &truth.slow_office, &truth.office_median_hours), ("lane", &truth.slow_lane, &truth.lane_median_hours)]
        {
            let top = (0..b.height()).find(|&i| dim[i] == d).unwrap();
            assert_eq!(&group[top], planted, "seed {seed}: top {d}");
            assert_eq!(breach.get(top), Some(true));
            let want = medians[planted];
            assert!((median[top] / want - 1.0).abs() < 0.05, "seed {seed}: {d} {planted} median {} h, planted {want} h", median[top]);
            // Only the planted group breaches the default service level.
            let flagged = (0..b.height()).filter(|&i| dim[i] == d && breach.get(i) == Some(true)).count();
            assert_eq!(flagged, 1, "seed {seed}: {d}");
        }
        // Every office's measured median is near its planted one.
        for (office, want) in &truth.office_median_hours {
            let i = (0..b.height()).find(|&i| dim[i] == "office" && &group[i] == office).unwrap();
            assert!((median[i] / want - 1.0).abs() < 0.05, "seed {seed}: office {office} {} vs {want}", median[i]);
        }
        // The steps' shares add up to one, per group.
        let s = dataset(&out, datasets::RELEASE_STEPS);
        let (sd, sg, share) = (strs(s, "dimension"), strs(s, "group"), nums(s, "share"));
        let mut sums: std::collections::BTreeMap<(String, String), f64> = Default::default();
        for i in 0..s.height() {
            *sums.entry((sd[i].clone(), sg[i].clone())).or_default() += share[i];
        }
        assert!(sums.len() > 5 && sums.values().all(|v| (v - 1.0).abs() < 1e-9), "{sums:?}");
        // Every dimension has distributions; p90 is never below the median.
        let iv = dataset(&out, datasets::RELEASE_INTERVALS);
        let dims = strs(iv, "dimension");
        for d in mirador_release::DIMENSIONS {
            assert!(dims.iter().any(|x| x == d), "{d}");
        }
        let (m, p) = (nums(iv, "median_hours"), nums(iv, "p90_hours"));
        assert!(m.iter().zip(&p).all(|(m, p)| p >= m));
        assert_eq!(out.metrics["worst_office"], serde_json::json!(truth.slow_office));
        assert!(out.metrics.get("skipped").is_none());
    }
}

#[test]
fn a_stricter_service_level_flags_more_groups() {
    let world = generate(&SynthParams { declarations: 6_000, ..SynthParams::small(5) }).unwrap();
    let (times, _) = release::release_times(&world.declarations, 5).unwrap();
    let declarations = world.declarations.hstack(times.columns()).unwrap();
    let count = |params: &str| {
        let out = run(declarations.clone(), params);
        let b = dataset(&out, datasets::RELEASE_BREACHES);
        b.column("breach").unwrap().bool().unwrap().sum().unwrap_or(0)
    };
    let (default, strict) = (count(""), count("service-level-hours = 1.0"));
    assert!(strict > default, "{strict} vs {default}");
    assert_eq!(strict, 5 + 3, "every office and lane breaches a 1-hour median");
}

#[test]
fn declarations_without_release_times_skip_the_stage_with_a_note() {
    let world = generate(&SynthParams { declarations: 2_000, ..SynthParams::small(2) }).unwrap();
    let n = world.declarations.height();
    let out = run(world.declarations.clone(), "");
    let note = out.metrics["skipped"].as_str().unwrap();
    assert!(note.contains("no release times") && note.contains(col::ARRIVED_AT), "{note}");
    assert_eq!(out.metrics["unmeasured"], serde_json::json!(n));
    for id in [datasets::RELEASE_INTERVALS, datasets::RELEASE_BREACHES, datasets::RELEASE_STEPS] {
        assert_eq!(dataset(&out, id).height(), 0, "{id}");
        assert!(dataset(&out, id).width() > 3, "{id} keeps its columns");
    }
    // Columns present but every time null: skipped too, saying so.
    let nulls = |name: &str| Column::full_null(name.into(), n, &DataType::Int64);
    let empty = world.declarations.hstack(&[nulls(col::ARRIVED_AT), nulls(col::LODGED_AT), nulls(col::RELEASED_AT)]).unwrap();
    let out = run(empty, "");
    assert!(out.metrics["skipped"].as_str().unwrap().contains("none of the"));
}

#[test]
fn bad_parameters_are_refused_before_any_data_is_read() {
    for bad in ["service-level-hours = 0.0", "p90-service-level-hours = -3.0", "min-declarations = 0", "unknown = 1"] {
        let err = ReleaseTime.check_params(&bad.parse().unwrap()).unwrap_err().to_string();
        assert!(err.contains("release_time"), "{err}");
    }
    assert!(ReleaseTime.check_params(&"service-level-hours = 48.0".parse().unwrap()).is_ok());
}
