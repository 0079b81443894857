//! Index snapshots: the usearch parts over every live page, the key map
//! from index keys to (document, page), and a manifest naming the shards
//! they contain. The pointer `index/CURRENT.json` is switched with a
//! conditional write, so a reader sees either the old snapshot or the new
//! one, never half of one.
//!
//! # Compaction
//!
//! Ingest writes one small shard file per document version, so reading
//! every shard costs one GET per document. Each build therefore also writes
//! the rows it indexed into a few large segment files,
//! `index/segments/<snapshot>/seg-NNNNN.parquet` (same row schema as
//! shards, about [`DEFAULT_SEGMENT_TARGET_BYTES`] each), and the manifest
//! records which segment contains each shard ([`IncludedShard::segment`]).
//! The next build reads those segments plus only the shard files newer than
//! the snapshot ([`live::load_current`]). The sequencer rules still apply,
//! because the manifest's versions compete with listed shards and
//! tombstones in [`live::resolve_current`].
//!
//! A build keeps a previous segment as it is while at least half of its
//! rows are live and it is at least half the target size. It rewrites the
//! live rows of the others, with the new shards, into new segments, so
//! small segments merge and superseded rows drop out.
//!
//! Segments live under the index prefix, which the indexer may write, not
//! under the vectors prefix, which only ingest writes.
//! [`prune_superseded_shards`] deletes a compacted shard file once two
//! builds in a row compacted it and the second one's manifest is current,
//! so a query engine still on the previous snapshot can read it.
//! [`prune_snapshots`] deletes segments that no kept manifest references.

use std::collections::{HashMap, HashSet};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use folio_index::{IndexOptions, IndexPart};
use folio_store::{PutMode, Store, StoreError};

use crate::layout::Layout;
use crate::live::{self, LiveError, LiveShard};

/// Size at which a build starts a new segment file. Every build reads the
/// segments whole, so larger ones mean fewer GETs per build. 64 MiB contains
/// about 8,000 pages of 2048-dimensional f32 vectors (8 KiB a row) and
/// still downloads in one GET within a function's memory.
pub const DEFAULT_SEGMENT_TARGET_BYTES: u64 = 64 * 1024 * 1024;

/// Settings of the compaction of shards into segment files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionOptions {
    /// Estimated size in bytes at which a segment is closed and the next
    /// one starts; a segment may exceed it by one shard's rows.
    pub target_segment_bytes: u64,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            target_segment_bytes: DEFAULT_SEGMENT_TARGET_BYTES,
        }
    }
}

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
    /// Position in [`Manifest::segments`] of the segment holding this
    /// shard's rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<usize>,
    /// True when the previous snapshot's segments already contained these
    /// rows, so the shard file may be pruned once this manifest is current.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub compacted_earlier: bool,
}

/// One segment file: rows of many shards, in the shard row schema.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SegmentInfo {
    pub key: String,
    pub bytes: u64,
    /// Rows in the file, including rows of versions superseded since it was written.
    pub rows: usize,
    /// Rows of shards that this manifest includes.
    pub live_rows: usize,
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
    /// Segment files holding the rows of the included shards.
    #[serde(default)]
    pub segments: Vec<SegmentInfo>,
    /// Shard files the build read (the rest came from segments).
    #[serde(default)]
    pub shard_files_read: usize,
    /// Segment files of the previous snapshot that the build read.
    #[serde(default)]
    pub segments_read: usize,
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
    #[error("{key}: cannot encode the segment: {source}")]
    Segment {
        key: String,
        #[source]
        source: folio_shard::ShardError,
    },
}

fn current_key(layout: &Layout) -> String {
    format!("{}CURRENT.json", layout.index)
}

fn new_snapshot_id(now: SystemTime) -> String {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    // Seconds and nanoseconds keep ids sortable and distinct between two builds in one second.
    format!("{:012}-{:09}", since_epoch.as_secs(), since_epoch.subsec_nanos())
}

/// Builds a snapshot of every live page embedded by `model_id`, compacts
/// its rows into segments with the default [`CompactionOptions`], and makes
/// it current.
pub async fn build_snapshot(
    store: &Store,
    layout: &Layout,
    model_id: &str,
    dims: usize,
    options: &IndexOptions,
) -> Result<Manifest, SnapshotError> {
    build_snapshot_with(store, layout, model_id, dims, options, &CompactionOptions::default()).await
}

/// Builds a snapshot like [`build_snapshot`], with the given compaction settings.
pub async fn build_snapshot_with(
    store: &Store,
    layout: &Layout,
    model_id: &str,
    dims: usize,
    options: &IndexOptions,
    compaction: &CompactionOptions,
) -> Result<Manifest, SnapshotError> {
    let started = Instant::now();
    let now = SystemTime::now();
    let snapshot_id = new_snapshot_id(now);
    let previous = current_manifest(store, layout).await?;
    let live = live::load_current(store, layout, previous.as_ref()).await?;
    let (tombstones, shard_files_read, segments_read) = (live.tombstones, live.shard_files_read, live.segments_read);

    // NOTE: rows of another model in a previous segment are left out of the
    // new manifest, and their shard files may be pruned already. So after a
    // model change those documents need re-ingesting, as the warning below
    // logs for every skipped shard.
    let (included, skipped): (Vec<LiveShard>, Vec<LiveShard>) = live
        .shards
        .into_iter()
        .partition(|shard| shard.meta.model_id == model_id && shard.meta.dims == dims);
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
            segment: None,
            compacted_earlier: shard.segment.is_some(),
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
    let segments = write_segments(
        store,
        layout,
        &snapshot_id,
        previous.as_ref(),
        &included,
        &mut manifest_shards,
        compaction,
    )
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
        segments,
        shard_files_read,
        segments_read,
    };
    let manifest_key = format!("{prefix}manifest.json");
    store
        .put(&manifest_key, to_json(&manifest).into(), PutMode::Overwrite)
        .await?;
    switch_current(store, layout, &snapshot_id, &manifest_key).await?;
    Ok(manifest)
}

/// Writes the rows of `included` that no kept segment contains into new
/// segments, sets [`IncludedShard::segment`] for every shard, and returns
/// the new manifest's segment list. `included[i]` is `manifest_shards[i]`.
async fn write_segments(
    store: &Store,
    layout: &Layout,
    snapshot_id: &str,
    previous: Option<&Manifest>,
    included: &[LiveShard],
    manifest_shards: &mut [IncludedShard],
    compaction: &CompactionOptions,
) -> Result<Vec<SegmentInfo>, SnapshotError> {
    let target = compaction.target_segment_bytes.max(1);
    let mut live_rows: HashMap<&str, usize> = HashMap::new();
    for shard in included {
        if let Some(key) = &shard.segment {
            *live_rows.entry(key.as_str()).or_default() += shard.rows.len();
        }
    }

    // Keep mostly-live segments of a useful size; the rest are rewritten.
    let mut segments = Vec::new();
    let mut kept: HashMap<&str, usize> = HashMap::new();
    for info in previous.map(|manifest| manifest.segments.as_slice()).unwrap_or_default() {
        let live = live_rows.get(info.key.as_str()).copied().unwrap_or(0);
        if live > 0 && live * 2 >= info.rows && info.bytes * 2 >= target {
            kept.insert(info.key.as_str(), segments.len());
            segments.push(SegmentInfo {
                live_rows: live,
                ..info.clone()
            });
        }
    }

    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    for (position, shard) in included.iter().enumerate() {
        if let Some(&segment) = shard.segment.as_deref().and_then(|key| kept.get(key)) {
            manifest_shards[position].segment = Some(segment);
            continue;
        }
        batch.push(position);
        batch_bytes += estimated_row_bytes(&shard.rows);
        if batch_bytes >= target {
            batches.push(std::mem::take(&mut batch));
            batch_bytes = 0;
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }

    for (number, batch) in batches.into_iter().enumerate() {
        let key = format!("{}segments/{snapshot_id}/seg-{number:05}.parquet", layout.index);
        let rows: Vec<folio_shard::PageRow> = batch.iter().flat_map(|&position| included[position].rows.iter().cloned()).collect();
        let meta = &included[batch[0]].meta;
        let body = folio_shard::encode(meta, &rows).map_err(|source| SnapshotError::Segment {
            key: key.clone(),
            source,
        })?;
        let bytes = body.len() as u64;
        store.put(&key, body.into(), PutMode::Overwrite).await?;
        for &position in &batch {
            manifest_shards[position].segment = Some(segments.len());
        }
        segments.push(SegmentInfo {
            key,
            bytes,
            rows: rows.len(),
            live_rows: rows.len(),
        });
    }
    Ok(segments)
}

/// Estimates the encoded size of rows: the f32 embedding plus the text columns.
fn estimated_row_bytes(rows: &[folio_shard::PageRow]) -> u64 {
    rows.iter()
        .map(|row| {
            let embedding = row.embedding.as_ref().map_or(0, |vector| vector.len() * 4);
            let text = row.document.len() + row.version.len() + row.sequencer.len() + row.error.as_ref().map_or(0, String::len);
            (embedding + text + 32) as u64
        })
        .sum()
}

/// Returns the id of the snapshot whose build wrote a segment, from its key.
fn segment_snapshot_id<'a>(layout: &Layout, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(&layout.index)?.strip_prefix("segments/")?.split('/').next()
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

/// Reads the pointer to the current snapshot, if there is one.
pub async fn current_pointer(store: &Store, layout: &Layout) -> Result<Option<CurrentSnapshot>, SnapshotError> {
    match read_json(store, &current_key(layout)).await {
        Ok(pointer) => Ok(Some(pointer)),
        Err(SnapshotError::Store(StoreError::NotFound { .. })) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Reads the manifest of the current snapshot, if there is one.
pub async fn current_manifest(store: &Store, layout: &Layout) -> Result<Option<Manifest>, SnapshotError> {
    match current_pointer(store, layout).await? {
        Some(pointer) => Ok(Some(read_json(store, &pointer.manifest).await?)),
        None => Ok(None),
    }
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
/// `keep` newest, so storage does not grow with every scheduled build, then
/// the segments that no remaining snapshot's manifest references.
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
    let mut remaining = Vec::new();
    for (position, id) in ids.iter().enumerate() {
        if position >= keep_from || *id == current.snapshot_id || id.as_str() > current.snapshot_id.as_str() {
            remaining.push(id);
            continue;
        }
        for object in objects.iter().filter(|object| object.key.starts_with(&format!("{prefix}{id}/"))) {
            store.delete(&object.key).await?;
            deleted += 1;
        }
    }

    let mut referenced: HashSet<String> = HashSet::new();
    for id in remaining {
        match read_json::<Manifest>(store, &format!("{prefix}{id}/manifest.json")).await {
            Ok(manifest) => referenced.extend(manifest.segments.into_iter().map(|segment| segment.key)),
            // A build in progress has written its parts but not its manifest yet.
            Err(SnapshotError::Store(StoreError::NotFound { .. })) => {}
            Err(error) => return Err(error),
        }
    }
    for object in store.list(&format!("{}segments/", layout.index)).await? {
        // Segments of builds newer than the current snapshot may still be in use by that build.
        let written_by = segment_snapshot_id(layout, &object.key).unwrap_or_default();
        if written_by <= current.snapshot_id.as_str() && !referenced.contains(&object.key) {
            store.delete(&object.key).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Deletes shard files that no reader needs any more, so listing the
/// vectors prefix stays proportional to the documents changed since the
/// last builds, not to all documents:
///
/// - shards and tombstones that a later entry of the same document replaced,
///   once that later entry is in `manifest` (listed or as a tombstone);
/// - shards older than the version of their document in `manifest`,
///   such as a late event for an old version;
/// - shards whose rows were already in the previous snapshot's segments
///   ([`IncludedShard::compacted_earlier`]), when `manifest` is the current
///   snapshot. Their file outlives the build that compacted them by one
///   build, so an engine still on the previous snapshot can read it until
///   its next refresh.
///
/// The latest tombstone of a document is kept, so a late event for a
/// deleted version is still recognised as stale.
pub async fn prune_superseded_shards(store: &Store, layout: &Layout, manifest: &Manifest) -> Result<usize, SnapshotError> {
    let in_snapshot: HashSet<&str> = manifest.shards.iter().map(|shard| shard.key.as_str()).collect();
    let tombstones: HashSet<&str> = manifest.tombstones.iter().map(String::as_str).collect();
    let is_current = current_manifest(store, layout)
        .await?
        .is_some_and(|current| current.snapshot_id == manifest.snapshot_id);
    let compacted_earlier: HashSet<&str> = if is_current {
        manifest
            .shards
            .iter()
            .filter(|shard| shard.segment.is_some() && shard.compacted_earlier)
            .map(|shard| shard.key.as_str())
            .collect()
    } else {
        HashSet::new()
    };
    // The sequencer of the snapshot's version of each document, by document hash.
    let snapshot_versions: HashMap<String, String> = live::resolve_current(layout, &Default::default(), Some(manifest))
        .into_iter()
        .map(|(hash, entry)| (hash, entry.sequencer))
        .collect();

    let groups = live::list_shards(store, layout).await?;
    let mut deleted = 0;
    for (hash, entries) in &groups {
        let Some(latest) = entries.last() else { continue };
        let settled = in_snapshot.contains(latest.key.as_str()) || tombstones.contains(latest.key.as_str());
        let snapshot_sequencer = snapshot_versions.get(hash);
        for (position, entry) in entries.iter().enumerate() {
            let replaced = position + 1 < entries.len() && settled;
            let older_than_snapshot = snapshot_sequencer.is_some_and(|sequencer| entry.sequencer < *sequencer);
            let compacted = !entry.tombstone && compacted_earlier.contains(entry.key.as_str());
            if replaced || older_than_snapshot || compacted {
                store.delete(&entry.key).await?;
                deleted += 1;
            }
        }
    }
    Ok(deleted)
}
