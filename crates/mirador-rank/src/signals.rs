//! The per-declaration signals the ranking reads, held as the frames hold them.
//!
//! The stages list their scores in the declarations' order (and share the declarations' key
//! columns), so each number is read where it is: the columns are cut at the union of their
//! chunks' boundaries ([`Parts`]), and each part of a column is a slice of one of its chunks,
//! shared rather than copied. At ten million declarations, copying the signals, amounts and
//! dates into vectors of their own took about a gigabyte. Only a stage's output that lists the
//! declarations in another order is lined up into new columns.

use std::collections::HashMap;
use std::ops::Range;

use foldhash::fast::FixedState;
use mirador_pipeline::columns::flags;
use mirador_schema::catalog::{fraud_scores, kmeans_scores, mirror_exposure};
use mirador_schema::col;
use mirador_schema::text::Text;
use polars::prelude::*;
use polars_arrow::array::PrimitiveArray;
use polars_arrow::bitmap::Bitmap;
use polars_arrow::types::NativeType;

/// One declaration's signals from the other stages; texts are borrowed from the stages' frames.
#[derive(Default, Clone)]
pub(crate) struct Signals<'a> {
    pub(crate) prob: Option<f64>,
    pub(crate) expected: f64,
    pub(crate) model_flag: bool,
    pub(crate) top_feature: Option<&'a str>,
    pub(crate) kmeans_flag: bool,
    pub(crate) price_ratio: Option<f64>,
    pub(crate) shortfall: f64,
    pub(crate) mirror: f64,
}

/// A stage's per-declaration output lined up with the declarations
/// ([`mirador_schema::keys::align`]): `None` when it lists them in their order.
struct Aligned(Option<Vec<Option<usize>>>);

impl Aligned {
    fn new(declarations: &DataFrame, df: &DataFrame) -> PolarsResult<Self> {
        Ok(Aligned(mirador_schema::keys::align(declarations, df)?))
    }

    /// `values` (by row of the output) in declaration order; `missing` for a declaration the
    /// output lacks.
    fn values<T: Copy>(&self, values: Vec<T>, missing: T) -> Vec<T> {
        match &self.0 {
            None => values,
            Some(at) => at.iter().map(|j| j.map_or(missing, |j| values[j])).collect(),
        }
    }

    /// Column `ca` (by row of the output) in declaration order, a null for a declaration the
    /// output lacks.
    fn column(&self, ca: Float64Chunked) -> PolarsResult<Float64Chunked> {
        match &self.0 {
            None => Ok(ca),
            Some(at) => ca.take(&at.iter().map(|j| j.map(|j| j as IdxSize)).collect::<IdxCa>()),
        }
    }
}

/// Numeric column `name` of `df` as `f64`, nulls kept: a `Float64` column is shared as it is
/// (its chunks, not a copy), another numeric type cast.
fn floats(df: &DataFrame, name: &str) -> PolarsResult<Float64Chunked> {
    let c = df.column(name).map_err(|_| polars_err!(ColumnNotFound: "column `{}` is missing", name))?;
    if !c.dtype().is_primitive_numeric() {
        polars_bail!(SchemaMismatch: "column `{}` is {}, not a number", name, c.dtype());
    }
    match c.f64() {
        Ok(ca) => Ok(ca.clone()),
        Err(_) => Ok(c.cast(&DataType::Float64)?.f64()?.clone()),
    }
}

/// Date column `name` of `df` as day numbers (days since 1970-01-01), nulls kept, shared.
fn day_numbers(df: &DataFrame, name: &str) -> PolarsResult<Int32Chunked> {
    let c = df.column(name).map_err(|_| polars_err!(ColumnNotFound: "column `{}` is missing", name))?;
    if c.dtype() != &DataType::Date {
        polars_bail!(SchemaMismatch: "column `{}` is {}, not a date", name, c.dtype());
    }
    Ok(c.date()?.physical().clone())
}

/// The fraud model's scores.
struct Model<'a> {
    rows: Aligned,
    prob: Float64Chunked,
    expected: Float64Chunked,
    flag: Vec<bool>,
    /// The first reason of each flagged row, coded (by row of the scores; `u32::MAX`: none, or
    /// not flagged: only flagged rows' reasons are tallied), and each code's reason.
    top: Vec<u32>,
    top_values: Vec<&'a str>,
}

/// The k-means stage's scores.
struct KMeans {
    rows: Aligned,
    flag: Vec<bool>,
    ratio: Float64Chunked,
    shortfall: Float64Chunked,
}

/// The revenue-gap stage's per-declaration shares.
struct Mirror {
    rows: Aligned,
    share: Float64Chunked,
}

/// The signals of the stages that ran, as their frames hold them.
pub(crate) struct Sources<'a> {
    model: Option<Model<'a>>,
    kmeans: Option<KMeans>,
    mirror: Option<Mirror>,
}

/// The first reason of each flagged row of `top_features`, coded: the codes by row
/// (`u32::MAX`: none) and each code's reason.
fn first_reasons<'a>(top_features: &'a Text<'_>, flag: &[bool]) -> (Vec<u32>, Vec<&'a str>) {
    let mut index: HashMap<&str, u32, FixedState> = HashMap::default();
    let mut values = Vec::new();
    let codes = top_features
        .iter()
        .zip(flag)
        .map(|(t, &flagged)| {
            let Some(first) = t.filter(|_| flagged).and_then(|t| t.split(';').next()).filter(|t| !t.is_empty()) else {
                return u32::MAX;
            };
            *index.entry(first).or_insert_with(|| {
                values.push(first);
                (values.len() - 1) as u32
            })
        })
        .collect();
    (codes, values)
}

impl<'a> Sources<'a> {
    /// The stages' outputs lined up with `declarations`; `top_features` is `fraud`'s column of
    /// that name.
    pub(crate) fn new(
        declarations: &DataFrame,
        fraud: Option<&DataFrame>,
        top_features: Option<&'a Text<'_>>,
        kmeans: Option<&DataFrame>,
        mirror: Option<&DataFrame>,
    ) -> PolarsResult<Self> {
        let model = match (fraud, top_features) {
            (Some(f), Some(top_features)) => {
                let flag = flags(f, fraud_scores::FRAUD_FLAG)?;
                let (top, top_values) = first_reasons(top_features, &flag);
                Some(Model {
                    rows: Aligned::new(declarations, f)?,
                    prob: floats(f, fraud_scores::FRAUD_PROBABILITY)?,
                    expected: floats(f, fraud_scores::EXPECTED_DUTY_AT_RISK_USD)?,
                    flag,
                    top,
                    top_values,
                })
            }
            _ => None,
        };
        let kmeans = kmeans
            .map(|k| -> PolarsResult<KMeans> {
                Ok(KMeans {
                    rows: Aligned::new(declarations, k)?,
                    flag: flags(k, kmeans_scores::UNDERVALUATION_FLAG)?,
                    ratio: floats(k, kmeans_scores::PRICE_RATIO)?,
                    shortfall: floats(k, kmeans_scores::UNDERVALUED_DUTY_USD)?,
                })
            })
            .transpose()?;
        let mirror = mirror
            .map(|m| -> PolarsResult<Mirror> {
                Ok(Mirror { rows: Aligned::new(declarations, m)?, share: floats(m, mirror_exposure::MIRROR_DUTY_SHARE_USD)? })
            })
            .transpose()?;
        Ok(Sources { model, kmeans, mirror })
    }

    /// Which stages ran: the fraud model, k-means, the revenue gap.
    pub(crate) fn ran(&self) -> (bool, bool, bool) {
        (self.model.is_some(), self.kmeans.is_some(), self.mirror.is_some())
    }
}

/// Dense codes by row (`0..count`), each held in as few bytes as `count` allows: a row's code
/// of an HS6, an origin or a reason takes one byte rather than four where there are fewer than
/// 256 of them. A code past `count` (none) reads as `count`.
pub(crate) enum Codes {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl Codes {
    pub(crate) fn new(codes: Vec<u32>, count: usize) -> Self {
        let none = u32::try_from(count).unwrap_or(u32::MAX);
        if count < usize::from(u8::MAX) {
            Codes::U8(codes.iter().map(|&c| c.min(none) as u8).collect())
        } else if count < usize::from(u16::MAX) {
            Codes::U16(codes.iter().map(|&c| c.min(none) as u16).collect())
        } else {
            let mut codes = codes;
            for c in &mut codes {
                *c = (*c).min(none);
            }
            Codes::U32(codes)
        }
    }

    /// Row `i`'s code.
    pub(crate) fn get(&self, i: usize) -> u32 {
        match self {
            Codes::U8(c) => u32::from(c[i]),
            Codes::U16(c) => u32::from(c[i]),
            Codes::U32(c) => c[i],
        }
    }

    fn len(&self) -> usize {
        match self {
            Codes::U8(c) => c.len(),
            Codes::U16(c) => c.len(),
            Codes::U32(c) => c.len(),
        }
    }

    /// The codes of rows `rows`, read from 0.
    fn slice(&self, rows: Range<usize>) -> CodesSlice<'_> {
        match self {
            Codes::U8(c) => CodesSlice::U8(&c[rows]),
            Codes::U16(c) => CodesSlice::U16(&c[rows]),
            Codes::U32(c) => CodesSlice::U32(&c[rows]),
        }
    }
}

/// Some rows' [`Codes`].
#[derive(Clone, Copy)]
enum CodesSlice<'r> {
    U8(&'r [u8]),
    U16(&'r [u16]),
    U32(&'r [u32]),
}

impl CodesSlice<'_> {
    fn get(&self, k: usize) -> u32 {
        match self {
            CodesSlice::U8(c) => u32::from(c[k]),
            CodesSlice::U16(c) => u32::from(c[k]),
            CodesSlice::U32(c) => c[k],
        }
    }
}

/// Row ranges over which every column of [`Rows`] is one slice of one of its chunks: the
/// declarations cut at each column's chunk boundaries.
struct Parts(Vec<usize>);

impl Parts {
    /// The parts of `n` rows held in chunks of `lengths` (a list per column).
    fn new(n: usize, lengths: impl IntoIterator<Item = Vec<usize>>) -> Self {
        let mut bounds = vec![0, n];
        for column in lengths {
            bounds.extend(column.into_iter().scan(0, |end, l| {
                *end += l;
                Some(*end)
            }));
        }
        bounds.sort_unstable();
        bounds.dedup();
        bounds.retain(|&b| b <= n);
        Parts(bounds)
    }

    fn ranges(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        self.0.windows(2).map(|w| w[0]..w[1])
    }
}

/// The chunk lengths of `ca`, checked to hold `n` rows.
fn chunk_lengths<T: PolarsDataType>(ca: &ChunkedArray<T>, n: usize) -> PolarsResult<Vec<usize>> {
    polars_ensure!(ca.len() == n, ShapeMismatch: "column `{}` has {} rows for {} declarations", ca.name(), ca.len(), n);
    Ok(ca.chunks().iter().map(|c| c.len()).collect())
}

/// A numeric column cut at [`Parts`]: one array a part, each a slice of one of the column's
/// chunks (sharing its memory), without a validity where it has no null.
struct Cut<T: NativeType>(Vec<PrimitiveArray<T>>);

impl<T: NativeType> Cut<T> {
    fn new<P: PolarsNumericType<Native = T>>(ca: &ChunkedArray<P>, parts: &Parts) -> Self {
        let mut chunks = ca.downcast_iter();
        let (mut chunk, mut start) = (chunks.next(), 0);
        let mut cut = Vec::with_capacity(parts.0.len());
        for r in parts.ranges() {
            // The parts hold every chunk boundary: a part starts inside a chunk and ends in it.
            while let Some(c) = chunk
                && r.start >= start + c.len()
            {
                start += c.len();
                chunk = chunks.next();
            }
            let Some(c) = chunk else { break };
            let part = c.clone().sliced(r.start - start, r.len());
            let nulls = part.validity().is_some_and(|v| v.unset_bits() > 0);
            cut.push(if nulls { part } else { part.with_validity(None) });
        }
        Cut(cut)
    }

    fn part(&self, b: usize) -> Values<'_, T> {
        let a = &self.0[b];
        Values { values: a.values().as_slice(), valid: a.validity() }
    }
}

/// One part of a cut column, read by a row's place in the part.
#[derive(Clone, Copy)]
struct Values<'r, T> {
    values: &'r [T],
    valid: Option<&'r Bitmap>,
}

impl<T: Copy> Values<'_, T> {
    /// The value, `None` for a null.
    fn get(&self, k: usize) -> Option<T> {
        match self.valid {
            Some(v) if !v.get_bit(k) => None,
            _ => Some(self.values[k]),
        }
    }
}

impl Values<'_, f64> {
    /// The value as an amount: a null is no money (as [`mirador_pipeline::columns::amounts`]
    /// reads it).
    fn amount(&self, k: usize) -> f64 {
        self.get(k).unwrap_or(mirador_pipeline::columns::NO_AMOUNT)
    }
}

/// What the ranking reads of every declaration row, in the declarations' order: its amounts and
/// day, and the signals of the stages that ran.
pub(crate) struct Rows<'a> {
    parts: Parts,
    use_model: bool,
    value: Cut<f64>,
    duty: Cut<f64>,
    day: Option<Cut<i32>>,
    prob: Option<Cut<f64>>,
    expected: Option<Cut<f64>>,
    model_flag: Option<Vec<bool>>,
    top: Option<(Codes, Vec<&'a str>)>,
    kmeans_flag: Option<Vec<bool>>,
    price_ratio: Option<Cut<f64>>,
    shortfall: Option<Cut<f64>>,
    mirror: Option<Cut<f64>>,
}

impl<'a> Rows<'a> {
    /// The rows of `declarations` (their `value_usd`, `duty_usd` and, if they have one, `date`)
    /// with the signals of `sources`.
    pub(crate) fn new(declarations: &DataFrame, sources: Sources<'a>) -> PolarsResult<Self> {
        let n = declarations.height();
        let value = floats(declarations, col::VALUE_USD)?;
        let duty = floats(declarations, col::DUTY_USD)?;
        // Declarations without a date column have no first and last day.
        let day = declarations.column(col::DATE).is_ok().then(|| day_numbers(declarations, col::DATE)).transpose()?;
        let Sources { model, kmeans, mirror } = sources;
        let use_model = model.is_some();
        let (mut prob, mut expected, mut model_flag, mut top) = (None, None, None, None);
        if let Some(m) = model {
            prob = Some(m.rows.column(m.prob)?);
            expected = Some(m.rows.column(m.expected)?);
            let codes = m.rows.values(m.top, u32::MAX);
            top = Some((Codes::new(codes, m.top_values.len()), m.top_values));
            model_flag = Some(m.rows.values(m.flag, false));
        }
        let (mut kmeans_flag, mut price_ratio, mut shortfall) = (None, None, None);
        if let Some(k) = kmeans {
            kmeans_flag = Some(k.rows.values(k.flag, false));
            price_ratio = Some(k.rows.column(k.ratio)?);
            shortfall = Some(k.rows.column(k.shortfall)?);
        }
        let mirror = mirror.map(|m| m.rows.column(m.share)).transpose()?;

        let numbers =
            [Some(&value), Some(&duty), prob.as_ref(), expected.as_ref(), price_ratio.as_ref(), shortfall.as_ref(), mirror.as_ref()];
        let mut lengths = numbers.iter().flatten().map(|ca| chunk_lengths(ca, n)).collect::<PolarsResult<Vec<_>>>()?;
        lengths.extend(day.as_ref().map(|d| chunk_lengths(d, n)).transpose()?);
        for flags in [&model_flag, &kmeans_flag].into_iter().flatten() {
            polars_ensure!(flags.len() == n, ShapeMismatch: "{} flags for {} declarations", flags.len(), n);
        }
        if let Some((codes, _)) = &top {
            polars_ensure!(codes.len() == n, ShapeMismatch: "{} reasons for {} declarations", codes.len(), n);
        }
        let parts = Parts::new(n, lengths);
        let cut = |ca: Option<Float64Chunked>| ca.map(|ca| Cut::new(&ca, &parts));
        Ok(Rows {
            use_model,
            value: Cut::new(&value, &parts),
            duty: Cut::new(&duty, &parts),
            day: day.map(|d| Cut::new(&d, &parts)),
            prob: cut(prob),
            expected: cut(expected),
            model_flag,
            top,
            kmeans_flag,
            price_ratio: cut(price_ratio),
            shortfall: cut(shortfall),
            mirror: cut(mirror),
            parts,
        })
    }

    /// The rows part by part ([`Parts`]), in order.
    pub(crate) fn parts(&self) -> impl Iterator<Item = Part<'_, 'a>> + '_ {
        self.parts.ranges().enumerate().map(|(b, rows)| Part {
            use_model: self.use_model,
            value: self.value.part(b),
            duty: self.duty.part(b),
            day: self.day.as_ref().map(|d| d.part(b)),
            prob: self.prob.as_ref().map(|c| c.part(b)),
            expected: self.expected.as_ref().map(|c| c.part(b)),
            model_flag: self.model_flag.as_ref().map(|f| &f[rows.clone()]),
            top: self.top.as_ref().map(|(codes, values)| (codes.slice(rows.clone()), values.as_slice())),
            kmeans_flag: self.kmeans_flag.as_ref().map(|f| &f[rows.clone()]),
            price_ratio: self.price_ratio.as_ref().map(|c| c.part(b)),
            shortfall: self.shortfall.as_ref().map(|c| c.part(b)),
            mirror: self.mirror.as_ref().map(|c| c.part(b)),
            rows,
        })
    }

    /// Every row's signals, in order.
    pub(crate) fn signals(&self) -> Vec<Signals<'a>> {
        self.parts().flat_map(|p| (0..p.rows.len()).map(move |k| p.signals(k))).collect()
    }
}

/// The rows of one part: row `rows.start + k` is read at `k`.
pub(crate) struct Part<'r, 'a> {
    pub(crate) rows: Range<usize>,
    use_model: bool,
    value: Values<'r, f64>,
    duty: Values<'r, f64>,
    day: Option<Values<'r, i32>>,
    prob: Option<Values<'r, f64>>,
    expected: Option<Values<'r, f64>>,
    model_flag: Option<&'r [bool]>,
    top: Option<(CodesSlice<'r>, &'r [&'a str])>,
    kmeans_flag: Option<&'r [bool]>,
    price_ratio: Option<Values<'r, f64>>,
    shortfall: Option<Values<'r, f64>>,
    mirror: Option<Values<'r, f64>>,
}

impl<'a> Part<'_, 'a> {
    pub(crate) fn value(&self, k: usize) -> f64 {
        self.value.amount(k)
    }

    pub(crate) fn duty(&self, k: usize) -> f64 {
        self.duty.amount(k)
    }

    /// The day declared (days since 1970-01-01), if dated.
    pub(crate) fn day(&self, k: usize) -> Option<i32> {
        self.day.and_then(|d| d.get(k))
    }

    pub(crate) fn prob(&self, k: usize) -> Option<f64> {
        self.prob.and_then(|p| p.get(k))
    }

    pub(crate) fn expected(&self, k: usize) -> f64 {
        self.expected.map_or(0.0, |e| e.amount(k))
    }

    pub(crate) fn model_flag(&self, k: usize) -> bool {
        self.model_flag.is_some_and(|f| f[k])
    }

    /// The first reason of a flagged row.
    pub(crate) fn top_feature(&self, k: usize) -> Option<&'a str> {
        let (codes, values) = self.top?;
        values.get(codes.get(k) as usize).copied()
    }

    pub(crate) fn kmeans_flag(&self, k: usize) -> bool {
        self.kmeans_flag.is_some_and(|f| f[k])
    }

    pub(crate) fn price_ratio(&self, k: usize) -> Option<f64> {
        self.price_ratio.and_then(|r| r.get(k))
    }

    /// The k-means shortfall of a flagged row (0 otherwise).
    pub(crate) fn shortfall(&self, k: usize) -> f64 {
        if self.kmeans_flag(k) { self.shortfall.map_or(0.0, |s| s.amount(k)) } else { 0.0 }
    }

    pub(crate) fn mirror(&self, k: usize) -> f64 {
        self.mirror.map_or(0.0, |m| m.amount(k))
    }

    /// The expected recoverable duty: the model's expected duty at risk plus its fraud
    /// probability × the k-means shortfall (the k-means shortfall alone without a model).
    pub(crate) fn recoverable(&self, k: usize) -> f64 {
        let shortfall = self.shortfall(k);
        if self.use_model { self.expected(k) + self.prob(k).unwrap_or(0.0) * shortfall } else { shortfall }
    }

    /// The revenue at risk: the expected recoverable duty plus the mirror-gap share.
    pub(crate) fn risk(&self, k: usize) -> f64 {
        self.recoverable(k) + self.mirror(k)
    }

    /// The row's signals, as one record.
    pub(crate) fn signals(&self, k: usize) -> Signals<'a> {
        Signals {
            prob: self.prob(k),
            expected: self.expected(k),
            model_flag: self.model_flag(k),
            top_feature: self.top_feature(k),
            kmeans_flag: self.kmeans_flag(k),
            price_ratio: self.price_ratio(k),
            shortfall: self.shortfall(k),
            mirror: self.mirror(k),
        }
    }
}

/// The amounts of a cut column, for tests: row by row.
#[cfg(test)]
fn cut_amounts(cut: &Cut<f64>) -> Vec<f64> {
    cut.0.iter().flat_map(|a| a.iter().map(|v| v.copied().unwrap_or(0.0))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A column of `values` in chunks of `lengths`.
    fn chunked(name: &str, values: &[Option<f64>], lengths: &[usize]) -> Float64Chunked {
        let mut at = 0;
        let mut ca: Option<Float64Chunked> = None;
        for &l in lengths {
            let piece = Float64Chunked::from_iter_options(name.into(), values[at..at + l].iter().copied());
            at += l;
            match &mut ca {
                None => ca = Some(piece),
                Some(ca) => ca.append(&piece).unwrap(),
            }
        }
        ca.unwrap()
    }

    #[test]
    fn parts_cut_every_column_inside_one_of_its_chunks() {
        let values: Vec<Option<f64>> = (0..20).map(|i| (i % 7 != 3).then_some(f64::from(i) * 1.5)).collect();
        let a = chunked("a", &values, &[5, 10, 5]);
        let b = chunked("b", &values, &[8, 0, 12]);
        let parts = Parts::new(20, [chunk_lengths(&a, 20).unwrap(), chunk_lengths(&b, 20).unwrap()]);
        assert_eq!(parts.0, [0, 5, 8, 15, 20]);
        for ca in [&a, &b] {
            let cut = Cut::new(ca, &parts);
            assert_eq!(cut.0.len(), 4);
            let read: Vec<Option<f64>> =
                parts.ranges().enumerate().flat_map(|(p, r)| (0..r.len()).map(move |k| (p, k))).map(|(p, k)| cut.part(p).get(k)).collect();
            assert_eq!(read, values);
            assert_eq!(cut_amounts(&cut), values.iter().map(|v| v.unwrap_or(0.0)).collect::<Vec<_>>());
            // A part without nulls reads without a validity.
            assert!(cut.0[1].validity().is_none());
        }
        assert!(chunk_lengths(&a, 19).is_err());
    }

    #[test]
    fn codes_are_held_narrow_and_read_back_whole() {
        for (count, width) in [(3usize, 1), (254, 1), (255, 2), (65_534, 2), (65_535, 4)] {
            let mut codes: Vec<u32> = (0..1000).map(|i| (i * 7919) % count as u32).collect();
            codes[5] = u32::MAX;
            let held = Codes::new(codes.clone(), count);
            let bytes = match &held {
                Codes::U8(_) => 1,
                Codes::U16(_) => 2,
                Codes::U32(_) => 4,
            };
            assert_eq!(bytes, width, "{count} codes");
            // A code past the count (none) reads as the count.
            let want: Vec<u32> = codes.iter().map(|&c| c.min(count as u32)).collect();
            assert_eq!((0..1000).map(|i| held.get(i)).collect::<Vec<_>>(), want);
            let slice = held.slice(990..1000);
            assert_eq!((0..10).map(|k| slice.get(k)).collect::<Vec<_>>(), want[990..]);
        }
    }

    #[test]
    fn no_rows_make_no_parts() {
        let parts = Parts::new(0, [vec![0]]);
        assert_eq!(parts.ranges().count(), 0);
    }
}
