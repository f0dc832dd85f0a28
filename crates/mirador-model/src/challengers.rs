//! Challengers: the gradient boosting's feature matrix and time split through two simpler
//! models from [smartcore], judged on the same validation and test months with the same
//! metrics, so that every run shows what the boosting adds.
//!
//! - `logistic_regression`: L2-regularised logistic regression (smartcore's L-BFGS solver) on
//!   standardised features.
//! - `random_forest`: a forest of [`FOREST_MAX_DEPTH`]-deep CART trees on bootstrap samples,
//!   each split choosing among √p random features. It is smartcore's random forest *regressor*
//!   on the 0/1 fraud label: its prediction, the average over trees of each leaf's share of
//!   fraudulent training rows, is the forest's fraud probability (smartcore's classifier only
//!   votes classes), and on a 0/1 label the variance criterion is the Gini criterion (halved).
//!
//! **Features.** Exactly the boosting's [`Dataset`] of each split (built once by the stage),
//! encoded for models without native categorical or missing-value handling:
//! - a numeric feature becomes `sign(x)·ln(1 + |x|)` (duty and value span many orders of
//!   magnitude; the forest is unaffected by a monotone transform), missing values the training
//!   median, plus a 0/1 "missing" column when the training rows have missing values;
//! - a categorical feature becomes the share of training rows holding its category (0 for one
//!   unseen in training), and, when it has at most [`ONE_HOT_MAX`] training categories, one
//!   0/1 column per category as well. No label enters the encoding.
//!
//! Columns are then standardised with the training sample's mean and deviation (constant ones
//! dropped).
//!
//! **Cost.** Both models train on at most `challenger-rows` training rows (a seeded uniform
//! sample; the encoding is learnt on it too), the forest grows `forest-trees` trees. Validation
//! and test rows are all scored, a block at a time.

use mirador_gbdt::{Column as Feature, Dataset};
use mirador_schema::catalog::fraud_evaluation;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};
use tracing::{info, warn};

use crate::evaluate::{Evaluation, evaluate};

/// `ranking` of the logistic regression's rows in `fraud_evaluation`.
pub const LOGISTIC_REGRESSION: &str = "logistic_regression";
/// `ranking` of the random forest's rows in `fraud_evaluation`.
pub const RANDOM_FOREST: &str = "random_forest";

/// A categorical feature with at most this many training categories is one-hot encoded too.
pub const ONE_HOT_MAX: usize = 16;
/// Depth limit of the forest's trees.
pub const FOREST_MAX_DEPTH: u16 = 12;
/// Fewest training rows in a leaf of the forest.
pub const FOREST_MIN_LEAF: usize = 5;
/// L2 penalty of the logistic regression (on the summed log-loss of standardised features).
pub const LOGISTIC_ALPHA: f64 = 1.0;
/// Rows encoded and scored together.
const BLOCK_ROWS: usize = 1 << 16;

/// One challenger's held-out figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Challenger {
    /// [`LOGISTIC_REGRESSION`] or [`RANDOM_FOREST`].
    pub name: String,
    /// Training rows it was fit on (the sample).
    pub train_rows: usize,
    /// Encoded feature columns.
    pub columns: usize,
    /// Seconds to fit and score (not saved: the model file is the same from run to run).
    #[serde(skip)]
    pub seconds: f64,
    /// The `valid` and `test` splits, as the boosting's ([`evaluate`]); of the two rankings only
    /// the probability ranking is reported.
    pub evaluations: Vec<Evaluation>,
}

/// A labelled split's features, labels and duty.
pub(crate) struct Split<'a> {
    pub(crate) name: &'a str,
    pub(crate) x: &'a Dataset,
    pub(crate) y: &'a [bool],
    pub(crate) duty: &'a [f64],
}

/// How one encoded column is read off a row of the boosting's dataset.
#[derive(Debug, Clone)]
enum Source {
    /// Numeric feature `.0`, log-compressed, missing as `.1`.
    Numeric(usize, f64),
    /// 1 where numeric feature `.0` is missing.
    Missing(usize),
    /// Training share of the category of feature `.0`, by code.
    Frequency(usize, Vec<f64>),
    /// 1 where categorical feature `.0` has code `.1`.
    OneHot(usize, u32),
}

/// The learnt encoding: its columns and their standardisation.
#[derive(Debug, Clone)]
pub(crate) struct Encoding {
    sources: Vec<Source>,
    mean: Vec<f64>,
    scale: Vec<f64>,
}

fn compress(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

impl Source {
    fn value(&self, data: &Dataset, row: usize) -> f64 {
        match self {
            Source::Numeric(j, fill) => match &data.columns[*j] {
                Feature::Numeric(v) => Some(v[row]).filter(|x| x.is_finite()).map_or(*fill, compress),
                Feature::Categorical(_) => *fill,
            },
            Source::Missing(j) => match &data.columns[*j] {
                Feature::Numeric(v) => f64::from(u8::from(!v[row].is_finite())),
                Feature::Categorical(_) => 0.0,
            },
            Source::Frequency(j, share) => match &data.columns[*j] {
                Feature::Categorical(v) => share.get(v[row] as usize).copied().unwrap_or(0.0),
                Feature::Numeric(_) => 0.0,
            },
            Source::OneHot(j, code) => match &data.columns[*j] {
                Feature::Categorical(v) => f64::from(u8::from(v[row] == *code)),
                Feature::Numeric(_) => 0.0,
            },
        }
    }
}

impl Encoding {
    /// Learns the encoding on rows `rows` of `data` (the training sample).
    pub(crate) fn learn(data: &Dataset, rows: &[usize]) -> Self {
        let mut sources = Vec::new();
        for (j, column) in data.columns.iter().enumerate() {
            match column {
                Feature::Numeric(v) => {
                    let mut known: Vec<f64> = rows.iter().map(|&i| v[i]).filter(|x| x.is_finite()).map(compress).collect();
                    known.sort_by(f64::total_cmp);
                    let median = known.get(known.len() / 2).copied().unwrap_or(0.0);
                    sources.push(Source::Numeric(j, median));
                    if known.len() < rows.len() {
                        sources.push(Source::Missing(j));
                    }
                }
                Feature::Categorical(v) => {
                    let mut count: Vec<f64> = Vec::new();
                    for &i in rows {
                        let code = v[i];
                        if code != u32::MAX {
                            if count.len() <= code as usize {
                                count.resize(code as usize + 1, 0.0);
                            }
                            count[code as usize] += 1.0;
                        }
                    }
                    let n = rows.len().max(1) as f64;
                    let seen: Vec<u32> = (0..count.len()).filter(|&c| count[c] > 0.0).map(|c| c as u32).collect();
                    if seen.len() <= ONE_HOT_MAX {
                        sources.extend(seen.iter().map(|&c| Source::OneHot(j, c)));
                    }
                    sources.push(Source::Frequency(j, count.into_iter().map(|c| c / n).collect()));
                }
            }
        }
        // Standardise on the sample; a constant column tells the models nothing.
        let mut encoding = Encoding { mean: vec![0.0; sources.len()], scale: vec![1.0; sources.len()], sources };
        let raw = encoding.raw(data, rows);
        let width = encoding.sources.len();
        let n = rows.len().max(1) as f64;
        let mut keep = Vec::new();
        for k in 0..width {
            let mean = raw.iter().skip(k).step_by(width).sum::<f64>() / n;
            let var = raw.iter().skip(k).step_by(width).map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            if var > 1e-12 {
                keep.push((encoding.sources[k].clone(), mean, var.sqrt()));
            }
        }
        encoding.sources = keep.iter().map(|k| k.0.clone()).collect();
        encoding.mean = keep.iter().map(|k| k.1).collect();
        encoding.scale = keep.iter().map(|k| k.2).collect();
        encoding
    }

    /// Encoded columns.
    pub(crate) fn width(&self) -> usize {
        self.sources.len()
    }

    /// Rows `rows` of `data`, encoded but not standardised, row-major.
    fn raw(&self, data: &Dataset, rows: &[usize]) -> Vec<f64> {
        let mut out = Vec::with_capacity(rows.len() * self.sources.len());
        for &i in rows {
            out.extend(self.sources.iter().map(|s| s.value(data, i)));
        }
        out
    }

    /// Rows `rows` of `data`, encoded and standardised, row-major.
    pub(crate) fn rows(&self, data: &Dataset, rows: &[usize]) -> Vec<f64> {
        let mut out = Vec::with_capacity(rows.len() * self.sources.len());
        for &i in rows {
            out.extend(self.sources.iter().zip(&self.mean).zip(&self.scale).map(|((s, m), d)| (s.value(data, i) - m) / d));
        }
        out
    }

    /// Rows `rows` of `data` as a smartcore matrix.
    fn matrix(&self, data: &Dataset, rows: &[usize]) -> Result<DenseMatrix<f64>, String> {
        DenseMatrix::new(rows.len(), self.width(), self.rows(data, rows), false).map_err(|e| e.to_string())
    }
}

/// At most `n` of `0..len`, a seeded uniform sample without replacement, in order.
pub(crate) fn sample(len: usize, n: usize, seed: u64) -> Vec<usize> {
    if len <= n {
        return (0..len).collect();
    }
    // SplitMix64 drives a partial Fisher–Yates shuffle.
    let mut state = seed ^ 0x6368_616c_6c65_6e67;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut all: Vec<usize> = (0..len).collect();
    for k in 0..n {
        let j = k + (next() % (len - k) as u64) as usize;
        all.swap(k, j);
    }
    let mut picked = all[..n].to_vec();
    picked.sort_unstable();
    picked
}

/// A fitted challenger's fraud probability for every row of a dataset.
enum Fitted {
    Logistic { weights: Vec<f64>, intercept: f64 },
    Forest(Box<RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>>),
}

impl Fitted {
    fn predict(&self, encoding: &Encoding, data: &Dataset) -> Result<Vec<f64>, String> {
        let all: Vec<usize> = (0..data.n_rows()).collect();
        let mut out = Vec::with_capacity(all.len());
        for block in all.chunks(BLOCK_ROWS) {
            match self {
                Fitted::Logistic { weights, intercept } => {
                    let x = encoding.rows(data, block);
                    let width = weights.len().max(1);
                    out.extend(x.chunks(width).map(|row| {
                        let z = intercept + row.iter().zip(weights).map(|(a, b)| a * b).sum::<f64>();
                        1.0 / (1.0 + (-z).exp())
                    }));
                }
                Fitted::Forest(forest) => {
                    let p = forest.predict(&encoding.matrix(data, block)?).map_err(|e| e.to_string())?;
                    out.extend(p.into_iter().map(|p| p.clamp(0.0, 1.0)));
                }
            }
        }
        Ok(out)
    }
}

fn fit_logistic(x: &DenseMatrix<f64>, y: &[bool]) -> Result<Fitted, String> {
    use smartcore::linalg::basic::arrays::Array as _;
    let labels: Vec<i32> = y.iter().map(|&b| i32::from(b)).collect();
    let params = LogisticRegressionParameters::default().with_alpha(LOGISTIC_ALPHA);
    let model = LogisticRegression::fit(x, &labels, params).map_err(|e| e.to_string())?;
    // Classes are sorted: the coefficients are those of class 1, fraud.
    let coefficients = model.coefficients();
    let weights = (0..x.shape().1).map(|j| *coefficients.get((0, j))).collect();
    Ok(Fitted::Logistic { weights, intercept: *model.intercept().get((0, 0)) })
}

fn fit_forest(x: &DenseMatrix<f64>, y: &[bool], trees: usize, seed: u64) -> Result<Fitted, String> {
    use smartcore::linalg::basic::arrays::Array as _;
    let target: Vec<f64> = y.iter().map(|&b| f64::from(u8::from(b))).collect();
    let params = RandomForestRegressorParameters::default()
        .with_n_trees(trees.max(1))
        .with_max_depth(FOREST_MAX_DEPTH)
        .with_min_samples_leaf(FOREST_MIN_LEAF)
        .with_min_samples_split(2 * FOREST_MIN_LEAF)
        .with_m(((x.shape().1 as f64).sqrt() as usize).max(1))
        .with_seed(seed);
    let forest = RandomForestRegressor::fit(x, &target, params).map_err(|e| e.to_string())?;
    Ok(Fitted::Forest(Box::new(forest)))
}

/// Fits both challengers on (a sample of) `train` and evaluates them on `held_out`. A
/// challenger that cannot be fit (e.g. a sample with one class) is left out with a warning: the
/// boosting's own figures do not depend on it.
pub(crate) fn run(train: &Split<'_>, held_out: &[Split<'_>], rows: usize, trees: usize, seed: u64) -> Vec<Challenger> {
    let sampled = sample(train.x.n_rows(), rows.max(1), seed);
    let encoding = Encoding::learn(train.x, &sampled);
    let y: Vec<bool> = sampled.iter().map(|&i| train.y[i]).collect();
    if y.iter().all(|&b| b) || !y.iter().any(|&b| b) {
        warn!(rows = y.len(), "The challengers' training sample holds one class only; they are left out of fraud_evaluation.");
        return Vec::new();
    }
    let x = match encoding.matrix(train.x, &sampled) {
        Ok(x) => x,
        Err(e) => {
            warn!(error = %e, "The challengers could not be built; fraud_evaluation has the boosting's rows only.");
            return Vec::new();
        }
    };
    let one = |name: &str| -> Option<Challenger> {
        let started = std::time::Instant::now();
        let fitted = match name {
            LOGISTIC_REGRESSION => fit_logistic(&x, &y),
            _ => fit_forest(&x, &y, trees, seed),
        };
        let evaluations =
            fitted.and_then(|f| held_out.iter().map(|s| Ok(evaluate(s.name, &f.predict(&encoding, s.x)?, s.y, s.duty, seed))).collect());
        match evaluations {
            Ok(evaluations) => {
                let seconds = started.elapsed().as_secs_f64();
                info!(challenger = name, rows = sampled.len(), columns = encoding.width(), seconds, "Challenger fit and evaluated.");
                Some(Challenger { name: name.to_owned(), train_rows: sampled.len(), columns: encoding.width(), seconds, evaluations })
            }
            Err(e) => {
                warn!(challenger = name, error = %e, "A challenger could not be fit; it is left out of fraud_evaluation.");
                None
            }
        }
    };
    let (logistic, forest) = rayon::join(|| one(LOGISTIC_REGRESSION), || one(RANDOM_FOREST));
    logistic.into_iter().chain(forest).collect()
}

/// `evaluation` (the boosting's `fraud_evaluation` rows) with each challenger's rows appended:
/// the same columns, `ranking` the challenger's name, its probability ranking's figures.
pub fn with_rows(mut evaluation: DataFrame, challengers: &[Challenger]) -> PolarsResult<DataFrame> {
    for c in challengers {
        let all = Evaluation::frame(&c.evaluations)?;
        let mut rows = all.filter(&all.column(fraud_evaluation::RANKING)?.str()?.equal("probability"))?;
        let name = Column::new(fraud_evaluation::RANKING.into(), vec![c.name.as_str(); rows.height()]);
        rows.with_column(name)?;
        evaluation.vstack_mut_owned(rows.select(evaluation.get_column_names_owned())?)?;
    }
    Ok(evaluation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (Dataset, Vec<bool>, Vec<f64>) {
        // Fraud where x is large and the category is 2; duty grows with x.
        let n = 2_000;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7_919) % 1_000) as f64 / 10.0).collect();
        let c: Vec<u32> = (0..n).map(|i| (i % 5) as u32).collect();
        let missing: Vec<f64> = (0..n).map(|i| if i % 3 == 0 { f64::NAN } else { i as f64 }).collect();
        let y: Vec<bool> = (0..n).map(|i| x[i] > 70.0 || (c[i] == 2 && x[i] > 40.0)).collect();
        let duty = x.iter().map(|v| v * 10.0).collect();
        let data = Dataset::new(
            vec!["x".into(), "c".into(), "m".into()],
            vec![Feature::Numeric(x), Feature::Categorical(c), Feature::Numeric(missing)],
        )
        .unwrap();
        (data, y, duty)
    }

    #[test]
    fn encoding_one_hots_small_vocabularies_and_marks_missing_values() {
        let (data, _, _) = data();
        let all: Vec<usize> = (0..data.n_rows()).collect();
        let e = Encoding::learn(&data, &all);
        // x, 5 one-hot codes, the category's share (constant: every category equally frequent,
        // so dropped), m and its missing flag.
        assert_eq!(e.width(), 1 + 5 + 2);
        let rows = e.rows(&data, &all);
        for k in 0..e.width() {
            let column: Vec<f64> = rows.iter().skip(k).step_by(e.width()).copied().collect();
            let mean = column.iter().sum::<f64>() / column.len() as f64;
            assert!(mean.abs() < 1e-9, "column {k} is not centred: {mean}");
            assert!(column.iter().all(|v| v.is_finite()), "column {k} has a missing value");
        }
    }

    #[test]
    fn unseen_categories_encode_as_no_category() {
        let (data, _, _) = data();
        let e = Encoding::learn(&data, &[0, 1, 2, 3, 4]);
        let unseen = Dataset::new(
            vec!["x".into(), "c".into(), "m".into()],
            vec![Feature::Numeric(vec![1.0]), Feature::Categorical(vec![u32::MAX]), Feature::Numeric(vec![f64::NAN])],
        )
        .unwrap();
        assert!(e.rows(&unseen, &[0]).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn sample_is_bounded_seeded_and_ordered() {
        let a = sample(1_000, 100, 7);
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a, sample(1_000, 100, 7));
        assert_ne!(a, sample(1_000, 100, 8));
        assert_eq!(sample(10, 100, 7), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn both_challengers_learn_a_plain_signal() {
        let (data, y, duty) = data();
        let split = |name| Split { name, x: &data, y: &y, duty: &duty };
        let out = run(&split("train"), &[split("valid"), split("test")], 1_000, 30, 42);
        let names: Vec<&str> = out.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, [LOGISTIC_REGRESSION, RANDOM_FOREST]);
        for c in &out {
            assert_eq!(c.train_rows, 1_000);
            assert_eq!(c.evaluations.len(), 2);
            let auc = c.evaluations[1].auc.unwrap();
            assert!(auc > 0.9, "{} AUC {auc}", c.name);
        }
    }

    #[test]
    fn a_one_class_sample_leaves_the_challengers_out() {
        let (data, _, duty) = data();
        let y = vec![false; data.n_rows()];
        let split = |name| Split { name, x: &data, y: &y, duty: &duty };
        assert!(run(&split("train"), &[split("test")], 1_000, 5, 1).is_empty());
    }

    #[test]
    fn rows_are_appended_under_the_challengers_names() {
        let (data, y, duty) = data();
        let split = |name| Split { name, x: &data, y: &y, duty: &duty };
        let out = run(&split("train"), &[split("valid"), split("test")], 500, 10, 3);
        let p: Vec<f64> = (0..data.n_rows()).map(|i| if y[i] { 0.9 } else { 0.1 }).collect();
        let base = Evaluation::frame(&[evaluate("valid", &p, &y, &duty, 3), evaluate("test", &p, &y, &duty, 3)]).unwrap();
        let all = with_rows(base.clone(), &out).unwrap();
        assert_eq!(all.get_column_names(), base.get_column_names());
        let ranking = all.column("ranking").unwrap().str().unwrap().clone();
        let count = |name: &str| ranking.iter().filter(|r| *r == Some(name)).count();
        // valid and test at five budgets each.
        assert_eq!((count(LOGISTIC_REGRESSION), count(RANDOM_FOREST)), (10, 10));
        assert_eq!(count("probability"), 10);
    }
}
