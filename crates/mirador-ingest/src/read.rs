//! Reading raw tables: CSV in any of the dialects customs systems export (BOM, `,`/`;`/tab,
//! UTF-8, UTF-16 or Windows-1252/Latin-1) and parquet, streamed a row or a block of rows at a time
//! (memory does not grow with the file). Values are read as text, except a parquet file's numbers
//! and dates in blocks ([`Raw`]), which keep the file's type; either way the validation rules do
//! the typing, so a bad value becomes a quarantine row, never a silent null.
//!
//! What the reader promises:
//! - **Records are framed by physical lines**, not by the field parser: a record is one line,
//!   or the few lines (at most [`MAX_RECORD_LINES`] by default, `max-record-lines` per source) a
//!   quoted field with line breaks spans. A quote that does not close within that bound (or
//!   whose closing would swallow lines that are rows of their own) is a stray one: its line alone
//!   is quarantined as `unterminated_quote` and reading resumes on the next line. So every data
//!   line is one row in (blank lines are skipped), and a row's `line` is its true physical line,
//!   after blank lines and quoted line breaks too.
//! - **The header is checked**: a name given twice is refused, naming the file and the column; a
//!   file whose first line does not split into several names is said not to look like a
//!   delimited table, and its content is not echoed.
//! - **Encodings**: UTF-8 (a BOM is dropped), UTF-16 recognised by its BOM or by its NUL bytes
//!   and transcoded (recorded as `utf-16le`/`utf-16be`), Windows-1252/Latin-1 when the source says
//!   so; anything else is an error naming the line.
//! - **Parquet types**: every column type is checked against the file's schema before reading.
//!   Integers (but unsigned 8/16-bit ones), floats, booleans, text, categoricals, dates and nulls
//!   read (see [`Raw`]); a column of another type (decimal, timestamp, time, duration, binary,
//!   list, struct, ...) is left
//!   unread, and is an error naming the file, the column and its type only when the source maps it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::Datelike;
use csv::{ByteRecord, StringRecord};
use polars::prelude::*;
use rayon::prelude::*;

use crate::error::IngestError;

/// Most data rows one file may hold (or, for parquet, claim in its footer). Reading is streamed,
/// so memory grows with the accepted rows only, never with the file; this bound turns a corrupt
/// or hostile row count into a clear error instead of an out-of-memory kill.
pub const MAX_ROWS: usize = 500_000_000;
/// Most columns a header may have.
pub const MAX_COLUMNS: usize = 1024;
/// Longest field accepted; longer ones are a quarantine reason.
pub const MAX_FIELD_BYTES: usize = 4096;
/// Longest stretch of a file without a line break: beyond it the file is refused (a CSV record is
/// buffered whole, so this bounds the memory one record can take).
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// Most physical lines one CSV record may span (a quoted field holding line breaks), unless the
/// source sets `max-record-lines`.
pub const MAX_RECORD_LINES: usize = 8;
/// Rows of a parquet file converted to text at a time.
const PARQUET_CHUNK: usize = 65_536;

/// A whole table of raw text values (small files and tests; ingest itself streams with
/// [`TableReader`]).
#[derive(Debug, Default)]
pub struct RawTable {
    /// Header names, as in the file.
    pub headers: Vec<String>,
    /// Data rows.
    pub rows: Vec<RawRow>,
    /// Source encoding actually used.
    pub encoding: &'static str,
}

/// One raw row.
#[derive(Debug, Clone)]
pub struct RawRow {
    /// Line number in the file (header = line 1).
    pub line: usize,
    /// Fields, as text.
    pub fields: StringRecord,
    /// Why the row cannot be used as read (wrong field count, oversize field, unterminated
    /// quote).
    pub malformed: Option<Malformed>,
}

impl RawTable {
    /// Index of a header, by exact name.
    pub fn column(&self, header: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == header)
    }
}

/// A CSV or parquet file read one row at a time, in bounded memory.
pub struct TableReader {
    path: PathBuf,
    headers: Vec<String>,
    encoding: &'static str,
    rows: Rows,
    /// Data rows handed out so far.
    read: usize,
    max_rows: usize,
    /// Columns not read, with why (a parquet type Mirador does not read): an error only if the
    /// source maps them.
    unread: Vec<(usize, String)>,
}

enum Rows {
    Csv(Box<CsvRows>),
    Parquet {
        path: PathBuf,
        metadata: Option<Arc<polars::io::parquet::read::FileMetadata>>,
        /// Which columns are read: `None` for every one, else the readable ones by index.
        projection: Option<Vec<usize>>,
        /// Which columns hold text (and may be read as their dictionaries, [`Coded`]).
        text: Vec<bool>,
        width: usize,
        total: usize,
        next: usize,
        chunk: Vec<StringChunked>,
        at: usize,
    },
}

impl std::fmt::Debug for TableReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableReader")
            .field("path", &self.path)
            .field("headers", &self.headers)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl TableReader {
    /// Opens a CSV or parquet file (by extension) and reads its header.
    pub fn open(path: &Path, separator: Option<char>, encoding: Option<&str>) -> Result<Self, IngestError> {
        let file = File::open(path).map_err(|e| IngestError::file(path, format!("cannot read: {e}")))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        if ext == "parquet" {
            return Self::open_parquet(path, file);
        }
        Self::from_reader(path, Box::new(file), separator, encoding)
    }

    /// Reads CSV from any byte source (a file, or bytes in memory).
    pub fn from_reader(
        path: &Path,
        source: Box<dyn Read + Send>,
        separator: Option<char>,
        encoding: Option<&str>,
    ) -> Result<Self, IngestError> {
        let declared = encoding.unwrap_or("utf-8").to_ascii_lowercase();
        let mut latin1 = match declared.as_str() {
            "utf-8" | "utf8" | "utf-16" | "utf-16le" | "utf-16be" => false,
            "windows-1252" | "cp1252" | "latin-1" | "latin1" | "iso-8859-1" => true,
            other => {
                return Err(IngestError::file(
                    path,
                    format!("unsupported encoding `{other}` (use utf-8, utf-16, windows-1252 or latin-1)"),
                ));
            }
        };
        let mut buffered = BufReader::with_capacity(1 << 16, source);
        // UTF-16 is recognised from the first bytes (a BOM, or NULs in every other byte) whatever
        // the source says: such a file is never valid UTF-8 or Windows-1252 text.
        let head = buffered.fill_buf().map_err(|e| IngestError::file(path, format!("cannot read: {e}")))?;
        let utf16 = sniff_utf16(&head[..head.len().min(4096)]).or(match declared.as_str() {
            "utf-16" | "utf-16le" => Some(encoding_rs::UTF_16LE),
            "utf-16be" => Some(encoding_rs::UTF_16BE),
            _ => None,
        });
        let (inner, encoding): (Box<dyn Read + Send>, &'static str) = match utf16 {
            Some(enc) => {
                latin1 = false;
                let name = if enc == encoding_rs::UTF_16BE { "utf-16be" } else { "utf-16le" };
                (Box::new(BufReader::with_capacity(1 << 16, Utf16ToUtf8::new(buffered, enc))), name)
            }
            None => (Box::new(buffered), if latin1 { "windows-1252" } else { "utf-8" }),
        };
        let mut lines = Lines { inner: BufReader::with_capacity(1 << 16, inner), read: 0 };
        // The header line decides the separator; it is read ahead and put back in front.
        let Some((_, mut first)) = lines.next(path)? else {
            return Err(IngestError::file(path, "has no header line".into()));
        };
        if let Some(rest) = first.strip_prefix(b"\xEF\xBB\xBF") {
            first = rest.to_vec();
        }
        if first.contains(&0) {
            return Err(IngestError::file(
                path,
                "does not look like a delimited table: its first line holds NUL bytes (a binary file?)".into(),
            ));
        }
        let header_text = decode_field(path, &first, latin1, 1)?;
        if header_text.trim().is_empty() {
            return Err(IngestError::file(path, "has no header line".into()));
        }
        let sep = match separator {
            Some(c) if c.is_ascii() => c as u8,
            Some(c) => return Err(IngestError::file(path, format!("separator `{c}` is not an ASCII character"))),
            None => sniff_separator(&header_text),
        };
        let mut rows = CsvRows {
            lines,
            ahead: VecDeque::from([(1, first)]),
            sep,
            latin1,
            max_record_lines: MAX_RECORD_LINES,
            width: 0,
            record: ByteRecord::new(),
            joined: ByteRecord::new(),
        };
        match rows.next_record(path)? {
            Some(Framed { line: 1, unterminated: false }) => {}
            _ => return Err(IngestError::file(path, "line 1: the header has a quoted name that does not close".into())),
        }
        if rows.record.len() > MAX_COLUMNS {
            return Err(IngestError::file(path, format!("header has {} columns; at most {MAX_COLUMNS} are accepted", rows.record.len())));
        }
        let headers =
            rows.record.iter().map(|h| decode_field(path, h, latin1, 1).map(|h| h.trim().to_owned())).collect::<Result<Vec<_>, _>>()?;
        check_header(path, &headers)?;
        rows.width = headers.len();
        Ok(TableReader {
            path: path.to_owned(),
            headers,
            encoding,
            rows: Rows::Csv(Box::new(rows)),
            read: 0,
            max_rows: MAX_ROWS,
            unread: Vec::new(),
        })
    }

    /// Lets one CSV record span at most `lines` physical lines (a quoted field with line breaks;
    /// default [`MAX_RECORD_LINES`]); at least 1. No effect on parquet.
    pub fn with_max_record_lines(mut self, lines: usize) -> Self {
        if let Rows::Csv(csv) = &mut self.rows {
            csv.max_record_lines = lines.max(1);
        }
        self
    }

    fn open_parquet(path: &Path, file: File) -> Result<Self, IngestError> {
        let err = |e: PolarsError| IngestError::file(path, format!("is not a readable parquet file: {e}"));
        let mut reader = ParquetReader::new(file);
        let metadata = guarded(path, || reader.get_metadata().cloned()).and_then(|r| r.map_err(err))?;
        let total = metadata.num_rows;
        let schema = guarded(path, || reader.schema()).and_then(|r| r.map_err(err))?;
        if schema.len() > MAX_COLUMNS {
            return Err(IngestError::file(path, format!("has {} columns; at most {MAX_COLUMNS} are accepted", schema.len())));
        }
        let headers: Vec<String> = schema.iter_names().map(ToString::to_string).collect();
        check_header(path, &headers)?;
        // Each column's type is checked before anything is read: polars panics on some types
        // (decimal, struct, ...) this build is not compiled for, so those are never handed to it.
        let unread: Vec<(usize, String)> =
            schema.iter_values().enumerate().filter_map(|(i, field)| parquet_type_refused(&field.dtype).map(|why| (i, why))).collect();
        let projection =
            (!unread.is_empty()).then(|| (0..headers.len()).filter(|i| unread.iter().all(|(u, _)| u != i)).collect::<Vec<_>>());
        let text = schema
            .iter_values()
            .map(|field| matches!(field.dtype, ArrowDataType::Utf8 | ArrowDataType::LargeUtf8 | ArrowDataType::Utf8View))
            .collect();
        let width = headers.len();
        TableReader {
            path: path.to_owned(),
            headers,
            encoding: "parquet",
            rows: Rows::Parquet {
                path: path.to_owned(),
                metadata: Some(metadata),
                projection,
                text,
                width,
                total,
                next: 0,
                chunk: Vec::new(),
                at: 0,
            },
            read: 0,
            max_rows: MAX_ROWS,
            unread,
        }
        .with_max_rows(MAX_ROWS)
    }

    /// Columns not read (a parquet type Mirador does not read), by index, with the reason.
    pub fn unread_columns(&self) -> &[(usize, String)] {
        &self.unread
    }

    /// Whether the header looks like a delimited table's: at least two names, none holding a
    /// control character. A file that does not (a text file that is not a table, the wrong
    /// separator) has its content kept out of error messages.
    pub fn looks_like_a_table(&self) -> bool {
        self.headers.len() >= 2 && self.headers.iter().all(|h| !h.chars().any(char::is_control))
    }

    /// Refuses (with an error) a file holding, or for parquet claiming, more than `max_rows`
    /// data rows (default [`MAX_ROWS`]).
    pub fn with_max_rows(mut self, max_rows: usize) -> Result<Self, IngestError> {
        self.max_rows = max_rows;
        if let Rows::Parquet { total, .. } = &self.rows
            && *total > max_rows
        {
            return Err(IngestError::file(
                &self.path,
                format!("claims {total} rows; at most {max_rows} are accepted in one file (split it)"),
            ));
        }
        Ok(self)
    }

    /// Header names, as in the file.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// Index of a header, by exact name.
    pub fn column(&self, header: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == header)
    }

    /// Source encoding actually used (`utf-8`, `windows-1252` or `parquet`).
    pub fn encoding(&self) -> &'static str {
        self.encoding
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next data row, or `None` at the end. A row with the wrong number of fields or an
    /// oversize field comes back marked malformed (to be quarantined); blank lines are skipped.
    pub fn next_row(&mut self) -> Result<Option<RawRow>, IngestError> {
        let width = self.headers.len();
        let row = match &mut self.rows {
            Rows::Csv(csv) => {
                let Some(framed) = csv.next_record(&self.path)? else { return Ok(None) };
                let line = framed.line;
                let fields = if csv.latin1 {
                    csv.record.iter().map(|f| encoding_rs::WINDOWS_1252.decode(f).0).collect::<StringRecord>()
                } else {
                    StringRecord::from_byte_record(std::mem::take(&mut csv.record)).map_err(|e| {
                        IngestError::file(
                            &self.path,
                            format!(
                                "is not valid UTF-8 (line {line}, field {}); if it is Windows-1252 or Latin-1, set `encoding` for this source",
                                e.utf8_error().field() + 1
                            ),
                        )
                    })?
                };
                let malformed = if framed.unterminated {
                    Some(Malformed::new(
                        "unterminated_quote",
                        format!(
                            "has a quoted field (a `\"`) that does not close within {} line(s); the line is set aside alone and \
                             reading resumes on the next line",
                            csv.max_record_lines
                        ),
                    ))
                } else {
                    shape(&fields, width)
                };
                RawRow { line, malformed, fields }
            }
            Rows::Parquet { path, metadata, projection, width: cols, total, next, chunk, at, .. } => {
                if chunk.first().is_none_or(|c| *at >= c.len()) {
                    if *next >= *total {
                        return Ok(None);
                    }
                    let len = PARQUET_CHUNK.min(*total - *next);
                    *chunk = read_parquet_chunk(path, metadata.clone(), projection.as_deref(), *cols, *next, len)?;
                    *next += len;
                    *at = 0;
                    if chunk.first().is_none_or(ChunkedArray::is_empty) {
                        return Err(IngestError::file(path, format!("claims {total} rows but holds only {}", *next - len)));
                    }
                }
                let fields: StringRecord = chunk.iter().map(|c| c.get(*at).unwrap_or("")).collect();
                *at += 1;
                RawRow { line: self.read + 2, malformed: shape(&fields, width), fields }
            }
        };
        self.count(1)?;
        Ok(Some(row))
    }

    /// Up to `n` next rows; empty at the end. Parquet rows are read `n` at a time, each column
    /// converted to text and the rows assembled in parallel; CSV rows one after the other.
    pub fn next_rows(&mut self, n: usize) -> Result<Vec<RawRow>, IngestError> {
        let mut rows = Vec::with_capacity(n.min(1 << 16));
        // A parquet chunk left part-read by `next_row` is finished first.
        while rows.len() < n {
            let bulk = match &self.rows {
                Rows::Parquet { chunk, at, .. } => chunk.first().is_none_or(|c| *at >= c.len()),
                Rows::Csv(_) => false,
            };
            if bulk {
                break;
            }
            match self.next_row()? {
                Some(row) => rows.push(row),
                None => return Ok(rows),
            }
        }
        let width = self.headers.len();
        if let Rows::Parquet { path, metadata, projection, width: cols, total, next, .. } = &mut self.rows
            && rows.len() < n
            && *next < *total
        {
            let len = (n - rows.len()).min(*total - *next);
            let columns = read_parquet_chunk(path, metadata.clone(), projection.as_deref(), *cols, *next, len)?;
            let got = columns.first().map_or(0, ChunkedArray::len);
            if got != len {
                return Err(IngestError::file(path, format!("claims {total} rows but holds only {}", *next + got.min(len))));
            }
            *next += len;
            let first_line = self.read + 2;
            rows.par_extend((0..len).into_par_iter().map(|at| {
                let fields: StringRecord = columns.iter().map(|c| c.get(at).unwrap_or("")).collect();
                RawRow { line: first_line + at, malformed: shape(&fields, width), fields }
            }));
            self.count(len)?;
        }
        Ok(rows)
    }

    /// Counts `rows` more data rows handed out; an error past `max_rows`.
    fn count(&mut self, rows: usize) -> Result<(), IngestError> {
        self.read += rows;
        if self.read > self.max_rows {
            return Err(IngestError::file(
                &self.path,
                format!("has more than {} rows; at most that many are accepted in one file (split it)", self.max_rows),
            ));
        }
        Ok(())
    }

    /// About how many data rows the file holds, to size tables ahead: for parquet, the rows its
    /// footer claims, but no more than one per 8 bytes of the file (a claim is not trusted to
    /// reserve memory); 0 for CSV (unknown before reading).
    pub fn rows_hint(&self) -> usize {
        match &self.rows {
            Rows::Parquet { total, .. } => {
                let bytes = std::fs::metadata(&self.path).map_or(0, |m| usize::try_from(m.len()).unwrap_or(usize::MAX));
                (*total).min(bytes / 8)
            }
            Rows::Csv(_) => 0,
        }
    }

    /// Whether the file is parquet (read in large column blocks by [`next_block`]), not CSV.
    ///
    /// [`next_block`]: TableReader::next_block
    pub fn is_parquet(&self) -> bool {
        matches!(self.rows, Rows::Parquet { .. })
    }

    /// Up to `n` next rows as one block; empty at the end. Parquet rows come column by column,
    /// numbers and dates as the file types them (see [`Raw`]); CSV rows as [`next_rows`] reads
    /// them. A parquet chunk left part-read by [`next_row`] is finished first, as text rows.
    ///
    /// [`next_rows`]: TableReader::next_rows
    /// [`next_row`]: TableReader::next_row
    pub fn next_block(&mut self, n: usize) -> Result<RawBlock, IngestError> {
        let first_line = self.read + 2;
        let (columns, len) = match &mut self.rows {
            Rows::Parquet { path, metadata, projection, text, width: cols, total, next, chunk, at }
                if chunk.first().is_none_or(|c| *at >= c.len()) =>
            {
                let len = n.min(*total - *next);
                if len == 0 {
                    return Ok(RawBlock { first_line, len: 0, rows: BlockRows::Records(Vec::new()), long: Vec::new() });
                }
                let slice = Slice { path, metadata: metadata.clone(), projection: projection.as_deref(), width: *cols, offset: *next, len };
                let columns = read_parquet_block(&slice, &self.headers, text)?;
                let got = columns.first().map_or(0, RawColumn::len);
                if got != len {
                    return Err(IngestError::file(path, format!("claims {total} rows but holds only {}", *next + got.min(len))));
                }
                *next += len;
                (columns, len)
            }
            _ => {
                let rows = self.next_rows(n)?;
                return Ok(RawBlock { first_line, len: rows.len(), rows: BlockRows::Records(rows), long: Vec::new() });
            }
        };
        self.count(len)?;
        let long = long_rows(&columns);
        Ok(RawBlock { first_line, len, rows: BlockRows::Columns(columns), long })
    }

    /// Reads every remaining row into memory.
    pub fn into_table(mut self) -> Result<RawTable, IngestError> {
        let mut rows = Vec::new();
        while let Some(row) = self.next_row()? {
            rows.push(row);
        }
        Ok(RawTable { headers: self.headers, rows, encoding: self.encoding })
    }
}

/// Rows read together ([`TableReader::next_block`]): CSV records, or a slice of a parquet file
/// held column by column.
#[derive(Debug)]
pub struct RawBlock {
    first_line: usize,
    len: usize,
    rows: BlockRows,
    /// The rows of a parquet slice with a text field longer than [`MAX_FIELD_BYTES`], in order
    /// (found once per slice rather than once per row).
    long: Vec<usize>,
}

/// The rows (in order) of a parquet slice with a text field longer than [`MAX_FIELD_BYTES`].
fn long_rows(columns: &[RawColumn]) -> Vec<usize> {
    let mut long = Vec::new();
    for column in columns {
        match column {
            RawColumn::Text(a) => long.extend(
                a.views()
                    .iter()
                    .enumerate()
                    .filter(|(at, v)| v.length as usize > MAX_FIELD_BYTES && a.get(*at).is_some_and(|v| v.len() > MAX_FIELD_BYTES))
                    .map(|(at, _)| at),
            ),
            // The entries are measured once, then the rows of the long ones found.
            RawColumn::Coded(c) => {
                let entry_long: Vec<bool> = c.values.values_iter().map(|v| v.len() > MAX_FIELD_BYTES).collect();
                if entry_long.contains(&true) {
                    long.extend(c.ids.iter().enumerate().filter(|(_, e)| entry_long[**e as usize]).map(|(at, _)| at));
                }
            }
            _ => {}
        }
    }
    long.sort_unstable();
    long.dedup();
    long
}

#[derive(Debug)]
enum BlockRows {
    Records(Vec<RawRow>),
    Columns(Vec<RawColumn>),
}

/// One column of a parquet slice. Floating-point (64-bit), integer and date columns keep their
/// type: turning them into text only to parse it back costs most of the reading. Every other
/// type is cast to text, as [`TableReader::next_row`] reads it.
#[derive(Debug)]
pub(crate) enum RawColumn {
    Text(ArrayOf<StringType>),
    /// Text read as its dictionary ([`Coded`]).
    Coded(Coded),
    Number(ArrayOf<Float64Type>),
    Integer(ArrayOf<Int64Type>),
    Day(ArrayOf<Int32Type>),
}

/// The arrow array of one chunk of a column of type `T`: a value is read from it directly.
type ArrayOf<T> = <T as PolarsDataType>::Array;

/// The value at `at` of a numeric array (in bounds), unless null.
#[inline]
fn value_at<T: PolarsNumericType>(array: &ArrayOf<T>, at: usize) -> Option<T::Native> {
    array.validity().is_none_or(|valid| valid.get_bit(at)).then(|| array.value(at))
}

impl RawColumn {
    fn len(&self) -> usize {
        match self {
            RawColumn::Text(a) => a.len(),
            RawColumn::Coded(c) => c.ids.len(),
            RawColumn::Number(a) => a.len(),
            RawColumn::Integer(a) => a.len(),
            RawColumn::Day(a) => a.len(),
        }
    }

    /// The value at `at` (in bounds); a null reads as empty text, as in a CSV file.
    #[inline]
    fn get(&self, at: usize) -> Raw<'_> {
        let typed = match self {
            RawColumn::Text(a) => a.get(at).map(Raw::Text),
            RawColumn::Coded(c) => Some(Raw::Text(c.entry(c.ids[at]))),
            RawColumn::Number(a) => value_at::<Float64Type>(a, at).map(Raw::Number),
            RawColumn::Integer(a) => value_at::<Int64Type>(a, at).map(Raw::Integer),
            RawColumn::Day(a) => value_at::<Int32Type>(a, at).map(Raw::Day),
        };
        typed.unwrap_or(Raw::Text(""))
    }
}

/// One raw value of a block: text, or a number or date as a parquet file types it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Raw<'b> {
    /// Text (a CSV field, a parquet text column; a null is empty text).
    Text(&'b str),
    /// A 64-bit floating-point value.
    Number(f64),
    /// An integer.
    Integer(i64),
    /// A date, in days since 1970-01-01.
    Day(i32),
}

impl<'b> Raw<'b> {
    /// The value as text, exactly as [`TableReader::next_row`] reads it (a parquet value cast to
    /// text): for messages and the quarantine file, and for rules that only read text.
    #[inline]
    pub fn text(self) -> std::borrow::Cow<'b, str> {
        match self {
            Raw::Text(s) => std::borrow::Cow::Borrowed(s),
            typed => typed.typed_text(),
        }
    }

    /// A typed value as text ([`Raw::text`]).
    fn typed_text(self) -> std::borrow::Cow<'b, str> {
        use std::borrow::Cow;
        match self {
            Raw::Text(s) => Cow::Borrowed(s),
            Raw::Integer(x) => Cow::Owned(x.to_string()),
            Raw::Number(x) => {
                let text = Float64Chunked::from_slice(PlSmallStr::EMPTY, &[x]).cast(&DataType::String);
                Cow::Owned(text.ok().and_then(|t| t.str().ok().and_then(|t| t.get(0).map(str::to_owned))).unwrap_or_else(|| x.to_string()))
            }
            Raw::Day(d) => Cow::Owned(date_texts(&Int32Chunked::from_slice(PlSmallStr::EMPTY, &[d])).get(0).unwrap_or_default().to_owned()),
        }
    }
}

impl RawBlock {
    /// Appends `n` text fields to every row that is not malformed, after the file's fields:
    /// `fields` gives them (keys made from the row). A malformed row gets none, so that its
    /// fields still line up with the header in the quarantine file.
    pub(crate) fn push_fields(&mut self, n: usize, fields: impl Fn(BlockRow<'_>) -> Vec<String>) -> Result<(), IngestError> {
        let made: Vec<Option<Vec<String>>> =
            (0..self.len).map(|at| self.row(at).malformed().is_none().then(|| fields(self.row(at)))).collect();
        match &mut self.rows {
            BlockRows::Records(rows) => {
                for (row, made) in rows.iter_mut().zip(made) {
                    for value in made.into_iter().flatten() {
                        row.fields.push_field(&value);
                    }
                }
            }
            BlockRows::Columns(columns) => {
                for k in 0..n {
                    let values: StringChunked = made.iter().map(|m| m.as_ref().and_then(|m| m.get(k)).map(String::as_str)).collect();
                    columns.push(RawColumn::Text(single(&values)?));
                }
                self.long = long_rows(columns);
            }
        }
        Ok(())
    }

    /// A hash of every field of each row of `rows` (in bounds), in order, to tell an exact
    /// duplicate from a conflicting one: rows with the same fields (same kinds, same values) hash
    /// alike, whether read from a CSV or a parquet file. A parquet slice is hashed column by
    /// column, without taking its rows apart.
    pub fn content_hashes(&self, rows: Range<usize>) -> Vec<u64> {
        match &self.rows {
            BlockRows::Records(_) => rows
                .map(|at| {
                    let row = self.row(at);
                    let (mut h, mut fields) = (ROW_SEED, 0u64);
                    for value in row.fields() {
                        h = mix(h, value_hash(value));
                        fields += 1;
                    }
                    mix(h, fields)
                })
                .collect(),
            BlockRows::Columns(columns) => {
                let mut hashes = vec![ROW_SEED; rows.len()];
                let empty = value_hash(Raw::Text(""));
                for column in columns {
                    let h = &mut hashes;
                    match column {
                        RawColumn::Text(a) => fold_into(h, rows.clone(), |at| value_hash(Raw::Text(a.get(at).unwrap_or("")))),
                        RawColumn::Coded(c) => fold_into(h, rows.clone(), |at| c.hashes[c.ids[at] as usize]),
                        RawColumn::Number(a) => {
                            fold_into(h, rows.clone(), |at| value_at::<Float64Type>(a, at).map_or(empty, |x| value_hash(Raw::Number(x))));
                        }
                        RawColumn::Integer(a) => {
                            fold_into(h, rows.clone(), |at| value_at::<Int64Type>(a, at).map_or(empty, |x| value_hash(Raw::Integer(x))));
                        }
                        RawColumn::Day(a) => {
                            fold_into(h, rows.clone(), |at| value_at::<Int32Type>(a, at).map_or(empty, |x| value_hash(Raw::Day(x))));
                        }
                    }
                }
                let fields = columns.len() as u64;
                hashes.iter_mut().for_each(|h| *h = mix(*h, fields));
                hashes
            }
        }
    }

    /// Rows in the block.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the block holds no row (the end of the file).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Row `at` (below [`len`](RawBlock::len)).
    pub fn row(&self, at: usize) -> BlockRow<'_> {
        BlockRow { block: self, at }
    }
}

/// Field `i` of every row of a [`RawBlock`], resolved once: read row after row without looking
/// the column up again ([`RawBlock::column`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum BlockColumn<'b> {
    /// A column of a parquet slice.
    Column(&'b RawColumn),
    /// Field `i` of CSV records.
    Records(&'b [RawRow], usize),
    /// Past the last column of a parquet slice: no row has it.
    Missing,
}

impl<'b> BlockColumn<'b> {
    /// The column's dictionary, when it is read as one ([`Coded`]).
    pub(crate) fn coded(self) -> Option<&'b Coded> {
        match self {
            BlockColumn::Column(RawColumn::Coded(c)) => Some(c),
            _ => None,
        }
    }

    /// The value of row `at` (in bounds), as [`BlockRow::get`] reads it.
    #[inline]
    pub(crate) fn get(self, at: usize) -> Option<Raw<'b>> {
        match self {
            BlockColumn::Column(c) => Some(c.get(at)),
            BlockColumn::Records(rows, i) => rows[at].fields.get(i).map(Raw::Text),
            BlockColumn::Missing => None,
        }
    }
}

impl RawBlock {
    /// Field `i` of every row (see [`BlockColumn`]).
    pub(crate) fn column(&self, i: usize) -> BlockColumn<'_> {
        match &self.rows {
            BlockRows::Records(rows) => BlockColumn::Records(rows, i),
            BlockRows::Columns(columns) => columns.get(i).map_or(BlockColumn::Missing, BlockColumn::Column),
        }
    }
}

/// The start of every row's content hash ([`RawBlock::content_hashes`]).
const ROW_SEED: u64 = 0x243f_6a88_85a3_08d3;

/// A hash of one raw value and its kind.
#[inline]
fn value_hash(value: Raw<'_>) -> u64 {
    use std::hash::BuildHasher;
    let state = foldhash::fast::FixedState::default();
    match value {
        Raw::Text(s) => state.hash_one((0u8, s)),
        Raw::Number(x) => state.hash_one((1u8, x.to_bits())),
        Raw::Integer(x) => state.hash_one((2u8, x)),
        Raw::Day(x) => state.hash_one((3u8, x)),
    }
}

/// Folds each row's value (`value` of its index) into its hash.
fn fold_into(hashes: &mut [u64], rows: Range<usize>, value: impl Fn(usize) -> u64) {
    for (h, at) in hashes.iter_mut().zip(rows) {
        *h = mix(*h, value(at));
    }
}

/// Folds `value` into the hash `h` of the fields before it (the order counts).
#[inline]
fn mix(h: u64, value: u64) -> u64 {
    let m = u128::from(h.rotate_left(23) ^ value) * 0x9e37_79b9_7f4a_7c15;
    (m as u64) ^ ((m >> 64) as u64)
}

/// One row of a [`RawBlock`].
#[derive(Debug, Clone, Copy)]
pub struct BlockRow<'b> {
    block: &'b RawBlock,
    at: usize,
}

impl<'b> BlockRow<'b> {
    /// Line number in the file (header = line 1).
    pub fn line(self) -> usize {
        match &self.block.rows {
            BlockRows::Records(rows) => rows[self.at].line,
            BlockRows::Columns(_) => self.block.first_line + self.at,
        }
    }

    /// Field `i`; `None` past the row's end.
    pub fn get(self, i: usize) -> Option<Raw<'b>> {
        match &self.block.rows {
            BlockRows::Records(rows) => rows[self.at].fields.get(i).map(Raw::Text),
            BlockRows::Columns(columns) => columns.get(i).map(|c| c.get(self.at)),
        }
    }

    /// Every field, in file order.
    pub fn fields(self) -> impl Iterator<Item = Raw<'b>> {
        (0..).map_while(move |i| self.get(i))
    }

    /// Why the row cannot be used as read (see [`RawRow::malformed`]).
    pub fn malformed(self) -> Option<Malformed> {
        match &self.block.rows {
            BlockRows::Records(rows) => rows[self.at].malformed.clone(),
            BlockRows::Columns(_) => self
                .block
                .long
                .binary_search(&self.at)
                .is_ok()
                .then(|| Malformed::new("malformed_row", format!("has a field longer than {MAX_FIELD_BYTES} bytes"))),
        }
    }
}

fn shape(fields: &StringRecord, width: usize) -> Option<Malformed> {
    if fields.len() != width {
        Some(Malformed::new("malformed_row", format!("has {} fields, the header has {width}", fields.len())))
    } else if fields.iter().any(|f| f.len() > MAX_FIELD_BYTES) {
        Some(Malformed::new("malformed_row", format!("has a field longer than {MAX_FIELD_BYTES} bytes")))
    } else {
        None
    }
}

/// Refuses a header that names one column twice: which of the two a mapping would read is a
/// guess, so the file is refused, naming the column.
fn check_header(path: &Path, headers: &[String]) -> Result<(), IngestError> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() {
            continue;
        }
        if let Some(first) = seen.insert(h.as_str(), i) {
            return Err(IngestError::file(
                path,
                format!(
                    "line 1: column `{h}` appears twice in the header (columns {} and {}); rename or drop one, so that it is clear \
                     which one is read",
                    first + 1,
                    i + 1
                ),
            ));
        }
    }
    Ok(())
}

fn decode_field(path: &Path, bytes: &[u8], latin1: bool, line: usize) -> Result<String, IngestError> {
    if latin1 {
        return Ok(encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned());
    }
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| {
        IngestError::file(
            path,
            format!("is not valid UTF-8 (line {line}); if it is Windows-1252 or Latin-1, set `encoding` for this source"),
        )
    })
}

/// Why a parquet column of this type is not read, or `None` when it is. Only types this build
/// of polars reads without a panic, and that the rules can type, are read.
fn parquet_type_refused(dtype: &ArrowDataType) -> Option<String> {
    use ArrowDataType as A;
    let text = |t: &ArrowDataType| matches!(t, A::Utf8 | A::LargeUtf8 | A::Utf8View);
    match dtype {
        A::Null
        | A::Boolean
        | A::Int8
        | A::Int16
        | A::Int32
        | A::Int64
        | A::UInt32
        | A::UInt64
        | A::Float32
        | A::Float64
        | A::Date32
        | A::Utf8
        | A::LargeUtf8
        | A::Utf8View => None,
        A::Dictionary(_, values, _) if text(values.as_ref()) => None,
        other => Some(format!(
            "has parquet type {}, which Mirador does not read; export it as text, a number or a date",
            parquet_type_name(other)
        )),
    }
}

/// A parquet/arrow type, as an analyst would name it.
fn parquet_type_name(dtype: &ArrowDataType) -> String {
    use ArrowDataType as A;
    match dtype {
        A::Decimal(p, s) | A::Decimal32(p, s) | A::Decimal64(p, s) | A::Decimal256(p, s) => format!("DECIMAL({p},{s})"),
        A::Timestamp(unit, tz) => format!("TIMESTAMP({unit:?}{})", tz.as_ref().map(|t| format!(", {t}")).unwrap_or_default()),
        A::Date64 => "DATE64 (milliseconds)".into(),
        A::Time32(_) | A::Time64(_) => "TIME".into(),
        A::Duration(_) => "DURATION".into(),
        A::Interval(_) => "INTERVAL".into(),
        A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_) => "BINARY".into(),
        A::List(_) | A::LargeList(_) | A::FixedSizeList(..) => "LIST".into(),
        A::Struct(_) => "STRUCT".into(),
        A::Map(..) => "MAP".into(),
        A::Dictionary(..) => "DICTIONARY of non-text values".into(),
        A::UInt8 | A::UInt16 => "unsigned 8- or 16-bit integer".into(),
        other => format!("{other:?}"),
    }
}

/// Runs a polars call on a file, turning a panic inside polars into an error naming the file:
/// the type check above keeps known panics away, this keeps an unknown one from escaping.
fn guarded<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, IngestError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
        let why = panic.downcast_ref::<&str>().map(|s| (*s).to_owned()).or_else(|| panic.downcast_ref::<String>().cloned());
        IngestError::file(path, format!("cannot be read as parquet (the reader failed: {})", why.unwrap_or_else(|| "unknown".into())))
    })
}

/// Rows `offset..offset + len` of a parquet file, as the file types them (the projected columns
/// only).
fn read_parquet_slice(
    path: &Path,
    metadata: Option<Arc<polars::io::parquet::read::FileMetadata>>,
    projection: Option<&[usize]>,
    offset: usize,
    len: usize,
) -> Result<DataFrame, IngestError> {
    let file = File::open(path).map_err(|e| IngestError::file(path, format!("cannot read: {e}")))?;
    let mut reader = ParquetReader::new(file).with_slice(Some((offset, len))).with_projection(projection.map(<[usize]>::to_vec));
    if let Some(m) = metadata {
        reader.set_metadata(m);
    }
    guarded(path, || reader.finish())?.map_err(|e| IngestError::file(path, format!("is not a readable parquet file: {e}")))
}

/// The file's columns from the projected ones read: an unread column is all nulls.
fn place<T>(projection: Option<&[usize]>, width: usize, read: Vec<T>, unread: impl Fn(usize) -> T) -> Vec<T> {
    let Some(projection) = projection else { return read };
    let mut read = read.into_iter();
    (0..width).map(|i| if projection.contains(&i) { read.next().unwrap_or_else(|| unread(i)) } else { unread(i) }).collect()
}

/// One slice of a parquet file, every column cast to text.
fn read_parquet_chunk(
    path: &Path,
    metadata: Option<Arc<polars::io::parquet::read::FileMetadata>>,
    projection: Option<&[usize]>,
    width: usize,
    offset: usize,
    len: usize,
) -> Result<Vec<StringChunked>, IngestError> {
    let err = |e: PolarsError| IngestError::file(path, format!("is not a readable parquet file: {e}"));
    let df = read_parquet_slice(path, metadata, projection, offset, len)?;
    let height = df.height();
    let read = df
        .columns()
        .par_iter()
        .map(|c| {
            if c.dtype() == &DataType::Date {
                return Ok(date_texts(c.date().map_err(err)?.physical()));
            }
            let s =
                guarded(path, || c.cast(&DataType::String))?.map_err(|e| IngestError::file(path, format!("column `{}`: {e}", c.name())))?;
            Ok(s.str().map_err(err)?.rechunk().into_owned())
        })
        .collect::<Result<Vec<_>, IngestError>>()?;
    Ok(place(projection, width, read, |_| StringChunked::full_null(PlSmallStr::EMPTY, height)))
}

/// Rows `offset..offset + len` of a parquet file, to be read column by column.
struct Slice<'p> {
    path: &'p Path,
    metadata: Option<Arc<polars::io::parquet::read::FileMetadata>>,
    /// The columns read (`None`: every one), by index.
    projection: Option<&'p [usize]>,
    /// Columns of the file.
    width: usize,
    offset: usize,
    len: usize,
}

/// One slice of a parquet file, column by column (see [`RawColumn`]). A text column (`text`,
/// by index) whose every row group read holds a dictionary of its values is read as that
/// dictionary and each row's entry ([`Coded`]); the other columns through polars' reader.
fn read_parquet_block(slice: &Slice<'_>, headers: &[String], text: &[bool]) -> Result<Vec<RawColumn>, IngestError> {
    let Slice { path, metadata, projection, width, offset, len } = slice;
    let (path, width, offset, len) = (*path, *width, *offset, *len);
    let err = |e: PolarsError| IngestError::file(path, format!("is not a readable parquet file: {e}"));
    let wanted: Vec<usize> = projection.map_or_else(|| (0..width).collect(), <[usize]>::to_vec);
    let mut coded: Vec<(usize, Coded)> = match metadata {
        Some(m) if len > 0 => {
            let file = File::open(path).map_err(|e| IngestError::file(path, format!("cannot read: {e}")))?;
            let file_len = file.metadata().map_err(|e| IngestError::file(path, format!("cannot read: {e}")))?.len();
            wanted
                .par_iter()
                .filter(|&&i| text.get(i).copied().unwrap_or(false))
                .filter_map(|&i| {
                    let name = headers.get(i)?;
                    // A file this path cannot read (or that makes the decoder fail) is read by
                    // polars' reader instead, which reports what is wrong with it.
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_coded(&file, file_len, m, name, offset, len)))
                        .ok()
                        .flatten()
                        .map(|c| (i, c))
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let rest: Vec<usize> = wanted.iter().copied().filter(|i| coded.iter().all(|(c, _)| c != i)).collect();
    let mut read: Vec<(usize, RawColumn)> = coded.drain(..).map(|(i, c)| (i, RawColumn::Coded(c))).collect();
    let mut height = len;
    if !rest.is_empty() {
        let df = read_parquet_slice(path, metadata.clone(), Some(&rest), offset, len)?;
        height = df.height();
        let typed = df
            .columns()
            .par_iter()
            .map(|c| {
                let cast = |to: &DataType| {
                    guarded(path, || c.cast(to))?.map_err(|e| IngestError::file(path, format!("column `{}`: {e}", c.name())))
                };
                let dtype = c.dtype();
                Ok(if dtype == &DataType::Float64 {
                    RawColumn::Number(single(c.f64().map_err(err)?).map_err(err)?)
                } else if dtype.is_integer() && dtype != &DataType::UInt64 {
                    RawColumn::Integer(single(cast(&DataType::Int64)?.i64().map_err(err)?).map_err(err)?)
                } else if dtype == &DataType::Date {
                    RawColumn::Day(single(c.date().map_err(err)?.physical()).map_err(err)?)
                } else {
                    RawColumn::Text(single(cast(&DataType::String)?.str().map_err(err)?).map_err(err)?)
                })
            })
            .collect::<Result<Vec<_>, IngestError>>()?;
        read.extend(rest.iter().copied().zip(typed));
        if height != len {
            // Short: the caller reports the rows the file holds.
            return Ok(read.into_iter().filter(|(i, _)| rest.contains(i)).map(|(_, c)| c).collect());
        }
    }
    read.sort_by_key(|(i, _)| *i);
    let nulls = single(&StringChunked::full_null(PlSmallStr::EMPTY, height)).map_err(err)?;
    let mut read = read.into_iter().peekable();
    Ok((0..width)
        .filter_map(|i| match read.peek() {
            Some((at, _)) if *at == i => read.next().map(|(_, c)| c),
            _ if projection.is_none_or(|p| p.contains(&i)) => None,
            _ => Some(RawColumn::Text(nulls.clone())),
        })
        .collect())
}

/// Rows `offset..offset + len` of the text column `name` as its dictionaries and each row's
/// entry ([`Coded`]), or `None` when a row group read does not hold the column as one
/// dictionary-encoded leaf (plain-encoded text, a nested column) or cannot be decoded so.
fn read_coded(
    file: &File,
    file_len: u64,
    metadata: &polars::io::parquet::read::FileMetadata,
    name: &str,
    offset: usize,
    len: usize,
) -> Option<Coded> {
    use std::os::unix::fs::FileExt;

    use polars_arrow::array::{DictionaryArray, MutableBinaryViewArray, Utf8ViewArray};
    use polars_arrow::datatypes::{ArrowDataType as A, DTYPE_CATEGORICAL_NEW, Field, IntegerType};
    use polars_parquet::read::{BasicDecompressor, Filter, PageReader, column_iter_to_arrays};

    // polars' parquet decoder reads a column marked categorical as its dictionary and keys.
    let field = Field::new(name.into(), A::Dictionary(IntegerType::UInt32, Box::new(A::Utf8View), false), true)
        .with_metadata(std::iter::once((PlSmallStr::from_static(DTYPE_CATEGORICAL_NEW), PlSmallStr::EMPTY)).collect());
    let mut values = MutableBinaryViewArray::<str>::new();
    values.push_value("");
    let mut ids: Vec<u32> = Vec::with_capacity(len);
    let mut start = 0;
    for group in &metadata.row_groups {
        let (first, rows) = (start, group.num_rows());
        start += rows;
        let (lo, hi) = (offset.max(first), (offset + len).min(first + rows));
        if lo >= hi {
            if first >= offset + len {
                break;
            }
            continue;
        }
        let mut chunks = group.columns_under_root_iter(name)?;
        let (Some(chunk), None) = (chunks.next(), chunks.next()) else { return None };
        let range = chunk.byte_range();
        if chunk.dictionary_page_offset().is_none() || range.start > range.end || range.end > file_len {
            return None;
        }
        let mut bytes = vec![0; usize::try_from(range.end - range.start).ok()?];
        file.read_exact_at(&mut bytes, range.start).ok()?;
        let pages = PageReader::new(std::io::Cursor::new(bytes.into()), chunk, Vec::new(), usize::MAX);
        let filter = (lo > first || hi < first + rows).then(|| Filter::Range(lo - first..hi - first));
        let (arrays, _) = column_iter_to_arrays(
            vec![BasicDecompressor::new(pages, Vec::new())],
            vec![&chunk.descriptor().descriptor.primitive_type],
            field.clone(),
            filter,
        )
        .ok()?;
        for array in arrays {
            let dictionary = array.as_any().downcast_ref::<DictionaryArray<u32>>()?;
            let entries = dictionary.values().as_any().downcast_ref::<Utf8ViewArray>()?;
            let base = u32::try_from(values.len()).ok()?;
            u32::try_from(values.len() + entries.len()).ok()?;
            for entry in entries {
                values.push_value(entry.unwrap_or(""));
            }
            let keys = dictionary.keys();
            let size = entries.len();
            let valid = keys.validity().filter(|v| v.unset_bits() > 0);
            for (at, &key) in keys.values().iter().enumerate() {
                if valid.is_some_and(|v| !v.get_bit(at)) {
                    ids.push(0);
                } else if (key as usize) < size {
                    ids.push(base + key);
                } else {
                    return None;
                }
            }
        }
    }
    if ids.len() != len {
        return None;
    }
    let values: Utf8ViewArray = values.into();
    let hashes = values.values_iter().map(|v| value_hash(Raw::Text(v))).collect();
    Some(Coded { values, ids, hashes })
}

/// A text column of a parquet slice read as its dictionary: each row's entry in `values`.
/// Entry 0 is a null's (empty text, as a null reads); the others are the dictionaries' values
/// of the row groups read, in order: a value may come more than once, an entry may be unused.
#[derive(Debug)]
pub(crate) struct Coded {
    values: ArrayOf<StringType>,
    ids: Vec<u32>,
    /// Each entry's [`value_hash`].
    hashes: Vec<u64>,
}

impl Coded {
    /// Each row's entry.
    pub(crate) fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Entries, the null's (0) included.
    pub(crate) fn entries(&self) -> usize {
        self.values.len()
    }

    /// The text of entry `e` (below [`entries`](Coded::entries)).
    #[inline]
    pub(crate) fn entry(&self, e: u32) -> &str {
        self.values.value(e as usize)
    }
}

/// A column's values as one arrow array, so that a value is found without a search.
fn single<T: PolarsDataType>(ca: &ChunkedArray<T>) -> PolarsResult<ArrayOf<T>> {
    ca.rechunk().downcast_iter().next().cloned().ok_or_else(|| polars_err!(NoData: "a column without a chunk"))
}

/// Dates (days since 1970-01-01) as `YYYY-MM-DD` text, as a cast to text writes them, without
/// the general date formatter for the four-digit years every real declaration has.
fn date_texts(days: &Int32Chunked) -> StringChunked {
    let mut text = String::with_capacity(10);
    let mut out = StringChunkedBuilder::new(days.name().clone(), days.len());
    for d in days.iter() {
        match d.and_then(mirador_schema::day::date) {
            None => out.append_null(),
            Some(date) => {
                text.clear();
                let (y, m, day) = (date.year(), date.month(), date.day());
                if (0..=9999).contains(&y) {
                    let y = y as u32;
                    for digit in [y / 1000, y / 100 % 10, y / 10 % 10, y % 10] {
                        text.push(char::from(b'0' + digit as u8));
                    }
                    text.push('-');
                    text.push(char::from(b'0' + (m / 10) as u8));
                    text.push(char::from(b'0' + (m % 10) as u8));
                    text.push('-');
                    text.push(char::from(b'0' + (day / 10) as u8));
                    text.push(char::from(b'0' + (day % 10) as u8));
                } else {
                    use std::fmt::Write as _;
                    let _ = write!(text, "{}", date.format("%Y-%m-%d"));
                }
                out.append_value(text.as_str());
            }
        }
    }
    out.finish()
}

/// Reads a whole CSV or parquet file into text.
pub fn read_table(path: &Path, separator: Option<char>, encoding: Option<&str>) -> Result<RawTable, IngestError> {
    TableReader::open(path, separator, encoding)?.into_table()
}

/// Why a row cannot be used as read: a quarantine reason code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Quarantine reason code: `malformed_row` (wrong number of fields, oversize field) or
    /// `unterminated_quote` (a quoted field that does not close within the record's line bound).
    pub code: &'static str,
    /// What is wrong, without the line number.
    pub message: String,
}

impl Malformed {
    fn new(code: &'static str, message: String) -> Self {
        Malformed { code, message }
    }
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Physical lines of a byte stream, numbered from 1, each without its line break (`\n` or
/// `\r\n`); a line longer than [`MAX_LINE_BYTES`] is an error.
struct Lines {
    inner: BufReader<Box<dyn Read + Send>>,
    /// Lines read so far.
    read: usize,
}

impl Lines {
    fn next(&mut self, path: &Path) -> Result<Option<(usize, Vec<u8>)>, IngestError> {
        let mut line = Vec::new();
        (&mut self.inner)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| IngestError::file(path, format!("cannot be read after line {}: {e}", self.read)))?;
        if line.is_empty() {
            return Ok(None);
        }
        self.read += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if line.len() > MAX_LINE_BYTES {
            return Err(IngestError::file(path, format!("line {} is longer than {MAX_LINE_BYTES} bytes (no line break)", self.read)));
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some((self.read, line)))
    }
}

/// A CSV file cut into records by physical lines, independently of how fields parse: a record is
/// one line, or, when a quoted field holds line breaks, the few lines up to its closing quote.
struct CsvRows {
    lines: Lines,
    /// Lines read ahead (while looking for a closing quote) and not yet consumed.
    ahead: VecDeque<(usize, Vec<u8>)>,
    sep: u8,
    latin1: bool,
    /// Most physical lines one record may span.
    max_record_lines: usize,
    /// Fields a record must have (the header's); 0 while reading the header.
    width: usize,
    record: ByteRecord,
    joined: ByteRecord,
}

/// One record as framed from the file's lines.
struct Framed {
    /// Physical line the record starts on (header = line 1).
    line: usize,
    /// Whether a quoted field opened on this line and did not close within the bound: the
    /// fields are the line's alone, read as if the quote closed at the line's end.
    unterminated: bool,
}

impl CsvRows {
    fn take(&mut self, path: &Path) -> Result<Option<(usize, Vec<u8>)>, IngestError> {
        match self.ahead.pop_front() {
            Some(line) => Ok(Some(line)),
            None => self.lines.next(path),
        }
    }

    /// The `k`-th line after the current one (0: the next), read ahead if needed.
    fn peek(&mut self, path: &Path, k: usize) -> Result<Option<&[u8]>, IngestError> {
        while self.ahead.len() <= k {
            match self.lines.next(path)? {
                Some(line) => self.ahead.push_back(line),
                None => return Ok(None),
            }
        }
        Ok(Some(&self.ahead[k].1))
    }

    /// The next record into `self.record`, skipping blank lines; `None` at the end.
    ///
    /// A line whose quoted field is still open at its end may continue on the next lines, up to
    /// `max_record_lines` in all, and only when the joined record is regular (each quote opens a
    /// field and closes it before a separator or the end), has the header's number of fields,
    /// and none of the lines it would swallow looks like a row of its own (no quote, and as many
    /// separators as a row has). Otherwise the quote
    /// is a stray one: that line alone is the record, marked unterminated, and reading resumes
    /// on the next line. So one stray `"` costs one quarantined row, never the rest of the file.
    fn next_record(&mut self, path: &Path) -> Result<Option<Framed>, IngestError> {
        loop {
            let Some((line, bytes)) = self.take(path)? else { return Ok(None) };
            if bytes.trim_ascii().is_empty() {
                continue;
            }
            let (open, _) = split_record(&bytes, self.sep, &mut self.record);
            if !open {
                return Ok(Some(Framed { line, unterminated: false }));
            }
            let (sep, width) = (self.sep, self.width);
            let mut joined = bytes;
            let mut extra = 0;
            let mut closes = false;
            while extra + 1 < self.max_record_lines {
                let Some(next) = self.peek(path, extra)? else { break };
                // A line without a quote that holds a whole row's fields is a row of its own.
                if width > 1 && !next.contains(&b'"') && next.iter().filter(|b| **b == sep).count() + 1 >= width {
                    break;
                }
                joined.push(b'\n');
                joined.extend_from_slice(next);
                extra += 1;
                let (open, irregular) = split_record(&joined, sep, &mut self.joined);
                if !open {
                    closes = !irregular && (width == 0 || self.joined.len() == width);
                    break;
                }
            }
            if closes {
                self.ahead.drain(..extra);
                std::mem::swap(&mut self.record, &mut self.joined);
            }
            return Ok(Some(Framed { line, unterminated: !closes }));
        }
    }
}

/// Splits one record's bytes into fields. A field that starts with `"` is quoted: `""` is a
/// quote, and the next `"` closes it; text after a closing quote and before the separator is kept
/// (as the `csv` crate reads it) but makes the record irregular. Returns whether a quoted field is
/// still open at the end (then its field holds the rest of the bytes) and whether the record is
/// irregular.
fn split_record(bytes: &[u8], sep: u8, record: &mut ByteRecord) -> (bool, bool) {
    record.clear();
    let mut field = Vec::new();
    let mut irregular = false;
    let mut i = 0;
    let n = bytes.len();
    loop {
        if bytes.get(i) == Some(&b'"') {
            field.clear();
            i += 1;
            let mut closed = false;
            while i < n {
                if bytes[i] == b'"' {
                    if bytes.get(i + 1) == Some(&b'"') {
                        field.push(b'"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    closed = true;
                    break;
                }
                let end = bytes[i..].iter().position(|b| *b == b'"').map_or(n, |p| i + p);
                field.extend_from_slice(&bytes[i..end]);
                i = end;
            }
            if !closed {
                record.push_field(&field);
                return (true, irregular);
            }
            if i < n && bytes[i] != sep {
                irregular = true;
                let end = bytes[i..].iter().position(|b| *b == sep).map_or(n, |p| i + p);
                field.extend_from_slice(&bytes[i..end]);
                i = end;
            }
            record.push_field(&field);
        } else {
            let end = bytes[i..].iter().position(|b| *b == sep).map_or(n, |p| i + p);
            record.push_field(&bytes[i..end]);
            i = end;
        }
        if i >= n {
            return (false, irregular);
        }
        i += 1; // the separator; a trailing one leaves an empty last field
    }
}

/// A UTF-16 encoding recognised from a file's first bytes: its byte-order mark, or, without
/// one, NUL bytes in every other position of mostly ASCII text.
fn sniff_utf16(head: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    if head.starts_with(b"\xFF\xFE") {
        return Some(encoding_rs::UTF_16LE);
    }
    if head.starts_with(b"\xFE\xFF") {
        return Some(encoding_rs::UTF_16BE);
    }
    let pairs = head.len() / 2;
    if pairs < 2 {
        return None;
    }
    let (mut even, mut odd) = (0, 0);
    for pair in head.chunks_exact(2) {
        even += usize::from(pair[0] == 0);
        odd += usize::from(pair[1] == 0);
    }
    // ASCII text in UTF-16: a NUL in (nearly) every pair, always on the same side.
    if odd * 10 >= pairs * 7 && even * 10 < pairs {
        Some(encoding_rs::UTF_16LE)
    } else if even * 10 >= pairs * 7 && odd * 10 < pairs {
        Some(encoding_rs::UTF_16BE)
    } else {
        None
    }
}

/// UTF-16 bytes read as UTF-8 (a byte-order mark is dropped); invalid UTF-16 (a lone surrogate)
/// is a read error, not a replacement character.
struct Utf16ToUtf8<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    output: Vec<u8>,
    at: usize,
    written: usize,
    done: bool,
    /// Invalid UTF-16 met: an error once the text decoded before it is read.
    invalid: bool,
}

impl<R: Read> Utf16ToUtf8<R> {
    fn new(inner: R, encoding: &'static encoding_rs::Encoding) -> Self {
        Utf16ToUtf8 {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            input: vec![0; 1 << 16],
            start: 0,
            end: 0,
            eof: false,
            output: vec![0; 3 << 16],
            at: 0,
            written: 0,
            done: false,
            invalid: false,
        }
    }
}

impl<R: Read> Read for Utf16ToUtf8<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use encoding_rs::DecoderResult;
        loop {
            if self.at < self.written {
                let n = (self.written - self.at).min(buf.len());
                buf[..n].copy_from_slice(&self.output[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            if self.invalid {
                return Err(std::io::Error::other("is not valid UTF-16 (a lone surrogate, or an odd number of bytes)"));
            }
            if self.done {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = self.inner.read(&mut self.input)?;
                self.eof = self.end == 0;
            }
            let (result, read, written) =
                self.decoder.decode_to_utf8_without_replacement(&self.input[self.start..self.end], &mut self.output, self.eof);
            self.start += read;
            self.at = 0;
            self.written = written;
            match result {
                DecoderResult::Malformed(_, _) => self.invalid = true,
                DecoderResult::InputEmpty => self.done = self.eof,
                DecoderResult::OutputFull => {}
            }
        }
    }
}

fn sniff_separator(header: &str) -> u8 {
    let count = |c: char| header.matches(c).count();
    let (comma, semi, tab) = (count(','), count(';'), count('\t'));
    if tab > comma && tab > semi {
        b'\t'
    } else if semi > comma {
        b';'
    } else {
        b','
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use proptest::prelude::*;

    use super::*;

    fn p() -> &'static Path {
        Path::new("t.csv")
    }

    /// Reads CSV bytes through the same streaming reader ingest uses.
    fn read(bytes: &[u8], encoding: Option<&str>) -> Result<RawTable, IngestError> {
        TableReader::from_reader(p(), Box::new(Cursor::new(bytes.to_vec())), None, encoding)?.into_table()
    }

    #[test]
    fn bom_is_stripped() {
        let t = read(b"\xEF\xBB\xBFa,b\n1,2\n", None).unwrap();
        assert_eq!(t.headers, vec!["a", "b"]);
    }

    #[test]
    fn separators_are_sniffed() {
        let t = read(b"a;b;c\n1,5;2;3\n", None).unwrap();
        assert_eq!(t.headers.len(), 3);
        assert_eq!(&t.rows[0].fields[0], "1,5");
        let t = read(b"a\tb\n1\t2\n", None).unwrap();
        assert_eq!(t.rows[0].fields, vec!["1", "2"]);
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = read(b"a,b\n1,2\n\xff,3\n", None).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("t.csv"), "{err}");
    }

    #[test]
    fn windows_1252_is_transcoded() {
        let t = read(b"name\nSoci\xe9t\xe9\n", Some("windows-1252")).unwrap();
        assert_eq!(t.encoding, "windows-1252");
        assert_eq!(&t.rows[0].fields[0], "Société");
    }

    #[test]
    fn short_rows_are_malformed_not_dropped() {
        let t = read(b"a,b\n1,2\n3\n", None).unwrap();
        assert_eq!(t.rows.len(), 2);
        assert!(t.rows[1].malformed.is_some());
        assert_eq!(t.rows[1].line, 3);
    }

    #[test]
    fn quoted_line_breaks_and_blank_lines_keep_each_row_on_its_true_line() {
        let t = read(b"a,b\n\n1,\"x\r\ny\"\n   \n2,3\r\n3,\"\"\"q\"\"\"\n\n", None).unwrap();
        let got: Vec<_> = t.rows.iter().map(|r| (r.line, r.fields.iter().collect::<Vec<_>>(), r.malformed.is_some())).collect();
        assert_eq!(got, [(3, vec!["1", "x\ny"], false), (6, vec!["2", "3"], false), (7, vec!["3", "\"q\""], false)]);
    }

    #[test]
    fn a_stray_quote_costs_its_line_alone() {
        // Opening a field, at the end of a line, before a blank line, on the last line.
        for (text, bad) in [
            (&b"a,b\n1,\"2\n3,4\n5,6\n"[..], 2),
            (&b"a,b\n1,\"\n3,4\n5,6\n"[..], 2),
            (&b"a,b\n\"1,2\n\n3,4\n5,6\n"[..], 2),
            (&b"a,b\n3,4\n5,6\n1,\"2"[..], 4),
        ] {
            let t = read(text, None).unwrap();
            let lines: Vec<_> = t.rows.iter().map(|r| (r.line, r.malformed.as_ref().map(|m| m.code))).collect();
            assert!(lines.contains(&(bad, Some("unterminated_quote"))), "{lines:?}");
            assert_eq!(lines.iter().filter(|l| l.1.is_none()).count(), 2, "{lines:?}");
        }
        // Two stray quotes a few lines apart do not join the lines between them into one row.
        let t = read(b"a,b,c\nx,\",1\ny,2,3\nz,\",1\n", None).unwrap();
        assert_eq!(t.rows.len(), 3);
        // A quoted field that would swallow several fields' worth of a later line is not closed by it.
        let t = read(b"a,b,c\n1,\"x\n2,3\",4\n", None).unwrap();
        assert_eq!(t.rows.len(), 1, "a 2-line record with the header's width");
        let t = read(b"a,b,c\n1,\"x\n2,3,4\n5,6\",7\n", None).unwrap();
        assert_eq!(t.rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 4]);
    }

    proptest! {
        /// Any record the `csv` crate writes (quotes, separators, line breaks in fields) splits back
        /// into its fields.
        #[test]
        fn records_written_by_the_csv_crate_split_back(fields in proptest::collection::vec("[a-c,;\"\n\r ]{0,6}", 1..6), sep in prop_oneof![Just(b','), Just(b';')]) {
            let mut w = csv::WriterBuilder::new().delimiter(sep).terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
            w.write_record(&fields).unwrap();
            let mut bytes = w.into_inner().unwrap();
            bytes.pop();
            let mut record = ByteRecord::new();
            let (open, irregular) = split_record(&bytes, sep, &mut record);
            prop_assert!(!open && !irregular);
            let got: Vec<&[u8]> = record.iter().collect();
            let want: Vec<&[u8]> = fields.iter().map(|f| f.as_bytes()).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn utf16_is_sniffed_by_bom_or_nul_pattern_only() {
        assert_eq!(sniff_utf16(b"\xFF\xFEa\0"), Some(encoding_rs::UTF_16LE));
        assert_eq!(sniff_utf16(b"\xFE\xFF\0a"), Some(encoding_rs::UTF_16BE));
        assert_eq!(sniff_utf16(b"a\0,\0b\0\n\0"), Some(encoding_rs::UTF_16LE));
        assert_eq!(sniff_utf16(b"\0a\0,\0b\0\n"), Some(encoding_rs::UTF_16BE));
        assert_eq!(sniff_utf16(b"a,b\n1,2\n"), None);
        assert_eq!(sniff_utf16(b"a,b\0\n1,2\n"), None, "one NUL is not UTF-16");
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(read(b"", None).is_err());
    }

    #[test]
    fn dates_read_as_a_cast_to_text_writes_them() {
        let days = Int32Chunked::new(
            "d".into(),
            [Some(0), Some(19_723), Some(-1), Some(-719_162), Some(-719_893), Some(2_932_896), Some(2_932_897), None, Some(-365_000)],
        );
        let cast = days.clone().into_column().cast(&DataType::Date).unwrap().cast(&DataType::String).unwrap();
        let cast: Vec<Option<String>> = cast.str().unwrap().iter().map(|v| v.map(str::to_owned)).collect();
        let fast: Vec<Option<String>> = date_texts(&days).iter().map(|v| v.map(str::to_owned)).collect();
        assert_eq!(fast, cast);
        assert_eq!(fast[1].as_deref(), Some("2024-01-01"));
    }

    #[test]
    fn parquet_rows_read_in_bulk_match_rows_read_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let n = 1_000;
        let mut df = df!(
            "id" => (0..n).map(|i| format!("D{i}")).collect::<Vec<_>>(),
            "mass" => (0..n).map(|i| if i % 7 == 0 { None } else { Some(f64::from(i) * 0.25) }).collect::<Vec<_>>(),
            "day" => (0..n).map(|i| 19_000 + i).collect::<Vec<i32>>(),
        )
        .unwrap();
        df.with_column(df.column("day").unwrap().cast(&DataType::Date).unwrap()).unwrap();
        mirador_io::write_parquet(&mut df, &path).unwrap();
        let mut one = TableReader::open(&path, None, None).unwrap();
        let mut bulk = TableReader::open(&path, None, None).unwrap();
        // Part of a row, then bulk reads of uneven sizes across the end.
        let mut got = vec![bulk.next_row().unwrap().unwrap()];
        for size in [3, 500, 1_000] {
            got.extend(bulk.next_rows(size).unwrap());
        }
        assert!(bulk.next_rows(10).unwrap().is_empty());
        assert_eq!(got.len(), n as usize);
        for row in &got {
            let expected = one.next_row().unwrap().unwrap();
            assert_eq!((row.line, &row.fields, &row.malformed), (expected.line, &expected.fields, &expected.malformed));
        }
        assert!(one.next_row().unwrap().is_none());
        assert_eq!(&got[7].fields[1], "", "a null is an empty field");
        assert_eq!(&got[1].fields[2], "2022-01-09");
    }

    #[test]
    fn parquet_blocks_hold_typed_values_that_read_as_the_rows_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let floats = [0.1, 1e20, 1e-7, f64::NAN, f64::INFINITY, -0.0, 372_254.4, 3.0, f64::MAX];
        // More than one text chunk: the first row read alone leaves the rest of its chunk.
        let n = PARQUET_CHUNK + 2_000;
        let mut df = df!(
            "id" => (0..n).map(|i| format!("D{i}")).collect::<Vec<_>>(),
            "x" => (0..n).map(|i| if i % 11 == 0 { None } else { Some(floats[i % floats.len()]) }).collect::<Vec<_>>(),
            "k" => (0..n).map(|i| i as i8 - 100).collect::<Vec<_>>(),
            "big" => (0..n).map(|i| u64::MAX - i as u64).collect::<Vec<_>>(),
            "f32" => (0..n).map(|i| i as f32 * 0.1).collect::<Vec<_>>(),
            "flag" => (0..n).map(|i| i % 3 == 0).collect::<Vec<_>>(),
            "day" => (0..n).map(|i| 19_000 + i as i32).collect::<Vec<i32>>(),
        )
        .unwrap();
        df.with_column(df.column("day").unwrap().cast(&DataType::Date).unwrap()).unwrap();
        mirador_io::write_parquet(&mut df, &path).unwrap();
        let mut rows = TableReader::open(&path, None, None).unwrap();
        let mut blocks = TableReader::open(&path, None, None).unwrap();
        // A row read alone first: the rest of its chunk comes as text rows, then typed blocks.
        let mut got = Vec::new();
        let first = blocks.next_row().unwrap().unwrap();
        got.push((first.line, first.fields.iter().map(str::to_owned).collect::<Vec<_>>()));
        let mut typed = 0;
        for size in [7, 50_000, 15_000, 1_000].into_iter().cycle() {
            let block = blocks.next_block(size).unwrap();
            if block.is_empty() {
                break;
            }
            for at in 0..block.len() {
                let row = block.row(at);
                assert!(row.malformed().is_none());
                typed += usize::from(row.fields().any(|v| !matches!(v, Raw::Text(_))));
                got.push((row.line(), row.fields().map(|v| v.text().into_owned()).collect()));
            }
        }
        assert!(blocks.next_block(10).unwrap().is_empty());
        assert!(typed > 0, "parquet blocks keep their types");
        assert_eq!(got.len(), n);
        for (line, fields) in got {
            let expected = rows.next_row().unwrap().unwrap();
            assert_eq!((line, fields), (expected.line, expected.fields.iter().map(str::to_owned).collect()));
        }
    }

    /// A text column to write: its name, values, and whether each row group (in turn) holds it
    /// as a dictionary.
    type TextColumn<'a> = (&'a str, Vec<Option<String>>, Vec<bool>);

    /// Writes text columns `(name, values, encodings per row group)` in row groups of `group`
    /// rows: a row group's column dictionary-encoded (its dictionary its distinct values
    /// last-seen first, the first given twice, plus an unused one) or plain.
    fn write_text_groups(path: &Path, columns: &[TextColumn<'_>], group: usize) {
        use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
        use polars_arrow::datatypes::{ArrowSchema, Field, IntegerType};
        use polars_arrow::record_batch::RecordBatchT;
        use polars_parquet::write::{CompressionOptions, Encoding, FileWriter, RowGroupIterator, StatisticsOptions, Version, WriteOptions};
        let rows = columns[0].1.len();
        let dict_type = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(ArrowDataType::Utf8View), false);
        let options = WriteOptions {
            statistics: StatisticsOptions::empty(),
            version: Version::V2,
            compression: CompressionOptions::Zstd(None),
            data_page_size: Some(64),
        };
        let mut writer = None;
        for (k, start) in (0..rows).step_by(group).enumerate() {
            let end = rows.min(start + group);
            let coded = |c: &TextColumn<'_>| c.2[k % c.2.len()];
            let schema: ArrowSchema = columns
                .iter()
                .map(|c| {
                    let f = Field::new(c.0.into(), if coded(c) { dict_type.clone() } else { ArrowDataType::Utf8View }, true);
                    (f.name.clone(), f)
                })
                .collect();
            let schema = Arc::new(schema);
            let arrays: Vec<Box<dyn Array>> = columns
                .iter()
                .map(|c| {
                    let values = &c.1[start..end];
                    if !coded(c) {
                        return values
                            .iter()
                            .map(|v| v.as_deref())
                            .collect::<polars_arrow::array::MutableBinaryViewArray<str>>()
                            .freeze()
                            .boxed();
                    }
                    let mut entries: Vec<&str> = Vec::new();
                    for v in values.iter().rev().flatten() {
                        if !entries.contains(&v.as_str()) {
                            entries.push(v);
                        }
                    }
                    entries.push(entries.first().copied().unwrap_or(""));
                    entries.push("unused");
                    let twin = entries.len() as u32 - 2;
                    let keys: Vec<Option<u32>> = values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let at = entries.iter().position(|e| Some(*e) == v.as_deref())? as u32;
                            Some(if at == 0 && i % 2 == 1 { twin } else { at })
                        })
                        .collect();
                    let values = Utf8ViewArray::from_slice_values(&entries).boxed();
                    Box::new(DictionaryArray::<u32>::try_new(dict_type.clone(), PrimitiveArray::from(keys), values).unwrap())
                })
                .collect();
            let encodings = columns.iter().map(|c| vec![if coded(c) { Encoding::RleDictionary } else { Encoding::Plain }]).collect();
            let batch = RecordBatchT::try_new(end - start, schema.clone(), arrays).unwrap();
            let w = writer.get_or_insert_with(|| FileWriter::try_new(File::create(path).unwrap(), (*schema).clone(), options).unwrap());
            for g in RowGroupIterator::try_new(std::iter::once(Ok(batch)), &schema, options, encodings).unwrap() {
                w.write((end - start) as u64, g.unwrap()).unwrap();
            }
        }
        writer.unwrap().end(Some(Vec::new())).unwrap();
    }

    #[test]
    fn dictionary_encoded_text_reads_as_its_plain_text_does() {
        let dir = tempfile::tempdir().unwrap();
        let n = 250;
        let long = "L".repeat(MAX_FIELD_BYTES + 1);
        let text = |i: usize| match i % 11 {
            0 => None,
            3 => Some(String::new()),
            7 if i == 40 => Some(long.clone()),
            k => Some(format!("v{}", (k * 7 + i / 60) % 9)),
        };
        let values: Vec<Option<String>> = (0..n).map(text).collect();
        let other: Vec<Option<String>> = (0..n).map(|i| Some(format!("o{}", i % 4))).collect();
        let columns = |coded: Vec<bool>| vec![("a", values.clone(), coded.clone()), ("b", other.clone(), coded)];
        let plain = dir.path().join("plain.parquet");
        write_text_groups(&plain, &columns(vec![false]), 60);
        // Every row group a dictionary; or some of them plain (a block reaching one of those
        // reads the column as text).
        for (name, coded) in [("dict.parquet", vec![true]), ("mixed.parquet", vec![false, true, true, true])] {
            let path = dir.path().join(name);
            write_text_groups(&path, &columns(coded), 60);
            let mut want = TableReader::open(&plain, None, None).unwrap();
            let mut got = TableReader::open(&path, None, None).unwrap();
            let mut seen_coded = false;
            // Blocks within a row group, across several, and to the end.
            for size in [1, 7, 60, 113, 13, 200] {
                let (a, b) = (want.next_block(size).unwrap(), got.next_block(size).unwrap());
                assert_eq!(a.len(), b.len());
                if let BlockRows::Columns(columns) = &b.rows {
                    seen_coded |= columns.iter().any(|c| matches!(c, RawColumn::Coded(_)));
                }
                for at in 0..a.len() {
                    let (ra, rb) = (a.row(at), b.row(at));
                    assert_eq!(ra.line(), rb.line());
                    assert_eq!(ra.fields().collect::<Vec<_>>(), rb.fields().collect::<Vec<_>>(), "{name} row {}", ra.line());
                    assert_eq!(ra.malformed(), rb.malformed());
                }
                assert_eq!(a.content_hashes(0..a.len()), b.content_hashes(0..b.len()), "{name}");
            }
            assert!(got.next_block(10).unwrap().is_empty());
            assert!(seen_coded, "{name}: blocks within dictionary-encoded row groups are read as dictionaries");
        }
        // The long value makes its row malformed, read either way.
        let block = TableReader::open(&dir.path().join("dict.parquet"), None, None).unwrap().next_block(n).unwrap();
        assert_eq!((0..n).filter(|&at| block.row(at).malformed().is_some()).collect::<Vec<_>>(), [40]);
    }

    #[test]
    fn the_rows_hint_is_the_footers_claim_bounded_by_the_files_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let n = 5_000;
        let mut df =
            df!("id" => (0..n).map(|i| format!("D{i:06}")).collect::<Vec<_>>(), "x" => (0..n).map(f64::from).collect::<Vec<_>>()).unwrap();
        mirador_io::write_parquet(&mut df, &path).unwrap();
        let bytes = std::fs::metadata(&path).unwrap().len() as usize;
        let hint = TableReader::open(&path, None, None).unwrap().rows_hint();
        assert_eq!(hint, (n as usize).min(bytes / 8));
        assert!(hint > 0);
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "a,b\n1,2\n").unwrap();
        assert_eq!(TableReader::open(&csv, None, None).unwrap().rows_hint(), 0, "unknown before reading");
    }

    #[test]
    fn a_parquet_row_with_an_overlong_text_field_is_malformed_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let long = "x".repeat(MAX_FIELD_BYTES + 1);
        let edge = "y".repeat(MAX_FIELD_BYTES);
        let n = 20;
        let mut df = df!(
            "a" => (0..n).map(|i| match i { 3 => Some(long.clone()), 4 => Some(edge.clone()), 5 => None, _ => Some(format!("A{i}")) }).collect::<Vec<_>>(),
            "b" => (0..n).map(|i| if i == 17 { long.clone() } else { format!("B{i}") }).collect::<Vec<_>>(),
            "x" => (0..n).map(|i| i as f64).collect::<Vec<_>>(),
        )
        .unwrap();
        mirador_io::write_parquet(&mut df, &path).unwrap();
        let block = TableReader::open(&path, None, None).unwrap().next_block(n).unwrap();
        let malformed: Vec<usize> = (0..block.len()).filter(|&at| block.row(at).malformed().is_some()).collect();
        assert_eq!(malformed, [3, 17]);
        let why = block.row(3).malformed().unwrap();
        assert_eq!(why.code, "malformed_row");
        assert!(why.to_string().contains("longer than"), "{why}");
    }

    #[test]
    fn rows_hash_alike_exactly_when_their_fields_are_alike_in_kind_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let parquet = dir.path().join("t.parquet");
        let mut df = df!(
            "id" => ["a", "a", "a", "b", "a", "a"],
            "x" => [Some(1.5), Some(1.5), Some(2.5), Some(1.5), None, None],
            "day" => [19_000, 19_000, 19_000, 19_000, 19_000, 19_001],
        )
        .unwrap();
        df.with_column(df.column("day").unwrap().cast(&DataType::Date).unwrap()).unwrap();
        mirador_io::write_parquet(&mut df, &parquet).unwrap();
        let block = TableReader::open(&parquet, None, None).unwrap().next_block(10).unwrap();
        let whole = block.content_hashes(0..block.len());
        // Hashed in pieces or whole, a row hashes alike.
        let pieces: Vec<u64> = [0..2, 2..5, 5..6].into_iter().flat_map(|r| block.content_hashes(r)).collect();
        assert_eq!(whole, pieces);
        assert_eq!(whole[0], whole[1]);
        for (i, j) in [(0, 2), (0, 3), (0, 4), (4, 5)] {
            assert_ne!(whole[i], whole[j], "rows {i} and {j}");
        }
        // A CSV row of the same text hashes as text: unlike a typed number or date, alike
        // between themselves; a null reads (and hashes) as empty text.
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "id,x,day\na,1.5,2022-01-08\na,1.5,2022-01-08\na,,2022-01-08\n").unwrap();
        let text = TableReader::open(&csv, None, None).unwrap().next_block(10).unwrap();
        let text_hashes = text.content_hashes(0..text.len());
        assert_eq!(text_hashes[0], text_hashes[1]);
        assert_ne!(text_hashes[0], whole[0]);
        assert_ne!(text_hashes[2], whole[4], "the day is typed in parquet, text in CSV");
        let all_text = df!("id" => ["a"], "x" => [""], "day" => ["2022-01-08"]).unwrap();
        let p2 = dir.path().join("text.parquet");
        mirador_io::write_parquet(&mut all_text.clone(), &p2).unwrap();
        let typed_text = TableReader::open(&p2, None, None).unwrap().next_block(10).unwrap();
        assert_eq!(typed_text.content_hashes(0..1)[0], text_hashes[2], "the same text fields hash alike from CSV and parquet");
    }
}
