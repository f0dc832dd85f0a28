//! The auditee list against the synthetic world's truth. On the sample world (seed 42) and on a
//! world of another seed, the importers in the top 5 % of the list hold at least 0.75 × the
//! oracle order's share of all planted lost duty, and at least the duty-paid order's share + 0.15.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cli::{mirador, repo};

/// The run's `auditee_evaluation`: policy → (top % → share of lost duty).
pub(crate) fn capture(latest: &Path) -> BTreeMap<String, BTreeMap<u32, f64>> {
    let e = mirador_io::read_parquet(&latest.join("auditee_evaluation.parquet")).unwrap();
    let (policy, pct, share) = (
        e.column("policy").unwrap().str().unwrap().clone(),
        e.column("top_pct").unwrap().f64().unwrap().clone(),
        e.column("share_of_lost_duty").unwrap().f64().unwrap().clone(),
    );
    let mut out: BTreeMap<String, BTreeMap<u32, f64>> = BTreeMap::new();
    for i in 0..e.height() {
        out.entry(policy.get(i).unwrap().to_owned()).or_default().insert(pct.get(i).unwrap() as u32, share.get(i).unwrap());
    }
    out
}

/// Asserts the bar on a run's evaluation, and that the measure itself is sane.
pub(crate) fn assert_the_list_earns_its_place(latest: &Path, world: &str) {
    let c = capture(latest);
    let table: Vec<String> = c.iter().map(|(p, s)| format!("{p}: {s:?}")).collect();
    eprintln!("{world}: {}", table.join("; "));
    assert_eq!(c.keys().map(String::as_str).collect::<Vec<_>>(), ["declared_value", "duty_paid", "list", "oracle", "random"]);
    for (policy, curve) in &c {
        assert_eq!(curve.keys().copied().collect::<Vec<_>>(), [1, 5, 10, 20], "{policy}");
        let shares: Vec<f64> = curve.values().copied().collect();
        assert!(shares.windows(2).all(|w| w[0] <= w[1]), "{world} {policy}: a longer head holds no less: {shares:?}");
        for (pct, s) in curve {
            assert!(*s <= c["oracle"][pct] + 1e-12, "{world} {policy} at {pct} %: no order beats the oracle");
        }
    }
    let (list, oracle, duty_paid) = (c["list"][&5], c["oracle"][&5], c["duty_paid"][&5]);
    assert!(list >= 0.75 * oracle, "{world}: top 5 % hold {list:.3}, below 0.75 × the oracle's {oracle:.3}");
    assert!(list >= duty_paid + 0.15, "{world}: top 5 % hold {list:.3}, below the duty-paid order's {duty_paid:.3} + 0.15");
}

#[test]
fn the_auditee_list_earns_its_place_on_a_world_of_another_seed() {
    let dir = tempfile::tempdir().unwrap();
    let world = dir.path().join("world");
    let o = mirador(&["-q", "synth", "--seed", "7", "--out", world.to_str().unwrap()], &repo());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The nightly pipeline, reading the seed-7 world instead of the sample data.
    let repo = repo();
    let text = std::fs::read_to_string(repo.join("pipelines/nightly.toml"))
        .unwrap()
        .replace("\"../sample_data/", &format!("\"{}/", world.display()))
        .replace("\"params/", &format!("\"{}/pipelines/params/", repo.display()));
    let pipeline = dir.path().join("nightly.toml");
    std::fs::write(&pipeline, text).unwrap();
    let out = dir.path().join("out");
    let o = mirador(&["-q", "run", pipeline.to_str().unwrap(), "--out", out.to_str().unwrap()], &repo);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_the_list_earns_its_place(&out.join("latest"), "seed 7");
}
