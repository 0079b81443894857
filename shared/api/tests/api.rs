//! Drives `folio_api::handle` against a real local store built through the
//! pipeline with a small real BiT model (converted from `bit-tiny.npz`),
//! and validates every response against the OpenAPI description.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use folio_api::{ApiRequest, ApiResponse, ApiState, MAX_BODY_BYTES, OPENAPI_JSON, handle};
use folio_pipeline::{DocumentVersion, Layout, PageEmbedder, ingest, shard_meta, snapshot};
use folio_store::{PutMode, Store};
use image::{DynamicImage, GrayImage, Luma};
use serde_json::{Value, json};

/// Returns the shared data folder beside the workspace root, or `None` after printing why the test is skipped.
fn shared_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    if dir.join("fixtures/bit/bit-tiny.npz").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} has no fixtures/bit/bit-tiny.npz; these tests need the shared data folder beside the workspace",
            dir.display()
        );
        None
    }
}

/// Builds a real embedder from the tiny BiT checkpoint (units [1,1,1,1], width 0.5, 1024 features).
fn tiny_embedder(shared: &std::path::Path) -> Arc<dyn PageEmbedder> {
    let checkpoint = folio_bit_convert::Checkpoint::read_npz(&shared.join("fixtures/bit/bit-tiny.npz")).expect("read bit-tiny.npz");
    let onnx = folio_bit_convert::to_onnx(&checkpoint, &folio_bit_convert::ConvertOptions::default());
    // The fixture checkpoint has random weights, so its identity is marked untrained.
    let identity = folio_embed::ModelIdentity::for_onnx("bit-tiny", false, 1024, &onnx);
    let embedder = folio_embed::Embedder::from_onnx(&onnx, identity).expect("load the tiny ONNX model");
    Arc::new(embedder)
}

// ---------------------------------------------------------------- pages

fn png(image: GrayImage) -> Bytes {
    let mut bytes = Vec::new();
    DynamicImage::ImageLuma8(image)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("encode PNG");
    Bytes::from(bytes)
}

/// Draws a letter-sized page at 100 dpi, dark where `ink(x, y)` is true.
fn page(ink: impl Fn(u32, u32) -> bool) -> GrayImage {
    GrayImage::from_fn(850, 1100, |x, y| if ink(x, y) { Luma([20]) } else { Luma([245]) })
}

fn text_lines(x: u32, y: u32) -> bool {
    (100..750).contains(&x) && (100..1000).contains(&y) && y % 30 < 10 && (x / 40 + y / 30) % 7 != 0
}

fn table_grid(x: u32, y: u32) -> bool {
    (50..800).contains(&x) && (50..1050).contains(&y) && (x % 100 < 4 || y % 80 < 4)
}

fn columns(x: u32, y: u32) -> bool {
    (80..770).contains(&x) && (80..1020).contains(&y) && (x % 120 < 60) && y % 24 < 8
}

/// Lists the documents ingested before the snapshot, as key and page image.
fn documents() -> Vec<(&'static str, GrayImage)> {
    vec![
        ("letters/1999/memo one+ü.png", page(text_lines)),
        ("letters/1999/memo two.png", page(|x, y| text_lines(x, y) && y < 900)),
        ("forms/grid.png", page(table_grid)),
        ("forms/grid copy.png", page(|x, y| table_grid(x, y) || (x > 700 && y > 1000))),
        ("reports/columns.png", page(columns)),
        ("reports/columns-short.png", page(|x, y| columns(x, y) && y < 700)),
    ]
}

// ---------------------------------------------------------------- store

struct Fixture {
    _dir: tempfile::TempDir,
    store_path: PathBuf,
    layout: Layout,
    embedder: Arc<dyn PageEmbedder>,
    snapshot_id: String,
}

impl Fixture {
    async fn store(&self) -> Store {
        Store::open(self.store_path.to_str().unwrap()).await.expect("open the local store")
    }

    async fn state(&self) -> ApiState {
        ApiState::with_embedder(self.store().await, self.layout.clone(), self.embedder.clone())
    }
}

async fn ingest_document(store: &Store, layout: &Layout, embedder: &dyn PageEmbedder, key: &str, sequencer: &str, bytes: Bytes) {
    let document = DocumentVersion {
        document: key.to_owned(),
        version: format!("v-{sequencer}"),
        sequencer: sequencer.to_owned(),
    };
    let embedded = ingest::embed_object(embedder, &Default::default(), &document, bytes, 4, &mut |_| {});
    ingest::store_object(store, layout, &shard_meta(embedder), &document, &embedded)
        .await
        .expect("store the shard");
}

/// Ingests the documents, a broken upload, builds a snapshot and a cluster
/// summary, then ingests one document after the snapshot.
async fn fixture() -> Option<Fixture> {
    let shared = shared_dir()?;
    let embedder = tiny_embedder(&shared);
    let dir = tempfile::tempdir().unwrap();
    let store_path = dir.path().join("store");
    let store = Store::open(store_path.to_str().unwrap()).await.unwrap();
    let layout = Layout::default();

    let mut cluster_pages = Vec::new();
    let mut cluster_vectors = Vec::new();
    for (number, (key, image)) in documents().into_iter().enumerate() {
        let bytes = png(image.clone());
        ingest_document(&store, &layout, embedder.as_ref(), key, &format!("{:02X}", number + 1), bytes).await;
        let vector = embedder.embed_pages(&[&DynamicImage::ImageLuma8(image)]).unwrap().remove(0);
        cluster_pages.push(folio_clusters::PageRef::new(key, 1));
        cluster_vectors.extend(vector);
    }
    let broken = Bytes::from_static(b"not a scan: no TIFF, PNG, JPEG or PDF signature");
    ingest_document(&store, &layout, embedder.as_ref(), "broken/upload.png", "20", broken).await;

    let manifest = snapshot::build_snapshot(
        &store,
        &layout,
        &embedder.model_id(),
        embedder.dimensions(),
        &folio_index::IndexOptions::default(),
    )
    .await
    .expect("build the snapshot");

    let vectors = ndarray::Array2::from_shape_vec((cluster_pages.len(), embedder.dimensions()), cluster_vectors).unwrap();
    let params = folio_clusters::ClusterParams {
        k: folio_clusters::KChoice::Given { k: 2 },
        ..Default::default()
    };
    let ids = folio_clusters::SummaryIds {
        model_id: embedder.model_id(),
        snapshot_id: manifest.snapshot_id.clone(),
    };
    let run = folio_clusters::summarise(&cluster_pages, vectors.view(), &params, &ids).expect("cluster the pages");
    let summary_key = format!("{}{}/summary.json", layout.clusters, manifest.snapshot_id);
    let summary = serde_json::to_vec(&run.summary).unwrap();
    store.put(&summary_key, summary.into(), PutMode::Overwrite).await.unwrap();
    let pointer = json!({ "snapshot_id": manifest.snapshot_id, "summary": summary_key });
    store
        .put(&format!("{}latest.json", layout.clusters), pointer.to_string().into(), PutMode::Overwrite)
        .await
        .unwrap();

    // Uploaded after the snapshot: found only through the newer-shard view.
    ingest_document(&store, &layout, embedder.as_ref(), "late/arrival.png", "30", png(page(text_lines))).await;

    Some(Fixture {
        _dir: dir,
        store_path,
        layout,
        embedder,
        snapshot_id: manifest.snapshot_id,
    })
}

// ---------------------------------------------------------------- OpenAPI

struct OpenApi {
    document: Value,
}

impl OpenApi {
    fn load() -> OpenApi {
        OpenApi {
            document: serde_json::from_str(OPENAPI_JSON).expect("openapi.json is valid JSON"),
        }
    }

    /// Validates `instance` against `#/components/schemas/<name>`: the whole
    /// document is the root, so references between components resolve.
    fn validate(&self, name: &str, instance: &Value) -> Result<(), String> {
        let mut root = self.document.clone();
        root["$ref"] = Value::String(format!("#/components/schemas/{name}"));
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(&root)
            .map_err(|error| format!("schema {name} does not compile: {error}"))?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{name}: {}", errors.join("; ")))
        }
    }

    /// Schema name declared for `status` of an operation, or an error naming what is undocumented.
    fn response_schema(&self, path: &str, method: &str, status: u16) -> Result<String, String> {
        let operation = &self.document["paths"][path][method];
        if operation.is_null() {
            return Err(format!("openapi.json has no operation {method} {path}"));
        }
        let reference = operation["responses"][status.to_string()]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .ok_or_else(|| format!("openapi.json documents no {status} response for {method} {path}"))?;
        Ok(reference.trim_start_matches("#/components/schemas/").to_owned())
    }

    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut operations = BTreeSet::new();
        for (path, item) in self.document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                operations.insert((path.clone(), method.clone()));
            }
        }
        operations
    }
}

// ---------------------------------------------------------------- requests

fn request(method: &str, path: &str, query: &[(&str, &str)]) -> ApiRequest {
    ApiRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect(),
        content_type: None,
        body: Bytes::new(),
    }
}

fn post(path: &str, query: &[(&str, &str)], content_type: &str, body: impl Into<Bytes>) -> ApiRequest {
    ApiRequest {
        content_type: Some(content_type.to_owned()),
        body: body.into(),
        ..request("POST", path, query)
    }
}

fn body_json(response: &ApiResponse) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|error| panic!("response body is not JSON ({error}): {}", String::from_utf8_lossy(&response.body)))
}

fn documents_of(body: &Value) -> Vec<String> {
    body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|document| document["document"].as_str().unwrap().to_owned())
        .collect()
}

/// One request of the route table, the OpenAPI operation it exercises
/// (`None` for unknown routes and methods) and the expected status and error code.
struct Case {
    name: &'static str,
    request: ApiRequest,
    operation: Option<(&'static str, &'static str)>,
    status: u16,
    code: Option<&'static str>,
}

fn case(name: &'static str, request: ApiRequest, operation: Option<(&'static str, &'static str)>, status: u16, code: Option<&'static str>) -> Case {
    Case {
        name,
        request,
        operation,
        status,
        code,
    }
}

#[tokio::test]
async fn routes_match_openapi() {
    let Some(fixture) = fixture().await else { return };
    let state = fixture.state().await;
    let openapi = OpenApi::load();
    let dims = fixture.embedder.dimensions();
    let query_scan = png(page(table_grid));

    let search = Some(("/search", "post"));
    let similar = Some(("/documents/{key}/similar", "get"));
    let clusters = Some(("/clusters", "get"));
    let cluster = Some(("/clusters/{id}", "get"));
    let status = Some(("/status", "get"));
    let mut unit_vector = vec![0.0; dims];
    unit_vector[0] = 1.0;

    let cases = vec![
        case("search scan", post("/search", &[("k", "3")], "image/png", query_scan.clone()), search, 200, None),
        case("search scan octet-stream", post("/search", &[("page", "1")], "application/octet-stream", query_scan.clone()), search, 200, None),
        case("search document", post("/search", &[], "application/json", json!({"document": "forms/grid.png", "page": 1}).to_string()), search, 200, None),
        case("search vector", post("/search", &[("min_score", "-1")], "application/json; charset=utf-8", json!({ "vector": unit_vector }).to_string()), search, 200, None),
        case("search broken image", post("/search", &[], "image/png", Bytes::from_static(b"\x89PNG\r\n\x1a\nbroken")), search, 422, Some("invalid_image")),
        case("search unknown format", post("/search", &[], "image/tiff", Bytes::from_static(b"plain text")), search, 422, Some("invalid_image")),
        case("search missing scan page", post("/search", &[("page", "2")], "image/png", query_scan.clone()), search, 422, Some("unknown_query_page")),
        case("search k zero", post("/search", &[("k", "0")], "image/png", query_scan.clone()), search, 400, Some("invalid_parameter")),
        case("search k huge", post("/search", &[("k", "1000000")], "image/png", query_scan.clone()), search, 400, Some("invalid_parameter")),
        case("search min_score high", post("/search", &[("min_score", "1.5")], "image/png", query_scan.clone()), search, 400, Some("invalid_parameter")),
        case("search min_score low", post("/search", &[("min_score", "-2")], "image/png", query_scan.clone()), search, 400, Some("invalid_parameter")),
        case("search bad JSON", post("/search", &[], "application/json", "{\"document\": "), search, 400, Some("invalid_json")),
        case("search vector short", post("/search", &[], "application/json", json!({"vector": [1.0, 2.0]}).to_string()), search, 400, Some("invalid_vector")),
        case("search vector overflow", post("/search", &[], "application/json", json!({ "vector": vec![1e39; dims] }).to_string()), search, 400, Some("invalid_vector")),
        case("search unknown document", post("/search", &[], "application/json", json!({"document": "nowhere.tif"}).to_string()), search, 404, Some("unknown_document")),
        case("search unknown page", post("/search", &[], "application/json", json!({"document": "forms/grid.png", "page": 7}).to_string()), search, 404, Some("unknown_page")),
        case("search too large", post("/search", &[], "image/png", vec![0_u8; MAX_BODY_BYTES + 1]), search, 413, Some("body_too_large")),
        case("search text/plain", post("/search", &[], "text/plain", "hello"), search, 415, Some("unsupported_media_type")),
        case("search no content type", ApiRequest { body: query_scan.clone(), ..request("POST", "/search", &[]) }, search, 415, Some("unsupported_media_type")),
        case("search empty body", post("/search", &[], "image/png", Bytes::new()), search, 400, Some("empty_body")),
        case("similar encoded key", request("GET", "/documents/letters%2F1999%2Fmemo%20one%2B%C3%BC.png/similar", &[("k", "2")]), similar, 200, None),
        case("similar raw key", request("GET", "/documents/forms/grid.png/similar", &[("min_score", "0.1")]), similar, 200, None),
        case("similar unknown document", request("GET", "/documents/nowhere.tif/similar", &[]), similar, 404, Some("unknown_document")),
        case("similar unknown page", request("GET", "/documents/forms%2Fgrid.png/similar", &[("page", "3")]), similar, 404, Some("unknown_page")),
        case("similar no embedded page", request("GET", "/documents/broken/upload.png/similar", &[]), similar, 422, Some("no_embedded_pages")),
        case("similar k zero", request("GET", "/documents/forms/grid.png/similar", &[("k", "0")]), similar, 400, Some("invalid_parameter")),
        case("similar invalid UTF-8", request("GET", "/documents/%FF%FE/similar", &[]), similar, 400, Some("invalid_path")),
        case("clusters", request("GET", "/clusters", &[]), clusters, 200, None),
        case("clusters with parameter", request("GET", "/clusters", &[("k", "2")]), clusters, 400, Some("invalid_parameter")),
        case("cluster", request("GET", "/clusters/0", &[("offset", "1"), ("limit", "2")]), cluster, 200, None),
        case("cluster unknown", request("GET", "/clusters/99", &[]), cluster, 404, Some("unknown_cluster")),
        case("cluster not a number", request("GET", "/clusters/first", &[]), cluster, 400, Some("invalid_path")),
        case("cluster limit too large", request("GET", "/clusters/0", &[("limit", "501")]), cluster, 400, Some("invalid_parameter")),
        case("status", request("GET", "/status", &[]), status, 200, None),
        case("unknown route", request("GET", "/nowhere", &[]), None, 404, Some("unknown_route")),
        case("document without similar", request("GET", "/documents/forms/grid.png", &[]), None, 404, Some("unknown_route")),
        case("wrong method search", request("GET", "/search", &[]), None, 405, Some("method_not_allowed")),
        case("wrong method status", post("/status", &[], "application/json", "{}"), None, 405, Some("method_not_allowed")),
    ];

    let mut exercised = BTreeSet::new();
    let mut failures = Vec::new();
    for case in cases {
        let response = handle(&state, case.request).await;
        let body = body_json(&response);
        let context = format!("{}: {} {}", case.name, response.status, body);
        if response.status != case.status {
            failures.push(format!("{context}: expected status {}", case.status));
            continue;
        }
        if response.content_type != "application/json" {
            failures.push(format!("{context}: content type {}", response.content_type));
        }
        if let Some(code) = case.code {
            if body["error"]["code"] != code {
                failures.push(format!("{context}: expected error code {code}"));
            }
        }
        let schema = match case.operation {
            Some((path, method)) => {
                exercised.insert((path.to_owned(), method.to_owned()));
                match openapi.response_schema(path, method, response.status) {
                    Ok(schema) => schema,
                    Err(error) => {
                        failures.push(format!("{context}: {error}"));
                        continue;
                    }
                }
            }
            None => "Error".to_owned(),
        };
        if let Err(error) = openapi.validate(&schema, &body) {
            failures.push(format!("{context}: {error}"));
        }
    }
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));

    let missing: Vec<_> = openapi.operations().difference(&exercised).cloned().collect();
    assert!(missing.is_empty(), "operations in openapi.json that no case exercised: {missing:?}");
}

#[tokio::test]
async fn search_scan_ranks_same_layout_first() {
    let Some(fixture) = fixture().await else { return };
    let state = fixture.state().await;

    let response = handle(&state, post("/search", &[("k", "3")], "image/png", png(page(table_grid)))).await;
    let body = body_json(&response);
    assert_eq!(response.status, 200, "{body}");
    let found = documents_of(&body);
    assert_eq!(found.len(), 3, "{body}");
    let top_two: BTreeSet<&str> = found[..2].iter().map(String::as_str).collect();
    assert_eq!(top_two, BTreeSet::from(["forms/grid.png", "forms/grid copy.png"]), "{body}");
    assert_eq!(body["snapshot_id"], fixture.snapshot_id);
    assert_eq!(body["model_trained"], false);
    assert_eq!(body["query_pages"], 1);
    assert_eq!(body["model_id"], fixture.embedder.model_id());
}

#[tokio::test]
async fn similar_leaves_document_out() {
    let Some(fixture) = fixture().await else { return };
    let state = fixture.state().await;

    let response = handle(&state, request("GET", "/documents/forms%2Fgrid.png/similar", &[("k", "100")])).await;
    let body = body_json(&response);
    assert_eq!(response.status, 200, "{body}");
    let found = documents_of(&body);
    assert!(!found.contains(&"forms/grid.png".to_owned()), "{found:?}");
    assert_eq!(found.first().map(String::as_str), Some("forms/grid copy.png"), "{body}");
    // Six documents plus the late arrival, minus the query document; the broken upload has no pages.
    assert_eq!(found.len(), 6, "{found:?}");
}

#[tokio::test]
async fn search_finds_document_newer_than_snapshot() {
    let Some(fixture) = fixture().await else { return };
    let state = fixture.state().await;

    let response = handle(&state, request("GET", "/documents/late/arrival.png/similar", &[("k", "1")])).await;
    let body = body_json(&response);
    assert_eq!(response.status, 200, "{body}");
    assert_eq!(documents_of(&body), vec!["letters/1999/memo one+ü.png"], "{body}");
    assert_eq!(body["fresh_pages"], 1, "{body}");

    let response = handle(&state, request("GET", "/documents/letters%2F1999%2Fmemo%20one%2B%C3%BC.png/similar", &[("k", "1")])).await;
    let body = body_json(&response);
    assert_eq!(documents_of(&body), vec!["late/arrival.png"], "{body}");
}

#[tokio::test]
async fn engine_refresh_sees_new_upload() {
    let Some(fixture) = fixture().await else { return };
    let store = fixture.store().await;
    let cached = fixture.state().await;
    let refreshing = fixture.state().await.with_refresh_interval(Duration::ZERO);
    let similar = || request("GET", "/documents/reports%2Fcolumns.png/similar", &[("k", "100")]);

    // Open both engines before the upload.
    assert_eq!(handle(&cached, similar()).await.status, 200);
    assert_eq!(handle(&refreshing, similar()).await.status, 200);

    ingest_document(&store, &fixture.layout, fixture.embedder.as_ref(), "later/columns.png", "40", png(page(columns))).await;

    let stale = documents_of(&body_json(&handle(&cached, similar()).await));
    assert!(!stale.contains(&"later/columns.png".to_owned()), "the 10 s cache should still hide it: {stale:?}");
    let fresh = documents_of(&body_json(&handle(&refreshing, similar()).await));
    assert_eq!(fresh.first().map(String::as_str), Some("later/columns.png"), "{fresh:?}");
}

#[tokio::test]
async fn engine_refresh_follows_new_snapshot() {
    let Some(fixture) = fixture().await else { return };
    let store = fixture.store().await;
    let state = fixture.state().await.with_refresh_interval(Duration::ZERO);
    let vector = fixture.embedder.embed_pages(&[&DynamicImage::ImageLuma8(page(table_grid))]).unwrap().remove(0);
    let search = || post("/search", &[], "application/json", json!({ "vector": vector }).to_string());

    let before = body_json(&handle(&state, search()).await);
    assert_eq!(before["snapshot_id"], fixture.snapshot_id);
    assert_eq!(before["fresh_pages"], 1);

    let manifest = snapshot::build_snapshot(
        &store,
        &fixture.layout,
        &fixture.embedder.model_id(),
        fixture.embedder.dimensions(),
        &folio_index::IndexOptions::default(),
    )
    .await
    .unwrap();
    let after = body_json(&handle(&state, search()).await);
    assert_eq!(after["snapshot_id"], manifest.snapshot_id, "{after}");
    assert_eq!(after["fresh_pages"], 0, "{after}");
    // Equal scores may be ordered differently: the newer page was searched exactly in f32 before.
    let before: BTreeSet<String> = documents_of(&before).into_iter().collect();
    let after: BTreeSet<String> = documents_of(&after).into_iter().collect();
    assert_eq!(before, after);
}

#[tokio::test]
async fn clusters_page_through_members() {
    let Some(fixture) = fixture().await else { return };
    let state = fixture.state().await;

    let overview = body_json(&handle(&state, request("GET", "/clusters", &[])).await);
    let clusters = overview["clusters"].as_array().expect("clusters array");
    assert_eq!(clusters.len(), 2, "{overview}");
    assert!(clusters.iter().all(|cluster| cluster.get("members").is_none()), "{overview}");
    assert_eq!(overview["snapshot_id"], fixture.snapshot_id);

    let first = &clusters[0];
    let total = first["page_count"].as_u64().unwrap() as usize;
    let mut members = Vec::new();
    for offset in 0..total + 1 {
        let offset = offset.to_string();
        let page = body_json(&handle(&state, request("GET", "/clusters/0", &[("offset", &offset), ("limit", "1")])).await);
        assert_eq!(page["total_members"], total, "{page}");
        members.extend(page["members"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(members.len(), total, "the page past the end must be empty: {members:?}");
    let distinct: BTreeSet<String> = members.iter().map(|member| member["document"].to_string()).collect();
    assert_eq!(distinct.len(), total);
}

#[tokio::test]
async fn clusters_missing_summary_is_404() {
    let Some(shared) = shared_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    let state = ApiState::with_embedder(store, Layout::default(), tiny_embedder(&shared));

    for path in ["/clusters", "/clusters/0"] {
        let response = handle(&state, request("GET", path, &[])).await;
        let body = body_json(&response);
        assert_eq!(response.status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "no_cluster_summary", "{path}: {body}");
    }
    let status = body_json(&handle(&state, request("GET", "/status", &[])).await);
    assert_eq!(status["documents"], 0, "{status}");
    assert_eq!(status["snapshot_id"], Value::Null, "{status}");
}

#[tokio::test]
async fn corrupt_snapshot_pointer_is_500() {
    let Some(fixture) = fixture().await else { return };
    let store = fixture.store().await;
    let state = fixture.state().await;
    let key = format!("{}CURRENT.json", fixture.layout.index);
    store.put(&key, Bytes::from_static(b"{not json"), PutMode::Overwrite).await.unwrap();

    let response = handle(&state, request("GET", "/documents/forms/grid.png/similar", &[])).await;
    let body = body_json(&response);
    assert_eq!(response.status, 500, "{body}");
    assert_eq!(body["error"]["code"], "internal_error", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("CURRENT.json"), "{body}");
    OpenApi::load().validate("Error", &body).unwrap();
}

#[tokio::test]
async fn status_counts_documents() {
    let Some(fixture) = fixture().await else { return };
    let state = fixture.state().await;

    let status = body_json(&handle(&state, request("GET", "/status", &[])).await);
    // Six documents, the broken upload and the late arrival.
    assert_eq!(status["documents"], 8, "{status}");
    assert_eq!(status["object_errors"], 1, "{status}");
    assert_eq!(status["snapshot_id"], fixture.snapshot_id, "{status}");
    assert_eq!(status["shards_not_in_snapshot"], 1, "{status}");
}

#[test]
fn openapi_validation_rejects_wrong_bodies() {
    let openapi = OpenApi::load();
    let missing_field = json!({ "documents": [], "snapshot_id": null, "model_id": "m" });
    assert!(openapi.validate("SearchResults", &missing_field).is_err());
    let unknown_code = json!({ "error": { "code": "teapot", "message": "short and stout" } });
    assert!(openapi.validate("Error", &unknown_code).is_err());
    let with_members = json!({
        "snapshot_id": "s", "model_id": "m", "offset": 0, "limit": 1, "total_members": 1,
        "members": [{ "document": "a.tif", "page": 0 }],
        "cluster": {}
    });
    assert!(openapi.validate("ClusterMembers", &with_members).is_err());
}
