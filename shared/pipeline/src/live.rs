//! The live view of the shards: for each document key, the shard with the
//! greatest sequencer wins, so an overwrite replaces the old vectors and a
//! tombstone removes them, whatever order the events were processed in.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use folio_shard::{PageRow, PageStatus, ShardMeta};
use folio_store::{ObjectInfo, Store, StoreError};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::layout::{Layout, TOMBSTONE_SUFFIX, pad_sequencer};
use crate::snapshot::{self, Manifest, SnapshotError};

/// Shards fetched at once when loading the live set; S3 serves many
/// parallel GETs, and each shard is small.
const PARALLEL_READS: usize = 16;

/// One shard or tombstone, parsed from its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardEntry {
    pub key: String,
    pub etag: String,
    /// Folder name of the document: the first 16 hex digits of SHA-256 of its key.
    pub document_hash: String,
    /// Padded sequencer: compares as text in event order.
    pub sequencer: String,
    pub tombstone: bool,
}

/// Parses `vectors/docs/<hash>/<sequencer>-<version>.parquet`; other keys give `None`.
pub fn parse_shard_key(layout: &Layout, object: &ObjectInfo) -> Option<ShardEntry> {
    parse_key(layout, &object.key, &object.etag)
}

fn parse_key(layout: &Layout, key: &str, etag: &str) -> Option<ShardEntry> {
    let rest = key.strip_prefix(&layout.vectors)?.strip_prefix("docs/")?;
    let (hash, name) = rest.split_once('/')?;
    let (sequencer, tail) = name.split_once('-')?;
    if !tail.ends_with(".parquet") || hash.is_empty() || sequencer.is_empty() {
        return None;
    }
    Some(ShardEntry {
        key: key.to_owned(),
        etag: etag.to_owned(),
        document_hash: hash.to_owned(),
        sequencer: sequencer.to_owned(),
        tombstone: tail == TOMBSTONE_SUFFIX,
    })
}

/// Lists every shard, grouped by document folder, each group sorted by sequencer.
pub async fn list_shards(store: &Store, layout: &Layout) -> Result<BTreeMap<String, Vec<ShardEntry>>, StoreError> {
    let mut groups: BTreeMap<String, Vec<ShardEntry>> = BTreeMap::new();
    for object in store.list(&format!("{}docs/", layout.vectors)).await? {
        if let Some(entry) = parse_shard_key(layout, &object) {
            groups.entry(entry.document_hash.clone()).or_default().push(entry);
        }
    }
    for entries in groups.values_mut() {
        entries.sort_by(|a, b| a.sequencer.cmp(&b.sequencer).then(a.key.cmp(&b.key)));
    }
    Ok(groups)
}

/// The current entry of each document: the last one in sequencer order,
/// tombstones included (a tombstone means the document is gone).
pub fn current_entries(groups: &BTreeMap<String, Vec<ShardEntry>>) -> Vec<ShardEntry> {
    groups.values().filter_map(|entries| entries.last().cloned()).collect()
}

/// Resolves the current entry of each document, by document hash, and
/// counts the shards and tombstones of `manifest` as listed entries.
///
/// Once a snapshot's shards are compacted into segments their files are
/// pruned, so the manifest is the only record of those versions. A listed
/// entry wins over the manifest's only with a greater sequencer, which keeps
/// a late event for an older version from replacing compacted rows.
pub fn resolve_current(
    layout: &Layout,
    groups: &BTreeMap<String, Vec<ShardEntry>>,
    manifest: Option<&Manifest>,
) -> BTreeMap<String, ShardEntry> {
    let mut current: BTreeMap<String, ShardEntry> = groups
        .iter()
        .filter_map(|(hash, entries)| Some((hash.clone(), entries.last()?.clone())))
        .collect();
    let recorded = manifest.into_iter().flat_map(|manifest| {
        let shards = manifest.shards.iter().map(|shard| shard.key.as_str());
        shards.chain(manifest.tombstones.iter().map(String::as_str))
    });
    for key in recorded {
        let Some(entry) = parse_key(layout, key, "") else { continue };
        match current.get(&entry.document_hash) {
            Some(listed) if (&listed.sequencer, &listed.key) >= (&entry.sequencer, &entry.key) => {}
            _ => {
                current.insert(entry.document_hash.clone(), entry);
            }
        }
    }
    current
}

/// Finds the latest entry for one document, to skip work on a stale event.
// NOTE: only the document's folder is listed, and compaction prunes shard
// files. So a late event for a version older than a compacted one is
// embedded again, and its shard then loses to the snapshot's version in
// `resolve_current`.
pub async fn latest_entry(store: &Store, layout: &Layout, document: &str) -> Result<Option<ShardEntry>, StoreError> {
    let mut entries: Vec<ShardEntry> = store
        .list(&layout.document_shards(document))
        .await?
        .iter()
        .filter_map(|object| parse_shard_key(layout, object))
        .collect();
    entries.sort_by(|a, b| a.sequencer.cmp(&b.sequencer));
    Ok(entries.pop())
}

/// The rows of one live shard.
#[derive(Clone, Debug)]
pub struct LiveShard {
    pub entry: ShardEntry,
    pub meta: ShardMeta,
    pub rows: Vec<PageRow>,
    /// Key of the segment the rows were read from, or `None` when they
    /// were read from the shard file itself.
    pub segment: Option<String>,
}

impl LiveShard {
    /// Pages of this shard that have embeddings.
    pub fn embedded(&self) -> impl Iterator<Item = &PageRow> {
        self.rows.iter().filter(|row| row.status == PageStatus::Embedded)
    }
}

/// Errors from loading the live set.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{key}: unreadable shard: {source}")]
    Shard {
        key: String,
        #[source]
        source: folio_shard::ShardError,
    },
    #[error("cannot read the current snapshot's manifest: {0}")]
    Manifest(Box<SnapshotError>),
}

/// Reads the current shard of every document that is not deleted, from
/// the current snapshot's segments and from newer shard files.
pub async fn load_live(store: &Store, layout: &Layout) -> Result<Vec<LiveShard>, LiveError> {
    let manifest = snapshot::current_manifest(store, layout)
        .await
        .map_err(|error| LiveError::Manifest(Box::new(error)))?;
    Ok(load_current(store, layout, manifest.as_ref()).await?.shards)
}

/// The live rows of a store and what reading them cost.
#[derive(Clone, Debug, Default)]
pub struct LiveSet {
    /// Current shard of every document that is not deleted, in document-hash order.
    pub shards: Vec<LiveShard>,
    /// Documents whose current entry is a tombstone.
    pub tombstones: Vec<ShardEntry>,
    /// Shard files read (one GET each).
    pub shard_files_read: usize,
    /// Segment files read (one GET each).
    pub segments_read: usize,
}

/// Reads the current version of every document: rows that `manifest`
/// records in a segment come from that segment, all others from their
/// shard files. Each needed segment is read once.
pub async fn load_current(store: &Store, layout: &Layout, manifest: Option<&Manifest>) -> Result<LiveSet, LiveError> {
    let mut shards = Vec::new();
    let mut set = visit_current(store, layout, manifest, |shard| shards.push(shard)).await?;
    shards.sort_by(|a, b| a.entry.document_hash.cmp(&b.entry.document_hash));
    set.shards = shards;
    Ok(set)
}

/// Reads the current version of every document like [`load_current`], but
/// hands each shard to `visit` as soon as it is read instead of keeping it.
/// A caller that copies out what it needs then keeps only the few shards
/// being read, or one segment, in memory. Shards from files come first, in
/// document-hash order, then segments in manifest order. The returned set
/// has no shards.
pub async fn visit_current(
    store: &Store,
    layout: &Layout,
    manifest: Option<&Manifest>,
    mut visit: impl FnMut(LiveShard),
) -> Result<LiveSet, LiveError> {
    let groups = list_shards(store, layout).await?;
    let current = resolve_current(layout, &groups, manifest);

    // Shard key -> (segment position, document) for compacted shards.
    let compacted: HashMap<&str, (usize, &str)> = manifest
        .iter()
        .flat_map(|manifest| manifest.shards.iter())
        .filter_map(|shard| Some((shard.key.as_str(), (shard.segment?, shard.document.as_str()))))
        .collect();

    let mut set = LiveSet::default();
    let mut from_files = Vec::new();
    let mut by_segment: BTreeMap<usize, Vec<(ShardEntry, &str)>> = BTreeMap::new();
    for entry in current.into_values() {
        if entry.tombstone {
            set.tombstones.push(entry);
        } else if let Some(&(segment, document)) = compacted.get(entry.key.as_str()) {
            by_segment.entry(segment).or_default().push((entry, document));
        } else {
            from_files.push(entry);
        }
    }

    set.shard_files_read = from_files.len();
    let mut loaded = read_entries(store, from_files);
    while let Some(shard) = loaded.next().await {
        visit(shard?);
    }
    drop(loaded);

    let segments = manifest.map(|manifest| manifest.segments.as_slice()).unwrap_or_default();
    for (position, wanted) in by_segment {
        let Some(segment) = segments.get(position) else {
            // A manifest written by this crate never points past its segment list.
            return Err(LiveError::Shard {
                key: wanted[0].0.key.clone(),
                source: folio_shard::ShardError::Invalid(format!(
                    "the manifest names segment {position}, but lists only {} segments",
                    segments.len()
                )),
            });
        };
        let bytes = store.get(&segment.key).await?;
        let (meta, rows) = folio_shard::decode(bytes).map_err(|source| LiveError::Shard {
            key: segment.key.clone(),
            source,
        })?;
        set.segments_read += 1;
        let mut rows_by_version: HashMap<(String, String), Vec<PageRow>> = HashMap::new();
        for row in rows {
            let version = (row.document.clone(), pad_sequencer(&row.sequencer));
            rows_by_version.entry(version).or_default().push(row);
        }
        for (entry, document) in wanted {
            let Some(rows) = rows_by_version.remove(&(document.to_owned(), entry.sequencer.clone())) else {
                return Err(LiveError::Shard {
                    key: segment.key.clone(),
                    source: folio_shard::ShardError::Invalid(format!(
                        "the segment holds no rows of {}, which the manifest records in it; \
                         the segment file was changed or replaced after the build wrote it",
                        entry.key
                    )),
                });
            };
            visit(LiveShard {
                entry,
                meta: meta.clone(),
                rows,
                segment: Some(segment.key.clone()),
            });
        }
    }
    Ok(set)
}

/// Reads the given shards, in the given order.
pub async fn load_entries(store: &Store, entries: Vec<ShardEntry>) -> Result<Vec<LiveShard>, LiveError> {
    read_entries(store, entries).try_collect().await
}

/// Streams the given shards in the given order, a few reads ahead.
fn read_entries(store: &Store, entries: Vec<ShardEntry>) -> impl futures::Stream<Item = Result<LiveShard, LiveError>> + '_ {
    stream::iter(entries)
        .map(move |entry| async move {
            let bytes: Bytes = store.get(&entry.key).await?;
            let (meta, rows) = folio_shard::decode(bytes).map_err(|source| LiveError::Shard {
                key: entry.key.clone(),
                source,
            })?;
            Ok::<_, LiveError>(LiveShard {
                entry,
                meta,
                rows,
                segment: None,
            })
        })
        .buffered(PARALLEL_READS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::DocumentVersion;

    fn object(key: String) -> ObjectInfo {
        ObjectInfo {
            key,
            size: 1,
            etag: "e".into(),
            modified: None,
        }
    }

    #[test]
    fn parse_shard_key_reads_layout_names() {
        let layout = Layout::default();
        let version = DocumentVersion {
            document: "a.tif".into(),
            version: "v".into(),
            sequencer: "0A".into(),
        };
        let shard = parse_shard_key(&layout, &object(layout.shard_key(&version))).unwrap();
        assert!(!shard.tombstone);
        let tombstone = parse_shard_key(&layout, &object(layout.tombstone_key(&version))).unwrap();
        assert!(tombstone.tombstone);
        assert_eq!(shard.document_hash, tombstone.document_hash);
        assert!(parse_shard_key(&layout, &object("vectors/other.txt".into())).is_none());
    }

    fn manifest_with(shards: Vec<String>, tombstones: Vec<String>) -> Manifest {
        Manifest {
            snapshot_id: "000000000001-000000000".into(),
            created_at: 1,
            model_id: "m".into(),
            dims: 2,
            options: Default::default(),
            parts: Vec::new(),
            keymap: "index/snapshots/000000000001-000000000/keys.json".into(),
            shards: shards
                .into_iter()
                .map(|key| crate::snapshot::IncludedShard {
                    key,
                    document: "a.tif".into(),
                    pages: 1,
                    segment: Some(0),
                    compacted_earlier: false,
                })
                .collect(),
            documents: 1,
            pages: 1,
            failed_pages: 0,
            tombstones,
            skipped_shards: Vec::new(),
            build_seconds: 0.0,
            segments: Vec::new(),
            shard_files_read: 0,
            segments_read: 0,
        }
    }

    #[test]
    fn resolve_current_keeps_greater_sequencer() {
        let layout = Layout::default();
        let at = |sequencer: &str| DocumentVersion {
            document: "a.tif".into(),
            version: format!("v{sequencer}"),
            sequencer: sequencer.into(),
        };
        let listed = |keys: Vec<String>| -> BTreeMap<String, Vec<ShardEntry>> {
            let mut groups: BTreeMap<String, Vec<ShardEntry>> = BTreeMap::new();
            for key in keys {
                let entry = parse_shard_key(&layout, &object(key)).unwrap();
                groups.entry(entry.document_hash.clone()).or_default().push(entry);
            }
            groups
        };
        let compacted = manifest_with(vec![layout.shard_key(&at("0B"))], Vec::new());

        // The compacted version's file is gone; a late event for an older version is listed.
        let stale = listed(vec![layout.shard_key(&at("0A"))]);
        let current = resolve_current(&layout, &stale, Some(&compacted));
        assert_eq!(current.len(), 1);
        assert_eq!(current.values().next().unwrap().key, layout.shard_key(&at("0B")));

        // A later tombstone or overwrite wins over the compacted version.
        let deleted = listed(vec![layout.tombstone_key(&at("0C"))]);
        assert!(resolve_current(&layout, &deleted, Some(&compacted)).values().next().unwrap().tombstone);
        let overwritten = listed(vec![layout.shard_key(&at("0D"))]);
        let current = resolve_current(&layout, &overwritten, Some(&compacted));
        assert_eq!(current.values().next().unwrap().key, layout.shard_key(&at("0D")));

        // A manifest tombstone counts like a listed one.
        let gone = manifest_with(Vec::new(), vec![layout.tombstone_key(&at("0E"))]);
        let current = resolve_current(&layout, &overwritten, Some(&gone));
        assert!(current.values().next().unwrap().tombstone);
    }

    #[test]
    fn current_entries_take_latest_sequencer() {
        let layout = Layout::default();
        let at = |sequencer: &str| DocumentVersion {
            document: "a.tif".into(),
            version: format!("v{sequencer}"),
            sequencer: sequencer.into(),
        };
        let mut groups = BTreeMap::new();
        let mut entries = vec![
            parse_shard_key(&layout, &object(layout.tombstone_key(&at("0B")))).unwrap(),
            parse_shard_key(&layout, &object(layout.shard_key(&at("0A")))).unwrap(),
            parse_shard_key(&layout, &object(layout.shard_key(&at("0C")))).unwrap(),
        ];
        entries.sort_by(|a, b| a.sequencer.cmp(&b.sequencer));
        groups.insert(entries[0].document_hash.clone(), entries);
        let current = current_entries(&groups);
        assert_eq!(current.len(), 1);
        assert!(!current[0].tombstone);
        assert!(current[0].sequencer.ends_with("0C"));
    }
}
