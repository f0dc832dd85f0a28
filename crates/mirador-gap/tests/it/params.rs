//! Parameters out of their sensible range are refused before anything is computed, naming the
//! stage and the key.

use mirador_gap::{GapParams, RevenueGap};
use mirador_pipeline::{Stage, StageContext, StageError};

fn run_with(key: &str, value: toml::Value) -> Result<(), StageError> {
    let dir = tempfile::tempdir().unwrap();
    let mut params = toml::Table::new();
    params.insert("home-country".into(), toml::Value::String("KE".into()));
    params.insert(key.into(), value);
    RevenueGap.run(&StageContext::standalone("revenue_gap", dir.path()).with_params(params)).map(|_| ())
}

#[test]
fn non_finite_and_out_of_range_parameters_are_refused_naming_the_key() {
    let f = toml::Value::Float;
    let bad = [
        ("cif-fob-factor", f(f64::INFINITY)),
        ("cif-fob-factor", f(f64::NAN)),
        ("cif-fob-factor", f(f64::NEG_INFINITY)),
        ("cif-fob-factor", f(0.5)),
        ("cif-fob-factor", f(25.0)),
        ("cif-fob-band", f(f64::INFINITY)),
        ("cif-fob-band", f(-0.1)),
        ("materiality-usd", f(f64::NAN)),
        ("materiality-usd", f(-1.0)),
        ("reporting-noise", f(f64::INFINITY)),
        ("reporting-noise", f(2.0)),
        ("min-pair-value-usd", f(f64::NAN)),
        ("plausible-ratio", toml::Value::Array(vec![f(2.0), f(0.5)])),
        ("plausible-ratio", toml::Value::Array(vec![f(0.0), f(f64::INFINITY)])),
        ("min-pairs", toml::Value::Integer(0)),
    ];
    for (key, value) in bad {
        match run_with(key, value.clone()) {
            Err(StageError::Params { stage, message }) => {
                assert_eq!(stage, "revenue_gap");
                assert!(message.contains(key), "{key} = {value}: {message}");
            }
            other => panic!("{key} = {value}: expected a parameter error, got {other:?}"),
        }
    }
}

#[test]
fn defaults_and_the_sample_pipeline_parameters_are_in_range() {
    assert_eq!(GapParams::default().validate(), Ok(()));
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipelines/params/revenue_gap.toml")).unwrap();
    let params: GapParams = toml::from_str(&text).unwrap();
    assert_eq!(params.validate(), Ok(()));
    for factor in [1.0, 1.1, 1.5, 2.0] {
        let mut p = GapParams::default();
        p.factor.cif_fob_factor = factor;
        assert_eq!(p.validate(), Ok(()), "{factor}");
    }
}
