//! The `report` stage: gathers the run's datasets into [`ReportData`] and renders it.

use std::collections::BTreeMap;

use mirador_pipeline::columns::{self, days, flags};
use mirador_pipeline::{Stage, StageContext, StageError, StageOutput};
use mirador_schema::catalog::{
    auditee_evaluation, auditees, fraud_evaluation, fraud_importance, fraud_rules, fraud_scores, gap_by_cell, gap_by_chapter,
    gap_by_partner, gap_summary, kmeans_groups, kmeans_scores, release_breaches, release_steps, selection_frontier,
};
use mirador_schema::text::Text;
use mirador_schema::{DatasetId, col, datasets};
use polars::prelude::*;

use crate::{
    AuditeeCapture, AuditeeRow, CountryFigures, FraudMap, Frontier, FrontierCurve, FrontierPoint, Gain, GainIntervals, GapBar, GapTotal,
    MirrorPoint, PricePanel, PricePoint, QualityRow, ReleaseFigures, ReleaseGroup, ReportData, RuleRow, ScorePoint, render,
};

/// Text column `name` ([`columns::texts`]), a null as empty text: the report labels and groups a
/// missing text as "".
pub(crate) fn texts_or_empty(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(columns::texts(df, name)?.into_iter().map(Option::unwrap_or_default).collect())
}

/// Numeric column `name` ([`columns::numbers`]), a null as NaN: the report leaves out, or says
/// "n/a" for, what is not finite.
pub(crate) fn numbers_or_nan(df: &DataFrame, name: &str) -> PolarsResult<Vec<f64>> {
    Ok(columns::numbers(df, name)?.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// The precision–revenue frontier of the test split: one curve per ranking of
/// `fraud_evaluation` (the inspection list among them), the list at its budget marked, and its
/// policy from `selection_frontier` when the run has it.
fn frontier(e: &DataFrame, chosen: Option<&DataFrame>) -> PolarsResult<Option<Frontier>> {
    let (split, ranking) = (texts_or_empty(e, fraud_evaluation::SPLIT)?, texts_or_empty(e, fraud_evaluation::RANKING)?);
    let (n, p, r, rev) = (
        numbers_or_nan(e, fraud_evaluation::N_PCT)?,
        numbers_or_nan(e, fraud_evaluation::PRECISION)?,
        numbers_or_nan(e, fraud_evaluation::RECALL)?,
        numbers_or_nan(e, fraud_evaluation::REVENUE)?,
    );
    let mut curves: Vec<FrontierCurve> = Vec::new();
    for i in (0..e.height()).filter(|&i| split[i] == "test") {
        let point = FrontierPoint { n_pct: n[i], precision: p[i], recall: r[i], revenue: rev[i] };
        match curves.iter_mut().find(|c| c.ranking == ranking[i]) {
            Some(c) => c.points.push(point),
            None => curves.push(FrontierCurve { ranking: ranking[i].clone(), points: vec![point] }),
        }
    }
    if curves.is_empty() {
        return Ok(None);
    }
    for c in &mut curves {
        c.points.sort_by(|a, b| a.n_pct.total_cmp(&b.n_pct));
    }
    let mut budget = 5.0;
    let mut policy = String::new();
    if let Some(f) = chosen.filter(|f| f.height() > 0) {
        if let Some(i) = flags(f, selection_frontier::CHOSEN)?.iter().position(|c| *c) {
            let (share, exponent, explore) = (
                numbers_or_nan(f, selection_frontier::REVENUE_SHARE)?[i],
                numbers_or_nan(f, selection_frontier::REVENUE_EXPONENT)?[i],
                numbers_or_nan(f, selection_frontier::EXPLORATION_SHARE)?[i],
            );
            budget = numbers_or_nan(f, selection_frontier::BUDGET_PCT)
                .ok()
                .and_then(|b| b.get(i).copied())
                .filter(|b| b.is_finite())
                .unwrap_or(budget);
            let by = if (exponent - 1.0).abs() < 1e-9 { "expected duty".to_owned() } else { format!("probability^{exponent} × duty") };
            policy = format!(
                "{:.1} % of the picks by fraud probability, {:.1} % by {by}, {:.1} % by exploration (chosen on the validation months)",
                (1.0 - share - explore) * 100.0,
                share * 100.0,
                explore * 100.0
            );
        }
    }
    let chosen =
        curves.iter().find(|c| c.ranking == "selection").and_then(|c| c.points.iter().find(|p| (p.n_pct - budget).abs() < 1e-9)).copied();
    Ok(Some(Frontier { split: "test".into(), curves, chosen, policy }))
}

fn money(x: f64) -> String {
    if x.abs() >= 1e6 {
        format!("USD {:.2} M", x / 1e6)
    } else if x.abs() >= 1e3 {
        format!("USD {:.1} k", x / 1e3)
    } else {
        format!("USD {x:.0}")
    }
}

/// Builds the report's data from whatever datasets the run produced.
pub fn gather(run_id: &str, ctx_inputs: &BTreeMap<&str, &DataFrame>) -> PolarsResult<ReportData> {
    let get = |id: &str| ctx_inputs.get(id).copied();
    let mut data = ReportData { title: "Mirador run report".into(), run_id: run_id.to_owned(), ..ReportData::default() };

    // Data quality: accepted rows per dataset, quarantined rows by reason.
    let mut quarantined: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for q in [get(datasets::QUARANTINE), get(datasets::OUTCOME_QUARANTINE)].into_iter().flatten() {
        for (d, r) in texts_or_empty(q, col::DATASET)?.into_iter().zip(texts_or_empty(q, col::REASON_CODE)?) {
            *quarantined.entry(d).or_default().entry(r).or_default() += 1;
        }
    }
    for id in [datasets::DECLARATIONS, datasets::MIRROR_FLOWS, datasets::TARIFFS, datasets::FX_RATES, datasets::INSPECTION_OUTCOMES] {
        let accepted = get(id).map_or(0, DataFrame::height) as u64;
        let reasons: Vec<(String, u64)> = quarantined.remove(id).unwrap_or_default().into_iter().collect();
        if accepted == 0 && reasons.is_empty() {
            continue;
        }
        let q: u64 = reasons.iter().map(|r| r.1).sum();
        data.quality.push(QualityRow { dataset: id.to_owned(), rows_in: accepted + q, accepted, quarantined_by_reason: reasons });
    }
    let declarations = get(datasets::DECLARATIONS).map_or(0, DataFrame::height);
    data.key_figures.push(("Declaration items accepted".into(), declarations.to_string()));
    let quarantined_rows: u64 = data.quality.iter().flat_map(|q| q.quarantined_by_reason.iter().map(|r| r.1)).sum();
    data.key_figures.push(("Input rows quarantined".into(), quarantined_rows.to_string()));

    // Revenue gap.
    // Each bar's key column and its lost duty, low and high bounds.
    let bars = |df: &DataFrame, [key, lost, low, high]: [&str; 4]| -> PolarsResult<Vec<GapBar>> {
        let mut acc: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
        for (((k, l), lo), hi) in
            texts_or_empty(df, key)?.into_iter().zip(numbers_or_nan(df, lost)?).zip(numbers_or_nan(df, low)?).zip(numbers_or_nan(df, high)?)
        {
            let e = acc.entry(k).or_default();
            e.0 += l;
            e.1 += lo;
            e.2 += hi;
        }
        let mut v: Vec<GapBar> =
            acc.into_iter().map(|(label, (l, lo, hi))| GapBar { label, lost_duty_usd: l, low_usd: lo, high_usd: hi }).collect();
        v.sort_by(|a, b| b.lost_duty_usd.total_cmp(&a.lost_duty_usd).then(a.label.cmp(&b.label)));
        v.truncate(15);
        Ok(v)
    };
    if let Some(c) = get(datasets::GAP_BY_CHAPTER) {
        data.gap_by_chapter = bars(
            c,
            [gap_by_chapter::HS2, gap_by_chapter::LOST_DUTY_USD, gap_by_chapter::LOST_DUTY_LOW_USD, gap_by_chapter::LOST_DUTY_HIGH_USD],
        )?;
    }
    if let Some(p) = get(datasets::GAP_BY_PARTNER) {
        data.gap_by_partner = bars(
            p,
            [gap_by_partner::PARTNER, gap_by_partner::LOST_DUTY_USD, gap_by_partner::LOST_DUTY_LOW_USD, gap_by_partner::LOST_DUTY_HIGH_USD],
        )?;
    }
    if let Some(s) = get(datasets::GAP_SUMMARY) {
        let periods = texts_or_empty(s, gap_summary::PERIOD)?;
        if let Some(i) = periods.iter().position(|p| p == "all") {
            let t = GapTotal {
                lost_duty_usd: numbers_or_nan(s, gap_summary::LOST_DUTY_USD)?[i],
                low_usd: numbers_or_nan(s, gap_summary::LOST_DUTY_LOW_USD)?[i],
                high_usd: numbers_or_nan(s, gap_summary::LOST_DUTY_HIGH_USD)?[i],
                cif_fob_method: texts_or_empty(s, gap_summary::CIF_FOB_METHOD)?[i].clone(),
            };
            data.key_figures.push((
                "Estimated lost duty (mirror gaps)".into(),
                format!("{} (bounds {} – {})", money(t.lost_duty_usd), money(t.low_usd), money(t.high_usd)),
            ));
            data.gap_total = Some(t);
        }
    }
    let mut top_hs: Vec<String> = Vec::new();
    if let Some(c) = get(datasets::GAP_BY_CELL) {
        let (hs, partner) = (texts_or_empty(c, gap_by_cell::HS6)?, texts_or_empty(c, gap_by_cell::PARTNER)?);
        let (declared, mirror, lost) = (
            numbers_or_nan(c, gap_by_cell::DECLARED_VALUE_USD)?,
            numbers_or_nan(c, gap_by_cell::MIRROR_CIF_USD)?,
            numbers_or_nan(c, gap_by_cell::LOST_DUTY_USD)?,
        );
        for i in 0..c.height() {
            if mirror[i].is_finite() && mirror[i] > 0.0 && declared[i] > 0.0 {
                data.mirror_cells.push(MirrorPoint {
                    label: format!("HS {} · {}", hs[i], partner[i]),
                    declared_usd: declared[i],
                    mirror_cif_usd: mirror[i],
                    lost_duty_usd: lost[i],
                });
            }
            // Cells come ranked: the first distinct HS codes are the top-gap ones.
            if top_hs.len() < 4 && !top_hs.contains(&hs[i]) && lost[i] > 0.0 {
                top_hs.push(hs[i].clone());
            }
        }
    }

    // Unit-price clusters of the top-gap HS codes (or the most flagged ones without a gap stage).
    if let Some(k) = get(datasets::KMEANS_SCORES) {
        // Text columns coded, read as text (a null as empty) without a string per row.
        let (hs, group) = (Text::column(k, kmeans_scores::HS6)?, Text::column(k, kmeans_scores::GROUP_KEY)?);
        let (hs, group) = (hs.coded(), group.coded());
        let (hs_of, group_of) = (|i: usize| hs.get(i).unwrap_or_default(), |i: usize| group.get(i).unwrap_or_default());
        let price = numbers_or_nan(k, kmeans_scores::UNIT_PRICE_USD_KG)?;
        let cluster = numbers_or_nan(k, kmeans_scores::CLUSTER)?;
        let flag = flags(k, kmeans_scores::UNDERVALUATION_FLAG)?;
        let reference = numbers_or_nan(k, kmeans_scores::REFERENCE_PRICE_USD_PER_KG)?;
        let flagged: usize = flag.iter().filter(|f| **f).count();
        data.key_figures.push(("Declarations flagged by k-means (underpriced)".into(), flagged.to_string()));
        if top_hs.is_empty() {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for (i, f) in flag.iter().enumerate() {
                *counts.entry(hs_of(i)).or_default() += usize::from(*f);
            }
            let mut v: Vec<(&str, usize)> = counts.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            top_hs = v.into_iter().take(4).map(|(h, _)| h.to_owned()).collect();
        }
        let groups = get(datasets::KMEANS_GROUPS);
        for h in &top_hs {
            let rows: Vec<usize> = (0..k.height()).filter(|&i| hs_of(i) == h && price[i].is_finite()).take(3_000).collect();
            if rows.is_empty() {
                continue;
            }
            // The most common group of these rows gives the centroids shown.
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for &i in &rows {
                *counts.entry(group_of(i)).or_default() += 1;
            }
            let main_group = counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(g, _)| (*g).to_owned()).unwrap_or_default();
            let mut centroids = Vec::new();
            if let Some(g) = groups {
                let keys = texts_or_empty(g, kmeans_groups::GROUP_KEY)?;
                let c = texts_or_empty(g, kmeans_groups::CENTROID_PRICES_USD_PER_KG)?;
                if let Some(j) = keys.iter().position(|k| *k == main_group) {
                    centroids = c[j].split(';').filter_map(|x| x.parse().ok()).collect();
                }
            }
            let mut refs: Vec<f64> = rows.iter().map(|&i| reference[i]).filter(|r| r.is_finite()).collect();
            refs.sort_by(f64::total_cmp);
            data.price_panels.push(PricePanel {
                hs: h.clone(),
                description: format!("peer group {main_group}"),
                prices: rows
                    .iter()
                    .map(|&i| PricePoint { unit_price_usd_per_kg: price[i], cluster: cluster[i].max(0.0) as u32, flagged: flag[i] })
                    .collect(),
                centroids_usd_per_kg: centroids,
                reference_usd_per_kg: refs.get(refs.len() / 2).copied(),
            });
        }
    }

    // Fraud model.
    if let Some(e) = get(datasets::FRAUD_EVALUATION) {
        use fraud_evaluation as fe;
        let (split, ranking) = (texts_or_empty(e, fe::SPLIT)?, texts_or_empty(e, fe::RANKING)?);
        let (n, p, r, rev, auc, base) = (
            numbers_or_nan(e, fe::N_PCT)?,
            numbers_or_nan(e, fe::PRECISION)?,
            numbers_or_nan(e, fe::RECALL)?,
            numbers_or_nan(e, fe::REVENUE)?,
            numbers_or_nan(e, fe::AUC)?,
            numbers_or_nan(e, fe::FRAUD_RATE)?,
        );
        // Intervals and revenue concentration (absent from runs before they were computed).
        let optional = |name: &str| numbers_or_nan(e, name).unwrap_or_else(|_| vec![f64::NAN; e.height()]);
        let bounds: Vec<Vec<f64>> =
            [fe::PRECISION_LO, fe::PRECISION_HI, fe::RECALL_LO, fe::RECALL_HI, fe::REVENUE_LO, fe::REVENUE_HI, fe::AUC_LO, fe::AUC_HI]
                .map(optional)
                .into();
        let half = optional(fe::FRAUDS_HOLDING_HALF_DUTY);
        let pair = |k: usize, i: usize| [bounds[k][i], bounds[k + 1][i]];
        let known = |x: [f64; 2]| x.iter().all(|v| v.is_finite());
        let mut g = Gain { split: "test".into(), ..Gain::default() };
        for i in 0..e.height() {
            // The boosting's own rankings; the challengers' rows have their own table.
            if split[i] != "test" || !matches!(ranking[i].as_str(), "probability" | "expected_duty") {
                continue;
            }
            g.auc = auc[i].is_finite().then_some(auc[i]);
            g.auc_interval = Some(pair(6, i)).filter(|x| known(*x));
            g.base_rate = base[i];
            g.frauds_holding_half_duty = half[i].is_finite().then_some(half[i] as u32);
            if ranking[i] == "probability" {
                g.n_pct.push(n[i]);
                g.precision.push(p[i]);
                g.recall.push(r[i]);
                g.revenue.push(rev[i]);
                let row = GainIntervals { precision: pair(0, i), recall: pair(2, i), revenue: pair(4, i) };
                g.intervals.push(Some(row).filter(|x| known(x.precision) && known(x.recall) && known(x.revenue)));
            } else if ranking[i] == "expected_duty" {
                g.revenue_expected_duty.push(rev[i]);
            }
        }
        if !g.n_pct.is_empty() {
            if let Some(a) = g.auc {
                data.key_figures.push(("Fraud model ROC AUC (held-out test months)".into(), format!("{a:.3}")));
            }
            if let Some(i) = g.n_pct.iter().position(|x| (*x - 5.0).abs() < 1e-9) {
                let spread = g.intervals.get(i).copied().flatten().map_or_else(String::new, |s| {
                    format!(
                        " (90 % intervals {:.1}–{:.1} % / {:.1}–{:.1} %)",
                        s.precision[0] * 100.0,
                        s.precision[1] * 100.0,
                        s.revenue[0] * 100.0,
                        s.revenue[1] * 100.0
                    )
                });
                data.key_figures.push((
                    "Fraud model precision / revenue at 5 % inspected (test months)".into(),
                    format!("{:.1} % / {:.1} %{spread}", g.precision[i] * 100.0, g.revenue[i] * 100.0),
                ));
            }
            data.gain = Some(g);
        }
        data.frontier = frontier(e, get(datasets::SELECTION_FRONTIER))?;
        // A carried model also judged on this run's already-inspected declarations (drift).
        let live: Vec<usize> = (0..e.height()).filter(|&i| split[i] == "live" && ranking[i] == "probability").collect();
        if let Some(&first) = live.first() {
            let auc = if auc[first].is_finite() { format!("{:.3}", auc[first]) } else { "n/a".to_owned() };
            data.key_figures.push(("Carried fraud model ROC AUC on this run's inspected declarations".into(), auc));
            if let Some(&i) = live.iter().find(|&&i| (n[i] - 5.0).abs() < 1e-9) {
                data.key_figures.push((
                    "Carried fraud model precision / revenue at 5 % (this run's inspected declarations)".into(),
                    format!("{:.1} % / {:.1} %", p[i] * 100.0, rev[i] * 100.0),
                ));
            }
        }
    }
    if let Some(e) = get(datasets::FRAUD_EVALUATION) {
        data.challengers = crate::challengers::gather(e)?;
    }
    if let Some(imp) = get(datasets::FRAUD_IMPORTANCE) {
        data.importance = texts_or_empty(imp, fraud_importance::LABEL)?
            .into_iter()
            .zip(numbers_or_nan(imp, fraud_importance::GAIN_SHARE)?)
            .take(15)
            .collect();
    }
    if let Some(r) = get(datasets::FRAUD_RULES) {
        let (rule, s, rt, rte) = (
            texts_or_empty(r, fraud_rules::RULE)?,
            numbers_or_nan(r, fraud_rules::SUPPORT_TRAIN)?,
            numbers_or_nan(r, fraud_rules::FRAUD_RATE_TRAIN)?,
            numbers_or_nan(r, fraud_rules::FRAUD_RATE_TEST)?,
        );
        data.rules = (0..r.height())
            .map(|i| RuleRow {
                rule: rule[i].clone(),
                support_train: s[i] as u32,
                fraud_rate_train: rt[i],
                fraud_rate_test: rte[i].is_finite().then_some(rte[i]),
            })
            .collect();
    }
    if let Some(e) = get(datasets::AUDITEE_EVALUATION) {
        let (policy, pct, share) = (
            texts_or_empty(e, auditee_evaluation::POLICY)?,
            numbers_or_nan(e, auditee_evaluation::TOP_PCT)?,
            numbers_or_nan(e, auditee_evaluation::SHARE_OF_LOST_DUTY)?,
        );
        for i in 0..e.height() {
            let at = if let Some(at) = data.auditee_capture.iter().position(|c| c.policy == policy[i]) {
                at
            } else {
                data.auditee_capture.push(AuditeeCapture { policy: policy[i].clone(), shares: Vec::new() });
                data.auditee_capture.len() - 1
            };
            data.auditee_capture[at].shares.push((pct[i], share[i]));
        }
        if let Some(s) =
            data.auditee_capture.iter().find(|c| c.policy == "list").and_then(|c| c.shares.iter().find(|s| (s.0 - 5.0).abs() < 1e-9))
        {
            data.key_figures
                .push(("Share of all lost duty held by the top 5 % of the auditee list".into(), format!("{:.1} %", s.1 * 100.0)));
        }
    }
    if let Some(a) = get(datasets::AUDITEES) {
        let (rank, id, risk, n, fm, fk, hs, org, reason) = (
            numbers_or_nan(a, auditees::RANK)?,
            texts_or_empty(a, auditees::IMPORTER_ID)?,
            numbers_or_nan(a, auditees::REVENUE_AT_RISK_USD)?,
            numbers_or_nan(a, auditees::DECLARATIONS)?,
            numbers_or_nan(a, auditees::FLAGGED_BY_MODEL)?,
            numbers_or_nan(a, auditees::FLAGGED_BY_KMEANS)?,
            texts_or_empty(a, auditees::TOP_HS4)?,
            texts_or_empty(a, auditees::TOP_ORIGINS)?,
            texts_or_empty(a, auditees::REASON)?,
        );
        let total: f64 = risk.iter().filter(|x| x.is_finite()).sum();
        data.key_figures.push(("Importers ranked".into(), a.height().to_string()));
        // The declarations behind the list: the run's, or a carried audit window's.
        // An undated list (or one without the columns) gives no span.
        let day = |name: &str, last: bool| -> Option<String> {
            let dated = days(a, name).ok()?.into_iter().flatten();
            (if last { dated.max() } else { dated.min() }).map(mirador_schema::day::text)
        };
        if let (Some(from), Some(to)) = (day(auditees::FIRST_DECLARED, false), day(auditees::LAST_DECLARED, true)) {
            data.key_figures.push(("Declarations behind the auditee list".into(), format!("{from} to {to}")));
        }
        data.key_figures.push(("Revenue at risk, all ranked importers".into(), money(total)));
        data.auditees = (0..a.height().min(25))
            .map(|i| AuditeeRow {
                rank: rank[i] as u32,
                importer_id: id[i].clone(),
                revenue_at_risk_usd: risk[i],
                declarations: n[i] as u32,
                flagged_by_model: fm[i] as u32,
                flagged_by_kmeans: fk[i] as u32,
                top_hs4: hs[i].clone(),
                top_origins: org[i].clone(),
                reason: reason[i].clone(),
            })
            .collect();
    }
    data.fraud_map = fraud_map(&get)?;
    data.release = release(&get)?;
    if let Some(r) = &data.release {
        // The worst office and lane breaching the service level (groups come worst first).
        let worst: Vec<String> = ["office", "lane"]
            .iter()
            .filter_map(|d| r.groups.iter().find(|g| g.dimension == *d && g.breach))
            .map(|g| format!("{} {} (median {:.1} h)", g.dimension, g.group, g.median_hours))
            .collect();
        if !r.groups.is_empty() {
            let breaching = r.groups.iter().filter(|g| g.breach).count();
            let figure = if worst.is_empty() { "none".to_owned() } else { format!("{breaching}; worst: {}", worst.join(", ")) };
            data.key_figures.push(("Offices and lanes breaching the release service level".into(), figure));
        }
    }
    data.forecast = crate::forecast::gather(&get)?;
    data.key_figures.extend(data.forecast.as_ref().and_then(crate::forecast::key_figure));
    Ok(data)
}

/// Inspected declarations plotted in the fraud map's second view, at most.
const MAX_SCORE_POINTS: usize = 4_000;

/// The fraud map's figures: per origin country the mirror gap's lost duty (`gap_by_partner`),
/// the model's expected duty at risk (`fraud_scores`) and the inspected declarations and frauds;
/// and the inspected declarations' fraud scores against their unit price over their HS6's median.
/// `None` without a gap or a score to shade by.
fn fraud_map<'d>(get: &impl Fn(&str) -> Option<&'d DataFrame>) -> PolarsResult<Option<FraudMap>> {
    let (gap, scores) = (get(datasets::GAP_BY_PARTNER), get(datasets::FRAUD_SCORES));
    let Some(d) = get(datasets::DECLARATIONS).filter(|_| gap.is_some() || scores.is_some()) else { return Ok(None) };
    // The rows' origins coded; tallies are kept by code (the last slot: no origin), each in row
    // order, and given to their country once.
    let origin = Text::column(d, col::ORIGIN_COUNTRY)?;
    let origin = origin.coded();
    let slot_of = |i: usize| (origin.codes[i] as usize).min(origin.values.len());
    let origin_name = |slot: usize| origin.values.get(slot).copied().unwrap_or_default();
    let fraud = numbers_or_nan(d, col::FRAUD)?;
    let mut inspected = vec![(0u32, 0u32); origin.values.len() + 1];
    for (i, f) in fraud.iter().enumerate() {
        if f.is_finite() {
            let (n, frauds) = &mut inspected[slot_of(i)];
            *n += 1;
            *frauds += u32::from(*f > 0.5);
        }
    }
    let mut countries: BTreeMap<String, CountryFigures> = BTreeMap::new();
    for (slot, (n, frauds)) in inspected.into_iter().enumerate().filter(|(_, (n, _))| *n > 0) {
        let c = country_entry(&mut countries, origin_name(slot));
        c.inspected += n;
        c.frauds += frauds;
    }
    if let Some(g) = gap {
        for (p, l) in texts_or_empty(g, gap_by_partner::PARTNER)?.iter().zip(numbers_or_nan(g, gap_by_partner::LOST_DUTY_USD)?) {
            if l.is_finite() && mirador_schema::country::by_iso2(p).is_some() {
                country_entry(&mut countries, p).mirror_lost_duty_usd += l;
            }
        }
    }
    let mut points = Vec::new();
    if let Some(s) = scores {
        let (probability, expected) =
            (numbers_or_nan(s, fraud_scores::FRAUD_PROBABILITY)?, numbers_or_nan(s, fraud_scores::EXPECTED_DUTY_AT_RISK_USD)?);
        // Each score row's declaration row: the same row where the scores list the declarations
        // in their order, as the stages write them (the declarations' keys are unique).
        let declaration_of: Vec<Option<usize>> = match mirador_schema::keys::align(d, s)? {
            None => (0..s.height()).map(Some).collect(),
            Some(score_of) => {
                let mut declaration_of = vec![None; s.height()];
                for (i, j) in score_of.into_iter().enumerate() {
                    if let Some(j) = j {
                        declaration_of[j] = Some(i);
                    }
                }
                declaration_of
            }
        };
        let mut score = vec![f64::NAN; d.height()];
        let mut expected_by_slot: Vec<Option<f64>> = vec![None; origin.values.len() + 1];
        for (j, i) in declaration_of.into_iter().enumerate() {
            if let Some(i) = i {
                score[i] = probability[j];
                if expected[j].is_finite() {
                    *expected_by_slot[slot_of(i)].get_or_insert(0.0) += expected[j];
                }
            }
        }
        for (slot, sum) in expected_by_slot.into_iter().enumerate() {
            if let Some(sum) = sum {
                country_entry(&mut countries, origin_name(slot)).model_expected_duty_usd += sum;
            }
        }
        // Unit price over the median of its HS6.
        let hs = Text::column(d, col::HS6)?;
        let hs = hs.coded();
        let hs_of = |i: usize| hs.get(i).unwrap_or_default();
        let price = numbers_or_nan(d, col::UNIT_PRICE_USD_KG)?;
        let mut by_hs: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (i, p) in price.iter().enumerate() {
            if p.is_finite() && *p > 0.0 {
                by_hs.entry(hs_of(i)).or_default().push(*p);
            }
        }
        let medians: BTreeMap<&str, f64> = by_hs
            .into_iter()
            .map(|(h, mut v)| {
                v.sort_by(f64::total_cmp);
                (h, v[v.len() / 2])
            })
            .collect();
        let inspected: Vec<usize> =
            (0..d.height()).filter(|&i| fraud[i].is_finite() && score[i].is_finite() && price[i].is_finite() && price[i] > 0.0).collect();
        let every = inspected.len().div_ceil(MAX_SCORE_POINTS).max(1);
        for &i in inspected.iter().step_by(every) {
            if let Some(m) = medians.get(hs_of(i)) {
                points.push(ScorePoint { price_ratio: price[i] / m, fraud_probability: score[i], fraud: fraud[i] > 0.5 });
            }
        }
    }
    Ok(Some(FraudMap { countries: countries.into_values().collect(), scores: points }))
}

/// The figures of origin `c`, made empty the first time.
fn country_entry<'m>(countries: &'m mut BTreeMap<String, CountryFigures>, c: &str) -> &'m mut CountryFigures {
    countries.entry(c.to_owned()).or_insert_with(|| CountryFigures { iso2: c.to_owned(), ..CountryFigures::default() })
}

/// The release-time figures (`release_breaches`, `release_steps`); a note when the stage ran
/// without release times to measure.
fn release<'d>(get: &impl Fn(&str) -> Option<&'d DataFrame>) -> PolarsResult<Option<ReleaseFigures>> {
    let Some(b) = get(datasets::RELEASE_BREACHES) else { return Ok(None) };
    if b.height() == 0 {
        return Ok(Some(ReleaseFigures {
            skipped: Some(
                "the declarations carry no release times, so the release_time stage measured nothing (see its note in the manifest)".into(),
            ),
            ..ReleaseFigures::default()
        }));
    }
    use release_breaches as rb;
    let (dim, group, n, median, p90) = (
        texts_or_empty(b, rb::DIMENSION)?,
        texts_or_empty(b, rb::GROUP)?,
        numbers_or_nan(b, rb::DECLARATIONS)?,
        numbers_or_nan(b, rb::MEDIAN_HOURS)?,
        numbers_or_nan(b, rb::P90_HOURS)?,
    );
    let breach = flags(b, rb::BREACH)?;
    let (sl, sl90) = (numbers_or_nan(b, rb::SERVICE_LEVEL_HOURS)?, numbers_or_nan(b, rb::P90_SERVICE_LEVEL_HOURS)?);
    let groups = (0..b.height())
        .map(|i| ReleaseGroup {
            dimension: dim[i].clone(),
            group: group[i].clone(),
            declarations: n[i] as u32,
            median_hours: median[i],
            p90_hours: p90[i],
            breach: breach[i],
        })
        .collect();
    let mut steps: Vec<(String, [f64; 3])> = Vec::new();
    if let Some(s) = get(datasets::RELEASE_STEPS) {
        let (g, step, mean) = (
            texts_or_empty(s, release_steps::GROUP)?,
            texts_or_empty(s, release_steps::STEP)?,
            numbers_or_nan(s, release_steps::MEAN_HOURS)?,
        );
        for i in 0..s.height() {
            let k = match step[i].as_str() {
                "arrival_to_lodgement" => 0,
                "lodgement_to_payment" => 1,
                _ => 2,
            };
            match steps.iter_mut().find(|(name, _)| *name == g[i]) {
                Some((_, v)) => v[k] = mean[i],
                None => {
                    let mut v = [0.0; 3];
                    v[k] = mean[i];
                    steps.push((g[i].clone(), v));
                }
            }
        }
    }
    Ok(Some(ReleaseFigures { groups, service_level_hours: (sl[0], sl90[0]), steps, skipped: None }))
}

/// The plotted report: charts (PNG and SVG) and one self-contained HTML page.
///
/// ## Inputs
/// - `declarations`, `quarantine`; optional: every other dataset the report shows.
/// ## Parameters
/// - `backtest`: a `mirador backtest` output directory to show (section Backtest); optional.
/// ## Outputs
/// - none (files `report/index.html` and `report/*.png|svg` inside the run).
pub struct Report;

const OPTIONAL: &[DatasetId] = &[
    datasets::MIRROR_FLOWS,
    datasets::TARIFFS,
    datasets::FX_RATES,
    datasets::GAP_BY_CELL,
    datasets::GAP_BY_CHAPTER,
    datasets::GAP_BY_PARTNER,
    datasets::GAP_SUMMARY,
    datasets::KMEANS_SCORES,
    datasets::KMEANS_GROUPS,
    datasets::FRAUD_EVALUATION,
    datasets::FRAUD_METRICS,
    datasets::SELECTION_FRONTIER,
    datasets::FRAUD_IMPORTANCE,
    datasets::FRAUD_RULES,
    datasets::INSPECTION_OUTCOMES,
    datasets::OUTCOME_QUARANTINE,
    datasets::AUDITEES,
    datasets::AUDITEE_EVALUATION,
    datasets::FRAUD_SCORES,
    datasets::RELEASE_BREACHES,
    datasets::RELEASE_STEPS,
    datasets::FORECAST_SERIES,
    datasets::FORECAST_ALARMS,
];

/// The report stage's parameters.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct ReportParams {
    /// Directory of a `mirador backtest` output to show (relative to the pipeline file); the
    /// run key covers this path, not the files in it (after a new backtest, run with `--force`).
    backtest: Option<std::path::PathBuf>,
}

impl Stage for Report {
    fn name(&self) -> &'static str {
        "report"
    }

    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        mirador_pipeline::parse_params::<ReportParams>(self.name(), params).map(|_| ())
    }

    fn inputs(&self) -> &'static [DatasetId] {
        &[datasets::DECLARATIONS, datasets::QUARANTINE]
    }

    fn optional_inputs(&self) -> &'static [DatasetId] {
        OPTIONAL
    }

    /// Of the declarations, the k-means scores and the fraud scores, what the fraud map and the
    /// price panels read ([`gather`]); the rest whole.
    fn input_columns(&self, id: &str) -> Option<Vec<&'static str>> {
        match id {
            datasets::KMEANS_SCORES => Some(vec![
                kmeans_scores::HS6,
                kmeans_scores::UNIT_PRICE_USD_KG,
                kmeans_scores::CLUSTER,
                kmeans_scores::UNDERVALUATION_FLAG,
                kmeans_scores::REFERENCE_PRICE_USD_PER_KG,
                kmeans_scores::GROUP_KEY,
            ]),
            // The fraud map's and the price panels' (the declarations' row count is their height).
            datasets::DECLARATIONS => {
                Some(vec![col::DECLARATION_ID, col::ITEM_NO, col::ORIGIN_COUNTRY, col::FRAUD, col::HS6, col::UNIT_PRICE_USD_KG])
            }
            // The fraud map's expected duty and scores.
            datasets::FRAUD_SCORES => Some(vec![
                fraud_scores::DECLARATION_ID,
                fraud_scores::ITEM_NO,
                fraud_scores::FRAUD_PROBABILITY,
                fraud_scores::EXPECTED_DUTY_AT_RISK_USD,
            ]),
            _ => None,
        }
    }

    fn outputs(&self) -> &'static [DatasetId] {
        &[]
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let mut inputs: BTreeMap<&str, &DataFrame> = BTreeMap::new();
        for id in self.inputs() {
            inputs.insert(id, ctx.input(id)?);
        }
        for id in OPTIONAL {
            if let Some(df) = ctx.optional_input(id) {
                inputs.insert(id, df);
            }
        }
        let mut data = gather(ctx.run_id(), &inputs)?;
        data.warnings = ctx.run_warnings().to_vec();
        let params: ReportParams = ctx.params()?;
        if let Some(dir) = &params.backtest {
            data.backtest = crate::backtest::read(&ctx.resolve(dir), &dir.display().to_string()).map_err(StageError::Data)?;
        }
        if let Some(figure) = ctx.optional_input(datasets::FRAUD_METRICS).map(outcomes_figure).transpose()?.flatten() {
            // Beside the input figures (declarations accepted, rows quarantined).
            let at = data.key_figures.len().min(2);
            data.key_figures.insert(at, figure);
        }
        let rendered = render(&data, ctx.artifact_dir()).map_err(|e| StageError::Other(Box::new(e)))?;
        Ok(StageOutput::new().with_metric("charts", rendered.charts.len()).with_metric("sections_with_data", sections(&data)))
    }
}

/// What the inspection outcomes feed did to the labels, from the fraud model's `fraud_metrics`
/// (section `inspection_outcomes`), when the run has the feed.
fn outcomes_figure(metrics: &DataFrame) -> PolarsResult<Option<(String, String)>> {
    use mirador_schema::catalog::fraud_metrics as m;
    let section = metrics.column(m::SECTION)?.str()?;
    let (metric, value) = (metrics.column(m::METRIC)?.str()?, metrics.column(m::VALUE)?.f64()?);
    let counts: BTreeMap<&str, u64> = section
        .iter()
        .zip(metric.iter())
        .zip(value.iter())
        .filter(|((s, _), _)| *s == Some(m::INSPECTION_OUTCOMES))
        .filter_map(|((_, k), v)| Some((k?, v? as u64)))
        .collect();
    if counts.is_empty() {
        return Ok(None);
    }
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    Ok(Some((
        "Inspection outcomes recorded after clearance".into(),
        format!(
            "{}: {} labelled a declaration, {} confirmed and {} revised a label ({} of them on earlier runs' declarations); {} found no declaration",
            n(m::ITEMS),
            n(m::LABELLED),
            n(m::CONFIRMED),
            n(m::REVISED),
            n(m::LATE),
            n(m::UNAPPLIED)
        ),
    )))
}

fn sections(d: &ReportData) -> usize {
    [
        !d.quality.is_empty(),
        d.gap_total.is_some(),
        !d.price_panels.is_empty(),
        d.gain.is_some(),
        !d.auditees.is_empty(),
        d.fraud_map.as_ref().is_some_and(|m| !m.countries.is_empty()),
        d.release.as_ref().is_some_and(|r| !r.groups.is_empty()),
        d.backtest.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcomes_figure_comes_from_fraud_metrics_and_only_with_a_feed() {
        use mirador_schema::catalog::fraud_metrics as m;
        let rows = |section: &str| {
            DataFrame::new_infer_height(vec![
                Column::new(m::SECTION.into(), [m::MODEL, section, section, section]),
                Column::new(m::METRIC.into(), [m::TREES, m::ITEMS, m::LABELLED, m::UNAPPLIED]),
                Column::new(m::VALUE.into(), [Some(80.0), Some(12.0), Some(9.0), Some(3.0)]),
                Column::new(m::TEXT.into(), [None::<&str>; 4]),
            ])
            .unwrap()
        };
        let (title, text) = outcomes_figure(&rows(m::INSPECTION_OUTCOMES)).unwrap().unwrap();
        assert!(title.contains("Inspection outcomes"), "{title}");
        assert_eq!(
            text,
            "12: 9 labelled a declaration, 0 confirmed and 0 revised a label (0 of them on earlier runs' declarations); 3 found no declaration"
        );
        // A run without the feed has no such rows, and no figure.
        assert_eq!(outcomes_figure(&rows(m::CARRIED_STATE)).unwrap(), None);
        // A table without the declared columns is an error, not a silent gap.
        assert!(outcomes_figure(&rows(m::INSPECTION_OUTCOMES).drop(m::VALUE).unwrap()).is_err());
    }

    #[test]
    fn release_times_give_their_figures_or_say_they_were_skipped() {
        let breaches = DataFrame::new_infer_height(vec![
            Column::new(release_breaches::DIMENSION.into(), ["office", "office", "lane", "lane"]),
            Column::new(release_breaches::GROUP.into(), ["MLB", "NBO", "red", "green"]),
            Column::new(release_breaches::DECLARATIONS.into(), [100_i64, 120, 40, 180]),
            Column::new(release_breaches::MEDIAN_HOURS.into(), [39.0, 15.0, 44.5, 14.0]),
            Column::new(release_breaches::P90_HOURS.into(), [88.0, 33.0, 102.0, 30.0]),
            Column::new(release_breaches::SERVICE_LEVEL_HOURS.into(), [24.0; 4]),
            Column::new(release_breaches::P90_SERVICE_LEVEL_HOURS.into(), [72.0; 4]),
            Column::new(release_breaches::MEDIAN_RATIO.into(), [1.6, 0.6, 1.8, 0.6]),
            Column::new(release_breaches::BREACH.into(), [true, false, true, false]),
            Column::new(release_breaches::RANK.into(), [1_i64, 2, 1, 2]),
        ])
        .unwrap();
        let steps = DataFrame::new_infer_height(vec![
            Column::new(release_steps::DIMENSION.into(), ["all"; 3]),
            Column::new(release_steps::GROUP.into(), ["all"; 3]),
            Column::new(release_steps::STEP.into(), ["arrival_to_lodgement", "lodgement_to_payment", "payment_to_release"]),
            Column::new(release_steps::DECLARATIONS.into(), [300_i64; 3]),
            Column::new(release_steps::MEAN_HOURS.into(), [5.0, 7.0, 3.0]),
            Column::new(release_steps::SHARE.into(), [5.0 / 15.0, 7.0 / 15.0, 3.0 / 15.0]),
        ])
        .unwrap();
        let inputs = BTreeMap::from([(datasets::RELEASE_BREACHES, &breaches), (datasets::RELEASE_STEPS, &steps)]);
        let data = gather("r", &inputs).unwrap();
        let r = data.release.as_ref().unwrap();
        assert_eq!((r.groups.len(), r.service_level_hours), (4, (24.0, 72.0)));
        assert_eq!(r.steps, vec![("all".to_owned(), [5.0, 7.0, 3.0])]);
        let figure = data.key_figures.iter().find(|(k, _)| k.contains("release service level")).map(|(_, v)| v.as_str());
        assert_eq!(figure, Some("2; worst: office MLB (median 39.0 h), lane red (median 44.5 h)"));
        // A run whose declarations had no times: empty outputs, and the report says why.
        let empty = breaches.clear();
        let data = gather("r", &BTreeMap::from([(datasets::RELEASE_BREACHES, &empty)])).unwrap();
        assert!(data.release.unwrap().skipped.unwrap().contains("no release times"));
        assert!(!data.key_figures.iter().any(|(k, _)| k.contains("release")));
    }

    #[test]
    fn the_fraud_map_finds_each_score_s_declaration_in_any_order() {
        use mirador_schema::text::{categorical, categorical_of, categorical_type};
        let declarations = DataFrame::new_infer_height(vec![
            Column::new(col::DECLARATION_ID.into(), ["a", "b", "c", "d"]),
            Column::new(col::ITEM_NO.into(), [1_i32, 1, 2, 1]),
            categorical_of([Some("CN"), Some("DE"), Some("CN"), None], col::ORIGIN_COUNTRY, &categorical_type(col::ORIGIN_COUNTRY))
                .unwrap(),
            categorical(&["6109", "6109", "8471", "6109"], col::HS6).unwrap(),
            Column::new(col::FRAUD.into(), [Some(1_i8), Some(0), None, Some(0)]),
            Column::new(col::UNIT_PRICE_USD_KG.into(), [2.0, 4.0, 10.0, 8.0]),
        ])
        .unwrap();
        // The scores of three of the declarations, in another order.
        let scores = DataFrame::new_infer_height(vec![
            Column::new(fraud_scores::DECLARATION_ID.into(), ["d", "c", "a"]),
            Column::new(fraud_scores::ITEM_NO.into(), [1_i32, 2, 1]),
            Column::new(fraud_scores::FRAUD_PROBABILITY.into(), [0.25, 0.5, 0.75]),
            Column::new(fraud_scores::EXPECTED_DUTY_AT_RISK_USD.into(), [Some(1.0), Some(2.0), None]),
        ])
        .unwrap();
        let inputs = BTreeMap::from([(datasets::DECLARATIONS, &declarations), (datasets::FRAUD_SCORES, &scores)]);
        let map = fraud_map(&|id: &str| inputs.get(id).copied()).unwrap().unwrap();
        let by_country: Vec<(&str, u32, u32, f64)> =
            map.countries.iter().map(|c| (c.iso2.as_str(), c.inspected, c.frauds, c.model_expected_duty_usd)).collect();
        // A declaration without an origin counts under the empty name.
        assert_eq!(by_country, [("", 1, 0, 1.0), ("CN", 1, 1, 2.0), ("DE", 1, 0, 0.0)]);
        // The inspected and scored declarations, by price over their HS6's median (6109: 4.0).
        let points: Vec<(f64, f64, bool)> = map.scores.iter().map(|p| (p.price_ratio, p.fraud_probability, p.fraud)).collect();
        assert_eq!(points, [(0.5, 0.75, true), (2.0, 0.25, false)]);
    }

    #[test]
    fn nulls_read_as_empty_text_and_nan_and_a_retyped_column_is_named() {
        let rules = || {
            polars::df!(
                fraud_rules::RULE => [Some("price < 0.4"), None],
                fraud_rules::SUPPORT_TRAIN => [12_u32, 3],
                fraud_rules::FRAUD_RATE_TRAIN => [0.5, 0.2],
                fraud_rules::FRAUD_RATE_TEST => [Some(0.4), None],
            )
            .unwrap()
        };
        let r = rules();
        let data = gather("r", &BTreeMap::from([(datasets::FRAUD_RULES, &r)])).unwrap();
        let read: Vec<(&str, Option<f64>)> = data.rules.iter().map(|r| (r.rule.as_str(), r.fraud_rate_test)).collect();
        assert_eq!(read, [("price < 0.4", Some(0.4)), ("", None)]);
        // Text where a number is declared: an error naming the column, not a row of NaN.
        let mut retyped = rules();
        retyped.with_column(Column::new(fraud_rules::FRAUD_RATE_TRAIN.into(), ["0.5", "0.2"])).unwrap();
        let err = gather("r", &BTreeMap::from([(datasets::FRAUD_RULES, &retyped)])).unwrap_err().to_string();
        assert!(err.contains(&format!("`{}`", fraud_rules::FRAUD_RATE_TRAIN)), "{err}");
    }

    #[test]
    fn the_frontier_has_a_curve_per_ranking_and_marks_the_list_at_its_budget() {
        let rankings = ["probability", "expected_duty", "selection", "random_forest"];
        let n_pcts = [1.0, 5.0, 10.0];
        let rows = rankings.len() * n_pcts.len() + 1;
        let mut split = vec!["test"; rows - 1];
        split.push("valid");
        let ranking: Vec<&str> = rankings.iter().flat_map(|r| [*r; 3]).chain(["selection"]).collect();
        let n: Vec<f64> = (0..rows).map(|i| n_pcts[i % 3]).collect();
        let precision: Vec<f64> = (0..rows).map(|i| 1.0 - i as f64 / 100.0).collect();
        let e = DataFrame::new_infer_height(vec![
            Column::new(fraud_evaluation::SPLIT.into(), split),
            Column::new(fraud_evaluation::RANKING.into(), ranking),
            Column::new(fraud_evaluation::N_PCT.into(), n),
            Column::new(fraud_evaluation::PRECISION.into(), precision),
            Column::new(fraud_evaluation::RECALL.into(), vec![0.5; rows]),
            Column::new(fraud_evaluation::REVENUE.into(), vec![0.5; rows]),
        ])
        .unwrap();
        let chosen = DataFrame::new_infer_height(vec![
            Column::new(selection_frontier::REVENUE_SHARE.into(), [0.1, 0.15]),
            Column::new(selection_frontier::EXPLORATION_SHARE.into(), [0.0, 0.0]),
            Column::new(selection_frontier::REVENUE_EXPONENT.into(), [1.0, 2.0]),
            Column::new(selection_frontier::BUDGET_PCT.into(), [10.0, 10.0]),
            Column::new(selection_frontier::CHOSEN.into(), [false, true]),
        ])
        .unwrap();
        let f = frontier(&e, Some(&chosen)).unwrap().unwrap();
        let names: Vec<&str> = f.curves.iter().map(|c| c.ranking.as_str()).collect();
        assert_eq!(names, rankings, "one curve per ranking, in the evaluation's order");
        assert!(f.curves.iter().all(|c| c.points.len() == 3), "the validation rows stay out");
        assert_eq!(f.chosen.map(|c| (c.n_pct, c.precision)), Some((10.0, 1.0 - 8.0 / 100.0)));
        assert!(f.policy.contains("85.0 %") && f.policy.contains("probability^2"), "{}", f.policy);
        // Without the frontier dataset the list at 5 % is marked.
        assert_eq!(frontier(&e, None).unwrap().unwrap().chosen.map(|c| c.n_pct), Some(5.0));
    }
}
