//! Errors of the API and their HTTP form: a status code and
//! `{"error": {"code": "...", "message": "..."}}`.

use folio_pipeline::search::SearchError;
use folio_pipeline::snapshot::SnapshotError;
use folio_store::StoreError;

use crate::ApiResponse;

/// Failures of a request. Client errors carry the offending value and tell
/// the caller what to send instead, while server faults carry the cause.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no route {method} {path}; routes: POST /search, GET /documents/{{key}}/similar, GET /clusters, GET /clusters/{{id}}, GET /status")]
    UnknownRoute { method: String, path: String },
    #[error("method {method} is not allowed on {path}; use {allowed}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allowed: &'static str,
    },
    #[error("invalid query parameter {name}={value:?}: {reason}")]
    InvalidParameter {
        name: String,
        value: String,
        reason: String,
    },
    #[error("invalid path: {reason}")]
    InvalidPath { reason: String },
    #[error("the request body is empty; send a scan (TIFF, PNG, JPEG or PDF) or a JSON query")]
    EmptyBody,
    #[error("invalid JSON body: {reason}")]
    InvalidJson { reason: String },
    #[error("invalid query vector: {reason}")]
    InvalidVector { reason: String },
    #[error("the request body is {size} bytes, over the limit of {limit} bytes; send a smaller scan (for example one page, or a lower resolution)")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("unsupported content type {content_type:?}; send image/* (TIFF, PNG, JPEG), application/pdf, application/octet-stream or application/json")]
    UnsupportedMediaType { content_type: String },
    #[error("the query scan could not be decoded: {reason}")]
    InvalidImage { reason: String },
    #[error("the query scan has at least {pages} pages, over the limit of {limit}; pick one with ?page=N or send fewer pages")]
    TooManyPages { pages: u32, limit: u32 },
    #[error("the query scan has no page {page}; it has {pages} pages")]
    UnknownQueryPage { page: u32, pages: u32 },
    #[error("{0}")]
    UnknownDocument(String),
    #[error("{0}")]
    UnknownPage(String),
    #[error("{0}; re-ingest it or search with another document")]
    NoEmbeddedPages(String),
    #[error("no cluster summary exists yet under {prefix}; the scheduled index build writes one")]
    NoClusterSummary { prefix: String },
    #[error("cluster {id} does not exist; the current summary has clusters 0 to {last}")]
    UnknownCluster { id: String, last: usize },
    #[error("the store is temporarily unavailable; retry later: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// HTTP status code of this error.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::UnknownRoute { .. }
            | ApiError::UnknownDocument(_)
            | ApiError::UnknownPage(_)
            | ApiError::NoClusterSummary { .. }
            | ApiError::UnknownCluster { .. } => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::InvalidParameter { .. }
            | ApiError::InvalidPath { .. }
            | ApiError::EmptyBody
            | ApiError::InvalidJson { .. }
            | ApiError::InvalidVector { .. } => 400,
            ApiError::BodyTooLarge { .. } => 413,
            ApiError::UnsupportedMediaType { .. } => 415,
            ApiError::InvalidImage { .. }
            | ApiError::TooManyPages { .. }
            | ApiError::UnknownQueryPage { .. }
            | ApiError::NoEmbeddedPages(_) => 422,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// Stable machine-readable code, the `error.code` field of the response.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::UnknownRoute { .. } => "unknown_route",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::InvalidPath { .. } => "invalid_path",
            ApiError::EmptyBody => "empty_body",
            ApiError::InvalidJson { .. } => "invalid_json",
            ApiError::InvalidVector { .. } => "invalid_vector",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::InvalidImage { .. } => "invalid_image",
            ApiError::TooManyPages { .. } => "too_many_pages",
            ApiError::UnknownQueryPage { .. } => "unknown_query_page",
            ApiError::UnknownDocument(_) => "unknown_document",
            ApiError::UnknownPage(_) => "unknown_page",
            ApiError::NoEmbeddedPages(_) => "no_embedded_pages",
            ApiError::NoClusterSummary { .. } => "no_cluster_summary",
            ApiError::UnknownCluster { .. } => "unknown_cluster",
            ApiError::Unavailable(_) => "store_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// Builds a store error's API form: 503 when a retry may succeed, 500 otherwise.
    pub fn from_store(error: &StoreError) -> ApiError {
        if error.is_retryable() {
            ApiError::Unavailable(error.to_string())
        } else {
            ApiError::Internal(error.to_string())
        }
    }

    /// Turns this error into a JSON response, logging server faults.
    pub fn into_response(self) -> ApiResponse {
        let status = self.status();
        let message = self.to_string();
        if status >= 500 {
            tracing::error!(status, code = self.code(), error = %message, "request failed with a server fault");
        } else {
            tracing::info!(status, code = self.code(), error = %message, "request rejected");
        }
        error_response(status, self.code(), &message)
    }
}

/// Builds an error response in the API's JSON shape, for callers such as
/// the Lambda shell that reject a request before [`crate::handle`] runs.
pub fn error_response(status: u16, code: &str, message: &str) -> ApiResponse {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    ApiResponse::json(status, &body)
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> ApiError {
        match error {
            SearchError::UnknownDocument { .. } => ApiError::UnknownDocument(error.to_string()),
            SearchError::UnknownPage { .. } => ApiError::UnknownPage(error.to_string()),
            SearchError::NoEmbeddedPages { .. } => ApiError::NoEmbeddedPages(error.to_string()),
            SearchError::Store(ref store) => ApiError::from_store(store),
            SearchError::Snapshot(snapshot) => snapshot.into(),
            SearchError::Live(folio_pipeline::live::LiveError::Store(ref store)) => ApiError::from_store(store),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<SnapshotError> for ApiError {
    fn from(error: SnapshotError) -> ApiError {
        match error {
            SnapshotError::Store(ref store) => ApiError::from_store(store),
            SnapshotError::Live(folio_pipeline::live::LiveError::Store(ref store)) => ApiError::from_store(store),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ApiError::from_store(&error)
    }
}
