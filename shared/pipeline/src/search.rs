//! Reverse image search: "which documents look like this page?".
//!
//! A [`SearchEngine`] joins the current snapshot (approximate HNSW search)
//! with the shards written since (exact search), and hides pages of
//! documents that were deleted or overwritten after the snapshot. Page hits
//! are grouped into documents, best first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use folio_index::{ExactIndex, Hit, Searcher};
use folio_store::Store;

use crate::layout::{Layout, document_hash};
use crate::live::{self, ShardEntry};
use crate::snapshot::{self, Manifest, PageRef, SnapshotError};

/// Index keys at or above this value belong to pages newer than the snapshot.
const FRESH_KEY_BASE: u64 = 1 << 62;

/// Page hits fetched per query page for each document requested: a
/// document often matches with several pages, so more page hits than `k`
/// are needed to fill `k` documents.
const PAGE_HITS_PER_DOCUMENT: usize = 4;

/// A page of a result document and the query page it matched.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PageMatch {
    pub page: u32,
    pub score: f32,
    /// 1-based page of the query that this page matched best.
    pub query_page: u32,
}

/// A result document: its score is its best page's score.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DocumentMatch {
    pub document: String,
    pub score: f32,
    /// Best-matching pages, best first.
    pub pages: Vec<PageMatch>,
}

/// Search results with the provenance a reader needs to trust them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchResults {
    pub documents: Vec<DocumentMatch>,
    pub snapshot_id: Option<String>,
    /// Seconds since the Unix epoch when the snapshot was built.
    pub snapshot_created_at: Option<u64>,
    pub model_id: String,
    /// Pages searched exactly because they are newer than the snapshot.
    pub fresh_pages: usize,
}

/// The current snapshot plus every newer shard, ready to search.
pub struct SearchEngine {
    manifest: Option<Arc<Manifest>>,
    /// Shared with the engines that [`SearchEngine::refresh`] derives while the snapshot stays current.
    searcher: Option<Arc<Searcher>>,
    keymap: Arc<Vec<PageRef>>,
    /// Index keys of each snapshot document's pages, as (page, key) in page order.
    document_keys: Arc<HashMap<String, Vec<(u32, u64)>>>,
    /// Index keys of each snapshot document, by document hash.
    hash_keys: Arc<HashMap<String, Vec<u64>>>,
    /// Document of each shard in the snapshot, by shard key.
    snapshot_documents: Arc<HashMap<String, String>>,
    /// Snapshot keys whose document was deleted or replaced since the snapshot.
    hidden_keys: HashSet<u64>,
    fresh: ExactIndex,
    fresh_pages: Vec<PageRef>,
    /// Current shard of every document, by document hash.
    current: HashMap<String, ShardEntry>,
    model_id: String,
    dims: usize,
}

/// Errors from searching.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Live(#[from] live::LiveError),
    #[error(transparent)]
    Index(#[from] folio_index::IndexError),
    #[error("document {document:?} is not in the store (or was deleted)")]
    UnknownDocument { document: String },
    #[error("document {document:?} has no page {page}; it has pages {available}")]
    UnknownPage {
        document: String,
        page: u32,
        available: String,
    },
    #[error("document {document:?} has no embedded page to search with")]
    NoEmbeddedPages { document: String },
    #[error("{0}")]
    Store(#[from] folio_store::StoreError),
}

impl SearchEngine {
    /// Opens the current snapshot (if any) and every shard newer than it.
    /// Only pages embedded by `model_id` with `dims` dimensions are searched.
    pub async fn open(store: &Store, layout: &Layout, model_id: &str, dims: usize) -> Result<SearchEngine, SearchError> {
        SearchEngine::open_reusing(store, layout, model_id, dims, None).await
    }

    /// Opens the store's current state again, reusing this engine's
    /// snapshot parts when `index/CURRENT.json` still names the same
    /// snapshot, so only the listing and the newer shards are read.
    pub async fn refresh(&self, store: &Store, layout: &Layout) -> Result<SearchEngine, SearchError> {
        SearchEngine::open_reusing(store, layout, &self.model_id, self.dims, Some(self)).await
    }

    async fn open_reusing(
        store: &Store,
        layout: &Layout,
        model_id: &str,
        dims: usize,
        previous: Option<&SearchEngine>,
    ) -> Result<SearchEngine, SearchError> {
        // While the same snapshot stays current, everything derived from it is reused.
        let pointer = snapshot::current_pointer(store, layout).await?;
        let same_snapshot = previous.filter(|previous| {
            previous.manifest.as_ref().map(|old| &old.snapshot_id) == pointer.as_ref().map(|new| &new.snapshot_id)
        });
        let manifest: Option<Arc<Manifest>> = match (&pointer, same_snapshot) {
            (None, _) => None,
            (Some(_), Some(previous)) => previous.manifest.clone(),
            (Some(pointer), None) => Some(Arc::new(snapshot::read_json(store, &pointer.manifest).await?)),
        };
        let snapshot_documents = match same_snapshot {
            Some(previous) => previous.snapshot_documents.clone(),
            None => Arc::new(
                manifest
                    .iter()
                    .flat_map(|manifest| manifest.shards.iter().map(|shard| (shard.key.clone(), shard.document.clone())))
                    .collect(),
            ),
        };
        let reusable = same_snapshot.filter(|previous| previous.searcher.is_some());
        let (searcher, keymap, document_keys, hash_keys) = match (manifest.as_deref(), reusable) {
            (Some(_), Some(previous)) => (
                previous.searcher.clone(),
                previous.keymap.clone(),
                previous.document_keys.clone(),
                previous.hash_keys.clone(),
            ),
            (Some(manifest), None) if manifest.model_id == model_id => {
                let (parts, keymap) = snapshot::open_parts(store, manifest).await?;
                let searcher = Searcher::new(manifest.dims, parts, manifest.options.expansion_search)?;
                let document_keys = keys_by_document(&keymap);
                let hash_keys = keys_by_hash(&document_keys);
                (Some(Arc::new(searcher)), Arc::new(keymap), Arc::new(document_keys), Arc::new(hash_keys))
            }
            (Some(manifest), None) => {
                tracing::warn!(
                    snapshot = %manifest.snapshot_id,
                    snapshot_model = %manifest.model_id,
                    model = %model_id,
                    "the current snapshot was built with another model; searching newer shards only"
                );
                (None, Arc::new(Vec::new()), Arc::new(HashMap::new()), Arc::new(HashMap::new()))
            }
            (None, _) => (None, Arc::new(Vec::new()), Arc::new(HashMap::new()), Arc::new(HashMap::new())),
        };

        let groups = live::list_shards(store, layout).await?;
        let current_entries: Vec<ShardEntry> = live::resolve_current(layout, &groups, manifest.as_deref()).into_values().collect();
        let in_snapshot = |entry: &ShardEntry| snapshot_documents.contains_key(&entry.key);
        let newer: Vec<ShardEntry> = current_entries
            .iter()
            .filter(|entry| !entry.tombstone && !in_snapshot(entry))
            .cloned()
            .collect();
        let changed_hashes: HashSet<&str> = current_entries
            .iter()
            .filter(|entry| !in_snapshot(entry))
            .map(|entry| entry.document_hash.as_str())
            .collect();
        let hidden_keys: HashSet<u64> = changed_hashes
            .iter()
            .filter_map(|hash| hash_keys.get(*hash))
            .flatten()
            .copied()
            .collect();

        let mut fresh = ExactIndex::new(dims)?;
        let mut fresh_pages = Vec::new();
        for shard in live::load_entries(store, newer).await? {
            if shard.meta.model_id != model_id || shard.meta.dims != dims {
                continue;
            }
            for row in shard.embedded() {
                if let Some(vector) = &row.embedding {
                    fresh.add(FRESH_KEY_BASE + fresh_pages.len() as u64, vector)?;
                    fresh_pages.push(PageRef {
                        document: row.document.clone(),
                        page: row.page,
                    });
                }
            }
        }

        Ok(SearchEngine {
            manifest,
            searcher,
            keymap,
            document_keys,
            hash_keys,
            snapshot_documents,
            hidden_keys,
            fresh,
            fresh_pages,
            current: current_entries
                .into_iter()
                .map(|entry| (entry.document_hash.clone(), entry))
                .collect(),
            model_id: model_id.to_owned(),
            dims,
        })
    }

    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_deref()
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Pages newer than the snapshot.
    pub fn fresh_pages(&self) -> usize {
        self.fresh_pages.len()
    }

    /// Number of live documents (deleted ones excluded).
    pub fn live_documents(&self) -> usize {
        self.current.values().filter(|entry| !entry.tombstone).count()
    }

    fn page_ref(&self, key: u64) -> Option<&PageRef> {
        if key >= FRESH_KEY_BASE {
            self.fresh_pages.get((key - FRESH_KEY_BASE) as usize)
        } else {
            self.keymap.get(key as usize)
        }
    }

    /// Finds the `k` documents most similar to the query pages. Each query
    /// vector is one page of the query; a document's score is its best page
    /// score over all query pages. `exclude` leaves one document out (the
    /// query document itself). Vectors must have [`SearchEngine::dims`]
    /// values; callers validate that first.
    pub fn search(&self, queries: &[Vec<f32>], k: usize, min_score: f32, exclude: Option<&str>) -> Result<SearchResults, SearchError> {
        let page_hits = k.saturating_mul(PAGE_HITS_PER_DOCUMENT).max(k) + PAGE_HITS_PER_DOCUMENT;
        let excluded_hash = exclude.map(document_hash);
        let mut documents: BTreeMap<&str, DocumentMatch> = BTreeMap::new();

        for (query_index, query) in queries.iter().enumerate() {
            let keep = |key: u64| {
                if self.hidden_keys.contains(&key) {
                    return false;
                }
                match (&excluded_hash, self.page_ref(key)) {
                    (Some(hash), Some(page)) => document_hash(&page.document) != *hash,
                    _ => true,
                }
            };
            let snapshot_hits = match &self.searcher {
                Some(searcher) => searcher.search_filtered(query, page_hits, keep)?,
                None => Vec::new(),
            };
            let fresh_hits = if self.fresh.is_empty() {
                Vec::new()
            } else {
                self.fresh.search_filtered(query, page_hits, keep)?
            };
            let hits: Vec<Hit> = folio_index::merge_hits([snapshot_hits, fresh_hits], page_hits);

            for hit in hits {
                if hit.score < min_score {
                    continue;
                }
                let Some(page) = self.page_ref(hit.key) else { continue };
                let entry = documents.entry(page.document.as_str()).or_insert_with(|| DocumentMatch {
                    document: page.document.clone(),
                    score: f32::NEG_INFINITY,
                    pages: Vec::new(),
                });
                entry.score = entry.score.max(hit.score);
                match entry.pages.iter_mut().find(|existing| existing.page == page.page) {
                    Some(existing) if existing.score >= hit.score => {}
                    Some(existing) => {
                        existing.score = hit.score;
                        existing.query_page = query_index as u32 + 1;
                    }
                    None => entry.pages.push(PageMatch {
                        page: page.page,
                        score: hit.score,
                        query_page: query_index as u32 + 1,
                    }),
                }
            }
        }

        let mut ranked: Vec<DocumentMatch> = documents.into_values().collect();
        for document in &mut ranked {
            document.pages.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.page.cmp(&b.page)));
        }
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.document.cmp(&b.document)));
        ranked.truncate(k);
        Ok(SearchResults {
            documents: ranked,
            snapshot_id: self.manifest.as_ref().map(|manifest| manifest.snapshot_id.clone()),
            snapshot_created_at: self.manifest.as_ref().map(|manifest| manifest.created_at),
            model_id: self.model_id.clone(),
            fresh_pages: self.fresh_pages.len(),
        })
    }

    /// Reads the stored embeddings of a document's pages (all pages, or
    /// one), in page order, as query vectors.
    ///
    /// A document whose current version is in the snapshot is read from the
    /// index parts, because compaction may have pruned its shard file. With
    /// f16 parts its vectors come back within f16 rounding. Newer documents
    /// are read from their shard file.
    pub async fn document_vectors(&self, store: &Store, document: &str, page: Option<u32>) -> Result<Vec<Vec<f32>>, SearchError> {
        let unknown = || SearchError::UnknownDocument {
            document: document.to_owned(),
        };
        let entry = self.current.get(&document_hash(document)).ok_or_else(unknown)?;
        if entry.tombstone {
            return Err(unknown());
        }
        if let (Some(searcher), Some(snapshot_document)) = (&self.searcher, self.snapshot_documents.get(&entry.key)) {
            if snapshot_document != document {
                return Err(unknown());
            }
            return self.indexed_vectors(searcher, document, page);
        }
        let shard = live::load_entries(store, vec![entry.clone()]).await?.pop().ok_or_else(unknown)?;
        if shard.rows.iter().all(|row| row.document != document) {
            return Err(unknown());
        }
        let embedded: Vec<_> = shard.embedded().filter(|row| row.document == document).collect();
        let vectors: Vec<Vec<f32>> = match page {
            Some(number) => {
                let row = embedded.iter().find(|row| row.page == number).ok_or_else(|| SearchError::UnknownPage {
                    document: document.to_owned(),
                    page: number,
                    available: describe_pages(embedded.iter().map(|row| row.page)),
                })?;
                row.embedding.clone().into_iter().collect()
            }
            None => embedded.iter().filter_map(|row| row.embedding.clone()).collect(),
        };
        if vectors.is_empty() {
            return Err(SearchError::NoEmbeddedPages {
                document: document.to_owned(),
            });
        }
        Ok(vectors)
    }
}

impl SearchEngine {
    /// Reads a snapshot document's page vectors from the index parts.
    fn indexed_vectors(&self, searcher: &Searcher, document: &str, page: Option<u32>) -> Result<Vec<Vec<f32>>, SearchError> {
        let pages = self.document_keys.get(document).map(Vec::as_slice).unwrap_or_default();
        let selected: Vec<&(u32, u64)> = match page {
            Some(number) => {
                let found: Vec<_> = pages.iter().filter(|(page, _)| *page == number).collect();
                if found.is_empty() {
                    return Err(SearchError::UnknownPage {
                        document: document.to_owned(),
                        page: number,
                        available: describe_pages(pages.iter().map(|(page, _)| *page)),
                    });
                }
                found
            }
            None => pages.iter().collect(),
        };
        let mut vectors = Vec::with_capacity(selected.len());
        for (_, key) in selected {
            vectors.extend(searcher.vector(*key)?);
        }
        if vectors.is_empty() {
            return Err(SearchError::NoEmbeddedPages {
                document: document.to_owned(),
            });
        }
        Ok(vectors)
    }
}

/// Groups the snapshot's index keys by document hash.
fn keys_by_hash(document_keys: &HashMap<String, Vec<(u32, u64)>>) -> HashMap<String, Vec<u64>> {
    let mut keys: HashMap<String, Vec<u64>> = HashMap::new();
    for (document, pages) in document_keys {
        keys.entry(document_hash(document)).or_default().extend(pages.iter().map(|(_, key)| *key));
    }
    keys
}

/// Groups the snapshot's index keys by document, in page order.
fn keys_by_document(keymap: &[PageRef]) -> HashMap<String, Vec<(u32, u64)>> {
    let mut keys: HashMap<String, Vec<(u32, u64)>> = HashMap::new();
    for (key, page) in keymap.iter().enumerate() {
        keys.entry(page.document.clone()).or_default().push((page.page, key as u64));
    }
    for pages in keys.values_mut() {
        pages.sort_unstable();
    }
    keys
}

fn describe_pages(pages: impl Iterator<Item = u32>) -> String {
    let pages: Vec<String> = pages.map(|page| page.to_string()).collect();
    if pages.is_empty() {
        "none embedded".to_owned()
    } else {
        pages.join(", ")
    }
}
