//! A raw table seen through a source's column mapping, defaults and recodes, and the quarantine
//! collector every dataset's validation writes to.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use mirador_pipeline::{ColumnSource, SourceSpec};
use mirador_schema::col;
use polars::prelude::*;

use crate::error::IngestError;
use crate::read::{BlockColumn, BlockRow, MAX_RECORD_LINES, Raw, RawBlock, RawRow, TableReader};
use crate::rules::Reject;

/// Where a canonical column's raw value comes from in one source: a field of the row, else the
/// source's default; then its recoding, if any.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    index: Option<usize>,
    default: Option<&'a str>,
    recode: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Field<'a> {
    /// The value in a row, after recoding; the default when unmapped.
    pub fn get<'r>(&self, row: &'r RawRow) -> Option<&'r str>
    where
        'a: 'r,
    {
        let raw = match self.index {
            Some(i) => row.fields.get(i),
            None => self.default,
        }?;
        if let Some(map) = self.recode
            && let Some(v) = map.get(raw.trim())
        {
            return Some(v.as_str());
        }
        Some(raw)
    }

    /// The value in a block's row, after recoding; the default when unmapped. A typed value is
    /// recoded by its text.
    pub fn value<'r>(&self, row: BlockRow<'r>) -> Option<Raw<'r>>
    where
        'a: 'r,
    {
        let raw = match self.index {
            Some(i) => row.get(i),
            None => self.default.map(Raw::Text),
        }?;
        Some(recoded(raw, self.recode))
    }
}

/// `raw` after a source's recoding: its mapped text when `recode` maps its trimmed text.
#[inline]
fn recoded<'r>(raw: Raw<'r>, recode: Option<&'r BTreeMap<String, String>>) -> Raw<'r> {
    let Some(recode) = recode else { return raw };
    match recode.get(raw.text().trim()) {
        Some(v) => Raw::Text(v.as_str()),
        None => raw,
    }
}

impl<'a> Field<'a> {
    /// The field resolved against one block: every row's value read as [`Field::value`] reads
    /// it, without resolving the column for each row.
    pub(crate) fn of<'r>(&self, block: &'r RawBlock) -> FieldOf<'r>
    where
        'a: 'r,
    {
        FieldOf { column: self.index.map(|i| block.column(i)), default: self.default, recode: self.recode }
    }
}

/// A [`Field`] resolved against one block ([`Field::of`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldOf<'r> {
    column: Option<BlockColumn<'r>>,
    default: Option<&'r str>,
    recode: Option<&'r BTreeMap<String, String>>,
}

impl<'r> FieldOf<'r> {
    /// The value of the block's row `at`, as [`Field::value`] reads it.
    #[inline]
    pub(crate) fn value(&self, at: usize) -> Option<Raw<'r>> {
        let raw = match self.column {
            Some(column) => column.get(at),
            None => self.default.map(Raw::Text),
        }?;
        // Most columns are not recoded: no call per row for them.
        Some(if self.recode.is_some() { recoded(raw, self.recode) } else { raw })
    }

    /// For a column read as its dictionary ([`crate::read::Coded`]): each row's entry, and each
    /// entry's value as [`FieldOf::value`] reads it for the rows of that entry. A rule that
    /// reads one value alone can then run once per entry rather than once per row.
    pub(crate) fn coded(&self) -> Option<(&'r [u32], Vec<Option<Raw<'r>>>)> {
        let coded = self.column?.coded()?;
        let entries = u32::try_from(coded.entries()).ok()?;
        Some((coded.ids(), (0..entries).map(|e| Some(recoded(Raw::Text(coded.entry(e)), self.recode))).collect()))
    }
}

/// A row key ingest makes for a source without one (see [`ColumnSource`]).
#[derive(Debug, Clone)]
enum Key {
    /// `<file name>:<line>`.
    RowNumber,
    /// A hash of these fields (by index).
    Hash(Vec<usize>),
}

/// Rows handed on at a time by [`Mapped::each_chunk`] (validated as one parallel batch).
pub const CHUNK_ROWS: usize = 32_768;
/// Rows read from a parquet file at a time: it is read much faster in large slices than in
/// chunks (a CSV file is read a chunk at a time).
const PARQUET_READ_ROWS: usize = 8 * CHUNK_ROWS;

/// A source file being read, with its mapping resolved.
pub struct Mapped<'a> {
    reader: Mutex<TableReader>,
    headers: Vec<String>,
    spec: &'a SourceSpec,
    index: BTreeMap<String, usize>,
    /// Keys made by ingest, appended to every row after the file's fields, in this order.
    keys: Vec<Key>,
    /// The file's name, for row-number keys.
    name: String,
    /// What the manifest should tell about this file's mapping (made keys).
    warnings: Vec<String>,
    /// Columns the reader leaves unread, with why.
    unread: Vec<(usize, String)>,
    /// Why the first unread column validation asked for cannot be read: reading then fails.
    unread_asked: Mutex<Option<String>>,
    /// File, for lineage.
    pub file: String,
}

impl<'a> Mapped<'a> {
    /// Resolves `spec.columns` against the header. `mandatory` canonical columns must be mapped
    /// (or have a default); a mapped header that is missing from the file is a fatal error, and
    /// so is a mapped parquet column of a type Mirador does not read.
    pub fn new(path: &Path, table: TableReader, spec: &'a SourceSpec, mandatory: &[&str]) -> Result<Self, IngestError> {
        let table = table.with_max_record_lines(spec.max_record_lines.unwrap_or(MAX_RECORD_LINES));
        let missing = |header: &str, canonical: &str| {
            if table.looks_like_a_table() {
                IngestError::MissingColumn {
                    path: path.to_owned(),
                    header: header.to_owned(),
                    canonical: canonical.to_owned(),
                    found: table.headers().join(", "),
                }
            } else {
                // Not a table: its first line may be anything (a password file), so it is not shown.
                IngestError::file(
                    path,
                    format!(
                        "does not look like a delimited table: its first line does not split into several column names \
                         (no `,`, `;` or tab between them; set `separator` if the file uses another one), so mandatory column \
                         `{header}` (canonical `{canonical}`) cannot be found. Is this the right file?"
                    ),
                )
            }
        };
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let width = table.headers().len();
        let mut index = BTreeMap::new();
        let mut keys = Vec::new();
        let mut warnings = Vec::new();
        for (canonical, source) in &spec.columns {
            match source {
                ColumnSource::Header(header) => match table.column(header) {
                    Some(i) => {
                        index.insert(canonical.clone(), i);
                    }
                    None => return Err(missing(header, canonical)),
                },
                ColumnSource::RowNumber { .. } => {
                    index.insert(canonical.clone(), width + keys.len());
                    keys.push(Key::RowNumber);
                    warnings.push(format!(
                        "`{}`: `{canonical}` is made from each record's file name and line (`{name}:<line>`): stable while this \
                         file is re-read unchanged, but not an id the administration knows, and a row moved in the file gets \
                         another one",
                        path.display()
                    ));
                }
                ColumnSource::Hash { hash } => {
                    let columns =
                        hash.iter().map(|h| table.column(h).ok_or_else(|| missing(h, canonical))).collect::<Result<Vec<_>, _>>()?;
                    index.insert(canonical.clone(), width + keys.len());
                    keys.push(Key::Hash(columns));
                    warnings.push(format!(
                        "`{}`: `{canonical}` is made as a hash of columns {}: not an id the administration knows, and rows \
                         equal in these columns get the same one (the later ones are quarantined as duplicates)",
                        path.display(),
                        hash.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
        // Unmapped canonical columns whose header is the canonical name itself map 1:1.
        for (i, h) in table.headers().iter().enumerate() {
            if !spec.columns.contains_key(h) && !spec.columns.values().any(|v| v.header() == Some(h.as_str())) {
                index.entry(h.clone()).or_insert(i);
            }
        }
        for m in mandatory {
            if !index.contains_key(*m) && !spec.defaults.contains_key(*m) {
                let header = spec.columns.get(*m).and_then(ColumnSource::header).unwrap_or(*m);
                return Err(missing(header, m));
            }
        }
        // A column the reader leaves unread (a parquet type it does not read) is an error only
        // when something reads it: a hashed one now, a mapped one once validation asks for it.
        let unread = table.unread_columns().to_vec();
        for key in &keys {
            if let Key::Hash(columns) = key
                && let Some((i, why)) = unread.iter().find(|(i, _)| columns.contains(i))
            {
                return Err(IngestError::file(path, format!("column `{}` {why}", table.headers()[*i])));
            }
        }
        let headers = table.headers().to_vec();
        Ok(Mapped {
            reader: Mutex::new(table),
            headers,
            spec,
            index,
            keys,
            name,
            warnings,
            unread,
            unread_asked: Mutex::new(None),
            file: path.display().to_string(),
        })
    }

    /// What the run manifest should say about this file's mapping: one line per key made by
    /// ingest instead of read from the file.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The keys made by ingest for a row, in order.
    fn make_keys(&self, line: usize, field: impl Fn(usize) -> String) -> Vec<String> {
        self.keys
            .iter()
            .map(|key| match key {
                Key::RowNumber => format!("{}:{line}", self.name),
                Key::Hash(columns) => {
                    use sha2::Digest as _;
                    let mut hasher = sha2::Sha256::new();
                    for &c in columns {
                        let value = field(c);
                        hasher.update((value.len() as u64).to_le_bytes());
                        hasher.update(value.as_bytes());
                    }
                    let digest = hasher.finalize();
                    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
                }
            })
            .collect()
    }

    /// An error when validation asked for a column the reader leaves unread.
    fn check_unread(&self) -> Result<(), IngestError> {
        match self.unread_asked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
            Some(why) => Err(IngestError::file(Path::new(&self.file), why.clone())),
            None => Ok(()),
        }
    }

    /// The next row of the file (see [`TableReader::next_row`]), with the keys ingest makes.
    pub fn next_row(&self) -> Result<Option<RawRow>, IngestError> {
        self.check_unread()?;
        let row = self.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next_row()?;
        Ok(row.map(|mut row| {
            if !self.keys.is_empty() && row.malformed.is_none() {
                for key in self.make_keys(row.line, |i| row.fields.get(i).unwrap_or("").to_owned()) {
                    row.fields.push_field(&key);
                }
            }
            row
        }))
    }

    /// About how many rows the file holds, when that is known before reading it (see
    /// [`TableReader::rows_hint`]); 0 when not.
    pub fn rows_hint(&self) -> usize {
        self.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner).rows_hint()
    }

    /// Whether the file is parquet (read in large column blocks), not CSV.
    pub fn is_parquet(&self) -> bool {
        self.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_parquet()
    }

    /// Up to `n` next rows as one block (see [`TableReader::next_block`]); empty at the end.
    pub fn next_block(&self, n: usize) -> Result<RawBlock, IngestError> {
        self.check_unread()?;
        let mut block = self.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next_block(n)?;
        if !self.keys.is_empty() {
            block.push_fields(self.keys.len(), |row| {
                self.make_keys(row.line(), |i| row.get(i).map(|v| v.text().into_owned()).unwrap_or_default())
            })?;
        }
        Ok(block)
    }

    /// The row loop of every block-read source: reads the whole file a block at a time and hands
    /// `each` the block with one range of at most [`CHUNK_ROWS`] of its rows after another, in
    /// file order. The next block is read while `each` works on this one: reading is sequential,
    /// and would otherwise leave a core idle.
    pub fn each_chunk<E: From<IngestError> + Send>(
        &self,
        mut each: impl FnMut(&RawBlock, Range<usize>) -> Result<(), E> + Send,
    ) -> Result<(), E> {
        self.each_block(|rows| {
            for start in (0..rows.len()).step_by(CHUNK_ROWS) {
                each(rows, start..rows.len().min(start + CHUNK_ROWS))?;
            }
            Ok(())
        })
    }

    /// `each` every block of rows read, in order ([`each_chunk`](Mapped::each_chunk) without
    /// the chunks: the caller cuts the block), the next block read meanwhile.
    pub fn each_block<E: From<IngestError> + Send>(&self, mut each: impl FnMut(&RawBlock) -> Result<(), E> + Send) -> Result<(), E> {
        let read_rows = if self.is_parquet() { PARQUET_READ_ROWS } else { CHUNK_ROWS };
        let mut next = self.next_block(read_rows)?;
        while !next.is_empty() {
            let rows = next;
            let (read, done) = rayon::join(|| self.next_block(read_rows), || each(&rows));
            next = read?;
            done?;
        }
        Ok(())
    }

    /// The raw value of a canonical column in a row, after recoding; the default when unmapped.
    pub fn get<'r>(&'r self, row: &'r RawRow, canonical: &str) -> Option<&'r str> {
        self.field(canonical).get(row)
    }

    /// A canonical column resolved against this source, to read row after row without looking
    /// its name up each time.
    pub fn field(&self, canonical: &str) -> Field<'a> {
        let index = self.index.get(canonical).copied();
        if let Some(i) = index
            && let Some((_, why)) = self.unread.iter().find(|(u, _)| *u == i)
        {
            let mut asked = self.unread_asked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            asked.get_or_insert_with(|| format!("column `{}` (canonical `{canonical}`) {why}", self.headers[i]));
        }
        Field { index, default: self.spec.defaults.get(canonical).map(String::as_str), recode: self.spec.recode.get(canonical) }
    }

    /// Whether a canonical column is available (mapped, made or defaulted).
    pub fn has(&self, canonical: &str) -> bool {
        self.index.contains_key(canonical) || self.spec.defaults.contains_key(canonical)
    }

    /// Decimal mark of the source.
    pub fn decimal(&self) -> char {
        self.spec.decimal.unwrap_or('.')
    }

    /// Date format of the source.
    pub fn date_format(&self) -> &str {
        self.spec.date_format.as_deref().unwrap_or("%Y-%m-%d")
    }

    /// The row as JSON (header → raw text), for the quarantine file.
    pub fn raw_json(&self, row: &RawRow) -> String {
        self.json_of(row.fields.iter().map(str::to_owned))
    }

    /// A block's row as JSON (header → raw text, numbers and dates as text too).
    pub fn block_json(&self, row: BlockRow<'_>) -> String {
        self.json_of(row.fields().map(|v| v.text().into_owned()))
    }

    /// Header → field; a header past the row's last field maps to null.
    fn json_of(&self, fields: impl Iterator<Item = String>) -> String {
        let map: serde_json::Map<String, serde_json::Value> = self
            .headers
            .iter()
            .zip(fields.map(Some).chain(std::iter::repeat(None)))
            .map(|(h, v)| (h.clone(), v.map_or(serde_json::Value::Null, serde_json::Value::String)))
            .collect();
        serde_json::Value::Object(map).to_string()
    }
}

/// Quarantined rows of one run, across datasets, up to a limit (beyond it rows are only counted,
/// and ingest fails: see [`Quarantine::overflow`]).
pub struct Quarantine {
    limit: usize,
    overflow: usize,
    dataset: Vec<String>,
    file: Vec<String>,
    line: Vec<i64>,
    code: Vec<String>,
    column: Vec<String>,
    reason: Vec<String>,
    raw: Vec<String>,
}

impl Default for Quarantine {
    fn default() -> Self {
        Quarantine::with_limit(usize::MAX)
    }
}

impl Quarantine {
    /// A quarantine that keeps at most `limit` rows.
    pub fn with_limit(limit: usize) -> Self {
        Quarantine {
            limit,
            overflow: 0,
            dataset: Vec::new(),
            file: Vec::new(),
            line: Vec::new(),
            code: Vec::new(),
            column: Vec::new(),
            reason: Vec::new(),
            raw: Vec::new(),
        }
    }

    /// Rejected rows beyond the limit (counted, not kept).
    pub fn overflow(&self) -> usize {
        self.overflow
    }

    /// Adds a rejected row.
    pub fn push(&mut self, dataset: &str, mapped: &Mapped<'_>, row: &RawRow, reject: &Reject) {
        self.push_with(dataset, mapped, row.line, reject, || mapped.raw_json(row));
    }

    /// Adds a rejected row of a block.
    pub fn push_block(&mut self, dataset: &str, mapped: &Mapped<'_>, row: BlockRow<'_>, reject: &Reject) {
        self.push_with(dataset, mapped, row.line(), reject, || mapped.block_json(row));
    }

    fn push_with(&mut self, dataset: &str, mapped: &Mapped<'_>, line: usize, reject: &Reject, raw: impl FnOnce() -> String) {
        self.push_parts(dataset, &mapped.file, line, reject, raw);
    }

    /// Adds a row rejected after it was validated (a rule over the whole source), described by
    /// its file, line and `raw` (the row as JSON).
    pub fn push_parts(&mut self, dataset: &str, file: &str, line: usize, reject: &Reject, raw: impl FnOnce() -> String) {
        if self.dataset.len() >= self.limit {
            self.overflow += 1;
            return;
        }
        self.dataset.push(dataset.to_owned());
        self.file.push(file.to_owned());
        self.line.push(line as i64);
        self.code.push(reject.code.to_owned());
        self.column.push(reject.column.clone());
        self.reason.push(reject.message.clone());
        self.raw.push(raw());
    }

    /// Adds the rows of `other` after this one's, as if each had been pushed here in turn (the
    /// limit is this one's; rows `other` could not keep count as overflow here too).
    pub fn append(&mut self, other: Quarantine) {
        self.overflow += other.overflow;
        let rows =
            other.dataset.into_iter().zip(other.file).zip(other.line).zip(other.code).zip(other.column).zip(other.reason).zip(other.raw);
        for ((((((dataset, file), line), code), column), reason), raw) in rows {
            if self.dataset.len() >= self.limit {
                self.overflow += 1;
                continue;
            }
            self.dataset.push(dataset);
            self.file.push(file);
            self.line.push(line);
            self.code.push(code);
            self.column.push(column);
            self.reason.push(reason);
            self.raw.push(raw);
        }
    }

    /// The most rows kept.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Rows quarantined so far.
    pub fn len(&self) -> usize {
        self.dataset.len()
    }

    /// Whether nothing was quarantined.
    pub fn is_empty(&self) -> bool {
        self.dataset.is_empty()
    }

    /// Reason code counts.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for c in &self.code {
            *m.entry(c.clone()).or_insert(0) += 1;
        }
        m
    }

    /// Reason codes of one dataset's rows, most common first: code, count, and the first row's
    /// message as an example.
    pub fn top_reasons(&self, dataset: &str) -> Vec<(String, usize, String)> {
        let mut by_code: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        for i in (0..self.dataset.len()).filter(|&i| self.dataset[i] == dataset) {
            by_code.entry(&self.code[i]).or_insert((0, &self.reason[i])).0 += 1;
        }
        let mut out: Vec<(String, usize, String)> = by_code.into_iter().map(|(c, (n, m))| (c.to_owned(), n, m.to_owned())).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// The quarantine dataset ([`mirador_schema::schemas::quarantine`]).
    pub fn into_frame(self) -> PolarsResult<DataFrame> {
        DataFrame::new_infer_height(vec![
            Column::new(col::DATASET.into(), self.dataset),
            Column::new(col::SOURCE_FILE.into(), self.file),
            Column::new(col::SOURCE_LINE.into(), self.line),
            Column::new(col::REASON_CODE.into(), self.code),
            Column::new(col::COLUMN.into(), self.column),
            Column::new(col::REASON.into(), self.reason),
            Column::new(col::RAW_ROW.into(), self.raw),
        ])
    }
}

/// Per-source row accounting for the manifest: rows in = accepted + quarantined + deferred.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Reconciliation {
    /// Data rows read.
    pub rows_in: usize,
    /// Rows accepted.
    pub accepted: usize,
    /// Rows quarantined.
    pub quarantined: usize,
    /// Valid rows dated after the run's `as-of` day, set aside for a later run.
    pub deferred: usize,
}
