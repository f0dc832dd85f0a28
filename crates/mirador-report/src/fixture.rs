//! A realistic, seeded [`ReportData`] for tests, examples and chart previews.
//!
//! The numbers are invented but shaped like a national customs administration's year:
//! about 1.2 M declarations, a gap concentrated in electronics and apparel, a few hundred
//! mirror cells and a fraud model with a ROC AUC near 0.87.

use crate::data::{
    AuditeeCapture, AuditeeRow, Frontier, FrontierCurve, FrontierPoint, Gain, GainIntervals, GapBar, GapTotal, MirrorPoint, PricePanel,
    PricePoint, QualityRow, ReportData, RuleRow,
};
use crate::data::{CountryFigures, FraudMap, ReleaseFigures, ReleaseGroup, ScorePoint};

/// SplitMix64: tiny, seeded and stable across platforms, which is all a fixture needs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
}

/// The sample report: every section filled.
pub fn sample_data() -> ReportData {
    let mut rng = SplitMix64(42);
    ReportData {
        title: "Mirador nightly run".to_owned(),
        run_id: "nightly-2025-06-30-r042".to_owned(),
        warnings: Vec::new(),
        key_figures: key_figures(),
        quality: quality(),
        gap_by_chapter: gap_bars(
            &mut rng,
            &[
                ("85", 12.4e6),
                ("84", 9.8e6),
                ("61", 4.1e6),
                ("62", 3.7e6),
                ("64", 3.1e6),
                ("87", 2.9e6),
                ("39", 2.2e6),
                ("94", 1.8e6),
                ("95", 1.2e6),
                ("73", 0.95e6),
                ("90", 0.81e6),
                ("42", 0.66e6),
                ("33", 0.41e6),
                ("71", 0.35e6),
                ("22", 0.21e6),
                ("30", 0.12e6),
                ("40", 0.09e6),
                ("96", 0.04e6),
            ],
        ),
        gap_by_partner: gap_bars(
            &mut rng,
            &[
                ("CN", 21.3e6),
                ("VN", 6.2e6),
                ("IN", 4.4e6),
                ("TR", 3.1e6),
                ("TH", 2.6e6),
                ("MY", 2.1e6),
                ("BD", 1.7e6),
                ("ID", 1.4e6),
                ("AE", 1.1e6),
                ("US", 0.8e6),
                ("DE", 0.6e6),
                ("KR", 0.45e6),
                ("JP", 0.33e6),
                ("IT", 0.2e6),
                ("PK", 0.16e6),
                ("BR", 0.1e6),
                ("MX", 0.05e6),
            ],
        ),
        gap_total: Some(GapTotal {
            lost_duty_usd: 48.6e6,
            low_usd: 31.2e6,
            high_usd: 67.9e6,
            cif_fob_method: "CIF = FOB × 1.10 (flat 10 % freight and insurance margin)".to_owned(),
        }),
        mirror_cells: mirror_cells(&mut rng),
        price_panels: price_panels(&mut rng),
        gain: Some(gain()),
        frontier: Some(frontier()),
        importance: importance(),
        rules: rules(),
        auditees: auditees(&mut rng),
        challengers: challengers(),
        auditee_capture: auditee_capture(),
        fraud_map: Some(fraud_map(&mut rng)),
        release: Some(release()),
        forecast: Some(crate::forecast::fixture()),
        backtest: Some(crate::backtest::sample()),
    }
}

fn key_figures() -> Vec<(String, String)> {
    [
        ("Period", "2024-01-01 – 2024-12-31"),
        ("Declarations analysed", "1,248,310"),
        ("Importers scored", "18,542"),
        ("Estimated lost duty", "USD 48.6 M (31.2 M – 67.9 M)"),
        ("Fraud model ROC AUC (test)", "0.871"),
        ("Declarations flagged by the model", "12,480"),
        ("Declarations flagged by k-means", "3,911"),
        ("Importers proposed for audit", "250"),
        (
            "Inspection outcomes recorded after clearance",
            "834: 780 labelled a declaration, 0 confirmed and 54 revised a label (0 of them on earlier runs' declarations); 0 found no declaration",
        ),
        ("Longest unbroken reference", "OUTCOMES-FEED-2024-12-31-BATCH-0000000000000000000000000000000000000000000000000000000000000000000042"),
    ]
    .into_iter()
    .map(|(label, value)| (label.to_owned(), value.to_owned()))
    .collect()
}

fn quality() -> Vec<QualityRow> {
    let row = |dataset: &str, rows_in: u64, accepted: u64, reasons: &[(&str, u64)]| QualityRow {
        dataset: dataset.to_owned(),
        rows_in,
        accepted,
        quarantined_by_reason: reasons.iter().map(|(reason, n)| ((*reason).to_owned(), *n)).collect(),
    };
    vec![
        row(
            "declarations",
            1_262_044,
            1_248_310,
            &[
                ("missing_hs_code", 4_211),
                ("non_positive_value", 2_978),
                ("unknown_partner", 1_830),
                ("duplicate_declaration_id", 3_590),
                ("net_mass_outlier", 1_125),
            ],
        ),
        row("importers", 18_690, 18_542, &[("missing_tax_id", 148)]),
        row("mirror_flows", 412_880, 398_000, &[("unknown_reporter", 1_204), ("zero_quantity", 8_310)]),
        row("tariff_schedule", 5_612, 5_587, &[("rate_out_of_range", 25)]),
        row("exchange_rates", 366, 366, &[]),
    ]
}

fn gap_bars(rng: &mut SplitMix64, central: &[(&str, f64)]) -> Vec<GapBar> {
    central
        .iter()
        .map(|&(label, lost)| {
            let low = lost * (0.55 + 0.2 * rng.uniform());
            let high = lost * (1.25 + 0.35 * rng.uniform());
            GapBar { label: label.to_owned(), lost_duty_usd: lost, low_usd: low, high_usd: high }
        })
        .collect()
}

fn mirror_cells(rng: &mut SplitMix64) -> Vec<MirrorPoint> {
    const HS6: [&str; 20] = [
        "851712", "847130", "851762", "610910", "611030", "620342", "640399", "640419", "870899", "870323", "392690", "940360", "950300",
        "732690", "901890", "420221", "330499", "711319", "220421", "300490",
    ];
    const PARTNERS: [&str; 12] = ["CN", "VN", "IN", "TR", "TH", "MY", "BD", "ID", "AE", "US", "DE", "KR"];
    let mut cells = Vec::with_capacity(180);
    for _ in 0..180 {
        let hs = HS6[rng.below(HS6.len())];
        let partner = PARTNERS[rng.below(PARTNERS.len())];
        let declared = 10f64.powf(4.3 + 3.6 * rng.uniform());
        // Most cells agree within noise; one in six is heavily under-declared.
        let log_ratio = if rng.uniform() < 0.17 { 0.35 + 0.9 * rng.uniform() } else { 0.12 * rng.normal() };
        let mirror = declared * 10f64.powf(log_ratio);
        let duty_rate = 0.05 + 0.15 * rng.uniform();
        cells.push(MirrorPoint {
            label: format!("HS {hs} · {partner}"),
            declared_usd: declared,
            mirror_cif_usd: mirror,
            lost_duty_usd: ((mirror - declared) * duty_rate).max(0.0),
        });
    }
    cells
}

type PanelSpec = (&'static str, &'static str, &'static [f64], &'static [f64], f64);

fn price_panels(rng: &mut SplitMix64) -> Vec<PricePanel> {
    // (HS, description, centroids, cluster weights, reference price)
    let specs: [PanelSpec; 4] = [
        ("851712", "Telephones for cellular networks (smartphones)", &[28.0, 95.0, 310.0], &[0.2, 0.5, 0.3], 120.0),
        ("640399", "Footwear with outer soles of rubber or plastics and uppers of leather", &[4.5, 14.0, 38.0], &[0.25, 0.55, 0.2], 16.0),
        ("611030", "Jerseys and pullovers of man-made fibres, knitted", &[3.2, 9.5, 22.0, 41.0], &[0.2, 0.45, 0.25, 0.1], 11.0),
        ("870899", "Parts and accessories of motor vehicles, n.e.s.", &[2.1, 7.8], &[0.35, 0.65], 6.5),
    ];
    specs
        .iter()
        .map(|&(hs, description, centroids, weights, reference)| {
            let prices = (0..170)
                .map(|_| {
                    let draw = rng.uniform();
                    let mut cumulative = 0.0;
                    let mut cluster = weights.len() - 1;
                    for (i, w) in weights.iter().enumerate() {
                        cumulative += w;
                        if draw < cumulative {
                            cluster = i;
                            break;
                        }
                    }
                    let price = centroids[cluster] * (0.28 * rng.normal()).exp();
                    PricePoint { unit_price_usd_per_kg: price, cluster: cluster as u32, flagged: price < 0.3 * reference }
                })
                .collect();
            PricePanel {
                hs: hs.to_owned(),
                description: description.to_owned(),
                prices,
                centroids_usd_per_kg: centroids.to_vec(),
                reference_usd_per_kg: Some(reference),
            }
        })
        .collect()
}

fn gain() -> Gain {
    let base_rate = 0.06;
    let n_pct: Vec<f64> = (1..=20).map(f64::from).collect();
    let precision: Vec<f64> = n_pct.iter().map(|n| 0.62 * n.powf(-0.35)).collect();
    let recall: Vec<f64> = n_pct.iter().zip(&precision).map(|(n, p)| (p * n / 100.0 / base_rate).min(1.0)).collect();
    let revenue: Vec<f64> = recall.iter().map(|r| 0.95 * r.powf(1.05)).collect();
    let revenue_expected_duty: Vec<f64> = revenue.iter().map(|r| (1.0 - (1.0 - r).powf(1.45)).min(1.0)).collect();
    let spread = |x: f64, w: f64| [(x - w).max(0.0), (x + w).min(1.0)];
    let intervals = (0..n_pct.len())
        .map(|i| {
            Some(GainIntervals {
                precision: spread(precision[i], 0.05),
                recall: spread(recall[i], 0.04),
                revenue: spread(revenue[i], 0.15),
            })
        })
        .collect();
    Gain {
        split: "test".to_owned(),
        auc: Some(0.871),
        n_pct,
        precision,
        recall,
        revenue,
        revenue_expected_duty,
        base_rate,
        intervals,
        auc_interval: Some([0.855, 0.886]),
        frauds_holding_half_duty: Some(14),
    }
}

fn frontier() -> Frontier {
    let n_pct = [1.0, 2.0, 5.0, 10.0, 20.0];
    let curve = |ranking: &str, precision: [f64; 5], revenue: [f64; 5]| FrontierCurve {
        ranking: ranking.to_owned(),
        points: (0..5)
            .map(|i| FrontierPoint { n_pct: n_pct[i], precision: precision[i], recall: revenue[i] * 0.8, revenue: revenue[i] })
            .collect(),
    };
    let selection = curve("selection", [0.95, 0.93, 0.91, 0.89, 0.62], [0.31, 0.48, 0.66, 0.86, 0.93]);
    let chosen = selection.points[2];
    Frontier {
        split: "test".to_owned(),
        curves: vec![
            curve("probability", [0.99, 0.98, 0.98, 0.96, 0.66], [0.04, 0.07, 0.14, 0.41, 0.68]),
            curve("expected_duty", [0.41, 0.37, 0.34, 0.31, 0.27], [0.71, 0.88, 0.97, 0.99, 1.0]),
            selection,
        ],
        chosen: Some(chosen),
        policy: "85.0 % of the picks by fraud probability, 15.0 % by expected duty, 0.0 % by exploration".to_owned(),
    }
}

fn importance() -> Vec<(String, f64)> {
    const FEATURES: [&str; 20] = [
        "unit_price_ratio_to_hs6_median",
        "importer_prior_fraud_rate",
        "declared_value_usd_log",
        "origin_risk_score",
        "tariff_rate_ad_valorem",
        "hs6_mirror_gap_share",
        "importer_age_days",
        "declarant_share_of_flagged_declarations",
        "net_mass_kg_log",
        "hs_chapter_target_encoding",
        "port_of_entry",
        "days_since_last_physical_inspection",
        "preferential_origin_claimed",
        "invoice_currency_not_usd",
        "items_per_declaration",
        "importer_declarations_last_90_days",
        "value_per_item_z_score",
        "transport_mode",
        "incoterm",
        "weekday",
    ];
    let weights: Vec<f64> = (0..FEATURES.len()).map(|i| 1.0 / (i as f64 + 1.6).powf(1.3)).collect();
    let total: f64 = weights.iter().sum();
    FEATURES.iter().zip(weights).map(|(name, w)| ((*name).to_owned(), w / total)).collect()
}

fn rules() -> Vec<RuleRow> {
    [
        ("unit_price_ratio_to_hs6_median < 0.42 AND origin_risk_score > 0.70", 1_842, 0.412, Some(0.386)),
        ("importer_prior_fraud_rate > 0.15 AND tariff_rate_ad_valorem >= 0.12", 2_310, 0.297, Some(0.281)),
        ("hs6_mirror_gap_share > 0.35 AND importer_age_days < 400", 1_105, 0.268, Some(0.244)),
        ("preferential_origin_claimed = yes AND origin_risk_score > 0.55", 3_954, 0.181, Some(0.173)),
        ("declared_value_usd_log < 7.1 AND net_mass_kg_log > 8.4", 2_877, 0.164, Some(0.149)),
        ("declarant_share_of_flagged_declarations > 0.25", 6_120, 0.122, None),
    ]
    .into_iter()
    .map(|(rule, support, train, test)| RuleRow {
        rule: rule.to_owned(),
        support_train: support,
        fraud_rate_train: train,
        fraud_rate_test: test,
    })
    .collect()
}

fn auditee_capture() -> Vec<AuditeeCapture> {
    let curve = |policy: &str, shares: [f64; 4]| AuditeeCapture {
        policy: policy.to_owned(),
        shares: [1.0, 5.0, 10.0, 20.0].into_iter().zip(shares).collect(),
    };
    vec![
        curve("list", [0.2, 0.6, 0.75, 0.9]),
        curve("oracle", [0.4, 0.8, 0.9, 1.0]),
        curve("duty_paid", [0.1, 0.3, 0.45, 0.65]),
        curve("declared_value", [0.05, 0.15, 0.3, 0.55]),
        curve("random", [0.01, 0.05, 0.1, 0.2]),
    ]
}

fn auditees(rng: &mut SplitMix64) -> Vec<AuditeeRow> {
    // (top HS4, top origins, reason): consistent importer profiles.
    const PROFILES: [(&str, &str, &str); 7] = [
        ("8517, 8471", "CN", "Smartphone unit prices far below the HS6 median; partner reports 3× the declared value"),
        ("6110, 6109", "BD, VN", "Knitwear declared in the lowest unit-price cluster on most lines"),
        ("6403, 6404", "VN, CN", "Low-priced cluster in footwear; new importer with a high-risk origin mix"),
        ("8708", "CN, TR", "Many model-flagged declarations of vehicle parts in high-duty headings"),
        ("9403, 9401", "CN, MY", "Preferential origin claimed on furniture the partner does not report as exported"),
        ("6203, 6204", "BD, IN", "Repeated under-valuation flagged by k-means across several apparel HS codes"),
        ("3926, 3923", "CN, TH", "Plastic articles declared at a fraction of the partner-reported value"),
    ];
    let mut risk = 1.9e6;
    (1..=40)
        .map(|rank| {
            risk *= 0.86 + 0.08 * rng.uniform();
            let declarations = 40 + rng.below(2_400) as u32;
            let flagged_by_model = (f64::from(declarations) * (0.05 + 0.3 * rng.uniform())) as u32;
            let (top_hs4, top_origins, reason) = PROFILES[rng.below(PROFILES.len())];
            AuditeeRow {
                rank,
                importer_id: format!("IMP-{:06}", 1_000 + rng.below(900_000)),
                revenue_at_risk_usd: risk,
                declarations,
                flagged_by_model,
                flagged_by_kmeans: (f64::from(flagged_by_model) * 0.4 * rng.uniform()) as u32,
                top_hs4: top_hs4.to_owned(),
                top_origins: top_origins.to_owned(),
                reason: reason.to_owned(),
            }
        })
        .collect()
}

fn challengers() -> Vec<crate::ChallengerRow> {
    [
        ("Gradient boosting (fraud model)", 0.871, 0.788, 0.299),
        ("Logistic regression", 0.742, 0.512, 0.188),
        ("Random forest", 0.815, 0.694, 0.241),
    ]
    .into_iter()
    .map(|(model, auc, precision, revenue)| crate::ChallengerRow { model: model.to_owned(), auc: Some(auc), precision, revenue })
    .collect()
}

/// Origin countries with lost duty spread over three orders of magnitude, and inspected
/// declarations whose fraud scores rise as the unit-price ratio falls.
fn fraud_map(rng: &mut SplitMix64) -> FraudMap {
    let origins =
        ["CN", "IN", "AE", "JP", "US", "DE", "ZA", "SA", "GB", "IT", "FR", "NL", "TR", "MY", "ID", "TH", "KR", "EG", "UG", "TZ", "BR"];
    let countries = origins
        .iter()
        .enumerate()
        .map(|(i, iso2)| {
            let scale = 2_000_000.0 * 0.72_f64.powi(i as i32);
            let inspected = 40 + (rng.uniform() * 400.0) as u32;
            CountryFigures {
                iso2: (*iso2).to_owned(),
                mirror_lost_duty_usd: scale * (0.4 + 0.2 * rng.uniform()),
                model_expected_duty_usd: scale * (0.3 + 0.1 * rng.uniform()),
                inspected,
                frauds: (f64::from(inspected) * (0.02 + 0.3 * rng.uniform())) as u32,
            }
        })
        .collect();
    let scores = (0..1_500)
        .map(|_| {
            let fraud = rng.uniform() < 0.15;
            let price_ratio = if fraud { 0.15 + 0.7 * rng.uniform() } else { 0.5 + 1.5 * rng.uniform() };
            let fraud_probability = if fraud { 0.3 + 0.65 * rng.uniform() } else { 0.4 * rng.uniform() * rng.uniform() };
            ScorePoint { price_ratio, fraud_probability, fraud }
        })
        .collect();
    FraudMap { countries, scores }
}

/// Five offices and three lanes, one of each breaching the service level.
fn release() -> ReleaseFigures {
    let group = |dimension: &str, group: &str, declarations: u32, median_hours: f64, p90_hours: f64| ReleaseGroup {
        dimension: dimension.to_owned(),
        group: group.to_owned(),
        declarations,
        median_hours,
        p90_hours,
        breach: median_hours > 24.0 || p90_hours > 72.0,
    };
    ReleaseFigures {
        groups: vec![
            group("office", "MLB", 5_900, 41.5, 118.0),
            group("office", "NBO", 6_100, 16.2, 48.0),
            group("office", "MSA", 6_000, 15.9, 47.1),
            group("office", "JKIA", 5_800, 15.7, 46.5),
            group("office", "KSM", 6_200, 15.5, 45.8),
            group("lane", "red", 3_900, 52.3, 131.0),
            group("lane", "yellow", 7_500, 21.9, 57.2),
            group("lane", "green", 18_600, 14.1, 38.0),
        ],
        service_level_hours: (24.0, 72.0),
        steps: vec![
            ("all".to_owned(), [6.4, 7.9, 5.9]),
            ("MLB".to_owned(), [16.6, 20.5, 15.3]),
            ("NBO".to_owned(), [6.4, 6.0, 4.5]),
            ("red".to_owned(), [7.1, 26.3, 19.7]),
            ("green".to_owned(), [6.2, 5.1, 3.8]),
        ],
        skipped: None,
    }
}
