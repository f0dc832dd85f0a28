//! The shifting world: fraud that moves to new importers and new goods from a chosen month, with
//! the truth saying which; and the world without the shift unchanged, byte for byte.

use mirador_schema::col;
use mirador_synth::{Format, ShiftParams, SynthParams, generate, write_world};
use polars::prelude::*;

fn shifting(seed: u64) -> SynthParams {
    SynthParams { shift: Some(ShiftParams { period: "2023-07".into(), share: 0.6 }), ..SynthParams::small(seed) }
}

/// The bundled sample data is the default world of seed 42: with the shift option present but
/// off, writing it again gives the same files, byte for byte.
#[test]
fn without_the_shift_the_sample_world_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    write_world(&SynthParams::default(), dir.path(), Format::Csv).unwrap();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample_data");
    for file in ["declarations.csv", "truth_declarations.csv", "tariffs.csv", "mirror_flows.csv", "inspection_outcomes.csv", "world.json"] {
        let ours = std::fs::read(dir.path().join(file)).unwrap();
        let bundled = std::fs::read(sample.join(file)).unwrap();
        assert!(ours == bundled, "{file} differs from sample_data/{file}");
    }
}

fn column_f64(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap_or(0.0)).collect()
}

fn column_str(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name).unwrap().cast(&DataType::String).unwrap().str().unwrap().iter().map(|v| v.unwrap_or("").to_owned()).collect()
}

#[test]
fn before_the_shift_month_the_world_is_the_same() {
    let plain = generate(&SynthParams::small(5)).unwrap();
    let shifted = generate(&shifting(5)).unwrap();
    let before = |df: &DataFrame| {
        let period = column_str(df, col::PERIOD);
        let mask: BooleanChunked = period.iter().map(|p| p.as_str() < "2023-07").collect();
        df.filter(&mask).unwrap()
    };
    let (a, b) = (before(&plain.declarations), before(&shifted.declarations));
    assert!(a.height() > 5_000);
    assert!(a.equals_missing(&b), "declarations before the shift month differ");
    assert!(plain.truth.declarations.column("shifted").is_err(), "the truth of a world without shift has no `shifted` column");
}

#[test]
fn fraud_moves_to_new_importers_and_new_goods_with_its_truth() {
    for seed in [3, 11] {
        let world = generate(&shifting(seed)).unwrap();
        let (d, t) = (&world.declarations, &world.truth.declarations);
        let period = column_str(d, col::PERIOD);
        let importer = column_str(d, col::IMPORTER_ID);
        let hs6 = column_str(d, col::HS6);
        let kind = column_str(t, "fraud_kind");
        let lost = column_f64(t, "planted_lost_duty_usd");
        let shifted: Vec<bool> = t.column("shifted").unwrap().bool().unwrap().iter().map(|v| v.unwrap()).collect();
        let after = |i: usize| period[i].as_str() >= "2023-07";
        // Shifted items: only from the shift month, by importers never seen before it.
        let old_importers: std::collections::HashSet<&str> = (0..d.height()).filter(|&i| !after(i)).map(|i| importer[i].as_str()).collect();
        let old_goods: std::collections::HashSet<&str> = (0..d.height()).filter(|&i| !after(i)).map(|i| hs6[i].as_str()).collect();
        let moved: Vec<usize> = (0..d.height()).filter(|&i| shifted[i]).collect();
        assert!(!moved.is_empty());
        assert!(moved.iter().all(|&i| after(i) && !old_importers.contains(importer[i].as_str())), "seed {seed}");
        let new_goods = moved.iter().filter(|&&i| !old_goods.contains(hs6[i].as_str())).count();
        assert!(new_goods * 2 > moved.len(), "seed {seed}: most moved items declare new goods ({new_goods} of {})", moved.len());
        // After the shift, the moved fraud holds a large part of the planted lost duty, and the
        // share of fraudulent items among the old importers falls.
        let lost_after: f64 = (0..d.height()).filter(|&i| after(i)).map(|i| lost[i]).sum();
        let lost_moved: f64 = moved.iter().map(|&i| lost[i]).sum();
        assert!(lost_moved > 0.3 * lost_after, "seed {seed}: moved {lost_moved} of {lost_after}");
        let rate = |rows: &mut dyn Iterator<Item = usize>| {
            let (mut n, mut f) = (0.0, 0.0);
            for i in rows {
                n += 1.0;
                f += f64::from(u8::from(kind[i] != "none"));
            }
            f / n
        };
        let old_before = rate(&mut (0..d.height()).filter(|&i| !after(i)));
        let old_after = rate(&mut (0..d.height()).filter(|&i| after(i) && !shifted[i]));
        assert!(old_after < 0.6 * old_before, "seed {seed}: old importers' fraud rate {old_before} -> {old_after}");
        // The entrants are in the importer truth as high-risk.
        let imp_truth = &world.truth.importers;
        let ids = column_str(imp_truth, col::IMPORTER_ID);
        let high: Vec<bool> = imp_truth.column("high_risk").unwrap().bool().unwrap().iter().map(|v| v.unwrap()).collect();
        let entrant = importer[moved[0]].as_str();
        assert!(ids.iter().zip(&high).any(|(id, h)| id == entrant && *h));
    }
}

#[test]
fn a_shift_outside_the_world_is_refused() {
    for (period, share) in [("2023-01", 0.5), ("2024-01", 0.5), ("2023-13", 0.5), ("july", 0.5), ("2023-06", 1.5)] {
        let params = SynthParams { shift: Some(ShiftParams { period: period.into(), share }), ..SynthParams::small(1) };
        let err = generate(&params).err().expect("refused");
        assert!(err.to_string().contains("shift"), "{period} {share}: {err}");
    }
}
