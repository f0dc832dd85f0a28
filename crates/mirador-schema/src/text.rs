//! Text columns, read the same way whether they are held as strings or as categoricals.
//!
//! Ingest holds the declarations' low-cardinality text columns (office, HS codes, countries,
//! period, the parties' ids, ...) as categoricals: each distinct value once and a code a row, of
//! one, two or four bytes as the column's values fit ([`narrowed`]), where a string column takes
//! sixteen bytes a row. At ten million declarations that is more than two gigabytes less for the
//! frame every stage reads. Readers take either kind through [`Text`], which borrows the values
//! without copying them.
//!
//! ```
//! use mirador_schema::text::{self, Text};
//! use polars::prelude::*;
//! let codes = text::categorical(&["8471", "8471", "0901"], "hs6").unwrap();
//! let df = DataFrame::new_infer_height(vec![codes]).unwrap();
//! let hs6 = Text::column(&df, "hs6").unwrap();
//! assert_eq!(hs6.iter().collect::<Vec<_>>(), [Some("8471"), Some("8471"), Some("0901")]);
//! ```

use std::sync::Arc;

use polars::prelude::*;

/// A text column of a frame, borrowed: a string column, or a categorical one (read through its
/// mapping). Other types are cast to text once, and held.
pub enum Text<'a> {
    /// A string column.
    Str(&'a StringChunked),
    /// A categorical column, with codes of any width ([`Cats`]).
    Cat(Cats<'a>),
    /// Any other column, cast to text.
    Owned(StringChunked),
}

/// A categorical column, borrowed, by the width of its codes: ingest codes the declarations'
/// text in 32 bits, then narrows each column whose values fit to 8 or 16 bits ([`narrowed`]).
#[derive(Clone, Copy)]
pub enum Cats<'a> {
    /// 8-bit codes (at most 255 values).
    U8(&'a Categorical8Chunked),
    /// 16-bit codes (at most 65,535 values).
    U16(&'a Categorical16Chunked),
    /// 32-bit codes.
    U32(&'a Categorical32Chunked),
}

impl<'a> Cats<'a> {
    /// Column `c` as a categorical, if it is one (an enum is not).
    pub fn of(c: &'a Column) -> Option<Self> {
        let DataType::Categorical(cats, _) = c.dtype() else { return None };
        match cats.physical() {
            CategoricalPhysical::U8 => c.cat8().ok().map(Cats::U8),
            CategoricalPhysical::U16 => c.cat16().ok().map(Cats::U16),
            CategoricalPhysical::U32 => c.cat32().ok().map(Cats::U32),
        }
    }

    /// The column's mapping between codes and text.
    pub fn mapping(&self) -> &'a Arc<CategoricalMapping> {
        match *self {
            Cats::U8(ca) => ca.get_mapping(),
            Cats::U16(ca) => ca.get_mapping(),
            Cats::U32(ca) => ca.get_mapping(),
        }
    }

    /// The column's values in row order.
    pub fn iter_str(&self) -> Box<dyn Iterator<Item = Option<&'a str>> + Send + 'a> {
        match *self {
            Cats::U8(ca) => Box::new(ca.iter_str()),
            Cats::U16(ca) => Box::new(ca.iter_str()),
            Cats::U32(ca) => Box::new(ca.iter_str()),
        }
    }

    /// `f` of each row's code (`None`: null), widened to 32 bits, in row order.
    pub fn map_codes<T>(&self, f: impl FnMut(Option<CatSize>) -> T) -> Vec<T> {
        match *self {
            Cats::U8(ca) => map_codes(ca, f),
            Cats::U16(ca) => map_codes(ca, f),
            Cats::U32(ca) => map_codes(ca, f),
        }
    }
}

/// `f` of each row's code of `ca`, widened to 32 bits, in row order.
fn map_codes<C: PolarsCategoricalType, T>(ca: &CategoricalChunked<C>, mut f: impl FnMut(Option<CatSize>) -> T) -> Vec<T> {
    let mut out = Vec::with_capacity(ca.len());
    for codes in ca.physical().downcast_iter() {
        match codes.validity().filter(|v| v.unset_bits() > 0) {
            None => out.extend(codes.values().iter().map(|c| f(Some(c.as_cat())))),
            Some(valid) => out.extend(codes.values().iter().zip(valid.iter()).map(|(c, v)| f(v.then(|| c.as_cat())))),
        }
    }
    out
}

impl<'a> Text<'a> {
    /// Reads column `c` as text.
    pub fn of(c: &'a Column) -> PolarsResult<Self> {
        if let Some(cats) = Cats::of(c) {
            return Ok(Text::Cat(cats));
        }
        match c.dtype() {
            DataType::String => Ok(Text::Str(c.str()?)),
            _ => Ok(Text::Owned(c.cast(&DataType::String)?.str()?.clone())),
        }
    }

    /// Reads column `name` of `df` as text.
    pub fn column(df: &'a DataFrame, name: &str) -> PolarsResult<Self> {
        Text::of(df.column(name)?)
    }

    /// The column's values in row order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Option<&str>> + Send + '_> {
        match self {
            Text::Str(ca) => Box::new(ca.iter()),
            Text::Cat(cats) => cats.iter_str(),
            Text::Owned(ca) => Box::new(ca.iter()),
        }
    }

    /// `f` of each row's value, in row order. For a categorical column `f` runs once per
    /// category rather than once per row (for a lookup by text, say).
    pub fn per_value<T: Copy>(&self, mut f: impl FnMut(Option<&str>) -> T) -> Vec<T> {
        let Text::Cat(cats) = self else { return self.iter().map(f).collect() };
        let mapping = cats.mapping();
        let missing = f(None);
        let mut memo: Vec<Option<T>> = Vec::new();
        cats.map_codes(|cat| {
            let Some(cat) = cat else { return missing };
            let at = cat as usize;
            if at >= memo.len() {
                memo.resize(at + 1, None);
            }
            *memo[at].get_or_insert_with(|| f(mapping.cat_to_str(cat)))
        })
    }

    /// The column coded densely ([`Coded`]). A categorical column is coded from its own codes,
    /// without hashing a string per row.
    pub fn coded(&self) -> Coded<'_> {
        let cats = match self {
            Text::Str(ca) => return coded_strings(ca),
            Text::Owned(ca) => return coded_strings(ca),
            Text::Cat(cats) => cats,
        };
        let mapping = cats.mapping();
        // Dense code by categorical code, assigned in order of first appearance.
        let mut dense: Vec<u32> = Vec::new();
        let mut values = Vec::new();
        let codes = cats.map_codes(|cat| {
            let Some(cat) = cat else { return u32::MAX };
            let at = cat as usize;
            if at >= dense.len() {
                dense.resize(at + 1, u32::MAX);
            }
            if dense[at] == u32::MAX {
                dense[at] = values.len() as u32;
                values.push(mapping.cat_to_str(cat).unwrap_or_default());
            }
            dense[at]
        });
        Coded { codes, values }
    }
}

/// A string column coded densely, as [`Coded::new`] codes it. A string of at most 12 bytes is
/// held whole in its 16-byte view (its length, then its bytes): such strings are keyed by the
/// view (the bytes past the length masked), two machine words to hash and compare instead of a
/// text; longer ones by their text.
fn coded_strings(ca: &StringChunked) -> Coded<'_> {
    use polars_arrow::array::Array;
    type Fast<K> = std::collections::HashMap<K, u32, foldhash::fast::FixedState>;
    const INLINE: u32 = 12;
    let (mut short, mut long): (Fast<u128>, Fast<&str>) = (Fast::default(), Fast::default());
    let mut values = Vec::new();
    let mut codes = Vec::with_capacity(ca.len());
    for arr in ca.downcast_iter() {
        let valid = arr.validity().filter(|v| v.unset_bits() > 0);
        for (i, view) in arr.views().iter().enumerate() {
            if valid.is_some_and(|v| !v.get_bit(i)) {
                codes.push(u32::MAX);
                continue;
            }
            let first = || {
                values.push(arr.value(i));
                (values.len() - 1) as u32
            };
            let code = if view.length <= INLINE {
                // The length (low 32 bits), then the bytes, one a byte from bit 32 on.
                let bits = 32 + 8 * view.length;
                let mask = if bits >= 128 { u128::MAX } else { (1u128 << bits) - 1 };
                *short.entry(view.as_u128() & mask).or_insert_with(first)
            } else {
                *long.entry(arr.value(i)).or_insert_with(first)
            };
            codes.push(code);
        }
    }
    Coded { codes, values }
}

impl<'t> IntoIterator for &'t Text<'_> {
    type Item = Option<&'t str>;
    type IntoIter = Box<dyn Iterator<Item = Option<&'t str>> + Send + 't>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// A text column coded densely: `codes[i]` is row `i`'s index in `values` (the distinct values,
/// in order of first appearance), or `u32::MAX` for a null. Work per distinct value (a lookup, a
/// filter, a prefix) is then done once per value rather than once per row.
#[derive(Debug, Clone, Default)]
pub struct Coded<'a> {
    /// Each row's code.
    pub codes: Vec<u32>,
    /// Each code's value.
    pub values: Vec<&'a str>,
}

impl<'a> Coded<'a> {
    /// Codes `values`, one per row.
    pub fn new(values: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut index: std::collections::HashMap<&'a str, u32, foldhash::fast::FixedState> = std::collections::HashMap::default();
        let mut distinct = Vec::new();
        let codes = values
            .into_iter()
            .map(|v| match v {
                None => u32::MAX,
                Some(v) => *index.entry(v).or_insert_with(|| {
                    distinct.push(v);
                    (distinct.len() - 1) as u32
                }),
            })
            .collect();
        Coded { codes, values: distinct }
    }

    /// Row `i`'s value.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        self.values.get(*self.codes.get(i)? as usize).copied()
    }

    /// The rows' values as a string column named `name`: the distinct values gathered by row, so
    /// that a value's bytes are shared by its rows rather than copied for each.
    pub fn gather(&self, name: &str) -> PolarsResult<StringChunked> {
        let values = StringChunked::from_iter_values(name.into(), self.values.iter().copied());
        values.take(&IdxCa::from_iter(self.codes.iter().map(|&code| (code != u32::MAX).then_some(code as IdxSize))))
    }
}

/// The type of one categorical column: its own mapping (named after the column, unique to this
/// call), so that the column's dictionary in a parquet file holds only its own values.
pub fn categorical_type(column: &str) -> DataType {
    categorical_type_with(column, CategoricalPhysical::U32)
}

/// As [`categorical_type`], with codes of width `physical`.
fn categorical_type_with(column: &str, physical: CategoricalPhysical) -> DataType {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cats: Arc<Categories> = Categories::new(format!("{column}#{}-{n}", std::process::id()).into(), "mirador".into(), physical);
    DataType::from_categories(cats)
}

/// Column `c` with codes as narrow as its values allow: a 32-bit categorical whose mapping holds
/// at most 255 values gets 8-bit codes, at most 65,535 values 16-bit codes (a quarter or half
/// the memory), every row keeping its code, under a new mapping of the same values in the same
/// order. Any other column, or one whose mapping has gaps, is returned as it is.
pub fn narrowed(c: &Column) -> PolarsResult<Column> {
    let Some(Cats::U32(ca)) = Cats::of(c) else { return Ok(c.clone()) };
    let physical = CategoricalPhysical::smallest_physical(ca.get_mapping().num_cats_upper_bound())?;
    if physical == CategoricalPhysical::U32 {
        return Ok(c.clone());
    }
    let Some(dtype) = same_mapping(c.name(), ca.get_mapping(), physical)? else { return Ok(c.clone()) };
    let codes = ca.physical().cast(&physical.dtype())?;
    let narrowed = match physical {
        CategoricalPhysical::U8 => Categorical8Chunked::from_cats_and_dtype(codes.u8()?.clone(), dtype).into_series(),
        _ => Categorical16Chunked::from_cats_and_dtype(codes.u16()?.clone(), dtype).into_series(),
    };
    Ok(narrowed.into_column())
}

/// Column `c` with 32-bit codes if it is a narrower categorical ([`narrowed`]): every row keeps
/// its code, under a new mapping of the same values in the same order, which takes as many
/// values as a column coded in 32 bits (to add another frame's values to it, say). Any other
/// column is returned as it is.
pub fn widened(c: &Column) -> PolarsResult<Column> {
    let (mapping, codes) = match Cats::of(c) {
        Some(Cats::U8(ca)) => (ca.get_mapping(), ca.physical().cast(&DataType::UInt32)?),
        Some(Cats::U16(ca)) => (ca.get_mapping(), ca.physical().cast(&DataType::UInt32)?),
        _ => return Ok(c.clone()),
    };
    let Some(dtype) = same_mapping(c.name(), mapping, CategoricalPhysical::U32)? else { return Ok(c.clone()) };
    Ok(Categorical32Chunked::from_cats_and_dtype(codes.u32()?.clone(), dtype).into_series().into_column())
}

/// A categorical type of its own for column `name`, with codes of width `physical`, whose
/// mapping holds `mapping`'s values under the same codes; `None` where `mapping` has gaps.
fn same_mapping(name: &str, mapping: &CategoricalMapping, physical: CategoricalPhysical) -> PolarsResult<Option<DataType>> {
    let dtype = categorical_type_with(name, physical);
    let DataType::Categorical(_, copy) = &dtype else { polars_bail!(SchemaMismatch: "`{name}` does not have a categorical type") };
    for cat in 0..mapping.num_cats_upper_bound() as CatSize {
        // A fresh mapping gives its values codes 0, 1, ... in the order they come.
        if mapping.cat_to_str(cat).map(|s| copy.insert_cat(s)).transpose()? != Some(cat) {
            return Ok(None);
        }
    }
    Ok(Some(dtype))
}

/// A categorical column of `values`, with a mapping of its own.
pub fn categorical<S: AsRef<str>>(values: &[S], name: &str) -> PolarsResult<Column> {
    categorical_of(values.iter().map(|v| Some(v.as_ref())), name, &categorical_type(name))
}

/// A categorical column of type `dtype` (from [`categorical_type`]; columns built in pieces share
/// one) holding `values`.
pub fn categorical_of<'s>(values: impl IntoIterator<Item = Option<&'s str>>, name: &str, dtype: &DataType) -> PolarsResult<Column> {
    let ca = Categorical32Chunked::from_str_iter(name.into(), dtype.clone(), values)?;
    Ok(ca.into_series().into_column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_categoricals_and_other_types_read_alike() {
        let dtype = categorical_type("x");
        let df = DataFrame::new_infer_height(vec![
            Column::new("s".into(), [Some("a"), None, Some("b")]),
            categorical_of([Some("a"), None, Some("b")], "c", &dtype).unwrap(),
            Column::new("n".into(), [Some(1i32), None, Some(2)]),
        ])
        .unwrap();
        for (name, want) in [("s", [Some("a"), None, Some("b")]), ("c", [Some("a"), None, Some("b")]), ("n", [Some("1"), None, Some("2")])]
        {
            let t = Text::column(&df, name).unwrap();
            assert_eq!(t.iter().collect::<Vec<_>>(), want, "{name}");
        }
    }

    #[test]
    fn coding_a_categorical_matches_coding_its_strings() {
        let values = [Some("b"), None, Some("a"), Some("b"), Some("c"), Some("a")];
        // The mapping already holds values this column lacks, in another order.
        let dtype = categorical_type("x");
        categorical_of([Some("z"), Some("c"), Some("a")], "x", &dtype).unwrap();
        let df = DataFrame::new_infer_height(vec![categorical_of(values, "x", &dtype).unwrap()]).unwrap();
        let from_codes = Text::column(&df, "x").unwrap();
        let (a, b) = (from_codes.coded(), Coded::new(values));
        assert_eq!((&a.codes, &a.values), (&b.codes, &b.values));
        assert_eq!(b.codes, [0, u32::MAX, 1, 0, 2, 1]);
        assert_eq!((0..values.len()).map(|i| b.get(i)).collect::<Vec<_>>(), values);
    }

    #[test]
    fn coding_strings_by_their_views_matches_coding_their_text() {
        // Strings around the 12 bytes a view holds, sharing prefixes and bytes past their length
        // (a short string that is a prefix of another, empty ones, non-ASCII), with nulls, in a
        // column of several chunks.
        let pool = ["", "a", "ab", "abcdefghijk", "abcdefghijkl", "abcdefghijklm", "abcdefghijklmnopq", "é", "éé", "ab\0", "ab\0\0"];
        let values: Vec<Option<&str>> = (0..500usize).map(|i| (i % 13 != 5).then(|| pool[(i * 7 + i / 11) % pool.len()])).collect();
        let mut ca = StringChunked::from_iter_options("s".into(), values[..200].iter().copied());
        ca.append(&StringChunked::from_iter_options("s".into(), values[200..].iter().copied())).unwrap();
        assert!(ca.chunks().len() > 1);
        let text = Text::Str(&ca);
        let (a, b) = (text.coded(), Coded::new(values.iter().copied()));
        assert_eq!((&a.codes, &a.values), (&b.codes, &b.values));
        assert_eq!(b.values.len(), pool.len());
    }

    /// A column narrowed to 8 or 16 bits keeps each row's code and reads, codes and looks up
    /// values as the 32-bit column did: nulls, several chunks, a mapping holding values the
    /// column lacks. One with more values than 16 bits hold is kept as it is.
    #[test]
    fn a_narrowed_column_reads_and_codes_as_its_32_bit_column() {
        for (distinct, width) in [
            (3, CategoricalPhysical::U8),
            (254, CategoricalPhysical::U8),
            (255, CategoricalPhysical::U16),
            (80_000, CategoricalPhysical::U32),
        ] {
            let names: Vec<String> = (0..distinct).map(|v| format!("v{v}")).collect();
            let values: Vec<Option<&str>> = (0..2 * distinct).map(|i| (i % 7 != 3).then(|| names[i * 31 % distinct].as_str())).collect();
            let dtype = categorical_type("x");
            // The mapping first holds a value the column lacks: `distinct` + 1 values in all
            // (every value is in the column).
            categorical_of([Some("absent")], "x", &dtype).unwrap();
            let mut wide = categorical_of(values[..distinct].iter().copied(), "x", &dtype).unwrap();
            wide.append(&categorical_of(values[distinct..].iter().copied(), "x", &dtype).unwrap()).unwrap();
            let narrow = narrowed(&wide).unwrap();
            assert_eq!(narrow.dtype().cat_physical().unwrap(), width, "{distinct} values");
            let (a, b) = (Text::of(&wide).unwrap(), Text::of(&narrow).unwrap());
            let (Text::Cat(wide_codes), Text::Cat(narrow_codes)) = (&a, &b) else { panic!("not categoricals") };
            assert_eq!(wide_codes.map_codes(|c| c), narrow_codes.map_codes(|c| c), "{distinct} values");
            assert_eq!(a.iter().collect::<Vec<_>>(), values);
            assert_eq!(b.iter().collect::<Vec<_>>(), values);
            let (ca, cb) = (a.coded(), b.coded());
            assert_eq!((&ca.codes, &ca.values), (&cb.codes, &cb.values));
            let wide_again = widened(&narrow).unwrap();
            assert_eq!(wide_again.dtype().cat_physical().unwrap(), CategoricalPhysical::U32);
            assert_eq!(Text::of(&wide_again).unwrap().iter().collect::<Vec<_>>(), values);
            let length = |v: Option<&str>| v.map_or(0, str::len);
            assert_eq!(b.per_value(length), values.iter().map(|v| length(*v)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn narrowing_leaves_other_columns_as_they_are() {
        let s = Column::new("s".into(), ["a", "b"]);
        assert_eq!(narrowed(&s).unwrap(), s);
        let n = Column::new("n".into(), [1u32, 2]);
        assert_eq!(narrowed(&n).unwrap(), n);
    }

    #[test]
    fn pieces_of_one_type_stack_and_keep_their_values() {
        let dtype = categorical_type("x");
        let mut a = DataFrame::new_infer_height(vec![categorical_of([Some("p"), Some("q")], "x", &dtype).unwrap()]).unwrap();
        let b = DataFrame::new_infer_height(vec![categorical_of([Some("q"), Some("r")], "x", &dtype).unwrap()]).unwrap();
        a.vstack_mut(&b).unwrap();
        let got: Vec<_> = Text::column(&a, "x").unwrap().iter().map(Option::unwrap).map(str::to_owned).collect();
        assert_eq!(got, ["p", "q", "q", "r"]);
    }
}
