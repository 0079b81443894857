//! The ingest function: S3 upload and delete events to page-vector shards.
//!
//! S3 invokes it for `ObjectCreated:*` and `ObjectRemoved:*` under the scans
//! prefix. For each record it decodes the object's pages, embeds them and
//! writes one shard named after (document, sequencer, version), or writes a
//! tombstone for a deletion. Delivery is at least once and events for one
//! key may arrive out of order; the work is idempotent and ordered by the
//! event sequencer:
//!
//! - a repeated event finds its shard already listed and does nothing;
//! - an event older than the document's latest shard or tombstone is stale
//!   and skipped (a put that raced a later delete loses, and vice versa);
//! - shards are written with a create-only condition.
//!
//! Bad input (an unreadable object or page) is recorded and never retried;
//! transient storage errors fail the invocation so that Lambda retries it.
//!
//! # Example
//!
//! ```no_run
//! # async fn run(ingest: &ingest::Ingest, event: aws_lambda_events::s3::S3Event) {
//! let reports = ingest.handle_event(&event).await.unwrap();
//! for report in reports {
//!     println!("{report:?}");
//! }
//! # }
//! ```

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use folio_pages::ObjectBytes;
use folio_pipeline::ingest::EmbeddedObject;
use folio_pipeline::{DocumentVersion, Layout, PageEmbedder, ingest, live};
use folio_store::{ObjectBody, Spill, Store};

/// Access granted to this function, checked on every store operation; the
/// deployment template's IAM policy is tested against the same file.
pub const ACCESS_JSON: &str = include_str!("../access.json");

/// Environment variable that sets [`Spill::threshold_bytes`], in bytes.
pub const ENV_SPILL_BYTES: &str = "FOLIO_SPILL_BYTES";
/// Environment variable that sets [`Spill::max_object_bytes`], in bytes.
pub const ENV_MAX_OBJECT_BYTES: &str = "FOLIO_MAX_OBJECT_BYTES";

/// A spill setting that is not a whole number of bytes.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable}={value:?}: expected a whole number of bytes, such as 67108864 for 64 MiB")]
pub struct InvalidSpillSetting {
    pub variable: &'static str,
    pub value: String,
}

/// Reads the spill settings from [`ENV_SPILL_BYTES`] (default
/// 64 MiB) and [`ENV_MAX_OBJECT_BYTES`] (default 2 GiB), spilling into the
/// system temporary directory (`/tmp` on Lambda).
pub fn spill_from_env() -> Result<Spill, InvalidSpillSetting> {
    let read = |variable: &'static str, default: u64| match std::env::var(variable) {
        Ok(value) => value.trim().parse::<u64>().map_err(|_| InvalidSpillSetting { variable, value }),
        Err(_) => Ok(default),
    };
    Ok(Spill {
        threshold_bytes: read(ENV_SPILL_BYTES, folio_store::DEFAULT_SPILL_BYTES)?,
        max_object_bytes: read(ENV_MAX_OBJECT_BYTES, folio_store::DEFAULT_MAX_OBJECT_BYTES)?,
        dir: std::env::temp_dir(),
    })
}

/// Outcome of one event record.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RecordReport {
    Embedded {
        document: String,
        shard: String,
        pages_embedded: u32,
        pages_failed: u32,
        /// Set when the object could not be read at all.
        object_error: Option<String>,
        /// Size of the object.
        object_bytes: u64,
        /// Whether the object was streamed to a temporary file rather than read into memory.
        spilled: bool,
        ms: u64,
    },
    Deleted { document: String, tombstone: String },
    /// The same event was already processed.
    Duplicate { document: String },
    /// A later event for the same key was already processed.
    Stale { document: String, sequencer: String, latest: String },
    /// The object was gone when read: a later delete or overwrite will be (or was) processed.
    Vanished { document: String },
    /// The key is outside the scans prefix, or the event is of another kind.
    Ignored { key: String, reason: String },
}

/// Errors that fail the invocation so that Lambda retries it.
#[derive(Debug, thiserror::Error)]
pub enum IngestFailure {
    #[error("{document}: {source}")]
    Store {
        document: String,
        #[source]
        source: folio_store::StoreError,
    },
    #[error("{document}: {source}")]
    Ingest {
        document: String,
        #[source]
        source: ingest::IngestError,
    },
    #[error("{document}: the embedding task failed: {reason}")]
    Task { document: String, reason: String },
}

/// Opens the store of a bucket named in an event, restricted to the function's access.
pub type StoreForBucket = Box<dyn Fn(&str) -> Store + Send + Sync>;

/// The function's state, built once per container.
pub struct Ingest {
    pub store_for_bucket: StoreForBucket,
    pub layout: Layout,
    pub embedder: Arc<dyn PageEmbedder>,
    pub limits: folio_pages::Limits,
    pub batch: usize,
}

/// Decodes an S3 event key: `+` stands for a space, then `%XX` escapes
/// (UTF-8) are decoded. S3 sends keys this way and leaves
/// `urlDecodedKey` empty.
pub fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Event kind, from `eventName` such as `ObjectCreated:Put` or `ObjectRemoved:DeleteMarkerCreated`.
fn is_created(name: &str) -> Option<bool> {
    if name.starts_with("ObjectCreated:") {
        Some(true)
    } else if name.starts_with("ObjectRemoved:") {
        Some(false)
    } else {
        None
    }
}

impl Ingest {
    /// Processes every record of an event in order. A record of bad input
    /// is reported, not failed; the first transient failure stops the
    /// event and is returned, so Lambda retries it (finished records are
    /// then duplicates and cost one listing each).
    pub async fn handle_event(&self, event: &S3Event) -> Result<Vec<RecordReport>, IngestFailure> {
        let mut reports = Vec::with_capacity(event.records.len());
        for record in &event.records {
            let report = self.handle_record(record).await?;
            tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "record processed");
            reports.push(report);
        }
        Ok(reports)
    }

    pub async fn handle_record(&self, record: &S3EventRecord) -> Result<RecordReport, IngestFailure> {
        let raw_key = record.s3.object.key.clone().unwrap_or_default();
        let key = decode_key(&raw_key);
        let event_name = record.event_name.clone().unwrap_or_default();
        let Some(created) = is_created(&event_name) else {
            return Ok(RecordReport::Ignored {
                key,
                reason: format!("event {event_name:?} is neither ObjectCreated nor ObjectRemoved"),
            });
        };
        let Some(document) = self.layout.document_of_scan(&key).map(str::to_owned) else {
            return Ok(RecordReport::Ignored {
                key,
                reason: format!("the key is outside the scans prefix {:?}", self.layout.scans),
            });
        };
        let Some(bucket) = record.s3.bucket.name.as_deref().filter(|name| !name.is_empty()) else {
            return Ok(RecordReport::Ignored {
                key,
                reason: "the record names no bucket".to_owned(),
            });
        };
        let store = (self.store_for_bucket)(bucket);
        let object = &record.s3.object;
        let version = DocumentVersion {
            document: document.clone(),
            // Unversioned buckets send no version id; the ETag then names the content.
            version: object
                .version_id
                .clone()
                .filter(|id| !id.is_empty() && id != "null")
                .or_else(|| object.e_tag.clone())
                .unwrap_or_else(|| "unversioned".to_owned()),
            sequencer: object.sequencer.clone().unwrap_or_default(),
        };

        let store_failure = |source| IngestFailure::Store {
            document: document.clone(),
            source,
        };
        let latest = live::latest_entry(&store, &self.layout, &document)
            .await
            .map_err(store_failure)?;
        let own_key = if created {
            self.layout.shard_key(&version)
        } else {
            self.layout.tombstone_key(&version)
        };
        if let Some(latest) = &latest {
            if latest.key == own_key {
                return Ok(RecordReport::Duplicate { document });
            }
            let ours = folio_pipeline::layout::pad_sequencer(&version.sequencer);
            if latest.sequencer > ours {
                return Ok(RecordReport::Stale {
                    document,
                    sequencer: ours,
                    latest: latest.sequencer.clone(),
                });
            }
        }

        let meta = folio_pipeline::shard_meta(self.embedder.as_ref());
        if !created {
            let stored = ingest::record_deletion(&store, &self.layout, &meta, &version)
                .await
                .map_err(|source| IngestFailure::Ingest {
                    document: document.clone(),
                    source,
                })?;
            return Ok(RecordReport::Deleted {
                document,
                tombstone: stored.key,
            });
        }

        let started = Instant::now();
        let (embedded, object_bytes, spilled) = match store.get_object(&key).await {
            Ok(body) => {
                let object_bytes = body.len() as u64;
                let spilled = body.is_spilled();
                let embedded = self.embed(&store, &version, body).await?;
                (embedded, object_bytes, spilled)
            }
            Err(folio_store::StoreError::NotFound { .. }) => return Ok(RecordReport::Vanished { document }),
            // An object above the limit is bad input, like an unreadable file: recorded, never retried.
            Err(error @ folio_store::StoreError::TooLarge { size, .. }) => {
                (EmbeddedObject::unreadable(&version, error.to_string()), size, false)
            }
            Err(error) => return Err(store_failure(error)),
        };
        let stored = ingest::store_object(&store, &self.layout, &meta, &version, &embedded)
            .await
            .map_err(|source| IngestFailure::Ingest {
                document: document.clone(),
                source,
            })?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        emit_metrics(&document, embedded.pages_embedded, embedded.pages_failed(), elapsed_ms);
        if stored.already_present {
            return Ok(RecordReport::Duplicate { document });
        }
        for error in embedded.page_errors.iter().chain(&embedded.object_error) {
            tracing::warn!(document = %document, error = %error, "page or object failed");
        }
        Ok(RecordReport::Embedded {
            document,
            shard: stored.key,
            pages_embedded: embedded.pages_embedded,
            pages_failed: embedded.pages_failed(),
            object_error: embedded.object_error.clone(),
            object_bytes,
            spilled,
            ms: elapsed_ms,
        })
    }

    /// Decodes and embeds one object's pages on a blocking thread, because
    /// the work is CPU-bound. A spilled object may be as large as the
    /// store's [`folio_store::Spill::max_object_bytes`] rather than the
    /// decoder's in-memory limit: it is a file-backed map, and pages are
    /// decoded one at a time, so memory does not grow with its size.
    async fn embed(&self, store: &Store, version: &DocumentVersion, body: ObjectBody) -> Result<EmbeddedObject, IngestFailure> {
        let mut limits = self.limits.clone();
        if body.is_spilled() {
            limits.max_object_bytes = limits.max_object_bytes.max(store.spill().max_object_bytes);
        }
        let embedder = self.embedder.clone();
        let batch = self.batch;
        let task_version = version.clone();
        tokio::task::spawn_blocking(move || {
            let bytes = ObjectBytes::from_owner(body);
            ingest::embed_object_bytes(embedder.as_ref(), &limits, &task_version, bytes, batch, &mut |_| {})
        })
        .await
        .map_err(|error| IngestFailure::Task {
            document: version.document.clone(),
            reason: error.to_string(),
        })
    }
}

/// Prints one CloudWatch Embedded Metric Format record: CloudWatch turns
/// this log line into the metrics PagesEmbedded, PagesFailed and MsPerPage.
pub fn emit_metrics(document: &str, pages_embedded: u32, pages_failed: u32, elapsed_ms: u64) {
    println!("{}", metrics_record(document, pages_embedded, pages_failed, elapsed_ms, now_ms()));
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |duration| duration.as_millis() as u64)
}

/// Builds the Embedded Metric Format JSON for one object.
pub fn metrics_record(document: &str, pages_embedded: u32, pages_failed: u32, elapsed_ms: u64, timestamp_ms: u64) -> String {
    let pages = pages_embedded + pages_failed;
    let ms_per_page = if pages > 0 { elapsed_ms as f64 / f64::from(pages) } else { 0.0 };
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Folio",
                "Dimensions": [["Function"]],
                "Metrics": [
                    {"Name": "PagesEmbedded", "Unit": "Count"},
                    {"Name": "PagesFailed", "Unit": "Count"},
                    {"Name": "MsPerPage", "Unit": "Milliseconds"}
                ]
            }]
        },
        "Function": "ingest",
        "PagesEmbedded": pages_embedded,
        "PagesFailed": pages_failed,
        "MsPerPage": ms_per_page,
        "document": document,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_key_handles_plus_and_unicode() {
        assert_eq!(decode_key("scans/a+memo+%2B1.tif"), "scans/a memo +1.tif");
        assert_eq!(decode_key("scans/caf%C3%A9/%E6%96%87.pdf"), "scans/café/文.pdf");
        assert_eq!(decode_key("scans/deep/er/x.png"), "scans/deep/er/x.png");
    }

    #[test]
    fn metrics_record_is_emf() {
        let record: serde_json::Value = serde_json::from_str(&metrics_record("a.tif", 3, 1, 400, 7)).unwrap();
        assert_eq!(record["_aws"]["Timestamp"], 7);
        assert_eq!(record["PagesEmbedded"], 3);
        assert_eq!(record["MsPerPage"], 100.0);
    }

    #[test]
    fn event_kinds_are_recognised() {
        assert_eq!(is_created("ObjectCreated:CompleteMultipartUpload"), Some(true));
        assert_eq!(is_created("ObjectRemoved:DeleteMarkerCreated"), Some(false));
        assert_eq!(is_created("ObjectRestore:Post"), None);
    }
}
