//! The query API against a real S3-compatible server. Sample scans go in
//! through the ingest function and the indexer function builds the
//! snapshot. `folio_api::handle`, the function behind the query Lambda and
//! `folio serve`, then handles the requests with the query function's
//! access policy enforced on every store call. Every response is checked
//! against openapi.json.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lambda_events::s3::S3Event;
use bytes::Bytes;
use folio_api::{ApiRequest, ApiResponse, ApiState, MAX_BODY_BYTES, OPENAPI_JSON, handle};
use folio_e2e::{S3Server, create_bucket, event, event_record, samples, upload};
use folio_pipeline::{Layout, PageEmbedder, live};
use folio_store::{Access, Store};
use ingest::{Ingest, RecordReport};
use serde_json::{Value, json};

/// Access of the query function; the deployment template's policy is tested against the same file.
const QUERY_ACCESS_JSON: &str = include_str!("../../functions/query/access.json");

/// Sample scans ingested before the first snapshot: document key and file under `samples/`.
const DOCUMENTS: [(&str, &str); 8] = [
    ("faxes/testfax4.tiff", "fax-tiff/libtiff/testfax4.tiff"),
    ("faxes/pport g4.tif", "fax-tiff/pillow/pport_g4.tif"),
    ("faxes/g4-multi.tiff", "fax-tiff/pillow/g4-multi.tiff"),
    ("faxes/fax2d.tif", "fax-tiff/libtiffpic/fax2d.tif"),
    ("faxes/g3test.tif", "fax-tiff/libtiffpic/g3test.tif"),
    ("letters/eurotext.tif", "misc-scans/tesseract-test/eurotext.tif"),
    ("letters/phototest.tif", "misc-scans/tesseract-test/phototest.tif"),
    ("pdf/ccitt.pdf", "scanned-pdf/ocrmypdf/ccitt.pdf"),
];

/// Loads the linked model once per test binary.
fn embedder() -> Arc<dyn PageEmbedder> {
    static EMBEDDER: OnceLock<Arc<folio_embed::Embedder>> = OnceLock::new();
    EMBEDDER
        .get_or_init(|| Arc::new(folio_model::embedder().expect("the linked model loads")))
        .clone()
}

fn sample(path: &str) -> Vec<u8> {
    std::fs::read(samples().join(path)).unwrap_or_else(|error| panic!("sample {path}: {error}"))
}

/// A bucket with the sample documents ingested and indexed, plus the
/// ingest and indexer functions to change it.
struct Fixture {
    _server: S3Server,
    client: aws_sdk_s3::Client,
    bucket: String,
    layout: Layout,
    ingest: Ingest,
    indexer: indexer::Settings,
    snapshot_id: String,
    /// Index parts of the first snapshot.
    index_parts: usize,
    /// Next event sequencer, increasing with every upload or delete.
    sequencer: u32,
}

impl Fixture {
    /// Starts the server, ingests [`DOCUMENTS`] and builds the first snapshot.
    async fn new(bucket: &str) -> Option<Fixture> {
        let server = S3Server::start()?;
        let client = server.client().await;
        create_bucket(&client, bucket, true).await;
        let layout = Layout::default();
        let access = Access::from_json(ingest::ACCESS_JSON, |name| layout.prefix_for_variable(name)).unwrap();
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
        let model = embedder();
        let indexer = indexer::Settings {
            layout: layout.clone(),
            // Small parts, so every query searches several parts downloaded from S3 and merges them.
            index: folio_index::IndexOptions {
                max_part_vectors: Some(4),
                ..folio_index::IndexOptions::default()
            },
            clusters: folio_clusters::ClusterParams::default(),
            model_id: model.model_id(),
            dims: model.dimensions(),
        };
        let mut fixture = Fixture {
            _server: server,
            client,
            bucket: bucket.to_owned(),
            layout,
            ingest,
            indexer,
            snapshot_id: String::new(),
            index_parts: 0,
            sequencer: 0x100,
        };

        for (document, path) in DOCUMENTS {
            let reports = fixture.put(document, sample(path)).await;
            assert!(matches!(&reports[0], RecordReport::Embedded { pages_failed: 0, .. }), "{document}: {reports:?}");
        }
        let report = fixture.run_indexer().await;
        fixture.snapshot_id = report.snapshot_id;
        fixture.index_parts = report.index_parts;
        Some(fixture)
    }

    fn next_sequencer(&mut self) -> String {
        self.sequencer += 1;
        format!("{:X}", self.sequencer)
    }

    /// Uploads `body` under the scans prefix and delivers its event to the ingest function.
    async fn put(&mut self, document: &str, body: Vec<u8>) -> Vec<RecordReport> {
        let key = format!("{}{document}", self.layout.scans);
        let uploaded = upload(&self.client, &self.bucket, &key, body).await;
        let sequencer = self.next_sequencer();
        let record = event_record(
            &self.bucket,
            "ObjectCreated:Put",
            &key,
            uploaded.size,
            &uploaded.etag,
            uploaded.version_id.as_deref(),
            &sequencer,
        );
        self.deliver(record).await
    }

    /// Deletes the object and delivers the deletion event.
    async fn delete(&mut self, document: &str) -> Vec<RecordReport> {
        let key = format!("{}{document}", self.layout.scans);
        let output = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .expect("delete the test object");
        let sequencer = self.next_sequencer();
        let record = event_record(&self.bucket, "ObjectRemoved:Delete", &key, 0, "", output.version_id(), &sequencer);
        self.deliver(record).await
    }

    async fn deliver(&self, record: Value) -> Vec<RecordReport> {
        let event: S3Event = serde_json::from_value(event(vec![record])).expect("the event has AWS's shape");
        self.ingest.handle_event(&event).await.expect("no transient failure")
    }

    /// Runs the indexer function with its own access policy.
    async fn run_indexer(&self) -> indexer::RunReport {
        let access = Access::from_json(indexer::ACCESS_JSON, |name| self.layout.prefix_for_variable(name)).unwrap();
        let store = Store::from_s3_client(self.client.clone(), &self.bucket, "").with_access(access);
        indexer::run(&store, &self.indexer).await.expect("the indexer run succeeds")
    }

    /// Runs the indexer and returns the new snapshot id.
    async fn build_snapshot(&self) -> String {
        self.run_indexer().await.snapshot_id
    }

    /// API state over the bucket with the query function's access policy.
    fn state(&self) -> ApiState {
        let access = Access::from_json(QUERY_ACCESS_JSON, |name| self.layout.prefix_for_variable(name)).unwrap();
        let store = Store::from_s3_client(self.client.clone(), &self.bucket, "").with_access(access);
        // Zero refresh interval: every request reads the bucket's current state.
        ApiState::with_embedder(store, self.layout.clone(), embedder()).with_refresh_interval(Duration::ZERO)
    }

    /// Returns the stored vector of one page, read with an unrestricted store.
    async fn stored_vector(&self, document: &str, page: u32) -> Vec<f32> {
        let store = Store::from_s3_client(self.client.clone(), &self.bucket, "");
        live::load_live(&store, &self.layout)
            .await
            .unwrap()
            .into_iter()
            .flat_map(|shard| shard.rows)
            .find(|row| row.document == document && row.page == page)
            .and_then(|row| row.embedding)
            .unwrap_or_else(|| panic!("{document} page {page} has no stored vector"))
    }
}

// ---------------------------------------------------------------- OpenAPI

/// Validates `instance` against `#/components/schemas/<name>` of
/// openapi.json; the whole document is the root, so references resolve.
fn validate(name: &str, instance: &Value) -> Result<(), String> {
    let mut root: Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json is valid JSON");
    root["$ref"] = Value::String(format!("#/components/schemas/{name}"));
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .map_err(|error| format!("schema {name} does not compile: {error}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(format!("{name}: {}", errors.join("; "))) }
}

/// Returns the schema name that openapi.json declares for `status` of an operation.
fn response_schema(path: &str, method: &str, status: u16) -> Result<String, String> {
    let document: Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json is valid JSON");
    document["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .map(|reference| reference.trim_start_matches("#/components/schemas/").to_owned())
        .ok_or_else(|| format!("openapi.json documents no {status} response for {method} {path}"))
}

// ---------------------------------------------------------------- requests

fn get(path: &str, query: &[(&str, &str)]) -> ApiRequest {
    ApiRequest {
        method: "GET".to_owned(),
        path: path.to_owned(),
        query: query.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect(),
        content_type: None,
        body: Bytes::new(),
    }
}

fn post(query: &[(&str, &str)], content_type: &str, body: impl Into<Bytes>) -> ApiRequest {
    ApiRequest {
        method: "POST".to_owned(),
        content_type: Some(content_type.to_owned()),
        body: body.into(),
        ..get("/search", query)
    }
}

fn vector_query(vector: &[f32], k: usize) -> ApiRequest {
    post(&[("k", &k.to_string())], "application/json", json!({ "vector": vector }).to_string())
}

/// Sends a request and checks the status and the documented schema; returns the body.
async fn call(state: &ApiState, operation: (&str, &str), request: ApiRequest, status: u16) -> Value {
    let response: ApiResponse = handle(state, request).await;
    let body: Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|error| panic!("response body is not JSON ({error}): {}", String::from_utf8_lossy(&response.body)));
    assert_eq!(response.status, status, "{body}");
    assert_eq!(response.content_type, "application/json");
    let schema = response_schema(operation.0, operation.1, status).unwrap();
    validate(&schema, &body).unwrap_or_else(|error| panic!("{error}\n{body}"));
    body
}

const SEARCH: (&str, &str) = ("/search", "post");
const SIMILAR: (&str, &str) = ("/documents/{key}/similar", "get");

fn documents_of(body: &Value) -> Vec<String> {
    body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|document| document["document"].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn search_by_image_document_and_vector() {
    let Some(fixture) = Fixture::new("query-kinds").await else { return };
    let state = fixture.state();
    assert!(fixture.index_parts >= 3, "{} index parts", fixture.index_parts);

    // By image: the uploaded scan's own document ranks first.
    let scan = sample("misc-scans/tesseract-test/phototest.tif");
    let body = call(&state, SEARCH, post(&[("k", "3")], "image/tiff", scan), 200).await;
    let found = documents_of(&body);
    assert_eq!(found.len(), 3, "{body}");
    assert_eq!(found[0], "letters/phototest.tif", "{body}");
    assert!(body["documents"][0]["score"].as_f64().unwrap() > 0.99, "{body}");
    assert_eq!(body["snapshot_id"], fixture.snapshot_id, "{body}");
    assert_eq!(body["fresh_pages"], 0, "{body}");
    assert_eq!(body["query_pages"], 1, "{body}");

    // By a multi-page PDF scan: every page is a query page.
    let scan = sample("scanned-pdf/ocrmypdf/ccitt.pdf");
    let body = call(&state, SEARCH, post(&[], "application/pdf", scan), 200).await;
    assert_eq!(documents_of(&body)[0], "pdf/ccitt.pdf", "{body}");

    // By stored document, through both routes: the document itself is left out.
    let request = post(&[("k", "100")], "application/json", json!({ "document": "faxes/g4-multi.tiff" }).to_string());
    let body = call(&state, SEARCH, request, 200).await;
    let found = documents_of(&body);
    assert_eq!(found.len(), DOCUMENTS.len() - 1, "{body}");
    assert!(!found.contains(&"faxes/g4-multi.tiff".to_owned()), "{body}");
    assert_eq!(body["query_pages"], 3, "{body}");

    let body = call(&state, SIMILAR, get("/documents/faxes%2Fpport%20g4.tif/similar", &[("k", "2"), ("page", "1")]), 200).await;
    let found = documents_of(&body);
    assert_eq!(found.len(), 2, "{body}");
    assert!(!found.contains(&"faxes/pport g4.tif".to_owned()), "{body}");

    // By vector: a stored page's vector finds its own document first.
    let vector = fixture.stored_vector("faxes/g4-multi.tiff", 2).await;
    let body = call(&state, SEARCH, vector_query(&vector, 5), 200).await;
    assert_eq!(documents_of(&body)[0], "faxes/g4-multi.tiff", "{body}");
    assert_eq!(body["documents"][0]["pages"][0]["page"], 2, "{body}");
}

#[tokio::test]
async fn upload_found_before_next_snapshot() {
    let Some(mut fixture) = Fixture::new("query-upload").await else { return };
    let state = fixture.state();
    let scan = sample("scanned-pdf/ocrmypdf/jbig2.pdf");

    let before = call(&state, SEARCH, post(&[("k", "100")], "application/pdf", scan.clone()), 200).await;
    assert!(!documents_of(&before).contains(&"late/jbig2.pdf".to_owned()), "{before}");

    let reports = fixture.put("late/jbig2.pdf", scan.clone()).await;
    assert!(matches!(&reports[0], RecordReport::Embedded { .. }), "{reports:?}");

    let after = call(&state, SEARCH, post(&[("k", "3")], "application/pdf", scan.clone()), 200).await;
    assert_eq!(documents_of(&after)[0], "late/jbig2.pdf", "{after}");
    assert_eq!(after["snapshot_id"], fixture.snapshot_id, "still the first snapshot: {after}");
    assert!(after["fresh_pages"].as_u64().unwrap() >= 1, "{after}");
    let similar = call(&state, SIMILAR, get("/documents/late%2Fjbig2.pdf/similar", &[]), 200).await;
    assert_eq!(documents_of(&similar).len(), DOCUMENTS.len(), "{similar}");

    // The next snapshot contains it, and nothing is searched exactly any more.
    let next = fixture.build_snapshot().await;
    let indexed = call(&state, SEARCH, post(&[("k", "3")], "application/pdf", scan), 200).await;
    assert_eq!(documents_of(&indexed)[0], "late/jbig2.pdf", "{indexed}");
    assert_eq!(indexed["snapshot_id"], next, "{indexed}");
    assert_eq!(indexed["fresh_pages"], 0, "{indexed}");
}

#[tokio::test]
async fn deleted_document_not_found() {
    let Some(mut fixture) = Fixture::new("query-delete").await else { return };
    let state = fixture.state();
    let vector = fixture.stored_vector("letters/eurotext.tif", 1).await;

    let before = call(&state, SEARCH, vector_query(&vector, 1), 200).await;
    assert_eq!(documents_of(&before), vec!["letters/eurotext.tif"], "{before}");

    let reports = fixture.delete("letters/eurotext.tif").await;
    assert!(matches!(&reports[0], RecordReport::Deleted { .. }), "{reports:?}");

    // Hidden from the snapshot before the next build.
    let after = call(&state, SEARCH, vector_query(&vector, 100), 200).await;
    let found = documents_of(&after);
    assert!(!found.contains(&"letters/eurotext.tif".to_owned()), "{after}");
    assert_eq!(found.len(), DOCUMENTS.len() - 1, "{after}");
    let gone = call(&state, SIMILAR, get("/documents/letters%2Feurotext.tif/similar", &[]), 404).await;
    assert_eq!(gone["error"]["code"], "unknown_document", "{gone}");

    // Still gone after the next build, which drops it from the index.
    fixture.build_snapshot().await;
    let rebuilt = call(&state, SEARCH, vector_query(&vector, 100), 200).await;
    assert!(!documents_of(&rebuilt).contains(&"letters/eurotext.tif".to_owned()), "{rebuilt}");
    let request = post(&[], "application/json", json!({ "document": "letters/eurotext.tif" }).to_string());
    let gone = call(&state, SEARCH, request, 404).await;
    assert_eq!(gone["error"]["code"], "unknown_document", "{gone}");
}

#[tokio::test]
async fn bad_inputs_get_client_errors() {
    let Some(fixture) = Fixture::new("query-errors").await else { return };
    let state = fixture.state();
    let dims = embedder().dimensions();
    let scan = Bytes::from(sample("fax-tiff/libtiff/testfax4.tiff"));
    let mut unit = vec![0.0_f32; dims];
    unit[0] = 1.0;
    let too_long: Vec<f32> = unit.iter().copied().chain([0.5]).collect();

    let cases: Vec<(&str, (&str, &str), ApiRequest, u16, &str)> = vec![
        ("unknown document", SEARCH, post(&[], "application/json", json!({ "document": "nowhere.tif" }).to_string()), 404, "unknown_document"),
        ("unknown document similar", SIMILAR, get("/documents/nowhere.tif/similar", &[]), 404, "unknown_document"),
        ("unknown page", SIMILAR, get("/documents/faxes%2Fg4-multi.tiff/similar", &[("page", "4")]), 404, "unknown_page"),
        ("broken image", SEARCH, post(&[], "image/tiff", Bytes::from_static(b"II*\x00\x08\x00\x00\x00broken")), 422, "invalid_image"),
        ("not an image", SEARCH, post(&[], "image/png", Bytes::from_static(b"plain text")), 422, "invalid_image"),
        ("k zero", SEARCH, post(&[("k", "0")], "image/tiff", scan.clone()), 400, "invalid_parameter"),
        ("k million", SEARCH, post(&[("k", "1000000")], "image/tiff", scan.clone()), 400, "invalid_parameter"),
        ("k zero similar", SIMILAR, get("/documents/faxes%2Fg4-multi.tiff/similar", &[("k", "0")]), 400, "invalid_parameter"),
        ("k million vector", SEARCH, post(&[("k", "1000000")], "application/json", json!({ "vector": unit }).to_string()), 400, "invalid_parameter"),
        ("bad JSON", SEARCH, post(&[], "application/json", "{\"vector\": [1, 2"), 400, "invalid_json"),
        ("JSON of wrong shape", SEARCH, post(&[], "application/json", "[1, 2, 3]"), 400, "invalid_json"),
        ("vector too short", SEARCH, post(&[], "application/json", json!({ "vector": unit[..dims - 1] }).to_string()), 400, "invalid_vector"),
        ("vector too long", SEARCH, post(&[], "application/json", json!({ "vector": too_long }).to_string()), 400, "invalid_vector"),
        ("vector of zeros", SEARCH, post(&[], "application/json", json!({ "vector": vec![0.0; dims] }).to_string()), 400, "invalid_vector"),
        ("body too large", SEARCH, post(&[], "image/tiff", vec![0_u8; MAX_BODY_BYTES + 1]), 413, "body_too_large"),
        ("empty body", SEARCH, post(&[], "image/tiff", Bytes::new()), 400, "empty_body"),
        ("unsupported media type", SEARCH, post(&[], "text/csv", "a,b"), 415, "unsupported_media_type"),
    ];

    let mut failures = Vec::new();
    for (name, operation, request, status, code) in cases {
        let response = handle(&state, request).await;
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let context = format!("{name}: {} {body}", response.status);
        if response.status != status {
            failures.push(format!("{context}: expected status {status}"));
            continue;
        }
        if body["error"]["code"] != code {
            failures.push(format!("{context}: expected error code {code}"));
        }
        if body["error"]["message"].as_str().is_none_or(str::is_empty) {
            failures.push(format!("{context}: no error message"));
        }
        let checked = response_schema(operation.0, operation.1, status).and_then(|schema| validate(&schema, &body));
        if let Err(error) = checked {
            failures.push(format!("{context}: {error}"));
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
}
