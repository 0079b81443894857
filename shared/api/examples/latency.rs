//! Query API latency on a local store of synthetic page vectors.
//!
//! Builds a store of N random unit vectors (2048 dimensions, as BiT-R50x1)
//! through the pipeline (shards via `ingest::store_object`, then an f16
//! index snapshot via `snapshot::build_snapshot`), then times `handle` on
//! `POST /search` with `{"vector": [...]}` bodies:
//!
//! - cold: the first request, which opens the engine (snapshot parts are
//!   memory-mapped from the local folder; an S3 store downloads them);
//! - warm: median and p99 of later requests on the cached engine;
//! - reload: median of requests that reload the newer-shard view each time
//!   (what one request in every refresh interval pays).
//!
//! With `--compacted` it then runs a second index build and the indexer's
//! pruning, which deletes the shard files that the first build compacted
//! into segments, and measures all three again. The engine then lists only
//! tombstones and newer shards under the vectors prefix.
//!
//! Run: `cargo build --workspace --examples`, then
//! `target/debug/examples/latency [VECTORS] [--compacted]` (default 10000 vectors).


use std::sync::Arc;
use std::time::{Duration, Instant};

use folio_api::{ApiRequest, ApiState, handle};
use folio_pipeline::ingest::EmbeddedObject;
use folio_pipeline::{DocumentVersion, Layout, PageEmbedder, ingest, shard_meta, snapshot};
use folio_shard::PageRow;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

const DIMENSIONS: usize = 2048;
const PAGES_PER_DOCUMENT: usize = 4;
const WARM_REQUESTS: usize = 300;
const RELOAD_REQUESTS: usize = 20;

/// Declares the model of the synthetic vectors; scan queries are not timed, so it embeds nothing.
struct SyntheticModel;

impl PageEmbedder for SyntheticModel {
    fn embed_pages(&self, _images: &[&image::DynamicImage]) -> Result<Vec<Vec<f32>>, String> {
        Err("the synthetic model embeds no images; send vector queries".to_owned())
    }

    fn model_id(&self) -> String {
        "synthetic-2048 (untrained)".to_owned()
    }

    fn dimensions(&self) -> usize {
        DIMENSIONS
    }

    fn preprocessing(&self) -> String {
        "none".to_owned()
    }
}

fn unit_vector(rng: &mut impl Rng) -> Vec<f32> {
    let vector: Vec<f32> = (0..DIMENSIONS).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    vector.into_iter().map(|value| value / norm).collect()
}

fn search_request(vector: &[f32]) -> ApiRequest {
    ApiRequest {
        method: "POST".into(),
        path: "/search".into(),
        query: vec![("k".into(), "10".into())],
        content_type: Some("application/json".into()),
        body: serde_json::json!({ "vector": vector }).to_string().into(),
    }
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], share: f64) -> Duration {
    let index = ((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

async fn time_requests(state: &ApiState, queries: &[Vec<f32>]) -> Vec<Duration> {
    let mut times = Vec::with_capacity(queries.len());
    for query in queries {
        let started = Instant::now();
        let response = handle(state, search_request(query)).await;
        times.push(started.elapsed());
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    }
    times.sort();
    times
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let compacted = arguments.iter().any(|argument| argument == "--compacted");
    let vectors: usize = match arguments.iter().find(|argument| !argument.starts_with("--")) {
        Some(text) => text.parse().map_err(|_| format!("invalid vector count {text:?}; expected a positive integer"))?,
        None => 10_000,
    };
    let dir = tempfile::tempdir()?;
    let store = folio_store::Store::open(dir.path().to_str().ok_or("temporary path is not UTF-8")?).await?;
    let layout = Layout::default();
    let model = SyntheticModel;
    let meta = shard_meta(&model);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);

    let started = Instant::now();
    let documents = vectors.div_ceil(PAGES_PER_DOCUMENT);
    for number in 0..documents {
        let document = DocumentVersion {
            document: format!("synthetic/{number:06}.tif"),
            version: "v1".into(),
            sequencer: format!("{:X}", number + 1),
        };
        let pages = PAGES_PER_DOCUMENT.min(vectors - number * PAGES_PER_DOCUMENT);
        let rows = (1..=pages as u32)
            .map(|page| {
                let vector = unit_vector(&mut rng);
                PageRow::embedded(&document.document, &document.version, &document.sequencer, page, (2550, 3300), None, vector)
            })
            .collect();
        let embedded = EmbeddedObject {
            rows,
            pages_embedded: pages as u32,
            ..Default::default()
        };
        ingest::store_object(&store, &layout, &meta, &document, &embedded).await?;
    }
    let shards_written = started.elapsed();

    let started = Instant::now();
    let options = folio_index::IndexOptions::default();
    let manifest = snapshot::build_snapshot(&store, &layout, &model.model_id(), DIMENSIONS, &options).await?;
    let snapshot_built = started.elapsed();

    let queries: Vec<Vec<f32>> = (0..WARM_REQUESTS + 1).map(|_| unit_vector(&mut rng)).collect();
    println!("vectors: {vectors} ({documents} documents x {PAGES_PER_DOCUMENT} pages, {DIMENSIONS} dimensions)");
    println!(
        "index: {:?}, {} part(s), {} segment(s), snapshot {}",
        options.quantisation,
        manifest.parts.len(),
        manifest.segments.len(),
        manifest.snapshot_id
    );
    println!("setup: shards written in {:.1} s, snapshot built in {:.1} s", shards_written.as_secs_f64(), snapshot_built.as_secs_f64());
    measure(dir.path(), &layout, &queries).await?;

    if compacted {
        let started = Instant::now();
        let manifest = snapshot::build_snapshot(&store, &layout, &model.model_id(), DIMENSIONS, &options).await?;
        let rebuilt = started.elapsed();
        let started = Instant::now();
        let pruned = snapshot::prune_snapshots(&store, &layout, 2).await?
            + snapshot::prune_superseded_shards(&store, &layout, &manifest).await?;
        let listed: usize = folio_pipeline::live::list_shards(&store, &layout).await?.values().map(Vec::len).sum();
        println!(
            "\nsecond build: {:.1} s, read {} shard files and {} segments; pruned {pruned} files in {:.1} s; {listed} shard files remain",
            rebuilt.as_secs_f64(),
            manifest.shard_files_read,
            manifest.segments_read,
            started.elapsed().as_secs_f64()
        );
        measure(dir.path(), &layout, &queries).await?;
    }
    Ok(())
}

/// Times the cold request, the warm requests and the reloading requests on fresh API states over the store in `root`.
async fn measure(root: &std::path::Path, layout: &Layout, queries: &[Vec<f32>]) -> Result<(), Box<dyn std::error::Error>> {
    let open = || folio_store::Store::open(root.to_str().expect("the temporary path is UTF-8"));
    let state = ApiState::with_embedder(open().await?, layout.clone(), Arc::new(SyntheticModel));
    let cold = time_requests(&state, &queries[..1]).await[0];
    let warm = time_requests(&state, &queries[1..]).await;

    let reloading = ApiState::with_embedder(open().await?, layout.clone(), Arc::new(SyntheticModel)).with_refresh_interval(Duration::ZERO);
    time_requests(&reloading, &queries[..1]).await;
    let reload = time_requests(&reloading, &queries[1..=RELOAD_REQUESTS]).await;

    println!("cold (first request, engine open): {:.1} ms", milliseconds(cold));
    println!(
        "warm ({} requests): median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        warm.len(),
        milliseconds(percentile(&warm, 0.5)),
        milliseconds(percentile(&warm, 0.99)),
        milliseconds(*warm.last().unwrap())
    );
    println!(
        "reload on every request ({} requests): median {:.1} ms, max {:.1} ms",
        reload.len(),
        milliseconds(percentile(&reload, 0.5)),
        milliseconds(*reload.last().unwrap())
    );
    Ok(())
}
