//! The live view of the shards: for each document key, the shard with the
//! greatest sequencer wins, so an overwrite replaces the old vectors and a
//! tombstone removes them, whatever order the events were processed in.

use std::collections::BTreeMap;

use bytes::Bytes;
use folio_shard::{PageRow, PageStatus, ShardMeta};
use folio_store::{ObjectInfo, Store, StoreError};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::layout::{Layout, TOMBSTONE_SUFFIX};

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
    let rest = object.key.strip_prefix(&layout.vectors)?.strip_prefix("docs/")?;
    let (hash, name) = rest.split_once('/')?;
    let (sequencer, tail) = name.split_once('-')?;
    if !tail.ends_with(".parquet") || hash.is_empty() || sequencer.is_empty() {
        return None;
    }
    Some(ShardEntry {
        key: object.key.clone(),
        etag: object.etag.clone(),
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

/// Finds the latest entry for one document, to skip work on a stale event.
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
}

/// Reads the current shard of every document that is not deleted.
pub async fn load_live(store: &Store, layout: &Layout) -> Result<Vec<LiveShard>, LiveError> {
    let groups = list_shards(store, layout).await?;
    let entries: Vec<ShardEntry> = current_entries(&groups).into_iter().filter(|entry| !entry.tombstone).collect();
    load_entries(store, entries).await
}

/// Reads the given shards, in the given order.
pub async fn load_entries(store: &Store, entries: Vec<ShardEntry>) -> Result<Vec<LiveShard>, LiveError> {
    stream::iter(entries)
        .map(|entry| async move {
            let bytes: Bytes = store.get(&entry.key).await?;
            let (meta, rows) = folio_shard::decode(bytes).map_err(|source| LiveError::Shard {
                key: entry.key.clone(),
                source,
            })?;
            Ok::<_, LiveError>(LiveShard { entry, meta, rows })
        })
        .buffered(PARALLEL_READS)
        .try_collect()
        .await
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
