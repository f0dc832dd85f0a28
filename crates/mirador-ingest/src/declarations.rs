//! Validation of declarations: one row per goods item.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use chrono::{Datelike, NaiveDate};
use mirador_schema::col;
use polars::prelude::*;
use rayon::prelude::*;

use crate::fx::FxTable;
use crate::read::{Raw, RawBlock};
use crate::rules::{self, Reject};
use crate::source::{CHUNK_ROWS, Field, FieldOf, Mapped, Quarantine, Reconciliation};

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

/// The key of a declarations row: ingest quarantines every later row of a key (exact or
/// conflicting duplicates, [`Seen`]), and later steps only drop rows, so the accepted rows'
/// keys are unique (neither column is ever null), which the run's `unique` test of the
/// declarations then takes as proven rather than hashing every key again.
pub const UNIQUE_KEY: [&str; 2] = [col::DECLARATION_ID, col::ITEM_NO];

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

#[cfg(test)]
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

#[cfg(test)]
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

    /// The place of `date`'s month in the table, if there.
    fn index(&self, date: NaiveDate) -> Option<u32> {
        let i = usize::try_from(Self::month(date) - self.first).ok()?;
        (i < self.texts.len()).then(|| u32::try_from(i).ok()).flatten()
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

/// The rules of the optional descriptive column `name` (one of [`TEXTS`]; the importer is
/// mandatory), on its value alone.
fn text_rule<'r>(v: Option<Raw<'r>>, name: &str, id_case: rules::IdCase) -> Result<Cow<'r, str>, Reject> {
    let v = if name == col::IMPORTER_ID { rules::required_value(v, name)? } else { rules::optional_value(v).unwrap_or(Raw::Text("-")) };
    let v = clean(v, name)?;
    Ok(if PARTY_IDS.contains(&name) { rules::party_id(v, id_case) } else { v })
}

/// The rules of the HS code, on its value alone: the code and whether a lost leading zero was
/// restored.
fn hs_rule<'r>(v: Option<Raw<'r>>, r: &DeclarationRules<'_>) -> Result<(Cow<'r, str>, bool), Reject> {
    let hs_raw = rules::required_value(v, col::HS_CODE)?.text();
    let hs = rules::hs_code(&hs_raw, r.hs_lengths, r.hs_vintages, col::HS_CODE)?;
    let hs = rules::known_hs(hs, &hs_raw, r.hs_known, r.hs_vintages, col::HS_CODE)?;
    Ok((Cow::Owned(hs.code), hs.repaired))
}

/// The departure country's rules, on its value alone: `None` when empty (the origin then).
fn departure_rule(v: Option<Raw<'_>>) -> Result<Option<&'static str>, Reject> {
    match rules::optional_value(v) {
        Some(v) => rules::declared_country(&v.text(), col::DEPARTURE_COUNTRY).map(Some),
        None => Ok(None),
    }
}

/// The currency's rules, on its value alone.
fn currency_rule(v: Option<Raw<'_>>) -> Result<Cow<'_, str>, Reject> {
    match rules::required_value(v, col::CURRENCY)? {
        Raw::Text(v) => rules::currency_code(v, col::CURRENCY),
        typed => Ok(Cow::Owned(rules::currency(&typed.text(), col::CURRENCY)?)),
    }
}

/// A value-only rule's result for every entry of a column read as its dictionary
/// ([`crate::read::Coded`]): a row's result is then its entry's, found without running the
/// rule again. Entries no row uses are judged too, and reject nothing.
struct Memo<'r, T> {
    /// Each row's entry (the whole block's rows).
    ids: &'r [u32],
    /// Each entry's result.
    results: Vec<Result<T, Reject>>,
}

impl<'r, T: Send> Memo<'r, T> {
    /// `rule` run on every entry of `f`'s column, when it is read as its dictionary.
    fn new(f: FieldOf<'r>, rule: impl Fn(Option<Raw<'r>>) -> Result<T, Reject> + Sync) -> Option<Self> {
        let (ids, values) = f.coded()?;
        let results = values.into_par_iter().with_min_len(512).map(&rule).collect();
        Some(Memo { ids, results })
    }
}

impl<T> Memo<'_, T> {
    /// The entry and result of the block's row `at`.
    #[inline]
    fn at(&self, at: usize) -> (u32, &Result<T, Reject>) {
        let e = self.ids[at];
        (e, &self.results[e as usize])
    }
}

/// The value-only rules of one block's columns read as dictionaries, run once per entry
/// ([`Memo`]); `None` for a column read otherwise (CSV, plain-encoded parquet text, a typed
/// column), whose rows are validated one by one.
#[derive(Default)]
struct Memos<'r> {
    texts: [Option<Memo<'r, Cow<'r, str>>>; 11],
    hs_code: Option<Memo<'r, (Cow<'r, str>, bool)>>,
    origin_country: Option<Memo<'r, &'static str>>,
    departure_country: Option<Memo<'r, Option<&'static str>>>,
    currency: Option<Memo<'r, Cow<'r, str>>>,
    quantity_unit: Option<Memo<'r, Option<Cow<'r, str>>>>,
    courier_id: Option<Memo<'r, Option<Cow<'r, str>>>>,
}

impl<'r> Memos<'r> {
    fn new(f: &Fields<'r>, rows: &'r RawBlock, r: &DeclarationRules<'_>) -> Self {
        let field = |f: &Field<'r>| f.of(rows);
        let id_case = r.id_case;
        let mut texts: [Option<Memo<'r, Cow<'r, str>>>; 11] = Default::default();
        for ((slot, name), text) in texts.iter_mut().zip(TEXTS).zip(&f.texts) {
            *slot = Memo::new(field(text), |v| text_rule(v, name, id_case));
        }
        Memos {
            texts,
            hs_code: Memo::new(field(&f.hs_code), |v| hs_rule(v, r)),
            origin_country: Memo::new(field(&f.origin_country), |v| {
                rules::declared_country(&rules::required_value(v, col::ORIGIN_COUNTRY)?.text(), col::ORIGIN_COUNTRY)
            }),
            departure_country: Memo::new(field(&f.departure_country), departure_rule),
            currency: Memo::new(field(&f.currency), currency_rule),
            quantity_unit: Memo::new(field(&f.quantity_unit), |v| Ok(rules::optional_value(v).map(Raw::text))),
            courier_id: Memo::new(field(&f.courier_id), |v| Ok(rules::optional_value(v).map(|v| rules::party_id(v.text(), id_case)))),
        }
    }
}

/// Runs a rule over the rows of `part` not yet rejected, through its [`Memo`] when there is
/// one (each row's value borrowed from its entry's by `lend`, its entry kept in `ids`), else by
/// `rule` on each row.
fn pass_memo<'m, T, U: Default>(
    rejected: &mut [Option<Reject>],
    part: &std::ops::Range<usize>,
    memo: Option<&'m Memo<'_, T>>,
    ids: &mut Vec<u32>,
    lend: impl Fn(&'m T) -> U,
    rule: impl FnMut(usize) -> Result<U, Reject>,
) -> Vec<U> {
    match memo {
        Some(memo) => {
            *ids = memo.ids[part.clone()].to_vec();
            pass(rejected, |i| match memo.at(part.start + i).1 {
                Ok(v) => Ok(lend(v)),
                Err(e) => Err(e.clone()),
            })
        }
        None => pass(rejected, rule),
    }
}

/// Runs a rule over the rows of `part` not yet rejected through its [`Memo`], keeping only each
/// row's entry in `ids` (the frame takes a row's value from its entry's).
fn check_memo<T>(rejected: &mut [Option<Reject>], part: &std::ops::Range<usize>, memo: &Memo<'_, T>, ids: &mut Vec<u32>) {
    *ids = memo.ids[part.clone()].to_vec();
    for (rejected, e) in rejected.iter_mut().zip(ids.iter()) {
        if rejected.is_none()
            && let Err(e) = &memo.results[*e as usize]
        {
            *rejected = Some(e.clone());
        }
    }
}

#[cfg(test)]
fn validate<'r>(
    m: &Mapped<'_>,
    f: &Fields<'r>,
    raw: crate::read::BlockRow<'r>,
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

/// Rows validated together by [`validate_part`]: each rule reads its column for this many rows
/// at a time, which stay in cache.
const PART_ROWS: usize = 2_048;

/// Runs `rule` on every row of a part not yet rejected; a row that fails keeps its first reject.
/// Returns each row's value (the default for a rejected row).
fn pass<T: Default>(rejected: &mut [Option<Reject>], mut rule: impl FnMut(usize) -> Result<T, Reject>) -> Vec<T> {
    rejected
        .iter_mut()
        .enumerate()
        .map(|(i, rejected)| {
            if rejected.is_some() {
                return T::default();
            }
            rule(i).unwrap_or_else(|e| {
                *rejected = Some(e);
                T::default()
            })
        })
        .collect()
}

/// Some rows of a block, validated ([`validate_part`]), column by column: each row's reject,
/// and each column's values (a rejected row's are defaults). Text is borrowed from the block
/// (or from the source's mapping).
#[derive(Default)]
struct Part<'r> {
    /// Why each row is rejected; `None` for a valid row.
    rejected: Vec<Option<Reject>>,
    /// Each row's line in its file.
    line: Vec<i32>,
    /// Each row's content hash.
    hash: Vec<u64>,
    declaration_id: Vec<Cow<'r, str>>,
    item_no: Vec<i32>,
    /// Days since 1970-01-01.
    date: Vec<i32>,
    period: Vec<Cow<'r, str>>,
    /// The descriptive texts, the courier, the HS code and the quantity unit are empty for a
    /// column read as a dictionary: the frame takes them from the rows' entries ([`Part::ids`]).
    texts: [Vec<Cow<'r, str>>; 11],
    courier_id: Vec<Option<Cow<'r, str>>>,
    hs_code: Vec<Cow<'r, str>>,
    hs_repaired: Vec<bool>,
    departure_country: Vec<&'static str>,
    origin_country: Vec<&'static str>,
    tax_rate_pct: Vec<f64>,
    net_mass_kg: Vec<f64>,
    quantity: Vec<Option<f64>>,
    quantity_unit: Vec<Option<Cow<'r, str>>>,
    item_price: Vec<f64>,
    currency: Vec<Cow<'r, str>>,
    value_usd: Vec<f64>,
    fraud: Vec<Option<i8>>,
    critical_fraud: Vec<Option<i8>>,
    /// Each row's release times; empty when the file carries none (every row's the default).
    release: Vec<crate::release::Release<'r>>,
    /// Each row's entry in the dictionary of the column its categorical value comes from (see
    /// [`Memo`]), for the columns read so; empty for the others. A row's value is a function
    /// of its entry: [`Types::coded_column`] codes each entry once.
    ids: Ids,
}

/// Each row's dictionary entry of the columns read as dictionaries (see [`Part::ids`]).
#[derive(Default)]
struct Ids {
    /// The period's month in the table of periods ([`Periods::index`]).
    period: Vec<u32>,
    texts: [Vec<u32>; 11],
    hs_code: Vec<u32>,
    origin_country: Vec<u32>,
    currency: Vec<u32>,
    quantity_unit: Vec<u32>,
    courier_id: Vec<u32>,
    /// Entries of the departure country's column, only to borrow the memo's values.
    departure_country: Vec<u32>,
}

impl Part<'_> {
    /// Keeps the rows whose `keep` is set, in order.
    fn retain(&mut self, keep: &[bool]) {
        fn only<T>(values: &mut Vec<T>, keep: &[bool]) {
            let mut k = keep.iter();
            values.retain(|_| k.next().copied().unwrap_or(false));
        }
        only(&mut self.rejected, keep);
        only(&mut self.line, keep);
        only(&mut self.hash, keep);
        only(&mut self.declaration_id, keep);
        only(&mut self.item_no, keep);
        only(&mut self.date, keep);
        only(&mut self.period, keep);
        for t in &mut self.texts {
            only(t, keep);
        }
        only(&mut self.courier_id, keep);
        only(&mut self.hs_code, keep);
        only(&mut self.hs_repaired, keep);
        only(&mut self.departure_country, keep);
        only(&mut self.origin_country, keep);
        only(&mut self.tax_rate_pct, keep);
        only(&mut self.net_mass_kg, keep);
        only(&mut self.quantity, keep);
        only(&mut self.quantity_unit, keep);
        only(&mut self.item_price, keep);
        only(&mut self.currency, keep);
        only(&mut self.value_usd, keep);
        only(&mut self.fraud, keep);
        only(&mut self.critical_fraud, keep);
        only(&mut self.release, keep);
        let ids = &mut self.ids;
        for t in &mut ids.texts {
            only(t, keep);
        }
        for v in
            [&mut ids.period, &mut ids.hs_code, &mut ids.origin_country, &mut ids.currency, &mut ids.quantity_unit, &mut ids.courier_id]
        {
            only(v, keep);
        }
        ids.departure_country.clear();
    }

    /// Rows held.
    fn len(&self) -> usize {
        self.rejected.len()
    }
}

#[allow(clippy::many_single_char_names, reason = "the names of validate's, rule for rule")]
/// Validates the rows of `part` of a block column by column: each rule of [`validate`] in turn
/// over the rows not yet rejected, so that a row's reason is the first rule it fails in
/// [`validate`]'s order, and a valid row's values are those [`validate`] gives it. `hashes` are
/// the rows' content hashes; `memos` the block's rules run once per dictionary entry.
#[allow(clippy::too_many_arguments, reason = "the block, its part and everything validation reads")]
fn validate_part<'r>(
    m: &Mapped<'_>,
    f: &Fields<'r>,
    rows: &'r RawBlock,
    part: std::ops::Range<usize>,
    r: &DeclarationRules<'_>,
    periods: &'r Periods,
    hashes: &[u64],
    memos: &'r Memos<'r>,
) -> Part<'r> {
    let d = m.decimal();
    let mut ids = Ids::default();
    let at = |i: usize| part.start + i;
    let raw = |i: usize| rows.row(at(i));
    let mut rejected: Vec<Option<Reject>> =
        (0..part.len()).map(|i| raw(i).malformed().map(|why| Reject::new(why.code, "", format!("line {} {why}", raw(i).line())))).collect();
    let rej = &mut rejected;
    let field = |f: &Field<'r>| f.of(rows);
    let declaration_id = {
        let c = field(&f.declaration_id);
        pass(rej, |i| rules::declaration_id_value(c.value(at(i)), col::DECLARATION_ID))
    };
    let item_no = {
        let c = field(&f.item_no);
        pass(rej, |i| rules::item_no_value(c.value(at(i)), d, col::ITEM_NO))
    };
    let date = {
        let c = field(&f.date);
        pass(rej, |i| {
            let date =
                rules::date_value(rules::required_value(c.value(at(i)), col::DATE)?, m.date_format(), r.min_date, r.max_date, col::DATE)?;
            if date > r.run_day {
                return Err(Reject::new(
                    "date_in_future",
                    col::DATE,
                    format!("`{}` = {date} is after the day of the run ({}): a typo, or a clock set wrong", col::DATE, r.run_day),
                ));
            }
            Ok(date)
        })
    };
    // With a memo, the code itself is taken from the entry's by the frame.
    let (hs_code, hs_repaired): (Vec<Cow<'r, str>>, Vec<bool>) = if let Some(memo) = &memos.hs_code {
        (Vec::new(), pass_memo(rej, &part, Some(memo), &mut ids.hs_code, |(_, repaired)| *repaired, |_| Ok(false)))
    } else {
        let c = field(&f.hs_code);
        pass(rej, |i| hs_rule(c.value(at(i)), r)).into_iter().unzip()
    };
    let origin_country = {
        let c = field(&f.origin_country);
        pass_memo(
            rej,
            &part,
            memos.origin_country.as_ref(),
            &mut ids.origin_country,
            |v| *v,
            |i| rules::declared_country(&rules::required_value(c.value(at(i)), col::ORIGIN_COUNTRY)?.text(), col::ORIGIN_COUNTRY),
        )
    };
    let departure_country = {
        let c = field(&f.departure_country);
        pass_memo(rej, &part, memos.departure_country.as_ref(), &mut ids.departure_country, |v| *v, |i| departure_rule(c.value(at(i))))
            .into_iter()
            .zip(&origin_country)
            .map(|(departure, origin)| departure.unwrap_or(origin))
            .collect::<Vec<_>>()
    };
    let tax_rate_pct = {
        let c = field(&f.tax_rate_pct);
        pass(rej, |i| rules::rate_pct_value(rules::required_value(c.value(at(i)), col::TAX_RATE_PCT)?, d, col::TAX_RATE_PCT))
    };
    let net_mass_kg = {
        let c = field(&f.net_mass_kg);
        pass(rej, |i| rules::non_negative_value(rules::required_value(c.value(at(i)), col::NET_MASS_KG)?, d, col::NET_MASS_KG))
    };
    let item_price = {
        let c = field(&f.item_price);
        pass(rej, |i| rules::non_negative_value(rules::required_value(c.value(at(i)), col::ITEM_PRICE)?, d, col::ITEM_PRICE))
    };
    let quantity = {
        let c = field(&f.quantity);
        pass(rej, |i| match rules::optional_value(c.value(at(i))) {
            Some(v) => Ok(Some(rules::non_negative_value(v, d, col::QUANTITY)?)),
            None => Ok(None),
        })
    };
    let currency = {
        let c = field(&f.currency);
        let lend = |v: &'r Cow<'r, str>| Cow::Borrowed(v.as_ref());
        pass_memo(rej, &part, memos.currency.as_ref(), &mut ids.currency, lend, |i| currency_rule(c.value(at(i))))
    };
    let (period, usd_per_unit): (Vec<Cow<'r, str>>, Vec<f64>) = pass(rej, |i| {
        let period = periods.of(date[i]);
        let currency = &currency[i];
        let usd_per_unit =
            r.fx.rate(currency, &period)
                .ok_or_else(|| Reject::new("missing_fx_rate", col::CURRENCY, format!("no exchange rate for `{currency}` in {period}")))?;
        Ok((period, usd_per_unit))
    })
    .into_iter()
    .unzip();
    // A period's entry is its month in the table of periods (when every row's is there).
    // (A row rejected by now holds no date, nor ever a period.)
    ids.period = (0..part.len())
        .map(|i| if rej[i].is_some() { Some(0) } else { periods.index(date[i]) })
        .collect::<Option<Vec<u32>>>()
        .unwrap_or_default();
    let value_usd = pass(rej, |i| {
        let value_usd = item_price[i] * usd_per_unit[i];
        r.bounds.check(value_usd, net_mass_kg[i])?;
        Ok(value_usd)
    });
    let fraud = {
        let c = field(&f.fraud);
        pass(rej, |i| rules::label_value(c.value(at(i)), &[0, 1], col::FRAUD))
    };
    let critical_fraud = {
        let c = field(&f.critical_fraud);
        pass(rej, |i| rules::label_value(c.value(at(i)), &[0, 1, 2], col::CRITICAL_FRAUD))
    };
    let mut texts: [Vec<Cow<'r, str>>; 11] = Default::default();
    for ((((slot, name), text), memo), ids) in texts.iter_mut().zip(TEXTS).zip(&f.texts).zip(&memos.texts).zip(&mut ids.texts) {
        // With a memo, the value is taken from the entry's by the frame.
        if let Some(memo) = memo {
            check_memo(rej, &part, memo, ids);
        } else {
            let c = field(text);
            *slot = pass(rej, |i| text_rule(c.value(at(i)), name, r.id_case));
        }
    }
    // A file without release times leaves them empty (valid, each row's the default): no
    // rule to run, and nothing held per row.
    let release = if f.release.carried { pass(rej, |i| crate::release::validate(&f.release, raw(i), date[i])) } else { Vec::new() };
    let (quantity_unit, courier_id) = (field(&f.quantity_unit), field(&f.courier_id));
    let valid = |i: usize| rejected[i].is_none();
    // A column read as a dictionary keeps each row's entry only: the frame takes the value from
    // the entry's.
    let lent = |memo: &Memo<'r, Option<Cow<'r, str>>>, ids: &mut Vec<u32>| -> Vec<Option<Cow<'r, str>>> {
        *ids = memo.ids[part.clone()].to_vec();
        Vec::new()
    };
    let quantity_unit = match &memos.quantity_unit {
        Some(memo) => lent(memo, &mut ids.quantity_unit),
        None => (0..part.len()).map(|i| rules::optional_value(quantity_unit.value(at(i))).filter(|_| valid(i)).map(Raw::text)).collect(),
    };
    let courier_id = match &memos.courier_id {
        Some(memo) => lent(memo, &mut ids.courier_id),
        None => (0..part.len())
            .map(|i| rules::optional_value(courier_id.value(at(i))).filter(|_| valid(i)).map(|v| rules::party_id(v.text(), r.id_case)))
            .collect(),
    };
    Part {
        line: (0..part.len()).map(|i| raw(i).line() as i32).collect(),
        hash: hashes.to_vec(),
        declaration_id,
        item_no,
        date: date.iter().map(|d| mirador_schema::day::of(*d)).collect(),
        period,
        texts,
        courier_id,
        hs_code,
        hs_repaired,
        departure_country,
        origin_country,
        tax_rate_pct,
        net_mass_kg,
        quantity,
        quantity_unit,
        item_price,
        currency,
        value_usd,
        fraud,
        critical_fraud,
        release,
        rejected,
        ids,
    }
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
    let mut out = frame(&mut [], &types, &Memos::default(), &periods)?;
    let mut block = frame(&mut [], &types, &Memos::default(), &periods)?;
    let mut rec = Reconciliation::default();
    let mut stats = DeclarationStats::default();
    let mut seen = Seen::with_capacity(sources.iter().map(Mapped::rows_hint).sum());
    for m in sources {
        let accepted_before = rec.accepted;
        let fields = Fields::new(m);
        // Rows are validated in parallel a chunk at a time (memory stays bounded), then
        // de-duplicated and appended in file order. The value-only rules of the columns a block
        // holds as dictionaries run once per entry first, for all its chunks.
        m.each_block(|rows| -> Result<(), crate::IngestError> {
            let memos = Memos::new(&fields, rows, r);
            types.new_block();
            for start in (0..rows.len()).step_by(CHUNK_ROWS) {
                let chunk = start..rows.len().min(start + CHUNK_ROWS);
                let hashes = content_hashes(rows, chunk.clone());
                let mut parts: Vec<Part<'_>> = chunk
                    .clone()
                    .step_by(PART_ROWS)
                    .map(|s| s..chunk.end.min(s + PART_ROWS))
                    .collect::<Vec<_>>()
                    .into_par_iter()
                    .map(|part| {
                        let offset = part.start - chunk.start;
                        validate_part(m, &fields, rows, part.clone(), r, &periods, &hashes[offset..offset + part.len()], &memos)
                    })
                    .collect();
                let keys: Vec<Option<(&str, i32, u64)>> = parts
                    .iter()
                    .flat_map(|p| {
                        (0..p.len()).map(move |i| p.rejected[i].is_none().then(|| (p.declaration_id[i].as_ref(), p.item_no[i], p.hash[i])))
                    })
                    .collect();
                let mut repeats = seen.check(&keys).into_iter();
                drop(keys);
                let mut at = chunk.start;
                for p in &mut parts {
                    // Rows stay where validation put them; `keep` tells the accepted ones.
                    let mut keep = vec![false; p.len()];
                    for (i, keep) in keep.iter_mut().enumerate() {
                        let (raw, repeat) = (rows.row(at), repeats.next().flatten());
                        at += 1;
                        rec.rows_in += 1;
                        if let Some(reject) = &p.rejected[i] {
                            quarantine.push_block(crate::DECLARATIONS, m, raw, reject);
                            continue;
                        }
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
                            let reject =
                                Reject::new(code, col::DECLARATION_ID, format!("`{}` item {}: {msg}", p.declaration_id[i], p.item_no[i]));
                            quarantine.push_block(crate::DECLARATIONS, m, raw, &reject);
                            continue;
                        }
                        stats.count(p, i);
                        *keep = true;
                    }
                    let kept = keep.iter().filter(|k| **k).count();
                    rec.accepted += kept;
                    if kept < p.len() {
                        p.retain(&keep);
                    }
                }
                append_rows(&mut out, &mut block, frame(&mut parts, &types, &memos, &periods)?)?;
            }
            Ok(())
        })?;
        stats.accepted_per_file.push(rec.accepted - accepted_before);
    }
    append_block(&mut out, &mut block)?;
    rec.quarantined = rec.rows_in - rec.accepted;
    Ok((narrowed(&out)?, rec, stats))
}

/// `df` with its categorical columns' codes as narrow as their values allow
/// ([`mirador_schema::text::narrowed`]): the columns are coded in 32 bits while rows come in,
/// and most end up with a few hundred values at most. One byte a row rather than four is about
/// 0.4 GiB less at ten million rows, for a frame every stage reads and the run holds throughout.
fn narrowed(df: &DataFrame) -> PolarsResult<DataFrame> {
    let columns = df.columns().par_iter().map(mirador_schema::text::narrowed).collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(df.height(), columns)
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
    let distinct = day_counts(&days);
    let budget = (ISOLATED_MAX_SHARE * n as f64).floor() as usize;
    // Walk down from the newest day; the lowest gap within the budget is the cut.
    let (mut above, mut cut) = (0usize, None);
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

/// Each day present among `days` with its count, in order of day: counted in an array over the
/// days' range (accepted dates span at most the min-date .. max-date parameters), or in a sorted
/// map when that range is very long.
fn day_counts(days: &[Option<i32>]) -> Vec<(i32, usize)> {
    let (Some(first), Some(last)) = (days.iter().flatten().min(), days.iter().flatten().max()) else { return Vec::new() };
    let span = (i64::from(*last) - i64::from(*first)) as usize;
    if span >= 1 << 24 {
        let mut counts: std::collections::BTreeMap<i32, usize> = std::collections::BTreeMap::new();
        for d in days.iter().flatten() {
            *counts.entry(*d).or_insert(0) += 1;
        }
        return counts.into_iter().collect();
    }
    let mut counts = vec![0usize; span + 1];
    for d in days.iter().flatten() {
        counts[(*d - *first) as usize] += 1;
    }
    counts.into_iter().enumerate().filter(|(_, n)| *n > 0).map(|(k, n)| (*first + k as i32, n)).collect()
}

impl DeclarationStats {
    /// Counts the accepted row `i` of a part.
    fn count(&mut self, p: &Part<'_>, i: usize) {
        self.hs_leading_zero_restored += usize::from(p.hs_repaired[i]);
        self.unknown_origin += usize::from(p.origin_country[i] == mirador_schema::country::AREAS_NES);
        self.zero_mass += usize::from(p.net_mass_kg[i] == 0.0);
        self.zero_value += usize::from(p.item_price[i] == 0.0);
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

/// The hash of a row's (declaration id, item): its low bits choose its shard of [`Seen`], the
/// rest its place in the shard's table.
fn key_hash(id: &str, item: i32) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(SEEN_SHARDS as u64).hash_one((id, item))
}

/// A hasher for keys that are already hashes ([`key_hash`]): the shard's bits are rotated out
/// of the way, so that the table's buckets spread over the rest.
#[derive(Default, Clone, Copy)]
struct PreHashed(u64);

impl std::hash::Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed by this hasher; anything else is folded in, correctly if slowly.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, h: u64) {
        self.0 = h.rotate_right(SEEN_SHARDS.trailing_zeros());
    }
}

/// One key recorded in a [`Shard`]: its id's text lies in the shard's `ids` at `start`.
#[derive(Clone, Copy)]
struct SeenKey {
    content: u64,
    start: u32,
    len: u32,
    item: i32,
}

/// The keys of one shard of [`Seen`]: a table from a key's hash to the key, the ids' text in one
/// buffer (no allocation per key). A key whose hash another key already holds (rare: 64-bit
/// hashes) goes to `collided`, keyed by its text.
#[derive(Default)]
struct Shard {
    table: HashMap<u64, SeenKey, std::hash::BuildHasherDefault<PreHashed>>,
    ids: String,
    collided: HashMap<(Box<str>, i32), u64, foldhash::fast::FixedState>,
}

impl Shard {
    /// Records the key `(id, item)` with its content hash, unless it came earlier: then whether
    /// with the same content.
    fn check(&mut self, hash: u64, id: &str, item: i32, content: u64) -> Option<Repeat> {
        let repeat = |earlier: u64| Some(if earlier == content { Repeat::Exact } else { Repeat::Conflicting });
        let fits = u32::try_from(self.ids.len() + id.len()).is_ok();
        match self.table.entry(hash) {
            Entry::Occupied(e) => {
                let key = e.get();
                let held = &self.ids[key.start as usize..(key.start + key.len) as usize];
                if key.item == item && held == id {
                    return repeat(key.content);
                }
            }
            Entry::Vacant(v) if fits => {
                v.insert(SeenKey { content, start: self.ids.len() as u32, len: id.len() as u32, item });
                self.ids.push_str(id);
                return None;
            }
            Entry::Vacant(_) => {}
        }
        match self.collided.entry((Box::from(id), item)) {
            Entry::Occupied(e) => repeat(*e.get()),
            Entry::Vacant(v) => {
                v.insert(content);
                None
            }
        }
    }
}

/// Every (declaration id, item) accepted so far, with its content hash, split into shards by
/// the key's hash. A key's rows all fall in one shard and are checked there in file order, so
/// the shards can be checked in parallel and the first occurrence still wins.
struct Seen {
    shards: Vec<Shard>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { shards: (0..SEEN_SHARDS).map(|_| Shard::default()).collect() }
    }
}

impl Seen {
    /// Room for about `rows` keys from the start, so that the shards' tables are not grown (and
    /// rehashed) again and again as the keys come.
    fn with_capacity(rows: usize) -> Self {
        let per_shard = rows / SEEN_SHARDS + rows / SEEN_SHARDS / 8;
        let shard =
            || Shard { table: HashMap::with_capacity_and_hasher(per_shard, std::hash::BuildHasherDefault::default()), ..Shard::default() };
        Seen { shards: (0..SEEN_SHARDS).map(|_| shard()).collect() }
    }
}

impl Seen {
    /// For each row of a chunk, in order: whether its key came earlier (in this chunk or an
    /// earlier one). Each row is its key (declaration id, item) and content hash, or `None` when
    /// it is not valid. Valid rows seen for the first time are recorded.
    fn check(&mut self, rows: &[Option<(&str, i32, u64)>]) -> Vec<Option<Repeat>> {
        let hashes: Vec<u64> = rows.par_iter().with_min_len(1_024).map(|r| r.map_or(0, |(id, item, _)| key_hash(id, item))).collect();
        let mut by_shard: Vec<Vec<u32>> = (0..SEEN_SHARDS).map(|_| Vec::with_capacity(2 * rows.len() / SEEN_SHARDS)).collect();
        for (i, (r, h)) in rows.iter().zip(&hashes).enumerate() {
            if r.is_some() {
                by_shard[(h % SEEN_SHARDS as u64) as usize].push(i as u32);
            }
        }
        let found: Vec<Vec<(usize, Repeat)>> = self
            .shards
            .par_iter_mut()
            .zip(by_shard)
            .map(|(shard, indices)| {
                let mut found = Vec::new();
                for i in indices {
                    let i = i as usize;
                    let Some((id, item, content)) = rows[i] else { continue };
                    if let Some(repeat) = shard.check(hashes[i], id, item, content) {
                        found.push((i, repeat));
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
/// twice at the end of ingest). As many as a parquet block's rows ([`Mapped::each_block`]): a
/// block's chunks are copied into one while the next block is read, rather than the last
/// million rows at the end of ingest, with nothing to overlap.
const BLOCK_ROWS: usize = 1 << 18;

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
    /// Each categorical column's type, and the code of every value coded so far.
    categoricals: Vec<(&'static str, DataType, std::sync::Mutex<Codes>)>,
    /// Each categorical column's code of each dictionary entry of the current block
    /// ([`Types::coded_column`]), in the order of `categoricals`.
    entries: Vec<std::sync::Mutex<Vec<u32>>>,
    /// Whether the frame carries the release-time columns.
    times: bool,
}

/// An entry of [`Types::entries`] not coded yet.
const UNCODED: u32 = u32::MAX;
/// An entry of [`Types::entries`] whose rows hold a null.
const NULL_ENTRY: u32 = u32::MAX - 1;

/// The code of each value of a categorical column coded so far ([`Types::column`]).
type Codes = HashMap<Box<str>, u32, foldhash::fast::FixedState>;

impl Types {
    fn new() -> Self {
        Types {
            categoricals: mirador_schema::schemas::DECLARATION_CATEGORICALS
                .iter()
                .map(|c| (*c, mirador_schema::text::categorical_type(c), std::sync::Mutex::new(Codes::default())))
                .collect(),
            entries: mirador_schema::schemas::DECLARATION_CATEGORICALS.iter().map(|_| std::sync::Mutex::default()).collect(),
            times: false,
        }
    }

    /// Forgets the entries' codes: the next rows come from another block, with dictionaries of
    /// their own.
    fn new_block(&self) {
        for entries in &self.entries {
            entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        }
    }

    /// As [`Types::column`], for rows given by their dictionary entry in the current block, and
    /// `value` the value of an entry's rows (`None`: null): each entry is coded once, by its first
    /// row (which keeps the codes in order of first appearance, as coding every row would).
    fn coded_column<'s>(
        &self,
        name: &'static str,
        rows: impl IntoIterator<Item = u32>,
        value: impl Fn(u32) -> Option<&'s str>,
    ) -> PolarsResult<Column> {
        let Some(k) = self.categoricals.iter().position(|(c, _, _)| *c == name) else {
            polars_bail!(ColumnNotFound: "`{name}` is not a categorical declarations column")
        };
        let (_, dtype, codes) = &self.categoricals[k];
        let DataType::Categorical(_, mapping) = dtype else { polars_bail!(SchemaMismatch: "`{name}` does not have a categorical type") };
        let mut entries = self.entries[k].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut codes = codes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut failed = None;
        let mut code = |s: &str| category_code(&mut codes, mapping, &mut failed, s);
        // Each row's code, or NULL_ENTRY for a null.
        let codes: Vec<u32> = rows
            .into_iter()
            .map(|e| {
                let at = e as usize;
                if at >= entries.len() {
                    entries.resize(at + 1, UNCODED);
                }
                if entries[at] == UNCODED {
                    entries[at] = value(e).map_or(NULL_ENTRY, &mut code);
                }
                entries[at]
            })
            .collect();
        if let Some(e) = failed {
            return Err(e);
        }
        let ids = if codes.contains(&NULL_ENTRY) {
            codes.iter().map(|c| (*c != NULL_ENTRY).then_some(*c)).collect()
        } else {
            UInt32Chunked::from_vec(PlSmallStr::EMPTY, codes)
        };
        Ok(Categorical32Chunked::from_cats_and_dtype(ids.with_name(name.into()), dtype.clone()).into_series().into_column())
    }

    fn column<'s>(&self, name: &'static str, values: impl IntoIterator<Item = Option<&'s str>>) -> PolarsResult<Column> {
        let Some((_, dtype, codes)) = self.categoricals.iter().find(|(c, _, _)| *c == name) else {
            polars_bail!(ColumnNotFound: "`{name}` is not a categorical declarations column")
        };
        let DataType::Categorical(_, mapping) = dtype else { polars_bail!(SchemaMismatch: "`{name}` does not have a categorical type") };
        // Rows repeat few values: each distinct value is coded by the column's mapping once per
        // ingest (in order of first appearance, as coding every row would add them), and its
        // code kept for the rows of later chunks.
        let mut codes = codes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut failed = None;
        let mut code = |s: &str| category_code(&mut codes, mapping, &mut failed, s);
        let ids: UInt32Chunked = values.into_iter().map(|v| v.map(&mut code)).collect();
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(Categorical32Chunked::from_cats_and_dtype(ids.with_name(name.into()), dtype.clone()).into_series().into_column())
    }
}

/// The category code of `s` in `mapping`, kept in `codes` for the rows that follow; a mapping
/// that takes no more values leaves its error in `failed` (and gives 0).
fn category_code(codes: &mut Codes, mapping: &CategoricalMapping, failed: &mut Option<PolarsError>, s: &str) -> u32 {
    if let Some(c) = codes.get(s) {
        return *c;
    }
    match mapping.insert_cat(s) {
        Ok(c) => {
            codes.insert(Box::from(s), c);
            c
        }
        Err(e) => {
            failed.get_or_insert(e);
            0
        }
    }
}

/// The accepted rows of some parts (each holding only accepted rows) as a declarations frame
/// ([`mirador_schema::schemas::declarations`]); the columns are built in parallel, each in row
/// order.
/// A column read as a dictionary takes each row's value from its entry's: in `memos` (the
/// block's), or for the period in `periods`.
fn frame<'m>(parts: &mut [Part<'_>], t: &Types, memos: &'m Memos<'m>, periods: &'m Periods) -> PolarsResult<DataFrame> {
    type Build<'b> = Box<dyn Fn() -> PolarsResult<Column> + Send + Sync + 'b>;
    // The values of one column, in row order across the parts, gathered with their exact count
    // known: the column's arrays are then allocated at their size, not grown by doubling.
    fn all<'p, 'x: 'p, T: Copy + 'p>(parts: &'p [Part<'x>], get: fn(&'p Part<'x>) -> &'p [T]) -> std::vec::IntoIter<T> {
        let mut values = Vec::with_capacity(parts.iter().map(|p| get(p).len()).sum());
        for p in parts {
            values.extend_from_slice(get(p));
        }
        values.into_iter()
    }
    fn texts<'p, 'x: 'p>(parts: &'p [Part<'x>], get: fn(&'p Part<'x>) -> &'p [Cow<'x, str>]) -> impl Iterator<Item = &'p str> {
        parts.iter().flat_map(move |p| get(p).iter().map(AsRef::as_ref))
    }
    // An entry's value in a memo (`None` for an entry that fails: no accepted row has it).
    fn entry<'v, T>(memo: Option<&'v Memo<'_, T>>, e: u32) -> Option<&'v T> {
        memo.and_then(|m| m.results.get(e as usize)).and_then(|r| r.as_ref().ok())
    }
    fn optional_texts<'p, 'x: 'p>(
        parts: &'p [Part<'x>],
        get: fn(&'p Part<'x>) -> &'p [Option<Cow<'x, str>>],
    ) -> impl Iterator<Item = Option<&'p str>> {
        parts.iter().flat_map(move |p| get(p).iter().map(Option::as_deref))
    }
    let release: Vec<crate::release::Release<'_>> = if t.times {
        parts
            .iter_mut()
            .flat_map(|p| {
                let rows = p.len();
                let release = std::mem::take(&mut p.release);
                if release.len() == rows { release } else { vec![crate::release::Release::default(); rows] }
            })
            .collect()
    } else {
        Vec::new()
    };
    let parts = &*parts;
    let rows: usize = parts.iter().map(Part::len).sum();
    // Whether every row comes with its dictionary entry (see [`Part::ids`]).
    let coded = move |ids: for<'p> fn(&'p Part<'_>) -> &'p [u32]| parts.iter().all(|p| ids(p).len() == p.len());
    let with_ids = move |ids: for<'p> fn(&'p Part<'_>) -> &'p [u32]| parts.iter().flat_map(move |p| ids(p).iter().copied());
    let coded_text = |name: &'static str,
                      get: for<'p> fn(&'p Part<'_>) -> &'p [Cow<'p, str>],
                      ids: for<'p> fn(&'p Part<'_>) -> &'p [u32],
                      value: Box<dyn Fn(u32) -> Option<&'m str> + Send + Sync + 'm>|
     -> Build<'_> {
        Box::new(move || if coded(ids) { t.coded_column(name, with_ids(ids), &value) } else { t.column(name, texts(parts, get).map(Some)) })
    };
    let text_of = |k: usize| -> Box<dyn Fn(u32) -> Option<&'m str> + Send + Sync + 'm> {
        Box::new(move |e| entry(memos.texts[k].as_ref(), e).map(AsRef::as_ref))
    };
    let coded_optional = |name: &'static str,
                          get: for<'p> fn(&'p Part<'_>) -> &'p [Option<Cow<'p, str>>],
                          ids: for<'p> fn(&'p Part<'_>) -> &'p [u32],
                          value: Box<dyn Fn(u32) -> Option<&'m str> + Send + Sync + 'm>|
     -> Build<'_> {
        Box::new(move || if coded(ids) { t.coded_column(name, with_ids(ids), &value) } else { t.column(name, optional_texts(parts, get)) })
    };
    let hs = |name: &'static str, len: usize| -> Build<'_> {
        let ids: for<'p> fn(&'p Part<'_>) -> &'p [u32] = |p| &p.ids.hs_code;
        let values = move || parts.iter().flat_map(move |p| p.hs_code.iter().map(move |c| Some(&c[..len.min(c.len())])));
        let of_entry = move |e| entry(memos.hs_code.as_ref(), e).map(|(c, _)| &c[..len.min(c.len())]);
        Box::new(move || if coded(ids) { t.coded_column(name, with_ids(ids), of_entry) } else { t.column(name, values()) })
    };
    let numbers = |name: &'static str, get: for<'p> fn(&'p Part<'_>) -> &'p [f64]| -> Build<'_> {
        Box::new(move || Ok(Float64Chunked::from_iter_values(name.into(), all(parts, get)).into_column()))
    };
    let integers = |name: &'static str, get: for<'p> fn(&'p Part<'_>) -> &'p [i32]| -> Build<'_> {
        Box::new(move || Ok(Int32Chunked::from_iter_values(name.into(), all(parts, get)).into_column()))
    };
    let labels = |name: &'static str, get: for<'p> fn(&'p Part<'_>) -> &'p [Option<i8>]| -> Build<'_> {
        Box::new(move || Ok(all(parts, get).collect::<Int8Chunked>().with_name(name.into()).into_column()))
    };
    // Derived amounts, computed row by row from the part's columns.
    let derived = |name: &'static str, get: fn(&Part<'_>, usize) -> Option<f64>| -> Build<'_> {
        Box::new(move || {
            let mut values = Vec::with_capacity(rows);
            for p in parts {
                values.extend((0..p.len()).map(|i| get(p, i)));
            }
            Ok(values.into_iter().collect::<Float64Chunked>().with_name(name.into()).into_column())
        })
    };
    let columns: Vec<Build<'_>> = vec![
        Box::new(|| {
            let mut ids = StringChunkedBuilder::new(col::DECLARATION_ID.into(), rows);
            texts(parts, |p| &p.declaration_id).for_each(|id| ids.append_value(id));
            Ok(ids.finish().into_column())
        }),
        integers(col::ITEM_NO, |p| &p.item_no),
        Box::new(move || Int32Chunked::from_iter_values(col::DATE.into(), all(parts, |p| &p.date)).into_column().cast(&DataType::Date)),
        coded_text(col::PERIOD, |p| &p.period, |p| &p.ids.period, Box::new(|e| periods.texts.get(e as usize).map(String::as_str))),
        coded_text(col::OFFICE_ID, |p| &p.texts[0], |p| &p.ids.texts[0], text_of(0)),
        coded_text(col::PROCESS_TYPE, |p| &p.texts[1], |p| &p.ids.texts[1], text_of(1)),
        coded_text(col::IMPORT_TYPE, |p| &p.texts[2], |p| &p.ids.texts[2], text_of(2)),
        coded_text(col::IMPORT_USE, |p| &p.texts[3], |p| &p.ids.texts[3], text_of(3)),
        coded_text(col::PAYMENT_TYPE, |p| &p.texts[4], |p| &p.ids.texts[4], text_of(4)),
        coded_text(col::TRANSPORT_MODE, |p| &p.texts[5], |p| &p.ids.texts[5], text_of(5)),
        coded_text(col::DECLARANT_ID, |p| &p.texts[6], |p| &p.ids.texts[6], text_of(6)),
        coded_text(col::IMPORTER_ID, |p| &p.texts[7], |p| &p.ids.texts[7], text_of(7)),
        coded_text(col::SELLER_ID, |p| &p.texts[8], |p| &p.ids.texts[8], text_of(8)),
        coded_optional(
            col::COURIER_ID,
            |p| &p.courier_id,
            |p| &p.ids.courier_id,
            Box::new(|e| entry(memos.courier_id.as_ref(), e).and_then(Option::as_deref)),
        ),
        hs(col::HS_CODE, usize::MAX),
        hs(col::HS6, 6),
        Box::new(move || t.column(col::DEPARTURE_COUNTRY, all(parts, |p| &p.departure_country).map(Some))),
        Box::new(move || {
            let ids: for<'p> fn(&'p Part<'_>) -> &'p [u32] = |p| &p.ids.origin_country;
            let values = || all(parts, |p| &p.origin_country).map(Some);
            if coded(ids) {
                t.coded_column(col::ORIGIN_COUNTRY, with_ids(ids), |e| entry(memos.origin_country.as_ref(), e).copied())
            } else {
                t.column(col::ORIGIN_COUNTRY, values())
            }
        }),
        numbers(col::TAX_RATE_PCT, |p| &p.tax_rate_pct),
        coded_text(col::TAX_TYPE, |p| &p.texts[9], |p| &p.ids.texts[9], text_of(9)),
        coded_text(col::ORIGIN_INDICATOR, |p| &p.texts[10], |p| &p.ids.texts[10], text_of(10)),
        numbers(col::NET_MASS_KG, |p| &p.net_mass_kg),
        Box::new(move || Ok(all(parts, |p| &p.quantity).collect::<Float64Chunked>().with_name(col::QUANTITY.into()).into_column())),
        coded_optional(
            col::QUANTITY_UNIT,
            |p| &p.quantity_unit,
            |p| &p.ids.quantity_unit,
            Box::new(|e| entry(memos.quantity_unit.as_ref(), e).and_then(Option::as_deref)),
        ),
        numbers(col::ITEM_PRICE, |p| &p.item_price),
        coded_text(col::CURRENCY, |p| &p.currency, |p| &p.ids.currency, Box::new(|e| entry(memos.currency.as_ref(), e).map(AsRef::as_ref))),
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
        columns.extend(crate::release::columns(release.iter()));
    }
    DataFrame::new_infer_height(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_wraps, reason = "a valid row among the `None` of invalid ones")]
    fn row(id: &str, item: i32, content: u64) -> Option<(&str, i32, u64)> {
        Some((id, item, content))
    }

    #[test]
    fn the_first_occurrence_of_a_key_wins_within_and_across_chunks() {
        let mut seen = Seen::default();
        let first = [row("a", 1, 10), None, row("b", 1, 20), row("a", 1, 10), row("a", 2, 30), row("a", 1, 11)];
        let (exact, conflicting) = (Some(Repeat::Exact), Some(Repeat::Conflicting));
        assert_eq!(seen.check(&first), vec![None, None, None, exact, None, conflicting]);
        let second = [row("b", 1, 99), row("a", 2, 30), row("c", 1, 40), row("c", 1, 40)];
        assert_eq!(seen.check(&second), vec![conflicting, exact, None, exact]);
        // Many keys: each new once, then each a repeat, whatever shard it falls in.
        let ids: Vec<String> = (0..1_000).map(|i| format!("d{i}")).collect();
        let keys: Vec<_> = ids.iter().zip(0..).map(|(id, i)| row(id, i % 7, 1)).collect();
        assert!(seen.check(&keys).iter().all(Option::is_none));
        assert!(seen.check(&keys).iter().all(|r| *r == exact));
    }

    #[test]
    fn keys_whose_hashes_collide_are_told_apart_by_their_text() {
        let mut shard = Shard::default();
        let (exact, conflicting) = (Some(Repeat::Exact), Some(Repeat::Conflicting));
        // Every key under one hash: the first is held in the table, the others beside it.
        let keys = [("a", 1, 10), ("b", 1, 20), ("a", 2, 30), ("ab", 1, 40), ("", 1, 50)];
        for (id, item, content) in keys {
            assert_eq!(shard.check(7, id, item, content), None, "{id} {item}");
        }
        for (id, item, content) in keys {
            assert_eq!(shard.check(7, id, item, content), exact, "{id} {item}");
            assert_eq!(shard.check(7, id, item, content + 1), conflicting, "{id} {item}");
        }
        assert_eq!(shard.check(8, "b", 1, 20), None, "another hash is another key");
    }

    proptest::proptest! {
        /// Whatever the keys and contents, a chunk's repeats are those a plain map of every key
        /// seen so far finds.
        #[test]
        fn repeats_are_those_a_plain_map_finds(chunks in proptest::collection::vec(proptest::collection::vec(("[ab]{0,3}", 1..4i32, 0..3u64), 0..40), 1..4)) {
            let mut seen = Seen::default();
            let mut plain: std::collections::HashMap<(String, i32), u64> = std::collections::HashMap::new();
            for chunk in chunks {
                let rows: Vec<_> = chunk.iter().map(|(id, item, content)| row(id, *item, *content)).collect();
                let want: Vec<Option<Repeat>> = chunk
                    .iter()
                    .map(|(id, item, content)| {
                        if let Some(earlier) = plain.get(&(id.clone(), *item)) {
                            Some(if earlier == content { Repeat::Exact } else { Repeat::Conflicting })
                        } else {
                            plain.insert((id.clone(), *item), *content);
                            None
                        }
                    })
                    .collect();
                proptest::prop_assert_eq!(seen.check(&rows), want);
            }
        }
    }

    proptest::proptest! {
        /// Days are counted as a sorted map counts them, over short and very long ranges.
        #[test]
        fn days_are_counted_as_a_sorted_map_counts_them(
            days in proptest::collection::vec(proptest::option::of(proptest::prop_oneof![-40..40i32, proptest::num::i32::ANY]), 0..60)
        ) {
            let mut map = std::collections::BTreeMap::new();
            for d in days.iter().flatten() {
                *map.entry(*d).or_insert(0usize) += 1;
            }
            proptest::prop_assert_eq!(day_counts(&days), map.into_iter().collect::<Vec<_>>());
        }
    }

    /// Values of each column of a declarations CSV: how many of the first ones are good, then
    /// bad ones, each rule's failures among them.
    const POOLS: [(&str, usize, &[&str]); 18] = [
        ("declaration_id", 3, &["D1", "D2", " d3 ", "", "a\u{1}b"]),
        ("item_no", 3, &["", "1", "2", "0", "1.5", "x", "100001"]),
        ("date", 2, &["2024-01-05", "2023-12-31", "1999-01-01", "2024-13-01", "", "2031-01-01"]),
        ("importer_id", 2, &["imp1", " IMP2 ", "", "a\u{7}"]),
        ("hs_code", 3, &["010121", "10121", "0101.21", "8471300", "12", "abc", ""]),
        ("origin_country", 4, &["CN", "cn", "ZZ", "156", "WLD", "QQ", ""]),
        ("departure_country", 3, &["", "DE", "XX", "0"]),
        ("tax_rate_pct", 2, &["8", "0", "-1", "5000", "x", "", "1,000.5"]),
        ("net_mass_kg", 2, &["10", "0", "-1", "NaN", "", "1e12"]),
        ("item_price", 2, &["100", "0", "1e20", "abc", ""]),
        ("quantity", 2, &["", "1", "-1"]),
        ("quantity_unit", 2, &["", "kg"]),
        ("currency", 3, &["USD", "usd", "EUR", "XYZ", "US", ""]),
        ("fraud", 4, &["", "0", "1", "1.0", "2"]),
        ("critical_fraud", 3, &["", "0", "2", "3"]),
        ("office_id", 2, &["", "O1", "a\u{1b}"]),
        ("seller_id", 3, &["", "s-1", "S-1 "]),
        ("courier_id", 2, &["", "c1"]),
    ];

    /// One row as [`validate`] gives it, for comparisons.
    fn of_row(row: &Row<'_>, hash: u64) -> String {
        format!(
            "{:?}",
            (
                (&row.declaration_id, row.item_no, mirador_schema::day::of(row.date), &row.period, &row.texts, &row.courier_id),
                (&row.hs_code, row.hs_repaired, row.departure_country, row.origin_country, row.tax_rate_pct, row.net_mass_kg),
                (row.quantity, &row.quantity_unit, row.item_price, &row.currency, row.value_usd(), row.fraud, row.critical_fraud),
                (row.line as i32, &row.release, hash),
            )
        )
    }

    /// Row `i` of a part, as [`of_row`] writes a row.
    fn of_part(p: &Part<'_>, i: usize) -> String {
        let texts: [&Cow<'_, str>; 11] = std::array::from_fn(|k| &p.texts[k][i]);
        format!(
            "{:?}",
            (
                (&p.declaration_id[i], p.item_no[i], p.date[i], &p.period[i], texts, &p.courier_id[i]),
                (&p.hs_code[i], p.hs_repaired[i], p.departure_country[i], p.origin_country[i], p.tax_rate_pct[i], p.net_mass_kg[i]),
                (p.quantity[i], &p.quantity_unit[i], p.item_price[i], &p.currency[i], p.value_usd[i], p.fraud[i], p.critical_fraud[i]),
                (p.line[i], p.release.get(i).cloned().unwrap_or_default(), p.hash[i]),
            )
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 64, ..Default::default() })]
        /// Validated column by column, every row gets the reject (code, column, message) or the
        /// values that validating it alone gives it, whatever mix of good and bad values it has.
        #[test]
        fn rows_validated_by_columns_are_those_validated_one_by_one(
            picks in proptest::collection::vec(proptest::collection::vec(0..100usize, POOLS.len()), 1..300),
            short in 0..300usize,
        ) {
            let mut text = POOLS.iter().map(|(name, _, _)| *name).collect::<Vec<_>>().join(";");
            text.push('\n');
            for (i, pick) in picks.iter().enumerate() {
                // Mostly good values, so that many rows pass every rule; the first row passes them all.
                let fields: Vec<&str> =
                    POOLS.iter().zip(pick).map(|((_, good, pool), k)| if i == 0 { pool[0] } else if *k < 92 { pool[k % good] } else { pool[k % pool.len()] }).collect();
                // One row a field short (malformed), now and then.
                let fields = if i == short { &fields[1..] } else { &fields[..] };
                text.push_str(&fields.join(";"));
                text.push('\n');
            }
            let spec = mirador_pipeline::SourceSpec::default();
            let reader = crate::read::TableReader::from_reader(
                std::path::Path::new("d.csv"),
                Box::new(std::io::Cursor::new(text.into_bytes())),
                None,
                None,
            )
            .unwrap();
            let m = Mapped::new(std::path::Path::new("d.csv"), reader, &spec, MANDATORY).unwrap();
            let mut fx = FxTable::default();
            fx.insert("EUR", "2024-01", 1.1);
            let rules = DeclarationRules {
                hs_lengths: &[6, 8, 10],
                min_date: NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
                max_date: NaiveDate::from_ymd_opt(2099, 12, 31).unwrap(),
                fx: &fx,
                hs_vintages: &mirador_schema::hs::Vintage::ALL,
                hs_known: rules::HsKnown::Repairs,
                id_case: rules::IdCase::Upper,
                bounds: rules::ItemBounds { max_value_usd: 1e10, max_mass_kg: 1e9, unit_price_usd_per_kg: [1e-6, 1e8] },
                run_day: NaiveDate::from_ymd_opt(2030, 6, 1).unwrap(),
            };
            let periods = Periods::new(rules.min_date, rules.max_date);
            let fields = Fields::new(&m);
            let block = m.next_block(1_000).unwrap();
            proptest::prop_assert_eq!(block.len(), picks.len());
            let hashes = block.content_hashes(0..block.len());
            let memos = Memos::new(&fields, &block, &rules);
            // Parts of uneven sizes, as the chunk's end makes them.
            let (mut start, mut accepted) = (0, 0);
            for len in [1, 7, 100, 1_000] {
                let end = block.len().min(start + len);
                let part = validate_part(&m, &fields, &block, start..end, &rules, &periods, &hashes[start..end], &memos);
                proptest::prop_assert_eq!(part.len(), end - start);
                for i in 0..part.len() {
                    let at = start + i;
                    let raw = block.row(at);
                    let one = match raw.malformed() {
                        Some(why) => Err(Reject::new(why.code, "", format!("line {} {why}", raw.line()))),
                        None => validate(&m, &fields, raw, &rules, &periods),
                    };
                    accepted += usize::from(one.is_ok());
                    match (&part.rejected[i], one) {
                        (Some(got), Err(want)) => proptest::prop_assert_eq!(got, &want),
                        (None, Ok(row)) => proptest::prop_assert_eq!(of_part(&part, i), of_row(&row, hashes[at])),
                        (got, want) => proptest::prop_assert!(false, "row {at}: {got:?} by columns, {:?} alone", want.err()),
                    }
                }
                start = end;
            }
            proptest::prop_assert!(accepted > 0 || short == 0, "the first row, all good, passes");
        }
    }
}
