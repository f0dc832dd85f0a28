//! Same data and seed give the same model, whatever the thread count.

use mirador_gbdt::{Booster, Column, Dataset, Params};
use rand::Rng;

use crate::common::{label, names, rng};

fn data() -> (Dataset, Vec<f64>) {
    let mut rng = rng(20);
    let n = 6000;
    let mut columns: Vec<Column> = (0..5).map(|_| Column::Numeric((0..n).map(|_| rng.gen_range(-1.0..1.0)).collect())).collect();
    columns.push(Column::Categorical((0..n).map(|_| rng.gen_range(0..12)).collect()));
    let labels = (0..n)
        .map(|i| {
            let value = |f: usize| match &columns[f] {
                Column::Numeric(v) => v[i],
                Column::Categorical(c) => f64::from(c[i] % 2),
            };
            label(value(0) + value(1) * value(2) + value(5) + rng.gen_range(-0.5..0.5) > 0.5)
        })
        .collect();
    (Dataset::new(names(6), columns).unwrap(), labels)
}

fn params(seed: u64) -> Params {
    Params {
        n_trees: 25,
        learning_rate: 0.1,
        feature_fraction: 0.7,
        bagging_fraction: 0.8,
        bagging_freq: 1,
        seed,
        early_stopping_rounds: None,
        ..Params::default()
    }
}

fn train_json(data: &Dataset, labels: &[f64], params: &Params) -> String {
    Booster::train(data, labels, None, None, params).unwrap().to_json().unwrap()
}

#[test]
fn same_seed_gives_identical_models() {
    let (data, labels) = data();
    let first = train_json(&data, &labels, &params(7));
    let second = train_json(&data, &labels, &params(7));
    assert_eq!(first, second);
    let other = train_json(&data, &labels, &params(8));
    assert_ne!(first, other, "the seed should matter when bagging");
}

#[test]
fn thread_count_does_not_change_the_model() {
    let (data, labels) = data();
    let (valid, valid_labels) = (data.clone(), labels.clone());
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let model = Booster::train(&data, &labels, None, Some((&valid, &valid_labels)), &params(3)).unwrap();
            let contributions = model.contributions(&data).unwrap();
            (model.to_json().unwrap(), model.predict_margin(&data).unwrap(), contributions)
        })
    };
    let one = run(1);
    let two = run(2);
    let three = run(3);
    assert_eq!(one, two);
    assert_eq!(one, three);
}
