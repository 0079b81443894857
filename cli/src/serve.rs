//! `folio serve`: the query function's HTTP API on 127.0.0.1, through the
//! same handler the Lambda function calls.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use clap::Args;
use folio_api::{ApiRequest, ApiState};
use folio_pipeline::Layout;
use folio_store::Store;

/// Largest request body accepted, as API Gateway's payload limit (10 MB).
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

#[derive(Args)]
pub struct ServeArgs {
    /// TCP port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
}

pub async fn run(store: Store, layout: Layout, args: &ServeArgs) -> anyhow::Result<()> {
    let state = Arc::new(ApiState::new(store, layout));
    let app = axum::Router::new().fallback(forward).with_state(state);
    let address = SocketAddr::from(([127, 0, 0, 1], args.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    println!("serving the Folio API on http://{address} (routes: POST /search, GET /documents/{{key}}/similar, GET /clusters, GET /clusters/{{id}}, GET /status)");
    axum::serve(listener, app).await.context("the HTTP server stopped")
}

async fn forward(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // One byte over the limit is read, so the shared handler sees the body
    // as too large and answers 413 with its own message.
    let body: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(body) => body,
        Err(_) => {
            let message = format!(
                "{{\"error\":{{\"code\":\"body_too_large\",\"message\":\"the request body is larger than {MAX_BODY_BYTES} bytes, the API Gateway payload limit; send a smaller image (one page) or search by document\"}}}}"
            );
            return Response::builder()
                .status(StatusCode::PAYLOAD_TOO_LARGE)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(message))
                .expect("a static response is valid");
        }
    };
    let query = parts
        .uri
        .query()
        .map(|query| {
            query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(name), decode(value))
                })
                .collect()
        })
        .unwrap_or_default();
    let request = ApiRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query,
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body,
    };
    let answer = folio_api::handle(&state, request).await;
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = HeaderValue::from_str(&answer.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// Decodes a query-string component (`+` is a space, then `%XX`).
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " ")).decode_utf8_lossy().into_owned()
}
