//! dbt-style blocking data-quality tests on output datasets: unique, not-null, accepted values,
//! relationships (referential integrity) and ranges. A failed test blocks publication.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use mirador_schema::text::Text;
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

/// What a passed check records when it held by proof rather than by reading the rows.
const PROVEN_UNIQUE: &str = "proven: the very key arrays found unique earlier in the run; not hashed again";
const PROVEN_SAME_COLUMN: &str = "proven: the target's own column (the same arrays); not compared";
const PROVEN_BY_STAGE: &str = "proven by the stage";

/// How a check came out: failing rows counted (0: passed), passed by proof (what proved it),
/// or an error.
enum Outcome {
    Counted(usize),
    Proven(&'static str),
}

impl From<usize> for Outcome {
    fn from(n: usize) -> Self {
        Outcome::Counted(n)
    }
}

fn settled(dataset: &str, check: String, failing: Result<Outcome, String>) -> CheckResult {
    match failing {
        Ok(Outcome::Proven(how)) => CheckResult { dataset: dataset.to_owned(), check, passed: true, detail: how.to_owned() },
        Ok(Outcome::Counted(n)) => result(dataset, check, Ok(n)),
        Err(e) => result(dataset, check, Err(e)),
    }
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

/// A column as text (strings or categoricals read in place); iterating it borrows.
fn texts(c: &Column) -> Result<Text<'_>, String> {
    Text::of(c).map_err(|e| e.to_string())
}

/// A relationship's values are few when there are at most one for every `FEW_VALUES` keys: the
/// keys are then looked up among them rather than gathered in a table of their own.
const FEW_VALUES: usize = 8;

/// The rows of `values` whose text is not among `keys`, finding the distinct values among the
/// keys in one pass that ends once every one is found: a table of a few values' text, instead of
/// one of every key (an inspection list of thousands against ten million declaration ids).
fn missing_among(keys: &Text<'_>, values: &Text<'_>) -> usize {
    let mut missing: HashSet<&str, foldhash::fast::FixedState> = values.iter().flatten().collect();
    for key in keys.iter().flatten() {
        if missing.is_empty() {
            break;
        }
        missing.remove(key);
    }
    values.iter().flatten().filter(|v| missing.contains(v)).count()
}

/// A column of a `unique` key, as text or as integers (other types go through polars' group-by).
enum KeyColumn {
    Text(StringChunked),
    Int(Int64Chunked),
}

impl KeyColumn {
    fn of(c: &Column) -> Option<Self> {
        match c.dtype() {
            DataType::String => c.str().ok().map(|s| KeyColumn::Text(s.clone())),
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32 => c.cast(&DataType::Int64).ok()?.i64().ok().map(|s| KeyColumn::Int(s.clone())),
            _ => None,
        }
    }

    fn same(&self, a: usize, b: usize) -> bool {
        match self {
            KeyColumn::Text(s) => s.get(a) == s.get(b),
            KeyColumn::Int(s) => s.get(a) == s.get(b),
        }
    }
}

/// The rows whose key occurs more than once, counted as polars' `is_duplicated` counts them
/// (every row of a repeated key; missing values equal each other). Rows are hashed and grouped by
/// hash, and only rows of equal hash are compared: about 16 bytes a row, where a group-by on ten
/// million text keys takes a gigabyte. The hashes are spread evenly, so grouping them is a
/// counting sort on their top bits (a few rows a bucket) and a sort of each small bucket.
fn repeated_rows(keys: &[KeyColumn], rows: usize) -> usize {
    use std::hash::BuildHasher;
    let state = foldhash::fast::FixedState::with_seed(0x5eed);
    let mut hashes = vec![0u64; rows];
    for key in keys {
        match key {
            KeyColumn::Text(s) => hashes.iter_mut().zip(s.iter()).for_each(|(h, v)| *h = state.hash_one((*h, v))),
            KeyColumn::Int(s) => hashes.iter_mut().zip(s.iter()).for_each(|(h, v)| *h = state.hash_one((*h, v))),
        }
    }
    // About sixteen rows a bucket, at most 2^20 buckets.
    let bits = (rows / 16).max(2).ilog2().min(20);
    let bucket = |h: u64| (h >> (64 - bits)) as usize;
    let mut start = vec![0usize; (1 << bits) + 1];
    for &h in &hashes {
        start[bucket(h) + 1] += 1;
    }
    for b in 1..start.len() {
        start[b] += start[b - 1];
    }
    let mut next = start.clone();
    let mut grouped = vec![(0u64, 0usize); rows];
    for (row, &h) in hashes.iter().enumerate() {
        let at = &mut next[bucket(h)];
        grouped[*at] = (h, row);
        *at += 1;
    }
    drop(hashes);
    start
        .windows(2)
        .map(|b| {
            let run = &mut grouped[b[0]..b[1]];
            if run.len() < 2 {
                return 0;
            }
            run.sort_unstable();
            run.chunk_by(|a, b| a.0 == b.0)
                .filter(|same| same.len() > 1)
                .map(|same| repeated_among(keys, same.iter().map(|p| p.1).collect()))
                .sum::<usize>()
        })
        .sum()
}

/// Of `rows` (of one hash), those whose key another of them has.
fn repeated_among(keys: &[KeyColumn], mut rows: Vec<usize>) -> usize {
    let mut repeated = 0;
    // Rows of one hash almost always share one key: take the first row's key out, then the
    // next remaining one's, until none is left.
    while let Some(&first) = rows.first() {
        let (same, other): (Vec<usize>, Vec<usize>) = rows.into_iter().partition(|&r| keys.iter().all(|k| k.same(first, r)));
        if same.len() > 1 {
            repeated += same.len();
        }
        rows = other;
    }
    repeated
}

/// The datasets `checks`' relationships refer to: what [`run_checks`] needs in `available`.
pub(crate) fn referenced(checks: &DatasetChecks) -> impl Iterator<Item = &str> {
    checks.relationships.values().filter_map(|target| target.split_once('.')).map(|(dataset, _)| dataset)
}

/// The columns of the checked dataset that its checks read.
pub(crate) fn checked_columns(checks: &DatasetChecks) -> Vec<&str> {
    let mut columns: Vec<&str> = checks.unique.iter().flatten().map(String::as_str).collect();
    columns.extend(checks.not_null.iter().map(String::as_str));
    columns.extend(checks.accepted_values.keys().map(String::as_str));
    columns.extend(checks.relationships.keys().map(String::as_str));
    columns.extend(checks.range.keys().map(String::as_str));
    columns.sort_unstable();
    columns.dedup();
    columns
}

/// Key columns found unique in a run, held (so that their arrays stay allocated): a `unique`
/// test of the very same arrays (a per-declaration output's keys, shared with the declarations)
/// passes without hashing them again.
#[derive(Default)]
pub(crate) struct UniqueKeys(Mutex<Vec<Vec<Column>>>);

impl UniqueKeys {
    fn known(&self, columns: &[&Column]) -> bool {
        let known = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        known.iter().any(|set| set.len() == columns.len() && set.iter().zip(columns).all(|(k, c)| mirador_schema::keys::same_arrays(k, c)))
    }

    fn add(&self, columns: &[&Column]) {
        let set = columns.iter().map(|&c| c.clone()).collect();
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(set);
    }
}

/// Runs every test declared for `dataset`. `available` resolves `relationships` targets.
pub fn run_checks(dataset: &str, df: &DataFrame, checks: &DatasetChecks, available: &BTreeMap<String, Arc<DataFrame>>) -> Vec<CheckResult> {
    run_checks_knowing(dataset, df, checks, available, &UniqueKeys::default(), false, &[])
}

/// [`run_checks`], with the key columns found unique earlier in the run (`unique`); with
/// `remember` (a frame the run holds anyway), the keys this finds unique are added to them. With
/// the key column sets the stage that made `df` proved unique (`proven`,
/// [`crate::StageOutput::unique`]), a `unique` test of one of them (the same columns, in any
/// order) passes without hashing them, and says so in its detail.
pub(crate) fn run_checks_knowing(
    dataset: &str,
    df: &DataFrame,
    checks: &DatasetChecks,
    available: &BTreeMap<String, Arc<DataFrame>>,
    unique: &UniqueKeys,
    remember: bool,
    proven: &[Vec<&str>],
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for cols in &checks.unique {
        let name = format!("unique({})", cols.join(", "));
        let same_set = |p: &Vec<&str>| p.len() == cols.len() && cols.iter().all(|c| p.contains(&c.as_str()));
        if proven.iter().any(same_set) && cols.iter().all(|c| df.column(c).is_ok()) {
            if remember {
                unique.add(&cols.iter().filter_map(|c| df.column(c).ok()).collect::<Vec<_>>());
            }
            out.push(settled(dataset, name, Ok(Outcome::Proven(PROVEN_BY_STAGE))));
            continue;
        }
        let failing = (|| {
            let columns = cols.iter().map(|c| column(df, c)).collect::<Result<Vec<_>, _>>()?;
            if unique.known(&columns) {
                return Ok(Outcome::Proven(PROVEN_UNIQUE));
            }
            let keys: Option<Vec<KeyColumn>> = columns.iter().map(|c| KeyColumn::of(c)).collect();
            let repeated = if let Some(keys) = keys {
                repeated_rows(&keys, df.height())
            } else {
                let sub = df.select(cols.iter().map(String::as_str)).map_err(|e| e.to_string())?;
                let dup = sub.is_duplicated().map_err(|e| e.to_string())?;
                dup.sum().unwrap_or(0) as usize
            };
            if repeated == 0 && remember {
                unique.add(&columns);
            }
            Ok(repeated.into())
        })();
        out.push(settled(dataset, name, failing));
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
            if mirador_schema::keys::same_arrays(keys, values) {
                return Ok(Outcome::Proven(PROVEN_SAME_COLUMN));
            }
            if keys.dtype() == values.dtype() && keys.as_materialized_series().equals_missing(values.as_materialized_series()) {
                return Ok(0.into());
            }
            let few = values.len().saturating_mul(FEW_VALUES) < keys.len();
            let (keys, values) = (texts(keys)?, texts(values)?);
            if few && !matches!(keys, Text::Cat(_)) {
                return Ok(missing_among(&keys, &values).into());
            }
            // Each distinct key once: the column coded first (a categorical by its codes).
            let keys: HashSet<&str, foldhash::fast::FixedState> = keys.coded().values.into_iter().collect();
            Ok(values.iter().flatten().filter(|v| !keys.contains(v)).count().into())
        })();
        out.push(settled(dataset, format!("relationships({c} -> {target})"), failing));
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
    fn keys_found_unique_are_not_hashed_again_when_the_same_arrays_come_back() {
        let df = df!("id" => ["a", "b", "c"], "n" => [1, 2, 3]).unwrap();
        let checks = DatasetChecks { unique: vec![vec!["id".into(), "n".into()]], ..DatasetChecks::default() };
        let unique = UniqueKeys::default();
        let passed = |df: &DataFrame, remember| run_checks_knowing("t", df, &checks, &BTreeMap::new(), &unique, remember, &[])[0].passed;
        assert!(passed(&df, false));
        assert!(!unique.known(&[df.column("id").unwrap(), df.column("n").unwrap()]), "not remembered");
        assert!(passed(&df, true));
        // Known keys pass by proof, and the result says so; keys checked say nothing.
        let detail = |df: &DataFrame| run_checks_knowing("t", df, &checks, &BTreeMap::new(), &unique, false, &[]).remove(0).detail;
        assert_eq!(detail(&df), PROVEN_UNIQUE);
        assert_eq!(detail(&df!("id" => ["a", "b", "c"], "n" => [1, 2, 3]).unwrap()), "");
        // The same arrays (a frame sharing them) are known; equal values in other arrays are not.
        let shared = df.select(["id", "n"]).unwrap();
        assert!(unique.known(&[shared.column("id").unwrap(), shared.column("n").unwrap()]));
        let copy = df!("id" => ["a", "b", "c"], "n" => [1, 2, 3]).unwrap();
        assert!(!unique.known(&[copy.column("id").unwrap(), copy.column("n").unwrap()]));
        // What is known is not checked again: repeated keys recorded as unique (never the case in
        // a run) pass, the same values in other arrays do not.
        let repeated = df!("id" => ["a", "a"], "n" => [1, 1]).unwrap();
        unique.add(&[repeated.column("id").unwrap(), repeated.column("n").unwrap()]);
        assert!(passed(&repeated, false));
        assert!(!passed(&df!("id" => ["a", "a"], "n" => [1, 1]).unwrap(), false));
    }

    #[test]
    fn keys_the_stage_proved_unique_pass_unhashed_and_say_so_others_are_checked() {
        // Repeated keys marked as proven (never the case in a run) show the test is skipped.
        let df = df!("id" => ["a", "a"], "n" => [1, 1], "k" => ["x", "x"]).unwrap();
        let checks = DatasetChecks { unique: vec![vec!["n".into(), "id".into()], vec!["id".into()]], ..DatasetChecks::default() };
        let unique = UniqueKeys::default();
        let results = run_checks_knowing("t", &df, &checks, &BTreeMap::new(), &unique, false, &[vec!["id", "n"]]);
        let outcomes: Vec<(bool, &str)> = results.iter().map(|r| (r.passed, r.detail.as_str())).collect();
        // The proven set (in any order) passes; a subset of it is not proven and is checked.
        assert_eq!(outcomes, vec![(true, "proven by the stage"), (false, "2 failing rows")]);
        assert!(!unique.known(&[df.column("n").unwrap(), df.column("id").unwrap()]), "not remembered");
        // Held frames remember the proven keys, as they remember keys found unique.
        run_checks_knowing("t", &df, &checks, &BTreeMap::new(), &unique, true, &[vec!["id", "n"]]);
        assert!(unique.known(&[df.column("n").unwrap(), df.column("id").unwrap()]));
        // Without the proof, the same frame fails, and a larger set is not proven by a smaller one.
        assert!(
            !run_checks_knowing("t", &df!("id" => ["a", "a"], "n" => [1, 1]).unwrap(), &checks, &BTreeMap::new(), &unique, false, &[])[0]
                .passed
        );
        let wider = DatasetChecks { unique: vec![vec!["id".into(), "n".into(), "k".into()]], ..DatasetChecks::default() };
        assert!(!run_checks_knowing("t", &df, &wider, &BTreeMap::new(), &UniqueKeys::default(), false, &[vec!["id", "n"]])[0].passed);
    }

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
        assert_eq!(failing("same.id"), (true, PROVEN_SAME_COLUMN.to_owned()), "the same arrays: proven, and said");
        let copy = Arc::new(df!("id" => [Some("a"), None, Some("b"), Some("c")]).unwrap());
        let available = BTreeMap::from([("copy".to_owned(), copy)]);
        let checks = DatasetChecks { relationships: BTreeMap::from([("id".into(), "copy.id".into())]), ..Default::default() };
        let r = run_checks("t", &df, &checks, &available).remove(0);
        assert_eq!((r.passed, r.detail), (true, String::new()), "equal values in other arrays are compared");
        assert_eq!(failing("fewer.id"), (false, "1 failing rows".into()), "`c` is missing, the null is not checked");
        assert_eq!(failing("numbers.id"), (false, "3 failing rows".into()), "numbers compared as text");
    }

    /// A few values against many keys (looked up among the values) fail the rows a table of
    /// every key fails: values found early, late, never, repeated, null; keys with nulls.
    #[test]
    fn few_values_against_many_keys_fail_the_rows_a_table_of_the_keys_fails() {
        let keys: Vec<Option<String>> = (0..4_000).map(|i| (i % 101 != 5).then(|| format!("d{i}"))).collect();
        let parent = Arc::new(df!("id" => keys).unwrap());
        let cases: [&[Option<&str>]; 5] = [
            &[Some("d0"), Some("d3999"), Some("d17")],
            &[Some("d5"), Some("nowhere"), Some("d5"), None, Some("d3998"), Some("nowhere")],
            &[None, None],
            &[],
            &[Some("d3999"); 40],
        ];
        for values in cases {
            let df = df!("id" => values.to_vec()).unwrap();
            let parent_text = Text::of(parent.column("id").unwrap()).unwrap();
            let values_text = Text::of(df.column("id").unwrap()).unwrap();
            let by_table = {
                let table: HashSet<&str> = parent_text.iter().flatten().collect();
                values_text.iter().flatten().filter(|v| !table.contains(v)).count()
            };
            assert_eq!(missing_among(&parent_text, &values_text), by_table, "{values:?}");
            // Through the check, which takes the few values' way here.
            assert!(values.len() * FEW_VALUES < parent.height());
            let available = BTreeMap::from([("parent".to_owned(), Arc::clone(&parent))]);
            let checks = DatasetChecks { relationships: BTreeMap::from([("id".into(), "parent.id".into())]), ..Default::default() };
            let r = run_checks("t", &df, &checks, &available).remove(0);
            assert_eq!(r.passed, by_table == 0, "{values:?}");
        }
    }

    #[test]
    fn unique_counts_the_rows_polars_counts_as_duplicated() {
        // Text and integer keys with missing values and repeats, against polars' group-by.
        let ids: Vec<Option<String>> = (0..5_000u64).map(|i| (i % 97 != 0).then(|| format!("d{}", (i * 7_919) % 3_001))).collect();
        let items: Vec<Option<i32>> = (0..5_000u64).map(|i| (i % 89 != 0).then_some((i % 3) as i32)).collect();
        let df = df!("id" => ids, "item" => items).unwrap();
        for cols in [vec!["id"], vec!["item"], vec!["id", "item"]] {
            let expected = df.select(cols.clone()).unwrap().is_duplicated().unwrap().sum().unwrap_or(0) as usize;
            let keys: Vec<KeyColumn> = cols.iter().map(|c| KeyColumn::of(df.column(c).unwrap()).unwrap()).collect();
            assert_eq!(repeated_rows(&keys, df.height()), expected, "{cols:?}");
            assert!(expected > 0, "the data repeat keys");
            assert!(!cols.contains(&"id") || expected < df.height(), "and not only repeated ones");
        }
        // Rows of one hash with different keys (a collision) are told apart.
        let df = df!("id" => ["a", "b", "a", "c", "b", "d"]).unwrap();
        let keys = [KeyColumn::of(df.column("id").unwrap()).unwrap()];
        assert_eq!(repeated_among(&keys, (0..6).collect()), 4);
        // Other key types still go through polars.
        let floats = df!("x" => [1.0, 1.0, 2.0]).unwrap();
        let checks = DatasetChecks { unique: vec![vec!["x".into()]], ..Default::default() };
        assert_eq!(run_checks("t", &floats, &checks, &BTreeMap::new())[0].detail, "2 failing rows");
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
