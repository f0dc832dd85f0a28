//! The `rank` stage: the ranked list of importers for post-clearance audit (PCA), with the
//! evidence behind each rank in plain language.
//!
//! An importer's **revenue at risk** is the duty its declarations put at stake:
//! - its **expected recoverable duty**: per declaration, the fraud model's expected duty at risk
//!   (probability × duty) plus the probability × the duty the k-means stage finds underpaid
//!   against peer prices, when the model ran; without a model, the duty escaped by the
//!   declarations k-means flags as underpriced (their duty at the peer reference price minus the
//!   duty paid);
//! - its share of the mirror gaps of the cells it imports in (by declared value), when the
//!   revenue-gap stage ran.
//!
//! Importers are ranked by their **audit score**: the expected recoverable duty weighed by the
//! concentration of evidence (the importer's mean fraud probability; parameters `concentration`,
//! `shrinkage`, `mirror-weight`). How well
//! the list does against a known truth is measured by [`evaluation`].
//!
//! Each row says how many declarations each signal flagged, the HS headings and origins that
//! drive the risk, and a sentence an auditor can act on. Two lists are written: `auditees` (internal, real importer ids) and `auditees_shareable`
//! (importer ids replaced by keyed pseudonyms, [`pseudonym`]); both also as CSV beside the run.
//!
//! ## Inputs
//! - `declarations`; optional `fraud_scores`, `kmeans_scores`, `mirror_exposure`.
//! ## Outputs
//! - `auditees`, `auditees_shareable`; artifacts `auditees.csv`, `auditees_shareable.csv`, and
//!   with `carry-state` the audit window `window/<day>.parquet` ([`window`]).

pub mod evaluation;
pub mod pseudonym;
mod signals;
pub mod window;

use std::collections::HashMap;

use foldhash::fast::FixedState;

use mirador_pipeline::{Stage, StageContext, StageError, StageOutput};
use mirador_schema::text::{Coded, Text};
use mirador_schema::{DatasetId, col, datasets};
use polars::prelude::*;
use rayon::prelude::*;
use serde::Deserialize;

use mirador_pipeline::columns::{amounts, texts};
use mirador_schema::catalog::{auditees, fraud_scores, kmeans_scores, mirror_exposure, rank_window};
use pseudonym::Pseudonymiser;
use signals::{Codes, Rows, Sources};

/// Parameters of the `rank` stage.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RankParams {
    /// Keep only the first N importers (`mirador run --top N`).
    pub top: Option<usize>,
    /// Only declarations of these periods (`YYYY-MM` or `YYYY` prefixes); empty: all.
    pub periods: Vec<String>,
    /// Only declarations lodged at these offices; empty: all.
    pub offices: Vec<String>,
    /// Only these HS chapters (2 digits); empty: all.
    pub hs_chapters: Vec<String>,
    /// Secret key of the pseudonyms in shareable outputs (≥ 16 bytes). Set it through the
    /// `MIRADOR_PSEUDONYM_KEY` environment variable in production; it is never written anywhere.
    pub pseudonym_key: Option<String>,
    /// Rank over an audit window carried from run to run ([`window`]): each run adds its
    /// declarations, with their evidence, to the previous run's window, so a nightly run that
    /// reads only the night's declarations still ranks every importer of the window.
    pub carry_state: bool,
    /// With `carry-state`: declarations of this many days (up to the newest one) are in the window.
    pub window_days: u32,
    /// How much the concentration of evidence counts: the importer's mean fraud
    /// probability is raised to this power in its audit score. 0 ranks by revenue at risk alone.
    pub concentration: f64,
    /// Weight of the importer's share of mirror gaps in its audit score (the share still counts
    /// whole in its revenue at risk).
    pub mirror_weight: f64,
    /// Declarations of prior weight pulling an importer's mean fraud probability towards the mean
    /// over all importers (0: none), so that a few declarations do not make a concentrated importer.
    pub shrinkage: f64,
}

impl Default for RankParams {
    fn default() -> Self {
        RankParams {
            top: None,
            periods: Vec::new(),
            offices: Vec::new(),
            hs_chapters: Vec::new(),
            pseudonym_key: None,
            carry_state: false,
            window_days: 365,
            concentration: 1.0,
            mirror_weight: 0.1,
            shrinkage: 2.0,
        }
    }
}

/// A per-importer tally.
type Fast<K, V> = HashMap<K, V, FixedState>;

/// One importer's sums and counts over its declarations.
#[derive(Default, Clone, Copy)]
struct Totals {
    items: u32,
    value: f64,
    duty: f64,
    expected: f64,
    /// Expected recoverable duty: per declaration, the model's expected duty at risk plus its
    /// fraud probability × the k-means shortfall (the k-means shortfall alone without a model).
    recoverable: f64,
    mirror: f64,
    shortfall: f64,
    model_flags: u32,
    /// First and last day declared (days since 1970-01-01), where the declarations are dated.
    first_day: Option<i32>,
    last_day: Option<i32>,
    kmeans_flags: u32,
    max_prob: Option<f64>,
    sum_prob: f64,
    scored: u32,
}

/// One importer: its totals and its tallies by key, the keys borrowed from the declarations
/// frame.
#[derive(Default)]
struct Importer<'a> {
    totals: Totals,
    // Tallies by key, each key once, in no particular order: every use orders them fully (by
    // value, then key).
    by_hs4: Vec<(&'a str, f64)>,
    by_origin: Vec<(&'a str, f64)>,
    kmeans_hs4: Vec<(&'a str, u32)>,
    flagged_ratios: Vec<f64>,
    top_features: Vec<(&'a str, u32)>,
    mirror_hs6_origin: Vec<((&'a str, &'a str), f64)>,
}

/// Which values of a coded column a filter keeps, decided once per distinct value.
struct Filter {
    by_code: Vec<bool>,
    null: bool,
}

impl Filter {
    /// Keeps the values in `list` (or starting with one of them, for `prefix`); everything when
    /// `list` is empty.
    fn new(list: &[String], coded: &Coded<'_>, prefix: bool) -> Self {
        let matches = |v: &str| list.iter().any(|x| if prefix { v.starts_with(x.as_str()) } else { v == x });
        Filter { by_code: coded.values.iter().map(|v| list.is_empty() || matches(v)).collect(), null: list.is_empty() }
    }

    fn keeps(&self, code: u32) -> bool {
        self.by_code.get(code as usize).copied().unwrap_or(self.null)
    }
}

/// Builds the ranked list (internal ids).
pub fn rank(
    declarations: &DataFrame,
    fraud: Option<&DataFrame>,
    kmeans: Option<&DataFrame>,
    mirror: Option<&DataFrame>,
    params: &RankParams,
) -> PolarsResult<DataFrame> {
    let top_features = fraud.map(|f| Text::column(f, fraud_scores::TOP_FEATURES)).transpose()?;
    let rows = Rows::new(declarations, Sources::new(declarations, fraud, top_features.as_ref(), kmeans, mirror)?)?;

    // Text columns coded densely: filters, HS4 prefixes and importer ids are worked out once per
    // distinct value, and rows carry codes (HS6 and origin then held narrow, [`Codes`]). Office
    // and period are read only to filter.
    let filtered = |list: &[String]| !list.is_empty();
    let names = [
        (col::IMPORTER_ID, true),
        (col::HS6, true),
        (col::ORIGIN_COUNTRY, true),
        (col::OFFICE_ID, filtered(&params.offices)),
        (col::PERIOD, filtered(&params.periods)),
    ];
    let texts =
        names.map(|(c, read)| read.then(|| Text::column(declarations, c)).transpose()).into_iter().collect::<PolarsResult<Vec<_>>>()?;
    let [importer, hs6, origin, office, period]: [Coded<'_>; 5] = texts
        .par_iter()
        .map(|t| t.as_ref().map(Text::coded).unwrap_or_default())
        .collect::<Vec<_>>()
        .try_into()
        .map_err(|_| polars_err!(ComputeError: "five text columns coded"))?;
    let (by_period, by_office, by_chapter) = (
        Filter::new(&params.periods, &period, true),
        Filter::new(&params.offices, &office, false),
        Filter::new(&params.hs_chapters, &hs6, true),
    );
    let keeps = |list: &[String], f: &Filter, codes: &[u32], i: usize| list.is_empty() || f.keeps(codes[i]);
    // Each row's importer code, or none for a row without an importer or filtered out (the
    // importer codes themselves, changed in place).
    let Coded { codes: mut owner, values: importer_values } = importer;
    for (i, id) in owner.iter_mut().enumerate() {
        let kept = keeps(&params.periods, &by_period, &period.codes, i)
            && keeps(&params.offices, &by_office, &office.codes, i)
            && keeps(&params.hs_chapters, &by_chapter, &hs6.codes, i);
        if !kept {
            *id = u32::MAX;
        }
    }
    drop((office, period));
    // A missing HS6 or origin reads as empty text, one code; HS4 headings are coded from the HS6
    // codes. Each code names one text, so sums keyed by codes are the sums keyed by texts.
    let (hs6_values, hs6_codes) = or_empty(hs6);
    let (origin_values, origin_codes) = or_empty(origin);
    let (hs6_codes, origin_codes) = (Codes::new(hs6_codes, hs6_values.len()), Codes::new(origin_codes, origin_values.len()));
    let mut hs4_index: Fast<&str, u32> = Fast::default();
    let mut hs4_values: Vec<&str> = Vec::new();
    let hs4_of_hs6: Vec<u32> = hs6_values
        .iter()
        .map(|h| {
            let hs4 = h.get(..4).unwrap_or(h);
            *hs4_index.entry(hs4).or_insert_with(|| {
                hs4_values.push(hs4);
                (hs4_values.len() - 1) as u32
            })
        })
        .collect();

    // Per importer, one pass over the rows in their order for the totals and one per keyed tally
    // (importer × HS4, importer × origin, importer × HS6 × origin), side by side: every sum runs
    // in row order, as a pass importer by importer would.
    let importers = importer_values.len();
    let mut totals: Vec<Importer<'_>> = Vec::new();
    let mut keyed = Vec::new();
    rayon::scope(|s| {
        s.spawn(|_| {
            // The totals are kept compact (the rows' importers come in no order, and a row's
            // totals should be one or two cache lines away, not several).
            let mut t = vec![Totals::default(); importers];
            let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); importers];
            let mut kmeans_hs4: Fast<(u32, u32), u32> = Fast::default();
            let mut top: Fast<(u32, &str), u32> = Fast::default();
            for part in rows.parts() {
                for (k, i) in part.rows.clone().enumerate() {
                    let id = owner[i];
                    if id == u32::MAX {
                        continue;
                    }
                    let e = &mut t[id as usize];
                    let (expected, mirror, shortfall) = (part.expected(k), part.mirror(k), part.shortfall(k));
                    let (model_flag, kmeans_flag) = (part.model_flag(k), part.kmeans_flag(k));
                    e.items += 1;
                    e.recoverable += part.recoverable(k);
                    if let Some(d) = part.day(k) {
                        e.first_day = Some(e.first_day.map_or(d, |f| f.min(d)));
                        e.last_day = Some(e.last_day.map_or(d, |l| l.max(d)));
                    }
                    e.value += part.value(k);
                    e.duty += part.duty(k);
                    e.expected += expected;
                    e.mirror += mirror;
                    e.shortfall += shortfall;
                    e.model_flags += u32::from(model_flag);
                    e.kmeans_flags += u32::from(kmeans_flag);
                    if let Some(p) = part.prob(k) {
                        e.max_prob = Some(e.max_prob.map_or(p, |m: f64| m.max(p)));
                        e.sum_prob += p;
                        e.scored += 1;
                    }
                    if kmeans_flag {
                        *kmeans_hs4.entry((id, hs4_of_hs6[hs6_codes.get(i) as usize])).or_default() += 1;
                        if let Some(r) = part.price_ratio(k) {
                            ratios[id as usize].push(r);
                        }
                    }
                    if model_flag && let Some(f) = part.top_feature(k) {
                        *top.entry((id, f)).or_default() += 1;
                    }
                }
            }
            let mut imps: Vec<Importer<'_>> = t
                .into_iter()
                .zip(ratios)
                .map(|(t, flagged_ratios)| Importer { totals: t, flagged_ratios, ..Importer::default() })
                .collect();
            for ((id, hs4), count) in kmeans_hs4 {
                imps[id as usize].kmeans_hs4.push((hs4_values[hs4 as usize], count));
            }
            for ((id, feature), count) in top {
                imps[id as usize].top_features.push((feature, count));
            }
            totals = imps;
        });
        s.spawn(|_| {
            keyed = keyed_tallies(
                &owner,
                importers,
                &rows,
                &hs6_codes,
                &origin_codes,
                &hs4_of_hs6,
                hs4_values.len(),
                origin_values.len(),
                KEYED_ROWS_PER_PART,
            );
        });
    });
    for (id, (hs4, origins, mirror)) in keyed.into_iter().enumerate() {
        let e = &mut totals[id];
        e.by_hs4 = hs4.into_iter().map(|(k, v)| (hs4_values[k as usize], v)).collect();
        e.by_origin = origins.into_iter().map(|(k, v)| (origin_values[k as usize], v)).collect();
        e.mirror_hs6_origin = mirror.into_iter().map(|((h, o), v)| ((hs6_values[h as usize], origin_values[o as usize]), v)).collect();
    }
    // The rows are done with: only the importers' tallies are kept from here on.
    drop((rows, owner, hs6_codes, origin_codes));
    let mut rows: Vec<(&str, Importer<'_>)> =
        totals.into_iter().enumerate().filter(|(_, e)| e.totals.items > 0).map(|(id, e)| (importer_values[id], e)).collect();
    // The mean fraud probability over all importers, summed in importer-id order so that a
    // carried window (whose importers are coded in another order) gives the same figure.
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let (sum, scored) = rows.iter().fold((0.0, 0.0), |(s, n), (_, e)| (s + e.totals.sum_prob, n + f64::from(e.totals.scored)));
    let scoring = Scoring { params, overall: (scored > 0.0).then(|| sum / scored), use_model: fraud.is_some() };
    let mut rows: Vec<Ranked<'_>> = rows.into_iter().map(|(id, e)| scoring.score(id, e)).collect();
    rows.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.revenue.total_cmp(&a.revenue))
            .then(b.imp.totals.max_prob.unwrap_or(0.0).total_cmp(&a.imp.totals.max_prob.unwrap_or(0.0)))
            .then(a.id.cmp(b.id))
    });
    if let Some(top) = params.top {
        rows.truncate(top);
    }
    frame(&rows)
}

/// One importer's risk by HS4 code and by origin code, and its mirror-gap share by HS6 × origin
/// code, each key once, the sums in row order.
type Keyed = (Vec<(u32, f64)>, Vec<(u32, f64)>, Vec<((u32, u32), f64)>);

/// The most rows whose keyed tallies are copied at once (2M: 48 MB).
const KEYED_ROWS_PER_PART: usize = 1 << 21;

/// What a row adds to its importer's keyed tallies.
#[derive(Clone, Copy, Default)]
struct KeyedRow {
    risk: f64,
    mirror: f64,
    hs6: u32,
    origin: u32,
}

/// A tally by code for one importer at a time: `slot[code]` is the code's place in `sums`
/// (`u32::MAX`: not seen yet), reset after each importer.
struct Tally {
    slot: Vec<u32>,
    sums: Vec<(u32, f64)>,
}

impl Tally {
    fn new(codes: usize) -> Self {
        Tally { slot: vec![u32::MAX; codes], sums: Vec::new() }
    }

    fn add(&mut self, code: u32, v: f64) {
        let slot = &mut self.slot[code as usize];
        if *slot == u32::MAX {
            *slot = self.sums.len() as u32;
            self.sums.push((code, v));
        } else {
            self.sums[*slot as usize].1 += v;
        }
    }

    /// The importer's sums (held in just the room they take: every importer's are kept); the
    /// tally is empty again.
    fn take(&mut self) -> Vec<(u32, f64)> {
        for &(code, _) in &self.sums {
            self.slot[code as usize] = u32::MAX;
        }
        let sums = self.sums.clone();
        self.sums.clear();
        sums
    }
}

/// Every importer's keyed tallies ([`Keyed`]), by importer code. The rows' risk and codes are
/// first copied, in row order, into one buffer grouped by importer (the columns read in order,
/// each row written once where its importer's rows go); then importers are tallied in parallel,
/// each from its own rows, with tallies by code that stay in cache. Past `rows_per_part` rows
/// ([`KEYED_ROWS_PER_PART`] in a run) this goes a range of importers at a time.
#[allow(clippy::too_many_arguments)]
fn keyed_tallies(
    owner: &[u32],
    importers: usize,
    rows: &Rows<'_>,
    hs6: &Codes,
    origin: &Codes,
    hs4_of_hs6: &[u32],
    hs4_codes: usize,
    origin_codes: usize,
    rows_per_part: usize,
) -> Vec<Keyed> {
    let mut start = vec![0usize; importers + 1];
    for &id in owner {
        if id != u32::MAX {
            start[id as usize + 1] += 1;
        }
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    // Importers are taken a range of codes at a time, each range holding at most `rows_per_part`
    // rows (or one importer's), so the copy stays bounded at ten million rows.
    let mut bounds = vec![0usize];
    for id in 0..importers {
        let from = bounds[bounds.len() - 1];
        if id > from && start[id + 1] - start[from] > rows_per_part {
            bounds.push(id);
        }
    }
    bounds.push(importers);
    let mut keyed = Vec::with_capacity(importers);
    let mut grouped: Vec<KeyedRow> = Vec::new();
    for part in bounds.windows(2) {
        let (lo, hi) = (part[0], part[1]);
        let base = start[lo];
        let mut next: Vec<usize> = start[lo..hi].iter().map(|s| s - base).collect();
        grouped.clear();
        grouped.resize(start[hi] - base, KeyedRow::default());
        for part in rows.parts() {
            for (k, i) in part.rows.clone().enumerate() {
                let id = owner[i] as usize;
                if (lo..hi).contains(&id) {
                    let at = &mut next[id - lo];
                    grouped[*at] = KeyedRow { risk: part.risk(k), mirror: part.mirror(k), hs6: hs6.get(i), origin: origin.get(i) };
                    *at += 1;
                }
            }
        }
        keyed.par_extend((lo..hi).into_par_iter().with_min_len(256).map_init(
            || (Tally::new(hs4_codes), Tally::new(origin_codes), Fast::<(u32, u32), f64>::default()),
            |(by_hs4, by_origin, mirror), id| {
                for r in &grouped[start[id] - base..start[id + 1] - base] {
                    by_hs4.add(hs4_of_hs6[r.hs6 as usize], r.risk);
                    by_origin.add(r.origin, r.risk);
                    if r.mirror > 0.0 {
                        *mirror.entry((r.hs6, r.origin)).or_insert(0.0) += r.mirror;
                    }
                }
                (by_hs4.take(), by_origin.take(), mirror.drain().collect())
            },
        ));
    }
    keyed
}

/// A coded text column's values and codes, a null read as empty text (the code of the empty
/// value, if any); the codes are changed in place.
fn or_empty(coded: Coded<'_>) -> (Vec<&str>, Vec<u32>) {
    let Coded { mut codes, mut values } = coded;
    if !codes.contains(&u32::MAX) {
        return (values, codes);
    }
    let empty = values.iter().position(|v| v.is_empty()).unwrap_or_else(|| {
        values.push("");
        values.len() - 1
    }) as u32;
    for c in codes.iter_mut().filter(|c| **c == u32::MAX) {
        *c = empty;
    }
    (values, codes)
}

/// How an importer's evidence becomes its place in the list.
///
/// An audit of an importer recovers duty across all its declarations, so the list ranks
/// importers by the duty an audit can expect to recover, weighted by how concentrated the
/// evidence is that the importer is a systematic offender:
///
/// `audit score = c^concentration × (expected recoverable duty + mirror-weight × mirror-gap share)`
///
/// - **expected recoverable duty**: the sum over the importer's declarations of the fraud
///   model's expected duty at risk (probability × duty) plus probability × the duty the k-means
///   stage finds underpaid against peer prices (the duty an undervaluation hides is not in the
///   duty paid); without a model, the k-means shortfall alone;
/// - **c**, the concentration of evidence: the importer's mean fraud probability, pulled towards
///   the mean over all importers by `shrinkage` declarations of prior weight. A sum alone favours
///   big importers with a little risk on many declarations; an importer whose declarations are
///   risky throughout is likelier a systematic offender, which is what an audit finds and
///   recovers;
/// - the mirror-gap share is an importer's share, by declared value, of gaps measured per
///   HS6 × partner cell: evidence about its goods, not about the importer, so it weighs little.
///
/// `revenue_at_risk_usd` stays the money at stake (expected recoverable duty plus the whole
/// mirror-gap share); `audit_score` is the ranking key. The figures behind the defaults are in
/// `docs/evaluation.md`.
struct Scoring<'p> {
    params: &'p RankParams,
    /// Mean fraud probability over every scored declaration of the list's importers.
    overall: Option<f64>,
    use_model: bool,
}

/// One importer of the list.
struct Ranked<'a> {
    id: &'a str,
    imp: Importer<'a>,
    /// Revenue at risk: expected recoverable duty plus the mirror-gap share.
    revenue: f64,
    /// The concentration of evidence, `c` ([`Scoring`]); `None` without a model.
    concentration: Option<f64>,
    score: f64,
}

impl Scoring<'_> {
    fn score<'a>(&self, id: &'a str, imp: Importer<'a>) -> Ranked<'a> {
        let p = self.params;
        let t = &imp.totals;
        let revenue = t.recoverable + t.mirror;
        let evidence = t.recoverable + p.mirror_weight.max(0.0) * t.mirror;
        let concentration = self.use_model.then(|| {
            let prior = self.overall.unwrap_or(0.0);
            let weight = p.shrinkage.max(0.0);
            let n = f64::from(t.scored) + weight;
            if n > 0.0 { (t.sum_prob + weight * prior) / n } else { prior }
        });
        let score = match concentration {
            Some(c) if p.concentration != 0.0 => c.max(0.0).powf(p.concentration) * evidence,
            _ => evidence,
        };
        Ranked { id, imp, revenue, concentration, score }
    }
}

fn top_keys(m: &[(&str, f64)], k: usize) -> String {
    let mut v: Vec<&(&str, f64)> = m.iter().filter(|(_, x)| *x > 0.0).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    v.iter().take(k).map(|(key, _)| *key).collect::<Vec<_>>().join(";")
}

fn usd(x: f64) -> String {
    if x >= 1e6 {
        format!("USD {:.1} M", x / 1e6)
    } else if x >= 1e3 {
        format!("USD {:.0} k", x / 1e3)
    } else {
        format!("USD {x:.0}")
    }
}

/// The plain-language reason of one importer.
fn reason(ranked: &Ranked<'_>) -> String {
    let imp = &ranked.imp;
    let t = &imp.totals;
    let mut parts = Vec::new();
    if ranked.concentration.is_some() && t.recoverable > 0.0 {
        let mean = if t.scored > 0 { t.sum_prob / f64::from(t.scored) } else { 0.0 };
        parts.push(format!(
            "expected recoverable duty {} over {} declarations (mean fraud probability {mean:.2})",
            usd(t.recoverable),
            t.items
        ));
    }
    if t.kmeans_flags > 0 {
        let mut r = imp.flagged_ratios.clone();
        r.sort_by(f64::total_cmp);
        let median = r.get(r.len() / 2).copied().unwrap_or(0.0);
        let hs = imp.kmeans_hs4.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0))).map(|(h, _)| *h).unwrap_or("?");
        parts.push(format!(
            "{} of {} declarations priced at a median {:.0} % of their peers (mostly HS {hs})",
            t.kmeans_flags,
            t.items,
            median * 100.0
        ));
    }
    if t.model_flags > 0 {
        let top = imp
            .top_features
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|(f, _)| f.replace("_past_", " past ").replace('_', " "));
        let mut s = format!(
            "{} of {} declarations flagged by the fraud model (highest probability {:.2})",
            t.model_flags,
            t.items,
            t.max_prob.unwrap_or(0.0)
        );
        if let Some(t) = top {
            s.push_str(&format!("; model top reason: {t}"));
        }
        parts.push(s);
    }
    if t.mirror > 0.0 {
        let ((hs, origin), v) = imp
            .mirror_hs6_origin
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map_or((("?", "?"), 0.0), |(k, v)| (*k, *v));
        parts.push(format!("share of mirror gaps {} (largest: HS {hs} from {origin}, {})", usd(t.mirror), usd(v)));
    }
    if parts.len() == usize::from(ranked.concentration.is_some() && t.recoverable > 0.0) {
        parts.push("no signal above its thresholds".into());
    }
    let mut s = parts.join("; ");
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    s
}

fn frame(rows: &[Ranked<'_>]) -> PolarsResult<DataFrame> {
    // The texts of each importer (sorted tallies, formatted sentences) side by side.
    let ((top_hs4, top_origins), reasons): ((Vec<String>, Vec<String>), Vec<String>) = rayon::join(
        || {
            rayon::join(
                || rows.par_iter().map(|r| top_keys(&r.imp.by_hs4, 3)).collect(),
                || rows.par_iter().map(|r| top_keys(&r.imp.by_origin, 3)).collect(),
            )
        },
        || rows.par_iter().map(reason).collect(),
    );
    let f = |g: &dyn Fn(&Totals) -> f64| rows.iter().map(|r| g(&r.imp.totals)).collect::<Vec<f64>>();
    let u = |g: &dyn Fn(&Totals) -> u32| rows.iter().map(|r| g(&r.imp.totals)).collect::<Vec<u32>>();
    DataFrame::new_infer_height(vec![
        Column::new(auditees::RANK.into(), (1..=rows.len() as u32).collect::<Vec<_>>()),
        Column::new(col::IMPORTER_ID.into(), rows.iter().map(|r| r.id).collect::<Vec<_>>()),
        Column::new(auditees::AUDIT_SCORE.into(), rows.iter().map(|r| r.score).collect::<Vec<_>>()),
        Column::new(auditees::REVENUE_AT_RISK_USD.into(), rows.iter().map(|r| r.revenue).collect::<Vec<_>>()),
        Column::new(auditees::EXPECTED_RECOVERABLE_DUTY_USD.into(), f(&|i| i.recoverable)),
        Column::new(auditees::EVIDENCE_CONCENTRATION.into(), rows.iter().map(|r| r.concentration).collect::<Vec<_>>()),
        Column::new(auditees::MODEL_EXPECTED_DUTY_USD.into(), f(&|i| i.expected)),
        Column::new(auditees::MIRROR_GAP_SHARE_USD.into(), f(&|i| i.mirror)),
        Column::new(auditees::UNDERPRICED_DUTY_USD.into(), f(&|i| i.shortfall)),
        Column::new(auditees::DECLARATIONS.into(), u(&|i| i.items)),
        Column::new(auditees::FIRST_DECLARED.into(), rows.iter().map(|r| r.imp.totals.first_day).collect::<Vec<_>>())
            .cast(&DataType::Date)?,
        Column::new(auditees::LAST_DECLARED.into(), rows.iter().map(|r| r.imp.totals.last_day).collect::<Vec<_>>())
            .cast(&DataType::Date)?,
        Column::new(auditees::DECLARED_VALUE_USD.into(), f(&|i| i.value)),
        Column::new(auditees::DUTY_PAID_USD.into(), f(&|i| i.duty)),
        Column::new(auditees::FLAGGED_BY_MODEL.into(), u(&|i| i.model_flags)),
        Column::new(auditees::FLAGGED_BY_KMEANS.into(), u(&|i| i.kmeans_flags)),
        Column::new(auditees::MAX_FRAUD_PROBABILITY.into(), rows.iter().map(|r| r.imp.totals.max_prob).collect::<Vec<_>>()),
        Column::new(
            auditees::MEAN_FRAUD_PROBABILITY.into(),
            rows.iter()
                .map(|r| (r.imp.totals.scored > 0).then(|| r.imp.totals.sum_prob / f64::from(r.imp.totals.scored)))
                .collect::<Vec<_>>(),
        ),
        Column::new(auditees::TOP_HS4.into(), top_hs4),
        Column::new(auditees::TOP_ORIGINS.into(), top_origins),
        Column::new(auditees::REASON.into(), reasons),
    ])
}

/// The shareable copy: importer ids replaced by keyed pseudonyms.
pub fn shareable(auditees: &DataFrame, key: &Pseudonymiser) -> PolarsResult<DataFrame> {
    let ids = texts(auditees, auditees::IMPORTER_ID)?;
    let mut df = auditees.clone();
    df.with_column(Column::new(
        col::IMPORTER_ID.into(),
        ids.par_iter().map(|i| i.as_deref().map(|i| key.pseudonym(i))).collect::<Vec<_>>(),
    ))?;
    Ok(df)
}

/// The ranked auditee list.
///
/// ## Inputs
/// - `declarations`; optional `fraud_scores`, `kmeans_scores`, `mirror_exposure`.
/// ## Outputs
/// - `auditees`, `auditees_shareable`.
pub struct Rank;

impl Stage for Rank {
    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        mirador_pipeline::parse_params::<RankParams>(self.name(), params).map(drop)
    }

    fn name(&self) -> &'static str {
        "rank"
    }

    fn secret_params(&self) -> &'static [&'static str] {
        &["pseudonym-key"]
    }

    fn carries_state(&self, params: &mirador_pipeline::toml::Table) -> bool {
        mirador_pipeline::parse_params::<RankParams>(self.name(), params).is_ok_and(|p| p.carry_state)
    }

    fn inputs(&self) -> &'static [DatasetId] {
        &[datasets::DECLARATIONS]
    }

    fn optional_inputs(&self) -> &'static [DatasetId] {
        &[datasets::FRAUD_SCORES, datasets::KMEANS_SCORES, datasets::MIRROR_EXPOSURE]
    }

    /// The keys and what [`rank`] reads of the declarations and of each stage's scores.
    fn input_columns(&self, id: &str) -> Option<Vec<&'static str>> {
        let signals: &[&'static str] = match id {
            datasets::FRAUD_SCORES => &[
                fraud_scores::FRAUD_PROBABILITY,
                fraud_scores::EXPECTED_DUTY_AT_RISK_USD,
                fraud_scores::FRAUD_FLAG,
                fraud_scores::TOP_FEATURES,
            ],
            datasets::KMEANS_SCORES => {
                &[kmeans_scores::UNDERVALUATION_FLAG, kmeans_scores::PRICE_RATIO, kmeans_scores::UNDERVALUED_DUTY_USD]
            }
            datasets::MIRROR_EXPOSURE => &[mirror_exposure::MIRROR_DUTY_SHARE_USD],
            // The importer, what filters and tallies the rows, their amounts and days (the
            // carried window keeps the same).
            datasets::DECLARATIONS => {
                &[col::IMPORTER_ID, col::HS6, col::ORIGIN_COUNTRY, col::OFFICE_ID, col::PERIOD, col::VALUE_USD, col::DUTY_USD, col::DATE]
            }
            _ => return None,
        };
        Some([col::DECLARATION_ID, col::ITEM_NO].iter().chain(signals).copied().collect())
    }

    fn outputs(&self) -> &'static [DatasetId] {
        &[datasets::AUDITEES, datasets::AUDITEES_SHAREABLE]
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let params: RankParams = ctx.params()?;
        let key = params.pseudonym_key.as_deref().and_then(Pseudonymiser::new).ok_or_else(|| StageError::Params {
            stage: self.name().into(),
            message: format!(
                "shareable auditee lists need a pseudonymisation key of at least {} bytes: set MIRADOR_PSEUDONYM_KEY",
                pseudonym::MIN_KEY_LEN
            ),
        })?;
        let (declarations, fraud, kmeans, mirror) = (
            ctx.input(datasets::DECLARATIONS)?,
            ctx.optional_input(datasets::FRAUD_SCORES),
            ctx.optional_input(datasets::KMEANS_SCORES),
            ctx.optional_input(datasets::MIRROR_EXPOSURE),
        );
        let mut out = StageOutput::new();
        let auditees = if params.carry_state {
            // The previous committed run's window, found by the runner.
            let carried = ctx.previous_state(rank_window::ID);
            let tonight = window::rows(declarations, fraud, kmeans, mirror)?;
            let kept = window::Window::extend(carried.as_deref(), &tonight, params.window_days)?;
            drop(tonight);
            let written = kept.write(&ctx.state_path(rank_window::ID)?)?;
            out = out.with_metric("window_rows", kept.rows()).with_metric("window_days_written", written);
            if let Some((from, to)) = kept.span() {
                out = out.with_metric("window_from", from).with_metric("window_to", to);
            }
            match kept.into_frame()? {
                Some(frame) => window::rank_window(&frame, &params)?,
                // Nothing in the window yet: the night's (empty) declarations rank as they are.
                None => rank(declarations, fraud, kmeans, mirror, &params)?,
            }
        } else {
            rank(declarations, fraud, kmeans, mirror, &params)?
        };
        let shared = shareable(&auditees, &key)?;
        // The two spreadsheets side by side, every column but the importer ids turned into text
        // once for both.
        let (internal, shareable) = (ctx.artifact_dir().join("auditees.csv"), ctx.artifact_dir().join("auditees_shareable.csv"));
        mirador_io::write_spreadsheet_csvs(&[(&auditees, &internal), (&shared, &shareable)])?;
        let total: f64 = auditees.column(auditees::REVENUE_AT_RISK_USD)?.f64()?.sum().unwrap_or(0.0);
        let signals: Vec<&str> =
            [(datasets::FRAUD_SCORES, "fraud_model"), (datasets::KMEANS_SCORES, "kmeans"), (datasets::MIRROR_EXPOSURE, "mirror")]
                .iter()
                .filter(|(id, _)| ctx.optional_input(id).is_some())
                .map(|(_, n)| *n)
                .collect();
        Ok(out
            .with_metric("importers", auditees.height())
            .with_metric("revenue_at_risk_usd", total)
            .with_metric("signals", signals)
            .with_dataset(datasets::AUDITEES, auditees)
            .with_dataset(datasets::AUDITEES_SHAREABLE, shared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each importer's tallies with the keys in order (a map's order is not part of them).
    fn sorted(mut keyed: Vec<Keyed>) -> Vec<Keyed> {
        for (hs4, origin, mirror) in &mut keyed {
            hs4.sort_by_key(|e| e.0);
            origin.sort_by_key(|e| e.0);
            mirror.sort_by_key(|e| e.0);
        }
        keyed
    }

    #[test]
    fn keyed_tallies_are_the_same_whatever_the_part_size() {
        // 5 importers (one without rows), rows without an importer, 4 HS6 codes on 3 headings.
        let owner: Vec<u32> = (0..200u32).map(|i| if i % 7 == 0 { u32::MAX } else { (i * 13) % 5 % 4 + u32::from(i % 5 == 0) }).collect();
        let hs6 = Codes::new((0..200u32).map(|i| (i * 7) % 4).collect(), 4);
        let origin = Codes::new((0..200u32).map(|i| (i * 3) % 6).collect(), 6);
        let mirror: Vec<f64> = (0..200).map(|i| if i % 3 == 0 { 0.0 } else { f64::from(i) * 0.37 }).collect();
        // Each row's risk is its k-means shortfall (every row flagged, no model) plus its mirror
        // share, the shares held in two chunks.
        let declarations = df!(
            col::DECLARATION_ID => (0..200).map(|i| format!("d{i}")).collect::<Vec<_>>(),
            col::ITEM_NO => vec![1i64; 200],
            col::VALUE_USD => vec![1.0; 200],
            col::DUTY_USD => vec![0.1; 200],
        )
        .unwrap();
        let keys = declarations.select([col::DECLARATION_ID, col::ITEM_NO]).unwrap();
        let mut kmeans = keys.clone();
        kmeans.with_column(Column::new(kmeans_scores::UNDERVALUATION_FLAG.into(), vec![true; 200])).unwrap();
        kmeans.with_column(Column::new(kmeans_scores::PRICE_RATIO.into(), vec![0.5; 200])).unwrap();
        let shortfall: Vec<f64> = (0..200).map(|i| 1.0 / (f64::from(i) + 1.0)).collect();
        kmeans.with_column(Column::new(kmeans_scores::UNDERVALUED_DUTY_USD.into(), shortfall)).unwrap();
        let mut share = Float64Chunked::from_vec(mirror_exposure::MIRROR_DUTY_SHARE_USD.into(), mirror[..70].to_vec());
        share.append(&Float64Chunked::from_vec(mirror_exposure::MIRROR_DUTY_SHARE_USD.into(), mirror[70..].to_vec())).unwrap();
        let mut mirror = keys.clone();
        mirror.with_column(share.into_series().into_column()).unwrap();
        let sources = Sources::new(&declarations, None, None, Some(&kmeans), Some(&mirror)).unwrap();
        let rows = Rows::new(&declarations, sources).unwrap();
        let risk: Vec<f64> = rows.parts().flat_map(|p| (0..p.rows.len()).map(move |k| p.risk(k))).collect();
        assert_eq!(risk[76].to_bits(), (1.0 / 77.0 + 76.0 * 0.37f64).to_bits());
        let hs4_of_hs6 = [0, 1, 1, 2];
        let tally = |part| sorted(keyed_tallies(&owner, 5, &rows, &hs6, &origin, &hs4_of_hs6, 3, 6, part));
        let whole = tally(usize::MAX);
        assert_eq!(whole.len(), 5);
        assert!(whole[0].0.is_empty() == (owner.iter().all(|&o| o != 0)));
        // Every risk is counted once by heading and once by origin.
        let total: f64 = (0..200).filter(|&i| owner[i] != u32::MAX).map(|i| risk[i]).sum();
        let by_hs4: f64 = whole.iter().flat_map(|k| k.0.iter().map(|e| e.1)).sum();
        assert!((by_hs4 - total).abs() < 1e-9 * total);
        for part in [1, 3, 40] {
            let parted = tally(part);
            for (a, b) in whole.iter().zip(&parted) {
                // The same sums, bit for bit: each runs over the importer's rows in row order.
                let bits = |k: &Keyed| {
                    (
                        k.0.iter().map(|e| (e.0, e.1.to_bits())).collect::<Vec<_>>(),
                        k.1.iter().map(|e| (e.0, e.1.to_bits())).collect::<Vec<_>>(),
                        k.2.iter().map(|e| (e.0, e.1.to_bits())).collect::<Vec<_>>(),
                    )
                };
                assert_eq!(bits(a), bits(b), "part size {part}");
            }
        }
    }
}
