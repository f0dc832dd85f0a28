//! The public KCS declarations, run unchanged through `pipelines/kcs.toml`'s column mapping.

use std::path::Path;

use mirador_ingest::{IngestParams, ingest_sources};
use mirador_pipeline::PipelineFile;

#[test]
fn every_kcs_row_is_accepted_or_explained() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let data = root.join("../shared/datasets/kcs-synthetic/df_syn_train_eng.csv");
    if !data.is_file() {
        eprintln!("skipped: the public KCS data are not at {}", data.display());
        return;
    }
    let file = PipelineFile::load(&root.join("pipelines/kcs.toml")).unwrap();
    let spec = &file.stages[0];
    let (table, _) = file.stage_params(spec).unwrap();
    let params: IngestParams = toml::Value::Table(table).try_into().unwrap();
    let out = ingest_sources(&file.sources, &file.base_dir, &params).unwrap();
    let r = out.reconciliation["declarations"];
    assert_eq!(r.rows_in, 54_000);
    assert_eq!(r.rows_in, r.accepted + r.quarantined);
    // Every quarantined row must be explained by a known reason.
    assert_eq!(out.quarantine.height(), r.quarantined);
    assert!(r.accepted == 54_000, "quarantined: {:?}", out.reasons);
    let fraud = out.declarations.column("fraud").unwrap();
    assert_eq!(fraud.null_count(), 0);
}
