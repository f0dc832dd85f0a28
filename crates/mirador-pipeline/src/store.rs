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

use polars::prelude::{DataFrame, PlSmallStr};

use crate::check::Plan;
use crate::error::{RunError, StageError};
use crate::stage::Stage;

/// Where a dataset of the run is.
#[derive(Clone)]
enum Held {
    Memory(Arc<DataFrame>),
    /// Only in its parquet file.
    File(PathBuf),
}

/// The run's datasets by id (shared by the stages of a level, which run in parallel).
pub(crate) struct Store {
    held: Mutex<BTreeMap<String, Held>>,
    /// Datasets some stage of the plan reads whole.
    whole: BTreeSet<String>,
}

impl Store {
    pub(crate) fn new(plan: &Plan) -> Self {
        let whole =
            plan.levels.iter().flatten().flat_map(|p| p.inputs.iter().filter(|id| p.stage.input_columns(id).is_none()).cloned()).collect();
        Store { held: Mutex::new(BTreeMap::new()), whole }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Held>> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the run keeps dataset `id` in memory once written.
    pub(crate) fn keeps(&self, id: &str) -> bool {
        self.whole.contains(id)
    }

    /// Records dataset `id`, just written to `path`: kept in memory if a stage reads it whole.
    pub(crate) fn insert(&self, id: &str, df: Arc<DataFrame>, path: &Path) {
        let held = if self.keeps(id) { Held::Memory(df) } else { Held::File(path.to_owned()) };
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
            (Some(Held::Memory(df)), None) => Ok(Some(df)),
            (Some(Held::Memory(df)), Some(columns)) => {
                let present: Vec<&str> =
                    df.get_column_names().into_iter().map(PlSmallStr::as_str).filter(|c| columns.contains(c)).collect();
                Ok(Some(Arc::new(df.select(present).map_err(polars)?)))
            }
            (Some(Held::File(path)), Some(columns)) => Ok(Some(Arc::new(mirador_io::read_parquet_columns(&path, &columns)?))),
            (Some(Held::File(_)), None) => self.whole_frame(id),
        }
    }

    /// Dataset `id` whole, read from its file (once: a dataset read whole stays in memory).
    pub(crate) fn whole_frame(&self, id: &str) -> Result<Option<Arc<DataFrame>>, RunError> {
        // Held while reading, so that parallel stages wanting the same file read it once.
        let mut held = self.lock();
        match held.get(id) {
            None => Ok(None),
            Some(Held::Memory(df)) => Ok(Some(Arc::clone(df))),
            Some(Held::File(path)) => {
                let df = Arc::new(mirador_io::read_parquet(path)?);
                if self.keeps(id) {
                    held.insert(id.to_owned(), Held::Memory(Arc::clone(&df)));
                }
                Ok(Some(df))
            }
        }
    }
}
