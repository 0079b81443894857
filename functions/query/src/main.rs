//! The query Lambda function: serves Folio's HTTP API (API Gateway HTTP
//! API, payload format 2.0) by passing each request to [`folio_api::handle`].
//!
//! Environment: `FOLIO_BUCKET` (required), the `FOLIO_*_PREFIX` variables
//! read by [`folio_pipeline::Layout::from_env`], and `RUST_LOG` for the log
//! filter (default `info`). The store is restricted to the prefixes in
//! `access.json`, the same file the deployment template's IAM policy is
//! checked against.

// The future of `main`, which contains the whole request path, nests deeper
// than rustc's default limit of 128 allows for computing its layout.
#![recursion_limit = "256"]

mod convert;

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use folio_api::{ApiState, handle};
use folio_pipeline::Layout;
use folio_store::{Access, Store};
use lambda_runtime::{Error, LambdaEvent, service_fn};

const ACCESS_JSON: &str = include_str!("../access.json");

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Lambda adds its own timestamp and request id to every log line.
        .without_time()
        .with_current_span(false)
        .init();

    let bucket = std::env::var("FOLIO_BUCKET")
        .map_err(|_| "FOLIO_BUCKET is not set; set it to the bucket that holds the Folio store")?;
    let layout = Layout::from_env();
    let access = Access::from_json(ACCESS_JSON, |name| layout.prefix_for_variable(name))?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = Store::from_s3_client(aws_sdk_s3::Client::new(&config), &bucket, "").with_access(access);
    let state = ApiState::new(store, layout.clone());
    tracing::info!(bucket = %bucket, model = %state.model().id, ?layout, "query function started");
    let state = Arc::new(state);

    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        let state = state.clone();
        async move { Ok::<_, Error>(answer(&state, event.payload).await) }
    }))
    .await
}

async fn answer(state: &ApiState, event: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let response = match convert::to_api_request(event) {
        Ok(request) => handle(state, request).await,
        Err(rejection) => {
            tracing::info!(status = rejection.status, "rejected an undecodable request body");
            rejection
        }
    };
    convert::to_gateway_response(response)
}
