//! The ingest function against a real S3-compatible server: S3 event JSON
//! of the shape AWS sends, the linked BiT model, and the function's own
//! access policy enforced on every store call.

use std::sync::{Arc, OnceLock};

use aws_lambda_events::s3::S3Event;
use folio_e2e::{S3Server, create_bucket, event, event_record, samples, upload};
use folio_pipeline::search::SearchEngine;
use folio_pipeline::{Layout, PageEmbedder, live};
use folio_shard::PageStatus;
use folio_store::{Access, Store};
use ingest::{ACCESS_JSON, Ingest, RecordReport};

/// Loads the linked model once per test binary.
fn embedder() -> Arc<dyn PageEmbedder> {
    static EMBEDDER: OnceLock<Arc<folio_embed::Embedder>> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| Arc::new(folio_model::embedder().expect("the linked model loads")))
        .clone()
}

struct Fixture {
    _server: S3Server,
    client: aws_sdk_s3::Client,
    bucket: String,
    ingest: Ingest,
    layout: Layout,
}

impl Fixture {
    async fn new(bucket: &str) -> Option<Fixture> {
        let server = S3Server::start()?;
        let client = server.client().await;
        create_bucket(&client, bucket, true).await;
        let layout = Layout::default();
        let access = Access::from_json(ACCESS_JSON, |name| layout.prefix_for_variable(name)).unwrap();
        let factory_client = client.clone();
        let ingest = Ingest {
            store_for_bucket: Box::new(move |bucket| {
                Store::from_s3_client(factory_client.clone(), bucket, "").with_access(access.clone())
            }),
            layout: layout.clone(),
            embedder: embedder(),
            limits: folio_pages::Limits::default(),
            batch: 2,
        };
        Some(Fixture {
            _server: server,
            client,
            bucket: bucket.to_owned(),
            ingest,
            layout,
        })
    }

    /// Opens an unrestricted store over the same bucket, for checking results.
    fn store(&self) -> Store {
        Store::from_s3_client(self.client.clone(), &self.bucket, "")
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

    fn delete_record(&self, document: &str, sequencer: &str) -> serde_json::Value {
        let key = format!("{}{document}", self.layout.scans);
        event_record(&self.bucket, "ObjectRemoved:Delete", &key, 0, "", None, sequencer)
    }

    async fn deliver(&self, records: Vec<serde_json::Value>) -> Vec<RecordReport> {
        let event: S3Event = serde_json::from_value(event(records)).expect("the event has AWS's shape");
        self.ingest.handle_event(&event).await.expect("no transient failure")
    }

    async fn shards_of(&self, document: &str) -> Vec<String> {
        self.store()
            .list(&self.layout.document_shards(document))
            .await
            .unwrap()
            .into_iter()
            .map(|object| object.key)
            .collect()
    }

    async fn live_rows(&self) -> Vec<folio_shard::PageRow> {
        live::load_live(&self.store(), &self.layout)
            .await
            .unwrap()
            .into_iter()
            .flat_map(|shard| shard.rows)
            .collect()
    }
}

fn sample(path: &str) -> Vec<u8> {
    std::fs::read(samples().join(path)).unwrap_or_else(|error| panic!("sample {path}: {error}"))
}

/// Builds a three-page 64x64 grayscale TIFF whose second page's strip lies
/// beyond the end of the file, so that page cannot be decoded.
fn tiff_with_broken_second_page() -> Vec<u8> {
    const SIDE: u16 = 64;
    let pixels = usize::from(SIDE) * usize::from(SIDE);
    let mut file = b"II\x2a\x00\x00\x00\x00\x00".to_vec();
    let mut previous_next_offset = 4usize;
    for page in 0..3u32 {
        let strip_offset = file.len() as u32;
        file.extend((0..pixels).map(|i| if (i / 64 + i % 64) % (8 + page as usize * 8) < 4 { 0 } else { 255 }));
        let ifd_offset = file.len() as u32;
        file[previous_next_offset..previous_next_offset + 4].copy_from_slice(&ifd_offset.to_le_bytes());
        let strip = if page == 1 { 0x7fff_0000 } else { strip_offset };
        let entries: [(u16, u16, u32); 9] = [
            (256, 3, u32::from(SIDE)),
            (257, 3, u32::from(SIDE)),
            (258, 3, 8),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, strip),
            (277, 3, 1),
            (278, 3, u32::from(SIDE)),
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

#[tokio::test]
async fn upload_event_writes_one_row_per_page() {
    let Some(fixture) = Fixture::new("upload-rows").await else { return };
    let body = sample("fax-tiff/pillow/g4-multi.tiff");
    let record = fixture.put("faxes/g4-multi.tiff", body.clone(), "0055AED6DCD90281E5").await;
    let reports = fixture.deliver(vec![record]).await;
    assert!(matches!(&reports[0], RecordReport::Embedded { pages_embedded: 3, pages_failed: 0, .. }), "{reports:?}");

    let rows = fixture.live_rows().await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.iter().map(|row| row.page).collect::<Vec<_>>(), vec![1, 2, 3]);

    // The stored vectors are the model's vectors for the decoded pages.
    let pages: Vec<_> = folio_pages::open("g4-multi.tiff", body, &folio_pages::Limits::default())
        .unwrap()
        .map(|page| page.unwrap())
        .collect();
    let images: Vec<_> = pages.iter().map(|page| &page.image).collect();
    let expected = embedder().embed_pages(&images).unwrap();
    for (row, vector) in rows.iter().zip(&expected) {
        let stored = row.embedding.as_ref().unwrap();
        let max_difference = stored.iter().zip(vector).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(max_difference < 1e-5, "page {}: vectors differ by {max_difference}", row.page);
    }
}

#[tokio::test]
async fn repeated_event_writes_one_shard() {
    let Some(fixture) = Fixture::new("repeated").await else { return };
    let record = fixture.put("memo.tif", sample("fax-tiff/libtiff/testfax4.tiff"), "0A").await;
    let first = fixture.deliver(vec![record.clone()]).await;
    let second = fixture.deliver(vec![record]).await;
    assert!(matches!(first[0], RecordReport::Embedded { .. }), "{first:?}");
    assert!(matches!(second[0], RecordReport::Duplicate { .. }), "{second:?}");
    assert_eq!(fixture.shards_of("memo.tif").await.len(), 1);
    assert_eq!(fixture.live_rows().await.len(), 1);
}

#[tokio::test]
async fn overwrite_keeps_only_new_vectors() {
    let Some(fixture) = Fixture::new("overwrite").await else { return };
    let first = fixture.put("letter.tif", sample("fax-tiff/pillow/g4-multi.tiff"), "0B").await;
    fixture.deliver(vec![first]).await;
    let second = fixture.put("letter.tif", sample("fax-tiff/libtiff/testfax4.tiff"), "0C").await;
    fixture.deliver(vec![second]).await;

    assert_eq!(fixture.shards_of("letter.tif").await.len(), 2);
    let rows = fixture.live_rows().await;
    assert_eq!(rows.len(), 1, "only the single page of the new version is live");
    assert!(rows[0].sequencer.ends_with("0C"));
}

#[tokio::test]
async fn delete_leaves_tombstone_and_hides_document() {
    let Some(fixture) = Fixture::new("delete").await else { return };
    let keep = fixture.put("keep.tif", sample("fax-tiff/libtiff/testfax4.tiff"), "10").await;
    let gone = fixture.put("gone.tif", sample("fax-tiff/pillow/pport_g4.tif"), "11").await;
    fixture.deliver(vec![keep, gone]).await;
    let reports = fixture.deliver(vec![fixture.delete_record("gone.tif", "12")]).await;
    assert!(matches!(&reports[0], RecordReport::Deleted { .. }), "{reports:?}");

    let documents: Vec<String> = fixture.live_rows().await.into_iter().map(|row| row.document).collect();
    assert_eq!(documents, vec!["keep.tif".to_owned()]);

    let identity = folio_model::identity();
    let store = fixture.store();
    let engine = SearchEngine::open(&store, &fixture.layout, &identity.to_string(), identity.dimensions)
        .await
        .unwrap();
    let query = engine.document_vectors(&store, "keep.tif", None).await.unwrap();
    let results = engine.search(&query, 10, -1.0, None).unwrap();
    assert!(results.documents.iter().all(|found| found.document != "gone.tif"));
    assert!(engine.document_vectors(&store, "gone.tif", None).await.is_err());
}

#[tokio::test]
async fn sequencer_settles_out_of_order_events() {
    let Some(fixture) = Fixture::new("out-of-order").await else { return };
    let put = fixture.put("race.tif", sample("fax-tiff/libtiff/testfax4.tiff"), "20").await;
    // The delete (sequencer 21) is processed before the older put (20).
    fixture.deliver(vec![fixture.delete_record("race.tif", "21")]).await;
    let reports = fixture.deliver(vec![put]).await;
    assert!(matches!(&reports[0], RecordReport::Stale { .. }), "{reports:?}");
    assert!(fixture.live_rows().await.is_empty(), "the later delete wins");

    // A put after the delete (sequencer 22) brings the document back.
    let again = fixture.put("race.tif", sample("fax-tiff/libtiff/testfax4.tiff"), "22").await;
    fixture.deliver(vec![again]).await;
    assert_eq!(fixture.live_rows().await.len(), 1);
}

#[tokio::test]
async fn url_encoded_keys_are_decoded() {
    let Some(fixture) = Fixture::new("encoded-keys").await else { return };
    let documents = ["2024 letters/a memo.tif", "plus+sign/x+y.tif", "ünïcode/文書/ファクス.tif", "a/b/c/d/e/deep.tif"];
    let mut records = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        records.push(fixture.put(document, sample("fax-tiff/libtiff/testfax4.tiff"), &format!("3{index}")).await);
    }
    let reports = fixture.deliver(records).await;
    assert!(reports.iter().all(|report| matches!(report, RecordReport::Embedded { .. })), "{reports:?}");
    let mut stored: Vec<String> = fixture.live_rows().await.into_iter().map(|row| row.document).collect();
    stored.sort();
    let mut expected: Vec<String> = documents.iter().map(|document| document.to_string()).collect();
    expected.sort();
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn broken_page_keeps_other_pages() {
    let Some(fixture) = Fixture::new("broken-page").await else { return };
    let record = fixture.put("three-pages.tif", tiff_with_broken_second_page(), "40").await;
    let reports = fixture.deliver(vec![record]).await;
    assert!(matches!(&reports[0], RecordReport::Embedded { pages_embedded: 2, pages_failed: 1, .. }), "{reports:?}");

    let rows = fixture.live_rows().await;
    let statuses: Vec<(u32, PageStatus)> = rows.iter().map(|row| (row.page, row.status)).collect();
    assert_eq!(
        statuses,
        vec![(1, PageStatus::Embedded), (2, PageStatus::Failed), (3, PageStatus::Embedded)]
    );
    let error = rows[1].error.as_deref().unwrap();
    assert!(error.contains("three-pages.tif"), "{error}");
    assert!(error.contains("page 2"), "{error}");
}

#[tokio::test]
async fn unreadable_object_gets_error_record() {
    let Some(fixture) = Fixture::new("unreadable").await else { return };
    let bad = fixture.put("notes.tif", b"this is not an image at all".to_vec(), "50").await;
    let good = fixture.put("good.tif", sample("fax-tiff/libtiff/testfax4.tiff"), "51").await;
    let reports = fixture.deliver(vec![bad, good]).await;
    assert!(
        matches!(&reports[0], RecordReport::Embedded { pages_embedded: 0, object_error: Some(_), .. }),
        "{reports:?}"
    );
    assert!(matches!(&reports[1], RecordReport::Embedded { pages_embedded: 1, .. }), "{reports:?}");

    let errors = folio_pipeline::ingest::list_errors(&fixture.store(), &fixture.layout).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].document, "notes.tif");
    assert!(errors[0].error.contains("notes.tif"), "{}", errors[0].error);
    let embedded: Vec<_> = fixture
        .live_rows()
        .await
        .into_iter()
        .filter(|row| row.status == PageStatus::Embedded)
        .map(|row| row.document)
        .collect();
    assert_eq!(embedded, vec!["good.tif".to_owned()]);
}

#[tokio::test]
async fn keys_outside_scans_prefix_are_ignored() {
    let Some(fixture) = Fixture::new("outside-prefix").await else { return };
    let record = event_record(&fixture.bucket, "ObjectCreated:Put", "vectors/docs/x.parquet", 1, "e", None, "60");
    let reports = fixture.deliver(vec![record]).await;
    assert!(matches!(&reports[0], RecordReport::Ignored { .. }), "{reports:?}");
}
