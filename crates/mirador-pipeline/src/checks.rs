//! dbt-style blocking data-quality tests on output datasets: unique, not-null, accepted values,
//! relationships (referential integrity) and ranges. A failed test blocks publication.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::pipeline::DatasetChecks;

/// The outcome of one test.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckResult {
    /// Dataset tested.
    pub dataset: String,
    /// Test, e.g. `unique(declaration_id, item_no)`.
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// Failing row count or the error.
    pub detail: String,
}

fn result(dataset: &str, check: String, failing: Result<usize, String>) -> CheckResult {
    match failing {
        Ok(0) => CheckResult { dataset: dataset.to_owned(), check, passed: true, detail: String::new() },
        Ok(n) => CheckResult { dataset: dataset.to_owned(), check, passed: false, detail: format!("{n} failing rows") },
        Err(e) => CheckResult { dataset: dataset.to_owned(), check, passed: false, detail: e },
    }
}

fn column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column, String> {
    df.column(name).map_err(|_| format!("column `{name}` does not exist"))
}

/// A column as text (a cheap handle when it already is text); iterating it borrows.
fn texts(c: &Column) -> Result<StringChunked, String> {
    let s = c.cast(&DataType::String).map_err(|e| e.to_string())?;
    Ok(s.str().map_err(|e| e.to_string())?.clone())
}

/// Runs every test declared for `dataset`. `available` resolves `relationships` targets.
pub fn run_checks(dataset: &str, df: &DataFrame, checks: &DatasetChecks, available: &BTreeMap<String, Arc<DataFrame>>) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for cols in &checks.unique {
        let name = format!("unique({})", cols.join(", "));
        let failing = (|| {
            for c in cols {
                column(df, c)?;
            }
            let sub = df.select(cols.iter().map(String::as_str)).map_err(|e| e.to_string())?;
            let dup = sub.is_duplicated().map_err(|e| e.to_string())?;
            Ok(dup.sum().unwrap_or(0) as usize)
        })();
        out.push(result(dataset, name, failing));
    }
    for c in &checks.not_null {
        let failing = column(df, c).map(Column::null_count);
        out.push(result(dataset, format!("not_null({c})"), failing));
    }
    for (c, allowed) in &checks.accepted_values {
        let failing = (|| {
            let allowed: HashSet<&str> = allowed.iter().map(String::as_str).collect();
            let values = texts(column(df, c)?)?;
            Ok(values.iter().flatten().filter(|v| !allowed.contains(v)).count())
        })();
        out.push(result(dataset, format!("accepted_values({c})"), failing));
    }
    for (c, target) in &checks.relationships {
        let failing = (|| {
            let (tds, tcol) = target.split_once('.').ok_or_else(|| format!("`{target}` is not `dataset.column`"))?;
            let tdf = available.get(tds).ok_or_else(|| format!("dataset `{tds}` is not available in this run"))?;
            let (keys, values) = (column(tdf, tcol)?, column(df, c)?);
            // A row-level output of the declarations lists their keys in their order: the same
            // column, every value present, without hashing ten million keys.
            if keys.dtype() == values.dtype() && keys.as_materialized_series().equals_missing(values.as_materialized_series()) {
                return Ok(0);
            }
            let keys = texts(keys)?;
            let keys: HashSet<&str, foldhash::fast::FixedState> = keys.iter().flatten().collect();
            let values = texts(values)?;
            Ok(values.iter().flatten().filter(|v| !keys.contains(v)).count())
        })();
        out.push(result(dataset, format!("relationships({c} -> {target})"), failing));
    }
    for (c, [lo, hi]) in &checks.range {
        let failing = (|| {
            let s = column(df, c)?.cast(&DataType::Float64).map_err(|e| e.to_string())?;
            let ca = s.f64().map_err(|e| e.to_string())?;
            Ok(ca.iter().flatten().filter(|v| !(v >= lo && v <= hi)).count())
        })();
        out.push(result(dataset, format!("range({c} in [{lo}, {hi}])"), failing));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_check_catches_its_failure() {
        let df = df!("id" => ["a", "a", "b"], "v" => [Some(1.0), None, Some(9.0)], "k" => ["x", "y", "z"]).unwrap();
        let parent = Arc::new(df!("id" => ["a"]).unwrap());
        let available = BTreeMap::from([("parent".to_owned(), parent)]);
        let checks = DatasetChecks {
            unique: vec![vec!["id".into()], vec!["id".into(), "k".into()]],
            not_null: vec!["v".into(), "k".into()],
            accepted_values: BTreeMap::from([("k".into(), vec!["x".into(), "y".into()])]),
            relationships: BTreeMap::from([("id".into(), "parent.id".into())]),
            range: BTreeMap::from([("v".into(), [0.0, 5.0])]),
        };
        let results = run_checks("t", &df, &checks, &available);
        let passed: Vec<(String, bool)> = results.iter().map(|r| (r.check.clone(), r.passed)).collect();
        assert_eq!(
            passed,
            vec![
                ("unique(id)".into(), false),
                ("unique(id, k)".into(), true),
                ("not_null(v)".into(), false),
                ("not_null(k)".into(), true),
                ("accepted_values(k)".into(), false),
                ("relationships(id -> parent.id)".into(), false),
                ("range(v in [0, 5])".into(), false),
            ]
        );
    }

    #[test]
    fn relationships_hold_for_the_same_column_and_count_what_another_lacks() {
        let df = df!("id" => [Some("a"), None, Some("b"), Some("c")]).unwrap();
        let same = Arc::new(df.clone());
        let fewer = Arc::new(df!("id" => ["b", "a"]).unwrap());
        let numbers = Arc::new(df!("id" => [1, 2]).unwrap());
        let available = BTreeMap::from([("same".to_owned(), same), ("fewer".to_owned(), fewer), ("numbers".to_owned(), numbers)]);
        let failing = |target: &str| {
            let checks = DatasetChecks { relationships: BTreeMap::from([("id".into(), target.into())]), ..Default::default() };
            let r = run_checks("t", &df, &checks, &available).remove(0);
            (r.passed, r.detail)
        };
        assert_eq!(failing("same.id"), (true, String::new()));
        assert_eq!(failing("fewer.id"), (false, "1 failing rows".into()), "`c` is missing, the null is not checked");
        assert_eq!(failing("numbers.id"), (false, "3 failing rows".into()), "numbers compared as text");
    }

    #[test]
    fn missing_column_fails_with_a_message() {
        let df = df!("id" => ["a"]).unwrap();
        let checks = DatasetChecks { not_null: vec!["nope".into()], ..Default::default() };
        let r = run_checks("t", &df, &checks, &BTreeMap::new());
        assert!(!r[0].passed);
        assert!(r[0].detail.contains("`nope`"));
    }
}
