//! The crate's error type.

/// Everything that can go wrong when building datasets, training, scoring or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum GbdtError {
    /// A training parameter is out of range.
    #[error("invalid parameters: {0}")]
    Params(#[from] ParamsError),
    /// The dataset has no rows where rows are required.
    #[error("`{what}` has no rows")]
    EmptyData {
        /// Which input was empty (`train`, `valid`).
        what: &'static str,
    },
    /// The dataset has no feature columns.
    #[error("`{what}` has no feature columns")]
    NoFeatures {
        /// Which input had no columns.
        what: &'static str,
    },
    /// The number of names differs from the number of columns.
    #[error("{names} feature names for {columns} columns")]
    NameCount {
        /// Number of names given.
        names: usize,
        /// Number of columns given.
        columns: usize,
    },
    /// Two features share a name.
    #[error("feature name `{0}` is used twice")]
    DuplicateName(String),
    /// A column's length differs from the first column's.
    #[error("column `{name}` has {actual} rows, expected {expected}")]
    ColumnLength {
        /// Column name.
        name: String,
        /// Rows of the first column.
        expected: usize,
        /// Rows of this column.
        actual: usize,
    },
    /// Labels or weights do not have one entry per row.
    #[error("`{what}` has {actual} entries, expected one per row ({expected})")]
    LengthMismatch {
        /// Which slice (`labels`, `weights`, `valid labels`).
        what: &'static str,
        /// Number of rows in the dataset.
        expected: usize,
        /// Length of the slice.
        actual: usize,
    },
    /// A label is not exactly 0 or 1.
    #[error("`{what}` at row {row} is {value}; labels must be 0 or 1")]
    InvalidLabel {
        /// Which slice (`labels`, `valid labels`).
        what: &'static str,
        /// Row index.
        row: usize,
        /// The offending value.
        value: f64,
    },
    /// A sample weight is negative, NaN or infinite.
    #[error("weight at row {row} is {value}; weights must be finite and non-negative")]
    InvalidWeight {
        /// Row index.
        row: usize,
        /// The offending value.
        value: f64,
    },
    /// Training data holds only one class (or one class has zero total weight).
    #[error("training labels hold no {missing} rows with positive weight; both classes are needed")]
    SingleClass {
        /// The class that is absent: `positive` or `negative`.
        missing: &'static str,
    },
    /// More rows than row indices can address.
    #[error("`{what}` has {rows} rows; at most {max} are supported")]
    TooManyRows {
        /// Which input.
        what: &'static str,
        /// Rows given.
        rows: usize,
        /// Supported maximum.
        max: usize,
    },
    /// Scoring data has a different number of features than the model.
    #[error("the model has {expected} features, the data has {actual}")]
    FeatureCount {
        /// Features of the model.
        expected: usize,
        /// Columns of the data.
        actual: usize,
    },
    /// Scoring data names a feature differently from the model.
    #[error("feature {index} is `{actual}`, the model expects `{expected}`")]
    FeatureName {
        /// Position of the feature.
        index: usize,
        /// Name in the model.
        expected: String,
        /// Name in the data.
        actual: String,
    },
    /// Scoring data has a numeric column where the model has a categorical one, or the reverse.
    #[error("feature `{name}` is {actual} in the data but {expected} in the model")]
    FeatureKind {
        /// Feature name.
        name: String,
        /// Kind in the model.
        expected: &'static str,
        /// Kind in the data.
        actual: &'static str,
    },
    /// The saved model was written by an incompatible format version.
    #[error("model format version {found} is not supported (this build reads version {supported})")]
    FormatVersion {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The saved model is inconsistent (bad node indices, unknown features).
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// The model JSON could not be written or parsed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// A training parameter that is out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{name}` {reason}")]
pub struct ParamsError {
    /// Parameter name as spelled in [`crate::Params`].
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Result alias with [`GbdtError`] as the default error.
pub type Result<T, E = GbdtError> = std::result::Result<T, E>;
