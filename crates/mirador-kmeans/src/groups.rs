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
        self.groups
            .column(kmeans_scores::METHOD)
            .ok()
            .and_then(|c| c.str().ok().map(|s| s.iter().filter(|m| *m == Some(Method::KMeans.as_str())).count()))
            .unwrap_or(0)
    }
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
pub fn score_declarations(declarations: &DataFrame, params: &KMeansParams, seed: u64) -> PolarsResult<ScoredRows> {
    score(declarations, &Prices::of(declarations)?, None, params, seed)
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

/// [`score_declarations`] with carried peers: the priced rows earlier runs kept (see
/// [`crate::peers`]) join the peer groups, so a thin period is compared with its recent past.
/// Only `declarations` are scored. Also returns the peers to carry to the next run.
pub fn score_with_peers(
    declarations: &DataFrame,
    carried: Option<&DataFrame>,
    params: &KMeansParams,
    seed: u64,
) -> PolarsResult<(ScoredRows, DataFrame)> {
    let carried = carried.map(crate::peers::Peers::read).transpose()?;
    let prices = Prices::of(declarations)?;
    let scored = score(declarations, &prices, carried.as_ref(), params, seed)?;
    let kept = crate::peers::next(declarations, &prices.per_kg, &prices.per_unit, carried.as_ref(), params)?;
    Ok((scored, kept))
}

fn score(
    declarations: &DataFrame,
    prices: &Prices,
    carried: Option<&crate::peers::Peers>,
    params: &KMeansParams,
    seed: u64,
) -> PolarsResult<ScoredRows> {
    let (kg_peers, unit_peers) = carried.map(crate::peers::Peers::rows).unwrap_or_default();
    let mut scored = score_prices(declarations, &prices.per_kg, &kg_peers, params, seed)?;
    let by_unit = if prices.per_unit.iter().flatten().count() + unit_peers.len() >= params.min_group_size {
        Some(score_prices(declarations, &prices.per_unit, &unit_peers, params, seed ^ 0x0005_EED0)?)
    } else {
        None
    };
    combine(&mut scored, by_unit)?;
    Ok(scored)
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

/// Merges the per-unit scores into the per-kilogram ones.
fn combine(scored: &mut ScoredRows, by_unit: Option<ScoredRows>) -> PolarsResult<()> {
    let n = scored.scores.height();
    let kg = scored.scores.column(kmeans_scores::UNDERVALUATION_SCORE)?.f64()?.clone();
    let (unit, unit_flag, unit_duty) = match &by_unit {
        Some(u) => (
            u.scores.column(kmeans_scores::UNDERVALUATION_SCORE)?.f64()?.iter().collect::<Vec<_>>(),
            u.scores.column(kmeans_scores::UNDERVALUATION_FLAG)?.bool()?.iter().map(|b| b.unwrap_or(false)).collect::<Vec<_>>(),
            u.scores.column(kmeans_scores::UNDERVALUED_DUTY_USD)?.f64()?.iter().map(|d| d.unwrap_or(0.0)).collect::<Vec<_>>(),
        ),
        None => (vec![None; n], vec![false; n], vec![0.0; n]),
    };
    let flag: Vec<bool> = scored.scores.column(kmeans_scores::UNDERVALUATION_FLAG)?.bool()?.iter().map(|b| b.unwrap_or(false)).collect();
    let duty: Vec<f64> = scored.scores.column(kmeans_scores::UNDERVALUED_DUTY_USD)?.f64()?.iter().map(|d| d.unwrap_or(0.0)).collect();
    let mut score = Vec::with_capacity(n);
    let mut basis = Vec::with_capacity(n);
    for (k, u) in kg.iter().zip(&unit) {
        let unit_wins = matches!((k, u), (None, Some(_))) || matches!((k, u), (Some(k), Some(u)) if *u > k);
        score.push(if unit_wins { *u } else { k });
        basis.push(if unit_wins { "per_unit" } else { "per_kg" });
    }
    let df = &mut scored.scores;
    df.with_column(Column::new(kmeans_scores::UNDERVALUATION_SCORE.into(), score))?;
    df.with_column(Column::new(kmeans_scores::SCORE_BASIS.into(), basis))?;
    df.with_column(Column::new(kmeans_scores::UNIT_VALUE_SCORE.into(), unit))?;
    df.with_column(Column::new(
        kmeans_scores::UNDERVALUATION_FLAG.into(),
        flag.iter().zip(&unit_flag).map(|(a, b)| *a || *b).collect::<Vec<_>>(),
    ))?;
    df.with_column(Column::new(
        kmeans_scores::UNDERVALUED_DUTY_USD.into(),
        duty.iter().zip(&unit_duty).map(|(a, b)| a.max(*b)).collect::<Vec<_>>(),
    ))?;
    let groups = scored.groups.height();
    scored.groups.with_column(Column::new(kmeans_groups::BASIS.into(), vec!["per_kg"; groups]))?;
    if let Some(mut u) = by_unit {
        let g = u.groups.height();
        u.groups.with_column(Column::new(kmeans_groups::BASIS.into(), vec!["per_unit"; g]))?;
        scored.groups.vstack_mut(&u.groups)?;
    }
    Ok(())
}

/// Scores every declaration on the given prices (USD per kg, or per unit); `peers` (carried, log
/// prices) join the groups but are not scored.
fn score_prices(
    declarations: &DataFrame,
    price: &[Option<f64>],
    peers: &[Row<'_>],
    params: &KMeansParams,
    seed: u64,
) -> PolarsResult<ScoredRows> {
    let hs6 = Text::column(declarations, col::HS6)?;
    let origin = Text::column(declarations, col::ORIGIN_COUNTRY)?;
    let n = declarations.height();
    let mut rows: Vec<Row<'_>> = hs6
        .iter()
        .zip(origin.iter())
        .zip(price.iter().copied())
        .map(|((h, o), p)| Row {
            hs6: h.unwrap_or(""),
            origin: o.unwrap_or(""),
            log_price: p.filter(|p| p.is_finite() && *p > 0.0).map(f64::ln),
        })
        .collect();
    rows.extend(peers.iter().map(|p| Row { hs6: p.hs6, origin: p.origin, log_price: p.log_price }));

    // Which group a priced row is scored in depends only on its (HS6, origin) pair, so the
    // choice is made once per pair: rows are coded to pairs, the pairs' priced rows counted into
    // every candidate group, and each pair given the finest group with enough rows (else robust
    // z at HS2, else none).
    let levels: Vec<Level> = Level::ALL.iter().copied().filter(|l| params.by_origin || *l != Level::Hs6Origin).collect();
    let mut pair_ids: HashMap<(&str, &str), u32, FixedState> = HashMap::default();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let pair_of: Vec<u32> = rows
        .iter()
        .map(|r| {
            *pair_ids.entry((r.hs6, r.origin)).or_insert_with(|| {
                pairs.push((r.hs6, r.origin));
                (pairs.len() - 1) as u32
            })
        })
        .collect();
    let mut priced_per_pair = vec![0usize; pairs.len()];
    for (r, &p) in rows.iter().zip(&pair_of) {
        priced_per_pair[p as usize] += usize::from(r.log_price.is_some());
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
    for (r, &p) in rows[..n].iter().zip(&pair_of) {
        scored_pair[p as usize] |= r.log_price.is_some();
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
    let assigned: Vec<Option<u32>> = rows[..n].iter().zip(&pair_of).map(|(r, &p)| r.log_price.and(pair_group[p as usize])).collect();
    // Members (priced rows, in row order) of the groups in use, at whatever level: a row of a
    // pair belongs to that pair's group at every level.
    let pair_members: Vec<Vec<u32>> = pairs
        .iter()
        .map(|&(hs6, origin)| levels.iter().filter_map(|&l| index.get(&group_ref(l, hs6, origin)).copied()).collect())
        .collect();
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); used.len()];
    for (i, (r, &p)) in rows.iter().zip(&pair_of).enumerate() {
        if r.log_price.is_some() {
            for &g in &pair_members[p as usize] {
                members[g as usize].push(i as u32);
            }
        }
    }

    // Fit groups in parallel; each group's seed derives from the run seed and its key, so the
    // result does not depend on scheduling.
    let fits: Vec<GroupFit> = used
        .par_iter()
        .zip(&members)
        .map(|((level, key, method, _), members)| {
            let xs: Vec<f64> = members.iter().filter_map(|&i| rows[i as usize].log_price).collect();
            match method {
                Method::KMeans => fit_kmeans(&xs, &params.cluster, seed ^ fnv(level.as_str(), key)),
                Method::RobustZ => fit_robust(&xs, &params.cluster),
            }
        })
        .collect();

    let scores = scores_frame(declarations, &rows[..n], &assigned, &used, &fits, params)?;
    let groups = groups_frame(&used, &fits, &assigned, &scores)?;
    Ok(ScoredRows { scores, groups })
}

fn scores_frame(
    declarations: &DataFrame,
    rows: &[Row<'_>],
    assigned: &[Option<u32>],
    used: &[(Level, String, Method, GroupRef<'_>)],
    fits: &[GroupFit],
    params: &KMeansParams,
) -> PolarsResult<DataFrame> {
    let rate = declarations.column(col::TAX_RATE_PCT)?.f64()?;
    let value = declarations.column(col::VALUE_USD)?.f64()?;
    // Rows are scored in parallel, a part at a time, each part's columns then joined in order.
    let mut parts: Vec<ScoreColumns> = (0..rows.len())
        .step_by(SCORE_PART_ROWS)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| {
            let end = rows.len().min(start + SCORE_PART_ROWS);
            let (value, rate) = (value.slice(start as i64, end - start), rate.slice(start as i64, end - start));
            let mut part = ScoreColumns::with_capacity(end - start);
            for ((r, a), (v, rate)) in rows[start..end].iter().zip(&assigned[start..end]).zip(value.iter().zip(rate.iter())) {
                part.push(r, *a, v, rate, used, fits, params);
            }
            part
        })
        .collect();
    // Each column gathered from the parts in order; a part's values go as they are copied.
    let mut numbers = |name: &str, field: fn(&mut ScoreColumns) -> &mut Vec<Option<f64>>| {
        parts.iter_mut().flat_map(|p| std::mem::take(field(p))).collect::<Float64Chunked>().with_name(name.into()).into_column()
    };
    let centroid = numbers(kmeans_scores::CENTROID_PRICE_USD_PER_KG, |p| &mut p.centroid);
    let reference = numbers(kmeans_scores::REFERENCE_PRICE_USD_PER_KG, |p| &mut p.reference);
    let ratio = numbers(kmeans_scores::PRICE_RATIO, |p| &mut p.ratio);
    let z = numbers(kmeans_scores::Z_SCORE, |p| &mut p.z);
    let score = numbers(kmeans_scores::UNDERVALUATION_SCORE, |p| &mut p.score);
    let group_level = parts.iter_mut().flat_map(|p| std::mem::take(&mut p.group_level)).collect::<StringChunked>();
    let method =
        StringChunked::from_iter_values(kmeans_scores::METHOD.into(), parts.iter_mut().flat_map(|p| std::mem::take(&mut p.method)));
    let cluster = parts.iter_mut().flat_map(|p| std::mem::take(&mut p.cluster)).collect::<Int32Chunked>();
    let flag = BooleanChunked::from_iter_values(
        kmeans_scores::UNDERVALUATION_FLAG.into(),
        parts.iter_mut().flat_map(|p| std::mem::take(&mut p.flag)),
    );
    let shortfall = Float64Chunked::from_iter_values(
        kmeans_scores::UNDERVALUED_DUTY_USD.into(),
        parts.iter_mut().flat_map(|p| std::mem::take(&mut p.shortfall)),
    );
    let unit_price: Vec<Option<f64>> = rows.par_iter().map(|r| r.log_price.map(f64::exp)).collect();
    // Each row's group key, gathered from the groups' keys rather than copied row by row.
    let keys = StringChunked::from_iter_values(kmeans_scores::GROUP_KEY.into(), used.iter().map(|u| u.1.as_str()));
    let group_key = keys.take(&IdxCa::from_iter(assigned.iter().map(|a| a.map(|g| g as IdxSize))))?;
    let mut df = declarations.select([col::DECLARATION_ID, col::ITEM_NO, col::IMPORTER_ID, col::HS6, col::ORIGIN_COUNTRY])?;
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
        score,
        flag.into_column(),
        shortfall.into_column(),
    ] {
        df.with_column(c)?;
    }
    Ok(df)
}

/// Rows scored together by one thread in [`scores_frame`].
const SCORE_PART_ROWS: usize = 1 << 16;

/// The per-row columns of `kmeans_scores`, for a part of the rows.
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

    /// Scores one row: `assigned` is its group, `value` and `rate` its value (USD) and tax rate.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        r: &Row<'_>,
        assigned: Option<u32>,
        value: Option<f64>,
        rate: Option<f64>,
        used: &[(Level, String, Method, GroupRef<'_>)],
        fits: &[GroupFit],
        params: &KMeansParams,
    ) {
        match (r.log_price, assigned) {
            (Some(lp), Some(g)) => {
                let (level, _, m, _) = &used[g as usize];
                let fit = &fits[g as usize];
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

fn groups_frame(
    used: &[(Level, String, Method, GroupRef<'_>)],
    fits: &[GroupFit],
    assigned: &[Option<u32>],
    scores: &DataFrame,
) -> PolarsResult<DataFrame> {
    let flags = scores.column(kmeans_scores::UNDERVALUATION_FLAG)?.bool()?;
    let mut scored_rows = vec![(0u32, 0u32); used.len()];
    for (a, f) in assigned.iter().zip(flags.iter()) {
        if let Some(g) = a {
            let e = &mut scored_rows[*g as usize];
            e.0 += 1;
            e.1 += u32::from(f.unwrap_or(false));
        }
    }
    let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(";");
    let mut cols: (Vec<&str>, Vec<&str>, Vec<&str>, Vec<u32>, Vec<u32>, Vec<u32>, Vec<u32>) = Default::default();
    let mut centroids = Vec::new();
    let mut sizes = Vec::new();
    let mut silhouette = Vec::new();
    let mut median = Vec::new();
    let mut mainstream = Vec::new();
    for (g, (level, key, method, _)) in used.iter().enumerate() {
        let fit = &fits[g];
        let (scored, flagged) = scored_rows[g];
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
