//! Carried peers: a thin period scored with the peers earlier runs kept finds its planted
//! undervaluation as one pass over all months would, and better than alone; the kept peers stay
//! bounded.

use mirador_kmeans::{KMeansParams, score_declarations, score_with_peers};
use mirador_synth::{SynthParams, generate};
use polars::prelude::*;

fn between(df: &DataFrame, from: &str, to: &str) -> BooleanChunked {
    let d = df.column("date").unwrap().cast(&DataType::String).unwrap();
    d.str().unwrap().iter().map(|v| v.is_some_and(|v| v >= from && v < to)).collect()
}

fn recall(scores: &DataFrame, planted: &[bool]) -> f64 {
    let s: Vec<f64> = scores.column("undervaluation_score").unwrap().f64().unwrap().iter().map(|s| s.unwrap_or(0.0)).collect();
    mirador_metrics::top_share(&s, planted, &vec![1.0; s.len()], 5.0).unwrap().recall
}

fn level_share(scores: &DataFrame, level: &str) -> f64 {
    let l = scores.column("group_level").unwrap().str().unwrap().clone();
    l.iter().filter(|v| *v == Some(level)).count() as f64 / l.len() as f64
}

#[test]
fn a_thin_night_scored_with_carried_peers_matches_one_pass_over_all_months() {
    let world = generate(&SynthParams { declarations: 120_000, months: 12, ..SynthParams::small(17) }).unwrap();
    let all = &world.declarations;
    let kind = world.truth.declarations.column("fraud_kind").unwrap().str().unwrap().clone();
    let past_mask = between(all, "2023-01-01", "2023-07-22");
    let night_mask = between(all, "2023-07-22", "2023-08-01");
    let past = all.filter(&past_mask).unwrap();
    let night = all.filter(&night_mask).unwrap();
    let planted: Vec<bool> =
        kind.iter().zip(night_mask.iter()).filter(|(_, m)| *m == Some(true)).map(|(k, _)| k == Some("undervaluation")).collect();
    assert!(planted.iter().filter(|p| **p).count() >= 20, "enough planted undervaluation in the night to measure");

    let params = KMeansParams { carry_state: true, ..KMeansParams::default() };
    let (_, kept) = score_with_peers(&past, None, &params, 42).unwrap();
    let (with_peers, next) = score_with_peers(&night, Some(&kept), &params, 42).unwrap();
    let alone = score_declarations(&night, &params, 42).unwrap();
    assert_eq!(with_peers.scores.height(), night.height(), "only the night is scored");

    // One pass over past + night, restricted to the night's rows.
    let both = past.vstack(&night).unwrap();
    let one_pass = score_declarations(&both, &params, 42).unwrap();
    let one_pass_night = one_pass.scores.slice(past.height() as i64, night.height());

    let (r_peers, r_alone, r_one) =
        (recall(&with_peers.scores, &planted), recall(&alone.scores, &planted), recall(&one_pass_night, &planted));
    let (l_peers, l_alone) = (level_share(&with_peers.scores, "hs6_origin"), level_share(&alone.scores, "hs6_origin"));
    eprintln!(
        "recall@5%: with peers {r_peers:.3}, alone {r_alone:.3}, one pass {r_one:.3}; hs6×origin groups: {l_peers:.3} vs {l_alone:.3}"
    );
    assert!(l_peers > l_alone + 0.1, "carried peers let the night use its finest peer groups ({l_peers:.3} vs {l_alone:.3})");
    assert!(r_peers >= r_one - 0.05, "with peers {r_peers:.3} vs one pass {r_one:.3}");
    assert!(r_peers > r_alone, "with peers {r_peers:.3} vs alone {r_alone:.3}");

    // The kept peers are bounded: the window and the per-group cap.
    let capped = KMeansParams { max_peers_per_group: 25, peer_window_days: 30, ..params.clone() };
    let (_, small) = score_with_peers(&night, Some(&kept), &capped, 42).unwrap();
    let mut per_group = std::collections::HashMap::<(String, String), usize>::new();
    let (hs6, origin) = (small.column("hs6").unwrap().str().unwrap(), small.column("origin_country").unwrap().str().unwrap());
    for (h, o) in hs6.iter().zip(origin.iter()) {
        *per_group.entry((h.unwrap_or_default().to_owned(), o.unwrap_or_default().to_owned())).or_default() += 1;
    }
    assert!(per_group.values().all(|&n| n <= 25));
    let newest = night.column("date").unwrap().cast(&DataType::Int32).unwrap().i32().unwrap().max().unwrap();
    assert!(small.column("day").unwrap().i32().unwrap().iter().flatten().all(|d| d > newest - 30));
    assert!(next.height() >= small.height());
}
