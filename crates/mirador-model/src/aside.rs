//! The walk's features set aside: every scored row's history and signal values, block by block,
//! written to a scratch file while the model is trained and read back one block at a time as the
//! rows are walked down the trees.
//!
//! At ten million declarations those values take about a gigabyte, and training, the challengers
//! and the held-out evaluation need none of them (they read the labelled rows' values, gathered
//! first). Held in memory, they would sit beside training's own memory for the whole of it. The
//! file is unnamed (it is gone when closed, and after a crash) and lies in the run's temporary
//! directory, on the disk of the outputs, not in memory-backed storage.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

use crate::ModelError;
use crate::explain::TopReasons;
use crate::history::Values;

/// One walk block's history and signal columns.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct BlockFeatures {
    /// The block's rows of each history column, in [`crate::history::History::feature_names`] order.
    pub(crate) history_columns: Vec<Values>,
    /// The block's rows of each signal, by feature name.
    pub(crate) signals: BTreeMap<String, Vec<f64>>,
}

/// Every walk block's features, in memory or in a scratch file ([`WalkFeatures::take`]).
pub(crate) struct WalkFeatures {
    blocks: Vec<Range<usize>>,
    store: Store,
}

enum Store {
    Memory(Vec<BlockFeatures>),
    File {
        file: File,
        /// By column (the history columns, then the signals), each block's first byte in the file.
        offsets: Vec<Vec<u64>>,
        /// Whether each history column holds counts (four bytes a value) or floats (eight).
        counts: Vec<bool>,
        /// The signals' names, in the order they are written.
        signals: Vec<String>,
    },
}

impl WalkFeatures {
    /// The rows of `blocks` of every history column and signal, moved into memory block by block
    /// (rows past a column's end are left out). Column `keep` of `history_columns` stays whole
    /// and its blocks are copies; the other columns and the signals are emptied.
    pub(crate) fn in_memory(
        history_columns: &mut [Values],
        signals: &mut BTreeMap<String, Vec<f64>>,
        keep: Option<usize>,
        blocks: Vec<Range<usize>>,
    ) -> WalkFeatures {
        let mut out: Vec<BlockFeatures> = blocks.iter().map(|_| BlockFeatures::default()).collect();
        for (at, column) in history_columns.iter_mut().enumerate() {
            let taken = (Some(at) != keep).then(|| std::mem::replace(column, Values::Floats(Vec::new())));
            let whole = taken.as_ref().unwrap_or(column);
            for (piece, block) in out.iter_mut().zip(&blocks) {
                piece.history_columns.push(whole.slice(block.clone()));
            }
        }
        for (name, values) in std::mem::take(signals) {
            for (piece, block) in out.iter_mut().zip(&blocks) {
                piece.signals.insert(name.clone(), values.get(block.clone()).map(<[f64]>::to_vec).unwrap_or_default());
            }
        }
        WalkFeatures { blocks, store: Store::Memory(out) }
    }

    /// As [`WalkFeatures::in_memory`], but the blocks are written to an unnamed file in `dir`,
    /// a column at a time, and each column is freed once written: only column `keep` stays in
    /// memory. Before a column goes, its values at rows `gather` are kept: the labelled rows'
    /// history and signal values (as [`gather`] gives them) are returned beside the blocks.
    pub(crate) fn set_aside(
        history_columns: &mut [Values],
        signals: &mut BTreeMap<String, Vec<f64>>,
        keep: Option<usize>,
        blocks: Vec<Range<usize>>,
        dir: &Path,
        gather: &[usize],
    ) -> Result<(WalkFeatures, Gathered), ModelError> {
        let failed = |e: std::io::Error| ModelError::Data(format!("setting the scored rows' features aside in {}: {e}", dir.display()));
        let mut file = tempfile::tempfile_in(dir).map_err(failed)?;
        let counts: Vec<bool> = history_columns.iter().map(|c| matches!(c, Values::Counts(_))).collect();
        let names: Vec<String> = signals.keys().cloned().collect();
        let mut offsets = Vec::with_capacity(counts.len() + names.len());
        let mut written = 0u64;
        let mut bytes = Vec::new();
        let mut write = |bytes: &mut Vec<u8>, put: &dyn Fn(&mut Vec<u8>, &Range<usize>)| -> Result<Vec<u64>, ModelError> {
            let mut at = Vec::with_capacity(blocks.len());
            for block in &blocks {
                at.push(written);
                bytes.clear();
                put(bytes, block);
                file.write_all(bytes).map_err(failed)?;
                written += bytes.len() as u64;
            }
            Ok(at)
        };
        let mut gathered = Gathered::default();
        for (at, column) in history_columns.iter_mut().enumerate() {
            gathered.history.push(gathered_history(column, gather));
            offsets.push(match &*column {
                Values::Counts(v) => write(&mut bytes, &|b, block| put(b, v, block, u32::to_le_bytes))?,
                Values::Floats(v) => write(&mut bytes, &|b, block| put(b, v, block, f64::to_le_bytes))?,
            });
            if Some(at) != keep {
                *column = Values::Floats(Vec::new());
            }
        }
        for (name, values) in std::mem::take(signals) {
            gathered.signals.insert(name, gathered_signal(&values, gather));
            offsets.push(write(&mut bytes, &|b, block| put(b, &values, block, f64::to_le_bytes))?);
        }
        file.flush().map_err(failed)?;
        Ok((WalkFeatures { blocks, store: Store::File { file, offsets, counts, signals: names } }, gathered))
    }

    /// The blocks, in order.
    pub(crate) fn blocks(&self) -> &[Range<usize>] {
        &self.blocks
    }

    /// Block `k`'s features: empty out of range, and for a block held in memory once taken.
    pub(crate) fn take(&mut self, k: usize) -> Result<BlockFeatures, ModelError> {
        let Some(rows) = self.blocks.get(k).map(ExactSizeIterator::len) else { return Ok(BlockFeatures::default()) };
        match &mut self.store {
            Store::Memory(blocks) => Ok(blocks.get_mut(k).map(std::mem::take).unwrap_or_default()),
            Store::File { file, offsets, counts, signals } => {
                let failed = |e: std::io::Error| ModelError::Data(format!("reading back the scored rows' features: {e}"));
                let mut column = |c: usize, width: usize| -> Result<Vec<u8>, ModelError> {
                    let start = offsets.get(c).and_then(|at| at.get(k)).copied().unwrap_or(0);
                    let mut bytes = vec![0u8; rows * width];
                    file.seek(SeekFrom::Start(start)).map_err(failed)?;
                    file.read_exact(&mut bytes).map_err(failed)?;
                    Ok(bytes)
                };
                let mut history_columns = Vec::with_capacity(counts.len());
                for (c, &count) in counts.iter().enumerate() {
                    history_columns.push(if count {
                        Values::Counts(column(c, 4)?.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
                    } else {
                        Values::Floats(floats(&column(c, 8)?))
                    });
                }
                let mut read = BTreeMap::new();
                for (s, name) in signals.iter().enumerate() {
                    read.insert(name.clone(), floats(&column(counts.len() + s, 8)?));
                }
                Ok(BlockFeatures { history_columns, signals: read })
            }
        }
    }
}

/// The labelled rows' history and signal values, gathered in the order given
/// ([`WalkFeatures::set_aside`], [`gather`]): each history column as floats, NaN past a
/// column's end.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Gathered {
    pub(crate) history: Vec<Values>,
    pub(crate) signals: BTreeMap<String, Vec<f64>>,
}

/// The history and signal values of rows `idx`, as [`WalkFeatures::set_aside`] gathers them.
pub(crate) fn gather(history_columns: &[Values], signals: &BTreeMap<String, Vec<f64>>, idx: &[usize]) -> Gathered {
    Gathered {
        history: history_columns.iter().map(|c| gathered_history(c, idx)).collect(),
        signals: signals.iter().map(|(name, v)| (name.clone(), gathered_signal(v, idx))).collect(),
    }
}

/// Rows `idx` of a history column, as floats (NaN past its end).
fn gathered_history(column: &Values, idx: &[usize]) -> Values {
    Values::Floats(idx.iter().map(|&i| column.get(i)).collect())
}

/// Rows `idx` of a signal (NaN past its end).
fn gathered_signal(values: &[f64], idx: &[usize]) -> Vec<f64> {
    idx.iter().map(|&i| values.get(i).copied().unwrap_or(f64::NAN)).collect()
}

/// The walked rows' reasons set aside in an unnamed file, in row order, until their text is
/// written: at ten million declarations they take 0.6 GB, and are all known only once every row
/// is walked (the text waits for the rows' order in the inspection lists).
pub(crate) struct ReasonsAside {
    file: std::sync::Mutex<File>,
    /// Reasons per row.
    k: usize,
    /// Rows written so far.
    rows: usize,
}

impl ReasonsAside {
    /// An empty file in `dir` for `k` reasons per row.
    pub(crate) fn new(dir: &Path, k: usize) -> Result<ReasonsAside, ModelError> {
        let file = tempfile::tempfile_in(dir)
            .map_err(|e| ModelError::Data(format!("setting the walked rows' reasons aside in {}: {e}", dir.display())))?;
        Ok(ReasonsAside { file: std::sync::Mutex::new(file), k, rows: 0 })
    }

    /// Bytes of one row: `k` features, contributions and values.
    fn width(&self) -> usize {
        self.k * (2 + 8 + 8)
    }

    /// Appends the rows of `reasons` (`k` slots per row) and empties it.
    pub(crate) fn push(&mut self, reasons: &mut TopReasons) -> Result<(), ModelError> {
        let k = self.k.max(1);
        let rows = reasons.feature.len() / k;
        let mut bytes = Vec::with_capacity(rows * self.width());
        for row in 0..rows {
            let slots = row * k..(row + 1) * k;
            for (slot, f) in reasons.feature.get(slots.clone()).unwrap_or_default().iter().enumerate() {
                bytes.extend_from_slice(&f.to_le_bytes());
                bytes.extend_from_slice(&reasons.contribution.get(row * k + slot).copied().unwrap_or(0.0).to_le_bytes());
                bytes.extend_from_slice(&reasons.value.get(row * k + slot).copied().unwrap_or(0.0).to_le_bytes());
            }
        }
        let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        file.write_all(&bytes).map_err(|e| ModelError::Data(format!("setting the walked rows' reasons aside: {e}")))?;
        self.rows += rows;
        reasons.feature.clear();
        reasons.contribution.clear();
        reasons.value.clear();
        Ok(())
    }

    /// Rows `rows` of those pushed (counted from the first), read back.
    pub(crate) fn read(&self, rows: Range<usize>) -> Result<TopReasons, ModelError> {
        let failed = |e: std::io::Error| ModelError::Data(format!("reading back the walked rows' reasons: {e}"));
        let rows = rows.start.min(self.rows)..rows.end.min(self.rows);
        let mut bytes = vec![0u8; rows.len() * self.width()];
        {
            let mut file = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            file.seek(SeekFrom::Start((rows.start * self.width()) as u64)).map_err(failed)?;
            file.read_exact(&mut bytes).map_err(failed)?;
        }
        let slots = rows.len() * self.k;
        let mut out =
            TopReasons { feature: Vec::with_capacity(slots), contribution: Vec::with_capacity(slots), value: Vec::with_capacity(slots) };
        for slot in bytes.chunks_exact(18) {
            out.feature.push(u16::from_le_bytes([slot[0], slot[1]]));
            out.contribution.push(le_f64(&slot[2..10]));
            out.value.push(le_f64(&slot[10..18]));
        }
        Ok(out)
    }
}

/// Appends the little-endian bytes of rows `block` of `values` to `bytes`; rows past the end
/// of `values` are written as zero bytes, so that every block of a column has its rows' bytes
/// (a column is as long as the frame, so this does not occur).
fn put<T: Copy, const N: usize>(bytes: &mut Vec<u8>, values: &[T], block: &Range<usize>, le: impl Fn(T) -> [u8; N]) {
    let start = bytes.len();
    bytes.resize(start + block.len() * N, 0);
    let rows = values.get(block.start.min(values.len())..block.end.min(values.len())).unwrap_or_default();
    for (slot, &v) in bytes[start..].chunks_exact_mut(N).zip(rows) {
        slot.copy_from_slice(&le(v));
    }
}

fn floats(bytes: &[u8]) -> Vec<f64> {
    bytes.chunks_exact(8).map(le_f64).collect()
}

/// The float of eight little-endian bytes (0 from fewer).
fn le_f64(b: &[u8]) -> f64 {
    b.try_into().map_or(0.0, f64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> (Vec<Values>, BTreeMap<String, Vec<f64>>) {
        let history = vec![
            Values::Counts((0..10).collect()),
            Values::Floats((0..10).map(|i| f64::from(i) / 3.0).collect()),
            Values::Counts((0..10).map(|i| i * 7).collect()),
        ];
        let signals = BTreeMap::from([
            ("b".to_owned(), (0..10).map(|i| if i % 4 == 0 { f64::NAN } else { -f64::from(i) }).collect()),
            ("a".to_owned(), (0..10).map(|i| f64::from(i) * 1e300).collect()),
        ]);
        (history, signals)
    }

    fn blocks() -> Vec<Range<usize>> {
        vec![0..4, 4..8, 8..10]
    }

    /// NaN-aware comparison of two blocks' features.
    fn same(a: &BlockFeatures, b: &BlockFeatures) -> bool {
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        a.history_columns.len() == b.history_columns.len()
            && a.history_columns.iter().zip(&b.history_columns).all(|(x, y)| match (x, y) {
                (Values::Counts(x), Values::Counts(y)) => x == y,
                (Values::Floats(x), Values::Floats(y)) => bits(x) == bits(y),
                _ => false,
            })
            && a.signals.keys().eq(b.signals.keys())
            && a.signals.values().zip(b.signals.values()).all(|(x, y)| bits(x) == bits(y))
    }

    #[test]
    fn blocks_set_aside_in_a_file_read_back_as_those_held_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (mut h1, mut s1) = columns();
        let (mut h2, mut s2) = columns();
        let labelled = [9, 0, 4, 4];
        let expected = gather(&h1, &s1, &labelled);
        let mut memory = WalkFeatures::in_memory(&mut h1, &mut s1, Some(1), blocks());
        let (mut file, gathered) = WalkFeatures::set_aside(&mut h2, &mut s2, Some(1), blocks(), dir.path(), &labelled).unwrap();
        assert_eq!(format!("{gathered:?}"), format!("{expected:?}"));
        assert_eq!(gathered.history[2], Values::Floats(vec![63.0, 0.0, 28.0, 28.0]));
        assert_eq!(memory.blocks(), file.blocks());
        for k in 0..3 {
            let (a, b) = (memory.take(k).unwrap(), file.take(k).unwrap());
            assert_eq!(a.history_columns.first().map(|c| c.range(0..1)), Some(vec![(k * 4) as f64]));
            assert!(same(&a, &b), "block {k}: {a:?} against {b:?}");
        }
        // Column 1 is kept whole; the others and the signals are freed either way.
        assert_eq!(h1, h2);
        assert_eq!(h2[1], columns().0[1]);
        assert_eq!((h2[0].range(0..10).len(), h2[2].range(0..10).len()), (0, 0));
        assert!(s1.is_empty() && s2.is_empty());
        // Nothing is left in the directory: the file is unnamed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_block_taken_twice_or_past_the_last_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (mut h, mut s) = columns();
        let mut memory = WalkFeatures::in_memory(&mut h.clone(), &mut s.clone(), None, blocks());
        let (mut file, _) = WalkFeatures::set_aside(&mut h, &mut s, None, blocks(), dir.path(), &[]).unwrap();
        assert!(memory.take(0).unwrap().history_columns.len() == 3);
        assert_eq!(memory.take(0).unwrap(), BlockFeatures::default());
        assert_eq!(memory.take(3).unwrap(), BlockFeatures::default());
        assert_eq!(file.take(3).unwrap(), BlockFeatures::default());
    }

    #[test]
    fn reasons_read_back_as_they_were_pushed_across_pushes() {
        let dir = tempfile::tempdir().unwrap();
        let k = 2;
        let reasons = |rows: std::ops::Range<usize>| TopReasons {
            feature: rows.clone().flat_map(|r| [r as u16, u16::MAX]).collect(),
            contribution: rows.clone().flat_map(|r| [r as f64 / 7.0, 0.0]).collect(),
            value: rows.flat_map(|r| [if r % 3 == 0 { f64::NAN } else { -(r as f64) }, 0.0]).collect(),
        };
        let mut aside = ReasonsAside::new(dir.path(), k).unwrap();
        let (mut first, mut second) = (reasons(0..5), reasons(5..9));
        aside.push(&mut first).unwrap();
        aside.push(&mut second).unwrap();
        assert!(first.feature.is_empty() && second.contribution.is_empty());
        let read = aside.read(3..7).unwrap();
        let want = reasons(3..7);
        assert_eq!(read.feature, want.feature);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&read.contribution), bits(&want.contribution));
        assert_eq!(bits(&read.value), bits(&want.value));
        // Past the last row pushed there is nothing.
        assert_eq!(aside.read(8..20).unwrap().feature, vec![8, u16::MAX]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_that_cannot_hold_the_file_is_an_error_naming_it() {
        let (mut h, mut s) = columns();
        let missing = Path::new("/nonexistent/mirador-scratch");
        let err = WalkFeatures::set_aside(&mut h, &mut s, None, blocks(), missing, &[1]).err().unwrap();
        assert!(err.to_string().contains("/nonexistent/mirador-scratch"), "{err}");
    }
}
