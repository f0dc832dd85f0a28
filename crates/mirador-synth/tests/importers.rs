//! The truth per importer: what each importer's planted fraud lost, the auditee list's yardstick.

use std::collections::HashMap;

use mirador_synth::{SynthParams, generate};

#[test]
fn truth_per_importer_adds_up_its_declarations_and_follows_riskiness() {
    for seed in [3, 11] {
        let world = generate(&SynthParams { declarations: 8_000, ..SynthParams::small(seed) }).unwrap();
        let (d, t, imp) = (&world.declarations, &world.truth.declarations, &world.truth.importers);
        // The same items in the same order: each item's lost duty goes to its importer.
        let ids = d.column("importer_id").unwrap().str().unwrap();
        let lost = t.column("planted_lost_duty_usd").unwrap().f64().unwrap();
        let mut expect: HashMap<&str, (u32, f64)> = HashMap::new();
        for (id, l) in ids.iter().zip(lost.iter()) {
            let e = expect.entry(id.unwrap()).or_default();
            e.0 += 1;
            e.1 += l.unwrap();
        }
        assert_eq!(imp.height(), expect.len());
        let names = imp.column("importer_id").unwrap().str().unwrap();
        let items = imp.column("declarations").unwrap().u32().unwrap();
        let duty = imp.column("planted_lost_duty_usd").unwrap().f64().unwrap();
        let high = imp.column("high_risk").unwrap().bool().unwrap();
        let mut by_risk = [(0.0, 0u32); 2];
        for i in 0..imp.height() {
            let (n, l) = expect[names.get(i).unwrap()];
            assert_eq!(items.get(i), Some(n));
            assert!((duty.get(i).unwrap() - l).abs() <= 1e-6 * l.max(1.0));
            let r = &mut by_risk[usize::from(high.get(i).unwrap())];
            r.0 += l;
            r.1 += n;
        }
        // High-risk importers plant fraud far more often: far more lost duty per item.
        let per_item = |r: (f64, u32)| r.0 / f64::from(r.1);
        assert!(per_item(by_risk[1]) > 5.0 * per_item(by_risk[0]), "seed {seed}: {by_risk:?}");
        assert!(names.iter().zip(names.iter().skip(1)).all(|(a, b)| a < b), "importers in id order");
    }
}

#[test]
fn truth_per_item_keys_every_item_once_with_its_lost_duty() {
    let world = generate(&SynthParams { declarations: 4_000, ..SynthParams::small(5) }).unwrap();
    let t = &world.truth.declarations;
    let by_item = world.truth.lost_duty_by_item().unwrap();
    assert_eq!(by_item.len(), t.height(), "one entry per item, no key twice");
    let (ids, items) = (t.column("declaration_id").unwrap().str().unwrap(), t.column("item_no").unwrap().i32().unwrap());
    let lost = t.column("planted_lost_duty_usd").unwrap().f64().unwrap();
    for i in 0..t.height() {
        let key = (ids.get(i).unwrap().to_owned(), i64::from(items.get(i).unwrap()));
        assert_eq!(by_item[&key], lost.get(i).unwrap());
    }
    assert!(by_item.values().any(|&l| l > 0.0) && by_item.values().any(|&l| l == 0.0));
}
