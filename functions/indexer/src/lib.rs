//! The scheduled indexer: builds the index snapshot from the live shards,
//! then the cluster summary with its pictures and report.
//!
//! Each run rebuilds the index from every live page, read from the previous
//! snapshot's segments plus the shard files newer than it, and compacts
//! those rows into segments again (see `folio_pipeline::snapshot`). A failed
//! or overlapping run loses nothing. The snapshot pointer only moves
//! forward, and shard files are pruned only after a current manifest records
//! their rows. A shard written during the build is either in the new
//! snapshot or newer than it and searched exactly.
//!
//! # Example
//!
//! ```no_run
//! # async fn run(store: folio_store::Store) {
//! let settings = indexer::Settings::from_env().unwrap();
//! let report = indexer::run(&store, &settings).await.unwrap();
//! println!("{}", serde_json::to_string(&report).unwrap());
//! # }
//! ```

use folio_clusters::ClusterParams;
use folio_index::IndexOptions;
use folio_pipeline::Layout;
use folio_pipeline::clusters::ScanSource;
use folio_store::Store;

/// Access granted to this function; the deployment template's IAM policy is tested against it.
pub const ACCESS_JSON: &str = include_str!("../access.json");

/// Environment variable naming the quantisation of the index (f16, f32 or i8).
pub const ENV_QUANTIZATION: &str = "FOLIO_INDEX_QUANTIZATION";

/// Snapshots kept besides the current one, so that a query container that
/// loaded the previous snapshot can still read its files while it swaps.
const SNAPSHOTS_KEPT: usize = 2;

/// Settings of one run, besides the store.
pub struct Settings {
    pub layout: Layout,
    pub index: IndexOptions,
    pub clusters: ClusterParams,
    pub model_id: String,
    pub dims: usize,
}

impl Settings {
    /// Reads the prefixes and the quantisation from the environment.
    pub fn from_env() -> Result<Settings, String> {
        let mut index = IndexOptions::default();
        if let Ok(text) = std::env::var(ENV_QUANTIZATION) {
            index.quantisation = text.parse().map_err(|error| format!("{ENV_QUANTIZATION}: {error}"))?;
        }
        let identity = folio_model::identity();
        Ok(Settings {
            layout: Layout::from_env(),
            index,
            clusters: ClusterParams::default(),
            model_id: identity.to_string(),
            dims: identity.dimensions,
        })
    }
}

/// Outcome of one run, returned by the function and logged.
#[derive(Debug, serde::Serialize)]
pub struct RunReport {
    pub snapshot_id: String,
    pub pages: usize,
    pub documents: usize,
    pub index_parts: usize,
    pub index_seconds: f64,
    /// Segment files the new manifest references.
    pub segments: usize,
    /// Shard files the build read; the other rows came from segments.
    pub shard_files_read: usize,
    pub pruned_files: usize,
    pub clusters: Option<usize>,
    /// Reason the cluster summary was not built, when it was not.
    pub clusters_error: Option<String>,
}

/// Errors that fail the run (so the schedule's retry runs it again).
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    #[error("index snapshot failed: {0}")]
    Snapshot(#[from] folio_pipeline::snapshot::SnapshotError),
}

/// Builds the snapshot, prunes old ones, and builds the cluster summary. A
/// failed cluster summary is reported but does not fail the run, because
/// the new snapshot is already serving queries.
pub async fn run(store: &Store, settings: &Settings) -> Result<RunReport, IndexerError> {
    let layout = &settings.layout;
    let manifest =
        folio_pipeline::snapshot::build_snapshot(store, layout, &settings.model_id, settings.dims, &settings.index).await?;
    tracing::info!(snapshot = %manifest.snapshot_id, pages = manifest.pages, seconds = manifest.build_seconds, "snapshot built");
    let pruned_files = folio_pipeline::snapshot::prune_snapshots(store, layout, SNAPSHOTS_KEPT).await?
        + folio_pipeline::snapshot::prune_superseded_shards(store, layout, &manifest).await?;

    let (clusters, clusters_error) = if manifest.pages < 2 {
        (None, Some(format!("{} pages are too few to cluster", manifest.pages)))
    } else {
        match folio_pipeline::clusters::build_clusters(store, layout, &settings.model_id, &settings.clusters, &ScanSource::Store).await {
            Ok((summary, _)) => (Some(summary.clusters.len()), None),
            Err(error) => {
                tracing::error!(%error, "cluster summary failed");
                (None, Some(error.to_string()))
            }
        }
    };
    Ok(RunReport {
        snapshot_id: manifest.snapshot_id,
        pages: manifest.pages,
        documents: manifest.documents,
        index_parts: manifest.parts.len(),
        index_seconds: manifest.build_seconds,
        segments: manifest.segments.len(),
        shard_files_read: manifest.shard_files_read,
        pruned_files,
        clusters,
        clusters_error,
    })
}
