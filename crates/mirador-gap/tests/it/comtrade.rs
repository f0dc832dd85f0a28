//! Real data: UN Comtrade HS 440799 flows, all reporters, read through pipelines/comtrade.toml.

use std::path::Path;

use mirador_gap::{GapParams, Pair, analyse, median_ratio};
use mirador_ingest::{IngestParams, ingest_sources};
use mirador_pipeline::PipelineFile;
use mirador_schema::catalog::gap_by_cell;

fn pipeline() -> Option<PipelineFile> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/comtrade.toml");
    let file = PipelineFile::load(&path).unwrap();
    let data = file.base_dir.join(&file.sources["mirror_flows"].paths[0]);
    if data.exists() {
        Some(file)
    } else {
        eprintln!("skipping: {} is not present", data.display());
        None
    }
}

#[test]
fn comtrade_pairs_give_a_plausible_cif_fob_factor() {
    let Some(file) = pipeline() else { return };
    let ingested = ingest_sources(&file.sources, &file.base_dir, &IngestParams { hs_lengths: vec![6], ..Default::default() }).unwrap();
    let rec = &ingested.reconciliation["mirror_flows"];
    assert_eq!(rec.rows_in, 52_169, "every Comtrade row is read");
    assert_eq!(rec.rows_in, rec.accepted + rec.quarantined);

    let spec = file.stages.iter().find(|s| s.name == "revenue_gap").unwrap();
    let stage_params: GapParams = toml::Value::Table(file.stage_params(spec).unwrap().0).try_into().unwrap();
    let r = analyse(&ingested.declarations, &ingested.mirror_flows, &ingested.tariffs, &stage_params).unwrap();

    // Pairs of imports with the partner's exports, as the stage matched them.
    let imp = r.by_cell.column(gap_by_cell::DECLARED_VALUE_USD).unwrap().f64().unwrap().clone();
    let fob = r.by_cell.column(gap_by_cell::MIRROR_FOB_USD).unwrap().f64().unwrap().clone();
    let partner = r.by_cell.column("partner").unwrap().str().unwrap().clone();
    let pairs: Vec<Pair<'_>> = (0..r.by_cell.height())
        .filter_map(|i| {
            let (d, m) = (imp.get(i)?, fob.get(i)?);
            (d > 0.0 && m > 0.0).then(|| Pair { partner: partner.get(i).unwrap_or(""), import_cif: d, export_fob: m })
        })
        .collect();
    assert!(pairs.len() > 10_000, "{} import/export pairs", pairs.len());
    let median = median_ratio(&pairs, 1_000_000.0).unwrap();
    assert!((1.03..=1.10).contains(&median), "median CIF/FOB of pairs above USD 1 M: {median:.4}");
    // The stage's own pooled estimate lands in the same range.
    let pooled = r.factors.pooled.factor;
    assert!((1.03..=1.10).contains(&pooled), "pooled estimate {pooled:.4}");

    // Comtrade reports each year in the vintage of the time (H2, H3, H4…): with the analysis set to
    // HS 2012 (H4), cells reported in older vintages are flagged, and H4 cells are not.
    let h4 = GapParams { hs_vintage: Some("H4".into()), ..stage_params.clone() };
    let r4 = analyse(&ingested.declarations, &ingested.mirror_flows, &ingested.tariffs, &h4).unwrap();
    let flags = r4.by_cell.column(gap_by_cell::FLAGS).unwrap().str().unwrap().clone();
    let flagged = flags.iter().filter(|f| f.is_some_and(|f| f.contains("hs_vintage_not_configured"))).count();
    assert!(flagged > 0 && flagged < r4.by_cell.height(), "{flagged} of {} cells flagged", r4.by_cell.height());

    // Small, noisy flows do not dominate the ranking: the top of gap_by_cell is material.
    let material = r.by_cell.column("material").unwrap().bool().unwrap().clone();
    assert!(material.iter().take(50).all(|m| m == Some(true)));
}
