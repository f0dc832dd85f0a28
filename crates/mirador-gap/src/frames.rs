//! The stage's output frames.

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::FixedState;

use mirador_schema::catalog::{gap_by_cell, gap_by_chapter, gap_by_partner, gap_summary, mirror_exposure};
use mirador_schema::col;
use mirador_schema::text::{Coded, Text};
use polars::prelude::*;

use crate::PeriodGrain;
use crate::cells::Cell;
use crate::factor::Factors;

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

/// Ranking priority: lost duty weighted by quantity agreement; immaterial cells rank last.
fn priority(c: &Cell) -> f64 {
    if c.material { c.lost_duty * c.quantity_weight } else { 0.0 }
}

/// `gap_by_cell`, ordered by rank (1 = the cell with the most duty at stake).
pub(crate) fn by_cell(cells: &[Cell]) -> PolarsResult<DataFrame> {
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by(|&a, &b| {
        let (ca, cb) = (&cells[a], &cells[b]);
        cb.material
            .cmp(&ca.material)
            .then(priority(cb).total_cmp(&priority(ca)))
            .then(cb.lost_duty.total_cmp(&ca.lost_duty))
            .then(a.cmp(&b))
    });
    let c: Vec<&Cell> = order.iter().map(|&i| &cells[i]).collect();
    let f64s = |f: &dyn Fn(&Cell) -> f64| c.iter().map(|x| f(x)).collect::<Vec<f64>>();
    let opt = |f: &dyn Fn(&Cell) -> Option<f64>| c.iter().map(|x| f(x)).collect::<Vec<Option<f64>>>();
    DataFrame::new_infer_height(vec![
        Column::new(gap_by_cell::GAP_RANK.into(), (1..=c.len() as u32).collect::<Vec<_>>()),
        Column::new(col::HS6.into(), c.iter().map(|x| x.key.0.clone()).collect::<Vec<_>>()),
        Column::new(col::HS2.into(), c.iter().map(|x| x.key.0[..2].to_owned()).collect::<Vec<_>>()),
        Column::new(col::REPORTER.into(), c.iter().map(|x| x.key.1.clone()).collect::<Vec<_>>()),
        Column::new(col::PARTNER.into(), c.iter().map(|x| x.key.2.clone()).collect::<Vec<_>>()),
        Column::new(col::PERIOD.into(), c.iter().map(|x| x.key.3.clone()).collect::<Vec<_>>()),
        Column::new(gap_by_cell::DECLARED_VALUE_USD.into(), f64s(&|x| x.declared.value)),
        Column::new(gap_by_cell::DECLARED_WEIGHT_KG.into(), f64s(&|x| x.declared.weight)),
        Column::new(gap_by_cell::MIRROR_FOB_USD.into(), opt(&|x| x.mirror_cif.map(|_| x.mirror_fob.value))),
        Column::new(gap_by_cell::MIRROR_WEIGHT_KG.into(), opt(&|x| x.mirror_cif.map(|_| x.mirror_fob.weight))),
        Column::new(gap_by_cell::CIF_FOB_FACTOR.into(), f64s(&|x| x.factor)),
        Column::new(gap_by_cell::MIRROR_CIF_USD.into(), opt(&|x| x.mirror_cif)),
        Column::new(gap_by_cell::MIRROR_CIF_LOW_USD.into(), opt(&|x| x.mirror_cif_low)),
        Column::new(gap_by_cell::MIRROR_CIF_HIGH_USD.into(), opt(&|x| x.mirror_cif_high)),
        Column::new(gap_by_cell::VALUE_GAP_USD.into(), opt(&Cell::gap)),
        Column::new(gap_by_cell::GAP_SHARE_OF_MIRROR.into(), opt(&|x| x.gap().zip(x.mirror_cif).and_then(|(g, m)| ratio(g, m)))),
        Column::new(gap_by_cell::WEIGHT_GAP_KG.into(), opt(&|x| x.mirror_cif.map(|_| x.mirror_fob.weight - x.declared.weight))),
        Column::new(gap_by_cell::DECLARED_UNIT_VALUE_USD_PER_KG.into(), opt(&|x| ratio(x.declared.value, x.declared.weight))),
        Column::new(gap_by_cell::MIRROR_UNIT_VALUE_USD_PER_KG.into(), opt(&|x| x.mirror_cif.and_then(|m| ratio(m, x.mirror_fob.weight)))),
        Column::new(
            gap_by_cell::UNIT_VALUE_RATIO.into(),
            opt(&|x| {
                let d = ratio(x.declared.value, x.declared.weight)?;
                let m = ratio(x.mirror_cif?, x.mirror_fob.weight)?;
                ratio(d, m)
            }),
        ),
        Column::new(gap_by_cell::RATE_PCT.into(), opt(&|x| x.rate_pct)),
        Column::new(gap_by_cell::TARIFF_REGIME.into(), c.iter().map(|x| x.regime.clone()).collect::<Vec<_>>()),
        Column::new(gap_by_cell::LOST_DUTY_USD.into(), f64s(&|x| x.lost_duty)),
        Column::new(gap_by_cell::LOST_DUTY_LOW_USD.into(), f64s(&|x| x.lost_duty_low)),
        Column::new(gap_by_cell::LOST_DUTY_HIGH_USD.into(), f64s(&|x| x.lost_duty_high)),
        Column::new(gap_by_cell::QUANTITY_WEIGHT.into(), f64s(&|x| x.quantity_weight)),
        Column::new(gap_by_cell::PRIORITY_USD.into(), f64s(&priority)),
        Column::new(gap_by_cell::MATERIAL.into(), c.iter().map(|x| x.material).collect::<Vec<_>>()),
        Column::new(gap_by_cell::FLAGS.into(), c.iter().map(|x| x.flags.join(";")).collect::<Vec<_>>()),
    ])
}

#[derive(Default)]
struct Totals {
    declared: f64,
    mirror_cif: f64,
    gap: f64,
    positive_gap: f64,
    lost: f64,
    low: f64,
    high: f64,
    cells: u32,
    positive_cells: u32,
    unmirrored_declared: f64,
}

impl Totals {
    fn add(&mut self, c: &Cell) {
        self.declared += c.declared.value;
        self.cells += 1;
        match c.gap() {
            Some(g) => {
                self.mirror_cif += c.mirror_cif.unwrap_or(0.0);
                self.gap += g;
                self.positive_gap += g.max(0.0);
                self.positive_cells += u32::from(g > 0.0);
            }
            None => self.unmirrored_declared += c.declared.value,
        }
        self.lost += c.lost_duty;
        self.low += c.lost_duty_low;
        self.high += c.lost_duty_high;
    }
}

fn totals_columns(t: &[&Totals]) -> Vec<Column> {
    let f = |g: &dyn Fn(&Totals) -> f64| t.iter().map(|x| g(x)).collect::<Vec<f64>>();
    vec![
        Column::new(gap_by_cell::DECLARED_VALUE_USD.into(), f(&|x| x.declared)),
        Column::new(gap_by_cell::MIRROR_CIF_USD.into(), f(&|x| x.mirror_cif)),
        Column::new(gap_by_cell::VALUE_GAP_USD.into(), f(&|x| x.gap)),
        Column::new(gap_by_chapter::POSITIVE_GAP_USD.into(), f(&|x| x.positive_gap)),
        Column::new(gap_by_cell::LOST_DUTY_USD.into(), f(&|x| x.lost)),
        Column::new(gap_by_cell::LOST_DUTY_LOW_USD.into(), f(&|x| x.low)),
        Column::new(gap_by_cell::LOST_DUTY_HIGH_USD.into(), f(&|x| x.high)),
        Column::new(gap_by_chapter::DECLARED_VALUE_WITHOUT_MIRROR_USD.into(), f(&|x| x.unmirrored_declared)),
        Column::new(gap_by_chapter::CELLS.into(), t.iter().map(|x| x.cells).collect::<Vec<_>>()),
        Column::new(gap_by_chapter::CELLS_WITH_POSITIVE_GAP.into(), t.iter().map(|x| x.positive_cells).collect::<Vec<_>>()),
    ]
}

/// Totals per `group(cell)` × period, largest lost duty first.
pub(crate) fn by_group(cells: &[Cell], group: impl Fn(&Cell) -> String, name: &str) -> PolarsResult<DataFrame> {
    let mut acc: BTreeMap<(String, String), Totals> = BTreeMap::new();
    for c in cells {
        acc.entry((group(c), c.key.3.clone())).or_default().add(c);
    }
    let mut rows: Vec<(&(String, String), &Totals)> = acc.iter().collect();
    rows.sort_by(|a, b| b.1.lost.total_cmp(&a.1.lost).then(a.0.cmp(b.0)));
    let mut columns = vec![
        Column::new(name.into(), rows.iter().map(|r| r.0.0.clone()).collect::<Vec<_>>()),
        Column::new(col::PERIOD.into(), rows.iter().map(|r| r.0.1.clone()).collect::<Vec<_>>()),
    ];
    columns.extend(totals_columns(&rows.iter().map(|r| r.1).collect::<Vec<_>>()));
    DataFrame::new_infer_height(columns)
}

/// `gap_by_partner`, with the CIF/FOB factor each partner got.
pub(crate) fn by_partner(cells: &[Cell], factors: &Factors) -> PolarsResult<DataFrame> {
    let mut df = by_group(cells, |c| c.key.2.clone(), col::PARTNER)?;
    let partners: Vec<String> = df.column(col::PARTNER)?.str()?.iter().map(|p| p.unwrap_or_default().to_owned()).collect();
    let f: Vec<_> = partners.iter().map(|p| factors.get(p)).collect();
    df.with_column(Column::new(gap_by_cell::CIF_FOB_FACTOR.into(), f.iter().map(|x| x.factor).collect::<Vec<_>>()))?;
    df.with_column(Column::new(gap_by_partner::CIF_FOB_LOW.into(), f.iter().map(|x| x.low).collect::<Vec<_>>()))?;
    df.with_column(Column::new(gap_by_partner::CIF_FOB_HIGH.into(), f.iter().map(|x| x.high).collect::<Vec<_>>()))?;
    df.with_column(Column::new(gap_by_partner::CIF_FOB_SOURCE.into(), f.iter().map(|x| x.source).collect::<Vec<_>>()))?;
    df.with_column(Column::new(gap_by_partner::CIF_FOB_PAIRS.into(), f.iter().map(|x| x.pairs as u32).collect::<Vec<_>>()))?;
    let reporting: HashMap<&str, bool> = cells.iter().map(|c| (c.key.2.as_str(), c.mirror_cif.is_some())).collect();
    df.with_column(Column::new(
        gap_by_partner::PARTNER_REPORTS.into(),
        partners.iter().map(|p| reporting.get(p.as_str()).copied().unwrap_or(false)).collect::<Vec<_>>(),
    ))?;
    Ok(df)
}

/// `gap_summary`: one row per period, then `all`.
pub(crate) fn summary(cells: &[Cell], factors: &Factors, declared_source: &str) -> PolarsResult<DataFrame> {
    let mut acc: BTreeMap<String, Totals> = BTreeMap::new();
    let mut all = Totals::default();
    let mut not_reporting: BTreeMap<String, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for c in cells {
        acc.entry(c.key.3.clone()).or_default().add(c);
        all.add(c);
        if c.mirror_cif.is_none() {
            not_reporting.entry(c.key.3.clone()).or_default().insert(c.key.2.as_str());
        }
    }
    let mut periods: Vec<String> = acc.keys().cloned().collect();
    let mut t: Vec<&Totals> = acc.values().collect();
    let all_not_reporting: std::collections::BTreeSet<&str> = not_reporting.values().flatten().copied().collect();
    let mut nr: Vec<String> =
        periods.iter().map(|p| not_reporting.get(p).map(|s| s.iter().copied().collect::<Vec<_>>().join(";")).unwrap_or_default()).collect();
    periods.push("all".into());
    t.push(&all);
    nr.push(all_not_reporting.into_iter().collect::<Vec<_>>().join(";"));
    let n = periods.len();
    let mut columns = vec![Column::new(gap_summary::PERIOD.into(), periods)];
    columns.extend(totals_columns(&t));
    columns.push(Column::new(gap_summary::PARTNERS_NOT_REPORTING.into(), nr));
    columns.push(Column::new(
        gap_summary::CIF_FOB_METHOD.into(),
        vec![if factors.method == crate::FactorMethod::Estimated { "estimated" } else { "configured" }; n],
    ));
    columns.push(Column::new(gap_summary::DECLARED_SOURCE.into(), vec![declared_source; n]));
    DataFrame::new_infer_height(columns)
}

/// The declarations' text columns a row's cell is keyed by: HS6, origin and reported period.
pub(crate) struct KeyTexts<'a> {
    pub(crate) hs6: Text<'a>,
    pub(crate) origin: Text<'a>,
    pub(crate) period: Text<'a>,
}

impl<'a> KeyTexts<'a> {
    pub(crate) fn of(declarations: &'a DataFrame) -> PolarsResult<Self> {
        Ok(KeyTexts {
            hs6: Text::column(declarations, col::HS6)?,
            origin: Text::column(declarations, col::ORIGIN_COUNTRY)?,
            period: Text::column(declarations, col::PERIOD)?,
        })
    }
}

/// The largest table of (HS6, origin, output period) code combinations [`RowKeys`] index rows
/// by (16 MiB): a few thousand HS6 codes × a few hundred origins × a few periods fit.
const DENSE_KEYS: usize = 1 << 22;

/// Every declaration's cell key (HS6, origin, output period), coded, with each key's declared
/// value. None of it needs the cells, so it is computed while they are.
pub(crate) struct RowKeys<'a> {
    /// Each row's key.
    row_key: Vec<u32>,
    /// Each key's (HS6, origin, output period).
    keys: Vec<(&'a str, &'a str, &'a str)>,
    /// Each key's declared value, summed in row order.
    key_value: Vec<f64>,
    /// Each row's output period, coded by the distinct ones.
    gap_period: Coded<'a>,
}

impl<'a> RowKeys<'a> {
    pub(crate) fn of(texts: &'a KeyTexts<'_>, declarations: &DataFrame, grain: PeriodGrain) -> PolarsResult<Self> {
        RowKeys::within(texts, declarations, grain, DENSE_KEYS)
    }

    /// [`RowKeys::of`], finding keys by position while every combination of codes fits a table
    /// of `dense_keys`.
    fn within(texts: &'a KeyTexts<'_>, declarations: &DataFrame, grain: PeriodGrain, dense_keys: usize) -> PolarsResult<Self> {
        // Text columns are coded by hashing every row's value: the three side by side.
        let (hs6, (origin, period)) =
            rayon::join(|| coded_or_empty(&texts.hs6), || rayon::join(|| coded_or_empty(&texts.origin), || coded_or_empty(&texts.period)));
        // Each distinct period's output period, coded.
        let grains = Coded::new(period.values.iter().map(|p| Some(grain.of(p))));
        let value = declarations.column(col::VALUE_USD)?.f64()?;
        // Rows are keyed by their (HS6, origin, output period) codes, numbered in order of first
        // appearance: a cell is looked up, and its texts hashed, once per key rather than once
        // per row. While every combination of codes fits a table of `dense_keys`, a row finds
        // its key by position in it; otherwise by hashing the three codes.
        let (n_hs6, n_origin, n_grain) = (hs6.values.len(), origin.values.len(), grains.values.len());
        let dense = n_hs6.checked_mul(n_origin).and_then(|n| n.checked_mul(n_grain)).filter(|&n| n <= dense_keys);
        let mut keys: Vec<(&str, &str, &str)> = Vec::new();
        let key_of_row = |i: usize| (hs6.codes[i], origin.codes[i], grains.codes[period.codes[i] as usize]);
        let mut first = |key: (u32, u32, u32)| {
            keys.push((hs6.values[key.0 as usize], origin.values[key.1 as usize], grains.values[key.2 as usize]));
            (keys.len() - 1) as u32
        };
        let row_key: Vec<u32> = match dense {
            Some(n) => {
                let mut table = vec![u32::MAX; n];
                (0..declarations.height())
                    .map(|i| {
                        let key = key_of_row(i);
                        let at = (key.0 as usize * n_origin + key.1 as usize) * n_grain + key.2 as usize;
                        if table[at] == u32::MAX {
                            table[at] = first(key);
                        }
                        table[at]
                    })
                    .collect()
            }
            None => {
                let mut key_ids: HashMap<(u32, u32, u32), u32, FixedState> = HashMap::default();
                (0..declarations.height()).map(|i| *key_ids.entry(key_of_row(i)).or_insert_with(|| first(key_of_row(i)))).collect()
            }
        };
        let mut key_value = vec![0.0; keys.len()];
        for (&k, v) in row_key.iter().zip(value.iter()) {
            key_value[k as usize] += v.unwrap_or(0.0).max(0.0);
        }
        let gap_period = Coded { codes: period.codes.iter().map(|&p| grains.codes[p as usize]).collect(), values: grains.values };
        Ok(RowKeys { row_key, keys, key_value, gap_period })
    }
}

/// Rows of `mirror_exposure` [`exposure_in_blocks`] makes at a time: two row groups of the
/// written file ([`mirador_io::ROW_GROUP_ROWS`]), so that a file written block by
/// block has the bytes of the file written from the whole frame.
pub const EXPOSURE_BLOCK_ROWS: usize = 2 * mirador_io::ROW_GROUP_ROWS;

/// `mirror_exposure`: every declaration item with its cell's gap ratio and its value share of the
/// cell's lost duty, handed to `write` [`EXPOSURE_BLOCK_ROWS`] rows at a time, in order (at least
/// one block, empty when there are no declarations).
pub(crate) fn exposure_in_blocks<E: From<PolarsError>>(
    declarations: &DataFrame,
    rows: &RowKeys<'_>,
    cells: &[Cell],
    write: impl FnMut(DataFrame) -> Result<(), E>,
) -> Result<(), E> {
    exposure_in_blocks_of(declarations, rows, cells, EXPOSURE_BLOCK_ROWS, write)
}

/// [`exposure_in_blocks`] in blocks of `block_rows`.
fn exposure_in_blocks_of<E: From<PolarsError>>(
    declarations: &DataFrame,
    rows: &RowKeys<'_>,
    cells: &[Cell],
    block_rows: usize,
    mut write: impl FnMut(DataFrame) -> Result<(), E>,
) -> Result<(), E> {
    let index: HashMap<(&str, &str, &str), &Cell, FixedState> =
        cells.iter().map(|c| ((c.key.0.as_str(), c.key.2.as_str(), c.key.3.as_str()), c)).collect();
    let key_cells: Vec<Option<&Cell>> = rows.keys.iter().map(|k| index.get(k).copied()).collect();
    let key_ratio: Vec<Option<f64>> = key_cells
        .iter()
        .map(|cell| cell.and_then(|c| c.gap().zip(c.mirror_cif)).and_then(|(g, m)| ratio(g, m)).map(|r| r.clamp(-1.0, 1.0)))
        .collect();
    let key_duty: Vec<f64> = key_cells.iter().map(|cell| cell.map_or(0.0, |c| c.lost_duty)).collect();
    // One categorical type for every block's output periods, so that the blocks stack.
    let period_type = mirador_schema::text::categorical_type(mirror_exposure::GAP_PERIOD);
    let n = declarations.height();
    for start in (0..n.max(1)).step_by(block_rows.max(1)) {
        let end = n.min(start + block_rows);
        let block = declarations.slice(start as i64, end - start);
        let gap_period =
            categorical(&rows.gap_period.codes[start..end], &rows.gap_period.values, &period_type, mirror_exposure::GAP_PERIOD)?;
        write(exposure_block(&block, &rows.row_key[start..end], gap_period, rows, &key_ratio, &key_duty)?)?;
    }
    Ok(())
}

/// The `mirror_exposure` rows of `block`, declarations keyed `row_key` (in `rows`' keys) with
/// output periods `gap_period`: each key's gap ratio and lost duty are `key_ratio` and
/// `key_duty`.
fn exposure_block(
    block: &DataFrame,
    row_key: &[u32],
    gap_period: Column,
    rows: &RowKeys<'_>,
    key_ratio: &[Option<f64>],
    key_duty: &[f64],
) -> PolarsResult<DataFrame> {
    let value = block.column(col::VALUE_USD)?.f64()?;
    let gap_ratio: Float64Chunked = row_key.iter().map(|&k| key_ratio[k as usize]).collect();
    let cell_duty: Vec<f64> = row_key.iter().map(|&k| key_duty[k as usize]).collect();
    let share: Vec<f64> = row_key
        .iter()
        .zip(value.iter())
        .map(|(&k, v)| ratio(v.unwrap_or(0.0).max(0.0), rows.key_value[k as usize]).map_or(0.0, |s| s * key_duty[k as usize]))
        .collect();
    exposure_frame(block, gap_period, gap_ratio, &cell_duty, &share)
}

/// The `mirror_exposure` rows of `block` (declarations) with their computed columns.
fn exposure_frame(
    block: &DataFrame,
    gap_period: Column,
    gap_ratio: Float64Chunked,
    cell_duty: &[f64],
    share: &[f64],
) -> PolarsResult<DataFrame> {
    let mut df = block.select([col::DECLARATION_ID, col::ITEM_NO, col::IMPORTER_ID, col::HS6, col::ORIGIN_COUNTRY])?;
    df.with_column(gap_period)?;
    df.with_column(gap_ratio.with_name(mirror_exposure::MIRROR_GAP_RATIO.into()).into_column())?;
    df.with_column(Column::new(mirror_exposure::CELL_LOST_DUTY_USD.into(), cell_duty))?;
    df.with_column(Column::new(mirror_exposure::MIRROR_DUTY_SHARE_USD.into(), share))?;
    Ok(df)
}

/// `mirror_exposure`'s computed columns for every declaration item, in the declarations' order,
/// made elsewhere (the engine's map and join, `mirador_engine`): [`write_exposure_columns`]
/// makes the dataset of them.
#[derive(Debug, Default)]
pub struct ExposureColumns {
    /// Each row's output period, as a code into `periods` (`u32::MAX`: none).
    pub period_codes: Vec<u32>,
    /// The output periods.
    pub periods: Vec<String>,
    /// Each row's cell gap ratio, clamped to ±1 (none without a mirror).
    pub gap_ratio: Vec<Option<f64>>,
    /// Each row's cell lost duty.
    pub cell_lost_duty_usd: Vec<f64>,
    /// Each row's value share of it.
    pub duty_share_usd: Vec<f64>,
}

/// `mirror_exposure` of `declarations` with the computed `columns`, handed to `write`
/// [`EXPOSURE_BLOCK_ROWS`] rows at a time as [`exposure_in_blocks`] hands them: the same key
/// columns, types and blocks as the local stage's.
pub fn write_exposure_columns<E: From<PolarsError>>(
    declarations: &DataFrame,
    columns: &ExposureColumns,
    mut write: impl FnMut(DataFrame) -> Result<(), E>,
) -> Result<(), E> {
    let n = declarations.height();
    let c = columns;
    let lengths = [c.period_codes.len(), c.gap_ratio.len(), c.cell_lost_duty_usd.len(), c.duty_share_usd.len()];
    if lengths.iter().any(|&l| l != n) {
        return Err(PolarsError::ShapeMismatch(
            format!("mirror_exposure: {n} declaration items, computed columns of {lengths:?} rows").into(),
        )
        .into());
    }
    if let Some(&code) = c.period_codes.iter().find(|&&code| code != u32::MAX && code as usize >= c.periods.len()) {
        return Err(PolarsError::OutOfBounds(format!("mirror_exposure: period code {code} of {} periods", c.periods.len()).into()).into());
    }
    let period_type = mirador_schema::text::categorical_type(mirror_exposure::GAP_PERIOD);
    let periods: Vec<&str> = c.periods.iter().map(String::as_str).collect();
    for start in (0..n.max(1)).step_by(EXPOSURE_BLOCK_ROWS) {
        let end = n.min(start + EXPOSURE_BLOCK_ROWS);
        let block = declarations.slice(start as i64, end - start);
        let gap_period = categorical(&c.period_codes[start..end], &periods, &period_type, mirror_exposure::GAP_PERIOD)?;
        let gap_ratio: Float64Chunked = c.gap_ratio[start..end].iter().copied().collect();
        write(exposure_frame(&block, gap_period, gap_ratio, &c.cell_lost_duty_usd[start..end], &c.duty_share_usd[start..end])?)?;
    }
    Ok(())
}

/// Text coded `codes` in `values` as a categorical column of type `dtype` (from
/// [`mirador_schema::text::categorical_type`]): the same text as [`Coded::gather`] (a code of
/// `u32::MAX` a null), made from the codes, each distinct value put in the column's categories
/// once. Each row's output period is held so, a categorical of a few values, which the writer
/// writes as the same text from its codes, without millions of strings to gather and hash again.
fn categorical(codes: &[u32], values: &[&str], dtype: &DataType, name: &str) -> PolarsResult<Column> {
    let DataType::Categorical(_, mapping) = dtype else { polars_bail!(SchemaMismatch: "`{name}` does not have a categorical type") };
    let cats = values.iter().map(|v| mapping.insert_cat(v)).collect::<PolarsResult<Vec<u32>>>()?;
    let ids: UInt32Chunked = codes.iter().map(|&c| (c != u32::MAX).then(|| cats[c as usize])).collect();
    Ok(Categorical32Chunked::from_cats_and_dtype(ids.with_name(name.into()), dtype.clone()).into_series().into_column())
}

/// A text column coded ([`Text::coded`]), a null coded as empty text, as a row's key reads it.
fn coded_or_empty<'a>(text: &'a Text<'_>) -> Coded<'a> {
    let mut coded = text.coded();
    if coded.codes.contains(&u32::MAX) {
        let empty = coded.values.iter().position(|v| v.is_empty()).unwrap_or_else(|| {
            coded.values.push("");
            coded.values.len() - 1
        }) as u32;
        coded.codes.iter_mut().filter(|c| **c == u32::MAX).for_each(|c| *c = empty);
    }
    coded
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of any size make, one after another, the exposure rows one block of every row
    /// makes; the stage's blocks are whole row groups of the written file.
    #[test]
    fn exposure_blocks_of_any_size_make_the_same_rows() {
        assert_eq!(EXPOSURE_BLOCK_ROWS % mirador_io::ROW_GROUP_ROWS, 0);
        let world =
            mirador_synth::generate(&mirador_synth::SynthParams { declarations: 6_000, ..mirador_synth::SynthParams::small(3) }).unwrap();
        let (declarations, params) = (&world.declarations, crate::GapParams { home_country: "KE".into(), ..crate::GapParams::default() });
        let book = crate::TariffBook::from_frame(&world.tariffs).unwrap();
        let texts = KeyTexts::of(declarations).unwrap();
        let sides = crate::cells::sides(&texts, declarations, &world.mirror_flows, &params).unwrap();
        let (cells, _) = crate::cells::cells(&sides, &book, &params);
        let rows = RowKeys::of(&texts, declarations, params.period).unwrap();
        let in_blocks = |block_rows: usize| {
            let mut blocks = Vec::new();
            exposure_in_blocks_of(declarations, &rows, &cells, block_rows, |b: DataFrame| -> PolarsResult<()> {
                blocks.push(b);
                Ok(())
            })
            .unwrap();
            blocks
        };
        let whole = in_blocks(declarations.height());
        assert_eq!(whole.len(), 1);
        assert!(whole[0].column(mirror_exposure::MIRROR_GAP_RATIO).unwrap().f64().unwrap().iter().flatten().count() > 100);
        let blocks = in_blocks(1_000);
        assert_eq!(blocks.len(), 6);
        let mut joined = blocks[0].clone();
        for b in &blocks[1..] {
            joined.vstack_mut(b).unwrap();
        }
        // The two runs' output periods have categorical types of their own: compared as text.
        let as_text = |df: &DataFrame| {
            let mut df = df.clone();
            let text = df.column(mirror_exposure::GAP_PERIOD).unwrap().cast(&DataType::String).unwrap();
            df.with_column(text).unwrap();
            df
        };
        assert!(as_text(&joined).equals_missing(&as_text(&whole[0])));

        // The same computed columns, made elsewhere and handed in (as the engine's are), give
        // the same rows; columns of another length are refused.
        let w = &whole[0];
        let f64s = |c: &str| w.column(c).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect::<Vec<f64>>();
        let text = as_text(w);
        let periods: Vec<Option<&str>> = text.column(mirror_exposure::GAP_PERIOD).unwrap().str().unwrap().iter().collect();
        let mut columns = ExposureColumns {
            periods: periods.iter().flatten().map(|p| (*p).to_owned()).collect::<std::collections::BTreeSet<_>>().into_iter().collect(),
            gap_ratio: w.column(mirror_exposure::MIRROR_GAP_RATIO).unwrap().f64().unwrap().iter().collect(),
            cell_lost_duty_usd: f64s(mirror_exposure::CELL_LOST_DUTY_USD),
            duty_share_usd: f64s(mirror_exposure::MIRROR_DUTY_SHARE_USD),
            ..ExposureColumns::default()
        };
        columns.period_codes =
            periods.iter().map(|p| p.map_or(u32::MAX, |p| columns.periods.iter().position(|q| q == p).unwrap() as u32)).collect();
        let mut handed = Vec::new();
        write_exposure_columns(declarations, &columns, |b: DataFrame| -> PolarsResult<()> {
            handed.push(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(handed.len(), 1);
        assert!(as_text(&handed[0]).equals_missing(&text));
        columns.duty_share_usd.pop();
        assert!(write_exposure_columns(declarations, &columns, |_: DataFrame| -> PolarsResult<()> { Ok(()) }).is_err());
    }

    /// Rows find the same keys, numbered in the same order, with the same values summed, whether
    /// by position in the table of code combinations or by hashing them; nulls key as empty text.
    #[test]
    fn row_keys_are_the_same_by_position_and_by_hash() {
        let n = 5_000;
        let hs6: Vec<Option<String>> = (0..n).map(|i| (i % 97 != 3).then(|| format!("{:06}", (i * 31) % 211))).collect();
        let origin: Vec<Option<&str>> = (0..n).map(|i| [Some("CN"), Some("DE"), None, Some("")][(i * 7) % 4]).collect();
        let period: Vec<&str> = (0..n).map(|i| ["2023-01", "2023-07", "2024-02", "2022-12"][(i / 13) % 4]).collect();
        let value: Vec<Option<f64>> = (0..n).map(|i| (i % 11 != 0).then(|| (i as f64 * 1.37) % 900.0 - 50.0)).collect();
        let df = df!(col::HS6 => hs6, col::ORIGIN_COUNTRY => origin, col::PERIOD => period, col::VALUE_USD => value).unwrap();
        let texts = KeyTexts::of(&df).unwrap();
        for grain in [PeriodGrain::Year, PeriodGrain::AsReported] {
            let dense = RowKeys::within(&texts, &df, grain, DENSE_KEYS).unwrap();
            let hashed = RowKeys::within(&texts, &df, grain, 0).unwrap();
            assert!(dense.keys.len() > 100);
            assert_eq!(dense.row_key, hashed.row_key);
            assert_eq!(dense.keys, hashed.keys);
            assert_eq!(dense.key_value, hashed.key_value);
            assert_eq!(dense.gap_period.codes, hashed.gap_period.codes);
            // Each key is the row's own text, a null as empty text.
            let text = |c: &str, i: usize| df.column(c).unwrap().str().unwrap().get(i).unwrap_or("").to_owned();
            for i in (0..n).step_by(7) {
                let (h, o, p) = dense.keys[dense.row_key[i] as usize];
                assert_eq!((h.to_owned(), o.to_owned()), (text(col::HS6, i), text(col::ORIGIN_COUNTRY, i)));
                assert_eq!(p, grain.of(&text(col::PERIOD, i)));
            }
        }
    }

    /// The categorical holds the text the gathered column holds, nulls included, and the file
    /// written from it is the file written from the text: a few distinct values (written as a
    /// dictionary) and mostly distinct ones (written plainly), over several row groups.
    #[test]
    fn the_categorical_is_the_gathered_text_and_writes_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let few = ["2023", "2021", "2022"];
        let many: Vec<String> = (0..400_000).map(|i| format!("p{i}")).collect();
        for (case, values, n) in [("few", few.to_vec(), 300_000usize), ("many", many.iter().map(String::as_str).collect(), 300_000)] {
            let codes: Vec<u32> =
                (0..n).map(|i| if i % 1_001 == 7 { u32::MAX } else { ((i * 7_919 + i / 3) % values.len()) as u32 }).collect();
            let coded = Coded { codes, values };
            let text = coded.gather("gap_period").unwrap().into_column();
            let cat =
                categorical(&coded.codes, &coded.values, &mirador_schema::text::categorical_type("gap_period"), "gap_period").unwrap();
            assert!(cat.dtype().is_categorical());
            assert!(cat.cast(&DataType::String).unwrap().as_materialized_series().equals_missing(text.as_materialized_series()), "{case}");
            assert!(text.null_count() > 0);
            let (a, b) = (dir.path().join(format!("{case}-text.parquet")), dir.path().join(format!("{case}-cat.parquet")));
            let da = mirador_io::write_parquet(&mut DataFrame::new(n, vec![text]).unwrap(), &a).unwrap();
            let db = mirador_io::write_parquet(&mut DataFrame::new(n, vec![cat]).unwrap(), &b).unwrap();
            assert_eq!(da, db, "{case}");
            assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{case}");
        }
    }
}
