//! Counts a user checks first: how many documents and pages are searchable,
//! what failed, and how old the snapshot is.

use std::collections::HashSet;

use folio_shard::PageStatus;
use folio_store::Store;

use crate::ingest::{self, ErrorRecord};
use crate::layout::{Layout, pad_sequencer};
use crate::live;
use crate::snapshot::{self, SnapshotError};

/// Store-wide counts.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// Documents whose current version is not deleted.
    pub documents: usize,
    /// Deleted document keys (current entry is a tombstone).
    pub deleted_documents: usize,
    /// Pages with an embedding in the current snapshot plus newer shards.
    pub pages: usize,
    /// Pages that failed to decode or embed, in the same shards.
    pub failed_pages: usize,
    /// Current documents whose object could not be read at all.
    pub object_errors: usize,
    pub snapshot_id: Option<String>,
    pub snapshot_model_id: Option<String>,
    pub snapshot_age_seconds: Option<u64>,
    /// Current shards (and tombstones) written after the snapshot was built.
    pub shards_not_in_snapshot: usize,
}

/// Computes [`Status`]. It reads the snapshot manifest and only the shards
/// newer than it, so its cost grows with the changes since the last
/// build, not with the store.
pub async fn status(store: &Store, layout: &Layout) -> Result<Status, SnapshotError> {
    let manifest = snapshot::current_manifest(store, layout).await?;
    let groups = live::list_shards(store, layout).await?;
    let current: Vec<live::ShardEntry> = live::resolve_current(layout, &groups, manifest.as_ref()).into_values().collect();
    let in_snapshot: HashSet<&str> = manifest
        .iter()
        .flat_map(|manifest| manifest.shards.iter().map(|shard| shard.key.as_str()))
        .collect();
    let newer: Vec<_> = current
        .iter()
        .filter(|entry| !in_snapshot.contains(entry.key.as_str()))
        .cloned()
        .collect();
    let current_keys: HashSet<&str> = current.iter().map(|entry| entry.key.as_str()).collect();

    let (mut pages, mut failed_pages) = (0, 0);
    if let Some(manifest) = &manifest {
        // Pages of snapshot shards that are still current.
        for shard in manifest.shards.iter().filter(|shard| current_keys.contains(shard.key.as_str())) {
            pages += shard.pages as usize;
        }
        // NOTE: counts failures in every snapshot shard, including shards replaced since.
        failed_pages += manifest.failed_pages;
    }
    let fresh: Vec<_> = newer.iter().filter(|entry| !entry.tombstone).cloned().collect();
    for shard in live::load_entries(store, fresh).await? {
        for row in &shard.rows {
            match (row.status, row.page) {
                (PageStatus::Embedded, _) => pages += 1,
                // Page 0 is the whole object; its error record is counted below.
                (PageStatus::Failed, 0) | (PageStatus::Deleted, _) => {}
                (PageStatus::Failed, _) => failed_pages += 1,
            }
        }
    }
    let object_errors = current_object_errors(store, layout, &current).await?.len();

    let now = ingest::unix_now();
    Ok(Status {
        documents: current.iter().filter(|entry| !entry.tombstone).count(),
        deleted_documents: current.iter().filter(|entry| entry.tombstone).count(),
        pages,
        failed_pages,
        object_errors,
        snapshot_id: manifest.as_ref().map(|manifest| manifest.snapshot_id.clone()),
        snapshot_model_id: manifest.as_ref().map(|manifest| manifest.model_id.clone()),
        snapshot_age_seconds: manifest.as_ref().map(|manifest| now.saturating_sub(manifest.created_at)),
        shards_not_in_snapshot: newer.len(),
    })
}

/// Error records of objects whose unreadable version is still the current
/// one: a later good upload or a deletion clears the error.
pub async fn current_object_errors(
    store: &Store,
    layout: &Layout,
    current: &[live::ShardEntry],
) -> Result<Vec<ErrorRecord>, SnapshotError> {
    let current_sequencers: HashSet<(String, String)> = current
        .iter()
        .map(|entry| (entry.document_hash.clone(), entry.sequencer.clone()))
        .collect();
    let records = ingest::list_errors(store, layout).await?;
    Ok(records
        .into_iter()
        .filter(|record| {
            current_sequencers.contains(&(
                crate::layout::document_hash(&record.document),
                pad_sequencer(&record.sequencer),
            ))
        })
        .collect())
}
