//! Reading raw tables: CSV in any of the dialects customs systems export (BOM, `,`/`;`/tab,
//! UTF-8 or Windows-1252/Latin-1) and parquet, streamed a row or a block of rows at a time (memory
//! does not grow with the file). Values are read as text, except a parquet file's numbers and
//! dates in blocks ([`Raw`]), which keep the file's type; either way the validation rules do the
//! typing, so a bad value becomes a quarantine row, never a silent null.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
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
/// Longest header line read ahead to sniff the separator.
const MAX_HEADER_BYTES: u64 = 1 << 20;
/// Longest stretch of a file without a line break: beyond it the file is refused (a CSV record is
/// buffered whole, so this bounds the memory one record can take).
pub const MAX_LINE_BYTES: usize = 64 << 20;
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
    /// Why the row cannot be used as read (wrong field count, oversize field).
    pub malformed: Option<String>,
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
}

enum Rows {
    Csv {
        reader: csv::Reader<Box<dyn Read + Send>>,
        latin1: bool,
        record: ByteRecord,
    },
    Parquet {
        path: PathBuf,
        metadata: Option<Arc<polars::io::parquet::read::FileMetadata>>,
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
        let latin1 = match encoding.unwrap_or("utf-8").to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => false,
            "windows-1252" | "cp1252" | "latin-1" | "latin1" | "iso-8859-1" => true,
            other => return Err(IngestError::file(path, format!("unsupported encoding `{other}` (use utf-8, windows-1252 or latin-1)"))),
        };
        let mut buffered = BufReader::with_capacity(1 << 16, source);
        // The header line decides the separator; it is read ahead and put back in front.
        let mut first = Vec::new();
        (&mut buffered)
            .take(MAX_HEADER_BYTES)
            .read_until(b'\n', &mut first)
            .map_err(|e| IngestError::file(path, format!("cannot read: {e}")))?;
        if let Some(rest) = first.strip_prefix(b"\xEF\xBB\xBF") {
            first = rest.to_vec();
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
        let chained: Box<dyn Read + Send> = Box::new(LineLimit { inner: Cursor::new(first).chain(buffered), since_break: 0 });
        let mut reader = csv::ReaderBuilder::new().delimiter(sep).has_headers(false).flexible(true).from_reader(chained);
        let mut record = ByteRecord::new();
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Err(IngestError::file(path, "has no header line".into())),
            Err(e) => return Err(IngestError::file(path, format!("header cannot be read: {e}"))),
        }
        if record.len() > MAX_COLUMNS {
            return Err(IngestError::file(path, format!("header has {} columns; at most {MAX_COLUMNS} are accepted", record.len())));
        }
        let headers =
            record.iter().map(|h| decode_field(path, h, latin1, 1).map(|h| h.trim().to_owned())).collect::<Result<Vec<_>, _>>()?;
        Ok(TableReader {
            path: path.to_owned(),
            headers,
            encoding: if latin1 { "windows-1252" } else { "utf-8" },
            rows: Rows::Csv { reader, latin1, record },
            read: 0,
            max_rows: MAX_ROWS,
        })
    }

    fn open_parquet(path: &Path, file: File) -> Result<Self, IngestError> {
        let err = |e: PolarsError| IngestError::file(path, format!("is not a readable parquet file: {e}"));
        let mut reader = ParquetReader::new(file);
        let metadata = reader.get_metadata().map_err(err)?.clone();
        let total = metadata.num_rows;
        let schema = reader.schema().map_err(err)?;
        if schema.len() > MAX_COLUMNS {
            return Err(IngestError::file(path, format!("has {} columns; at most {MAX_COLUMNS} are accepted", schema.len())));
        }
        let headers = schema.iter_names().map(ToString::to_string).collect();
        TableReader {
            path: path.to_owned(),
            headers,
            encoding: "parquet",
            rows: Rows::Parquet { path: path.to_owned(), metadata: Some(metadata), total, next: 0, chunk: Vec::new(), at: 0 },
            read: 0,
            max_rows: MAX_ROWS,
        }
        .with_max_rows(MAX_ROWS)
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
            Rows::Csv { reader, latin1, record } => loop {
                let line = self.read + 2;
                match reader.read_byte_record(record) {
                    Ok(false) => return Ok(None),
                    Ok(true) => {
                        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim_ascii().is_empty()) {
                            continue; // blank line
                        }
                        let fields = if *latin1 {
                            record.iter().map(|f| encoding_rs::WINDOWS_1252.decode(f).0).collect::<StringRecord>()
                        } else {
                            StringRecord::from_byte_record(std::mem::take(record)).map_err(|e| {
                                IngestError::file(
                                    &self.path,
                                    format!(
                                        "is not valid UTF-8 (line {line}, field {}); if it is Windows-1252 or Latin-1, set `encoding` for this source",
                                        e.utf8_error().field() + 1
                                    ),
                                )
                            })?
                        };
                        break RawRow { line, malformed: shape(&fields, width), fields };
                    }
                    Err(e) if e.is_io_error() => {
                        return Err(IngestError::file(&self.path, format!("cannot be read after line {}: {e}", line - 1)));
                    }
                    Err(e) => break RawRow { line, fields: StringRecord::new(), malformed: Some(format!("cannot be parsed: {e}")) },
                }
            },
            Rows::Parquet { path, metadata, total, next, chunk, at } => {
                if chunk.first().is_none_or(|c| *at >= c.len()) {
                    if *next >= *total {
                        return Ok(None);
                    }
                    let len = PARQUET_CHUNK.min(*total - *next);
                    *chunk = read_parquet_chunk(path, metadata.clone(), *next, len)?;
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
                Rows::Csv { .. } => false,
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
        if let Rows::Parquet { path, metadata, total, next, .. } = &mut self.rows
            && rows.len() < n
            && *next < *total
        {
            let len = (n - rows.len()).min(*total - *next);
            let columns = read_parquet_chunk(path, metadata.clone(), *next, len)?;
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
            Rows::Parquet { path, metadata, total, next, chunk, at } if chunk.first().is_none_or(|c| *at >= c.len()) => {
                let len = n.min(*total - *next);
                if len == 0 {
                    return Ok(RawBlock { first_line, len: 0, rows: BlockRows::Records(Vec::new()) });
                }
                let columns = read_parquet_block(path, metadata.clone(), *next, len)?;
                let got = columns.first().map_or(0, RawColumn::len);
                if got != len {
                    return Err(IngestError::file(path, format!("claims {total} rows but holds only {}", *next + got.min(len))));
                }
                *next += len;
                (columns, len)
            }
            _ => {
                let rows = self.next_rows(n)?;
                return Ok(RawBlock { first_line, len: rows.len(), rows: BlockRows::Records(rows) });
            }
        };
        self.count(len)?;
        Ok(RawBlock { first_line, len, rows: BlockRows::Columns(columns) })
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
enum RawColumn {
    Text(ArrayOf<StringType>),
    Number(ArrayOf<Float64Type>),
    Integer(ArrayOf<Int64Type>),
    Day(ArrayOf<Int32Type>),
}

/// The arrow array of one chunk of a column of type `T`: a value is read from it directly.
type ArrayOf<T> = <T as PolarsDataType>::Array;

/// The value at `at` of a numeric array (in bounds), unless null.
fn value_at<T: PolarsNumericType>(array: &ArrayOf<T>, at: usize) -> Option<T::Native> {
    array.validity().is_none_or(|valid| valid.get_bit(at)).then(|| array.value(at))
}

impl RawColumn {
    fn len(&self) -> usize {
        match self {
            RawColumn::Text(a) => a.len(),
            RawColumn::Number(a) => a.len(),
            RawColumn::Integer(a) => a.len(),
            RawColumn::Day(a) => a.len(),
        }
    }

    /// The value at `at` (in bounds); a null reads as empty text, as in a CSV file.
    fn get(&self, at: usize) -> Raw<'_> {
        let typed = match self {
            RawColumn::Text(a) => a.get(at).map(Raw::Text),
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
    pub fn text(self) -> std::borrow::Cow<'b, str> {
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
    pub fn malformed(self) -> Option<std::borrow::Cow<'b, str>> {
        match &self.block.rows {
            BlockRows::Records(rows) => rows[self.at].malformed.as_deref().map(std::borrow::Cow::Borrowed),
            BlockRows::Columns(columns) => columns
                .iter()
                .any(|c| matches!(c, RawColumn::Text(a) if a.get(self.at).is_some_and(|v| v.len() > MAX_FIELD_BYTES)))
                .then(|| format!("has a field longer than {MAX_FIELD_BYTES} bytes").into()),
        }
    }
}

/// Fails the read when more than [`MAX_LINE_BYTES`] bytes pass without a line break.
struct LineLimit<R> {
    inner: R,
    since_break: usize,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = &buf[..n];
        self.since_break = match got.iter().rposition(|b| *b == b'\n') {
            Some(i) => n - i - 1,
            None => self.since_break + n,
        };
        if self.since_break > MAX_LINE_BYTES {
            return Err(std::io::Error::other(format!("a line is longer than {MAX_LINE_BYTES} bytes (no line break)")));
        }
        Ok(n)
    }
}

fn shape(fields: &StringRecord, width: usize) -> Option<String> {
    if fields.len() != width {
        Some(format!("has {} fields, the header has {width}", fields.len()))
    } else if fields.iter().any(|f| f.len() > MAX_FIELD_BYTES) {
        Some(format!("has a field longer than {MAX_FIELD_BYTES} bytes"))
    } else {
        None
    }
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

/// Rows `offset..offset + len` of a parquet file, as the file types them.
fn read_parquet_slice(
    path: &Path,
    metadata: Option<Arc<polars::io::parquet::read::FileMetadata>>,
    offset: usize,
    len: usize,
) -> Result<DataFrame, IngestError> {
    let file = File::open(path).map_err(|e| IngestError::file(path, format!("cannot read: {e}")))?;
    let mut reader = ParquetReader::new(file).with_slice(Some((offset, len)));
    if let Some(m) = metadata {
        reader.set_metadata(m);
    }
    reader.finish().map_err(|e| IngestError::file(path, format!("is not a readable parquet file: {e}")))
}

/// One slice of a parquet file, every column cast to text.
fn read_parquet_chunk(
    path: &Path,
    metadata: Option<Arc<polars::io::parquet::read::FileMetadata>>,
    offset: usize,
    len: usize,
) -> Result<Vec<StringChunked>, IngestError> {
    let err = |e: PolarsError| IngestError::file(path, format!("is not a readable parquet file: {e}"));
    read_parquet_slice(path, metadata, offset, len)?
        .columns()
        .par_iter()
        .map(|c| {
            if c.dtype() == &DataType::Date {
                return Ok(date_texts(c.date().map_err(err)?.physical()));
            }
            let s = c.cast(&DataType::String).map_err(|e| IngestError::file(path, format!("column `{}`: {e}", c.name())))?;
            Ok(s.str().map_err(err)?.rechunk().into_owned())
        })
        .collect()
}

/// One slice of a parquet file, column by column (see [`RawColumn`]).
fn read_parquet_block(
    path: &Path,
    metadata: Option<Arc<polars::io::parquet::read::FileMetadata>>,
    offset: usize,
    len: usize,
) -> Result<Vec<RawColumn>, IngestError> {
    let err = |e: PolarsError| IngestError::file(path, format!("is not a readable parquet file: {e}"));
    read_parquet_slice(path, metadata, offset, len)?
        .columns()
        .par_iter()
        .map(|c| {
            let cast = |to: &DataType| c.cast(to).map_err(|e| IngestError::file(path, format!("column `{}`: {e}", c.name())));
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
        .collect()
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
}
