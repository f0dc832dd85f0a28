//! Column-major feature tables handed to training and scoring.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{GbdtError, Result};

/// The category code that marks a missing categorical value.
pub const MISSING_CATEGORY: u32 = u32::MAX;

/// One feature column.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Real values; `NaN` marks a missing value.
    Numeric(Vec<f64>),
    /// Category codes `0..n`; [`MISSING_CATEGORY`] (`u32::MAX`) marks a missing value.
    Categorical(Vec<u32>),
}

impl Column {
    /// Number of rows in the column.
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(values) => values.len(),
            Column::Categorical(codes) => codes.len(),
        }
    }

    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the column is numeric or categorical.
    pub fn kind(&self) -> FeatureKind {
        match self {
            Column::Numeric(_) => FeatureKind::Numeric,
            Column::Categorical(_) => FeatureKind::Categorical,
        }
    }
}

/// Whether a feature holds real values or category codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureKind {
    /// Real values, split by thresholds.
    Numeric,
    /// Category codes, split by category sets.
    Categorical,
}

impl FeatureKind {
    /// Lower-case name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureKind::Numeric => "numeric",
            FeatureKind::Categorical => "categorical",
        }
    }
}

/// Named feature columns of equal length.
///
/// The fields are public for convenient reading; training and scoring re-check that the columns
/// still have equal lengths, so editing them cannot cause a panic, only an error.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// One name per column, unique.
    pub names: Vec<String>,
    /// The feature columns.
    pub columns: Vec<Column>,
    n_rows: usize,
}

impl Dataset {
    /// Builds a dataset, checking one unique name per column and equal column lengths.
    pub fn new(names: Vec<String>, columns: Vec<Column>) -> Result<Self> {
        let n_rows = check_columns(&names, &columns)?;
        Ok(Self { names, columns, n_rows })
    }

    /// Number of rows (0 when there are no columns).
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of feature columns.
    pub fn n_features(&self) -> usize {
        self.columns.len()
    }

    /// Re-checks the invariants established by [`Dataset::new`]; the fields are public.
    pub(crate) fn check(&self) -> Result<()> {
        let n_rows = check_columns(&self.names, &self.columns)?;
        if n_rows == self.n_rows {
            Ok(())
        } else {
            let name = self.names.first().cloned().unwrap_or_default();
            Err(GbdtError::ColumnLength { name, expected: self.n_rows, actual: n_rows })
        }
    }
}

/// Returns the common column length after checking names and lengths.
fn check_columns(names: &[String], columns: &[Column]) -> Result<usize> {
    if names.len() != columns.len() {
        return Err(GbdtError::NameCount { names: names.len(), columns: columns.len() });
    }
    let mut seen = HashSet::with_capacity(names.len());
    for name in names {
        if !seen.insert(name.as_str()) {
            return Err(GbdtError::DuplicateName(name.clone()));
        }
    }
    let n_rows = columns.first().map_or(0, Column::len);
    for (name, column) in names.iter().zip(columns) {
        if column.len() != n_rows {
            return Err(GbdtError::ColumnLength { name: name.clone(), expected: n_rows, actual: column.len() });
        }
    }
    Ok(n_rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unequal_lengths() {
        let result = Dataset::new(vec!["a".into(), "b".into()], vec![Column::Numeric(vec![1.0, 2.0]), Column::Categorical(vec![1])]);
        assert!(matches!(result, Err(GbdtError::ColumnLength { .. })));
    }

    #[test]
    fn rejects_duplicate_names_and_name_count() {
        let duplicate = Dataset::new(vec!["a".into(), "a".into()], vec![Column::Numeric(vec![1.0]), Column::Numeric(vec![2.0])]);
        assert!(matches!(duplicate, Err(GbdtError::DuplicateName(_))));
        let count = Dataset::new(vec!["a".into()], vec![]);
        assert!(matches!(count, Err(GbdtError::NameCount { .. })));
    }

    #[test]
    fn check_catches_edited_columns() {
        let mut data = Dataset::new(vec!["a".into()], vec![Column::Numeric(vec![1.0, 2.0])]).unwrap();
        assert_eq!(data.n_rows(), 2);
        data.columns[0] = Column::Numeric(vec![1.0]);
        assert!(data.check().is_err());
    }
}
