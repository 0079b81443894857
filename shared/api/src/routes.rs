//! Routing and the search routes.

use folio_pipeline::search::SearchResults;

use crate::error::ApiError;
use crate::params::Params;
use crate::query::{JsonQuery, parse_json_query};
use crate::{ApiRequest, ApiResponse, ApiState, MAX_BODY_BYTES, clusters};

const SIMILAR_SUFFIX: &str = "/similar";

/// Response body of both search routes: the engine's results plus what the
/// caller needs to judge them.
#[derive(serde::Serialize)]
struct SearchResponse {
    #[serde(flatten)]
    results: SearchResults,
    /// False when the model has random weights, so similarities mean little.
    model_trained: bool,
    /// Number of query vectors searched with (pages of the scan or document).
    query_pages: usize,
    /// Pages of an uploaded scan that could not be decoded, with the reason.
    skipped_query_pages: Vec<String>,
}

/// Dispatches a request to its route.
pub(crate) async fn route(state: &ApiState, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    if request.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::BodyTooLarge {
            size: request.body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let path = request.path.as_str();
    let method = request.method.to_ascii_uppercase();
    let require = |allowed: &'static str| {
        if method == allowed {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed {
                method: method.clone(),
                path: path.to_owned(),
                allowed,
            })
        }
    };

    match path {
        "/search" => {
            require("POST")?;
            search(state, request).await
        }
        "/clusters" => {
            require("GET")?;
            Params::new(&request.query, &[])?;
            clusters::overview(state).await
        }
        "/status" => {
            require("GET")?;
            Params::new(&request.query, &[])?;
            let status = folio_pipeline::status::status(&state.store, &state.layout).await?;
            Ok(ApiResponse::json(200, &status))
        }
        _ => {
            if let Some(id) = path.strip_prefix("/clusters/") {
                require("GET")?;
                let params = Params::new(&request.query, &["offset", "limit"])?;
                return clusters::cluster(state, id, params.offset()?, params.limit()?).await;
            }
            if let Some(encoded) = path.strip_prefix("/documents/").and_then(|rest| rest.strip_suffix(SIMILAR_SUFFIX)) {
                require("GET")?;
                return similar(state, request, encoded).await;
            }
            Err(ApiError::UnknownRoute {
                method,
                path: path.to_owned(),
            })
        }
    }
}

/// Format of a search body, taken from its content type.
enum BodyKind {
    Json,
    Scan,
}

fn body_kind(content_type: Option<&str>) -> Result<BodyKind, ApiError> {
    let Some(header) = content_type else {
        return Err(ApiError::UnsupportedMediaType {
            content_type: "(none)".to_owned(),
        });
    };
    let essence = header.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(BodyKind::Json)
    } else if essence.starts_with("image/") || essence == "application/pdf" || essence == "application/octet-stream" {
        Ok(BodyKind::Scan)
    } else {
        Err(ApiError::UnsupportedMediaType {
            content_type: header.to_owned(),
        })
    }
}

/// `POST /search`.
async fn search(state: &ApiState, request: &ApiRequest) -> Result<ApiResponse, ApiError> {
    let kind = body_kind(request.content_type.as_deref())?;
    let accepted: &[&str] = match kind {
        BodyKind::Json => &["k", "min_score"],
        BodyKind::Scan => &["k", "min_score", "page"],
    };
    let params = Params::new(&request.query, accepted)?;
    let (k, min_score) = (params.k()?, params.min_score()?);
    if request.body.is_empty() {
        return Err(ApiError::EmptyBody);
    }

    match kind {
        BodyKind::Json => match parse_json_query(&request.body, state.model.dimensions)? {
            JsonQuery::Vector(vector) => {
                let engine = state.engine().await?;
                let results = engine.search(&[vector], k, min_score, None)?;
                Ok(search_response(state, results, 1, Vec::new()))
            }
            // The document's own pages would be its best matches, so it is left out, as in `folio search --document`.
            JsonQuery::Document { document, page } => document_search(state, &document, page, k, min_score).await,
        },
        BodyKind::Scan => {
            let page = params.page()?;
            let embedder = state.embedder().await?;
            let body = request.body.clone();
            // Decoding and embedding are CPU-bound; keep them off the async workers.
            let query = tokio::task::spawn_blocking(move || crate::query::embed_scan(embedder.as_ref(), body, page))
                .await
                .map_err(|error| ApiError::Internal(format!("decoding the query scan panicked: {error}")))??;
            let engine = state.engine().await?;
            let results = engine.search(&query.vectors, k, min_score, None)?;
            Ok(search_response(state, results, query.vectors.len(), query.skipped))
        }
    }
}

/// `GET /documents/{key}/similar`; the key may be percent-encoded.
async fn similar(state: &ApiState, request: &ApiRequest, encoded_key: &str) -> Result<ApiResponse, ApiError> {
    let params = Params::new(&request.query, &["k", "min_score", "page"])?;
    let (k, min_score, page) = (params.k()?, params.min_score()?, params.page()?);
    let document = percent_encoding::percent_decode_str(encoded_key)
        .decode_utf8()
        .map_err(|_| ApiError::InvalidPath {
            reason: format!("document key {encoded_key:?} is not valid UTF-8 after percent-decoding"),
        })?;
    if document.is_empty() {
        return Err(ApiError::InvalidPath {
            reason: "the document key is empty; use /documents/{key}/similar".to_owned(),
        });
    }
    document_search(state, &document, page, k, min_score).await
}

async fn document_search(
    state: &ApiState,
    document: &str,
    page: Option<u32>,
    k: usize,
    min_score: f32,
) -> Result<ApiResponse, ApiError> {
    let engine = state.engine().await?;
    let queries = engine.document_vectors(&state.store, document, page).await?;
    let results = engine.search(&queries, k, min_score, Some(document))?;
    Ok(search_response(state, results, queries.len(), Vec::new()))
}

fn search_response(state: &ApiState, results: SearchResults, query_pages: usize, skipped: Vec<String>) -> ApiResponse {
    let response = SearchResponse {
        results,
        model_trained: state.model.trained,
        query_pages,
        skipped_query_pages: skipped,
    };
    ApiResponse::json(200, &response)
}
