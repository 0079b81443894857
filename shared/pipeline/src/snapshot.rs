//! Index snapshots: the usearch parts over every live page, the key map
//! from index keys to (document, page), and a manifest naming the shards
//! they contain. The pointer `index/CURRENT.json` is switched with a
//! conditional write, so a reader sees either the old snapshot or the new
//! one, never half of one.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use folio_index::{IndexOptions, IndexPart};
use folio_store::{PutMode, Store, StoreError};

use crate::layout::Layout;
use crate::live::{self, LiveError, LiveShard};

/// A page in a snapshot: what an index key stands for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PageRef {
    pub document: String,
    pub page: u32,
}

/// One index part of a snapshot.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartInfo {
    pub key: String,
    pub vectors: usize,
    pub bytes: u64,
}

/// A shard whose pages the snapshot contains.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IncludedShard {
    pub key: String,
    pub document: String,
    pub pages: u32,
}

/// Everything a reader needs to open a snapshot.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Sortable id: UTC build time, then a disambiguating suffix.
    pub snapshot_id: String,
    /// Seconds since the Unix epoch when the build started listing shards.
    pub created_at: u64,
    pub model_id: String,
    pub dims: usize,
    pub options: IndexOptions,
    pub parts: Vec<PartInfo>,
    /// Key of the JSON array of [`PageRef`]s, indexed by index key.
    pub keymap: String,
    /// Shards the snapshot contains; any live shard not listed here is newer.
    pub shards: Vec<IncludedShard>,
    pub documents: usize,
    pub pages: usize,
    pub failed_pages: usize,
    /// Tombstones that were current when the build listed the shards.
    #[serde(default)]
    pub tombstones: Vec<String>,
    /// Shards left out because another model embedded them, with that model's id.
    pub skipped_shards: Vec<(String, String)>,
    pub build_seconds: f64,
}

/// The pointer to the current snapshot.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurrentSnapshot {
    pub snapshot_id: String,
    pub manifest: String,
}

/// Errors from building or opening a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("index build failed: {0}")]
    Index(#[from] folio_index::IndexError),
    #[error("{key}: invalid JSON: {source}")]
    Json {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no index snapshot exists yet under {prefix}; run the index build first (folio index)")]
    NoSnapshot { prefix: String },
    #[error("another build switched to snapshot {theirs}, which is newer than {ours}; {ours} was not made current")]
    Superseded { ours: String, theirs: String },
}

fn current_key(layout: &Layout) -> String {
    format!("{}CURRENT.json", layout.index)
}

fn new_snapshot_id(now: SystemTime) -> String {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    // Seconds and nanoseconds keep ids sortable and distinct between two builds in one second.
    format!("{:012}-{:09}", since_epoch.as_secs(), since_epoch.subsec_nanos())
}

/// Builds a snapshot of every live page embedded by `model_id` and makes it current.
pub async fn build_snapshot(
    store: &Store,
    layout: &Layout,
    model_id: &str,
    dims: usize,
    options: &IndexOptions,
) -> Result<Manifest, SnapshotError> {
    let started = Instant::now();
    let now = SystemTime::now();
    let snapshot_id = new_snapshot_id(now);
    let groups = live::list_shards(store, layout).await?;
    let (tombstones, current): (Vec<_>, Vec<_>) =
        live::current_entries(&groups).into_iter().partition(|entry| entry.tombstone);
    let shards = live::load_entries(store, current).await?;

    let (included, skipped): (Vec<LiveShard>, Vec<LiveShard>) =
        shards.into_iter().partition(|shard| shard.meta.model_id == model_id && shard.meta.dims == dims);
    for shard in &skipped {
        tracing::warn!(
            shard = %shard.entry.key,
            shard_model = %shard.meta.model_id,
            model = %model_id,
            "leaving out a shard embedded by another model; re-ingest its document"
        );
    }

    let mut keymap = Vec::new();
    let mut vectors: Vec<(u64, &[f32])> = Vec::new();
    let mut manifest_shards = Vec::new();
    let mut failed_pages = 0;
    for shard in &included {
        let mut pages = 0;
        for row in &shard.rows {
            match &row.embedding {
                Some(vector) => {
                    vectors.push((keymap.len() as u64, vector.as_slice()));
                    keymap.push(PageRef {
                        document: row.document.clone(),
                        page: row.page,
                    });
                    pages += 1;
                }
                None if row.page > 0 => failed_pages += 1,
                None => {}
            }
        }
        let document = shard.rows.first().map(|row| row.document.clone()).unwrap_or_default();
        manifest_shards.push(IncludedShard {
            key: shard.entry.key.clone(),
            document,
            pages,
        });
    }
    let documents = manifest_shards.iter().filter(|shard| shard.pages > 0).count();

    let parts = folio_index::build_parts(dims, options, vectors.iter().copied())?;
    let prefix = format!("{}snapshots/{snapshot_id}/", layout.index);
    let mut part_infos = Vec::new();
    for (number, part) in parts.iter().enumerate() {
        let key = format!("{prefix}part-{number:05}.usearch");
        let bytes = part.to_bytes()?;
        part_infos.push(PartInfo {
            key: key.clone(),
            vectors: part.len(),
            bytes: bytes.len() as u64,
        });
        store.put(&key, bytes.into(), PutMode::Overwrite).await?;
    }
    let keymap_key = format!("{prefix}keys.json");
    store
        .put(&keymap_key, to_json(&keymap).into(), PutMode::Overwrite)
        .await?;

    let manifest = Manifest {
        snapshot_id: snapshot_id.clone(),
        created_at: now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
        model_id: model_id.to_owned(),
        dims,
        options: options.clone(),
        parts: part_infos,
        keymap: keymap_key,
        shards: manifest_shards,
        documents,
        pages: keymap.len(),
        failed_pages,
        tombstones: tombstones.into_iter().map(|entry| entry.key).collect(),
        skipped_shards: skipped
            .iter()
            .map(|shard| (shard.entry.key.clone(), shard.meta.model_id.clone()))
            .collect(),
        build_seconds: started.elapsed().as_secs_f64(),
    };
    let manifest_key = format!("{prefix}manifest.json");
    store
        .put(&manifest_key, to_json(&manifest).into(), PutMode::Overwrite)
        .await?;
    switch_current(store, layout, &snapshot_id, &manifest_key).await?;
    Ok(manifest)
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("snapshot metadata always serialises")
}

/// Points `index/CURRENT.json` at a new manifest, unless a newer snapshot
/// is already current. Conditional writes make the check and the switch
/// one step against concurrent builds.
async fn switch_current(store: &Store, layout: &Layout, snapshot_id: &str, manifest_key: &str) -> Result<(), SnapshotError> {
    let key = current_key(layout);
    let pointer = CurrentSnapshot {
        snapshot_id: snapshot_id.to_owned(),
        manifest: manifest_key.to_owned(),
    };
    let body = Bytes::from(to_json(&pointer));
    // Three tries: each failure means another build switched in between.
    for _ in 0..3 {
        let mode = match store.head(&key).await {
            Ok(info) => {
                let current: CurrentSnapshot = read_json(store, &key).await?;
                if current.snapshot_id.as_str() > snapshot_id {
                    return Err(SnapshotError::Superseded {
                        ours: snapshot_id.to_owned(),
                        theirs: current.snapshot_id,
                    });
                }
                PutMode::Replace(info.etag)
            }
            Err(StoreError::NotFound { .. }) => PutMode::Create,
            Err(error) => return Err(error.into()),
        };
        match store.put(&key, body.clone(), mode).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(SnapshotError::Superseded {
        ours: snapshot_id.to_owned(),
        theirs: "(changed three times during the switch)".to_owned(),
    })
}

pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(store: &Store, key: &str) -> Result<T, SnapshotError> {
    let bytes = store.get(key).await?;
    serde_json::from_slice(&bytes).map_err(|source| SnapshotError::Json {
        key: key.to_owned(),
        source,
    })
}

/// Reads the manifest of the current snapshot, if there is one.
pub async fn current_manifest(store: &Store, layout: &Layout) -> Result<Option<Manifest>, SnapshotError> {
    let pointer: CurrentSnapshot = match read_json(store, &current_key(layout)).await {
        Ok(pointer) => pointer,
        Err(SnapshotError::Store(StoreError::NotFound { .. })) => return Ok(None),
        Err(error) => return Err(error),
    };
    Ok(Some(read_json(store, &pointer.manifest).await?))
}

/// Opens the parts and key map of a snapshot. A local store's parts are
/// memory-mapped; S3 parts are downloaded into memory.
pub async fn open_parts(store: &Store, manifest: &Manifest) -> Result<(Vec<IndexPart>, Vec<PageRef>), SnapshotError> {
    let mut parts = Vec::new();
    for part in &manifest.parts {
        let opened = match store.local_root() {
            Some(root) => IndexPart::view(&root.join(&part.key))?,
            None => IndexPart::load(&store.get(&part.key).await?)?,
        };
        parts.push(opened);
    }
    let keymap = read_json(store, &manifest.keymap).await?;
    Ok((parts, keymap))
}

/// Deletes the files of snapshots other than the current one and the
/// `keep` newest, so storage does not grow with every scheduled build.
pub async fn prune_snapshots(store: &Store, layout: &Layout, keep: usize) -> Result<usize, SnapshotError> {
    let Some(current) = current_manifest(store, layout).await? else {
        return Ok(0);
    };
    let prefix = format!("{}snapshots/", layout.index);
    let objects = store.list(&prefix).await?;
    let mut ids: Vec<String> = objects
        .iter()
        .filter_map(|object| object.key.strip_prefix(&prefix)?.split('/').next().map(str::to_owned))
        .collect();
    ids.sort();
    ids.dedup();
    let keep_from = ids.len().saturating_sub(keep);
    let mut deleted = 0;
    for (position, id) in ids.iter().enumerate() {
        if position >= keep_from || *id == current.snapshot_id || id.as_str() > current.snapshot_id.as_str() {
            continue;
        }
        for object in objects.iter().filter(|object| object.key.starts_with(&format!("{prefix}{id}/"))) {
            store.delete(&object.key).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Deletes shards that a later shard or tombstone of the same document
/// replaced, once that later entry is in the current snapshot: no reader
/// needs them any more, and listing the vectors prefix stays proportional
/// to the number of documents. Tombstones themselves are kept, so a late
/// event for a deleted version is still recognised as stale.
///
/// TODO: also merge the live shards into a few large segments per snapshot,
/// so that a build reads a handful of objects instead of one per document.
pub async fn prune_superseded_shards(store: &Store, layout: &Layout, manifest: &Manifest) -> Result<usize, SnapshotError> {
    let in_snapshot: std::collections::HashSet<&str> = manifest.shards.iter().map(|shard| shard.key.as_str()).collect();
    let tombstones: std::collections::HashSet<&str> = manifest.tombstones.iter().map(String::as_str).collect();
    let groups = live::list_shards(store, layout).await?;
    let mut deleted = 0;
    for entries in groups.values() {
        let Some(latest) = entries.last() else { continue };
        let settled = in_snapshot.contains(latest.key.as_str()) || tombstones.contains(latest.key.as_str());
        if !settled {
            continue;
        }
        for entry in &entries[..entries.len() - 1] {
            store.delete(&entry.key).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
