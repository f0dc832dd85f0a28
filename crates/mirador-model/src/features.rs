//! The feature matrix: a declaration's own fields (categorical and numeric), its unit price
//! against its product's reference price, the other stages' signals when present (k-means
//! undervaluation, mirror exposure), and its history features ([`crate::history`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use foldhash::fast::FixedState;
use mirador_gbdt::{Column as Feature, Dataset};
use mirador_schema::catalog::{kmeans_scores, mirror_exposure};
use mirador_schema::col;
use mirador_schema::text::Text;
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use mirador_schema::text::Coded;

use crate::history::{History, Values};

/// Categorical fields used as features: (feature name, source column; `hs2`/`hs4` derive from
/// `hs6`).
pub const CATEGORICAL: &[(&str, &str)] = &[
    ("office", col::OFFICE_ID),
    ("process_type", col::PROCESS_TYPE),
    ("import_type", col::IMPORT_TYPE),
    ("import_use", col::IMPORT_USE),
    ("payment_type", col::PAYMENT_TYPE),
    ("transport_mode", col::TRANSPORT_MODE),
    ("tax_type", col::TAX_TYPE),
    ("origin_indicator", col::ORIGIN_INDICATOR),
    ("origin", col::ORIGIN_COUNTRY),
    ("departure", col::DEPARTURE_COUNTRY),
    ("hs2", col::HS2),
    ("hs4", col::HS4),
    ("hs6", col::HS6),
];

/// Numeric fields of the declaration.
pub const NUMERIC: &[(&str, &str)] = &[
    ("tax_rate_pct", col::TAX_RATE_PCT),
    ("net_mass_kg", col::NET_MASS_KG),
    ("value_usd", col::VALUE_USD),
    ("duty_usd", col::DUTY_USD),
    ("unit_price_usd_per_kg", col::UNIT_PRICE_USD_KG),
];

/// Entities whose history becomes features: (kind, column).
pub const HISTORY: &[(&str, &str)] = &[
    ("importer", col::IMPORTER_ID),
    ("declarant", col::DECLARANT_ID),
    ("seller", col::SELLER_ID),
    ("hs6", col::HS6),
    ("origin", col::ORIGIN_COUNTRY),
    ("office", col::OFFICE_ID),
];

/// Signals of other stages, joined on (declaration_id, item_no) when the pipeline has them:
/// (feature name, dataset, column).
pub const SIGNALS: &[(&str, &str, &str)] = &[
    ("undervaluation_score", kmeans_scores::ID, kmeans_scores::UNDERVALUATION_SCORE),
    ("peer_price_ratio", kmeans_scores::ID, kmeans_scores::PRICE_RATIO),
    ("mirror_gap_ratio", mirror_exposure::ID, mirror_exposure::MIRROR_GAP_RATIO),
];

/// Some rows of a frame: a contiguous range (a block to score) or a list (a split's rows).
#[derive(Debug, Clone)]
pub(crate) enum Subset<'a> {
    Range(std::ops::Range<usize>),
    Rows(&'a [usize]),
    /// Rows of the frame whose history and signal values were gathered beforehand: they are at
    /// positions `.1` of the history columns and signals given.
    Gathered(&'a [usize], std::ops::Range<usize>),
}

/// What the model needs to rebuild its features on new data: the vocabulary of every
/// categorical feature (learnt on the training rows only) and the reference unit prices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Feature name → category → code (looked up for every row and categorical feature, hence
    /// the fast hasher).
    #[serde(serialize_with = "crate::sorted::nested")]
    pub vocab: BTreeMap<String, HashMap<String, u32, FixedState>>,
    /// HS6 → median training unit price (USD/kg).
    #[serde(serialize_with = "crate::sorted::map")]
    pub reference_price: HashMap<String, f64, FixedState>,
    /// Signals the model was trained with.
    pub signals: Vec<String>,
    /// Features left out by configuration.
    #[serde(default)]
    pub excluded: Vec<String>,
}

/// A declaration frame's column as text (strings or categoricals), for the categorical features
/// and ids, with the prefix length to keep (`usize::MAX`: all of it); HS2 and HS4 are read as
/// prefixes of HS6. Iterating it borrows, so no string is copied.
pub(crate) fn strings<'a>(df: &'a DataFrame, name: &str) -> PolarsResult<(Text<'a>, usize)> {
    let (source, len) = match name {
        n if n == col::HS2 => (col::HS6, 2),
        n if n == col::HS4 => (col::HS6, 4),
        n => (n, usize::MAX),
    };
    Ok((Text::column(df, source)?, len))
}

/// The values of a [`strings`] column, borrowed.
pub(crate) fn borrowed<'s>((text, len): &'s (Text<'_>, usize)) -> impl Iterator<Item = Option<&'s str>> {
    text.iter().map(move |v| v.map(|v| v.get(..*len).unwrap_or(v)))
}

/// `f` of each row's value of a [`strings`] column. For a categorical column `f` runs once per
/// category rather than once per row (a feature's code or reference price is a lookup by text).
fn per_value<T: Copy>((text, len): &(Text<'_>, usize), mut f: impl FnMut(Option<&str>) -> T) -> Vec<T> {
    text.per_value(|v| f(v.map(|v| v.get(..*len).unwrap_or(v))))
}

/// Column `name` of `df` as floats, row by row (NaN for a missing value).
pub fn numbers(df: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

impl FeatureSpec {
    /// Learns vocabularies and reference prices from the training rows (`train[i]`).
    pub fn learn(df: &DataFrame, train: &[bool], signals: Vec<String>) -> PolarsResult<Self> {
        let mut vocab = BTreeMap::new();
        for (name, column) in CATEGORICAL {
            let values = strings(df, column)?;
            let mut seen: BTreeSet<&str> = BTreeSet::new();
            for (v, t) in borrowed(&values).zip(train) {
                if let (Some(v), true) = (v, t) {
                    seen.insert(v);
                }
            }
            let codes: HashMap<String, u32, FixedState> = seen.iter().enumerate().map(|(i, k)| ((*k).to_owned(), i as u32)).collect();
            vocab.insert((*name).to_owned(), codes);
        }
        let hs6 = strings(df, col::HS6)?;
        let price = numbers(df, col::UNIT_PRICE_USD_KG)?;
        let mut by_hs: HashMap<&str, Vec<f64>, FixedState> = HashMap::default();
        for ((h, p), t) in borrowed(&hs6).zip(&price).zip(train) {
            if let (Some(h), true) = (h, *t && p.is_finite() && *p > 0.0) {
                by_hs.entry(h).or_default().push(*p);
            }
        }
        let reference_price = by_hs
            .into_iter()
            .map(|(h, mut v)| {
                v.sort_by(f64::total_cmp);
                (h.to_owned(), v[v.len() / 2])
            })
            .collect();
        Ok(FeatureSpec { vocab, reference_price, signals, excluded: Vec::new() })
    }

    /// Builds the feature matrix of `df` with precomputed history features (one column per
    /// history feature, moved in) and the other stages' signal columns (aligned with `df`'s rows;
    /// missing signals are NaN).
    pub fn dataset(
        &self,
        df: &DataFrame,
        history: &History,
        history_columns: Vec<Vec<f64>>,
        signals: &BTreeMap<String, Vec<f64>>,
    ) -> PolarsResult<Dataset> {
        let mut names = Vec::new();
        let mut columns = Vec::new();
        for (name, column) in CATEGORICAL {
            let codes = &self.vocab[*name];
            let values = strings(df, column)?;
            names.push((*name).to_owned());
            columns.push(Feature::Categorical(per_value(&values, |v| v.and_then(|v| codes.get(v)).copied().unwrap_or(u32::MAX))));
        }
        for (name, column) in NUMERIC {
            names.push((*name).to_owned());
            columns.push(Feature::Numeric(numbers(df, column)?));
        }
        let hs6 = strings(df, col::HS6)?;
        let price = numbers(df, col::UNIT_PRICE_USD_KG)?;
        names.push("price_vs_hs6_reference".into());
        let reference = per_value(&hs6, |h| h.and_then(|h| self.reference_price.get(h)).copied());
        columns.push(Feature::Numeric(reference.iter().zip(&price).map(|(r, p)| r.map_or(f64::NAN, |r| p / r)).collect()));
        for name in &self.signals {
            names.push(name.clone());
            columns.push(Feature::Numeric(signals.get(name).cloned().unwrap_or_else(|| vec![f64::NAN; df.height()])));
        }
        for (name, values) in history.feature_names().into_iter().zip(history_columns) {
            names.push(name);
            columns.push(Feature::Numeric(values));
        }
        let (names, columns): (Vec<String>, Vec<Feature>) =
            names.into_iter().zip(columns).filter(|(n, _)| !self.excluded.contains(n)).unzip();
        Dataset::new(names, columns).map_err(|e| PolarsError::ComputeError(e.to_string().into()))
    }

    /// The declaration columns [`FeatureSpec::dataset`] reads.
    fn columns() -> Vec<&'static str> {
        let mut columns: Vec<&str> = CATEGORICAL.iter().chain(NUMERIC).map(|(_, c)| *c).chain([col::HS6, col::UNIT_PRICE_USD_KG]).collect();
        // HS2 and HS4 are read off HS6.
        columns.retain(|c| *c != col::HS2 && *c != col::HS4);
        let mut seen = BTreeSet::new();
        columns.retain(|c| seen.insert(*c));
        columns
    }

    /// The feature matrix of some rows of `df` ([`FeatureSpec::dataset`] of just those rows);
    /// `history_columns` and `signals` are aligned with all of `df`'s rows.
    pub(crate) fn dataset_of(
        &self,
        df: &DataFrame,
        history: &History,
        history_columns: &[Values],
        signals: &BTreeMap<String, Vec<f64>>,
        rows: Subset<'_>,
    ) -> PolarsResult<Dataset> {
        let frame = match &rows {
            Subset::Range(r) => df.slice(r.start as i64, r.len()),
            // Only the columns the features read are gathered.
            Subset::Rows(idx) | Subset::Gathered(idx, _) => {
                df.select(Self::columns())?.take(&IdxCa::from_vec("rows".into(), idx.iter().map(|&i| i as IdxSize).collect()))?
            }
        };
        let signals = signals.iter().map(|(k, v)| (k.clone(), pick(v, &rows))).collect();
        let history_columns = history_columns
            .iter()
            .map(|v| match v {
                Values::Counts(c) => pick(c, &rows),
                Values::Floats(f) => pick(f, &rows),
            })
            .collect();
        self.dataset(&frame, history, history_columns, &signals)
    }

    /// The vocabulary of feature `name` by code (empty for a numeric feature).
    pub fn categories(&self, name: &str) -> Vec<&str> {
        let Some(vocab) = self.vocab.get(name) else { return Vec::new() };
        let mut by_code = vec![""; vocab.len()];
        for (category, &code) in vocab {
            if let Some(slot) = by_code.get_mut(code as usize) {
                *slot = category;
            }
        }
        by_code
    }

    /// The category label of code `code` of feature `name` (for reasons and rules).
    pub fn category(&self, name: &str, code: u32) -> Option<&str> {
        self.vocab.get(name)?.iter().find(|(_, c)| **c == code).map(|(k, _)| k.as_str())
    }
}

/// The values of `rows` of a feature column, as floats: a range past the end gives none, a row
/// past the end NaN.
fn pick<T: Copy + Into<f64>>(values: &[T], rows: &Subset<'_>) -> Vec<f64> {
    match rows {
        Subset::Range(r) | Subset::Gathered(_, r) => {
            values.get(r.clone()).map(|v| v.iter().map(|&x| x.into()).collect()).unwrap_or_default()
        }
        Subset::Rows(idx) => idx.iter().map(|&i| values.get(i).map_or(f64::NAN, |&x| x.into())).collect(),
    }
}

/// The id columns of the history kinds, as string arrays ([`history_ids`] borrows from them).
pub(crate) fn history_texts(df: &DataFrame) -> PolarsResult<Vec<(Text<'_>, usize)>> {
    HISTORY.iter().map(|(_, c)| strings(df, c)).collect()
}

/// Ids per history kind, borrowed from `texts` and coded ([`Coded`]), the kinds in parallel.
pub(crate) fn history_ids<'s>(texts: &'s [(Text<'_>, usize)]) -> Vec<Coded<'s>> {
    texts.par_iter().map(|t| if t.1 == usize::MAX { t.0.coded() } else { Coded::new(borrowed(t)) }).collect()
}

/// Reads each signal column of the other stages, aligned with `df`'s rows by the declaration
/// key ([`mirador_schema::keys::align`]: a source in the declarations' order is read as it is).
pub(crate) fn signal_columns(df: &DataFrame, sources: &BTreeMap<&str, &DataFrame>) -> PolarsResult<BTreeMap<String, Vec<f64>>> {
    let mut out = BTreeMap::new();
    for dataset in SIGNALS.iter().map(|(_, d, _)| *d).collect::<BTreeSet<_>>() {
        let Some(src) = sources.get(dataset) else { continue };
        let rows = mirador_schema::keys::align(df, src)?;
        for (name, _, column) in SIGNALS.iter().filter(|(_, d, _)| *d == dataset) {
            let v = numbers(src, column)?;
            let values = match &rows {
                None => v,
                Some(rows) => rows.iter().map(|r| r.and_then(|r| v.get(r)).copied().unwrap_or(f64::NAN)).collect(),
            };
            out.insert((*name).to_owned(), values);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_reads_counts_and_floats_alike_by_range_or_by_rows() {
        let counts: [u32; 4] = [1, 2, 3, 4];
        let floats = [0.5, 1.5, f64::NAN, 3.5];
        assert_eq!(pick(&counts, &Subset::Range(1..3)), vec![2.0, 3.0]);
        assert_eq!(pick(&counts, &Subset::Rows(&[3, 0])), vec![4.0, 1.0]);
        assert_eq!(pick(&floats, &Subset::Range(0..2)), vec![0.5, 1.5]);
        assert_eq!(pick(&floats, &Subset::Rows(&[1, 3])), vec![1.5, 3.5]);
        // Past the end: a range gives nothing, a row NaN (as the signals and history always did).
        assert!(pick(&counts, &Subset::Range(2..9)).is_empty());
        let past = pick(&floats, &Subset::Rows(&[0, 7]));
        assert_eq!(past[0], 0.5);
        assert!(past[1].is_nan());
        // Each kind of history column gives the same values either way.
        for v in [Values::Counts(counts.to_vec()), Values::Floats(vec![1.0, 2.0, 3.0, 4.0])] {
            let by_range = match &v {
                Values::Counts(c) => pick(c, &Subset::Range(0..4)),
                Values::Floats(f) => pick(f, &Subset::Range(0..4)),
            };
            assert_eq!(by_range, (0..4).map(|i| v.get(i)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn categorical_and_string_columns_give_the_same_features() {
        // Three rows a category, one category unseen in training, one row missing.
        let n = 9;
        let text = |i: usize, column: &str| -> Option<String> {
            match column {
                c if c == col::HS6 => (i != 4).then(|| ["847130", "090111", "847150"][i % 3].to_owned()),
                c if c == col::ORIGIN_COUNTRY => Some(["CN", "DE", "VN", "XX"][i % 4].to_owned()),
                c => Some(format!("{c}-{}", i % 2)),
            }
        };
        let build = |categorical: bool| -> DataFrame {
            let mut columns = Vec::new();
            for column in FeatureSpec::columns() {
                if NUMERIC.iter().any(|(_, c)| *c == column) {
                    columns.push(Column::new(column.into(), (0..n).map(|i| 1.0 + i as f64).collect::<Vec<f64>>()));
                } else {
                    let values: Vec<Option<String>> = (0..n).map(|i| text(i, column)).collect();
                    columns.push(if categorical {
                        let dtype = mirador_schema::text::categorical_type(column);
                        mirador_schema::text::categorical_of(values.iter().map(|v| v.as_deref()), column, &dtype).unwrap()
                    } else {
                        Column::new(column.into(), values)
                    });
                }
            }
            DataFrame::new_infer_height(columns).unwrap()
        };
        let (strings, categoricals) = (build(false), build(true));
        let train: Vec<bool> = (0..n).map(|i| i < 3).collect();
        let spec = FeatureSpec::learn(&strings, &train, Vec::new()).unwrap();
        let history = History::new(&[], 1.0);
        let rows = [8, 0, 4, 3];
        let a = spec.dataset_of(&strings, &history, &[], &BTreeMap::new(), Subset::Rows(&rows)).unwrap();
        let b = spec.dataset_of(&categoricals, &history, &[], &BTreeMap::new(), Subset::Rows(&rows)).unwrap();
        assert_eq!(a.names, b.names);
        let bits = |d: &Dataset| -> Vec<Vec<u64>> {
            d.columns
                .iter()
                .map(|c| match c {
                    Feature::Numeric(v) => v.iter().map(|x| x.to_bits()).collect(),
                    Feature::Categorical(v) => v.iter().map(|&x| u64::from(x)).collect(),
                })
                .collect()
        };
        assert_eq!(bits(&a), bits(&b));
        // The unseen origin and the missing HS6 are coded as no category.
        let origin = a.names.iter().position(|n| n == "origin").unwrap();
        assert!(matches!(&a.columns[origin], Feature::Categorical(v) if v[0] != u32::MAX && v[3] == u32::MAX));
        let hs6 = a.names.iter().position(|n| n == "hs6").unwrap();
        assert!(matches!(&a.columns[hs6], Feature::Categorical(v) if v[2] == u32::MAX && v[1] != u32::MAX));
    }
}
