//! Lambda entry point of the ingest function; the work is in the library.

// The AWS SDK futures nest deeper than the default limit of 128 allows.
#![recursion_limit = "256"]

use std::sync::Arc;

use aws_lambda_events::s3::S3Event;
use folio_pipeline::Layout;
use folio_store::{Access, Store};
use ingest::{ACCESS_JSON, Ingest};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();

    let config = aws_config::load_from_env().await;
    let client = aws_sdk_s3::Client::new(&config);
    let layout = Layout::from_env();
    let access = Access::from_json(ACCESS_JSON, |name| layout.prefix_for_variable(name))?;
    // Objects above FOLIO_SPILL_BYTES (64 MiB by default) are streamed to a
    // file in /tmp, so the largest object is bounded by the function's
    // ephemeral storage and FOLIO_MAX_OBJECT_BYTES (2 GiB by default).
    let spill = ingest::spill_from_env()?;
    tracing::info!(threshold_bytes = spill.threshold_bytes, max_object_bytes = spill.max_object_bytes, dir = %spill.dir.display(), "spill settings");
    let embedder = folio_model::embedder()?;
    let ingest = Arc::new(Ingest {
        store_for_bucket: Box::new(move |bucket| {
            Store::from_s3_client(client.clone(), bucket, "")
                .with_access(access.clone())
                .with_spill(spill.clone())
        }),
        layout,
        embedder: Arc::new(embedder),
        limits: folio_pages::Limits::default(),
        batch: folio_pipeline::ingest::DEFAULT_BATCH,
    });

    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| {
        let ingest = ingest.clone();
        async move {
            let reports = ingest.handle_event(&event.payload).await?;
            Ok::<_, Error>(serde_json::to_value(reports)?)
        }
    }))
    .await
}
