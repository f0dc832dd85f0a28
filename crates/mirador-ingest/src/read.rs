//! Reading raw tables: CSV in any of the dialects customs systems export (BOM, `,`/`;`/tab,
//! UTF-8 or Windows-1252/Latin-1) and parquet. Every value is read as text; typing happens in
//! the validation rules, so a bad value becomes a quarantine row, never a silent null.

use std::fs;
use std::path::Path;

use polars::prelude::*;

use crate::error::IngestError;

/// Largest file ingest accepts in one piece (guards against unbounded memory on hostile input).
pub const MAX_FILE_BYTES: u64 = 4 << 30;
/// Most columns a header may have.
pub const MAX_COLUMNS: usize = 1024;
/// Longest field accepted; longer ones are a quarantine reason.
pub const MAX_FIELD_BYTES: usize = 4096;

/// A table of raw text values.
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
    /// Fields; `None` for a value that was not there (short row) — the row is then malformed.
    pub fields: Vec<String>,
    /// Why the row cannot be used as read (wrong field count, oversize field).
    pub malformed: Option<String>,
}

impl RawTable {
    /// Index of a header, by exact name.
    pub fn column(&self, header: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == header)
    }
}

/// Reads a CSV or parquet file into text.
pub fn read_table(path: &Path, separator: Option<char>, encoding: Option<&str>) -> Result<RawTable, IngestError> {
    let meta = fs::metadata(path).map_err(|e| IngestError::file(path, format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(IngestError::file(
            path,
            format!("is {} bytes, larger than the {MAX_FILE_BYTES} bytes ingest accepts in one file", meta.len()),
        ));
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext == "parquet" {
        return read_parquet_as_text(path);
    }
    let bytes = fs::read(path).map_err(|e| IngestError::file(path, format!("cannot read: {e}")))?;
    let (text, encoding) = decode(path, &bytes, encoding)?;
    read_csv_text(path, &text, separator, encoding)
}

/// Decodes bytes to text: strips a UTF-8 BOM, checks UTF-8 strictly (reporting the line of the
/// first bad byte), or transcodes a declared single-byte encoding.
pub fn decode(path: &Path, bytes: &[u8], encoding: Option<&str>) -> Result<(String, &'static str), IngestError> {
    let enc = encoding.unwrap_or("utf-8").to_ascii_lowercase();
    match enc.as_str() {
        "utf-8" | "utf8" => {
            let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            match std::str::from_utf8(body) {
                Ok(s) => Ok((s.to_owned(), "utf-8")),
                Err(e) => {
                    let offset = e.valid_up_to();
                    let line = body[..offset].iter().filter(|b| **b == b'\n').count() + 1;
                    Err(IngestError::file(
                        path,
                        format!(
                            "is not valid UTF-8 (line {line}, byte {offset}); if it is Windows-1252 or Latin-1, set `encoding` for this source"
                        ),
                    ))
                }
            }
        }
        "windows-1252" | "cp1252" | "latin-1" | "latin1" | "iso-8859-1" => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            Ok((text.into_owned(), "windows-1252"))
        }
        other => Err(IngestError::file(path, format!("unsupported encoding `{other}` (use utf-8, windows-1252 or latin-1)"))),
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

/// Parses CSV text into a raw table. A row with the wrong number of fields is kept as malformed
/// (it will be quarantined); a missing or empty header is an error.
pub fn read_csv_text(path: &Path, text: &str, separator: Option<char>, encoding: &'static str) -> Result<RawTable, IngestError> {
    let first_line = text.lines().next().unwrap_or("");
    if first_line.trim().is_empty() {
        return Err(IngestError::file(path, "has no header line".into()));
    }
    let sep = match separator {
        Some(c) if c.is_ascii() => c as u8,
        Some(c) => return Err(IngestError::file(path, format!("separator `{c}` is not an ASCII character"))),
        None => sniff_separator(first_line),
    };
    let mut reader = csv::ReaderBuilder::new().delimiter(sep).has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = reader.records();
    let headers: Vec<String> = match records.next() {
        Some(Ok(r)) => r.iter().map(|h| h.trim().to_owned()).collect(),
        Some(Err(e)) => return Err(IngestError::file(path, format!("header cannot be read: {e}"))),
        None => return Err(IngestError::file(path, "has no header line".into())),
    };
    if headers.len() > MAX_COLUMNS {
        return Err(IngestError::file(path, format!("header has {} columns; at most {MAX_COLUMNS} are accepted", headers.len())));
    }
    let mut rows = Vec::new();
    for (i, record) in records.enumerate() {
        let line = i + 2;
        match record {
            Ok(r) => {
                if r.len() == 1 && r.get(0).is_some_and(|f| f.trim().is_empty()) {
                    continue; // blank line
                }
                let fields: Vec<String> = r.iter().map(str::to_owned).collect();
                let malformed = if fields.len() != headers.len() {
                    Some(format!("has {} fields, the header has {}", fields.len(), headers.len()))
                } else if fields.iter().any(|f| f.len() > MAX_FIELD_BYTES) {
                    Some(format!("has a field longer than {MAX_FIELD_BYTES} bytes"))
                } else {
                    None
                };
                rows.push(RawRow { line, fields, malformed });
            }
            Err(e) => rows.push(RawRow { line, fields: Vec::new(), malformed: Some(format!("cannot be parsed: {e}")) }),
        }
    }
    Ok(RawTable { headers, rows, encoding })
}

fn read_parquet_as_text(path: &Path) -> Result<RawTable, IngestError> {
    let df = mirador_io::read_parquet(path).map_err(|e| IngestError::file(path, e.to_string()))?;
    let headers: Vec<String> = df.get_column_names().iter().map(ToString::to_string).collect();
    let mut columns = Vec::with_capacity(headers.len());
    for c in df.columns() {
        let s = c.cast(&DataType::String).map_err(|e| IngestError::file(path, format!("column `{}`: {e}", c.name())))?;
        let ca = s.str().map_err(|e| IngestError::file(path, e.to_string()))?.clone();
        columns.push(ca.iter().map(|v| v.unwrap_or("").to_owned()).collect::<Vec<_>>());
    }
    let rows =
        (0..df.height()).map(|i| RawRow { line: i + 2, fields: columns.iter().map(|c| c[i].clone()).collect(), malformed: None }).collect();
    Ok(RawTable { headers, rows, encoding: "parquet" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("t.csv")
    }

    #[test]
    fn bom_is_stripped() {
        let (text, _) = decode(p(), b"\xEF\xBB\xBFa,b\n1,2\n", None).unwrap();
        let t = read_csv_text(p(), &text, None, "utf-8").unwrap();
        assert_eq!(t.headers, vec!["a", "b"]);
    }

    #[test]
    fn separators_are_sniffed() {
        let t = read_csv_text(p(), "a;b;c\n1,5;2;3\n", None, "utf-8").unwrap();
        assert_eq!(t.headers.len(), 3);
        assert_eq!(t.rows[0].fields[0], "1,5");
        let t = read_csv_text(p(), "a\tb\n1\t2\n", None, "utf-8").unwrap();
        assert_eq!(t.rows[0].fields, vec!["1", "2"]);
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let err = decode(p(), b"a,b\n1,2\n\xff,3\n", None).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("t.csv"), "{err}");
    }

    #[test]
    fn windows_1252_is_transcoded() {
        let (text, enc) = decode(p(), b"name\nSoci\xe9t\xe9\n", Some("windows-1252")).unwrap();
        assert_eq!(enc, "windows-1252");
        assert!(text.contains("Société"));
    }

    #[test]
    fn short_rows_are_malformed_not_dropped() {
        let t = read_csv_text(p(), "a,b\n1,2\n3\n", None, "utf-8").unwrap();
        assert_eq!(t.rows.len(), 2);
        assert!(t.rows[1].malformed.is_some());
        assert_eq!(t.rows[1].line, 3);
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(read_csv_text(p(), "", None, "utf-8").is_err());
    }
}
