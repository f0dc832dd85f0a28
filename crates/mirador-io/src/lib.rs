//! Parquet and file I/O with Mirador's house defaults.
//!
//! Every write is atomic: data go to a temporary file in the target's directory, are synced, and
//! are renamed over the target, so a reader never sees a half-written file. Every parquet output
//! gets a `<name>.schema.json` sidecar (fields, types, nullability) that reviewers can diff.
//!
//! ```no_run
//! use polars::prelude::*;
//! let mut df = df!("hs6" => ["851712"], "gap_usd" => [1.0]).unwrap();
//! mirador_io::write_parquet(&mut df, std::path::Path::new("/tmp/gap.parquet")).unwrap();
//! let back = mirador_io::read_parquet(std::path::Path::new("/tmp/gap.parquet")).unwrap();
//! assert_eq!(back.height(), 1);
//! ```

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use polars::io::parquet::write::{BatchedWriter, get_encodings};
use polars::prelude::*;
use polars_parquet::parquet::metadata::{ColumnChunkMetadata, ColumnDescriptor};
use polars_parquet::write::{CompressedPage, Encoding, ParquetType, Version, WriteOptions, array_to_columns, compress};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

mod donor;
pub use donor::Donor;

/// Errors of the I/O layer. Messages name the path.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// A file system operation failed.
    #[error("cannot {action} `{path}`: {source}")]
    Fs {
        /// What we tried to do.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// polars failed to read or write.
    #[error("parquet error on `{path}`: {source}")]
    Parquet {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: PolarsError,
    },
}

/// Result alias of this crate.
pub type Result<T, E = IoError> = std::result::Result<T, E>;

fn fs_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> IoError + 'a {
    move |source| IoError::Fs { action, path: path.to_owned(), source }
}

/// Makes `dst` a hard link to `src`, or a copy where links cannot be made (another file system);
/// either way the file is not read into memory. A half-done copy is removed.
pub fn link_or_copy(src: &Path, dst: &Path) -> Result<()> {
    if fs::hard_link(src, dst).is_err() {
        let _ = fs::remove_file(dst);
        if let Err(e) = fs::copy(src, dst) {
            let _ = fs::remove_file(dst);
            return Err(fs_err("copy", src)(e));
        }
    }
    Ok(())
}

/// The parquet files of `dir` by file stem, sorted by it; none when `dir` does not exist. A
/// carried state kept one file per day (`<YYYY-MM-DD>.parquet`) is listed with it.
pub fn parquet_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(fs_err("read directory", dir))?.flatten() {
        let path = entry.path();
        if let Some(stem) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".parquet")) {
            out.push((stem.to_owned(), path.clone()));
        }
    }
    out.sort();
    Ok(out)
}

/// Makes `dst` a [`link_or_copy`] of the parquet file `src`, with its schema sidecar if it has one:
/// how a run carries a day file it leaves unchanged.
pub fn link_parquet(src: &Path, dst: &Path) -> Result<()> {
    link_or_copy(src, dst)?;
    let schema = src.with_extension("schema.json");
    if schema.is_file() {
        link_or_copy(&schema, &dst.with_extension("schema.json"))?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents, each owner-only (0700) whatever the process's umask:
/// outputs hold taxpayer data, and a directory others may write to lets them replace a file in
/// it. Directories that already exist are left as they are. Every directory Mirador creates goes
/// through here.
pub fn create_dir(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut next = Some(dir);
    while let Some(d) = next {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d);
        next = d.parent();
    }
    for d in missing.into_iter().rev() {
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(d) {
            // The mode given to mkdir(2) is masked by the umask; set it outright.
            Ok(()) => fs::set_permissions(d, owner_only_dir()).map_err(fs_err("set permissions of", d))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(fs_err("create directory", d)(e)),
        }
    }
    Ok(())
}

/// Writes `path` atomically: `write` fills a temporary sibling, which is synced and renamed over
/// `path`; the directory is synced afterwards. On any error the temporary file is removed.
pub fn write_atomic(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_dir(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".mirador-tmp-")
        .permissions(owner_only())
        .tempfile_in(dir)
        .map_err(fs_err("create temporary file in", dir))?;
    write(tmp.as_file_mut()).map_err(fs_err("write", path))?;
    crash_if_asked(path, tmp.as_file());
    tmp.as_file().sync_all().map_err(fs_err("sync", path))?;
    tmp.persist(path).map_err(|e| IoError::Fs { action: "rename into", path: path.to_owned(), source: e.error })?;
    sync_dir(dir)?;
    Ok(())
}

static CRASH_IN_WRITE: OnceLock<String> = OnceLock::new();

/// Fault injection for crash tests: the process kills itself (SIGKILL) in the middle of writing
/// the first file named `file_name`, leaving half of it on disk in the temporary sibling, as a
/// power cut or an OOM kill would. The CLI sets it from `MIRADOR_CRASH_IN_WRITE`; nothing else
/// calls it.
pub fn crash_in_write_of(file_name: &str) {
    let _ = CRASH_IN_WRITE.set(file_name.to_owned());
}

/// Crashes ([`crash_half_written`]) when [`crash_in_write_of`] named `path`'s file.
fn crash_if_asked(path: &Path, file: &File) {
    if CRASH_IN_WRITE.get().is_some_and(|name| path.file_name().is_some_and(|f| f == name.as_str())) {
        crash_half_written(file);
    }
}

fn crash_half_written(file: &File) -> ! {
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.set_len(len / 2);
    let _ = file.sync_all();
    kill_self()
}

/// Fault injection for crash tests: the process kills itself with SIGKILL (no destructor, no
/// cleanup, as an OOM kill or a power cut would stop it).
pub fn kill_self() -> ! {
    #[cfg(unix)]
    {
        let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
    std::process::abort()
}

/// Owner-only permissions for every file Mirador writes: outputs hold taxpayer data.
#[cfg(unix)]
fn owner_only() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o600)
}

/// Owner-only permissions for every directory Mirador creates.
#[cfg(unix)]
fn owner_only_dir() -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(0o700)
}

#[cfg(not(unix))]
fn owner_only_dir() -> fs::Permissions {
    owner_only()
}

#[cfg(not(unix))]
fn owner_only() -> fs::Permissions {
    fs::metadata(".").map(|m| m.permissions()).unwrap_or_else(|_| unreachable!())
}

/// Syncs a directory so a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir).and_then(|f| f.sync_all()).map_err(fs_err("sync directory", dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes bytes atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |f| f.write_all(bytes))
}

/// zstd at level 1: on a 10M-row declarations file it writes in 8.0 s against 11.7 s at the
/// default level 3, for files 4 % larger, and reads as fast.
fn compression() -> ParquetCompression {
    ParquetCompression::Zstd(polars_utils::compression::ZstdLevel::try_new(1).ok())
}

/// The writer's settings: zstd ([`compression`]) and polars' default statistics.
fn parquet_writer<W: Write>(w: W) -> ParquetWriter<W> {
    ParquetWriter::new(w).with_compression(compression()).with_statistics(StatisticsOptions::default())
}

/// The page options [`parquet_writer`] gives its pages (polars' `ParquetWriter` writes version 1
/// pages of its default size).
fn page_options() -> WriteOptions {
    WriteOptions { statistics: StatisticsOptions::default(), compression: compression().into(), version: Version::V1, data_page_size: None }
}

/// Rows of a row group (polars' `ParquetWriter::finish` default), counted from a frame's first
/// row ([`row_groups`]). A file written by [`ParquetStream`] in batches of a whole number of row
/// groups (and a last batch of the rest) has the bytes [`write_parquet`] gives the whole frame.
pub const ROW_GROUP_ROWS: usize = 512 * 512;

/// Writes `groups` (their first rows in the file, and frames of one row group each, in order) as
/// row groups of `batched`: the same row groups and pages as `BatchedWriter::write_batch` given
/// them with their categoricals as text, but every page encoded and compressed in parallel, a
/// categorical column's dictionary built from its codes ([`column_array`]), and the chunks a
/// `donor` holds for the same rows with the same values taken from it as they are ([`donor`]).
///
/// polars' own writer hands the file writer lazy page iterators, so encoding, statistics and
/// compression run on the writing thread, one column after another; here the columns of a few
/// row groups (one per thread) are encoded and compressed side by side, and only the compressed
/// pages of those row groups are held at once. Pages do not depend on the thread that made
/// them: the bytes are those of the serial writer.
fn write_row_groups<W: Write>(
    batched: &mut BatchedWriter<W>,
    groups: &[(usize, DataFrame)],
    encodings: &[Vec<Encoding>],
    donor: Option<&donor::Opened>,
) -> PolarsResult<()> {
    let options = page_options();
    let schema = batched.parquet_schema();
    let fields: Vec<ParquetType> = schema.fields().to_vec();
    // A field's leaf, where it is a flat column (one leaf of its own name): only flat columns'
    // chunks are taken from a donor.
    let leaves: Vec<Option<ColumnDescriptor>> = fields
        .iter()
        .map(|field| {
            let mut of = schema.columns().iter().filter(|c| c.path_in_schema.first().map(PlSmallStr::as_str) == Some(field.name()));
            match (of.next(), of.next()) {
                (Some(leaf), None) if leaf.path_in_schema.len() == 1 => Some(leaf.clone()),
                _ => None,
            }
        })
        .collect();
    let groups: Vec<&(usize, DataFrame)> = groups.iter().filter(|(_, g)| g.height() > 0).collect();
    let window = rayon::current_num_threads().max(1);
    for window in groups.chunks(window) {
        let tasks: Vec<(usize, usize)> = (0..window.len()).flat_map(|g| (0..fields.len()).map(move |c| (g, c))).collect();
        let encoded: Vec<PolarsResult<Vec<Vec<CompressedPage>>>> = tasks
            .par_iter()
            .map(|&(g, c)| {
                let (first, group) = window[g];
                let column = &group.columns()[c];
                if let (Some(donor), Some(leaf)) = (donor, &leaves[c])
                    && let Some(pages) = donor.pages(*first, column, leaf)?
                {
                    return Ok(vec![pages]);
                }
                encode_column(&column_array(column)?, &fields[c], &encodings[c], options)
            })
            .collect();
        let mut encoded = encoded.into_iter();
        for (_, group) in window {
            let mut columns: Vec<Vec<CompressedPage>> = Vec::with_capacity(fields.len());
            for column in encoded.by_ref().take(fields.len()) {
                columns.extend(column?);
            }
            batched.write_row_group(group.height() as u64, &columns)?;
        }
    }
    Ok(())
}

/// One column of a row group as its leaf columns' compressed pages.
fn encode_column(
    array: &ArrayRef,
    field: &ParquetType,
    encoding: &[Encoding],
    options: WriteOptions,
) -> PolarsResult<Vec<Vec<CompressedPage>>> {
    array_to_columns(array, field.clone(), options, encoding)?
        .into_iter()
        .map(|pages| pages.map(|page| Ok(compress(page?, Vec::new(), options.compression)?)).collect())
        .collect()
}

/// One column of a row group as the array its pages are encoded from: the column's own array
/// (in one chunk), or for a categorical column the dictionary array of its text
/// ([`coded_dictionary`]), or its text where that is not sure to be what the writer would make.
fn column_array(c: &Column) -> PolarsResult<ArrayRef> {
    if c.dtype().is_categorical() {
        if let Some(dictionary) = coded_dictionary(c)? {
            return Ok(dictionary);
        }
        return Ok(categorical_text(c)?.as_materialized_series().to_arrow(0, CompatLevel::newest()));
    }
    Ok(c.rechunk().as_materialized_series().to_arrow(0, CompatLevel::newest()))
}

/// The dictionary array polars' writer makes of a categorical column's text before it writes
/// its dictionary and data pages, made from the column's codes instead of by hashing every
/// value: its distinct values in order of first appearance, each row's index among them (a
/// null's index 0, unset). `None` when the writer might write the column plainly instead: it
/// does so when its cardinality estimate is above three quarters of the rows (past 128 rows),
/// and this is left to it once more than half of the values are distinct.
fn coded_dictionary(c: &Column) -> PolarsResult<Option<ArrayRef>> {
    use mirador_schema::text::Cats;
    match Cats::of(c) {
        None => Ok(None),
        Some(Cats::U8(ca)) => dictionary_of_codes(ca),
        Some(Cats::U16(ca)) => dictionary_of_codes(ca),
        Some(Cats::U32(ca)) => dictionary_of_codes(ca),
    }
}

/// [`coded_dictionary`] of a categorical column with codes of any width: the dictionary's keys
/// are 32-bit whatever the width, as the writer makes them of text.
fn dictionary_of_codes<T: PolarsCategoricalType>(ca: &CategoricalChunked<T>) -> PolarsResult<Option<ArrayRef>> {
    use polars_arrow::array::{DictionaryArray, MutableBinaryViewArray, PrimitiveArray};
    use polars_arrow::bitmap::Bitmap;
    use polars_arrow::datatypes::{ArrowDataType, IntegerType};
    let mapping = ca.get_mapping();
    let n = ca.len();
    // Index among the distinct values by categorical code.
    let mut index: Vec<u32> = Vec::new();
    let mut values = MutableBinaryViewArray::<str>::new();
    let mut keys: Vec<u32> = Vec::with_capacity(n);
    let mut nulls = 0;
    for codes in ca.physical().downcast_iter() {
        let valid = codes.validity().filter(|v| v.unset_bits() > 0);
        for (i, code) in codes.values().iter().enumerate() {
            if valid.is_some_and(|v| !v.get_bit(i)) {
                nulls += 1;
                keys.push(0);
                continue;
            }
            let code = code.as_cat();
            let at = code as usize;
            if at >= index.len() {
                index.resize(at + 1, u32::MAX);
            }
            if index[at] == u32::MAX {
                let Some(text) = mapping.cat_to_str(code) else { polars_bail!(ComputeError: "categorical code {code} has no text") };
                index[at] = values.len() as u32;
                values.push_value(text);
            }
            keys.push(index[at]);
        }
    }
    if n > 128 && 2 * values.len() > n {
        return Ok(None);
    }
    let validity = (nulls > 0).then(|| {
        let mut valid = Vec::with_capacity(n);
        for codes in ca.physical().downcast_iter() {
            match codes.validity() {
                Some(v) => valid.extend(v.iter()),
                None => valid.extend(std::iter::repeat_n(true, codes.len())),
            }
        }
        Bitmap::from_iter(valid)
    });
    let keys = PrimitiveArray::<u32>::new(ArrowDataType::UInt32, keys.into(), validity);
    let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(ArrowDataType::Utf8View), false);
    Ok(Some(Box::new(DictionaryArray::<u32>::try_new(dtype, keys, values.freeze().boxed())?)))
}

/// Writes `df` to `w` with `schema` (its categoricals as text), in [`row_groups`], taking what
/// it can from `donor`.
fn write_frame<W: Write>(w: W, df: &DataFrame, schema: &Schema, donor: Option<&donor::Opened>) -> PolarsResult<()> {
    let encodings = get_encodings(&schema.to_arrow(CompatLevel::newest()));
    let mut batched = parquet_writer(w).batched(schema)?;
    row_groups(df, 0, |groups| write_row_groups(&mut batched, groups, &encodings, donor))?;
    batched.finish().map(drop)
}

/// Writes a data frame as zstd-compressed parquet, atomically, plus its schema sidecar. Returns
/// the file's SHA-256 (hex), hashed as it is written rather than read back.
///
/// Categorical columns are written as text, and rows go in row groups of a fixed size counted
/// from the first row ([`row_groups`]): the file holds the values, not one run's codes, and its
/// bytes depend only on its content, not on how the frame was held (in how many chunks, its text
/// coded or not). Pages are encoded and compressed in
/// parallel ([`write_row_groups`]).
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<String> {
    write_parquet_from(df, path, None)
}

/// [`write_parquet`], taking from `donor` (a file it wrote, of as many rows as `df`) the column
/// chunks that hold the same values in the same rows ([`donor`]): the same bytes, without
/// encoding and compressing them again.
pub fn write_parquet_from(df: &mut DataFrame, path: &Path, donor: Option<Donor>) -> Result<String> {
    let (digest, schema) = write_parquet_data(df, path, donor)?;
    write_schema_sidecar(&schema, &path.with_extension("schema.json"))?;
    Ok(digest)
}

/// [`write_parquet`] without the schema sidecar: for directories that readers list whole and
/// where every file must be parquet (a hive-partitioned dataset). Returns the file's SHA-256.
pub fn write_parquet_file(df: &DataFrame, path: &Path) -> Result<String> {
    write_parquet_data(df, path, None).map(|(digest, _)| digest)
}

/// Writes the parquet file of [`write_parquet_from`]; returns its SHA-256 and the schema written.
fn write_parquet_data(df: &DataFrame, path: &Path, donor: Option<Donor>) -> Result<(String, Schema)> {
    // Only a file of the donor's rows can take its chunks (its row groups are the donor's).
    let donor = match donor {
        Some(d) if d.frame.height() == df.height() && df.height() > 0 => donor::Opened::open(d, Some(df))?,
        _ => None,
    };
    let mut polars_err = None;
    let mut digest = String::new();
    let categorical = df.columns().iter().any(|c| c.dtype().is_categorical());
    let schema = if categorical { text_schema(df.schema()) } else { df.schema().as_ref().clone() };
    let hasher = Arc::new(std::sync::Mutex::new(Sha256::new()));
    let res = write_atomic(path, |f| {
        let mut buf = io::BufWriter::with_capacity(1 << 20, Hashing { inner: f, hasher: Arc::clone(&hasher) });
        if let Err(e) = write_frame(&mut buf, df, &schema, donor.as_ref()) {
            polars_err = Some(e);
            return Err(io::Error::other("parquet writer failed"));
        }
        buf.flush()?;
        digest = hashing_digest(&hasher);
        Ok(())
    });
    if let Some(source) = polars_err {
        return Err(IoError::Parquet { path: path.to_owned(), source });
    }
    res?;
    if let Some(donor) = &donor {
        donor.report(path);
    }
    Ok((digest, schema))
}

/// Row groups handed to the writer at a time.
const SLICE_GROUPS: usize = 4;

/// `schema` with its categorical columns as strings.
fn text_schema(schema: &Schema) -> Schema {
    schema.iter().map(|(name, t)| Field::new(name.clone(), if t.is_categorical() { DataType::String } else { t.clone() })).collect()
}

/// Hands `df` to `write` as its row groups, [`SLICE_GROUPS`] at a time: frames of
/// [`ROW_GROUP_ROWS`] rows each (the last may hold fewer), counted from `df`'s first row whatever
/// its chunks, each with its first row in the file (`first`: the rows written before `df`). So
/// the same rows make the same row groups (and bytes) whether they were held in one chunk or
/// many, coded or not. The frames are slices of `df`: nothing is copied here.
fn row_groups(df: &DataFrame, first: usize, mut write: impl FnMut(&[(usize, DataFrame)]) -> PolarsResult<()>) -> PolarsResult<()> {
    let starts: Vec<usize> = (0..df.height()).step_by(ROW_GROUP_ROWS).collect();
    for starts in starts.chunks(SLICE_GROUPS) {
        let groups: Vec<(usize, DataFrame)> =
            starts.iter().map(|&at| (first + at, df.slice(i64::try_from(at).unwrap_or(i64::MAX), ROW_GROUP_ROWS))).collect();
        write(&groups)?;
    }
    Ok(())
}

/// A categorical column as text, its distinct values gathered by row ([`Coded::gather`]) rather
/// than cast (which copies every value).
///
/// [`Coded::gather`]: mirador_schema::text::Coded::gather
fn categorical_text(c: &Column) -> PolarsResult<Column> {
    Ok(mirador_schema::text::Text::of(c)?.coded().gather(c.name())?.into_column())
}

/// A writer that hashes what it passes on, into a hasher shared with whoever reads the digest
/// (a batched parquet writer owns its writer to the end).
struct Hashing<W> {
    inner: W,
    hasher: Arc<std::sync::Mutex<Sha256>>,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.lock().unwrap_or_else(std::sync::PoisonError::into_inner).update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The SHA-256 (hex) of what went through a [`Hashing`] writer.
fn hashing_digest(hasher: &std::sync::Mutex<Sha256>) -> String {
    hex::encode(hasher.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().finalize())
}

/// A parquet file written batch by batch (bounded memory), published atomically by
/// [`ParquetStream::finish`]: until then only a temporary sibling exists, and dropping the stream
/// without finishing removes it. Categorical columns are written as text, as by
/// [`write_parquet`], and the file is hashed as it is written.
pub struct ParquetStream {
    tmp: tempfile::NamedTempFile,
    writer: polars::io::parquet::write::BatchedWriter<Hashing<File>>,
    hasher: Arc<std::sync::Mutex<Sha256>>,
    path: PathBuf,
    schema: Schema,
    encodings: Vec<Vec<Encoding>>,
    donor: Option<donor::Opened>,
    /// Rows written so far.
    rows: usize,
}

impl ParquetStream {
    /// Starts writing `path` with `schema`.
    pub fn create(path: &Path, schema: &Schema) -> Result<Self> {
        Self::create_from(path, schema, None)
    }

    /// Starts writing `path` with `schema`, taking from `donor` the column chunks that hold the
    /// same values in the same rows, as [`write_parquet_from`] does (batches of whole row groups
    /// keep the file's row groups the donor's).
    pub fn create_from(path: &Path, schema: &Schema, donor: Option<Donor>) -> Result<Self> {
        let donor = match donor {
            Some(d) => donor::Opened::open(d, None)?,
            None => None,
        };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        create_dir(dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(".mirador-tmp-")
            .permissions(owner_only())
            .tempfile_in(dir)
            .map_err(fs_err("create temporary file in", dir))?;
        let file = tmp.as_file().try_clone().map_err(fs_err("open", path))?;
        let hasher = Arc::new(std::sync::Mutex::new(Sha256::new()));
        let schema = text_schema(schema);
        let writer = parquet_writer(Hashing { inner: file, hasher: Arc::clone(&hasher) })
            .batched(&schema)
            .map_err(|source| IoError::Parquet { path: path.to_owned(), source })?;
        let encodings = get_encodings(&schema.to_arrow(CompatLevel::newest())).to_vec();
        Ok(ParquetStream { tmp, writer, hasher, path: path.to_owned(), schema, encodings, donor, rows: 0 })
    }

    /// The schema the file is written with (categoricals as text).
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Appends a batch (its schema must be the stream's), in row groups counted from its first
    /// row ([`row_groups`]).
    pub fn write(&mut self, df: &DataFrame) -> Result<()> {
        let (writer, encodings) = (&mut self.writer, &self.encodings);
        row_groups(df, self.rows, |groups| write_row_groups(writer, groups, encodings, self.donor.as_ref()))
            .map_err(|source| IoError::Parquet { path: self.path.clone(), source })?;
        self.rows += df.height();
        Ok(())
    }

    /// Finishes the file, syncs it, renames it into place and writes the schema sidecar. Returns
    /// the file's SHA-256 (hex).
    pub fn finish(self) -> Result<String> {
        let (schema, path) = (self.schema.clone(), self.path.clone());
        let digest = self.finish_file()?;
        write_schema_sidecar(&schema, &path.with_extension("schema.json"))?;
        Ok(digest)
    }

    /// [`ParquetStream::finish`] without the schema sidecar (as [`write_parquet_file`]).
    pub fn finish_file(self) -> Result<String> {
        self.writer.finish().map_err(|source| IoError::Parquet { path: self.path.clone(), source })?;
        if let Some(donor) = &self.donor {
            donor.report(&self.path);
        }
        let digest = hashing_digest(&self.hasher);
        crash_if_asked(&self.path, self.tmp.as_file());
        self.tmp.as_file().sync_all().map_err(fs_err("sync", &self.path))?;
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
        self.tmp.persist(&self.path).map_err(|e| IoError::Fs { action: "rename into", path: self.path.clone(), source: e.error })?;
        sync_dir(&dir)?;
        Ok(digest)
    }
}

/// Writes a data frame as UTF-8 CSV with a header, atomically, for programs to read (the
/// synthetic sample world): every value is written as text (dates `YYYY-MM-DD`, nulls empty), so
/// codes keep their leading zeros; a field is quoted only where it must be. Not for files people
/// open in a spreadsheet: those go through [`write_spreadsheet_csv`].
pub fn write_csv(df: &DataFrame, path: &Path) -> Result<()> {
    let columns = csv_columns(df, path)?;
    write_atomic(path, |f| {
        let mut w = csv::Writer::from_writer(io::BufWriter::new(f));
        w.write_record(df.get_column_names().iter().map(|n| n.as_str()))?;
        let mut cells: Vec<_> = columns.iter().map(|(_, c)| c.iter()).collect();
        for _ in 0..df.height() {
            w.write_record(cells.iter_mut().map(|c| c.next().flatten().unwrap_or("")))?;
        }
        w.flush()
    })
}

/// Writes a data frame as CSV for people to open in a spreadsheet (the auditee lists), safe
/// against formula injection (OWASP's CSV-injection advice), whatever the spreadsheet's separator:
/// - every text cell (and the header) is quoted, so no separator inside it splits it for a
///   reader that honours quotes;
/// - a spreadsheet that splits on `;`, `|` or tab instead of `,` ignores those quotes, so a
///   formula may start at the start of a cell or after any of `,` `;` `|` tab, CR or LF (spaces
///   skipped): there, a leading `=`, `+`, `-`, `@`, tab or CR gets a `'` before it
///   ([`neutralize_formulas`]). An importer id `X;=cmd|' /C calc'!A0;` is written
///   `"X;'=cmd|' /C calc'!A0;"`.
///
/// Numeric and date cells are written as they are, unquoted (`-1.5` stays a number).
pub fn write_spreadsheet_csv(df: &DataFrame, path: &Path) -> Result<()> {
    write_spreadsheet_csvs(&[(df, path)])
}

/// Writes several data frames as spreadsheet CSV ([`write_spreadsheet_csv`]), side by side. A
/// column several frames share (the very same arrays, as a copy of a frame with one column
/// replaced shares the others) is turned into text once.
pub fn write_spreadsheet_csvs(files: &[(&DataFrame, &Path)]) -> Result<()> {
    // Each distinct column once, turned into text in parallel.
    let mut distinct: Vec<&Column> = Vec::new();
    let at: Vec<Vec<usize>> = files
        .iter()
        .map(|(df, _)| {
            df.columns()
                .iter()
                .map(|c| {
                    distinct.iter().position(|d| mirador_schema::keys::same_arrays(d, c)).unwrap_or_else(|| {
                        distinct.push(c);
                        distinct.len() - 1
                    })
                })
                .collect()
        })
        .collect();
    let texts: Vec<PolarsResult<(bool, StringChunked)>> = distinct.par_iter().map(|c| csv_column(c)).collect();
    files.par_iter().zip(&at).try_for_each(|((df, path), at)| {
        let columns = at
            .iter()
            .map(|&k| texts[k].clone().map_err(|source| IoError::Parquet { path: path.to_path_buf(), source }))
            .collect::<Result<Vec<_>>>()?;
        write_spreadsheet_lines(df, &columns, path)
    })
}

fn write_spreadsheet_lines(df: &DataFrame, columns: &[(bool, StringChunked)], path: &Path) -> Result<()> {
    write_atomic(path, |f| {
        let mut w = io::BufWriter::with_capacity(1 << 20, f);
        let mut line = String::new();
        for (k, name) in df.get_column_names().iter().enumerate() {
            if k > 0 {
                line.push(',');
            }
            push_quoted(&mut line, name.as_str());
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
        let mut cells: Vec<_> = columns.iter().map(|(is_text, c)| (*is_text, c.iter())).collect();
        for _ in 0..df.height() {
            line.clear();
            for (k, (is_text, c)) in cells.iter_mut().enumerate() {
                if k > 0 {
                    line.push(',');
                }
                match (c.next().flatten(), is_text) {
                    (None, _) => {}
                    (Some(v), true) => push_quoted(&mut line, v),
                    (Some(v), false) => line.push_str(v),
                }
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        w.flush()
    })
}

/// Appends `v` to `out` as a quoted spreadsheet cell: formulas neutralized
/// ([`neutralize_formulas`]), quotes doubled.
fn push_quoted(out: &mut String, v: &str) {
    out.push('"');
    // Formula starts and quotes are ASCII: text without any is written as it is.
    if !v.bytes().any(|b| matches!(b, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'"')) {
        out.push_str(v);
    } else {
        let mut at_start = true;
        for ch in v.chars() {
            if at_start && FORMULA_STARTS.contains(&ch) {
                out.push('\'');
            }
            if ch == '"' {
                out.push_str("\"\"");
            } else {
                out.push(ch);
            }
            if ch != ' ' {
                at_start = CELL_BREAKS.contains(&ch);
            }
        }
    }
    out.push('"');
}

/// Characters after which a spreadsheet may start a new cell: the separators spreadsheets are
/// set to split on (`,`, `;`, `|`, tab) and line ends.
const CELL_BREAKS: [char; 6] = [',', ';', '|', '\t', '\r', '\n'];
/// First characters that make a spreadsheet cell a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `v` with a `'` put before every formula start (`=`, `+`, `-`, `@`, tab, CR) found at the start
/// of the text or after a cell break (`,` `;` `|` tab CR LF), spaces between skipped: no part a
/// spreadsheet may split the text into starts as a formula. Text without such a start is
/// returned unchanged.
pub fn neutralize_formulas(v: &str) -> std::borrow::Cow<'_, str> {
    let mut out = String::with_capacity(v.len() + 1);
    let mut at_start = true;
    let mut changed = false;
    for ch in v.chars() {
        if at_start && FORMULA_STARTS.contains(&ch) {
            out.push('\'');
            changed = true;
        }
        out.push(ch);
        if ch != ' ' {
            at_start = CELL_BREAKS.contains(&ch);
        }
    }
    if changed { std::borrow::Cow::Owned(out) } else { std::borrow::Cow::Borrowed(v) }
}

/// Each column of `df` as text, with whether it is a text column.
fn csv_columns(df: &DataFrame, path: &Path) -> Result<Vec<(bool, StringChunked)>> {
    df.columns().iter().map(|c| csv_column(c).map_err(|source| IoError::Parquet { path: path.to_owned(), source })).collect()
}

/// A column as the text a CSV cell holds, and whether it is text (rather than a number or a date).
fn csv_column(c: &Column) -> PolarsResult<(bool, StringChunked)> {
    let is_text = c.dtype() == &DataType::String || c.dtype().is_categorical();
    Ok((is_text, c.cast(&DataType::String)?.str()?.clone()))
}

#[cfg(test)]
mod spreadsheet_tests {
    use super::*;

    #[test]
    fn text_cells_are_quoted_and_formulas_neutralized_numbers_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let df = df!(
            "importer" => [Some("=HYPERLINK(\"http://x\")"), Some("ACME"), Some("-1+2"), Some("X;=cmd|' /C calc'!A0;"), None],
            "gap" => [-1.5, 2.0, 3.0, 4.0, 5.0]
        )
        .unwrap();
        write_spreadsheet_csv(&df, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "\"importer\",\"gap\"",
                "\"'=HYPERLINK(\"\"http://x\"\")\",-1.5",
                "\"ACME\",2.0",
                "\"'-1+2\",3.0",
                "\"X;'=cmd|' /C calc'!A0;\",4.0",
                ",5.0",
            ]
        );
        // The machine-readable writer keeps values as they are.
        write_csv(&df, &path).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("\n\"=HYPERLINK"));
    }

    #[test]
    fn frames_sharing_columns_are_written_as_each_alone() {
        let dir = tempfile::tempdir().unwrap();
        let a = df!("id" => ["=x", "b"], "v" => [1.5, -2.0], "n" => [Some(1u32), None]).unwrap();
        let mut b = a.clone();
        b.with_column(Column::new("id".into(), ["p", "q"])).unwrap();
        let (pa, pb, alone) = (dir.path().join("a.csv"), dir.path().join("b.csv"), dir.path().join("alone.csv"));
        write_spreadsheet_csvs(&[(&a, &pa), (&b, &pb)]).unwrap();
        for (df, path) in [(&a, &pa), (&b, &pb)] {
            write_spreadsheet_csv(df, &alone).unwrap();
            assert_eq!(std::fs::read(path).unwrap(), std::fs::read(&alone).unwrap());
        }
        assert!(std::fs::read_to_string(&pb).unwrap().contains("\"q\",-2.0,\n"));
    }

    /// Whatever a spreadsheet splits a written cell on (`,` honouring quotes, or `;`, `|`, tab
    /// ignoring them), no piece starts as a formula, for payloads built from every formula start
    /// after every separator, with spaces and text around them.
    #[test]
    fn no_piece_of_a_written_cell_starts_a_formula_whatever_the_separator() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.csv");
        let mut payloads = Vec::new();
        for lead in ["", "X", "ACME Ltd", "\"q\"", "a b"] {
            for sep in ["", ",", ";", "|", "\t", "\r\n", "\n"] {
                for space in ["", " ", "  "] {
                    for start in ["=", "+", "-", "@", "\t", "\r", "=="] {
                        for rest in ["cmd|' /C calc'!A0", "1+1", "SUM(A1:A9)", ""] {
                            payloads.push(format!("{lead}{sep}{space}{start}{rest}"));
                        }
                    }
                }
            }
        }
        payloads.push("X;=cmd|' /C calc'!A0;".into());
        let n = i64::try_from(payloads.len()).unwrap();
        let df = df!("importer_id" => payloads.clone(), "n" => (0..n).collect::<Vec<_>>()).unwrap();
        write_spreadsheet_csv(&df, &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let formula = |piece: &str| piece.trim_start_matches([' ', '"']).starts_with(FORMULA_STARTS);
        // Read honouring quotes: one row per payload, the text as written.
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let cells: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_owned()).collect();
        assert_eq!(cells.len(), payloads.len());
        for (cell, payload) in cells.iter().zip(&payloads) {
            assert_eq!(cell.replace('\'', ""), payload.replace('\'', ""), "only quotes are added");
            for sep in CELL_BREAKS {
                for (k, piece) in cell.split(sep).enumerate() {
                    // A tab that is itself neutralized stays inside its piece.
                    assert!(!formula(piece) || (k == 0 && piece.starts_with('\'')), "{payload:?} written as {cell:?}: `{piece}`");
                }
            }
        }
        // Read ignoring quotes, split on each separator a spreadsheet may use.
        let text = String::from_utf8(bytes).unwrap();
        for sep in [',', ';', '|', '\t'] {
            for line in text.split(['\n', '\r']) {
                for piece in line.split(sep) {
                    assert!(!formula(piece), "`{piece:?}` split on {sep:?}");
                }
            }
        }
    }
}

/// Appends `block` to the frame gathered in `all` (the first block becomes it): for outputs made
/// block by block and wanted whole.
pub fn stack(all: &mut Option<DataFrame>, block: DataFrame) -> PolarsResult<()> {
    match all {
        Some(all) => {
            all.vstack_mut_owned(block)?;
        }
        None => *all = Some(block),
    }
    Ok(())
}

/// Reads a parquet file.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(fs_err("open", path))?;
    ParquetReader::new(file).finish().map_err(|source| IoError::Parquet { path: path.to_owned(), source })
}

/// Rows `offset..offset + len` of a parquet file (fewer past its end): all its columns, or those
/// of `columns` it has (in the file's order). Only the row groups holding them are read.
pub fn read_parquet_slice(path: &Path, columns: Option<&[&str]>, offset: usize, len: usize) -> Result<DataFrame> {
    let parquet = |source| IoError::Parquet { path: path.to_owned(), source };
    let file = File::open(path).map_err(fs_err("open", path))?;
    let mut reader = ParquetReader::new(file).with_slice(Some((offset, len)));
    if let Some(columns) = columns {
        let schema = reader.schema().map_err(parquet)?;
        let present: Vec<String> = schema.iter_names().filter(|n| columns.contains(&n.as_str())).map(ToString::to_string).collect();
        reader = reader.with_columns(Some(present));
    }
    reader.finish().map_err(parquet)
}

/// Reads the columns of `columns` that a parquet file has (in the file's order), and only those.
pub fn read_parquet_columns(path: &Path, columns: &[&str]) -> Result<DataFrame> {
    let parquet = |source| IoError::Parquet { path: path.to_owned(), source };
    let file = File::open(path).map_err(fs_err("open", path))?;
    let mut reader = ParquetReader::new(file);
    let schema = reader.schema().map_err(parquet)?;
    let present: Vec<String> = schema.iter_names().filter(|n| columns.contains(&n.as_str())).map(ToString::to_string).collect();
    reader.with_columns(Some(present)).finish().map_err(parquet)
}

/// The columns of `columns` that parquet file `b` holds with exactly the values file `a` holds,
/// proven from the files' bytes without decoding them: both files have the same row groups (by
/// rows), and in each the column's chunk has the same type, compression and bytes (pages,
/// dictionary and statistics), so it decodes to the same values. Each column comes with the type
/// it is read as. A column left out may still hold equal values: the files were written otherwise.
///
/// [`write_parquet`] writes the same values in the same bytes (row groups at fixed offsets, one
/// encoder), so a per-declaration output's key columns can be proven equal to the
/// declarations' at the cost of comparing a few megabytes.
pub fn same_columns(a: &Path, b: &Path, columns: &[&str]) -> Result<Vec<(String, DataType)>> {
    use std::os::unix::fs::FileExt;
    let open = |path: &Path| -> Result<(File, polars_parquet::parquet::metadata::FileMetadata, ArrowSchema)> {
        let parquet = |source| IoError::Parquet { path: path.to_owned(), source };
        let mut file = File::open(path).map_err(fs_err("open", path))?;
        let metadata = polars_parquet::read::read_metadata(&mut file).map_err(parquet)?;
        let schema = polars_parquet::read::infer_schema(&metadata).map_err(parquet)?;
        Ok((file, metadata, schema))
    };
    let ((fa, ma, sa), (fb, mb, sb)) = (open(a)?, open(b)?);
    let groups = |m: &polars_parquet::parquet::metadata::FileMetadata| m.row_groups.iter().map(|g| g.num_rows()).collect::<Vec<_>>();
    if ma.num_rows != mb.num_rows || groups(&ma) != groups(&mb) {
        return Ok(Vec::new());
    }
    // The bytes of two chunks, compared a block at a time.
    let same_bytes = |ra: std::ops::Range<u64>, rb: std::ops::Range<u64>| -> Result<bool> {
        if ra.end - ra.start != rb.end - rb.start {
            return Ok(false);
        }
        const BLOCK: u64 = 1 << 20;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut at = 0;
        while at < ra.end - ra.start {
            let n = BLOCK.min(ra.end - ra.start - at);
            x.resize(n as usize, 0);
            y.resize(n as usize, 0);
            fa.read_exact_at(&mut x, ra.start + at).map_err(fs_err("read", a))?;
            fb.read_exact_at(&mut y, rb.start + at).map_err(fs_err("read", b))?;
            if x != y {
                return Ok(false);
            }
            at += n;
        }
        Ok(true)
    };
    let mut same = Vec::new();
    for &name in columns {
        let (Some(field), Some(other)) = (sa.get(name), sb.get(name)) else { continue };
        if field.dtype() != other.dtype() {
            continue;
        }
        let mut equal = true;
        for (ga, gb) in ma.row_groups.iter().zip(&mb.row_groups) {
            fn chunks<'g>(g: &'g polars_parquet::parquet::metadata::RowGroupMetadata, name: &str) -> Vec<&'g ColumnChunkMetadata> {
                g.columns_under_root_iter(name).map(Iterator::collect).unwrap_or_default()
            }
            let (ca, cb) = (chunks(ga, name), chunks(gb, name));
            equal = !ca.is_empty() && ca.len() == cb.len();
            for (x, y) in ca.iter().zip(&cb) {
                equal = equal
                    && x.descriptor() == y.descriptor()
                    && x.compression() == y.compression()
                    && x.num_values() == y.num_values()
                    && same_bytes(x.byte_range(), y.byte_range())?;
            }
            if !equal {
                break;
            }
        }
        if equal {
            same.push((name.to_owned(), DataType::from_arrow_field(field)));
        }
    }
    Ok(same)
}

/// Reads the columns of `columns` that a parquet file has, in the file's order, taking those of
/// `given` (by name) as they are instead of reading them: columns known to hold the file's
/// values ([`same_columns`]).
pub fn read_parquet_columns_with(path: &Path, columns: &[&str], given: &[Column]) -> Result<DataFrame> {
    let parquet = |source| IoError::Parquet { path: path.to_owned(), source };
    let file = File::open(path).map_err(fs_err("open", path))?;
    let mut reader = ParquetReader::new(file);
    let schema = reader.schema().map_err(parquet)?;
    let present: Vec<&str> = schema.iter_names().map(PlSmallStr::as_str).filter(|n| columns.contains(n)).collect();
    let given_of = |n: &str| given.iter().find(|c| c.name().as_str() == n);
    let read: Vec<String> = present.iter().filter(|n| given_of(n).is_none()).map(ToString::to_string).collect();
    let rows = reader.num_rows().map_err(parquet)?;
    let read = if read.is_empty() { DataFrame::empty() } else { reader.with_columns(Some(read)).finish().map_err(parquet)? };
    let columns = present
        .iter()
        .map(|n| match given_of(n) {
            Some(c) => Ok(c.clone()),
            None => read.column(n).cloned().map_err(parquet),
        })
        .collect::<Result<Vec<_>>>()?;
    DataFrame::new(rows, columns).map_err(parquet)
}

/// The number of rows of a parquet file, from its footer.
pub fn parquet_rows(path: &Path) -> Result<usize> {
    let file = File::open(path).map_err(fs_err("open", path))?;
    ParquetReader::new(file).num_rows().map_err(|source| IoError::Parquet { path: path.to_owned(), source })
}

/// One field of a schema sidecar.
pub use mirador_schema::catalog::FieldDoc;

/// Renders a schema as pretty JSON (a list of `{name, dtype}`), deterministic for diffing.
pub fn schema_json(schema: &Schema) -> String {
    let fields: Vec<FieldDoc> = schema.iter().map(|(name, dtype)| FieldDoc { name: name.to_string(), dtype: dtype.to_string() }).collect();
    let mut s = serde_json::to_string_pretty(&fields).unwrap_or_default();
    s.push('\n');
    s
}

fn write_schema_sidecar(schema: &Schema, path: &Path) -> Result<()> {
    write_bytes(path, schema_json(schema).as_bytes())
}

/// SHA-256 of a file, hex encoded, and its size in bytes.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let file = File::open(path).map_err(fs_err("open", path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(fs_err("read", path))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Takes `file`'s exclusive kernel lock (flock on a file or a directory, released by the kernel
/// when the process dies), retrying for `grace` while it is held elsewhere: `Ok(false)` when it
/// still is.
pub fn try_lock_for(file: &File, grace: std::time::Duration) -> io::Result<bool> {
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(fs::TryLockError::WouldBlock) if started.elapsed() < grace => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(fs::TryLockError::WouldBlock) => return Ok(false),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

/// SHA-256 of bytes, hex encoded.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use mirador_schema::text;

    use super::*;

    #[test]
    fn categoricals_are_written_as_their_text_whatever_their_codes() {
        let dir = tempfile::tempdir().unwrap();
        let values = ["p", "q", "p", "r"];
        let plain = df!("k" => values, "x" => [1, 2, 3, 4]).unwrap();
        let mut hashes = Vec::new();
        // The same values coded in two orders (the second mapping first saw `r`).
        for first in [None, Some("r")] {
            let dtype = text::categorical_type("k");
            let codes = first.into_iter().chain(values).map(Some);
            let all = text::categorical_of(codes, "k", &dtype).unwrap();
            let k = all.slice(i64::from(first.is_some()), values.len());
            let mut df = DataFrame::new(4, vec![k, plain.column("x").unwrap().clone()]).unwrap();
            let path = dir.path().join("t.parquet");
            hashes.push(write_parquet(&mut df, &path).unwrap());
            assert_eq!(read_parquet(&path).unwrap(), plain);
        }
        assert_eq!(hashes[0], hashes[1]);
        let mut plain = plain;
        assert_eq!(write_parquet(&mut plain, &dir.path().join("plain.parquet")).unwrap(), hashes[0]);
    }

    #[test]
    fn a_stream_fed_whole_row_groups_writes_the_bytes_of_the_whole_frame_and_slices_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let n = 2 * ROW_GROUP_ROWS + 123;
        let df =
            df!("k" => (0..n).map(|i| format!("k{}", i % 97)).collect::<Vec<_>>(), "x" => (0..n).map(|i| i as f64).collect::<Vec<_>>())
                .unwrap();
        let whole = write_parquet_file(&df, &dir.path().join("whole.parquet")).unwrap();
        let mut stream = ParquetStream::create(&dir.path().join("stream.parquet"), df.schema()).unwrap();
        stream.write(&df.slice(0, 2 * ROW_GROUP_ROWS)).unwrap();
        stream.write(&df.slice(i64::try_from(2 * ROW_GROUP_ROWS).unwrap(), 123)).unwrap();
        assert_eq!(stream.finish_file().unwrap(), whole);
        assert_eq!(fs::read(dir.path().join("stream.parquet")).unwrap(), fs::read(dir.path().join("whole.parquet")).unwrap());
        assert!(!dir.path().join("stream.schema.json").exists());
        let path = dir.path().join("whole.parquet");
        let slice = read_parquet_slice(&path, None, ROW_GROUP_ROWS - 5, 10).unwrap();
        assert_eq!(slice, df.slice(i64::try_from(ROW_GROUP_ROWS - 5).unwrap(), 10));
        let x = read_parquet_slice(&path, Some(&["x", "absent"]), n - 3, 10).unwrap();
        assert_eq!(x, df.select(["x"]).unwrap().slice(i64::try_from(n - 3).unwrap(), 3));
    }

    #[test]
    fn a_bare_parquet_file_is_the_same_file_without_its_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let mut df = df!("k" => ["p", "q", "p"], "x" => [1.5, 2.0, 3.0]).unwrap();
        let (full, bare) = (dir.path().join("full.parquet"), dir.path().join("bare.parquet"));
        let digest = write_parquet(&mut df, &full).unwrap();
        assert_eq!(write_parquet_file(&df, &bare).unwrap(), digest);
        assert_eq!(fs::read(&full).unwrap(), fs::read(&bare).unwrap());
        assert!(full.with_extension("schema.json").is_file());
        assert!(!bare.with_extension("schema.json").exists());
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 3, "no temporary file left: {names:?}");
    }

    #[test]
    fn columns_are_proven_equal_only_where_they_are_and_read_with_the_given_ones() {
        let dir = tempfile::tempdir().unwrap();
        // More rows than a row group, so that every row group is compared.
        let n = ROW_GROUP_ROWS + 1000;
        let ids: Vec<String> = (0..n).map(|i| format!("D{:07}", i / 3)).collect();
        let items: Vec<i32> = (0..n).map(|i| (i % 3) as i32 + 1).collect();
        let write = |name: &str, mut df: DataFrame| {
            let path = dir.path().join(name);
            write_parquet(&mut df, &path).unwrap();
            path
        };
        let declarations = df!("declaration_id" => &ids, "item_no" => &items, "v" => vec![1.0; n]).unwrap();
        let a = write("a.parquet", declarations.clone());
        // The same keys, other columns beside them, in another order.
        let same = write("same.parquet", df!("s" => vec![2.0; n], "item_no" => &items, "declaration_id" => &ids).unwrap());
        // One key changed in the last row group; items as 64-bit integers; one row fewer.
        let mut changed = ids.clone();
        changed[n - 1] = "D9999999".into();
        let other = write(
            "other.parquet",
            df!("declaration_id" => &changed, "item_no" => items.iter().map(|&i| i64::from(i)).collect::<Vec<_>>()).unwrap(),
        );
        let shorter = write("shorter.parquet", df!("declaration_id" => &ids[1..], "item_no" => &items[1..]).unwrap());
        let keys = ["declaration_id", "item_no", "absent"];
        let names = |p: &Path| same_columns(&a, p, &keys).unwrap().into_iter().map(|(c, _)| c).collect::<Vec<_>>();
        assert_eq!(names(&same), ["declaration_id", "item_no"]);
        assert_eq!(same_columns(&a, &same, &keys).unwrap()[1].1, DataType::Int32);
        assert!(names(&other).is_empty(), "a changed value and another type are not the same");
        assert!(names(&shorter).is_empty());
        // The proven columns taken as given: the frame is the file's, in its order.
        let given = [declarations.column("declaration_id").unwrap().clone(), declarations.column("item_no").unwrap().clone()];
        let wanted = ["declaration_id", "item_no", "s", "absent"];
        let read = read_parquet_columns_with(&same, &wanted, &given).unwrap();
        assert_eq!(read, read_parquet_columns(&same, &wanted).unwrap());
        assert_eq!(read.get_column_names(), ["s", "item_no", "declaration_id"]);
        // Only given columns: the rows are the file's.
        assert_eq!(read_parquet_columns_with(&same, &["item_no"], &given[1..]).unwrap().height(), n);
    }

    /// polars' own (serial) writer, given `df` in the row groups [`row_groups`] cuts, its
    /// categoricals as text (so polars builds every text column's dictionary itself).
    fn serial_bytes(df: &DataFrame) -> Vec<u8> {
        let mut serial = Vec::new();
        let mut batched = parquet_writer(&mut serial).batched(&text_schema(df.schema())).unwrap();
        row_groups(df, 0, |groups| {
            // One chunk a row group.
            let mut all: Option<DataFrame> = None;
            for (_, group) in groups {
                let columns = group
                    .columns()
                    .iter()
                    .map(|c| if c.dtype().is_categorical() { categorical_text(c) } else { Ok(c.rechunk()) })
                    .collect::<PolarsResult<Vec<_>>>()?;
                let group = DataFrame::new(group.height(), columns)?;
                match &mut all {
                    None => all = Some(group),
                    Some(all) => drop(all.vstack_mut(&group)?),
                }
            }
            all.map_or(Ok(()), |all| batched.write_batch(&all))
        })
        .unwrap();
        batched.finish().unwrap();
        drop(batched);
        serial
    }

    /// A categorical column's dictionary and data pages made from its codes are the bytes polars'
    /// writer makes of its text, whatever the column: one value or many (below half the rows
    /// distinct, and above, where the writer may write the values plainly), no nulls, some or
    /// only nulls, a mapping holding values the column lacks, several chunks, row groups of
    /// fewer than 128 rows; and with codes of 8, 16 or 32 bits.
    #[test]
    fn categoricals_written_from_their_codes_are_the_bytes_of_their_text() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |below: usize| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 33) as usize) % below.max(1)
        };
        let mut widths = Vec::new();
        for (n, columns) in [(ROW_GROUP_ROWS + 3_001, 8), (100, 4), (129, 4), (5, 2)] {
            let mut plain = Vec::new();
            let mut coded = Vec::new();
            for k in 0..columns {
                // Distinct values as a share of the rows, and nulls one row in how many.
                let distinct = [1, 7, n / 10, n * 45 / 100, n * 55 / 100, n * 3 / 4, n, n * 2][k % 8].max(1);
                let nulls = [0, 3, 1, 0, 50, 0, 9, 0][(k + n) % 8];
                let values: Vec<Option<String>> = (0..n)
                    .map(|i| {
                        let v = if distinct >= n { i * 7 % n.max(1) + next(2) * n } else { next(distinct) };
                        (nulls == 0 || next(nulls) != 0).then(|| format!("v{v}-{}", "x".repeat(v % 15)))
                    })
                    .collect();
                let name = format!("c{k}");
                plain.push(Column::new(name.as_str().into(), &values));
                let dtype = text::categorical_type(&name);
                // The mapping first holds values the column lacks, in another order.
                text::categorical_of([Some("zz"), Some("v3-xxx"), Some("aa")], &name, &dtype).unwrap();
                // In several chunks.
                let cut = n / 3;
                let mut c = text::categorical_of(values[..cut].iter().map(Option::as_deref), &name, &dtype).unwrap();
                c.append(&text::categorical_of(values[cut..].iter().map(Option::as_deref), &name, &dtype).unwrap()).unwrap();
                coded.push(c);
            }
            let (plain, mut coded) = (DataFrame::new(n, plain).unwrap(), DataFrame::new(n, coded).unwrap());
            let path = dir.path().join("coded.parquet");
            write_parquet(&mut coded, &path).unwrap();
            assert_eq!(fs::read(&path).unwrap(), serial_bytes(&plain), "{n} rows");
            assert_eq!(fs::read(&path).unwrap(), serial_bytes(&coded), "{n} rows");
            assert_eq!(read_parquet(&path).unwrap(), plain);
            // With 8- or 16-bit codes where the column's values fit, the same bytes.
            let mut narrowed = DataFrame::new(n, coded.columns().iter().map(|c| text::narrowed(c).unwrap()).collect()).unwrap();
            widths.extend(narrowed.columns().iter().map(|c| c.dtype().cat_physical().unwrap()));
            write_parquet(&mut narrowed, &path).unwrap();
            assert_eq!(fs::read(&path).unwrap(), serial_bytes(&plain), "{n} rows, narrowed");
            if n > ROW_GROUP_ROWS {
                // Both kinds of column chunk were written: with a dictionary, and plain.
                let meta = polars_parquet::read::read_metadata(&mut fs::File::open(&path).unwrap()).unwrap();
                let chunks: Vec<bool> = meta.row_groups[0].parquet_columns().iter().map(|c| c.dictionary_page_offset().is_some()).collect();
                assert!(chunks.contains(&true) && chunks.contains(&false), "{chunks:?}");
            }
        }
        for width in [CategoricalPhysical::U8, CategoricalPhysical::U16, CategoricalPhysical::U32] {
            assert!(widths.contains(&width), "no column kept {width:?} codes: {widths:?}");
        }
    }

    /// Pages encoded and compressed in parallel make the file polars' own (serial) writer makes:
    /// several row groups, text with repeats and nulls, integers, floats and booleans.
    #[test]
    fn parallel_pages_are_the_bytes_of_the_serial_writer() {
        let n = ROW_GROUP_ROWS + 1_000;
        let df = df!(
            "id" => (0..n).map(|i| format!("d{}", i / 3)).collect::<Vec<_>>(),
            "k" => (0..n).map(|i| (i % 7 != 0).then(|| ["a", "b", "c"][i % 3])).collect::<Vec<_>>(),
            "x" => (0..n as i64).collect::<Vec<_>>(),
            "v" => (0..n).map(|i| (i % 5 != 0).then_some(i as f64 * 0.5)).collect::<Vec<_>>(),
            "b" => (0..n).map(|i| i % 2 == 0).collect::<Vec<_>>()
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("whole.parquet");
        write_parquet(&mut df.clone(), &path).unwrap();
        assert_eq!(fs::read(&path).unwrap(), serial_bytes(&df), "a frame written whole");
        assert_eq!(read_parquet(&path).unwrap(), df);
        let meta = polars_parquet::read::read_metadata(&mut fs::File::open(&path).unwrap()).unwrap();
        let groups: Vec<usize> = meta.row_groups.iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, [ROW_GROUP_ROWS, 1_000], "row groups counted from the first row");
        // A frame of several chunks, streamed.
        let mut chunks = df.slice(0, 1_000);
        chunks.vstack_mut(&df.slice(1_000, 2_500)).unwrap();
        chunks.vstack_mut(&df.slice(3_500, 10)).unwrap();
        let path = dir.path().join("stream.parquet");
        let mut stream = ParquetStream::create(&path, chunks.schema()).unwrap();
        stream.write(&chunks).unwrap();
        stream.finish().unwrap();
        assert_eq!(fs::read(&path).unwrap(), serial_bytes(&chunks), "a frame of several chunks, streamed");
    }

    /// The same rows make the same file however the frame holds them: in one chunk or in
    /// chunks of any sizes, its text as strings or as categoricals.
    #[test]
    fn the_same_rows_make_the_same_bytes_however_they_are_held() {
        let n = 2 * ROW_GROUP_ROWS + 777;
        let id: Vec<String> = (0..n).map(|i| format!("d{}", i / 2)).collect();
        let k: Vec<Option<&str>> = (0..n).map(|i| (i % 11 != 0).then(|| ["MLB", "NBO", "DAR"][i % 3])).collect();
        let x: Vec<f64> = (0..n).map(|i| i as f64 / 7.0).collect();
        let plain = df!("id" => &id, "k" => &k, "x" => &x).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let digest = |df: &mut DataFrame, name: &str| write_parquet(df, &dir.path().join(name)).unwrap();
        let whole = digest(&mut plain.clone(), "whole.parquet");
        // Chunks that do not fall on the row groups' edges.
        for cuts in [vec![1, 1_000, ROW_GROUP_ROWS - 3], vec![ROW_GROUP_ROWS + 5], vec![n / 3, n / 3 + 1]] {
            let mut chunked = plain.slice(0, 0);
            let mut at = 0;
            for cut in cuts.into_iter().chain([n]) {
                chunked.vstack_mut(&plain.slice(i64::try_from(at).unwrap(), cut - at)).unwrap();
                at = cut;
            }
            assert!(chunked.first_col_n_chunks() > 1);
            assert_eq!(digest(&mut chunked, "chunked.parquet"), whole, "held in chunks");
        }
        let mut coded = plain.clone();
        coded.with_column(plain.column("k").unwrap().cast(&text::categorical_type("k")).unwrap()).unwrap();
        assert!(coded.column("k").unwrap().dtype().is_categorical());
        assert_eq!(digest(&mut coded, "coded.parquet"), whole, "its text coded");
    }

    #[test]
    fn a_stream_gives_the_hash_of_the_file_it_wrote_and_writes_categoricals_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.parquet");
        let dtype = text::categorical_type("k");
        let batch = |values: [&str; 2], x: [i32; 2]| {
            DataFrame::new(2, vec![text::categorical_of(values.map(Some), "k", &dtype).unwrap(), Column::new("x".into(), x)]).unwrap()
        };
        let (a, b) = (batch(["p", "q"], [1, 2]), batch(["q", "r"], [3, 4]));
        let mut stream = ParquetStream::create(&path, a.schema()).unwrap();
        stream.write(&a).unwrap();
        stream.write(&b).unwrap();
        let digest = stream.finish().unwrap();
        assert_eq!(digest, sha256_file(&path).unwrap().0);
        assert_eq!(read_parquet(&path).unwrap(), df!("k" => ["p", "q", "q", "r"], "x" => [1, 2, 3, 4]).unwrap());
    }

    #[test]
    fn an_empty_frame_with_categoricals_is_written_and_read_back_as_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.parquet");
        let k = text::categorical_of(std::iter::empty(), "k", &text::categorical_type("k")).unwrap();
        let mut df = DataFrame::new(0, vec![k, Column::new("x".into(), Vec::<f64>::new())]).unwrap();
        write_parquet(&mut df, &path).unwrap();
        let back = read_parquet(&path).unwrap();
        assert_eq!(back.height(), 0);
        assert_eq!(back.column("k").unwrap().dtype(), &DataType::String);
    }

    #[test]
    fn projected_reads_return_the_columns_asked_for_that_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut df = df!("a" => [1, 2, 3], "b" => ["x", "y", "z"], "c" => [0.5, 1.5, 2.5]).unwrap();
        write_parquet(&mut df, &path).unwrap();
        let got = read_parquet_columns(&path, &["c", "a", "missing"]).unwrap();
        assert_eq!(got, df.select(["a", "c"]).unwrap());
        assert_eq!(parquet_rows(&path).unwrap(), 3);
    }

    #[test]
    fn parquet_round_trip_with_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        let mut df = df!("a" => ["x", "y"], "b" => [Some(1.0), None]).unwrap();
        let sha256 = write_parquet(&mut df, &path).unwrap();
        assert_eq!(sha256, sha256_file(&path).unwrap().0, "the hash taken while writing is the file's");
        let back = read_parquet(&path).unwrap();
        assert!(back.equals_missing(&df));
        let sidecar = fs::read_to_string(dir.path().join("x.schema.json")).unwrap();
        assert!(sidecar.contains("\"name\": \"b\""), "{sidecar}");
        // no temporary file is left behind
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn failed_write_leaves_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("y.bin");
        write_bytes(&path, b"committed").unwrap();
        let err = write_atomic(&path, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("injected failure"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"committed");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z.bin");
        write_bytes(&path, b"x").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
