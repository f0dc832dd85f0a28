//! The `kmeans_scores` stage: unit-price clusters per product group and an undervaluation
//! score for every declaration (BACUDA's "fraud detection with k-means").
//!
//! Declarations whose unit price (USD/kg) sits far below what their peers declare for the same
//! goods are candidates for undervaluation. Peers are the finest group with enough priced rows:
//! HS6 × origin (goods from one origin share a quality and price level), else HS6, else HS4,
//! else HS2. Each group is clustered with k-means on log unit price ([`cluster`]), in parallel;
//! groups with fewer than `min-group-size` rows at every level are scored with a robust z-score
//! against the HS2 median and say so (`method = robust_z`).
//!
//! ## Inputs
//! - `declarations` ([`mirador_schema::schemas::declarations`]).
//! ## Outputs
//! - `kmeans_scores`: one row per declaration item — `declaration_id`, `item_no`, `importer_id`,
//!   `hs6`, `origin_country`, `group_key`, `group_level` (`hs6_origin`, `hs6`, `hs4`, `hs2`),
//!   `method` (`kmeans`, `robust_z`, or `no_unit_price` / `too_few_peers` with a null score),
//!   `cluster`, `unit_price_usd_per_kg`, `centroid_price_usd_per_kg`,
//!   `reference_price_usd_per_kg`, `price_ratio` (unit price ÷ reference), `z_score`,
//!   `undervaluation_score` in [0, 1], `undervaluation_flag`, `undervalued_duty_usd` (duty
//!   the declaration would owe at the reference price, minus what it paid), `unit_value_score`
//!   (the same comparison per supplementary unit, where declarations carry quantities) and
//!   `score_basis` (`per_kg` or `per_unit`: which comparison gave the score).
//! - `kmeans_groups`: one row per group — key, level, method, rows, k, centroids and sizes,
//!   silhouette, flagged rows, `basis` (`per_kg` or `per_unit`).

pub mod cluster;
mod groups;
pub mod peers;

use mirador_pipeline::{Stage, StageContext, StageError, StageOutput};
use mirador_schema::catalog::{kmeans_peers, kmeans_scores};
use mirador_schema::{DatasetId, col, datasets};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub use cluster::{ClusterParams, GroupFit, Method, PriceScore};
pub use groups::{BLOCK_ROWS, Level, ScoredRows, peers_to_carry, score_declarations, score_in_blocks, score_with_peers};

/// Parameters of the `kmeans_scores` stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct KMeansParams {
    /// Fewest priced rows a group needs to be clustered; smaller groups fall back to a coarser
    /// HS level.
    pub min_group_size: usize,
    /// Fewest rows for a robust z-score when no level reaches `min-group-size`.
    pub min_robust_size: usize,
    /// Cluster HS6 × origin groups first (origin effects); `false` starts at HS6.
    pub by_origin: bool,
    /// A declaration is flagged when its score is at least this…
    pub flag_score: f64,
    /// …and its price is at most this share of the reference price.
    pub flag_max_ratio: f64,
    /// Carry peers from run to run ([`peers`]): the previous run's recent priced rows join this
    /// run's peer groups, so a nightly run that reads only the night's declarations still compares
    /// them with enough peers.
    pub carry_state: bool,
    /// With `carry-state`: peers of this many days before the newest declaration are kept.
    pub peer_window_days: u32,
    /// With `carry-state`: at most this many peers per HS6 × origin are kept, newest first.
    pub max_peers_per_group: usize,
    /// Clustering parameters.
    #[serde(flatten)]
    pub cluster: ClusterParams,
}

impl Default for KMeansParams {
    fn default() -> Self {
        KMeansParams {
            min_group_size: 30,
            min_robust_size: 5,
            by_origin: true,
            flag_score: 0.99,
            flag_max_ratio: 0.6,
            carry_state: false,
            peer_window_days: 180,
            max_peers_per_group: 2_000,
            cluster: ClusterParams::default(),
        }
    }
}

impl KMeansParams {
    /// Range checks of the parameters, before any data is read: a value out of range (e.g. a
    /// `max-k` that would fit hundreds of clusterings per group) is a configuration error naming
    /// the stage and the key.
    pub fn validate(&self, stage: &str) -> Result<(), StageError> {
        use mirador_pipeline::param_in_range as range;
        range(stage, "min-group-size", self.min_group_size, 2, 100_000_000)?;
        range(stage, "min-robust-size", self.min_robust_size, 2, 100_000_000)?;
        range(stage, "flag-score", self.flag_score, 0.0, 1.0)?;
        range(stage, "flag-max-ratio", self.flag_max_ratio, 0.0, 1.0)?;
        range(stage, "peer-window-days", self.peer_window_days, 1, 36_600)?;
        range(stage, "max-peers-per-group", self.max_peers_per_group, 1, 10_000_000)?;
        let c = &self.cluster;
        range(stage, "max-k", c.max_k, 1, 20)?;
        range(stage, "min-silhouette", c.min_silhouette, -1.0, 1.0)?;
        range(stage, "segment-share", c.segment_share, 0.0, 1.0)?;
        range(stage, "max-fit-rows", c.max_fit_rows, 10, 10_000_000)?;
        range(stage, "min-spread", c.min_spread, 1e-6, 10.0)
    }
}

/// Unit-price clusters and undervaluation scores.
///
/// ## Inputs
/// - `declarations`.
/// ## Outputs
/// - `kmeans_scores`, `kmeans_groups` (see the crate docs for columns).
pub struct KMeansScores;

impl Stage for KMeansScores {
    fn check_params(&self, params: &mirador_pipeline::toml::Table) -> Result<(), StageError> {
        let params: KMeansParams = mirador_pipeline::parse_params(self.name(), params)?;
        params.validate(self.name())
    }

    fn name(&self) -> &'static str {
        "kmeans_scores"
    }

    fn carries_state(&self, params: &mirador_pipeline::toml::Table) -> bool {
        mirador_pipeline::parse_params::<KMeansParams>(self.name(), params).is_ok_and(|p| p.carry_state)
    }

    fn inputs(&self) -> &'static [DatasetId] {
        &[datasets::DECLARATIONS]
    }

    fn outputs(&self) -> &'static [DatasetId] {
        &[datasets::KMEANS_SCORES, datasets::KMEANS_GROUPS]
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutput, StageError> {
        let params: KMeansParams = ctx.params()?;
        params.validate(self.name())?;
        let declarations = ctx.input(datasets::DECLARATIONS)?;
        let mut out = StageOutput::new();
        let carried = if params.carry_state {
            ctx.previous_state(kmeans_peers::ID).as_deref().map(mirador_io::read_parquet).transpose()?
        } else {
            None
        };
        // The scores are written block by block as they are computed; what the metrics need of
        // them is gathered on the way.
        let fraud = declarations.column(col::FRAUD)?.cast(&DataType::Int8)?;
        let fraud = fraud.i8()?;
        let mut stream = ctx.dataset_stream(datasets::KMEANS_SCORES);
        let (mut rows, mut flagged, mut labelled) = (0, 0, Labelled::default());
        let groups = score_in_blocks(declarations, carried.as_ref(), &params, ctx.seed(), |block: DataFrame| -> Result<(), StageError> {
            flagged += block.column(kmeans_scores::UNDERVALUATION_FLAG)?.bool()?.sum().unwrap_or(0) as usize;
            labelled.add(&fraud.slice(rows as i64, block.height()), block.column(kmeans_scores::UNDERVALUATION_SCORE)?.f64()?);
            rows += block.height();
            stream.write(&block)
        })?;
        if params.carry_state {
            let mut kept = peers_to_carry(declarations, carried.as_ref(), &params)?;
            out = out.with_metric("carried_peers", carried.as_ref().map_or(0, DataFrame::height)).with_metric("peers_kept", kept.height());
            ctx.write_state(kmeans_peers::ID, &mut kept)?;
        }
        out = out
            .with_metric("declarations", rows)
            .with_metric("groups", groups.height())
            .with_metric("flagged", flagged)
            .with_metric("clustered_groups", groups::clustered(&groups));
        // The score's agreement with inspection outcomes, where there are any: a weak signal on
        // its own (undervaluation is one kind of fraud among several), reported, not a bar.
        if let Some(auc) = mirador_metrics::auc(&labelled.scores, &labelled.fraud) {
            out = out.with_metric("auc_vs_fraud_label", auc);
        }
        Ok(out.with_streamed(stream.finish()?).with_dataset(datasets::KMEANS_GROUPS, groups))
    }
}

/// The undervaluation scores of inspected, priced declarations and their `fraud` labels, in row
/// order: what the score's AUC against the labels is computed from.
#[derive(Default)]
struct Labelled {
    scores: Vec<f64>,
    fraud: Vec<bool>,
}

impl Labelled {
    /// Adds the rows of a block that have both a label and a score.
    fn add(&mut self, fraud: &Int8Chunked, score: &Float64Chunked) {
        for (f, s) in fraud.iter().zip(score.iter()) {
            if let (Some(f), Some(s)) = (f, s) {
                self.scores.push(s);
                self.fraud.push(f == 1);
            }
        }
    }
}
