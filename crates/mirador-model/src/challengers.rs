//! Challengers: the gradient boosting's feature matrix and time split through two simpler
//! models, judged on the same validation and test months with the same
//! metrics, so that every run shows what the boosting adds.
//!
//! - `logistic_regression`: L2-regularised logistic regression on standardised features: the
//!   objective of smartcore's `LogisticRegression`, solved by Newton's method here
//!   ([`newton_logistic`]) to its optimum, where smartcore's L-BFGS takes seconds of iterations
//!   on the correlated one-hot columns and stops short of it (a test checks the two agree).
//! - `random_forest`: a forest of [`FOREST_MAX_DEPTH`]-deep CART trees on bootstrap samples,
//!   each split choosing among √p random features. It is [smartcore]'s random forest *regressor*
//!   on the 0/1 fraud label: its prediction, the average over trees of each leaf's share of
//!   fraudulent training rows, is the forest's fraud probability (smartcore's classifier only
//!   votes classes), and on a 0/1 label the variance criterion is the Gini criterion (halved).
//!   smartcore grows the trees one after another; the `cart` module grows the same trees in
//!   parallel (a test checks the two forests predict the same to the bit).
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
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

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
    Forest(crate::cart::Forest),
}

impl Fitted {
    /// Every row's probability; blocks of rows in parallel.
    fn predict(&self, encoding: &Encoding, data: &Dataset) -> Vec<f64> {
        let all: Vec<usize> = (0..data.n_rows()).collect();
        let width = encoding.width();
        let blocks: Vec<Vec<f64>> = all
            .par_chunks(BLOCK_ROWS)
            .map(|block| {
                let x = encoding.rows(data, block);
                match self {
                    Fitted::Logistic { weights, intercept } => x
                        .chunks(weights.len().max(1))
                        .map(|row| {
                            let z = intercept + row.iter().zip(weights).map(|(a, b)| a * b).sum::<f64>();
                            1.0 / (1.0 + (-z).exp())
                        })
                        .collect(),
                    Fitted::Forest(forest) => forest.predict(&x, width).into_iter().map(|p| p.clamp(0.0, 1.0)).collect(),
                }
            })
            .collect();
        blocks.concat()
    }
}

fn fit_logistic(x: &[f64], width: usize, y: &[bool]) -> Result<Fitted, String> {
    let (weights, intercept) = newton_logistic(x, width, y, LOGISTIC_ALPHA)?;
    Ok(Fitted::Logistic { weights, intercept })
}

/// Most Newton steps of [`newton_logistic`]; it takes about ten.
const NEWTON_MAX_STEPS: usize = 100;

/// L2-regularised logistic regression by Newton's method: the weights `w` and intercept `b`
/// minimising `Σᵢ [ln(1 + e^zᵢ) − yᵢ·zᵢ] + alpha/2·‖w‖²`, `zᵢ = b + xᵢ·w` (the intercept is not
/// penalised), for `x` row-major with `width` columns. This is the objective smartcore's
/// `LogisticRegression` minimises with L-BFGS. With a few dozen columns the exact Hessian is
/// cheap, and Newton's steps reach the optimum to rounding in about ten passes over the rows.
pub(crate) fn newton_logistic(x: &[f64], width: usize, y: &[bool], alpha: f64) -> Result<(Vec<f64>, f64), String> {
    let rows = y.len();
    if x.len() != rows * width {
        return Err(format!("{} values for {rows} rows of {width} columns", x.len()));
    }
    let dim = width + 1;
    // Column-major, with a column of ones for the intercept last: every sum below runs down
    // contiguous columns.
    let mut cols = vec![1.0; dim * rows];
    for (i, row) in x.chunks_exact(width.max(1)).enumerate().take(rows) {
        for (j, &v) in row.iter().enumerate().take(width) {
            cols[j * rows + i] = v;
        }
    }
    let col = |j: usize| &cols[j * rows..(j + 1) * rows];
    let target: Vec<f64> = y.iter().map(|&b| f64::from(u8::from(b))).collect();
    let margins = |beta: &[f64]| -> Vec<f64> {
        let mut margin = vec![beta[width]; rows];
        for (j, &b) in beta.iter().enumerate().take(width) {
            for (m, &v) in margin.iter_mut().zip(col(j)) {
                *m += b * v;
            }
        }
        margin
    };
    let objective = |margin: &[f64], beta: &[f64]| -> f64 {
        let loss: f64 = margin.iter().zip(&target).map(|(&z, &t)| z.max(0.0) + (-z.abs()).exp().ln_1p() - t * z).sum();
        loss + 0.5 * alpha * beta[..width].iter().map(|b| b * b).sum::<f64>()
    };
    let mut beta = vec![0.0; dim];
    let mut margin = margins(&beta);
    let mut value = objective(&margin, &beta);
    let mut weighted = vec![0.0; rows];
    let mut residual = vec![0.0; rows];
    let mut hessian = vec![0.0; dim * dim];
    let mut steps = 0;
    while steps < NEWTON_MAX_STEPS {
        steps += 1;
        for ((r, w), (&z, &t)) in residual.iter_mut().zip(&mut weighted).zip(margin.iter().zip(&target)) {
            let p = 1.0 / (1.0 + (-z).exp());
            *r = p - t;
            *w = p * (1.0 - p);
        }
        let mut gradient: Vec<f64> = (0..dim).map(|j| dot(col(j), &residual)).collect();
        for (g, b) in gradient.iter_mut().zip(&beta).take(width) {
            *g += alpha * b;
        }
        let mut scaled = vec![0.0; rows];
        for j in 0..dim {
            for ((s, &v), &w) in scaled.iter_mut().zip(col(j)).zip(&weighted) {
                *s = v * w;
            }
            for k in j..dim {
                let h = dot(&scaled, col(k)) + if k == j && j < width { alpha } else { 0.0 };
                hessian[j * dim + k] = h;
                hessian[k * dim + j] = h;
            }
        }
        let step = cholesky_solve(&mut hessian, dim, &gradient).ok_or("the Hessian is not positive definite")?;
        let size = beta.iter().map(|b| b.abs()).fold(1.0, f64::max);
        if step.iter().all(|s| s.abs() <= 1e-10 * size) {
            // Converged: Newton's convergence is quadratic, so after this step the error is at
            // rounding, where the objective no longer tells better from worse.
            for (b, s) in beta.iter_mut().zip(&step) {
                *b -= s;
            }
            break;
        }
        // Newton's step, halved while it raises the objective beyond rounding (rarely: the
        // objective is convex and smooth).
        let mut length = 1.0;
        let (next, next_z, next_f) = loop {
            let next: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b - length * s).collect();
            let next_z = margins(&next);
            let next_f = objective(&next_z, &next);
            if next_f <= value + 1e-12 * value.abs() || length < 1e-6 {
                break (next, next_z, next_f);
            }
            length *= 0.5;
        };
        (beta, margin, value) = (next, next_z, next_f);
    }
    debug!(steps, rows = rows, columns = width, "Logistic regression fit by Newton's method.");
    let intercept = beta[width];
    beta.truncate(width);
    Ok((beta, intercept))
}

/// `Σ a·b`, four sums at a time (the compiler keeps them in vector registers).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut sums = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4.remainder().iter().zip(b4.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a4.zip(b4) {
        for ((sum, x), y) in sums.iter_mut().zip(x).zip(y) {
            *sum += x * y;
        }
    }
    (sums[0] + sums[1]) + (sums[2] + sums[3]) + tail
}

/// Solves `a·s = b` for a symmetric positive definite `a` (`q`×`q`, row-major; overwritten by
/// its Cholesky factor). `None` when `a` is not positive definite.
fn cholesky_solve(a: &mut [f64], dim: usize, b: &[f64]) -> Option<Vec<f64>> {
    for j in 0..dim {
        let mut pivot = a[j * dim + j];
        for k in 0..j {
            pivot -= a[j * dim + k] * a[j * dim + k];
        }
        if !pivot.is_finite() || pivot <= 0.0 {
            return None;
        }
        let pivot = pivot.sqrt();
        a[j * dim + j] = pivot;
        for i in j + 1..dim {
            let mut v = a[i * dim + j];
            for k in 0..j {
                v -= a[i * dim + k] * a[j * dim + k];
            }
            a[i * dim + j] = v / pivot;
        }
    }
    // L·u = b, then Lᵀ·solution = u.
    let mut solution = b.to_vec();
    for i in 0..dim {
        for k in 0..i {
            solution[i] -= a[i * dim + k] * solution[k];
        }
        solution[i] /= a[i * dim + i];
    }
    for i in (0..dim).rev() {
        for k in i + 1..dim {
            solution[i] -= a[k * dim + i] * solution[k];
        }
        solution[i] /= a[i * dim + i];
    }
    Some(solution)
}

fn fit_forest(x: &[f64], width: usize, y: &[bool], trees: usize, seed: u64) -> Result<Fitted, String> {
    let target: Vec<f64> = y.iter().map(|&b| f64::from(u8::from(b))).collect();
    let params = crate::cart::Params {
        trees: trees.max(1),
        max_depth: FOREST_MAX_DEPTH,
        min_samples_leaf: FOREST_MIN_LEAF,
        min_samples_split: 2 * FOREST_MIN_LEAF,
        m: ((width as f64).sqrt() as usize).max(1),
        seed,
    };
    Ok(Fitted::Forest(crate::cart::Forest::fit(x, width, &target, &params)?))
}

/// Fits both challengers on (a sample of) `train` and evaluates them on `held_out`. A
/// challenger that cannot be fit (e.g. a sample with one class) is left out with a warning: the
/// boosting's own figures do not depend on it.
#[cfg(test)]
pub(crate) fn run(train: &Split<'_>, held_out: &[Split<'_>], rows: usize, trees: usize, seed: u64) -> Vec<Challenger> {
    Sample::draw(train, rows, seed).map_or_else(Vec::new, |sample| sample.run(held_out, trees, seed))
}

/// The challengers' training sample, encoded: all they need of the training rows, so that the
/// training matrix can go before they are fit.
pub(crate) struct Sample {
    encoding: Encoding,
    rows: usize,
    /// Row-major, standardised.
    x: Vec<f64>,
    y: Vec<bool>,
}

impl Sample {
    /// Draws at most `rows` rows of `train` (seeded by `seed`) and learns the encoding on them.
    /// `None`, with a warning, when the sample holds one class only.
    pub(crate) fn draw(train: &Split<'_>, rows: usize, seed: u64) -> Option<Sample> {
        let sampled = sample(train.x.n_rows(), rows.max(1), seed);
        let encoding = Encoding::learn(train.x, &sampled);
        let y: Vec<bool> = sampled.iter().map(|&i| train.y[i]).collect();
        if y.iter().all(|&b| b) || !y.iter().any(|&b| b) {
            warn!(rows = y.len(), "The challengers' training sample holds one class only; they are left out of fraud_evaluation.");
            return None;
        }
        let x = encoding.rows(train.x, &sampled);
        Some(Sample { encoding, rows: sampled.len(), x, y })
    }

    /// Fits both challengers (the two at once) and evaluates them on `held_out`.
    pub(crate) fn run(&self, held_out: &[Split<'_>], trees: usize, seed: u64) -> Vec<Challenger> {
        let Sample { encoding, rows, x, y } = self;
        let one = |name: &str| -> Option<Challenger> {
            let started = std::time::Instant::now();
            let fitted = match name {
                LOGISTIC_REGRESSION => fit_logistic(x, encoding.width(), y),
                _ => fit_forest(x, encoding.width(), y, trees, seed),
            };
            let evaluations =
                fitted.map(|f| held_out.iter().map(|s| evaluate(s.name, &f.predict(encoding, s.x), s.y, s.duty, seed)).collect());
            match evaluations {
                Ok(evaluations) => {
                    let seconds = started.elapsed().as_secs_f64();
                    info!(challenger = name, rows, columns = encoding.width(), seconds, "Challenger fit and evaluated.");
                    Some(Challenger { name: name.to_owned(), train_rows: *rows, columns: encoding.width(), seconds, evaluations })
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

    /// A noisy logistic problem: `width` standardised-looking columns, two of them nearly
    /// collinear (as one-hot columns and their category's share are), labels drawn from a known
    /// model.
    fn logistic_problem(n: usize, width: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut state = seed;
        let mut uniform = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let mut x = Vec::with_capacity(n * width);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let row: Vec<f64> = (0..width).map(|_| 2.0 * uniform() - 1.0).collect();
            let mut row = row;
            row[width - 1] = row[0] + 0.01 * row[width - 1];
            let z = -1.5 + row.iter().enumerate().map(|(j, v)| v * (j as f64 - 2.0)).sum::<f64>();
            y.push(uniform() < 1.0 / (1.0 + (-z).exp()));
            x.extend(row);
        }
        (x, y)
    }

    #[test]
    fn newton_reaches_smartcores_logistic_regression() {
        use smartcore::linalg::basic::arrays::Array as _;
        use smartcore::linalg::basic::matrix::DenseMatrix;
        use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};
        for (n, width, alpha, seed) in [(400, 5, LOGISTIC_ALPHA, 1), (1_500, 8, LOGISTIC_ALPHA, 2), (300, 3, 10.0, 3), (800, 6, 0.1, 4)] {
            let (features, labels) = logistic_problem(n, width, seed);
            let (weights, intercept) = newton_logistic(&features, width, &labels, alpha).unwrap();
            let matrix = DenseMatrix::new(n, width, features.clone(), false).unwrap();
            let classes: Vec<i32> = labels.iter().map(|&v| i32::from(v)).collect();
            let reference = LogisticRegression::fit(&matrix, &classes, LogisticRegressionParameters::default().with_alpha(alpha)).unwrap();
            for (j, w) in weights.iter().enumerate() {
                let r = *reference.coefficients().get((0, j));
                assert!((w - r).abs() < 1e-6, "n {n} alpha {alpha}: coefficient {j} is {w}, smartcore's {r}");
            }
            let r = *reference.intercept().get((0, 0));
            assert!((intercept - r).abs() < 1e-6, "n {n} alpha {alpha}: intercept {intercept}, smartcore's {r}");
        }
    }

    #[test]
    fn newton_solves_the_penalised_optimality_condition() {
        // At the optimum Xᵀ(p − y) + alpha·w = 0 and Σ(p − y) = 0 (the intercept is free).
        let (features, labels) = logistic_problem(2_000, 6, 9);
        let (weights, intercept) = newton_logistic(&features, 6, &labels, 2.0).unwrap();
        let mut gradient = vec![0.0; 7];
        for (row, &label) in features.chunks(6).zip(&labels) {
            let margin = intercept + row.iter().zip(&weights).map(|(a, c)| a * c).sum::<f64>();
            let residual = 1.0 / (1.0 + (-margin).exp()) - f64::from(u8::from(label));
            for (g, v) in gradient.iter_mut().zip(row) {
                *g += residual * v;
            }
            gradient[6] += residual;
        }
        for (g, w) in gradient.iter_mut().zip(&weights) {
            *g += 2.0 * w;
        }
        assert!(gradient.iter().all(|g| g.abs() < 1e-8), "{gradient:?}");
        assert!(weights.iter().any(|w| w.abs() > 0.1), "nothing was learnt: {weights:?}");
        assert!(newton_logistic(&features[..10], 6, &labels, 1.0).is_err());
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
