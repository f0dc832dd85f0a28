use mirador_pipeline::DatasetChecks;
use std::collections::BTreeMap;
use std::sync::Arc;
fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let decl = Arc::new(mirador_io::read_parquet(&dir.join("declarations.parquet")).unwrap());
    let km = mirador_io::read_parquet(&dir.join("kmeans_scores.parquet")).unwrap();
    let available = BTreeMap::from([("declarations".to_owned(), Arc::clone(&decl))]);
    let mk = |s: &str| -> DatasetChecks { toml::from_str(s).unwrap() };
    for (name, df, c) in [
        ("decl unique", &*decl, mk(r#"unique = [["declaration_id", "item_no"]]"#)),
        (
            "decl not-null+range",
            &*decl,
            mk(
                r#"not-null = ["declaration_id", "date", "period", "importer_id", "hs_code", "hs6", "origin_country", "value_usd", "duty_usd"]
range = { tax_rate_pct = [0.0, 1000.0], net_mass_kg = [0.0, 1.0e12], value_usd = [0.0, 1.0e13] }"#,
            ),
        ),
        ("km unique", &km, mk(r#"unique = [["declaration_id", "item_no"]]"#)),
        ("km relationships", &km, mk(r#"relationships = { declaration_id = "declarations.declaration_id" }"#)),
    ] {
        let t = std::time::Instant::now();
        let r = mirador_pipeline::checks::run_checks("x", df, &c, &available);
        println!("{name}: {:?} {:?}", t.elapsed(), r.iter().map(|r| r.passed).collect::<Vec<_>>());
    }
}
