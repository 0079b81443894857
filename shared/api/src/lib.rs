//! Folio's query API, independent of the transport: the query Lambda turns
//! API Gateway events into an [`ApiRequest`], `folio serve` turns HTTP
//! requests into one, and both send back the [`ApiResponse`] of [`handle`].
//!
//! Routes (every response is JSON; the OpenAPI 3.1 description is
//! `openapi.json` beside this crate's `Cargo.toml`, also in [`OPENAPI_JSON`]):
//!
//! - `POST /search`: the documents most similar to a scan in the body
//!   (TIFF, PNG, JPEG or PDF, every page a query page), to a stored
//!   document (`{"document": key, "page": n}`) or to a vector
//!   (`{"vector": [...]}`).
//! - `GET /documents/{key}/similar`: the documents most similar to a
//!   stored document, the document itself left out.
//! - `GET /clusters` and `GET /clusters/{id}`: the latest cluster summary,
//!   and one cluster with a page of its members.
//! - `GET /status`: store-wide counts ([`folio_pipeline::status::Status`]).
//!
//! Client mistakes get a 4xx `{"error": {"code", "message"}}` whose message
//! names the value and the fix; only store and internal faults get 5xx.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use folio_api::{ApiRequest, ApiState, handle};
//!
//! let store = folio_store::Store::open("folio-store").await?;
//! let state = ApiState::new(store, folio_pipeline::Layout::default());
//! let request = ApiRequest {
//!     method: "GET".into(),
//!     path: "/documents/letters%2F1999%2Fa.tif/similar".into(),
//!     query: vec![("k".into(), "5".into())],
//!     content_type: None,
//!     body: bytes::Bytes::new(),
//! };
//! let response = handle(&state, request).await;
//! println!("{} {}", response.status, String::from_utf8_lossy(&response.body));
//! # Ok(()) }
//! ```

mod clusters;
mod error;
mod params;
mod query;
mod routes;
mod state;

use std::time::Instant;

pub use error::{ApiError, error_response};
pub use params::{DEFAULT_K, DEFAULT_MEMBER_LIMIT, MAX_K, MAX_MEMBER_LIMIT};
pub use query::{MAX_QUERY_PAGES, QUERY_PAGE_DECODE_LIMIT, ScanQuery, embed_scan};
pub use state::{ApiState, ENGINE_REFRESH_INTERVAL, ModelInfo};

/// Largest request body accepted: API Gateway rejects payloads above
/// 10 MB, so the API applies the same limit on every transport.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// The OpenAPI 3.1 description of every route, parameter and response.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// One HTTP request, reduced to what the routes read.
#[derive(Clone, Debug, Default)]
pub struct ApiRequest {
    /// HTTP method in upper case, e.g. `GET`.
    pub method: String,
    /// Path without the query string; document keys in it may be percent-encoded.
    pub path: String,
    /// Query parameters, already percent-decoded, in request order.
    pub query: Vec<(String, String)>,
    /// `Content-Type` header value, with any parameters (`; charset=...`).
    pub content_type: Option<String>,
    pub body: bytes::Bytes,
}

/// One HTTP response; the body is JSON on every route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl ApiResponse {
    /// Serialises `value` as the JSON body of a response with `status`.
    pub fn json<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> ApiResponse {
        match serde_json::to_vec(value) {
            Ok(body) => ApiResponse {
                status,
                content_type: "application/json".to_owned(),
                body,
            },
            // Only non-string map keys or a failing Serialize impl get here; no response type has either.
            Err(error) => {
                tracing::error!(%error, "failed to serialise a response body");
                ApiResponse {
                    status: 500,
                    content_type: "application/json".to_owned(),
                    body: br#"{"error":{"code":"internal_error","message":"failed to serialise the response"}}"#.to_vec(),
                }
            }
        }
    }
}

/// Routes one request and returns its response. Bad input never panics
/// and every error becomes a JSON error response; server faults are also logged.
pub async fn handle(state: &ApiState, request: ApiRequest) -> ApiResponse {
    let started = Instant::now();
    // Boxed so that callers' futures do not embed the route's: its layout nests the search
    // engine and the store deeply enough to pass rustc's default query depth (128) in a
    // caller's async fn.
    let response = match Box::pin(routes::route(state, &request)).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    tracing::info!(
        method = %request.method,
        path = %request.path,
        status = response.status,
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "handled request"
    );
    response
}
