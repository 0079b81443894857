//! State kept by a warm container between requests: the store, the
//! embedder (loaded on the first scan query) and the search engine
//! (reloaded when its view of the store is too old).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use folio_clusters::ClusterSummary;
use folio_pipeline::search::SearchEngine;
use folio_pipeline::{Layout, PageEmbedder};
use folio_store::Store;

use crate::error::ApiError;

/// Age after which the engine's view of the shards newer than the snapshot
/// is reloaded, because documents uploaded after the snapshot was built
/// must be found within seconds. A reload that finds the same snapshot only
/// lists and reads the newer shards, so 10 s limits that cost to six
/// listings a minute on a busy container. A reload also reads
/// `index/CURRENT.json`, so a new snapshot is used within the same interval.
// NOTE: a reload lists the vectors prefix. Once the indexer has compacted
// and pruned, that is tombstones plus the shards written since the build
// before last. Unpruned, the cost grows with the number of documents (40 ms
// for 2,500 and about 0.8 s for 25,000 in a local folder), and on S3 each
// 1,000 keys are one more LIST round trip.
pub const ENGINE_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// The embedding model whose vectors the API searches.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModelInfo {
    /// Model id recorded with every vector, e.g. `bit-m-r50x1-random-seed0 (untrained)`.
    pub id: String,
    pub dimensions: usize,
    /// False for random-weight models, whose similarities mean little.
    pub trained: bool,
}

impl ModelInfo {
    /// Describes the model of `embedder`. Model ids name an untrained model
    /// as such (the `PageEmbedder::model_id` contract), which is how
    /// `trained` is derived.
    pub fn of_embedder(embedder: &dyn PageEmbedder) -> ModelInfo {
        let id = embedder.model_id();
        ModelInfo {
            trained: !folio_pipeline::is_untrained(&id),
            dimensions: embedder.dimensions(),
            id,
        }
    }
}

type EmbedderLoader = Arc<dyn Fn() -> Result<Arc<dyn PageEmbedder>, String> + Send + Sync>;

/// An engine and when it was opened.
struct CachedEngine {
    engine: Arc<SearchEngine>,
    opened_at: Instant,
}

/// A summary and the key it was read from, so a request reads only the small pointer
/// while the summary is unchanged.
pub(crate) struct CachedSummary {
    pub(crate) key: String,
    pub(crate) summary: Arc<ClusterSummary>,
}

/// State shared by every request of one container or server. It is `Send + Sync`:
/// concurrent requests share one engine and one embedder.
pub struct ApiState {
    pub(crate) store: Store,
    pub(crate) layout: Layout,
    pub(crate) model: ModelInfo,
    embedder: tokio::sync::OnceCell<Arc<dyn PageEmbedder>>,
    load_embedder: Option<EmbedderLoader>,
    engine: RwLock<Option<Arc<CachedEngine>>>,
    /// Held while the engine is (re)loaded, so concurrent requests do not load it twice.
    reload_lock: tokio::sync::Mutex<()>,
    refresh_interval: Duration,
    pub(crate) summary: RwLock<Option<CachedSummary>>,
}

impl ApiState {
    /// State for the model linked into this binary ([`folio_model`]). The
    /// embedder is built on the first scan query (about 0.5 s) and kept.
    #[cfg(feature = "linked-model")]
    pub fn new(store: Store, layout: Layout) -> ApiState {
        let identity = folio_model::identity();
        let model = ModelInfo {
            id: identity.to_string(),
            dimensions: identity.dimensions,
            trained: identity.trained,
        };
        let loader: EmbedderLoader = Arc::new(|| {
            let embedder = folio_model::embedder().map_err(|error| format!("failed to load the linked model: {error}"))?;
            Ok(Arc::new(embedder) as Arc<dyn PageEmbedder>)
        });
        ApiState::build(store, layout, model, tokio::sync::OnceCell::new(), Some(loader))
    }

    /// State with an embedder the caller already built, such as a small
    /// model in tests or a model read from a file.
    pub fn with_embedder(store: Store, layout: Layout, embedder: Arc<dyn PageEmbedder>) -> ApiState {
        let model = ModelInfo::of_embedder(embedder.as_ref());
        ApiState::build(store, layout, model, tokio::sync::OnceCell::new_with(Some(embedder)), None)
    }

    fn build(
        store: Store,
        layout: Layout,
        model: ModelInfo,
        embedder: tokio::sync::OnceCell<Arc<dyn PageEmbedder>>,
        load_embedder: Option<EmbedderLoader>,
    ) -> ApiState {
        ApiState {
            store,
            layout,
            model,
            embedder,
            load_embedder,
            engine: RwLock::new(None),
            reload_lock: tokio::sync::Mutex::new(()),
            refresh_interval: ENGINE_REFRESH_INTERVAL,
            summary: RwLock::new(None),
        }
    }

    /// Sets how old the engine's view of the store may get before a request
    /// reloads it (default [`ENGINE_REFRESH_INTERVAL`]; zero reloads on
    /// every request).
    pub fn with_refresh_interval(mut self, interval: Duration) -> ApiState {
        self.refresh_interval = interval;
        self
    }

    /// Returns the model whose vectors this state searches.
    pub fn model(&self) -> &ModelInfo {
        &self.model
    }

    /// Returns the embedder, building it on first use.
    pub(crate) async fn embedder(&self) -> Result<Arc<dyn PageEmbedder>, ApiError> {
        let embedder = self
            .embedder
            .get_or_try_init(|| async {
                let loader = self
                    .load_embedder
                    .clone()
                    .ok_or_else(|| ApiError::Internal("no embedder was configured".to_owned()))?;
                let started = Instant::now();
                // Building the tract plan is CPU-bound; keep it off the async workers.
                let embedder = tokio::task::spawn_blocking(move || loader())
                    .await
                    .map_err(|error| ApiError::Internal(format!("the model loader panicked: {error}")))?
                    .map_err(ApiError::Internal)?;
                tracing::info!(model = %self.model.id, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "loaded the embedder");
                Ok::<_, ApiError>(embedder)
            })
            .await?;
        Ok(embedder.clone())
    }

    fn cached_engine(&self) -> Option<Arc<CachedEngine>> {
        self.engine.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Returns the search engine, reloading it when its view is older than
    /// the refresh interval. While one request reloads, other requests are
    /// served from the previous view; a failed reload keeps the previous
    /// view and is logged.
    pub(crate) async fn engine(&self) -> Result<Arc<SearchEngine>, ApiError> {
        let cached = self.cached_engine();
        if let Some(cached) = &cached {
            if cached.opened_at.elapsed() < self.refresh_interval {
                return Ok(cached.engine.clone());
            }
            let Ok(_guard) = self.reload_lock.try_lock() else {
                return Ok(cached.engine.clone());
            };
            // Another request may have reloaded between the read above and the lock.
            let latest = self.cached_engine().unwrap_or_else(|| cached.clone());
            if latest.opened_at.elapsed() < self.refresh_interval {
                return Ok(latest.engine.clone());
            }
            return match self.reload(Some(latest.engine.as_ref())).await {
                Ok(engine) => Ok(engine),
                Err(error) => {
                    tracing::warn!(%error, "failed to reload the search engine; serving the previous view");
                    Ok(latest.engine.clone())
                }
            };
        }

        let _guard = self.reload_lock.lock().await;
        // Another request may have loaded the engine while this one waited.
        if let Some(cached) = self.cached_engine() {
            return Ok(cached.engine.clone());
        }
        self.reload(None).await
    }

    async fn reload(&self, previous: Option<&SearchEngine>) -> Result<Arc<SearchEngine>, ApiError> {
        let started = Instant::now();
        let engine = match previous {
            Some(previous) => previous.refresh(&self.store, &self.layout).await?,
            None => SearchEngine::open(&self.store, &self.layout, &self.model.id, self.model.dimensions).await?,
        };
        let engine = Arc::new(engine);
        tracing::info!(
            snapshot = engine.manifest().map(|manifest| manifest.snapshot_id.as_str()).unwrap_or("none"),
            fresh_pages = engine.fresh_pages(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "opened the search engine"
        );
        *self.engine.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(CachedEngine {
            engine: engine.clone(),
            opened_at: Instant::now(),
        }));
        Ok(engine)
    }
}
