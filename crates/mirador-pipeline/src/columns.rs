//! A frame's columns read into plain vectors, one value per row, for stages that walk another
//! stage's dataset row by row (the ranked list, the report).
//!
//! Each reader takes the column types it names and says what a null becomes; the caller picks
//! the reader whose null policy it means, or turns the `Option`s into something else where it
//! says so. A missing column, or a column of another type, is an error naming the column: never a
//! panic, and never a cast that would turn text into nulls without a word.
//!
//! ```
//! use mirador_pipeline::columns;
//! use polars::prelude::*;
//! let df = df!("duty_usd" => [Some(12.5), None], "flag" => [Some(true), None]).unwrap();
//! assert_eq!(columns::numbers(&df, "duty_usd").unwrap(), [Some(12.5), None]);
//! assert_eq!(*columns::amounts(&df, "duty_usd").unwrap(), [12.5, columns::NO_AMOUNT]);
//! assert_eq!(columns::flags(&df, "flag").unwrap(), [true, false]);
//! assert!(columns::numbers(&df, "flag").unwrap_err().to_string().contains("`flag`"));
//! ```

use std::borrow::Cow;

use mirador_schema::text::Text;
use polars::prelude::*;
use polars_arrow::bitmap::Bitmap;

/// What [`amounts`] reads a null as: no money.
pub const NO_AMOUNT: f64 = 0.0;

/// Column `name` of `df`, or an error saying it is missing.
fn column<'a>(df: &'a DataFrame, name: &str) -> PolarsResult<&'a Column> {
    df.column(name).map_err(|_| polars_err!(ColumnNotFound: "column `{}` is missing", name))
}

fn wrong_type(name: &str, found: &DataType, wanted: &str) -> PolarsError {
    polars_err!(SchemaMismatch: "column `{}` is {}, not {}", name, found, wanted)
}

/// A text column (string or categorical), a null as `None`.
pub fn texts(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<String>>> {
    let c = column(df, name)?;
    if !matches!(c.dtype(), DataType::String | DataType::Categorical(..)) {
        return Err(wrong_type(name, c.dtype(), "text"));
    }
    Ok(Text::of(c)?.iter().map(|v| v.map(str::to_owned)).collect())
}

/// A numeric column (any integer or float type) as `f64`, a null as `None` (a NaN stays NaN).
pub fn numbers(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<f64>>> {
    let mut out = Vec::with_capacity(df.height());
    each_float(df, name, |values, valid| match valid {
        None => out.extend(values.iter().map(|&v| Some(v))),
        Some(valid) => out.extend(values.iter().zip(valid.iter()).map(|(&v, ok)| ok.then_some(v))),
    })?;
    Ok(out)
}

/// A column of amounts (any integer or float type) as `f64`, a null as [`NO_AMOUNT`]: for sums,
/// where a row without an amount adds nothing. A `Float64` column of one chunk without nulls (the
/// declarations' amounts, as ingest holds them) is borrowed, not copied: 80 MB a column at ten
/// million rows.
pub fn amounts<'a>(df: &'a DataFrame, name: &str) -> PolarsResult<Cow<'a, [f64]>> {
    if let Ok(ca) = column(df, name)?.f64()
        && let Ok(values) = ca.cont_slice()
    {
        return Ok(Cow::Borrowed(values));
    }
    let mut out = Vec::with_capacity(df.height());
    each_float(df, name, |values, valid| match valid {
        None => out.extend_from_slice(values),
        Some(valid) => out.extend(values.iter().zip(valid.iter()).map(|(&v, ok)| if ok { v } else { NO_AMOUNT })),
    })?;
    Ok(Cow::Owned(out))
}

/// Hands each chunk of numeric column `name`, as `f64`, to `each`: its values and, where it has
/// nulls, which are present.
fn each_float(df: &DataFrame, name: &str, mut each: impl FnMut(&[f64], Option<&Bitmap>)) -> PolarsResult<()> {
    let c = column(df, name)?;
    if !c.dtype().is_primitive_numeric() {
        return Err(wrong_type(name, c.dtype(), "a number"));
    }
    let c = c.cast(&DataType::Float64)?;
    for arr in c.f64()?.downcast_iter() {
        each(arr.values(), arr.validity().filter(|v| v.unset_bits() > 0));
    }
    Ok(())
}

/// A boolean column, a null as `false` (a row a stage did not flag is not flagged).
pub fn flags(df: &DataFrame, name: &str) -> PolarsResult<Vec<bool>> {
    let c = column(df, name)?;
    if c.dtype() != &DataType::Boolean {
        return Err(wrong_type(name, c.dtype(), "a boolean"));
    }
    let mut out = Vec::with_capacity(c.len());
    for arr in c.bool()?.downcast_iter() {
        match arr.validity().filter(|v| v.unset_bits() > 0) {
            None => out.extend(arr.values().iter()),
            Some(valid) => out.extend(arr.values().iter().zip(valid.iter()).map(|(b, ok)| b && ok)),
        }
    }
    Ok(out)
}

/// A date column as day numbers (days since 1970-01-01, [`mirador_schema::day`]), a null as
/// `None`.
pub fn days(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<i32>>> {
    let c = column(df, name)?;
    if c.dtype() != &DataType::Date {
        return Err(wrong_type(name, c.dtype(), "a date"));
    }
    let c = c.cast(&DataType::Int32)?;
    let mut out = Vec::with_capacity(c.len());
    for arr in c.i32()?.downcast_iter() {
        match arr.validity().filter(|v| v.unset_bits() > 0) {
            None => out.extend(arr.values().iter().map(|&d| Some(d))),
            Some(valid) => out.extend(arr.values().iter().zip(valid.iter()).map(|(&d, ok)| ok.then_some(d))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame with one column of each type, each with a null.
    fn frame() -> DataFrame {
        let mut df = df!(
            "text" => [Some("a"), None, Some("c")],
            "int" => [Some(3_i64), None, Some(-1)],
            "float" => [Some(1.5), None, Some(f64::NAN)],
            "flag" => [Some(true), None, Some(false)],
            "day" => [Some(19_722_i32), None, Some(0)],
            "u32" => [Some(7_u32), None, Some(0)],
            "origin" => [Some("CN"), None, Some("DE")],
        )
        .unwrap();
        df.with_column(df.column("day").unwrap().cast(&DataType::Date).unwrap()).unwrap();
        df.with_column(df.column("origin").unwrap().cast(&mirador_schema::text::categorical_type("origin")).unwrap()).unwrap();
        df
    }

    /// The reader's error on `name`: it names the column.
    fn error<T: std::fmt::Debug>(r: PolarsResult<T>, name: &str) -> String {
        let e = r.unwrap_err().to_string();
        assert!(e.contains(&format!("`{name}`")), "{e}");
        e
    }

    #[test]
    fn texts_read_strings_and_categoricals_with_none_for_null() {
        let df = frame();
        assert_eq!(texts(&df, "text").unwrap(), [Some("a".to_owned()), None, Some("c".to_owned())]);
        assert_eq!(texts(&df, "origin").unwrap(), [Some("CN".to_owned()), None, Some("DE".to_owned())]);
        assert!(error(texts(&df, "int"), "int").contains("not text"));
        assert!(error(texts(&df, "day"), "day").contains("not text"));
        assert!(error(texts(&df, "absent"), "absent").contains("missing"));
    }

    #[test]
    fn numbers_read_every_numeric_type_with_none_for_null() {
        let df = frame();
        assert_eq!(numbers(&df, "int").unwrap(), [Some(3.0), None, Some(-1.0)]);
        assert_eq!(numbers(&df, "u32").unwrap(), [Some(7.0), None, Some(0.0)]);
        let floats = numbers(&df, "float").unwrap();
        assert_eq!(floats[..2], [Some(1.5), None]);
        assert!(floats[2].is_some_and(f64::is_nan), "a NaN is a value, not a null");
        // Text is not cast into nulls, nor a flag or a date into numbers.
        for name in ["text", "flag", "day"] {
            assert!(error(numbers(&df, name), name).contains("not a number"));
        }
        assert!(error(numbers(&df, "absent"), "absent").contains("missing"));
    }

    #[test]
    fn amounts_read_a_null_as_no_amount() {
        let df = frame();
        assert_eq!(*amounts(&df, "int").unwrap(), [3.0, NO_AMOUNT, -1.0]);
        assert_eq!(*amounts(&df, "u32").unwrap(), [7.0, NO_AMOUNT, 0.0]);
        assert!(error(amounts(&df, "text"), "text").contains("not a number"));
        assert!(error(amounts(&df, "absent"), "absent").contains("missing"));
    }

    #[test]
    fn amounts_of_one_chunk_without_nulls_are_the_column_itself() {
        let df = df!("whole" => [1.5, 2.5], "gaps" => [Some(1.5), None]).unwrap();
        let whole = amounts(&df, "whole").unwrap();
        assert!(matches!(whole, Cow::Borrowed(_)));
        assert_eq!(whole.as_ptr(), df.column("whole").unwrap().f64().unwrap().cont_slice().unwrap().as_ptr());
        let gaps = amounts(&df, "gaps").unwrap();
        assert!(matches!(gaps, Cow::Owned(_)));
        assert_eq!(*gaps, [1.5, NO_AMOUNT]);
    }

    #[test]
    fn readers_read_every_chunk_with_and_without_nulls() {
        let mut df = frame();
        let mut clean = df!(
            "text" => ["d"], "int" => [5_i64], "float" => [2.5], "flag" => [true], "day" => [1_i32], "u32" => [1_u32], "origin" => ["FR"]
        )
        .unwrap();
        clean.with_column(clean.column("day").unwrap().cast(&DataType::Date).unwrap()).unwrap();
        clean.with_column(clean.column("origin").unwrap().cast(df.column("origin").unwrap().dtype()).unwrap()).unwrap();
        // A chunk without nulls before the one with them, and after it.
        let mut both = clean.clone();
        both.vstack_mut(&df).unwrap();
        both.vstack_mut(&clean).unwrap();
        df = both;
        assert_eq!(df.column("int").unwrap().as_materialized_series().chunks().len(), 3);
        assert_eq!(numbers(&df, "int").unwrap(), [Some(5.0), Some(3.0), None, Some(-1.0), Some(5.0)]);
        assert_eq!(*amounts(&df, "u32").unwrap(), [1.0, 7.0, NO_AMOUNT, 0.0, 1.0]);
        assert_eq!(flags(&df, "flag").unwrap(), [true, true, false, false, true]);
        assert_eq!(days(&df, "day").unwrap(), [Some(1), Some(19_722), None, Some(0), Some(1)]);
    }

    #[test]
    fn flags_read_a_null_as_false() {
        let df = frame();
        assert_eq!(flags(&df, "flag").unwrap(), [true, false, false]);
        for name in ["int", "text"] {
            assert!(error(flags(&df, name), name).contains("not a boolean"));
        }
        assert!(error(flags(&df, "absent"), "absent").contains("missing"));
    }

    #[test]
    fn days_read_dates_as_day_numbers_with_none_for_null() {
        let df = frame();
        assert_eq!(days(&df, "day").unwrap(), [Some(19_722), None, Some(0)]);
        for name in ["int", "text"] {
            assert!(error(days(&df, name), name).contains("not a date"));
        }
        assert!(error(days(&df, "absent"), "absent").contains("missing"));
    }
}
