//! The declaration key, (`declaration_id`, `item_no`), that ties every per-declaration dataset
//! (`kmeans_scores`, `mirror_exposure`, `fraud_scores`, ...) to the declarations.

use std::collections::HashMap;

use polars::prelude::*;

use crate::col;

/// How the rows of a per-declaration dataset `other` line up with the rows of `declarations`:
/// `None` when `other` lists the same keys in the same order, as the stages write them (its rows
/// can be read as they are); otherwise, for each declaration row, the row of `other` with its
/// key (`None` where there is none; the last one where a key repeats).
pub fn align(declarations: &DataFrame, other: &DataFrame) -> PolarsResult<Option<Vec<Option<usize>>>> {
    // The runner hands a stage the declarations' own key columns where another dataset's keys
    // equal them: then they are the same arrays, and need no comparing.
    let same = |name: &str| -> PolarsResult<bool> { Ok(same_arrays(declarations.column(name)?, other.column(name)?)) };
    if same(col::DECLARATION_ID)? && same(col::ITEM_NO)? {
        return Ok(None);
    }
    let ids =
        |df: &DataFrame| -> PolarsResult<StringChunked> { Ok(df.column(col::DECLARATION_ID)?.cast(&DataType::String)?.str()?.clone()) };
    let items = |df: &DataFrame| -> PolarsResult<Int64Chunked> { Ok(df.column(col::ITEM_NO)?.cast(&DataType::Int64)?.i64()?.clone()) };
    let (ids, items, other_ids, other_items) = (ids(declarations)?, items(declarations)?, ids(other)?, items(other)?);
    if other.height() == declarations.height() && ids.iter().eq(other_ids.iter()) && items.iter().eq(other_items.iter()) {
        return Ok(None);
    }
    let index: HashMap<(&str, i64), usize, foldhash::fast::FixedState> =
        other_ids.iter().zip(other_items.iter()).enumerate().filter_map(|(row, (d, i))| Some(((d?, i?), row))).collect();
    Ok(Some(ids.iter().zip(items.iter()).map(|(d, i)| index.get(&(d?, i?)).copied()).collect()))
}

/// Whether two columns hold the very same arrays (not merely equal values): an output's key
/// column taken from the declarations holds their values without their being compared.
pub fn same_arrays(a: &Column, b: &Column) -> bool {
    let (a, b) = (a.as_materialized_series(), b.as_materialized_series());
    a.dtype() == b.dtype()
        && a.len() == b.len()
        && a.chunks().len() == b.chunks().len()
        && a.chunks().iter().zip(b.chunks()).all(|(x, y)| std::ptr::addr_eq(x.as_ref(), y.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(ids: &[&str], items: &[i32]) -> DataFrame {
        df!(col::DECLARATION_ID => ids, col::ITEM_NO => items).unwrap()
    }

    #[test]
    fn the_same_keys_in_the_same_order_are_read_as_they_are() {
        let declarations = keyed(&["a", "a", "b"], &[1, 2, 1]);
        assert_eq!(align(&declarations, &keyed(&["a", "a", "b"], &[1, 2, 1])).unwrap(), None);
    }

    #[test]
    fn shared_key_columns_are_aligned_without_comparing() {
        let declarations = keyed(&["a", "a", "b"], &[1, 2, 1]);
        let shared = declarations.select([col::DECLARATION_ID, col::ITEM_NO]).unwrap();
        assert!(same_arrays(shared.column(col::ITEM_NO).unwrap(), declarations.column(col::ITEM_NO).unwrap()));
        assert!(!same_arrays(
            keyed(&["a", "a", "b"], &[1, 2, 1]).column(col::ITEM_NO).unwrap(),
            declarations.column(col::ITEM_NO).unwrap()
        ));
        assert_eq!(align(&declarations, &shared).unwrap(), None);
    }

    #[test]
    fn other_orders_are_joined_by_key() {
        let declarations = keyed(&["a", "a", "b", "c"], &[1, 2, 1, 1]);
        let other = keyed(&["b", "a", "a", "a"], &[1, 2, 1, 2]);
        assert_eq!(align(&declarations, &other).unwrap(), Some(vec![Some(2), Some(3), Some(0), None]));
    }
}
