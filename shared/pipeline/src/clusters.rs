//! Cluster summaries of the live pages, stored beside their pictures and
//! an HTML report that opens from a folder or S3 without a server.
//!
//! Layout under the clusters prefix:
//! `<snapshot>/summary.json`, `<snapshot>/map.png`,
//! `<snapshot>/cluster-<id>.png`, `<snapshot>/report.html`, and
//! `latest.json`, which points at the newest summary.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use folio_clusters::{
    ClusterParams, ClusterSummary, FittedSampler, PageRef, PageSampler, ReportPictures, SheetLayout, SummaryIds,
};
use folio_shard::PageStatus;
use folio_store::{PutMode, Store, StoreError};
use image::GrayImage;

use crate::layout::Layout;
use crate::live::{self, LiveError};
use crate::snapshot::{self, SnapshotError, read_json};

/// Width of contact-sheet thumbnails decoded from the scans, in pixels.
const THUMBNAIL_WIDTH: u32 = 200;

/// Rows projected and assigned at once in the second read of a two-pass summary.
const ASSIGN_BLOCK: usize = 4096;

/// The pointer to the newest summary.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LatestClusters {
    pub snapshot_id: String,
    pub summary: String,
    pub report: String,
}

/// Source of the scans behind the document keys, read for thumbnails.
pub enum ScanSource {
    /// Under the scans prefix of the same store (the deployed layout).
    Store,
    /// In local folders: a document key is a path relative to one of them.
    Folders(Vec<PathBuf>),
    /// No thumbnails: contact sheets show empty boxes.
    None,
}

/// Errors from building cluster summaries.
#[derive(Debug, thiserror::Error)]
pub enum ClustersError {
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("clustering failed: {0}")]
    Cluster(#[from] folio_clusters::ClusterError),
    #[error("no pages embedded by {model_id} are in the store; ingest scans first")]
    NoPages { model_id: String },
    #[error("the clustering task failed: {0}")]
    Task(String),
}

/// Clusters every live page embedded by `model_id`, writes the summary,
/// pictures and report, and points `latest.json` at them. The summary
/// records what changed since the previous one.
pub async fn build_clusters(
    store: &Store,
    layout: &Layout,
    model_id: &str,
    params: &ClusterParams,
    scans: &ScanSource,
) -> Result<(ClusterSummary, LatestClusters), ClustersError> {
    let manifest = snapshot::current_manifest(store, layout).await?;
    let snapshot_id = match &manifest {
        Some(manifest) => manifest.snapshot_id.clone(),
        None => format!("live-{}", crate::ingest::unix_now()),
    };
    let previous = latest_summary(store, layout).await?;
    let ids = SummaryIds {
        model_id: model_id.to_owned(),
        snapshot_id: snapshot_id.clone(),
    };

    let gathered = gather_vectors(store, layout, manifest.as_ref(), model_id, params).await?;
    let run = match gathered {
        Gathered::InMemory { pages, values, dims } => {
            if pages.is_empty() {
                return Err(ClustersError::NoPages {
                    model_id: model_id.to_owned(),
                });
            }
            let params = params.clone();
            let ids = ids.clone();
            // PCA and k-means are CPU-bound; keep them off the async workers.
            tokio::task::spawn_blocking(move || {
                let vectors = ndarray::ArrayView2::from_shape((pages.len(), dims), &values).expect("rows of equal length");
                folio_clusters::summarise(&pages, vectors, &params, &ids)
            })
            .await
            .map_err(|error| ClustersError::Task(error.to_string()))??
        }
        Gathered::Sampled(sampler) => two_pass_summary(store, layout, manifest.as_ref(), model_id, sampler, &ids).await?,
    };
    let mut summary = run.summary;
    if let Some(previous) = &previous {
        summary.attach_drift(previous);
    }

    let prefix = format!("{}{snapshot_id}/", layout.clusters);
    let thumbnails = load_thumbnails(store, layout, scans, &summary).await;
    let mut pictures = ReportPictures {
        map: Some("map.png".to_owned()),
        contact_sheets: BTreeMap::new(),
    };
    let map = folio_clusters::map_png(&summary, &run.map_points)?;
    store.put(&format!("{prefix}map.png"), map.into(), PutMode::Overwrite).await?;
    for cluster in &summary.clusters {
        let lookup = |document: &str, page: u32| thumbnails.get(&(document.to_owned(), page)).cloned();
        let sheet = folio_clusters::contact_sheet(cluster, &lookup)?;
        let name = format!("cluster-{:03}.png", cluster.id);
        store.put(&format!("{prefix}{name}"), sheet.into(), PutMode::Overwrite).await?;
        pictures.contact_sheets.insert(cluster.id, name);
    }
    let report = folio_clusters::report_html(&summary, &pictures);
    let report_key = format!("{prefix}report.html");
    store.put(&report_key, report.into_bytes().into(), PutMode::Overwrite).await?;
    let summary_key = format!("{prefix}summary.json");
    let json = serde_json::to_vec_pretty(&summary).expect("a cluster summary always serialises");
    store.put(&summary_key, json.into(), PutMode::Overwrite).await?;

    let latest = LatestClusters {
        snapshot_id,
        summary: summary_key,
        report: report_key,
    };
    let pointer = serde_json::to_vec_pretty(&latest).expect("the pointer always serialises");
    store
        .put(&format!("{}latest.json", layout.clusters), pointer.into(), PutMode::Overwrite)
        .await?;
    Ok((summary, latest))
}

/// The live vectors after the first read.
enum Gathered {
    /// At most `near_duplicate_max_pages` pages: every vector, one row-major buffer with one
    /// page reference per row, sorted by document key and page so that compaction does not
    /// change the order.
    InMemory { pages: Vec<PageRef>, values: Vec<f32>, dims: usize },
    /// More pages: page references and seeded samples of their vectors only. The pages are
    /// assigned to clusters in a second read ([`two_pass_summary`]).
    Sampled(PageSampler),
}

/// Reads the live vectors of `model_id` once. Every vector is kept while the page count stays
/// within `near_duplicate_max_pages`, because the exact near-duplicate search needs them all.
/// Above it only the samples are kept, so memory no longer grows with the vectors: 1 000 000
/// pages of 2048 f32 would take 8 GB of a 10 GB function.
///
/// Each shard is dropped after its rows are copied, so memory contains the buffer plus the few
/// shards being read (or one segment). The buffer grows by reallocation, which glibc does with
/// `mremap` for buffers this large, so growth does not copy the vectors.
async fn gather_vectors(
    store: &Store,
    layout: &Layout,
    manifest: Option<&snapshot::Manifest>,
    model_id: &str,
    params: &ClusterParams,
) -> Result<Gathered, ClustersError> {
    let mut gathered = Gathered::InMemory { pages: Vec::new(), values: Vec::new(), dims: 0 };
    let mut first_error = None;
    live::visit_current(store, layout, manifest, |shard| {
        if shard.meta.model_id != model_id || first_error.is_some() {
            return;
        }
        let shard_dims = shard.meta.dims;
        for (page, vector) in embedded_rows(shard.rows, shard_dims) {
            if let Err(error) = gather_row(&mut gathered, page, vector, params) {
                first_error = Some(error);
                return;
            }
        }
    })
    .await?;
    if let Some(error) = first_error {
        return Err(error.into());
    }
    if let Gathered::InMemory { pages, values, dims } = &mut gathered {
        sort_rows(pages, values, *dims);
    }
    Ok(gathered)
}

/// Adds one page to what the first read keeps, switching to samples when the page count
/// passes `near_duplicate_max_pages`.
fn gather_row(
    gathered: &mut Gathered,
    page: PageRef,
    vector: Vec<f32>,
    params: &ClusterParams,
) -> Result<(), folio_clusters::ClusterError> {
    match gathered {
        Gathered::InMemory { pages, values, dims } if pages.len() < params.near_duplicate_max_pages => {
            if pages.is_empty() {
                *dims = vector.len();
            } else if vector.len() != *dims {
                return Err(folio_clusters::ClusterError::DimensionMismatch {
                    document: page.document,
                    page: page.page,
                    expected: *dims,
                    found: vector.len(),
                });
            }
            pages.push(page);
            values.extend_from_slice(&vector);
        }
        Gathered::InMemory { pages, values, dims } => {
            let mut sampler = PageSampler::new(params)?;
            for (page, vector) in std::mem::take(pages).into_iter().zip(values.chunks_exact(*dims)) {
                sampler.offer(page, vector)?;
            }
            sampler.offer(page, &vector)?;
            *gathered = Gathered::Sampled(sampler);
        }
        Gathered::Sampled(sampler) => sampler.offer(page, &vector)?,
    }
    Ok(())
}

/// Returns the embedded pages of a shard whose vectors have `dims` values.
fn embedded_rows(rows: Vec<folio_shard::PageRow>, dims: usize) -> impl Iterator<Item = (PageRef, Vec<f32>)> {
    rows.into_iter().filter(|row| row.status == PageStatus::Embedded).filter_map(move |row| {
        let vector = row.embedding.filter(|vector| vector.len() == dims)?;
        Some((PageRef::new(row.document, row.page), vector))
    })
}

/// Fits on the samples of the first read, then reads the live vectors again and assigns each
/// page to its nearest centroid, a block of rows at a time.
async fn two_pass_summary(
    store: &Store,
    layout: &Layout,
    manifest: Option<&snapshot::Manifest>,
    model_id: &str,
    sampler: PageSampler,
    ids: &SummaryIds,
) -> Result<folio_clusters::ClusterRun, ClustersError> {
    let page_count = sampler.page_count();
    let mut fitted = tokio::task::spawn_blocking(move || sampler.fit())
        .await
        .map_err(|error| ClustersError::Task(error.to_string()))??;
    tracing::info!(
        pages = page_count,
        sample = fitted.sample_size(),
        k = fitted.k(),
        "fitted clusters on a sample; reading the vectors again to assign every page"
    );

    let dims = fitted.dims();
    let mut block_pages = Vec::with_capacity(ASSIGN_BLOCK);
    let mut block_values = Vec::new();
    let mut unknown = 0;
    // NOTE: the assignment runs inside the read loop, so reading waits for it. At 1M pages of
    // 2048 values the whole job took 153 s of CPU here, small beside the time limit.
    let flush = |fitted: &mut FittedSampler, pages: &mut Vec<PageRef>, values: &mut Vec<f32>, dims: usize| {
        if pages.is_empty() {
            return 0;
        }
        let vectors = ndarray::ArrayView2::from_shape((pages.len(), dims), values).expect("rows of equal length");
        let unknown = fitted.assign(pages, vectors);
        pages.clear();
        values.clear();
        unknown
    };
    live::visit_current(store, layout, manifest, |shard| {
        // The first read rejected vectors of another length, so such a shard can only have
        // been written between the reads. Its pages were not in the first read either.
        if shard.meta.model_id != model_id || shard.meta.dims != dims {
            return;
        }
        for (page, vector) in embedded_rows(shard.rows, dims) {
            block_pages.push(page);
            block_values.extend_from_slice(&vector);
            if block_pages.len() == ASSIGN_BLOCK {
                unknown += flush(&mut fitted, &mut block_pages, &mut block_values, dims);
            }
        }
    })
    .await?;
    unknown += flush(&mut fitted, &mut block_pages, &mut block_values, dims);
    if unknown > 0 {
        tracing::info!(pages = unknown, "pages written between the two reads are left for the next summary");
    }

    let ids = ids.clone();
    let (_, run) = tokio::task::spawn_blocking(move || fitted.finish(&ids))
        .await
        .map_err(|error| ClustersError::Task(error.to_string()))??;
    Ok(run)
}

/// Sorts `pages` by document and page and moves the rows of `values` with them, in place,
/// with one spare row: the buffer may be most of the function's memory.
fn sort_rows(pages: &mut Vec<PageRef>, values: &mut [f32], dims: usize) {
    let mut order: Vec<usize> = (0..pages.len()).collect();
    order.sort_by(|&a, &b| (&pages[a].document, pages[a].page).cmp(&(&pages[b].document, pages[b].page)));
    *pages = order.iter().map(|&source| pages[source].clone()).collect();
    if dims == 0 {
        return;
    }
    // Row `target` receives row `order[target]`. Each cycle of the permutation is followed once.
    let mut placed = vec![false; order.len()];
    let mut spare = vec![0.0f32; dims];
    for start in 0..order.len() {
        if placed[start] || order[start] == start {
            continue;
        }
        spare.copy_from_slice(&values[start * dims..(start + 1) * dims]);
        let mut target = start;
        loop {
            placed[target] = true;
            let source = order[target];
            if source == start {
                values[target * dims..(target + 1) * dims].copy_from_slice(&spare);
                break;
            }
            values.copy_within(source * dims..(source + 1) * dims, target * dims);
            target = source;
        }
    }
}

/// Reads the newest summary, if any.
pub async fn latest_summary(store: &Store, layout: &Layout) -> Result<Option<ClusterSummary>, SnapshotError> {
    let latest: LatestClusters = match read_json(store, &format!("{}latest.json", layout.clusters)).await {
        Ok(latest) => latest,
        Err(SnapshotError::Store(StoreError::NotFound { .. })) => return Ok(None),
        Err(error) => return Err(error),
    };
    Ok(Some(read_json(store, &latest.summary).await?))
}

/// Decodes the pages shown on the contact sheets, scaled to
/// [`THUMBNAIL_WIDTH`]. A page that cannot be read is left out and drawn
/// as an empty box.
async fn load_thumbnails(
    store: &Store,
    layout: &Layout,
    scans: &ScanSource,
    summary: &ClusterSummary,
) -> HashMap<(String, u32), GrayImage> {
    let shown = {
        let sheet = SheetLayout::default();
        (sheet.columns * sheet.rows) as usize
    };
    let mut wanted: BTreeMap<String, HashSet<u32>> = BTreeMap::new();
    for cluster in &summary.clusters {
        for member in cluster.members.iter().take(shown) {
            wanted.entry(member.document.clone()).or_default().insert(member.page);
        }
    }

    let mut thumbnails = HashMap::new();
    for (document, pages) in wanted {
        let bytes = match scans {
            ScanSource::Store => store.get(&format!("{}{document}", layout.scans)).await.ok(),
            ScanSource::Folders(folders) => folders.iter().find_map(|folder| std::fs::read(folder.join(&document)).ok()).map(Into::into),
            ScanSource::None => None,
        };
        let Some(bytes) = bytes else {
            tracing::debug!(document = %document, "no scan found for a thumbnail");
            continue;
        };
        let decoded = tokio::task::spawn_blocking(move || thumbnails_of(&document, bytes, &pages))
            .await
            .unwrap_or_default();
        thumbnails.extend(decoded);
    }
    thumbnails
}

fn thumbnails_of(document: &str, bytes: bytes::Bytes, wanted: &HashSet<u32>) -> Vec<((String, u32), GrayImage)> {
    let Ok(pages) = folio_pages::open(document, Arc::from(bytes.as_ref()), &folio_pages::Limits::default()) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for page in pages.flatten() {
        if !wanted.contains(&page.number) {
            continue;
        }
        let gray = page.image.to_luma8();
        let height = (u64::from(gray.height()) * u64::from(THUMBNAIL_WIDTH) / u64::from(gray.width().max(1))).max(1) as u32;
        let small = image::imageops::resize(&gray, THUMBNAIL_WIDTH, height, image::imageops::FilterType::Triangle);
        found.push(((document.to_owned(), page.number), small));
        if found.len() == wanted.len() {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_rows_moves_vectors_with_pages() {
        let mut pages = vec![
            PageRef::new("c.tif", 1),
            PageRef::new("a.tif", 2),
            PageRef::new("b.tif", 1),
            PageRef::new("a.tif", 1),
        ];
        // Each row is filled with a value that names its page.
        let mut values = vec![3.1, 3.1, 1.2, 1.2, 2.1, 2.1, 1.1, 1.1];
        sort_rows(&mut pages, &mut values, 2);
        let order: Vec<(String, u32)> = pages.iter().map(|page| (page.document.clone(), page.page)).collect();
        assert_eq!(
            order,
            vec![("a.tif".into(), 1), ("a.tif".into(), 2), ("b.tif".into(), 1), ("c.tif".into(), 1)]
        );
        assert_eq!(values, vec![1.1, 1.1, 1.2, 1.2, 2.1, 2.1, 3.1, 3.1]);
    }
}
