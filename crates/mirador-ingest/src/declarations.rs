//! Validation of declarations: one row per goods item.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{Datelike, NaiveDate};
use mirador_schema::col;
use polars::prelude::*;
use rayon::prelude::*;

use crate::fx::FxTable;
use crate::read::{BlockRow, Raw, RawBlock};
use crate::rules::{self, Reject};
use crate::source::{Field, Mapped, Quarantine, Reconciliation};

/// Canonical columns a declarations source must provide (mapped or defaulted).
pub const MANDATORY: &[&str] = &[
    col::DECLARATION_ID,
    col::DATE,
    col::IMPORTER_ID,
    col::HS_CODE,
    col::ORIGIN_COUNTRY,
    col::NET_MASS_KG,
    col::ITEM_PRICE,
    col::CURRENCY,
    col::TAX_RATE_PCT,
];

/// Rules that depend on the run's parameters.
pub struct DeclarationRules<'a> {
    /// Accepted national code lengths.
    pub hs_lengths: &'a [usize],
    /// Earliest acceptable date.
    pub min_date: NaiveDate,
    /// Latest acceptable date.
    pub max_date: NaiveDate,
    /// Exchange rates.
    pub fx: &'a FxTable,
    /// Vintages whose known codes a lost leading zero may be restored into.
    pub hs_vintages: &'a [mirador_schema::hs::Vintage],
    /// Which codes must be known.
    pub hs_known: rules::HsKnown,
    /// Case rule of party ids.
    pub id_case: rules::IdCase,
    /// Plausibility of one goods item.
    pub bounds: rules::ItemBounds,
    /// The day of the run: rows dated later are `date_in_future`.
    pub run_day: NaiveDate,
}

/// One validated row. Its text is borrowed from the block it was read from (or from the source's
/// mapping): a row costs no allocation but its HS code's.
#[derive(Default)]
struct Row<'r> {
    declaration_id: Cow<'r, str>,
    item_no: i32,
    date: NaiveDate,
    period: Cow<'r, str>,
    texts: [Cow<'r, str>; 11],
    courier_id: Option<Cow<'r, str>>,
    hs_code: String,
    departure_country: &'static str,
    origin_country: &'static str,
    tax_rate_pct: f64,
    net_mass_kg: f64,
    quantity: Option<f64>,
    quantity_unit: Option<Cow<'r, str>>,
    item_price: f64,
    currency: Cow<'r, str>,
    usd_per_unit: f64,
    fraud: Option<i8>,
    critical_fraud: Option<i8>,
    hs_repaired: bool,
    line: usize,
    /// The optional release times ([`crate::release`]).
    release: crate::release::Release<'r>,
}

impl Row<'_> {
    fn value_usd(&self) -> f64 {
        self.item_price * self.usd_per_unit
    }
}

/// Optional descriptive columns; `-` when the source does not carry them.
const TEXTS: [&str; 11] = [
    col::OFFICE_ID,
    col::PROCESS_TYPE,
    col::IMPORT_TYPE,
    col::IMPORT_USE,
    col::PAYMENT_TYPE,
    col::TRANSPORT_MODE,
    col::DECLARANT_ID,
    col::IMPORTER_ID,
    col::SELLER_ID,
    col::TAX_TYPE,
    col::ORIGIN_INDICATOR,
];

/// Party ids among [`TEXTS`], normalised by the source's case rule.
const PARTY_IDS: [&str; 3] = [col::DECLARANT_ID, col::IMPORTER_ID, col::SELLER_ID];

/// The source columns validation reads, resolved once per file.
struct Fields<'a> {
    declaration_id: Field<'a>,
    item_no: Field<'a>,
    date: Field<'a>,
    hs_code: Field<'a>,
    origin_country: Field<'a>,
    departure_country: Field<'a>,
    tax_rate_pct: Field<'a>,
    net_mass_kg: Field<'a>,
    item_price: Field<'a>,
    quantity: Field<'a>,
    quantity_unit: Field<'a>,
    currency: Field<'a>,
    fraud: Field<'a>,
    critical_fraud: Field<'a>,
    courier_id: Field<'a>,
    texts: [Field<'a>; 11],
    release: crate::release::ReleaseFields<'a>,
}

impl<'a> Fields<'a> {
    fn new(m: &Mapped<'a>) -> Self {
        Fields {
            declaration_id: m.field(col::DECLARATION_ID),
            item_no: m.field(col::ITEM_NO),
            date: m.field(col::DATE),
            hs_code: m.field(col::HS_CODE),
            origin_country: m.field(col::ORIGIN_COUNTRY),
            departure_country: m.field(col::DEPARTURE_COUNTRY),
            tax_rate_pct: m.field(col::TAX_RATE_PCT),
            net_mass_kg: m.field(col::NET_MASS_KG),
            item_price: m.field(col::ITEM_PRICE),
            quantity: m.field(col::QUANTITY),
            quantity_unit: m.field(col::QUANTITY_UNIT),
            currency: m.field(col::CURRENCY),
            fraud: m.field(col::FRAUD),
            critical_fraud: m.field(col::CRITICAL_FRAUD),
            courier_id: m.field(col::COURIER_ID),
            texts: TEXTS.map(|name| m.field(name)),
            release: crate::release::ReleaseFields::new(m),
        }
    }
}

/// The `YYYY-MM` text of every month from the earliest to the latest acceptable date, made once
/// rather than for every row (when the range is of a sane length).
struct Periods {
    first: i32,
    texts: Vec<String>,
}

impl Periods {
    /// Most months tabulated.
    const MAX: i32 = 12 * 1_000;

    fn new(min: NaiveDate, max: NaiveDate) -> Self {
        let (first, last) = (Self::month(min), Self::month(max));
        let texts = if last - first < Self::MAX {
            (first..=last).map(|m| format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)).collect()
        } else {
            Vec::new()
        };
        Periods { first, texts }
    }

    fn month(date: NaiveDate) -> i32 {
        date.year() * 12 + date.month0() as i32
    }

    fn of(&self, date: NaiveDate) -> Cow<'_, str> {
        match usize::try_from(Self::month(date) - self.first).ok().and_then(|i| self.texts.get(i)) {
            Some(text) => Cow::Borrowed(text),
            None => Cow::Owned(format!("{:04}-{:02}", date.year(), date.month())),
        }
    }
}

/// A text value as a declaration holds it: rejected if it carries a control character.
fn clean<'r>(v: Raw<'r>, name: &str) -> Result<Cow<'r, str>, Reject> {
    let v = v.text();
    if rules::has_control(&v) {
        return Err(Reject::new("control_character", name, format!("`{name}` contains a control character (NUL, escape, line break)")));
    }
    Ok(v)
}

fn validate<'r>(
    m: &Mapped<'_>,
    f: &Fields<'r>,
    raw: BlockRow<'r>,
    r: &DeclarationRules<'_>,
    periods: &'r Periods,
) -> Result<Row<'r>, Reject> {
    let d = m.decimal();
    let declaration_id = rules::declaration_id_value(f.declaration_id.value(raw), col::DECLARATION_ID)?;
    let item_no = rules::item_no_value(f.item_no.value(raw), d, col::ITEM_NO)?;
    let date = rules::date_value(rules::required_value(f.date.value(raw), col::DATE)?, m.date_format(), r.min_date, r.max_date, col::DATE)?;
    if date > r.run_day {
        return Err(Reject::new(
            "date_in_future",
            col::DATE,
            format!("`{}` = {date} is after the day of the run ({}): a typo, or a clock set wrong", col::DATE, r.run_day),
        ));
    }
    let hs_raw = rules::required_value(f.hs_code.value(raw), col::HS_CODE)?.text();
    let hs = rules::hs_code(&hs_raw, r.hs_lengths, r.hs_vintages, col::HS_CODE)?;
    let hs = rules::known_hs(hs, &hs_raw, r.hs_known, r.hs_vintages, col::HS_CODE)?;
    let origin =
        rules::declared_country(&rules::required_value(f.origin_country.value(raw), col::ORIGIN_COUNTRY)?.text(), col::ORIGIN_COUNTRY)?;
    let departure = match rules::optional_value(f.departure_country.value(raw)) {
        Some(v) => rules::declared_country(&v.text(), col::DEPARTURE_COUNTRY)?,
        None => origin,
    };
    let tax_rate_pct = rules::rate_pct_value(rules::required_value(f.tax_rate_pct.value(raw), col::TAX_RATE_PCT)?, d, col::TAX_RATE_PCT)?;
    let net_mass_kg = rules::non_negative_value(rules::required_value(f.net_mass_kg.value(raw), col::NET_MASS_KG)?, d, col::NET_MASS_KG)?;
    let item_price = rules::non_negative_value(rules::required_value(f.item_price.value(raw), col::ITEM_PRICE)?, d, col::ITEM_PRICE)?;
    let quantity = match rules::optional_value(f.quantity.value(raw)) {
        Some(v) => Some(rules::non_negative_value(v, d, col::QUANTITY)?),
        None => None,
    };
    let quantity_unit = rules::optional_value(f.quantity_unit.value(raw)).map(Raw::text);
    let currency = match rules::required_value(f.currency.value(raw), col::CURRENCY)? {
        Raw::Text(v) => rules::currency_code(v, col::CURRENCY)?,
        typed => Cow::Owned(rules::currency(&typed.text(), col::CURRENCY)?),
    };
    let period = periods.of(date);
    let usd_per_unit =
        r.fx.rate(&currency, &period)
            .ok_or_else(|| Reject::new("missing_fx_rate", col::CURRENCY, format!("no exchange rate for `{currency}` in {period}")))?;
    r.bounds.check(item_price * usd_per_unit, net_mass_kg)?;
    let fraud = rules::label_value(f.fraud.value(raw), &[0, 1], col::FRAUD)?;
    let critical_fraud = rules::label_value(f.critical_fraud.value(raw), &[0, 1, 2], col::CRITICAL_FRAUD)?;
    let mut texts: [Cow<'r, str>; 11] = Default::default();
    for ((slot, name), field) in texts.iter_mut().zip(TEXTS).zip(&f.texts) {
        let v = if name == col::IMPORTER_ID {
            rules::required_value(field.value(raw), name)?
        } else {
            rules::optional_value(field.value(raw)).unwrap_or(Raw::Text("-"))
        };
        *slot = clean(v, name)?;
        if PARTY_IDS.contains(&name) {
            *slot = rules::party_id(std::mem::take(slot), r.id_case);
        }
    }
    let release = crate::release::validate(&f.release, raw, date)?;
    Ok(Row {
        declaration_id,
        item_no,
        date,
        period,
        texts,
        courier_id: rules::optional_value(f.courier_id.value(raw)).map(|v| rules::party_id(v.text(), r.id_case)),
        hs_code: hs.code,
        departure_country: departure,
        origin_country: origin,
        tax_rate_pct,
        net_mass_kg,
        quantity,
        quantity_unit,
        item_price,
        currency,
        usd_per_unit,
        fraud,
        critical_fraud,
        hs_repaired: hs.repaired,
        line: raw.line(),
        release,
    })
}

/// Counters reported in the stage metrics.
#[derive(Debug, Default, serde::Serialize)]
pub struct DeclarationStats {
    /// HS codes whose lost leading zero was restored.
    pub hs_leading_zero_restored: usize,
    /// Accepted rows with zero net mass (no unit price).
    pub zero_mass: usize,
    /// Accepted rows declared at zero value (no commercial value; no unit price).
    pub zero_value: usize,
    /// Accepted rows whose origin is the "unknown" code.
    pub unknown_origin: usize,
    /// Exact duplicates quarantined.
    pub duplicates: usize,
    /// Same key, different content, quarantined.
    pub conflicting_duplicates: usize,
    /// Rows accepted from each file, in order (to find a row's file again).
    #[serde(skip)]
    pub accepted_per_file: Vec<usize>,
}

/// Validates every row; accepted rows become the canonical declarations frame.
pub fn ingest(
    sources: &[Mapped<'_>],
    r: &DeclarationRules<'_>,
    quarantine: &mut Quarantine,
) -> Result<(DataFrame, Reconciliation, DeclarationStats), crate::IngestError> {
    // The release-time columns are added when a source carries any of them.
    let types = Types { times: crate::release::carried(sources), ..Types::new() };
    let periods = Periods::new(r.min_date, r.max_date);
    let mut out = frame(&[], &[], &types)?;
    let mut block = frame(&[], &[], &types)?;
    let mut rec = Reconciliation::default();
    let mut stats = DeclarationStats::default();
    let mut seen = Seen::default();
    for m in sources {
        let accepted_before = rec.accepted;
        let fields = Fields::new(m);
        // Rows are validated in parallel a chunk at a time (memory stays bounded), then
        // de-duplicated and appended in file order.
        m.each_chunk(|rows, chunk| -> Result<(), crate::IngestError> {
            let hashes = content_hashes(rows, chunk.clone());
            let validated: Vec<Validated<'_>> = chunk
                .clone()
                .into_par_iter()
                .zip(hashes)
                .map(|(at, hash)| {
                    let raw = rows.row(at);
                    match raw.malformed() {
                        Some(why) => Err(Reject::new(why.code, "", format!("line {} {why}", raw.line()))),
                        None => validate(m, &fields, raw, r, &periods).map(|row| (row, hash)),
                    }
                })
                .collect();
            let repeats = seen.check(&validated);
            // Rows stay where validation put them; `keep` tells the accepted ones.
            let mut keep = vec![false; validated.len()];
            for (((at, result), repeat), keep) in chunk.zip(&validated).zip(repeats).zip(&mut keep) {
                rec.rows_in += 1;
                let raw = rows.row(at);
                let (row, _) = match result {
                    Ok(ok) => ok,
                    Err(reject) => {
                        quarantine.push_block(crate::DECLARATIONS, m, raw, reject);
                        continue;
                    }
                };
                if let Some(repeat) = repeat {
                    let (code, msg) = match repeat {
                        Repeat::Exact => {
                            stats.duplicates += 1;
                            ("duplicate", "exact duplicate of an earlier row")
                        }
                        Repeat::Conflicting => {
                            stats.conflicting_duplicates += 1;
                            ("conflicting_duplicate", "same declaration id and item as an earlier row, different content")
                        }
                    };
                    let reject = Reject::new(code, col::DECLARATION_ID, format!("`{}` item {}: {msg}", row.declaration_id, row.item_no));
                    quarantine.push_block(crate::DECLARATIONS, m, raw, &reject);
                    continue;
                }
                stats.count(row);
                *keep = true;
            }
            rec.accepted += keep.iter().filter(|k| **k).count();
            append_rows(&mut out, &mut block, frame(&validated, &keep, &types)?)?;
            Ok(())
        })?;
        stats.accepted_per_file.push(rec.accepted - accepted_before);
    }
    append_block(&mut out, &mut block)?;
    rec.quarantined = rec.rows_in - rec.accepted;
    Ok((out, rec, stats))
}

/// Most rows of a source taken for typos by [`quarantine_isolated_dates`], as a share.
const ISOLATED_MAX_SHARE: f64 = 0.01;
/// Fewest rows a source needs for [`quarantine_isolated_dates`] to judge its dates.
const ISOLATED_MIN_ROWS: usize = 100;

/// Quarantines (`date_in_future`) the accepted rows dated more than `gap_days` after the newest
/// date of the rest, with nothing in between: a few rows (at most 1 % of the source, which has at
/// least 100) far after the rest are typos (2035 for 2025), and would end a carried state's
/// history there. Returns the rows kept.
pub fn quarantine_isolated_dates(
    df: DataFrame,
    files: &[Mapped<'_>],
    accepted_per_file: &[usize],
    gap_days: u32,
    quarantine: &mut Quarantine,
    rec: &mut Reconciliation,
) -> Result<DataFrame, crate::IngestError> {
    let n = df.height();
    if n < ISOLATED_MIN_ROWS {
        return Ok(df);
    }
    let days: Vec<Option<i32>> = df.column(col::DATE)?.cast(&DataType::Int32)?.i32()?.iter().collect();
    let mut counts: std::collections::BTreeMap<i32, usize> = std::collections::BTreeMap::new();
    for d in days.iter().flatten() {
        *counts.entry(*d).or_insert(0) += 1;
    }
    let budget = (ISOLATED_MAX_SHARE * n as f64).floor() as usize;
    // Walk down from the newest day; the lowest gap within the budget is the cut.
    let (mut above, mut cut) = (0usize, None);
    let distinct: Vec<(i32, usize)> = counts.into_iter().collect();
    for w in distinct.windows(2).rev() {
        let ((lower, _), (upper, count)) = (w[0], w[1]);
        above += count;
        if above > budget {
            break;
        }
        if i64::from(upper) - i64::from(lower) > i64::from(gap_days) {
            cut = Some((upper, lower));
        }
    }
    let Some((cut, newest_rest)) = cut else { return Ok(df) };
    let lines = df.column(col::SOURCE_LINE)?.i32()?.clone();
    let ids = df.column(col::DECLARATION_ID)?.str()?.clone();
    let items = df.column(col::ITEM_NO)?.i32()?.clone();
    let file_of = |row: usize| {
        let mut end = 0;
        for (f, count) in files.iter().zip(accepted_per_file) {
            end += count;
            if row < end {
                return f.file.as_str();
            }
        }
        files.last().map_or("", |f| f.file.as_str())
    };
    let text = |d: i32| mirador_schema::day::date(d).map_or_else(|| d.to_string(), |d| d.to_string());
    let mut keep = Vec::with_capacity(n);
    for (i, d) in days.iter().enumerate() {
        let isolated = d.is_some_and(|d| d >= cut);
        keep.push(!isolated);
        if isolated {
            let d = d.unwrap_or_default();
            let reject = Reject::new(
                "date_in_future",
                col::DATE,
                format!(
                    "`date` = {} is {} days after {}, the newest date of the rest of the source, with nothing in between (date-gap-days = {gap_days}): a typo",
                    text(d),
                    d - newest_rest,
                    text(newest_rest)
                ),
            );
            let raw = || {
                let mut row = serde_json::Map::new();
                row.insert(col::DECLARATION_ID.into(), ids.get(i).into());
                row.insert(col::ITEM_NO.into(), items.get(i).into());
                row.insert(col::DATE.into(), text(d).into());
                serde_json::Value::Object(row).to_string()
            };
            quarantine.push_parts(crate::DECLARATIONS, file_of(i), lines.get(i).unwrap_or(0) as usize, &reject, raw);
        }
    }
    let dropped = keep.iter().filter(|k| !**k).count();
    rec.accepted -= dropped;
    rec.quarantined += dropped;
    Ok(df.filter(&BooleanChunked::from_slice("keep".into(), &keep))?)
}

impl DeclarationStats {
    /// Counts an accepted row.
    fn count(&mut self, row: &Row<'_>) {
        self.hs_leading_zero_restored += usize::from(row.hs_repaired);
        self.unknown_origin += usize::from(row.origin_country == mirador_schema::country::AREAS_NES);
        self.zero_mass += usize::from(row.net_mass_kg == 0.0);
        self.zero_value += usize::from(row.item_price == 0.0);
    }
}

/// A row whose (declaration id, item) came earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// With the same content: an exact duplicate.
    Exact,
    /// With other content.
    Conflicting,
}

/// Shards of [`Seen`]: more than there are cores, so that they balance.
const SEEN_SHARDS: usize = 64;

/// Every (declaration id, item) accepted so far, with its content hash, split into shards by
/// the key's hash. A key's rows all fall in one shard and are checked there in file order, so
/// the shards can be checked in parallel and the first occurrence still wins.
struct Seen {
    shards: Vec<HashMap<(Box<str>, i32), u64, foldhash::fast::FixedState>>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { shards: (0..SEEN_SHARDS).map(|_| HashMap::default()).collect() }
    }
}

impl Seen {
    /// For each row of a chunk, in order: whether its key came earlier (in this chunk or an
    /// earlier one). Valid rows seen for the first time are recorded.
    fn check<E: Sync>(&mut self, rows: &[Result<(Row<'_>, u64), E>]) -> Vec<Option<Repeat>> {
        use std::hash::BuildHasher;
        let shard_of = |row: &Row<'_>| {
            let h = foldhash::fast::FixedState::with_seed(SEEN_SHARDS as u64).hash_one((&row.declaration_id, row.item_no));
            (h % SEEN_SHARDS as u64) as usize
        };
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); SEEN_SHARDS];
        for (i, r) in rows.iter().enumerate() {
            if let Ok((row, _)) = r {
                by_shard[shard_of(row)].push(i);
            }
        }
        let found: Vec<Vec<(usize, Repeat)>> = self
            .shards
            .par_iter_mut()
            .zip(by_shard)
            .map(|(seen, indices)| {
                let mut found = Vec::new();
                for i in indices {
                    let Ok((row, content)) = &rows[i] else { continue };
                    match seen.entry((Box::from(row.declaration_id.as_ref()), row.item_no)) {
                        Entry::Occupied(e) => found.push((i, if e.get() == content { Repeat::Exact } else { Repeat::Conflicting })),
                        Entry::Vacant(v) => {
                            v.insert(*content);
                        }
                    }
                }
                found
            })
            .collect();
        let mut out = vec![None; rows.len()];
        for (i, repeat) in found.into_iter().flatten() {
            out[i] = Some(repeat);
        }
        out
    }
}

/// Accepted rows join the declarations frame this many at a time, as one chunk each: the
/// stages read few chunks, and the whole frame is never copied into one (which would hold it
/// twice at the end of ingest).
const BLOCK_ROWS: usize = 1 << 20;

/// Adds accepted rows to `block`, moving it to `out` once it holds [`BLOCK_ROWS`].
fn append_rows(out: &mut DataFrame, block: &mut DataFrame, rows: DataFrame) -> PolarsResult<()> {
    block.vstack_mut_owned(rows)?;
    if block.height() >= BLOCK_ROWS {
        append_block(out, block)?;
    }
    Ok(())
}

/// Moves `block`'s rows to the end of `out` as one chunk.
fn append_block(out: &mut DataFrame, block: &mut DataFrame) -> PolarsResult<()> {
    let mut full = std::mem::replace(block, block.clear());
    full.rechunk_mut_par();
    out.vstack_mut_owned(full)?;
    Ok(())
}

/// Rows hashed at a time by [`content_hashes`].
const HASH_ROWS: usize = 4_096;

/// The content hash of each row of `chunk` (see [`RawBlock::content_hashes`]), a few thousand
/// rows at a time in parallel.
fn content_hashes(rows: &RawBlock, chunk: std::ops::Range<usize>) -> Vec<u64> {
    let parts: Vec<std::ops::Range<usize>> = chunk.clone().step_by(HASH_ROWS).map(|s| s..chunk.end.min(s + HASH_ROWS)).collect();
    let hashed: Vec<Vec<u64>> = parts.into_par_iter().map(|part| rows.content_hashes(part)).collect();
    hashed.concat()
}

/// The types of the declarations' categorical columns, one mapping each, shared by every chunk
/// of one ingest (chunks of one column stack only when they share it).
struct Types {
    categoricals: Vec<(&'static str, DataType)>,
    /// Whether the frame carries the release-time columns.
    times: bool,
}

impl Types {
    fn new() -> Self {
        Types {
            categoricals: mirador_schema::schemas::DECLARATION_CATEGORICALS
                .iter()
                .map(|c| (*c, mirador_schema::text::categorical_type(c)))
                .collect(),
            times: false,
        }
    }

    fn column<'s>(&self, name: &'static str, values: impl IntoIterator<Item = Option<&'s str>>) -> PolarsResult<Column> {
        let Some((_, dtype)) = self.categoricals.iter().find(|(c, _)| *c == name) else {
            polars_bail!(ColumnNotFound: "`{name}` is not a categorical declarations column")
        };
        // Rows repeat few values: each distinct value of the chunk is coded by the column's
        // mapping once (in order of first appearance, as coding every row would add them), and
        // the rows take its code.
        let mut local: HashMap<&str, IdxSize, foldhash::fast::FixedState> = HashMap::default();
        let mut distinct: Vec<&str> = Vec::new();
        let at: IdxCa = values
            .into_iter()
            .map(|v| {
                v.map(|s| {
                    *local.entry(s).or_insert_with(|| {
                        distinct.push(s);
                        (distinct.len() - 1) as IdxSize
                    })
                })
            })
            .collect();
        let coded = Categorical32Chunked::from_str_iter(name.into(), dtype.clone(), distinct.iter().map(|s| Some(*s)))?;
        Ok(coded.into_series().take(&at)?.with_name(name.into()).into_column())
    }
}

/// Rows taken apart into columns at a time by [`frame`]: a few thousand rows stay in cache while
/// their fields are copied out.
const FRAME_ROWS: usize = 4_096;

/// The fields of some accepted rows, column by column (text borrowed from the rows).
#[derive(Default)]
struct Taken<'x> {
    declaration_id: Vec<&'x str>,
    item_no: Vec<i32>,
    date: Vec<i32>,
    period: Vec<&'x str>,
    texts: [Vec<&'x str>; 11],
    courier_id: Vec<Option<&'x str>>,
    hs_code: Vec<&'x str>,
    departure_country: Vec<&'static str>,
    origin_country: Vec<&'static str>,
    tax_rate_pct: Vec<f64>,
    net_mass_kg: Vec<f64>,
    quantity: Vec<Option<f64>>,
    quantity_unit: Vec<Option<&'x str>>,
    item_price: Vec<f64>,
    currency: Vec<&'x str>,
    value_usd: Vec<f64>,
    fraud: Vec<Option<i8>>,
    critical_fraud: Vec<Option<i8>>,
    line: Vec<i32>,
}

impl<'x> Taken<'x> {
    /// One pass over `rows`, each row's fields copied to their columns.
    fn of<'r: 'x>(rows: impl Iterator<Item = &'x Row<'r>>) -> Self {
        let mut f = Taken::default();
        for r in rows {
            f.declaration_id.push(&r.declaration_id);
            f.item_no.push(r.item_no);
            f.date.push(mirador_schema::day::of(r.date));
            f.period.push(&r.period);
            for (column, text) in f.texts.iter_mut().zip(&r.texts) {
                column.push(text);
            }
            f.courier_id.push(r.courier_id.as_deref());
            f.hs_code.push(&r.hs_code);
            f.departure_country.push(r.departure_country);
            f.origin_country.push(r.origin_country);
            f.tax_rate_pct.push(r.tax_rate_pct);
            f.net_mass_kg.push(r.net_mass_kg);
            f.quantity.push(r.quantity);
            f.quantity_unit.push(r.quantity_unit.as_deref());
            f.item_price.push(r.item_price);
            f.currency.push(&r.currency);
            f.value_usd.push(r.value_usd());
            f.fraud.push(r.fraud);
            f.critical_fraud.push(r.critical_fraud);
            f.line.push(r.line as i32);
        }
        f
    }
}

/// A validated row (with its content hash), or why it was rejected.
type Validated<'r> = Result<(Row<'r>, u64), Reject>;

/// The valid rows whose `keep` is set, in order.
fn accepted<'x, 'r>(rows: &'x [Validated<'r>], keep: &'x [bool]) -> impl Iterator<Item = &'x Row<'r>> + Clone {
    rows.iter().zip(keep).filter_map(|(row, keep)| row.as_ref().ok().filter(|_| *keep).map(|(row, _)| row))
}

/// The accepted rows (valid ones whose `keep` is set) as a declarations frame
/// ([`mirador_schema::schemas::declarations`]). The rows are taken apart into columns a few
/// thousand at a time, in parallel; then the columns are built in parallel, each in row order.
fn frame(rows: &[Validated<'_>], keep: &[bool], t: &Types) -> PolarsResult<DataFrame> {
    let parts: Vec<Taken<'_>> =
        rows.par_chunks(FRAME_ROWS).zip(keep.par_chunks(FRAME_ROWS)).map(|(rows, keep)| Taken::of(accepted(rows, keep))).collect();
    let parts = &parts;
    type Build<'b> = Box<dyn Fn() -> PolarsResult<Column> + Send + Sync + 'b>;
    // The values of one column, in row order across the parts, gathered with their exact count
    // known: the column's arrays are then allocated at their size, not grown by doubling.
    fn all<'p, 'x: 'p, T: Copy + 'p>(parts: &'p [Taken<'x>], get: fn(&'p Taken<'x>) -> &'p [T]) -> std::vec::IntoIter<T> {
        let mut values = Vec::with_capacity(parts.iter().map(|p| get(p).len()).sum());
        for p in parts {
            values.extend_from_slice(get(p));
        }
        values.into_iter()
    }
    let text = |name: &'static str, get: for<'p> fn(&'p Taken<'_>) -> &'p [&'p str]| -> Build<'_> {
        Box::new(move || t.column(name, all(parts, get).map(Some)))
    };
    let numbers = |name: &'static str, get: for<'p> fn(&'p Taken<'_>) -> &'p [f64]| -> Build<'_> {
        Box::new(move || Ok(Float64Chunked::from_iter_values(name.into(), all(parts, get)).into_column()))
    };
    let integers = |name: &'static str, get: for<'p> fn(&'p Taken<'_>) -> &'p [i32]| -> Build<'_> {
        Box::new(move || Ok(Int32Chunked::from_iter_values(name.into(), all(parts, get)).into_column()))
    };
    let labels = |name: &'static str, get: for<'p> fn(&'p Taken<'_>) -> &'p [Option<i8>]| -> Build<'_> {
        Box::new(move || Ok(all(parts, get).collect::<Int8Chunked>().with_name(name.into()).into_column()))
    };
    // Derived amounts, computed as the rows' own methods would.
    let derived = |name: &'static str, get: fn(&Taken<'_>, usize) -> Option<f64>| -> Build<'_> {
        Box::new(move || {
            let mut values = Vec::with_capacity(parts.iter().map(|p| p.line.len()).sum());
            for p in parts {
                values.extend((0..p.line.len()).map(|i| get(p, i)));
            }
            Ok(values.into_iter().collect::<Float64Chunked>().with_name(name.into()).into_column())
        })
    };
    let columns: Vec<Build<'_>> = vec![
        Box::new(|| Ok(StringChunked::from_iter_values(col::DECLARATION_ID.into(), all(parts, |p| &p.declaration_id)).into_column())),
        integers(col::ITEM_NO, |p| &p.item_no),
        Box::new(move || Int32Chunked::from_iter_values(col::DATE.into(), all(parts, |p| &p.date)).into_column().cast(&DataType::Date)),
        text(col::PERIOD, |p| &p.period),
        text(col::OFFICE_ID, |p| &p.texts[0]),
        text(col::PROCESS_TYPE, |p| &p.texts[1]),
        text(col::IMPORT_TYPE, |p| &p.texts[2]),
        text(col::IMPORT_USE, |p| &p.texts[3]),
        text(col::PAYMENT_TYPE, |p| &p.texts[4]),
        text(col::TRANSPORT_MODE, |p| &p.texts[5]),
        text(col::DECLARANT_ID, |p| &p.texts[6]),
        text(col::IMPORTER_ID, |p| &p.texts[7]),
        text(col::SELLER_ID, |p| &p.texts[8]),
        Box::new(move || t.column(col::COURIER_ID, all(parts, |p| &p.courier_id))),
        text(col::HS_CODE, |p| &p.hs_code),
        Box::new(move || t.column(col::HS6, all(parts, |p| &p.hs_code).map(|c| Some(&c[..6])))),
        Box::new(move || t.column(col::DEPARTURE_COUNTRY, all(parts, |p| &p.departure_country).map(Some))),
        Box::new(move || t.column(col::ORIGIN_COUNTRY, all(parts, |p| &p.origin_country).map(Some))),
        numbers(col::TAX_RATE_PCT, |p| &p.tax_rate_pct),
        text(col::TAX_TYPE, |p| &p.texts[9]),
        text(col::ORIGIN_INDICATOR, |p| &p.texts[10]),
        numbers(col::NET_MASS_KG, |p| &p.net_mass_kg),
        Box::new(move || Ok(all(parts, |p| &p.quantity).collect::<Float64Chunked>().with_name(col::QUANTITY.into()).into_column())),
        Box::new(move || t.column(col::QUANTITY_UNIT, all(parts, |p| &p.quantity_unit))),
        numbers(col::ITEM_PRICE, |p| &p.item_price),
        text(col::CURRENCY, |p| &p.currency),
        numbers(col::VALUE_USD, |p| &p.value_usd),
        derived(col::DUTY_USD, |p, i| Some(p.value_usd[i] * p.tax_rate_pct[i] / 100.0)),
        // A unit price needs a mass and a value: zero-mass rows and declared-free goods get none.
        derived(col::UNIT_PRICE_USD_KG, |p, i| {
            (p.net_mass_kg[i] > 0.0 && p.item_price[i] > 0.0).then(|| p.value_usd[i] / p.net_mass_kg[i])
        }),
        labels(col::FRAUD, |p| &p.fraud),
        labels(col::CRITICAL_FRAUD, |p| &p.critical_fraud),
        integers(col::SOURCE_LINE, |p| &p.line),
    ];
    let mut columns = columns.par_iter().map(|build| build()).collect::<PolarsResult<Vec<_>>>()?;
    if t.times {
        columns.extend(crate::release::columns(accepted(rows, keep).map(|r| &r.release)));
    }
    DataFrame::new_infer_height(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, item: i32, content: u64) -> Result<(Row<'static>, u64), ()> {
        Ok((Row { declaration_id: Cow::Owned(id.to_owned()), item_no: item, ..Row::default() }, content))
    }

    #[test]
    fn the_first_occurrence_of_a_key_wins_within_and_across_chunks() {
        let mut seen = Seen::default();
        let first = [row("a", 1, 10), Err(()), row("b", 1, 20), row("a", 1, 10), row("a", 2, 30), row("a", 1, 11)];
        let (exact, conflicting) = (Some(Repeat::Exact), Some(Repeat::Conflicting));
        assert_eq!(seen.check(&first), vec![None, None, None, exact, None, conflicting]);
        let second = [row("b", 1, 99), row("a", 2, 30), row("c", 1, 40), row("c", 1, 40)];
        assert_eq!(seen.check(&second), vec![conflicting, exact, None, exact]);
        // Many keys: each new once, then each a repeat, whatever shard it falls in.
        let keys: Vec<_> = (0..1_000).map(|i| row(&format!("d{i}"), i % 7, 1)).collect();
        assert!(seen.check(&keys).iter().all(Option::is_none));
        assert!(seen.check(&keys).iter().all(|r| *r == exact));
    }
}
