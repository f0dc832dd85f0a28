//! Whether two results hold the same rows: how a cluster's outputs are checked against a local
//! run's. Text, integers, booleans and dates must be equal; floats equal to a relative tolerance,
//! since an engine that sums in another order differs in the last bits.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::{SortColumn, cast, concat_batches, lexsort_to_indices, take};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::arrow::record_batch::RecordBatch;

use crate::Result;

/// How `actual` differs from `expected`, matching rows by `keys` (both are sorted by them
/// first; without keys, row by row as they are): columns (names, order, types, with text of any
/// arrow layout as text), row counts, then every value, floats to `relative` of the larger
/// magnitude (at least of 1, so that values near zero compare absolutely). Empty when they hold the same rows; at most 20 values are named.
pub fn differences(expected: &[RecordBatch], actual: &[RecordBatch], keys: &[&str], relative: f64) -> Result<Vec<String>> {
    let (Some(e), Some(a)) = (expected.first(), actual.first()) else {
        let rows = |b: &[RecordBatch]| b.iter().map(RecordBatch::num_rows).sum::<usize>();
        return Ok(if rows(expected) == rows(actual) {
            Vec::new()
        } else {
            vec![format!("{} rows expected, {} found", rows(expected), rows(actual))]
        });
    };
    let (e, a) = (concat_batches(&e.schema(), expected)?, concat_batches(&a.schema(), actual)?);
    let columns = |b: &RecordBatch| -> Vec<(String, DataType)> {
        b.schema().fields().iter().map(|f| (f.name().clone(), plain(f.data_type()))).collect()
    };
    if columns(&e) != columns(&a) {
        return Ok(vec![format!("columns differ: expected {:?}, found {:?}", columns(&e), columns(&a))]);
    }
    if e.num_rows() != a.num_rows() {
        return Ok(vec![format!("{} rows expected, {} found", e.num_rows(), a.num_rows())]);
    }
    let (e, a) = (sorted(&e, keys)?, sorted(&a, keys)?);
    let mut out = Vec::new();
    for (i, (name, t)) in columns(&e).iter().enumerate() {
        // Floats compare as numbers, everything else as its text.
        let (x, y) = if *t == DataType::Float64 {
            (e.column(i).clone(), a.column(i).clone())
        } else {
            (cast(e.column(i), &DataType::Utf8)?, cast(a.column(i), &DataType::Utf8)?)
        };
        for row in 0..e.num_rows() {
            if out.len() == 20 {
                return Ok(out);
            }
            if !same_value(&x, &y, row, relative) {
                out.push(format!("{name}, row {row}: expected {}, found {}", shown(&x, row)?, shown(&y, row)?));
            }
        }
    }
    Ok(out)
}

/// Text of any layout (dictionary-encoded too: polars' categoricals) as `Utf8`; the rest as it
/// is.
fn plain(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::Dictionary(_, values) if plain(values) == DataType::Utf8 => DataType::Utf8,
        other => other.clone(),
    }
}

fn sorted(b: &RecordBatch, keys: &[&str]) -> Result<RecordBatch> {
    if keys.is_empty() {
        return Ok(b.clone());
    }
    let columns = keys
        .iter()
        .map(|k| Ok(SortColumn { values: cast(b.column_by_name(k).ok_or_else(|| missing(k))?, &DataType::Utf8)?, options: None }));
    let indices = lexsort_to_indices(&columns.collect::<Result<Vec<_>>>()?, None)?;
    let taken = b.columns().iter().map(|c| take(c, &indices, None)).collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(b.schema(), taken)?)
}

fn missing(key: &str) -> crate::EngineError {
    crate::EngineError::Cluster(format!("no column {key} to match rows by"))
}

/// Whether row `row` of `x` and `y` (both `Float64`, or both `Utf8`) hold the same value.
fn same_value(x: &ArrayRef, y: &ArrayRef, row: usize, relative: f64) -> bool {
    if x.is_null(row) || y.is_null(row) {
        return x.is_null(row) && y.is_null(row);
    }
    if x.data_type() == &DataType::Float64 {
        let (p, q) = (x.as_primitive::<Float64Type>().value(row), y.as_primitive::<Float64Type>().value(row));
        return p == q || (p.is_nan() && q.is_nan()) || (p - q).abs() <= relative * p.abs().max(q.abs()).max(1.0);
    }
    x.as_string::<i32>().value(row) == y.as_string::<i32>().value(row)
}

fn shown(x: &ArrayRef, row: usize) -> Result<String> {
    if x.is_null(row) {
        return Ok("null".into());
    }
    let text = cast(&x.slice(row, 1), &DataType::Utf8)?;
    Ok(text.as_string::<i32>().value(0).to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, StringArray, UInt32Array};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(keys: &[&str], x: &[Option<f64>], n: &[u32]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("x", DataType::Float64, true),
            Field::new("n", DataType::UInt32, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Float64Array::from(x.to_vec())),
                Arc::new(UInt32Array::from(n.to_vec())),
            ],
        )
        .unwrap()
    }

    #[test]
    fn rows_match_by_key_and_floats_to_the_tolerance() {
        let e = batch(&["a", "b"], &[Some(1e6), None], &[1, 2]);
        // The same rows in another order, one float off in the 13th digit.
        let a = batch(&["b", "a"], &[None, Some(1e6 + 1e-7)], &[2, 1]);
        assert!(differences(&[e.clone()], &[a], &["key"], 1e-9).unwrap().is_empty());
        let off = batch(&["a", "b"], &[Some(1e6 + 1.0), None], &[1, 2]);
        assert_eq!(differences(&[e.clone()], &[off], &["key"], 1e-9).unwrap(), ["x, row 0: expected 1000000.0, found 1000001.0"]);
        let count = batch(&["a", "b"], &[Some(1e6), None], &[1, 3]);
        assert_eq!(differences(&[e.clone()], &[count], &["key"], 1e-9).unwrap(), ["n, row 1: expected 2, found 3"]);
        let null = batch(&["a", "b"], &[Some(1e6), Some(0.0)], &[1, 2]);
        assert_eq!(differences(&[e.clone()], &[null], &["key"], 1e-9).unwrap(), ["x, row 1: expected null, found 0.0"]);
        let fewer = batch(&["a"], &[Some(1e6)], &[1]);
        assert_eq!(differences(&[e], &[fewer], &["key"], 1e-9).unwrap(), ["2 rows expected, 1 found"]);
    }
}
