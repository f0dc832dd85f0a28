//! The datasets of a run, between its stages.
//!
//! Every output is written to the run's temporary directory as soon as its stage ends. Whether it
//! also stays in memory depends on how the later stages read it ([`Stage::input_columns`]):
//! - a dataset some stage reads whole stays in memory (the declarations, read by most stages);
//! - a dataset every reader takes a few columns of (the row-level scores, gigabytes at ten
//!   million declarations) is dropped once written, and each reader reads its columns back from
//!   the file.
//!
//! So the memory a run holds is the declarations plus what the running stages use, not the sum
//! of every row-level output so far.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use polars::prelude::{Column, DataFrame, PlSmallStr};

use mirador_schema::{col, datasets};

use crate::check::{Plan, PlannedStage};
use crate::checks::UniqueKeys;
use crate::error::{RunError, StageError};
use crate::stage::Stage;

/// Where a dataset of the run is.
#[derive(Clone)]
enum Held {
    Memory(Arc<DataFrame>, PathBuf),
    /// Only in its parquet file.
    File(PathBuf),
}

/// The run's datasets by id (shared by the stages of a level, which run in parallel).
pub(crate) struct Store {
    held: Mutex<BTreeMap<String, Held>>,
    /// Datasets some stage of the plan reads whole.
    whole: BTreeSet<String>,
    /// Key columns the run's checks found unique.
    unique: UniqueKeys,
}

impl Store {
    pub(crate) fn new(plan: &Plan) -> Self {
        let mut whole: BTreeSet<String> =
            plan.levels.iter().flatten().flat_map(|p| p.inputs.iter().filter(|id| p.stage.input_columns(id).is_none()).cloned()).collect();
        // The declarations stay in memory for every stage that reads them, even for a few columns
        // ([`Store::narrow`] drops the columns no stage still to run reads).
        if plan.levels.iter().flatten().any(|p| p.inputs.iter().any(|id| id == datasets::DECLARATIONS)) {
            whole.insert(datasets::DECLARATIONS.to_owned());
        }
        Store { held: Mutex::new(BTreeMap::new()), whole, unique: UniqueKeys::default() }
    }

    /// Keeps, of the declarations held in memory, only the columns the stages of `remaining`
    /// read (and the keys, which the per-declaration outputs share): a column no later stage
    /// reads is freed once the stages that read it are done. Nothing changes when a remaining
    /// stage reads the declarations whole, or none reads them.
    pub(crate) fn narrow<'p>(&self, remaining: impl IntoIterator<Item = &'p PlannedStage>) -> Result<(), RunError> {
        let id = datasets::DECLARATIONS;
        let mut wanted: BTreeSet<&str> = [col::DECLARATION_ID, col::ITEM_NO].into_iter().collect();
        let mut readers = 0;
        for planned in remaining.into_iter().filter(|p| p.inputs.iter().any(|i| i == id)) {
            match planned.stage.input_columns(id) {
                Some(columns) => wanted.extend(columns),
                None => return Ok(()),
            }
            readers += 1;
        }
        if readers == 0 {
            return Ok(());
        }
        let mut held = self.lock();
        let Some(Held::Memory(df, file)) = held.get(id) else { return Ok(()) };
        let kept: Vec<PlSmallStr> = df.get_column_names().into_iter().filter(|c| wanted.contains(c.as_str())).cloned().collect();
        if kept.len() == df.width() {
            return Ok(());
        }
        let narrowed = df.select(kept).map_err(|e| RunError::Stage { stage: "runner".into(), cause: StageError::Polars(e) })?;
        let file = file.clone();
        held.insert(id.to_owned(), Held::Memory(Arc::new(narrowed), file));
        Ok(())
    }

    /// The key columns the run's checks found unique so far.
    pub(crate) fn unique_keys(&self) -> &UniqueKeys {
        &self.unique
    }

    /// Dataset `id` whole if the run keeps it in memory ([`Store::whole_frame`]), else `None`.
    pub(crate) fn kept_whole(&self, id: &str) -> Result<Option<Arc<DataFrame>>, RunError> {
        if self.keeps(id) { self.whole_frame(id) } else { Ok(None) }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Held>> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the run keeps dataset `id` in memory once written.
    pub(crate) fn keeps(&self, id: &str) -> bool {
        self.whole.contains(id)
    }

    /// The declarations in memory and their file, when the run holds both: the file a
    /// per-declaration output takes its key columns' pages from ([`mirador_io::Donor`]).
    pub(crate) fn declarations_written(&self) -> Option<(Arc<DataFrame>, PathBuf)> {
        match self.lock().get(datasets::DECLARATIONS) {
            Some(Held::Memory(df, file)) if file.is_file() => Some((Arc::clone(df), file.clone())),
            _ => None,
        }
    }

    /// The parquet file of dataset `id`, written in this run or reused from an earlier one.
    pub(crate) fn file(&self, id: &str) -> Option<PathBuf> {
        match self.lock().get(id) {
            Some(Held::Memory(_, file) | Held::File(file)) => Some(file.clone()),
            None => None,
        }
    }

    /// Records dataset `id`, just written to `path`: kept in memory if a stage reads it whole.
    pub(crate) fn insert(&self, id: &str, df: Arc<DataFrame>, path: &Path) {
        let held = if self.keeps(id) { Held::Memory(df, path.to_owned()) } else { Held::File(path.to_owned()) };
        self.lock().insert(id.to_owned(), held);
    }

    /// Records dataset `id` as its file only (an output reused from an earlier run): it is read
    /// when a stage first needs it.
    pub(crate) fn insert_file(&self, id: &str, path: &Path) {
        self.lock().insert(id.to_owned(), Held::File(path.to_owned()));
    }

    /// What `stage` reads of dataset `id`: the whole frame, or the columns it names (those the
    /// dataset has). `None` when the run has no such dataset.
    pub(crate) fn input(&self, stage: &dyn Stage, id: &str) -> Result<Option<Arc<DataFrame>>, RunError> {
        let polars = |e| RunError::Stage { stage: stage.name().into(), cause: StageError::Polars(e) };
        let held = self.lock().get(id).cloned();
        match (held, stage.input_columns(id)) {
            (None, _) => Ok(None),
            (Some(Held::Memory(df, _)), None) => Ok(Some(df)),
            (Some(Held::Memory(df, _)), Some(columns)) => Ok(Some(Arc::new(present(&df, &columns).map_err(polars)?))),
            (Some(Held::File(_)), Some(columns)) if self.keeps(id) => {
                let Some(df) = self.whole_frame(id)? else { return Ok(None) };
                Ok(Some(Arc::new(present(&df, &columns).map_err(polars)?)))
            }
            (Some(Held::File(path)), Some(columns)) => Ok(Some(Arc::new(self.read_columns(&path, &columns)?))),
            (Some(Held::File(_)), None) => self.whole_frame(id),
        }
    }

    /// Columns `columns` of the file at `path`, the declarations' key columns shared
    /// ([`Store::share_keys`]). Where the file's key columns are proven from its bytes to hold
    /// the declarations' file's keys ([`mirador_io::same_columns`]: the same bytes, as
    /// [`mirador_io::write_parquet`] writes the same keys), they are not even read.
    pub(crate) fn read_columns(&self, path: &Path, columns: &[&str]) -> Result<DataFrame, RunError> {
        let declarations = match self.lock().get(datasets::DECLARATIONS) {
            Some(Held::Memory(df, file)) if file != path => Some((Arc::clone(df), file.clone())),
            _ => None,
        };
        let keys: Vec<&str> = [col::DECLARATION_ID, col::ITEM_NO].into_iter().filter(|k| columns.contains(k)).collect();
        let given: Vec<Column> = match declarations {
            Some((declarations, file)) if !keys.is_empty() && file.is_file() => mirador_io::same_columns(&file, path, &keys)?
                .into_iter()
                .filter_map(|(name, dtype)| declarations.column(&name).ok().filter(|c| *c.dtype() == dtype).cloned())
                .collect(),
            _ => Vec::new(),
        };
        let df = if given.is_empty() {
            mirador_io::read_parquet_columns(path, columns)?
        } else {
            mirador_io::read_parquet_columns_with(path, columns, &given)?
        };
        Ok(self.share_keys(df))
    }

    /// Row-level outputs carry the declarations' keys, in the declarations' order as the stages
    /// write them. Where a frame's key columns equal those of the declarations in memory, the
    /// declarations' columns replace them, so that the keys are held once (0.3 GB per dataset
    /// at ten million rows).
    fn share_keys(&self, mut df: DataFrame) -> DataFrame {
        let Some(Held::Memory(declarations, _)) = self.lock().get(datasets::DECLARATIONS).cloned() else { return df };
        for key in [col::DECLARATION_ID, col::ITEM_NO] {
            let (Ok(own), Ok(theirs)) = (df.column(key), declarations.column(key)) else { continue };
            if mirador_schema::keys::same_arrays(own, theirs) {
                continue;
            }
            if own.dtype() == theirs.dtype() && own.as_materialized_series().equals_missing(theirs.as_materialized_series()) {
                let shared = theirs.clone();
                // Replacing a column by one of the same name and length cannot fail.
                let _ = df.with_column(shared);
            }
        }
        df
    }

    /// Dataset `id` whole, read from its file (once: a dataset read whole stays in memory).
    ///
    /// The store is not locked while the file is read: polars reads on its own threads, and a
    /// stage thread waiting for them may meanwhile run another stage's work, which may need the
    /// store (a lock held here would then deadlock). Two stages reading the same file at once
    /// would each read it, so the runner reads a level's whole inputs before starting its stages.
    pub(crate) fn whole_frame(&self, id: &str) -> Result<Option<Arc<DataFrame>>, RunError> {
        let path = match self.lock().get(id) {
            None => return Ok(None),
            Some(Held::Memory(df, _)) => return Ok(Some(Arc::clone(df))),
            Some(Held::File(path)) => path.clone(),
        };
        let df = Arc::new(if id == datasets::DECLARATIONS { read_declarations(&path)? } else { mirador_io::read_parquet(&path)? });
        if !self.keeps(id) {
            return Ok(Some(df));
        }
        let mut held = self.lock();
        if let Some(Held::Memory(first, _)) = held.get(id) {
            return Ok(Some(Arc::clone(first)));
        }
        held.insert(id.to_owned(), Held::Memory(Arc::clone(&df), path));
        Ok(Some(df))
    }

    /// Reads into memory, now, the inputs `stages` read whole that are only in their files.
    pub(crate) fn load_whole_inputs<'p>(&self, stages: impl IntoIterator<Item = &'p PlannedStage>) -> Result<(), RunError> {
        for planned in stages {
            for id in planned.inputs.iter().filter(|id| planned.stage.input_columns(id).is_none() || self.keeps(id)) {
                self.whole_frame(id)?;
            }
        }
        Ok(())
    }
}

/// The columns of `df` among `columns`, in `df`'s order.
fn present(df: &DataFrame, columns: &[&str]) -> polars::prelude::PolarsResult<DataFrame> {
    df.select(df.get_column_names().into_iter().map(PlSmallStr::as_str).filter(|c| columns.contains(c)))
}

/// Text columns of the declarations read from their file at a time by [`read_declarations`].
const TEXT_BATCH: usize = 4;

/// The declarations' file at `path` read as ingest holds the declarations ([`as_ingested`]), the
/// text columns a few at a time ([`TEXT_BATCH`]) and each batch coded before the next is read:
/// as strings, all the text would take about three gigabytes at ten million rows.
fn read_declarations(path: &Path) -> Result<DataFrame, RunError> {
    let parquet = |source| mirador_io::IoError::Parquet { path: path.to_owned(), source };
    let names: Vec<String> = mirador_io::read_parquet_slice(path, None, 0, 0)?.get_column_names().iter().map(ToString::to_string).collect();
    let (text, rest): (Vec<&str>, Vec<&str>) =
        names.iter().map(String::as_str).partition(|n| mirador_schema::schemas::DECLARATION_CATEGORICALS.contains(n));
    let mut columns: Vec<Column> = mirador_io::read_parquet_columns(path, &rest)?.into_columns();
    for batch in text.chunks(TEXT_BATCH) {
        columns.extend(as_ingested(mirador_io::read_parquet_columns(path, batch)?).map_err(parquet)?.into_columns());
    }
    // In the file's order.
    columns.sort_by_key(|c| names.iter().position(|n| n == c.name().as_str()));
    DataFrame::new(mirador_io::parquet_rows(path)?, columns).map_err(|e| parquet(e).into())
}

/// Declarations read back from their file, held as ingest holds them: the text columns of
/// [`mirador_schema::schemas::DECLARATION_CATEGORICALS`] as categoricals, with codes as narrow as
/// their values allow (same values, a sixteenth to a quarter of the memory). So a stage run on
/// reused declarations (`--only`, `--from`) reads them as it does in a whole run, where ingest
/// hands them over.
fn as_ingested(df: DataFrame) -> polars::prelude::PolarsResult<DataFrame> {
    use mirador_schema::text;
    use rayon::prelude::*;
    let columns = df
        .columns()
        .par_iter()
        .map(|c| match c.str() {
            Ok(values) if mirador_schema::schemas::DECLARATION_CATEGORICALS.contains(&c.name().as_str()) => {
                text::narrowed(&text::categorical_of(values.iter(), c.name(), &text::categorical_type(c.name()))?)
            }
            _ => Ok(c.clone()),
        })
        .collect::<polars::prelude::PolarsResult<Vec<_>>>()?;
    DataFrame::new(df.height(), columns)
}

#[cfg(test)]
mod tests {
    use polars::prelude::*;

    use super::*;
    use crate::stage::{StageContext, StageOutput};

    struct Reads;
    impl Stage for Reads {
        fn name(&self) -> &'static str {
            "reads"
        }
        fn inputs(&self) -> &'static [&'static str] {
            &["scores"]
        }
        fn input_columns(&self, _: &str) -> Option<Vec<&'static str>> {
            Some(vec![col::DECLARATION_ID, col::ITEM_NO, "score"])
        }
        fn outputs(&self) -> &'static [&'static str] {
            &[]
        }
        fn run(&self, _: &StageContext) -> Result<StageOutput, StageError> {
            Ok(StageOutput::new())
        }
    }

    /// Reads `declarations` whole.
    struct Whole;
    impl Stage for Whole {
        fn name(&self) -> &'static str {
            "whole"
        }
        fn inputs(&self) -> &'static [&'static str] {
            &[datasets::DECLARATIONS]
        }
        fn outputs(&self) -> &'static [&'static str] {
            &[]
        }
        fn run(&self, _: &StageContext) -> Result<StageOutput, StageError> {
            Ok(StageOutput::new())
        }
    }

    #[test]
    fn a_file_read_whole_by_a_level_is_read_once_before_its_stages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("declarations.parquet");
        let mut declarations =
            df!(col::DECLARATION_ID => ["a", "b"], col::ITEM_NO => [1, 1], col::IMPORTER_ID => [Some("IM1"), None]).unwrap();
        mirador_io::write_parquet(&mut declarations, &path).unwrap();
        let level: Vec<PlannedStage> = (0..2)
            .map(|i| PlannedStage { stage: Box::new(Whole), spec_index: i, inputs: vec![datasets::DECLARATIONS.to_owned()] })
            .collect();
        let plan = Plan { levels: vec![level], producers: BTreeMap::new() };
        let store = Store::new(&plan);
        store.insert_file(datasets::DECLARATIONS, &path);
        store.load_whole_inputs(&plan.levels[0]).unwrap();
        // Read before the stages: they no longer need the file.
        std::fs::remove_file(&path).unwrap();
        let read = || store.input(&Whole, datasets::DECLARATIONS).unwrap().unwrap();
        let (a, b) = (read(), read());
        assert!(Arc::ptr_eq(&a, &b), "both stages get the one copy read before them");
        // Held as ingest holds them: the categorical text columns as categoricals.
        assert!(a.column(col::IMPORTER_ID).unwrap().dtype().is_categorical());
        assert!(matches!(mirador_schema::text::Cats::of(a.column(col::IMPORTER_ID).unwrap()), Some(mirador_schema::text::Cats::U8(_))));
        assert_eq!(a.column(col::DECLARATION_ID).unwrap().dtype(), &DataType::String);
        let text = a.column(col::IMPORTER_ID).unwrap().cast(&DataType::String).unwrap();
        assert_eq!(DataFrame::clone(&a).with_column(text).unwrap().clone(), declarations);
    }

    fn first_chunk(df: &DataFrame, name: &str) -> *const u8 {
        std::ptr::from_ref(df.column(name).unwrap().as_materialized_series().chunks()[0].as_ref()).cast()
    }

    /// A store that keeps the declarations in memory, as a run whose stages read them whole.
    fn keeping_declarations() -> Store {
        Store {
            held: Mutex::new(BTreeMap::new()),
            whole: BTreeSet::from([datasets::DECLARATIONS.to_owned()]),
            unique: UniqueKeys::default(),
        }
    }

    #[test]
    fn keys_proven_equal_from_the_files_bytes_are_shared_unread() {
        let dir = tempfile::tempdir().unwrap();
        let store = keeping_declarations();
        let mut declarations = df!(col::DECLARATION_ID => ["a", "a", "b"], col::ITEM_NO => [1, 2, 1], "x" => [1.0, 2.0, 3.0]).unwrap();
        let path = dir.path().join("declarations.parquet");
        mirador_io::write_parquet(&mut declarations, &path).unwrap();
        let declarations = Arc::new(declarations);
        store.insert(datasets::DECLARATIONS, Arc::clone(&declarations), &path);
        // The same keys; one item number differing (its declaration_id is still proven).
        for (items, shared_items) in [([1, 2, 1], true), ([1, 2, 2], false)] {
            let path = dir.path().join("scores.parquet");
            let mut scores = df!("score" => [0.1, 0.2, 0.3], col::DECLARATION_ID => ["a", "a", "b"], col::ITEM_NO => items).unwrap();
            mirador_io::write_parquet(&mut scores, &path).unwrap();
            store.insert_file("scores", &path);
            let got = store.input(&Reads, "scores").unwrap().unwrap();
            assert_eq!(*got, scores, "items {items:?}");
            let shared = |name| first_chunk(&got, name) == first_chunk(&declarations, name);
            assert!(shared(col::DECLARATION_ID));
            assert_eq!(shared(col::ITEM_NO), shared_items, "items {items:?}");
        }
    }

    #[test]
    fn projected_reads_share_the_declarations_keys_when_they_are_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = keeping_declarations();
        let declarations =
            Arc::new(df!(col::DECLARATION_ID => ["a", "a", "b"], col::ITEM_NO => [1, 2, 1], "x" => [1.0, 2.0, 3.0]).unwrap());
        store.insert(datasets::DECLARATIONS, Arc::clone(&declarations), &dir.path().join("declarations.parquet"));
        for (ids, shared) in [(["a", "a", "b"], true), (["a", "b", "b"], false)] {
            let path = dir.path().join("scores.parquet");
            let mut scores =
                df!(col::DECLARATION_ID => ids, col::ITEM_NO => [1, 2, 1], "score" => [0.1, 0.2, 0.3], "other" => [1, 2, 3]).unwrap();
            mirador_io::write_parquet(&mut scores, &path).unwrap();
            store.insert("scores", Arc::new(scores.clone()), &path);
            let got = store.input(&Reads, "scores").unwrap().unwrap();
            assert_eq!(*got, scores.select([col::DECLARATION_ID, col::ITEM_NO, "score"]).unwrap());
            let same = first_chunk(&got, col::DECLARATION_ID) == first_chunk(&declarations, col::DECLARATION_ID);
            assert_eq!(same, shared, "keys {ids:?}");
            assert!(first_chunk(&got, col::ITEM_NO) == first_chunk(&declarations, col::ITEM_NO));
        }
    }
}
