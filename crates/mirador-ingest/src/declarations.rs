//! Validation of declarations: one row per goods item.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{Datelike, NaiveDate};
use mirador_schema::col;
use polars::prelude::*;
use rayon::prelude::*;

use crate::fx::FxTable;
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
}

/// Accepted declarations, column by column.
#[derive(Default)]
struct Columns {
    declaration_id: Vec<String>,
    item_no: Vec<i32>,
    date: Vec<i32>,
    period: Vec<String>,
    office_id: Vec<String>,
    process_type: Vec<String>,
    import_type: Vec<String>,
    import_use: Vec<String>,
    payment_type: Vec<String>,
    transport_mode: Vec<String>,
    declarant_id: Vec<String>,
    importer_id: Vec<String>,
    seller_id: Vec<String>,
    courier_id: Vec<Option<String>>,
    hs_code: Vec<String>,
    hs6: Vec<String>,
    departure_country: Vec<&'static str>,
    origin_country: Vec<&'static str>,
    tax_rate_pct: Vec<f64>,
    tax_type: Vec<String>,
    origin_indicator: Vec<String>,
    net_mass_kg: Vec<f64>,
    quantity: Vec<Option<f64>>,
    quantity_unit: Vec<Option<String>>,
    item_price: Vec<f64>,
    currency: Vec<String>,
    value_usd: Vec<f64>,
    duty_usd: Vec<f64>,
    unit_price: Vec<Option<f64>>,
    fraud: Vec<Option<i8>>,
    critical_fraud: Vec<Option<i8>>,
    source_line: Vec<i32>,
}

/// One validated row.
#[derive(Default)]
struct Row {
    declaration_id: String,
    item_no: i32,
    date: NaiveDate,
    period: String,
    hs6: String,
    texts: [String; 11],
    courier_id: Option<String>,
    hs_code: String,
    departure_country: &'static str,
    origin_country: &'static str,
    tax_rate_pct: f64,
    net_mass_kg: f64,
    quantity: Option<f64>,
    quantity_unit: Option<String>,
    item_price: f64,
    currency: String,
    usd_per_unit: f64,
    fraud: Option<i8>,
    critical_fraud: Option<i8>,
    hs_repaired: bool,
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

/// Largest value of one goods item accepted (USD); above it the row is quarantined.
pub const MAX_ITEM_VALUE_USD: f64 = 1.0e13;
/// Largest net mass of one goods item accepted (kg).
pub const MAX_ITEM_MASS_KG: f64 = 1.0e12;

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
        }
    }
}

fn validate(m: &Mapped<'_>, f: &Fields<'_>, raw: &crate::read::RawRow, r: &DeclarationRules<'_>) -> Result<Row, Reject> {
    let d = m.decimal();
    let declaration_id = rules::required(f.declaration_id.get(raw), col::DECLARATION_ID)?.to_owned();
    if declaration_id.chars().any(char::is_control) {
        return Err(Reject::new("control_character", col::DECLARATION_ID, "`declaration_id` contains a control character".into()));
    }
    let item_no = match rules::optional(f.item_no.get(raw)) {
        None => 1,
        Some(v) => {
            let x = rules::number(v, d, col::ITEM_NO)?;
            if x < 1.0 || x.fract() != 0.0 || x > 100_000.0 {
                return Err(Reject::new("bad_item_no", col::ITEM_NO, format!("`item_no` = `{v}` is not a positive integer")));
            }
            x as i32
        }
    };
    let date = rules::date(rules::required(f.date.get(raw), col::DATE)?, m.date_format(), r.min_date, r.max_date, col::DATE)?;
    let hs = rules::hs_code(rules::required(f.hs_code.get(raw), col::HS_CODE)?, r.hs_lengths, col::HS_CODE)?;
    let origin = rules::declared_country(rules::required(f.origin_country.get(raw), col::ORIGIN_COUNTRY)?, col::ORIGIN_COUNTRY)?;
    let departure = match rules::optional(f.departure_country.get(raw)) {
        Some(v) => rules::declared_country(v, col::DEPARTURE_COUNTRY)?,
        None => origin,
    };
    let tax_rate_pct = rules::rate_pct(rules::required(f.tax_rate_pct.get(raw), col::TAX_RATE_PCT)?, d, col::TAX_RATE_PCT)?;
    let net_mass_kg = rules::non_negative(rules::required(f.net_mass_kg.get(raw), col::NET_MASS_KG)?, d, col::NET_MASS_KG)?;
    let item_price = rules::non_negative(rules::required(f.item_price.get(raw), col::ITEM_PRICE)?, d, col::ITEM_PRICE)?;
    let quantity = match rules::optional(f.quantity.get(raw)) {
        Some(v) => Some(rules::non_negative(v, d, col::QUANTITY)?),
        None => None,
    };
    let quantity_unit = rules::optional(f.quantity_unit.get(raw)).map(str::to_owned);
    let currency = rules::currency(rules::required(f.currency.get(raw), col::CURRENCY)?, col::CURRENCY)?;
    let period = format!("{:04}-{:02}", date.year(), date.month());
    let usd_per_unit =
        r.fx.rate(&currency, &period)
            .ok_or_else(|| Reject::new("missing_fx_rate", col::CURRENCY, format!("no exchange rate for `{currency}` in {period}")))?;
    let value_usd = item_price * usd_per_unit;
    if value_usd > MAX_ITEM_VALUE_USD {
        return Err(Reject::new(
            "implausible_value",
            col::ITEM_PRICE,
            format!("one goods item worth {value_usd:.3e} USD (more than {MAX_ITEM_VALUE_USD:e}) is a keying or unit error"),
        ));
    }
    if net_mass_kg > MAX_ITEM_MASS_KG {
        return Err(Reject::new(
            "implausible_mass",
            col::NET_MASS_KG,
            format!("one goods item of {net_mass_kg:.3e} kg (more than {MAX_ITEM_MASS_KG:e}) is a keying or unit error"),
        ));
    }
    let fraud = rules::label(f.fraud.get(raw), &[0, 1], col::FRAUD)?;
    let critical_fraud = rules::label(f.critical_fraud.get(raw), &[0, 1, 2], col::CRITICAL_FRAUD)?;
    let mut texts: [String; 11] = Default::default();
    for ((slot, name), field) in texts.iter_mut().zip(TEXTS).zip(&f.texts) {
        let v =
            if name == col::IMPORTER_ID { rules::required(field.get(raw), name)? } else { rules::optional(field.get(raw)).unwrap_or("-") };
        if v.chars().any(char::is_control) {
            return Err(Reject::new("control_character", name, format!("`{name}` contains a control character (NUL, escape, line break)")));
        }
        *slot = v.to_owned();
    }
    Ok(Row {
        declaration_id,
        item_no,
        date,
        period,
        hs6: hs.code[..6].to_owned(),
        texts,
        courier_id: rules::optional(f.courier_id.get(raw)).map(str::to_owned),
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
}

/// Rows validated per parallel batch.
const CHUNK_ROWS: usize = 32_768;

/// Validates every row; accepted rows become the canonical declarations frame.
pub fn ingest(
    sources: &[Mapped<'_>],
    r: &DeclarationRules<'_>,
    quarantine: &mut Quarantine,
) -> Result<(DataFrame, Reconciliation, DeclarationStats), crate::IngestError> {
    let types = Types::new();
    let mut c = Columns::default();
    let mut out = frame(Columns::default(), &types)?;
    let mut block = frame(Columns::default(), &types)?;
    let mut rec = Reconciliation::default();
    let mut stats = DeclarationStats::default();
    let mut seen = Seen::default();
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    for m in sources {
        let fields = Fields::new(m);
        // Rows are validated in parallel a chunk at a time (memory stays bounded), then
        // de-duplicated and appended in file order. The next chunk is read while this one is
        // validated: reading is sequential, and would otherwise leave a core idle.
        let mut next = m.next_rows(CHUNK_ROWS)?;
        // The previous chunk's accepted rows, becoming arrow arrays while this chunk validates.
        let mut pending: Option<Columns> = None;
        while !next.is_empty() {
            let chunk = next;
            let previous = pending.take();
            let (read, (validated, framed)) = rayon::join(
                || m.next_rows(CHUNK_ROWS),
                || {
                    rayon::join(
                        || -> Vec<Result<(Row, u64), Reject>> {
                            chunk
                                .par_iter()
                                .map(|raw| match &raw.malformed {
                                    Some(why) => Err(Reject::new("malformed_row", "", format!("line {} {why}", raw.line))),
                                    None => validate(m, &fields, raw, r).map(|row| (row, content_hash(&raw.fields))),
                                })
                                .collect()
                        },
                        || previous.map(|p| frame(p, &types)).transpose(),
                    )
                },
            );
            next = read?;
            if let Some(framed) = framed? {
                append_rows(&mut out, &mut block, framed)?;
            }
            let repeats = seen.check(&validated);
            for ((raw, result), repeat) in chunk.iter().zip(validated).zip(repeats) {
                rec.rows_in += 1;
                let (row, _) = match result {
                    Ok(ok) => ok,
                    Err(reject) => {
                        quarantine.push(crate::DECLARATIONS, m, raw, &reject);
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
                    quarantine.push(crate::DECLARATIONS, m, raw, &reject);
                    continue;
                }
                stats.hs_leading_zero_restored += usize::from(row.hs_repaired);
                push(&mut c, row, raw.line, epoch, &mut stats);
            }
            // Each chunk's rows become compact arrow arrays during the next chunk: a Rust string
            // per value and column never outlives two chunks.
            rec.accepted += c.declaration_id.len();
            pending = Some(std::mem::take(&mut c));
        }
        if let Some(last) = pending {
            append_rows(&mut out, &mut block, frame(last, &types)?)?;
        }
    }
    append_block(&mut out, &mut block)?;
    rec.quarantined = rec.rows_in - rec.accepted;
    Ok((out, rec, stats))
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
    shards: Vec<HashMap<(String, i32), u64, foldhash::fast::FixedState>>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { shards: (0..SEEN_SHARDS).map(|_| HashMap::default()).collect() }
    }
}

impl Seen {
    /// For each row of a chunk, in order: whether its key came earlier (in this chunk or an
    /// earlier one). Valid rows seen for the first time are recorded.
    fn check<E: Sync>(&mut self, rows: &[Result<(Row, u64), E>]) -> Vec<Option<Repeat>> {
        use std::hash::BuildHasher;
        let shard_of = |row: &Row| {
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
                    match seen.entry((row.declaration_id.clone(), row.item_no)) {
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

fn content_hash(fields: &csv::StringRecord) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    fields.len().hash(&mut h);
    for f in fields {
        f.hash(&mut h);
    }
    h.finish()
}

fn push(c: &mut Columns, row: Row, line: usize, epoch: NaiveDate, stats: &mut DeclarationStats) {
    let value_usd = row.item_price * row.usd_per_unit;
    c.declaration_id.push(row.declaration_id);
    c.item_no.push(row.item_no);
    c.date.push((row.date - epoch).num_days() as i32);
    c.period.push(row.period);
    let [office, process, import_type, import_use, payment, transport, declarant, importer, seller, tax_type, origin_indicator] = row.texts;
    c.office_id.push(office);
    c.process_type.push(process);
    c.import_type.push(import_type);
    c.import_use.push(import_use);
    c.payment_type.push(payment);
    c.transport_mode.push(transport);
    c.declarant_id.push(declarant);
    c.importer_id.push(importer);
    c.seller_id.push(seller);
    c.tax_type.push(tax_type);
    c.courier_id.push(row.courier_id);
    c.hs6.push(row.hs6);
    c.hs_code.push(row.hs_code);
    c.departure_country.push(row.departure_country);
    c.origin_country.push(row.origin_country);
    c.tax_rate_pct.push(row.tax_rate_pct);
    c.origin_indicator.push(origin_indicator);
    c.net_mass_kg.push(row.net_mass_kg);
    c.quantity.push(row.quantity);
    c.quantity_unit.push(row.quantity_unit);
    c.item_price.push(row.item_price);
    c.currency.push(row.currency);
    c.value_usd.push(value_usd);
    c.duty_usd.push(value_usd * row.tax_rate_pct / 100.0);
    stats.unknown_origin += usize::from(row.origin_country == mirador_schema::country::AREAS_NES);
    if row.net_mass_kg == 0.0 {
        stats.zero_mass += 1;
    }
    if row.item_price == 0.0 {
        stats.zero_value += 1;
    }
    // A unit price needs a mass and a value: zero-mass rows and declared-free goods get none.
    if row.net_mass_kg > 0.0 && row.item_price > 0.0 {
        c.unit_price.push(Some(value_usd / row.net_mass_kg));
    } else {
        c.unit_price.push(None);
    }
    c.fraud.push(row.fraud);
    c.critical_fraud.push(row.critical_fraud);
    c.source_line.push(line as i32);
}

/// The types of the declarations' categorical columns, one mapping each, shared by every chunk
/// of one ingest (chunks of one column stack only when they share it).
struct Types(Vec<(&'static str, DataType)>);

impl Types {
    fn new() -> Self {
        Types(mirador_schema::schemas::DECLARATION_CATEGORICALS.iter().map(|c| (*c, mirador_schema::text::categorical_type(c))).collect())
    }

    fn column<'s>(&self, name: &'static str, values: impl IntoIterator<Item = Option<&'s str>>) -> PolarsResult<Column> {
        let Some((_, dtype)) = self.0.iter().find(|(c, _)| *c == name) else {
            polars_bail!(ColumnNotFound: "`{name}` is not a categorical declarations column")
        };
        mirador_schema::text::categorical_of(values, name, dtype)
    }

    fn texts(&self, name: &'static str, values: &[String]) -> PolarsResult<Column> {
        self.column(name, values.iter().map(|v| Some(v.as_str())))
    }
}

fn frame(c: Columns, t: &Types) -> PolarsResult<DataFrame> {
    let date = Column::new(col::DATE.into(), c.date).cast(&DataType::Date)?;
    DataFrame::new_infer_height(vec![
        Column::new(col::DECLARATION_ID.into(), c.declaration_id),
        Column::new(col::ITEM_NO.into(), c.item_no),
        date,
        t.texts(col::PERIOD, &c.period)?,
        t.texts(col::OFFICE_ID, &c.office_id)?,
        t.texts(col::PROCESS_TYPE, &c.process_type)?,
        t.texts(col::IMPORT_TYPE, &c.import_type)?,
        t.texts(col::IMPORT_USE, &c.import_use)?,
        t.texts(col::PAYMENT_TYPE, &c.payment_type)?,
        t.texts(col::TRANSPORT_MODE, &c.transport_mode)?,
        t.texts(col::DECLARANT_ID, &c.declarant_id)?,
        t.texts(col::IMPORTER_ID, &c.importer_id)?,
        t.texts(col::SELLER_ID, &c.seller_id)?,
        t.column(col::COURIER_ID, c.courier_id.iter().map(Option::as_deref))?,
        t.texts(col::HS_CODE, &c.hs_code)?,
        t.texts(col::HS6, &c.hs6)?,
        t.column(col::DEPARTURE_COUNTRY, c.departure_country.iter().map(|v| Some(*v)))?,
        t.column(col::ORIGIN_COUNTRY, c.origin_country.iter().map(|v| Some(*v)))?,
        Column::new(col::TAX_RATE_PCT.into(), c.tax_rate_pct),
        t.texts(col::TAX_TYPE, &c.tax_type)?,
        t.texts(col::ORIGIN_INDICATOR, &c.origin_indicator)?,
        Column::new(col::NET_MASS_KG.into(), c.net_mass_kg),
        Column::new(col::QUANTITY.into(), c.quantity),
        t.column(col::QUANTITY_UNIT, c.quantity_unit.iter().map(Option::as_deref))?,
        Column::new(col::ITEM_PRICE.into(), c.item_price),
        t.texts(col::CURRENCY, &c.currency)?,
        Column::new(col::VALUE_USD.into(), c.value_usd),
        Column::new(col::DUTY_USD.into(), c.duty_usd),
        Column::new(col::UNIT_PRICE_USD_KG.into(), c.unit_price),
        Column::new(col::FRAUD.into(), c.fraud),
        Column::new(col::CRITICAL_FRAUD.into(), c.critical_fraud),
        Column::new(col::SOURCE_LINE.into(), c.source_line),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, item: i32, content: u64) -> Result<(Row, u64), ()> {
        Ok((Row { declaration_id: id.to_owned(), item_no: item, ..Row::default() }, content))
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
