//! Assigning declarations to peer groups, fitting the groups in parallel and assembling the
//! output frames.

use std::collections::HashMap;

use foldhash::fast::FixedState;

use mirador_schema::catalog::{kmeans_groups, kmeans_scores};
use mirador_schema::col;
use mirador_schema::text::Text;
use polars::prelude::*;
use rayon::prelude::*;

use crate::KMeansParams;
use crate::cluster::{GroupFit, Method, fit_kmeans, fit_robust};

/// The HS level a group is keyed at, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// HS6 × country of origin.
    Hs6Origin,
    /// HS6.
    Hs6,
    /// HS heading.
    Hs4,
    /// HS chapter.
    Hs2,
}

impl Level {
    const ALL: [Level; 4] = [Level::Hs6Origin, Level::Hs6, Level::Hs4, Level::Hs2];

    /// Name written in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Hs6Origin => "hs6_origin",
            Level::Hs6 => "hs6",
            Level::Hs4 => "hs4",
            Level::Hs2 => "hs2",
        }
    }
}

/// Stage results: per-declaration scores and per-group summaries.
pub struct ScoredRows {
    /// `kmeans_scores`.
    pub scores: DataFrame,
    /// `kmeans_groups`.
    pub groups: DataFrame,
}

impl ScoredRows {
    /// Declarations flagged as possibly undervalued.
    pub fn flagged(&self) -> usize {
        self.scores
            .column(kmeans_scores::UNDERVALUATION_FLAG)
            .ok()
            .and_then(|c| c.bool().ok().map(|b| b.sum().unwrap_or(0) as usize))
            .unwrap_or(0)
    }

    /// Groups scored by k-means (rather than the robust fallback).
    pub fn clustered_groups(&self) -> usize {
        clustered(&self.groups)
    }
}

/// Groups of a `kmeans_groups` frame scored by k-means (rather than the robust fallback).
pub(crate) fn clustered(groups: &DataFrame) -> usize {
    groups
        .column(kmeans_scores::METHOD)
        .ok()
        .and_then(|c| c.str().ok().map(|s| s.iter().filter(|m| *m == Some(Method::KMeans.as_str())).count()))
        .unwrap_or(0)
}

/// A group's identity borrowed from the data: level, HS prefix, origin (empty unless by origin).
type GroupRef<'a> = (Level, &'a str, &'a str);

fn group_ref<'a>(level: Level, hs6: &'a str, origin: &'a str) -> GroupRef<'a> {
    match level {
        Level::Hs6Origin => (level, hs6, origin),
        Level::Hs6 => (level, hs6, ""),
        Level::Hs4 => (level, hs6.get(..4).unwrap_or(hs6), ""),
        Level::Hs2 => (level, hs6.get(..2).unwrap_or(hs6), ""),
    }
}

/// The group key written in outputs: the HS prefix, with `|origin` at the HS6 × origin level.
fn group_key((level, prefix, origin): GroupRef<'_>) -> String {
    if level == Level::Hs6Origin { format!("{prefix}|{origin}") } else { prefix.to_owned() }
}

/// A priced (or unpriced) row: a declaration to score, or a carried peer.
pub(crate) struct Row<'a> {
    pub(crate) hs6: &'a str,
    pub(crate) origin: &'a str,
    pub(crate) log_price: Option<f64>,
}

/// Scores every declaration. Output rows follow the input order.
///
/// Prices are compared per kilogram, and also per supplementary unit (value ÷ quantity) where
/// declarations carry quantities: goods sold by the piece or the pair can be underpriced per unit
/// while their weight says little. A declaration's `undervaluation_score` is the higher of the
/// two (`score_basis` says which); `unit_value_score` keeps the per-unit one. The other price
/// columns are per kilogram; `kmeans_groups` lists the groups of both bases (`basis`).
///
/// The scores are held whole here; the stage writes them block by block ([`score_in_blocks`]).
pub fn score_declarations(declarations: &DataFrame, params: &KMeansParams, seed: u64) -> PolarsResult<ScoredRows> {
    whole(declarations, None, params, seed)
}

/// [`score_declarations`] with carried peers: the priced rows earlier runs kept (see
/// [`crate::peers`]) join the peer groups, so a thin period is compared with its recent past.
/// Only `declarations` are scored. Also returns the peers to carry to the next run.
pub fn score_with_peers(
    declarations: &DataFrame,
    carried: Option<&DataFrame>,
    params: &KMeansParams,
    seed: u64,
) -> PolarsResult<(ScoredRows, DataFrame)> {
    let scored = whole(declarations, carried, params, seed)?;
    Ok((scored, peers_to_carry(declarations, carried, params)?))
}

/// The peers to carry to the next run ([`crate::peers`]): this run's priced declarations and the
/// `carried` peers still in the window.
pub fn peers_to_carry(declarations: &DataFrame, carried: Option<&DataFrame>, params: &KMeansParams) -> PolarsResult<DataFrame> {
    let carried = carried.map(crate::peers::Peers::read).transpose()?;
    let prices = Prices::of(declarations)?;
    crate::peers::next(declarations, &prices.per_kg, &prices.per_unit, carried.as_ref(), params)
}

/// [`score_in_blocks`], its blocks gathered into one frame.
fn whole(declarations: &DataFrame, carried: Option<&DataFrame>, params: &KMeansParams, seed: u64) -> PolarsResult<ScoredRows> {
    let mut scores: Option<DataFrame> = None;
    let groups = score_in_blocks(declarations, carried, params, seed, |block| mirador_io::stack(&mut scores, block))?;
    Ok(ScoredRows { scores: scores.unwrap_or_default(), groups })
}

/// Rows of `kmeans_scores` [`score_in_blocks`] makes at a time: whole row groups of the written
/// file ([`mirador_io::ROW_GROUP_ROWS`]), so that a file written block by block has the bytes of
/// the file written from the whole frame.
pub const BLOCK_ROWS: usize = 2 * mirador_io::ROW_GROUP_ROWS;

/// Scores every declaration as [`score_declarations`] does, handing `write` the rows of
/// `kmeans_scores` [`BLOCK_ROWS`] at a time, in order (at least one block, empty when there are
/// no declarations), and returns `kmeans_groups`. `carried` peers (a peers file, [`crate::peers`])
/// join the groups but are not scored.
///
/// The groups are fitted first, on both bases; then only each row's group is held, and a block's
/// prices and scores are computed when it is written: the scores of ten million declarations
/// never exist at once.
pub fn score_in_blocks<E: From<PolarsError>>(
    declarations: &DataFrame,
    carried: Option<&DataFrame>,
    params: &KMeansParams,
    seed: u64,
    write: impl FnMut(DataFrame) -> Result<(), E>,
) -> Result<DataFrame, E> {
    score_in_blocks_of(declarations, carried, params, seed, BLOCK_ROWS, write)
}

/// [`score_in_blocks`] in blocks of `block_rows`.
fn score_in_blocks_of<E: From<PolarsError>>(
    declarations: &DataFrame,
    carried: Option<&DataFrame>,
    params: &KMeansParams,
    seed: u64,
    block_rows: usize,
    mut write: impl FnMut(DataFrame) -> Result<(), E>,
) -> Result<DataFrame, E> {
    let (kg, unit) = fit_bases(declarations, carried, params, seed)?;
    let n = declarations.height();
    let mut tally = (vec![Tally::default(); kg.used.len()], vec![Tally::default(); unit.as_ref().map_or(0, |u| u.used.len())]);
    for start in (0..n.max(1)).step_by(block_rows.max(1)) {
        let len = block_rows.min(n - start.min(n));
        write(scores_block(&declarations.slice(start as i64, len), start, &kg, unit.as_ref(), &mut tally, params)?)?;
    }
    let mut groups = groups_frame(&kg, &tally.0)?;
    groups.with_column(Column::new(kmeans_groups::BASIS.into(), vec!["per_kg"; groups.height()]))?;
    if let Some(unit) = &unit {
        let mut by_unit = groups_frame(unit, &tally.1)?;
        by_unit.with_column(Column::new(kmeans_groups::BASIS.into(), vec!["per_unit"; by_unit.height()]))?;
        groups.vstack_mut(&by_unit)?;
    }
    Ok(groups)
}

/// The groups of both bases fitted: per kilogram, and per unit where enough rows (with the
/// carried peers) have a price per unit.
fn fit_bases(
    declarations: &DataFrame,
    carried: Option<&DataFrame>,
    params: &KMeansParams,
    seed: u64,
) -> PolarsResult<(Fitted, Option<Fitted>)> {
    let carried = carried.map(crate::peers::Peers::read).transpose()?;
    let (kg_peers, unit_peers) = carried.as_ref().map(crate::peers::Peers::rows).unwrap_or_default();
    let prices = Prices::of(declarations)?;
    let kg = fit(declarations, &prices.per_kg, &kg_peers, params, seed)?;
    let unit = if prices.per_unit.iter().flatten().count() + unit_peers.len() >= params.min_group_size {
        Some(fit(declarations, &prices.per_unit, &unit_peers, params, seed ^ 0x0005_EED0)?)
    } else {
        None
    };
    Ok((kg, unit))
}

/// A frame's unit prices: per kilogram, and per supplementary unit ([`per_unit_prices`]).
struct Prices {
    per_kg: Vec<Option<f64>>,
    per_unit: Vec<Option<f64>>,
}

impl Prices {
    fn of(declarations: &DataFrame) -> PolarsResult<Self> {
        Ok(Prices {
            per_kg: declarations.column(col::UNIT_PRICE_USD_KG)?.f64()?.iter().collect(),
            per_unit: per_unit_prices(declarations)?,
        })
    }
}

/// Value per supplementary unit, where both are positive.
fn per_unit_prices(declarations: &DataFrame) -> PolarsResult<Vec<Option<f64>>> {
    let Ok(quantity) = declarations.column(col::QUANTITY) else {
        return Ok(vec![None; declarations.height()]);
    };
    let quantity = quantity.cast(&DataType::Float64)?;
    let value = declarations.column(col::VALUE_USD)?.f64()?;
    Ok(quantity
        .f64()?
        .iter()
        .zip(value.iter())
        .map(|(q, v)| match (q, v) {
            (Some(q), Some(v)) if q > 0.0 && v > 0.0 => Some(v / q),
            _ => None,
        })
        .collect())
}

/// The log of a price that can be scored (finite and positive).
fn log_price(price: Option<f64>) -> Option<f64> {
    price.filter(|p| p.is_finite() && *p > 0.0).map(f64::ln)
}

/// A group in use: its level, its key as written, and how it is scored.
type Group = (Level, String, Method);

/// One basis's groups, fitted: all that scoring a row on that basis needs besides its price.
struct Fitted {
    /// The groups in use, in key order.
    used: Vec<Group>,
    /// Each group's fit.
    fits: Vec<GroupFit>,
    /// The groups' keys, each row's gathered from them.
    keys: StringChunked,
    /// Each declaration's group: `None` for a row without a price or without enough peers.
    assigned: Vec<Option<u32>>,
}

/// Groups and fits every declaration on the given prices (USD per kg, or per unit); `peers`
/// (carried, log prices) join the groups but are not scored.
fn fit(declarations: &DataFrame, price: &[Option<f64>], peers: &[Row<'_>], params: &KMeansParams, seed: u64) -> PolarsResult<Fitted> {
    let hs6 = Text::column(declarations, col::HS6)?;
    let origin = Text::column(declarations, col::ORIGIN_COUNTRY)?;
    let n = declarations.height();
    // Every row's log price (declarations, then peers) and (HS6, origin) pair, numbered in order
    // of first appearance.
    let log_prices: Vec<Option<f64>> = price.iter().take(n).map(|&p| log_price(p)).chain(peers.iter().map(|p| p.log_price)).collect();
    let mut pair_ids: HashMap<(&str, &str), u32, FixedState> = HashMap::default();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let keys =
        hs6.iter().zip(origin.iter()).map(|(h, o)| (h.unwrap_or(""), o.unwrap_or(""))).chain(peers.iter().map(|p| (p.hs6, p.origin)));
    let pair_of: Vec<u32> = keys
        .take(log_prices.len())
        .map(|key| {
            *pair_ids.entry(key).or_insert_with(|| {
                pairs.push(key);
                (pairs.len() - 1) as u32
            })
        })
        .collect();
    drop(pair_ids);

    // Which group a priced row is scored in depends only on its (HS6, origin) pair, so the
    // choice is made once per pair: the pairs' priced rows are counted into every candidate
    // group, and each pair given the finest group with enough rows (else robust z at HS2, else
    // none).
    let levels: Vec<Level> = Level::ALL.iter().copied().filter(|l| params.by_origin || *l != Level::Hs6Origin).collect();
    let mut priced_per_pair = vec![0usize; pairs.len()];
    for (lp, &p) in log_prices.iter().zip(&pair_of) {
        priced_per_pair[p as usize] += usize::from(lp.is_some());
    }
    let mut size: HashMap<GroupRef<'_>, usize, FixedState> = HashMap::default();
    for (&(hs6, origin), &priced) in pairs.iter().zip(&priced_per_pair) {
        for &level in &levels {
            *size.entry(group_ref(level, hs6, origin)).or_default() += priced;
        }
    }
    let size_of = |g: &GroupRef<'_>| size.get(g).copied().unwrap_or(0);
    // Pairs with a row to score (carried peers join groups but are not scored).
    let mut scored_pair = vec![false; pairs.len()];
    for (lp, &p) in log_prices[..n].iter().zip(&pair_of) {
        scored_pair[p as usize] |= lp.is_some();
    }
    let choice: Vec<Option<(GroupRef<'_>, Method)>> = pairs
        .iter()
        .zip(&scored_pair)
        .map(|(&(hs6, origin), &scored)| {
            if !scored {
                return None;
            }
            if let Some(g) = levels.iter().map(|&l| group_ref(l, hs6, origin)).find(|g| size_of(g) >= params.min_group_size) {
                return Some((g, Method::KMeans));
            }
            let g = group_ref(Level::Hs2, hs6, origin);
            (size_of(&g) >= params.min_robust_size).then_some((g, Method::RobustZ))
        })
        .collect();
    // Groups in key order, so outputs do not depend on the row order of first appearance.
    let mut used: Vec<(Level, String, Method, GroupRef<'_>)> = Vec::new();
    let mut index: HashMap<GroupRef<'_>, u32, FixedState> = HashMap::default();
    for &(g, method) in choice.iter().flatten() {
        index.entry(g).or_insert_with(|| {
            used.push((g.0, group_key(g), method, g));
            0
        });
    }
    used.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (i, u) in used.iter().enumerate() {
        index.insert(u.3, i as u32);
    }
    let pair_group: Vec<Option<u32>> = choice.iter().map(|c| c.map(|(g, _)| index[&g])).collect();
    let assigned: Vec<Option<u32>> = log_prices[..n].iter().zip(&pair_of).map(|(lp, &p)| lp.and(pair_group[p as usize])).collect();
    // Members (priced rows, in row order) of the groups in use, at whatever level: a row of a
    // pair belongs to that pair's group at every level.
    let pair_members: Vec<Vec<u32>> = pairs
        .iter()
        .map(|&(hs6, origin)| levels.iter().filter_map(|&l| index.get(&group_ref(l, hs6, origin)).copied()).collect())
        .collect();
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); used.len()];
    for (i, (lp, &p)) in log_prices.iter().zip(&pair_of).enumerate() {
        if lp.is_some() {
            for &g in &pair_members[p as usize] {
                members[g as usize].push(i as u32);
            }
        }
    }
    drop(pair_of);

    // Fit groups in parallel; each group's seed derives from the run seed and its key, so the
    // result does not depend on scheduling.
    let fits: Vec<GroupFit> = used
        .par_iter()
        .zip(&members)
        .map(|((level, key, method, _), members)| {
            let xs: Vec<f64> = members.iter().filter_map(|&i| log_prices[i as usize]).collect();
            match method {
                Method::KMeans => fit_kmeans(&xs, &params.cluster, seed ^ fnv(level.as_str(), key)),
                Method::RobustZ => fit_robust(&xs, &params.cluster),
            }
        })
        .collect();
    let used: Vec<Group> = used.into_iter().map(|(level, key, method, _)| (level, key, method)).collect();
    let keys = StringChunked::from_iter_values(kmeans_scores::GROUP_KEY.into(), used.iter().map(|u| u.1.as_str()));
    Ok(Fitted { used, fits, keys, assigned })
}

/// Rows scored in a group and flagged in it, on its basis.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    scored: u32,
    flagged: u32,
}

/// The rows of `kmeans_scores` for `block`, the declarations from row `start` on: each row scored
/// on both bases and the two combined. Counts each group's scored and flagged rows into `tally`
/// (per kilogram, per unit).
fn scores_block(
    block: &DataFrame,
    start: usize,
    kg: &Fitted,
    unit: Option<&Fitted>,
    tally: &mut (Vec<Tally>, Vec<Tally>),
    params: &KMeansParams,
) -> PolarsResult<DataFrame> {
    let n = block.height();
    let prices = Prices::of(block)?;
    let mut parts = score_parts(block, &prices.per_kg, &kg.assigned[start..start + n], kg, params)?;
    count(&mut tally.0, &kg.assigned[start..start + n], &parts);
    let by_unit = match unit {
        Some(unit) => {
            let parts = score_parts(block, &prices.per_unit, &unit.assigned[start..start + n], unit, params)?;
            count(&mut tally.1, &unit.assigned[start..start + n], &parts);
            Some(parts)
        }
        None => None,
    };
    // Each column gathered from the parts in order; a part's values go as they are copied.
    let mut numbers = |name: &str, field: fn(&mut ScoreColumns) -> &mut Vec<Option<f64>>| {
        parts.iter_mut().flat_map(|p| std::mem::take(field(p))).collect::<Float64Chunked>().with_name(name.into()).into_column()
    };
    let centroid = numbers(kmeans_scores::CENTROID_PRICE_USD_PER_KG, |p| &mut p.centroid);
    let reference = numbers(kmeans_scores::REFERENCE_PRICE_USD_PER_KG, |p| &mut p.reference);
    let ratio = numbers(kmeans_scores::PRICE_RATIO, |p| &mut p.ratio);
    let z = numbers(kmeans_scores::Z_SCORE, |p| &mut p.z);
    let group_level = parts.iter_mut().flat_map(|p| std::mem::take(&mut p.group_level)).collect::<StringChunked>();
    let method =
        StringChunked::from_iter_values(kmeans_scores::METHOD.into(), parts.iter_mut().flat_map(|p| std::mem::take(&mut p.method)));
    let cluster = parts.iter_mut().flat_map(|p| std::mem::take(&mut p.cluster)).collect::<Int32Chunked>();
    let unit_price: Vec<Option<f64>> = prices.per_kg.iter().map(|&p| log_price(p).map(f64::exp)).collect();
    // Each row's group key, gathered from the groups' keys rather than copied row by row.
    let group_key = kg.keys.take(&kg.assigned[start..start + n].iter().map(|a| a.map(|g| g as IdxSize)).collect::<IdxCa>())?;
    let combined = Combined::of(parts, by_unit);
    let mut df = block.select([col::DECLARATION_ID, col::ITEM_NO, col::IMPORTER_ID, col::HS6, col::ORIGIN_COUNTRY])?;
    for c in [
        group_key.into_column(),
        group_level.with_name(kmeans_scores::GROUP_LEVEL.into()).into_column(),
        method.into_column(),
        cluster.with_name(kmeans_scores::CLUSTER.into()).into_column(),
        Column::new(col::UNIT_PRICE_USD_KG.into(), unit_price),
        centroid,
        reference,
        ratio,
        z,
        Column::new(kmeans_scores::UNDERVALUATION_SCORE.into(), combined.score),
        Column::new(kmeans_scores::UNDERVALUATION_FLAG.into(), combined.flag),
        Column::new(kmeans_scores::UNDERVALUED_DUTY_USD.into(), combined.duty),
        Column::new(kmeans_scores::SCORE_BASIS.into(), combined.basis),
        Column::new(kmeans_scores::UNIT_VALUE_SCORE.into(), combined.unit),
    ] {
        df.with_column(c)?;
    }
    Ok(df)
}

/// A row's score on one basis, whether it is flagged, and its duty shortfall.
type RowScore = ((Option<f64>, bool), f64);

/// The scores of both bases merged: the higher score and which basis gave it, flagged on either,
/// the larger duty shortfall, and the per-unit score as it is.
struct Combined {
    score: Vec<Option<f64>>,
    basis: Vec<&'static str>,
    flag: Vec<bool>,
    duty: Vec<f64>,
    unit: Vec<Option<f64>>,
}

impl Combined {
    /// Merges the per-unit scores (where there are any) into the per-kilogram ones.
    fn of(kg: Vec<ScoreColumns>, unit: Option<Vec<ScoreColumns>>) -> Self {
        let n: usize = kg.iter().map(|p| p.flag.len()).sum();
        let mut c = Combined {
            score: Vec::with_capacity(n),
            basis: Vec::with_capacity(n),
            flag: Vec::with_capacity(n),
            duty: Vec::with_capacity(n),
            unit: Vec::with_capacity(n),
        };
        let kg = kg.into_iter().flat_map(|p| p.score.into_iter().zip(p.flag).zip(p.shortfall));
        let unit: Box<dyn Iterator<Item = RowScore>> = match unit {
            Some(parts) => Box::new(parts.into_iter().flat_map(|p| p.score.into_iter().zip(p.flag).zip(p.shortfall))),
            None => Box::new(std::iter::repeat(((None, false), 0.0))),
        };
        for (((k, k_flag), k_duty), ((u, u_flag), u_duty)) in kg.zip(unit) {
            let unit_wins = matches!((k, u), (None, Some(_))) || matches!((k, u), (Some(k), Some(u)) if u > k);
            c.score.push(if unit_wins { u } else { k });
            c.basis.push(if unit_wins { "per_unit" } else { "per_kg" });
            c.flag.push(k_flag || u_flag);
            c.duty.push(k_duty.max(u_duty));
            c.unit.push(u);
        }
        c
    }
}

/// Counts the rows of a block scored in each group (`assigned`) and flagged in it (`parts`, the
/// block's scores on the groups' basis).
fn count(tally: &mut [Tally], assigned: &[Option<u32>], parts: &[ScoreColumns]) {
    for (a, &flag) in assigned.iter().zip(parts.iter().flat_map(|p| &p.flag)) {
        if let Some(g) = a {
            let t = &mut tally[*g as usize];
            t.scored += 1;
            t.flagged += u32::from(flag);
        }
    }
}

/// Scores the rows of `block` (prices `price`, groups `assigned`) against the fits of their
/// basis, in parallel, a part at a time, the parts in order.
fn score_parts(
    block: &DataFrame,
    price: &[Option<f64>],
    assigned: &[Option<u32>],
    fitted: &Fitted,
    params: &KMeansParams,
) -> PolarsResult<Vec<ScoreColumns>> {
    let rate = block.column(col::TAX_RATE_PCT)?.f64()?;
    let value = block.column(col::VALUE_USD)?.f64()?;
    Ok((0..price.len())
        .step_by(SCORE_PART_ROWS)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            let end = price.len().min(start + SCORE_PART_ROWS);
            let (value, rate) = (value.slice(start as i64, end - start), rate.slice(start as i64, end - start));
            let mut part = ScoreColumns::with_capacity(end - start);
            for ((p, a), (v, rate)) in price[start..end].iter().zip(&assigned[start..end]).zip(value.iter().zip(rate.iter())) {
                part.push(log_price(*p), *a, v, rate, fitted, params);
            }
            part
        })
        .collect())
}

/// Rows scored together by one thread in [`score_parts`].
const SCORE_PART_ROWS: usize = 1 << 16;

/// The per-row columns of `kmeans_scores` on one basis, for a part of the rows.
struct ScoreColumns {
    group_level: Vec<Option<&'static str>>,
    method: Vec<&'static str>,
    cluster: Vec<Option<i32>>,
    centroid: Vec<Option<f64>>,
    reference: Vec<Option<f64>>,
    ratio: Vec<Option<f64>>,
    z: Vec<Option<f64>>,
    score: Vec<Option<f64>>,
    flag: Vec<bool>,
    shortfall: Vec<f64>,
}

impl ScoreColumns {
    fn with_capacity(n: usize) -> Self {
        ScoreColumns {
            group_level: Vec::with_capacity(n),
            method: Vec::with_capacity(n),
            cluster: Vec::with_capacity(n),
            centroid: Vec::with_capacity(n),
            reference: Vec::with_capacity(n),
            ratio: Vec::with_capacity(n),
            z: Vec::with_capacity(n),
            score: Vec::with_capacity(n),
            flag: Vec::with_capacity(n),
            shortfall: Vec::with_capacity(n),
        }
    }

    /// Scores one row: `log_price` its log unit price, `assigned` its group, `value` and `rate`
    /// its value (USD) and tax rate.
    fn push(
        &mut self,
        log_price: Option<f64>,
        assigned: Option<u32>,
        value: Option<f64>,
        rate: Option<f64>,
        fitted: &Fitted,
        params: &KMeansParams,
    ) {
        match (log_price, assigned) {
            (Some(lp), Some(g)) => {
                let (level, _, m) = &fitted.used[g as usize];
                let fit = &fitted.fits[g as usize];
                let s = fit.score(lp, &params.cluster);
                let ratio = (lp - s.reference).exp();
                let flagged = s.score >= params.flag_score && ratio <= params.flag_max_ratio;
                self.group_level.push(Some(level.as_str()));
                self.method.push(m.as_str());
                self.cluster.push(Some(s.cluster as i32));
                self.centroid.push(Some(s.centroid.exp()));
                self.reference.push(Some(s.reference.exp()));
                self.ratio.push(Some(ratio));
                self.z.push(Some(s.z));
                self.score.push(Some(s.score));
                self.flag.push(flagged);
                // Duty the declared value escapes if the reference price were the true one.
                let v = value.unwrap_or(0.0);
                let missing_value = if ratio > 0.0 && ratio < 1.0 { v / ratio - v } else { 0.0 };
                self.shortfall.push(missing_value * rate.unwrap_or(0.0) / 100.0);
            }
            (lp, _) => {
                self.group_level.push(None);
                self.method.push(if lp.is_none() { "no_unit_price" } else { "too_few_peers" });
                self.cluster.push(None);
                self.centroid.push(None);
                self.reference.push(None);
                self.ratio.push(None);
                self.z.push(None);
                self.score.push(None);
                self.flag.push(false);
                self.shortfall.push(0.0);
            }
        }
    }
}

/// The `kmeans_groups` rows of one basis's groups, with the rows scored and flagged in each.
fn groups_frame(fitted: &Fitted, tally: &[Tally]) -> PolarsResult<DataFrame> {
    let Fitted { used, fits, .. } = fitted;
    let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(";");
    let mut cols: (Vec<&str>, Vec<&str>, Vec<&str>, Vec<u32>, Vec<u32>, Vec<u32>, Vec<u32>) = Default::default();
    let mut centroids = Vec::new();
    let mut sizes = Vec::new();
    let mut silhouette = Vec::new();
    let mut median = Vec::new();
    let mut mainstream = Vec::new();
    for (g, (level, key, method)) in used.iter().enumerate() {
        let fit = &fits[g];
        let Tally { scored, flagged } = tally[g];
        cols.0.push(key);
        cols.1.push(level.as_str());
        cols.2.push(method.as_str());
        cols.3.push(fit.sizes.iter().sum::<usize>() as u32);
        cols.4.push(scored);
        cols.5.push(fit.centroids.len() as u32);
        cols.6.push(flagged);
        let prices: Vec<f64> = fit.centroids.iter().map(|c| c.exp()).collect();
        centroids.push(fmt(&prices));
        sizes.push(fit.sizes.iter().map(ToString::to_string).collect::<Vec<_>>().join(";"));
        silhouette.push(fit.silhouette);
        median.push(fit.median.exp());
        mainstream.push(prices[fit.mainstream]);
    }
    DataFrame::new_infer_height(vec![
        Column::new(kmeans_scores::GROUP_KEY.into(), cols.0),
        Column::new(kmeans_scores::GROUP_LEVEL.into(), cols.1),
        Column::new(kmeans_scores::METHOD.into(), cols.2),
        Column::new(kmeans_groups::ROWS_IN_GROUP.into(), cols.3),
        Column::new(kmeans_groups::ROWS_SCORED.into(), cols.4),
        Column::new(kmeans_groups::K.into(), cols.5),
        Column::new(kmeans_groups::CENTROID_PRICES_USD_PER_KG.into(), centroids),
        Column::new(kmeans_groups::CLUSTER_SIZES.into(), sizes),
        Column::new(kmeans_groups::SILHOUETTE.into(), silhouette),
        Column::new(kmeans_groups::MEDIAN_PRICE_USD_PER_KG.into(), median),
        Column::new(kmeans_groups::MAINSTREAM_PRICE_USD_PER_KG.into(), mainstream),
        Column::new(kmeans_groups::FLAGGED.into(), cols.6),
    ])
}

/// FNV-1a of a group's identity: a stable per-group seed.
fn fnv(level: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in level.bytes().chain([0]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of any size make, one after another, the rows one block of every row makes, and
    /// the same groups; the stage's blocks are whole row groups of the written file.
    #[test]
    fn blocks_of_any_size_make_the_same_scores() {
        assert_eq!(BLOCK_ROWS % mirador_io::ROW_GROUP_ROWS, 0);
        let world =
            mirador_synth::generate(&mirador_synth::SynthParams { declarations: 6_000, ..mirador_synth::SynthParams::small(7) }).unwrap();
        let declarations = &world.declarations;
        let params = KMeansParams::default();
        let in_blocks = |rows: usize| {
            let mut blocks = Vec::new();
            let groups = score_in_blocks_of(declarations, None, &params, 5, rows, |b: DataFrame| -> PolarsResult<()> {
                blocks.push(b);
                Ok(())
            })
            .unwrap();
            (blocks, groups)
        };
        let (whole, groups) = in_blocks(declarations.height());
        assert_eq!(whole.len(), 1);
        let (blocks, block_groups) = in_blocks(1_000);
        assert_eq!(blocks.len(), 6);
        assert!(blocks.iter().all(|b| b.height() == 1_000));
        let mut joined = blocks[0].clone();
        for b in &blocks[1..] {
            joined.vstack_mut(b).unwrap();
        }
        assert!(joined.equals_missing(&whole[0]));
        assert!(block_groups.equals_missing(&groups));
    }
}
