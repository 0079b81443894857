//! Large objects against a real S3-compatible server: above the spill
//! threshold the ingest function streams the object into a temporary file,
//! maps it, and must store exactly the vectors of the in-memory path.

use std::sync::{Arc, OnceLock};

use aws_lambda_events::s3::S3Event;
use folio_e2e::{S3Server, create_bucket, event, event_record, upload};
use folio_pipeline::{Layout, PageEmbedder, live};
use folio_shard::{PageRow, PageStatus};
use folio_store::{Access, Spill, Store};
use ingest::{ACCESS_JSON, Ingest, RecordReport};

/// Loads the linked model once per test binary.
fn embedder() -> Arc<dyn PageEmbedder> {
    static EMBEDDER: OnceLock<Arc<folio_embed::Embedder>> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| Arc::new(folio_model::embedder().expect("the linked model loads")))
        .clone()
}

/// Builds an uncompressed 8-bit grayscale TIFF of `pages` pages of
/// `width` x `height`, each with a different stripe pattern so that the
/// pages embed to different vectors.
fn multipage_tiff(pages: u32, width: u32, height: u32) -> Vec<u8> {
    let pixels = width as usize * height as usize;
    let mut file = b"II\x2a\x00\x00\x00\x00\x00".to_vec();
    let mut previous_next_offset = 4usize;
    for page in 0..pages as usize {
        let strip_offset = file.len() as u32;
        let period = 6 + page * 5;
        file.extend((0..pixels).map(|i| {
            let (x, y) = (i % width as usize, i / width as usize);
            if (x + y * (page % 3)) % period < period / 3 { 0 } else { 255 }
        }));
        let ifd_offset = file.len() as u32;
        file[previous_next_offset..previous_next_offset + 4].copy_from_slice(&ifd_offset.to_le_bytes());
        let entries: [(u16, u16, u32); 9] = [
            (256, 4, width),
            (257, 4, height),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, strip_offset),
            (277, 3, 1),
            (278, 4, height),
            (279, 4, pixels as u32),
        ];
        file.extend((entries.len() as u16).to_le_bytes());
        for (tag, kind, value) in entries {
            file.extend(tag.to_le_bytes());
            file.extend(kind.to_le_bytes());
            file.extend(1u32.to_le_bytes());
            file.extend(value.to_le_bytes());
        }
        previous_next_offset = file.len();
        file.extend(0u32.to_le_bytes());
    }
    file
}

struct Fixture {
    _server: S3Server,
    client: aws_sdk_s3::Client,
    bucket: String,
    layout: Layout,
}

impl Fixture {
    async fn new(bucket: &str) -> Option<Fixture> {
        let server = S3Server::start()?;
        let client = server.client().await;
        create_bucket(&client, bucket, true).await;
        Some(Fixture {
            _server: server,
            client,
            bucket: bucket.to_owned(),
            layout: Layout::default(),
        })
    }

    /// Builds the function's state with the given spill settings and decoder limits.
    fn ingest(&self, spill: Spill, limits: folio_pages::Limits) -> Ingest {
        let access = Access::from_json(ACCESS_JSON, |name| self.layout.prefix_for_variable(name)).unwrap();
        let client = self.client.clone();
        Ingest {
            store_for_bucket: Box::new(move |bucket| {
                Store::from_s3_client(client.clone(), bucket, "")
                    .with_access(access.clone())
                    .with_spill(spill.clone())
            }),
            layout: self.layout.clone(),
            embedder: embedder(),
            limits,
            batch: 2,
        }
    }

    async fn put(&self, document: &str, body: Vec<u8>, sequencer: &str) -> serde_json::Value {
        let key = format!("{}{document}", self.layout.scans);
        let uploaded = upload(&self.client, &self.bucket, &key, body).await;
        event_record(
            &self.bucket,
            "ObjectCreated:Put",
            &key,
            uploaded.size,
            &uploaded.etag,
            uploaded.version_id.as_deref(),
            sequencer,
        )
    }

    async fn deliver(&self, ingest: &Ingest, record: serde_json::Value) -> RecordReport {
        let event: S3Event = serde_json::from_value(event(vec![record])).expect("the event has AWS's shape");
        let mut reports = ingest.handle_event(&event).await.expect("no transient failure");
        assert_eq!(reports.len(), 1);
        reports.remove(0)
    }

    /// Returns the live rows of one document, by page.
    async fn rows_of(&self, document: &str) -> Vec<PageRow> {
        let store = Store::from_s3_client(self.client.clone(), &self.bucket, "");
        let mut rows: Vec<PageRow> = live::load_live(&store, &self.layout)
            .await
            .unwrap()
            .into_iter()
            .flat_map(|shard| shard.rows)
            .filter(|row| row.document == document)
            .collect();
        rows.sort_by_key(|row| row.page);
        rows
    }
}

fn spill_above(threshold_bytes: u64) -> Spill {
    Spill {
        threshold_bytes,
        ..Spill::default()
    }
}

#[tokio::test]
async fn spilled_object_matches_memory_vectors() {
    let Some(fixture) = Fixture::new("spill-vectors").await else { return };
    // 5 pages of 600x800: 2.4 MB, above a 1 MiB threshold.
    let body = multipage_tiff(5, 600, 800);
    assert!(body.len() > 1 << 20);
    let spilling = fixture.ingest(spill_above(1 << 20), folio_pages::Limits::default());
    let in_memory = fixture.ingest(spill_above(u64::MAX), folio_pages::Limits::default());

    let record = fixture.put("large.tif", body.clone(), "0100").await;
    let report = fixture.deliver(&spilling, record).await;
    let RecordReport::Embedded { pages_embedded, spilled, object_bytes, .. } = report else {
        panic!("expected an embedded object, got {report:?}");
    };
    assert!(spilled, "an object above the threshold goes through a temporary file");
    assert_eq!(object_bytes, body.len() as u64);
    assert_eq!(pages_embedded, 5);

    let record = fixture.put("same.tif", body, "0101").await;
    let report = fixture.deliver(&in_memory, record).await;
    assert!(matches!(report, RecordReport::Embedded { spilled: false, pages_embedded: 5, .. }), "{report:?}");

    let spilled_rows = fixture.rows_of("large.tif").await;
    let memory_rows = fixture.rows_of("same.tif").await;
    assert_eq!(spilled_rows.len(), 5);
    assert_eq!(memory_rows.len(), 5);
    for (spilled, memory) in spilled_rows.iter().zip(&memory_rows) {
        assert_eq!(spilled.page, memory.page);
        assert_eq!(spilled.status, PageStatus::Embedded);
        assert_eq!(spilled.embedding, memory.embedding, "page {}: the vectors differ", spilled.page);
    }
    // The pages differ from each other, so equal vectors are not a coincidence.
    assert_ne!(spilled_rows[0].embedding, spilled_rows[1].embedding);
}

#[tokio::test]
async fn small_object_stays_in_memory() {
    let Some(fixture) = Fixture::new("spill-small").await else { return };
    let ingest = fixture.ingest(Spill::default(), folio_pages::Limits::default());
    let record = fixture.put("small.tif", multipage_tiff(1, 64, 64), "0200").await;
    let report = fixture.deliver(&ingest, record).await;
    assert!(matches!(report, RecordReport::Embedded { spilled: false, pages_embedded: 1, .. }), "{report:?}");
}

#[tokio::test]
async fn spilled_object_may_exceed_memory_limit() {
    let Some(fixture) = Fixture::new("spill-limit").await else { return };
    // The decoder's in-memory limit is 1 MiB, the object 2.4 MB: spilled,
    // it is checked against the store's larger limit instead.
    let limits = folio_pages::Limits {
        max_object_bytes: 1 << 20,
        ..folio_pages::Limits::default()
    };
    let spilling = fixture.ingest(spill_above(1 << 20), limits.clone());
    let record = fixture.put("spilled.tif", multipage_tiff(5, 600, 800), "0300").await;
    let report = fixture.deliver(&spilling, record).await;
    assert!(matches!(report, RecordReport::Embedded { spilled: true, pages_embedded: 5, .. }), "{report:?}");

    // Read into memory, the same object is over the decoder's limit.
    let in_memory = fixture.ingest(spill_above(u64::MAX), limits);
    let record = fixture.put("memory.tif", multipage_tiff(5, 600, 800), "0301").await;
    let report = fixture.deliver(&in_memory, record).await;
    let RecordReport::Embedded { object_error: Some(error), .. } = &report else {
        panic!("expected an object error, got {report:?}");
    };
    assert!(error.contains("max_object_bytes"), "{error}");
}

#[tokio::test]
async fn object_above_max_is_recorded() {
    let Some(fixture) = Fixture::new("spill-max").await else { return };
    let spill = Spill {
        threshold_bytes: 1 << 20,
        max_object_bytes: 2 << 20,
        ..Spill::default()
    };
    let ingest = fixture.ingest(spill, folio_pages::Limits::default());
    let body = multipage_tiff(8, 600, 800);
    let size = body.len();
    let record = fixture.put("huge.tif", body, "0400").await;
    let report = fixture.deliver(&ingest, record).await;
    let RecordReport::Embedded { pages_embedded, object_error: Some(error), object_bytes, spilled, .. } = &report else {
        panic!("expected an object error, got {report:?}");
    };
    assert_eq!(*pages_embedded, 0);
    assert!(!spilled, "the body is not read at all");
    assert_eq!(*object_bytes, size as u64);
    assert!(error.contains(&size.to_string()), "the error names the size: {error}");
    assert!(error.contains("FOLIO_MAX_OBJECT_BYTES"), "the error names the setting: {error}");

    let store = Store::from_s3_client(fixture.client.clone(), &fixture.bucket, "");
    let errors = folio_pipeline::ingest::list_errors(&store, &fixture.layout).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].document, "huge.tif");
}
