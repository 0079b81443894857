//! Object -> pages -> embeddings -> shard: the work of the ingest function
//! and of `folio ingest`.

use std::time::Instant;

use bytes::Bytes;
use folio_pages::{Limits, ObjectBytes, Page};
use folio_shard::{PageRow, ShardMeta};
use folio_store::{PutMode, Store, StoreError};

use crate::embedder::PageEmbedder;
use crate::layout::{DocumentVersion, Layout};

/// Pages embedded together; BiT's cost per page barely changes with the
/// batch on CPU, so a small batch keeps at most this many decoded pages in
/// memory.
pub const DEFAULT_BATCH: usize = 4;

/// Result of embedding one object.
#[derive(Debug, Default)]
pub struct EmbeddedObject {
    /// One row per page (embedded or failed), or one page-0 row when the object could not be read.
    pub rows: Vec<PageRow>,
    pub pages_embedded: u32,
    /// "page N: reason" for every page that failed.
    pub page_errors: Vec<String>,
    /// Reason the object as a whole could not be read, if it could not.
    pub object_error: Option<String>,
    pub decode_ms: f64,
    pub embed_ms: f64,
}

impl EmbeddedObject {
    pub fn pages_failed(&self) -> u32 {
        self.page_errors.len() as u32
    }

    /// Builds the result of an object that could not be read at all: one
    /// failed row with page number 0 that carries `reason`.
    pub fn unreadable(document: &DocumentVersion, reason: String) -> EmbeddedObject {
        EmbeddedObject {
            rows: vec![PageRow::failed(
                &document.document,
                &document.version,
                &document.sequencer,
                0,
                reason.clone(),
            )],
            object_error: Some(reason),
            ..EmbeddedObject::default()
        }
    }
}

/// Decodes every page of one object held in memory and embeds it; see
/// [`embed_object_bytes`], which this calls without copying `bytes`.
pub fn embed_object(
    embedder: &dyn PageEmbedder,
    limits: &Limits,
    document: &DocumentVersion,
    bytes: Bytes,
    batch_size: usize,
    progress: &mut dyn FnMut(u32),
) -> EmbeddedObject {
    embed_object_bytes(embedder, limits, document, ObjectBytes::from_owner(bytes), batch_size, progress)
}

/// Decodes every page of one object and embeds it, in batches of
/// `batch_size`. Never fails as a whole: a broken page becomes a failed row
/// and the other pages are kept; an unreadable object becomes one failed
/// row with page number 0. `progress` is called after each page.
///
/// `bytes` may be a memory map of a spilled object: pages are decoded one
/// at a time, so memory contains the container's index, at most `batch_size`
/// decoded pages and whichever mapped pages of the file the kernel keeps.
pub fn embed_object_bytes(
    embedder: &dyn PageEmbedder,
    limits: &Limits,
    document: &DocumentVersion,
    bytes: ObjectBytes,
    batch_size: usize,
    progress: &mut dyn FnMut(u32),
) -> EmbeddedObject {
    let started = Instant::now();
    let pages = match folio_pages::open(&document.document, bytes, limits) {
        Ok(pages) => pages,
        Err(error) => {
            let mut result = EmbeddedObject::unreadable(document, error.to_string());
            result.decode_ms = started.elapsed().as_secs_f64() * 1e3;
            return result;
        }
    };
    let mut result = EmbeddedObject::default();

    let mut batch: Vec<Page> = Vec::with_capacity(batch_size.max(1));
    let mut decode_started = Instant::now();
    for (index, page) in pages.enumerate() {
        match page {
            Ok(page) => batch.push(page),
            Err(error) => {
                let number = error.page.unwrap_or(index as u32 + 1);
                let reason = error.to_string();
                result.page_errors.push(reason.clone());
                result.rows.push(PageRow::failed(
                    &document.document,
                    &document.version,
                    &document.sequencer,
                    number,
                    reason,
                ));
                progress(1);
            }
        }
        if batch.len() >= batch_size.max(1) {
            result.decode_ms += decode_started.elapsed().as_secs_f64() * 1e3;
            embed_batch(embedder, document, &mut batch, &mut result, progress);
            decode_started = Instant::now();
        }
    }
    result.decode_ms += decode_started.elapsed().as_secs_f64() * 1e3;
    embed_batch(embedder, document, &mut batch, &mut result, progress);
    result.rows.sort_by_key(|row| row.page);
    result
}

fn embed_batch(
    embedder: &dyn PageEmbedder,
    document: &DocumentVersion,
    batch: &mut Vec<Page>,
    result: &mut EmbeddedObject,
    progress: &mut dyn FnMut(u32),
) {
    if batch.is_empty() {
        return;
    }
    let started = Instant::now();
    let images: Vec<&image::DynamicImage> = batch.iter().map(|page| &page.image).collect();
    let embedded = embedder.embed_pages(&images);
    result.embed_ms += started.elapsed().as_secs_f64() * 1e3;
    match embedded {
        Ok(vectors) => {
            for (page, vector) in batch.iter().zip(vectors) {
                result.rows.push(PageRow::embedded(
                    &document.document,
                    &document.version,
                    &document.sequencer,
                    page.number,
                    (page.source_width, page.source_height),
                    page.dpi,
                    vector,
                ));
                result.pages_embedded += 1;
            }
        }
        Err(error) => {
            for page in batch.iter() {
                let reason = format!("{} page {}: embedding failed: {error}", document.document, page.number);
                result.page_errors.push(reason.clone());
                result.rows.push(PageRow::failed(
                    &document.document,
                    &document.version,
                    &document.sequencer,
                    page.number,
                    reason,
                ));
            }
        }
    }
    progress(batch.len() as u32);
    batch.clear();
}

/// Record of an object that could not be read at all, stored as JSON under the errors prefix.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorRecord {
    pub document: String,
    pub version: String,
    pub sequencer: String,
    pub error: String,
    /// Seconds since the Unix epoch when the error was recorded.
    pub recorded_at: u64,
}

/// Location of a stored shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredShard {
    pub key: String,
    /// True when the same shard was already there (a repeated event or a retry).
    pub already_present: bool,
}

/// Errors from storing ingest results.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{document}: cannot encode the shard: {source}")]
    Shard {
        document: String,
        #[source]
        source: folio_shard::ShardError,
    },
}

impl IngestError {
    /// Returns whether the same work may succeed later (transient storage failures only).
    pub fn is_retryable(&self) -> bool {
        match self {
            IngestError::Store(error) => error.is_retryable(),
            IngestError::Shard { .. } => false,
        }
    }
}

/// Writes the shard of one embedded object, and an error record when the
/// object could not be read. The shard is written with a create-only
/// condition: when it already exists, nothing is written twice.
pub async fn store_object(
    store: &Store,
    layout: &Layout,
    meta: &ShardMeta,
    document: &DocumentVersion,
    embedded: &EmbeddedObject,
) -> Result<StoredShard, IngestError> {
    let key = layout.shard_key(document);
    let body = folio_shard::encode(meta, &embedded.rows).map_err(|source| IngestError::Shard {
        document: document.document.clone(),
        source,
    })?;
    let already_present = create(store, &key, body.into()).await?;

    if let Some(error) = &embedded.object_error {
        let record = ErrorRecord {
            document: document.document.clone(),
            version: document.version.clone(),
            sequencer: document.sequencer.clone(),
            error: error.clone(),
            recorded_at: unix_now(),
        };
        let body = serde_json::to_vec_pretty(&record).expect("an error record always serialises");
        create(store, &layout.error_key(document), body.into()).await?;
    }
    Ok(StoredShard { key, already_present })
}

/// Writes the tombstone of a deleted document key.
pub async fn record_deletion(
    store: &Store,
    layout: &Layout,
    meta: &ShardMeta,
    document: &DocumentVersion,
) -> Result<StoredShard, IngestError> {
    let key = layout.tombstone_key(document);
    let rows = [PageRow::tombstone(&document.document, &document.version, &document.sequencer)];
    let body = folio_shard::encode(meta, &rows).map_err(|source| IngestError::Shard {
        document: document.document.clone(),
        source,
    })?;
    let already_present = create(store, &key, body.into()).await?;
    Ok(StoredShard { key, already_present })
}

/// Create-only write; returns whether the object was already there.
async fn create(store: &Store, key: &str, body: Bytes) -> Result<bool, StoreError> {
    match store.put(key, body, PutMode::Create).await {
        Ok(()) => Ok(false),
        Err(StoreError::AlreadyExists { .. }) => Ok(true),
        Err(error) => Err(error),
    }
}

/// Lists the records of objects that could not be read at all.
pub async fn list_errors(store: &Store, layout: &Layout) -> Result<Vec<ErrorRecord>, StoreError> {
    let mut records = Vec::new();
    for object in store.list(&layout.errors).await? {
        let body = store.get(&object.key).await?;
        match serde_json::from_slice::<ErrorRecord>(&body) {
            Ok(record) => records.push(record),
            Err(error) => tracing::warn!(key = %object.key, %error, "skipping an unreadable error record"),
        }
    }
    records.sort_by(|a, b| a.document.cmp(&b.document).then(a.sequencer.cmp(&b.sequencer)));
    Ok(records)
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |duration| duration.as_secs())
}
