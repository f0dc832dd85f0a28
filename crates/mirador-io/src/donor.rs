//! Pages taken as they are from a file already written.
//!
//! A run's per-declaration outputs (k-means scores, mirror exposure, fraud scores) carry the
//! declarations' key columns, row for row. [`crate::write_parquet`] writes the same values in the
//! same bytes whatever file they are in (row groups at fixed offsets, one encoder), so where an
//! output's column holds, in a row group, the values the declarations' column holds in theirs,
//! its chunk is the declarations' chunk: it is copied from the declarations' file, page for page,
//! instead of being encoded and compressed again. The values are compared before a chunk is
//! taken, never assumed.

use std::collections::HashMap;
use std::fs::File;
use std::io::Cursor;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use polars::prelude::*;
use polars_parquet::parquet::metadata::{ColumnChunkMetadata, ColumnDescriptor, FileMetadata};
use polars_parquet::parquet::read::PageReader;
use polars_parquet::write::CompressedPage;

use crate::{IoError, Result, fs_err};

/// A parquet file that [`crate::write_parquet`] wrote from `frame` (the declarations of the
/// run), whose pages a file of the same rows may take ([`crate::write_parquet_from`]).
#[derive(Clone, Copy)]
pub struct Donor<'a> {
    /// The file.
    pub file: &'a Path,
    /// The frame it was written from.
    pub frame: &'a DataFrame,
}

/// A donor's file, opened: its row groups by first row.
pub(crate) struct Opened {
    file: File,
    frame: DataFrame,
    metadata: FileMetadata,
    /// The index of each row group by its first row.
    groups: HashMap<usize, usize>,
    /// The columns of the frame being written that are the very arrays of the donor's frame
    /// (a per-declaration output carrying the declarations' own key columns): equal in every row
    /// by construction, so their values are not compared again.
    shared: Vec<PlSmallStr>,
    /// Chunks taken so far.
    taken: AtomicUsize,
}

impl Opened {
    /// Opens `donor`, for writing `written` whole when given (a stream's batches are not: their
    /// columns are compared). `None` when its file has other rows than its frame: it was not
    /// written from it.
    pub(crate) fn open(donor: Donor, written: Option<&DataFrame>) -> Result<Option<Self>> {
        let path = donor.file;
        let mut file = File::open(path).map_err(fs_err("open", path))?;
        let metadata = polars_parquet::read::read_metadata(&mut file).map_err(|e| IoError::Parquet { path: path.to_owned(), source: e })?;
        if metadata.num_rows != donor.frame.height() {
            return Ok(None);
        }
        let mut groups = HashMap::new();
        let mut first = 0;
        for (i, group) in metadata.row_groups.iter().enumerate() {
            groups.insert(first, i);
            first += group.num_rows();
        }
        let shared = written
            .filter(|w| w.height() == donor.frame.height())
            .map(|w| {
                w.columns()
                    .iter()
                    .filter(|c| donor.frame.column(c.name()).is_ok_and(|theirs| mirador_schema::keys::same_arrays(c, theirs)))
                    .map(|c| c.name().clone())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Opened { file, frame: donor.frame.clone(), metadata, groups, shared, taken: AtomicUsize::new(0) }))
    }

    /// The donor's pages for `column`, the rows `first..first + column.len()` of the file being
    /// written, whose leaf column is `leaf`. `None` unless the donor has a row group of exactly
    /// those rows, holding a chunk of that name with the same descriptor (type, nullability)
    /// and, in its frame, the same values there ([`same_values`]).
    pub(crate) fn pages(&self, first: usize, column: &Column, leaf: &ColumnDescriptor) -> PolarsResult<Option<Vec<CompressedPage>>> {
        let Some(&index) = self.groups.get(&first) else { return Ok(None) };
        let group = &self.metadata.row_groups[index];
        if group.num_rows() != column.len() {
            return Ok(None);
        }
        let chunks: Vec<&ColumnChunkMetadata> = match group.columns_under_root_iter(column.name()) {
            Some(chunks) => chunks.collect(),
            None => return Ok(None),
        };
        let [chunk] = chunks[..] else { return Ok(None) };
        if chunk.descriptor() != leaf {
            return Ok(None);
        }
        let Ok(theirs) = self.frame.column(column.name()) else { return Ok(None) };
        let offset = i64::try_from(first).map_err(|_| polars_err!(ComputeError: "row {first} out of range"))?;
        // A slice of the donor's own arrays at its own rows holds their values; floats are never
        // taken either way.
        let own = !column.dtype().is_float() && column.dtype() == theirs.dtype() && self.shared.contains(column.name());
        if !own && !same_values(column, &theirs.slice(offset, column.len())) {
            return Ok(None);
        }
        let range = chunk.byte_range();
        let mut bytes = vec![0; usize::try_from(range.end - range.start).unwrap_or(usize::MAX)];
        self.file.read_exact_at(&mut bytes, range.start)?;
        let reader = PageReader::new(Cursor::new(bytes.into()), chunk, Vec::new(), usize::MAX);
        let mut pages = Vec::new();
        for page in reader {
            let mut page = page?;
            // A page read back does not know its rows; those of a flat column are its values.
            if let CompressedPage::Data(data) = &mut page {
                data.num_rows = Some(data.num_values());
            }
            pages.push(page);
        }
        self.taken.fetch_add(1, Ordering::Relaxed);
        Ok(Some(pages))
    }

    /// How many chunks were taken.
    pub(crate) fn taken(&self) -> usize {
        self.taken.load(Ordering::Relaxed)
    }

    /// Logs how many chunks the file at `path` took.
    pub(crate) fn report(&self, path: &Path) {
        tracing::debug!(path = %path.display(), chunks = self.taken(), "Column chunks taken from the donor's file.");
    }
}

/// Whether two columns hold the same values, typed alike, so that they are written in the same
/// bytes. Floating-point columns never are: equal floats may differ in their bits (`-0.0` and
/// `0.0`). Categoricals of the same type share their categories: they compare by code.
fn same_values(a: &Column, b: &Column) -> bool {
    a.dtype() == b.dtype()
        && !a.dtype().is_float()
        && a.len() == b.len()
        && a.as_materialized_series().to_physical_repr().equals_missing(&b.as_materialized_series().to_physical_repr())
}

#[cfg(test)]
mod tests {
    use mirador_schema::text;

    use super::*;
    use crate::{ParquetStream, ROW_GROUP_ROWS, read_parquet, write_parquet, write_parquet_from};

    /// Declarations-like rows over three row groups: text, a categorical, integers, floats,
    /// nulls.
    /// [`keyed_rows`] written to `declarations.parquet` in a new temporary directory: the
    /// directory (kept while the test runs), the file and the frame.
    fn written(n: usize, importer: &DataType) -> (tempfile::TempDir, std::path::PathBuf, DataFrame) {
        let mut declarations = keyed_rows(n, importer);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("declarations.parquet");
        write_parquet(&mut declarations, &file).unwrap();
        (dir, file, declarations)
    }

    fn keyed_rows(n: usize, importer: &DataType) -> DataFrame {
        let importers: Vec<Option<&str>> = (0..n).map(|i| (i % 11 != 0).then(|| ["im1", "im2", "im3"][i % 3])).collect();
        df!(
            "declaration_id" => (0..n).map(|i| format!("D{:07}", i / 2)).collect::<Vec<_>>(),
            "item_no" => (0..n).map(|i| (i % 2) as i32 + 1).collect::<Vec<_>>(),
            "value" => (0..n).map(|i| i as f64 * 0.25).collect::<Vec<_>>()
        )
        .unwrap()
        .with_column(text::categorical_of(importers, "importer_id", importer).unwrap())
        .unwrap()
        .clone()
    }

    /// What [`Opened::pages`] takes for each column of each row group of `output`.
    fn taken(donor: &Opened, output: &DataFrame, leaves: &[ColumnDescriptor]) -> Vec<Vec<bool>> {
        (0..output.height())
            .step_by(ROW_GROUP_ROWS)
            .map(|first| {
                let group = output.slice(first as i64, ROW_GROUP_ROWS);
                group
                    .columns()
                    .iter()
                    .map(|c| {
                        let leaf = leaves.iter().find(|l| l.path_in_schema[0] == c.name()).unwrap();
                        donor.pages(first, c, leaf).unwrap().is_some()
                    })
                    .collect()
            })
            .collect()
    }

    fn leaves(path: &Path) -> Vec<ColumnDescriptor> {
        let metadata = polars_parquet::read::read_metadata(&mut File::open(path).unwrap()).unwrap();
        metadata.schema_descr.columns().to_vec()
    }

    /// An output carrying the declarations' keys, with one key changed in the second row group and
    /// a float column equal to theirs: the equal chunks are taken, the changed one and the floats
    /// are encoded, and the file is the bytes of one written without a donor.
    #[test]
    fn equal_chunks_are_taken_and_the_file_is_the_same_bytes() {
        let n = 2 * ROW_GROUP_ROWS + 1_000;
        let importer = text::categorical_type("importer_id");
        let (dir, file, declarations) = written(n, &importer);
        let mut ids: Vec<String> =
            declarations.column("declaration_id").unwrap().str().unwrap().iter().map(|v| v.unwrap().to_owned()).collect();
        ids[ROW_GROUP_ROWS + 5] = "changed".into();
        let mut output = declarations
            .select(["declaration_id", "item_no", "importer_id", "value"])
            .unwrap()
            .with_column(Column::new("declaration_id".into(), ids))
            .unwrap()
            .with_column(Column::new("score".into(), (0..n as i64).rev().collect::<Vec<_>>()))
            .unwrap()
            .clone();
        let plain_file = dir.path().join("plain.parquet");
        let from_file = dir.path().join("from.parquet");
        let plain = write_parquet(&mut output.clone(), &plain_file).unwrap();
        let from = write_parquet_from(&mut output, &from_file, Some(Donor { file: &file, frame: &declarations })).unwrap();
        assert_eq!(from, plain);
        assert_eq!(std::fs::read(&from_file).unwrap(), std::fs::read(&plain_file).unwrap());
        assert_eq!(read_parquet(&from_file).unwrap().column("importer_id").unwrap().str().unwrap().get(1), Some("im2"));

        let donor = Opened::open(Donor { file: &file, frame: &declarations }, None).unwrap().unwrap();
        // Columns: declaration_id, item_no, importer_id, value, score.
        assert_eq!(
            taken(&donor, &output, &leaves(&from_file)),
            [vec![true, true, true, false, false], vec![false, true, true, false, false], vec![true, true, true, false, false]]
        );
    }

    /// Nothing is taken from a donor of other rows, of another type, or whose categoricals have
    /// other categories; the file is still the bytes of one written without a donor.
    #[test]
    fn nothing_is_taken_unless_rows_types_and_values_agree() {
        let n = ROW_GROUP_ROWS + 10;
        let importer = text::categorical_type("importer_id");
        let (dir, file, declarations) = written(n, &importer);

        let shorter = declarations.slice(0, n - 1);
        assert!(Opened::open(Donor { file: &file, frame: &shorter }, None).unwrap().is_none(), "a file of other rows than its frame");
        let mut bytes = Vec::new();
        for (i, output) in [
            shorter.clone(),
            // Other types, other categories.
            declarations.clone().with_column(declarations.column("item_no").unwrap().cast(&DataType::Int64).unwrap()).unwrap().clone(),
            keyed_rows(n, &text::categorical_type("importer_id")),
        ]
        .into_iter()
        .enumerate()
        {
            let from_file = dir.path().join(format!("from{i}.parquet"));
            let plain_file = dir.path().join(format!("plain{i}.parquet"));
            write_parquet_from(&mut output.clone(), &from_file, Some(Donor { file: &file, frame: &declarations })).unwrap();
            write_parquet(&mut output.clone(), &plain_file).unwrap();
            assert_eq!(std::fs::read(&from_file).unwrap(), std::fs::read(&plain_file).unwrap());
            bytes.push(from_file);
        }
        let donor = Opened::open(Donor { file: &file, frame: &declarations }, None).unwrap().unwrap();
        // Columns: declaration_id, item_no, value, importer_id.
        let int64 =
            declarations.clone().with_column(declarations.column("item_no").unwrap().cast(&DataType::Int64).unwrap()).unwrap().clone();
        assert_eq!(taken(&donor, &int64, &leaves(&bytes[1]))[0], [true, false, false, true]);
        let recoded = keyed_rows(n, &text::categorical_type("importer_id"));
        assert_eq!(taken(&donor, &recoded, &leaves(&bytes[2]))[0], [true, true, false, false]);
    }

    /// A frame written whole that holds the donor's own arrays (the declarations' key columns)
    /// takes their chunks without comparing values; a column of equal values in other arrays is
    /// compared (and taken), one of other values in other arrays is encoded; floats are never
    /// taken even when shared. The file is the bytes of one written without a donor.
    #[test]
    fn the_donors_own_arrays_are_taken_without_comparing() {
        let n = 2 * ROW_GROUP_ROWS + 3;
        let (dir, file, declarations) = written(n, &text::categorical_type("importer_id"));
        let mut items: Vec<i32> = declarations.column("item_no").unwrap().i32().unwrap().iter().map(Option::unwrap).collect();
        let copied = Column::new("item_no".into(), items.clone());
        let output = declarations.select(["declaration_id", "importer_id", "value"]).unwrap().with_column(copied).unwrap().clone();
        let donor = Opened::open(Donor { file: &file, frame: &declarations }, Some(&output)).unwrap().unwrap();
        assert_eq!(donor.shared, ["declaration_id", "importer_id", "value"], "the copied item numbers are other arrays");
        let plain_file = dir.path().join("plain.parquet");
        let from_file = dir.path().join("from.parquet");
        let plain = write_parquet(&mut output.clone(), &plain_file).unwrap();
        let from = write_parquet_from(&mut output.clone(), &from_file, Some(Donor { file: &file, frame: &declarations })).unwrap();
        assert_eq!(from, plain);
        assert_eq!(std::fs::read(&from_file).unwrap(), std::fs::read(&plain_file).unwrap());
        // Columns: declaration_id, importer_id, value, item_no.
        assert!(taken(&donor, &output, &leaves(&from_file)).iter().all(|g| g == &[true, true, false, true]));
        // Other values in other arrays: compared, not taken.
        items[1] += 5;
        let changed = output.clone().with_column(Column::new("item_no".into(), items)).unwrap().clone();
        assert_eq!(taken(&donor, &changed, &leaves(&from_file))[0], [true, true, false, false]);
        assert_eq!(taken(&donor, &changed, &leaves(&from_file))[1], [true, true, false, true]);
    }

    /// A stream written in batches of whole row groups takes the donor's chunks as the whole
    /// file does, and writes the same bytes.
    #[test]
    fn a_stream_takes_the_chunks_of_its_batches_rows() {
        let n = 2 * ROW_GROUP_ROWS + 7;
        let (dir, file, declarations) = written(n, &text::categorical_type("importer_id"));
        let output = declarations.select(["declaration_id", "importer_id"]).unwrap();
        let whole = dir.path().join("whole.parquet");
        let digest = write_parquet(&mut output.clone(), &whole).unwrap();

        let streamed = dir.path().join("streamed.parquet");
        let mut stream = ParquetStream::create_from(&streamed, output.schema(), Some(Donor { file: &file, frame: &declarations })).unwrap();
        stream.write(&output.slice(0, ROW_GROUP_ROWS)).unwrap();
        stream.write(&output.slice(ROW_GROUP_ROWS as i64, n)).unwrap();
        assert_eq!(stream.donor.as_ref().unwrap().taken(), 6, "two columns of three row groups");
        assert_eq!(stream.finish().unwrap(), digest);
        assert_eq!(std::fs::read(&streamed).unwrap(), std::fs::read(&whole).unwrap());
    }
}
