//! Lambda entry point of the scheduled indexer; the work is in the library.

// The AWS SDK futures nest deeper than the default limit of 128 allows.
#![recursion_limit = "256"]

use aws_lambda_events::eventbridge::EventBridgeEvent;
use folio_store::{Access, Store};
use indexer::{ACCESS_JSON, Settings};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .without_time()
        .init();

    let settings = Settings::from_env()?;
    let bucket = std::env::var("FOLIO_BUCKET").map_err(|_| "FOLIO_BUCKET is not set; the template sets it to the scans bucket")?;
    let config = aws_config::load_from_env().await;
    let access = Access::from_json(ACCESS_JSON, |name| settings.layout.prefix_for_variable(name))?;
    let store = Store::from_s3_client(aws_sdk_s3::Client::new(&config), &bucket, "").with_access(access);

    let (store, settings) = (&store, &settings);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<EventBridgeEvent>| async move {
        let report = indexer::run(store, settings).await?;
        tracing::info!(report = %serde_json::to_string(&report).unwrap_or_default(), "indexer run finished");
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
