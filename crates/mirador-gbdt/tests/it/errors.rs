//! Bad input gives errors, never panics.

use mirador_gbdt::{Booster, Column, Dataset, GbdtError, Params};

use crate::common::{names, quick_params};

fn small() -> (Dataset, Vec<f64>) {
    let x: Vec<f64> = (0..100).map(f64::from).collect();
    let labels: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i >= 50))).collect();
    (Dataset::new(names(1), vec![Column::Numeric(x)]).unwrap(), labels)
}

fn train(data: &Dataset, labels: &[f64]) -> Result<Booster, GbdtError> {
    Booster::train(data, labels, None, None, &quick_params())
}

#[test]
fn rejects_empty_data() {
    let empty = Dataset::new(names(1), vec![Column::Numeric(vec![])]).unwrap();
    assert!(matches!(train(&empty, &[]), Err(GbdtError::EmptyData { .. })));
    let no_columns = Dataset::new(vec![], vec![]).unwrap();
    assert!(matches!(train(&no_columns, &[]), Err(GbdtError::NoFeatures { .. })));
}

#[test]
fn rejects_bad_labels_and_weights() {
    let (data, mut labels) = small();
    assert!(matches!(train(&data, &labels[..99]), Err(GbdtError::LengthMismatch { .. })));
    labels[3] = 0.5;
    let error = train(&data, &labels).unwrap_err();
    assert!(matches!(error, GbdtError::InvalidLabel { row: 3, .. }), "{error}");
    labels[3] = f64::NAN;
    assert!(matches!(train(&data, &labels), Err(GbdtError::InvalidLabel { .. })));

    let ones = vec![1.0; 100];
    let error = train(&data, &ones).unwrap_err();
    assert!(error.to_string().contains("no negative rows"), "{error}");
    let zeros = vec![0.0; 100];
    assert!(matches!(train(&data, &zeros), Err(GbdtError::SingleClass { missing: "positive" })));

    let (data, labels) = small();
    let mut weights = vec![1.0; 100];
    weights[7] = -1.0;
    let result = Booster::train(&data, &labels, Some(&weights), None, &quick_params());
    assert!(matches!(result, Err(GbdtError::InvalidWeight { row: 7, .. })));
    // Zero weight on every positive row leaves one class.
    let weights: Vec<f64> = labels.iter().map(|&y| 1.0 - y).collect();
    let result = Booster::train(&data, &labels, Some(&weights), None, &quick_params());
    assert!(matches!(result, Err(GbdtError::SingleClass { .. })));
}

#[test]
fn rejects_bad_parameters() {
    let (data, labels) = small();
    let params = Params { max_bins: 1, ..Params::default() };
    let error = Booster::train(&data, &labels, None, None, &params).unwrap_err();
    assert!(error.to_string().contains("max-bins"), "{error}");
}

#[test]
fn rejects_mismatched_scoring_data() {
    let (data, labels) = small();
    let model = train(&data, &labels).unwrap();
    let renamed = Dataset::new(vec!["other".into()], vec![Column::Numeric(vec![1.0])]).unwrap();
    assert!(matches!(model.predict_margin(&renamed), Err(GbdtError::FeatureName { .. })));
    let wrong_kind = Dataset::new(names(1), vec![Column::Categorical(vec![1])]).unwrap();
    assert!(matches!(model.contributions(&wrong_kind), Err(GbdtError::FeatureKind { .. })));
    let wider = Dataset::new(names(2), vec![Column::Numeric(vec![1.0]), Column::Numeric(vec![1.0])]).unwrap();
    assert!(matches!(model.predict_proba(&wider), Err(GbdtError::FeatureCount { .. })));
    let mut edited = data.clone();
    edited.columns[0] = Column::Numeric(vec![1.0; 3]);
    assert!(model.predict_margin(&edited).is_err());
    let valid_result = Booster::train(&data, &labels, None, Some((&wrong_kind, &[1.0])), &quick_params());
    assert!(matches!(valid_result, Err(GbdtError::FeatureKind { .. })));
    let valid_result = Booster::train(&data, &labels, None, Some((&data, &labels[..10])), &quick_params());
    assert!(matches!(valid_result, Err(GbdtError::LengthMismatch { .. })));
    let empty = Dataset::new(names(1), vec![Column::Numeric(vec![])]).unwrap();
    assert_eq!(model.predict_margin(&empty).unwrap(), Vec::<f64>::new());
}

#[test]
fn unsplittable_data_gives_a_constant_model() {
    let constant = Dataset::new(names(1), vec![Column::Numeric(vec![1.0; 100])]).unwrap();
    let labels: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i % 4 == 0))).collect();
    let model = train(&constant, &labels).unwrap();
    assert_eq!(model.n_trees(), 0);
    let p = model.predict_proba(&constant).unwrap();
    assert!((p[0] - 0.25).abs() < 1e-12);
    let phi = model.contributions(&constant).unwrap();
    assert!((phi[0][1] - model.init_score()).abs() < 1e-12);
}
