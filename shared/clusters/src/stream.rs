//! Clustering in two passes over the pages, for collections whose vectors do not fit in
//! memory together.
//!
//! The first pass offers every page to a [`PageSampler`], which keeps the page references and
//! two seeded samples of vectors: one to fit PCA and k-means on, one for silhouettes and
//! medoids. A page belongs to a sample when a hash of the seed, its document and its page
//! number is among the smallest. So the samples do not depend on the order the pages arrive
//! in, which changes with shards, segments and listing order. The second pass gives
//! every page again to [`FittedSampler::assign`]; [`FittedSampler::finish`] builds the summary.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use ndarray::{Array2, ArrayView2};

use crate::cluster::{
    Assigned, ClusterRun, Fitted, NearDuplicateInput, SILHOUETTE_SEED, Silhouette, SummaryIds, complete, fit,
    project_and_assign,
};
use crate::error::ClusterError;
use crate::params::ClusterParams;
use crate::summary::PageRef;

/// First pass: collects page references and the seeded samples of their vectors.
///
/// Memory: one [`PageRef`] per page, plus `sample_size_limit + silhouette_sample_size`
/// vectors, whatever the number of pages.
///
/// ```
/// use folio_clusters::{ClusterParams, KChoice, PageRef, PageSampler, SummaryIds};
///
/// let params = ClusterParams { k: KChoice::Given { k: 2 }, ..ClusterParams::default() };
/// let page = |n: u32| PageRef::new(format!("scan-{n}.tif"), 1);
/// let vector = |n: u32| if n % 2 == 0 { [1.0, 0.1 * n as f32] } else { [0.1 * n as f32, 1.0] };
///
/// let mut sampler = PageSampler::new(&params)?;
/// for n in 0..8 {
///     sampler.offer(page(n), &vector(n))?;
/// }
/// let mut fitted = sampler.fit()?;
/// // The second pass may read the pages in any order and in blocks of any size.
/// for n in (0..8).rev() {
///     fitted.assign(&[page(n)], ndarray::ArrayView2::from_shape((1, 2), &vector(n)).unwrap());
/// }
/// let ids = SummaryIds { model_id: "model".into(), snapshot_id: "s1".into() };
/// let (pages, run) = fitted.finish(&ids)?;
/// assert_eq!(pages.len(), 8);
/// assert_eq!(run.summary.clusters.len(), 2);
/// # Ok::<(), folio_clusters::ClusterError>(())
/// ```
pub struct PageSampler {
    params: ClusterParams,
    dims: Option<usize>,
    pages: Vec<PageRef>,
    fit: BottomK,
    silhouette: BottomK,
}

impl PageSampler {
    /// Checks `params` and starts an empty first pass.
    pub fn new(params: &ClusterParams) -> Result<Self, ClusterError> {
        params.validate()?;
        Ok(Self {
            params: params.clone(),
            dims: None,
            pages: Vec::new(),
            fit: BottomK::new(params.sample_size_limit, params.seed),
            silhouette: BottomK::new(params.silhouette_sample_size, params.seed ^ SILHOUETTE_SEED),
        })
    }

    /// Records one page and its vector. Every vector must have the length of the first.
    pub fn offer(&mut self, page: PageRef, vector: &[f32]) -> Result<(), ClusterError> {
        if page.page == 0 {
            return Err(ClusterError::InvalidPageNumber { document: page.document });
        }
        let dims = *self.dims.get_or_insert(vector.len());
        if dims == 0 {
            return Err(ClusterError::ZeroDimensions);
        }
        if vector.len() != dims {
            return Err(ClusterError::DimensionMismatch {
                document: page.document,
                page: page.page,
                expected: dims,
                found: vector.len(),
            });
        }
        if !vector.iter().all(|value| value.is_finite()) {
            return Err(ClusterError::NonFiniteVector { row: self.pages.len(), document: page.document, page: page.page });
        }
        self.fit.offer(&page, vector);
        self.silhouette.offer(&page, vector);
        self.pages.push(page);
        Ok(())
    }

    /// Number of pages offered so far.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Fits PCA and k-means on the sample. A page offered twice counts once.
    pub fn fit(self) -> Result<FittedSampler, ClusterError> {
        let mut pages = self.pages;
        pages.sort_unstable();
        pages.dedup();
        if pages.len() < 2 {
            return Err(ClusterError::TooFewPages { pages: pages.len() });
        }
        let dims = self.dims.unwrap_or(0);
        let (_, fit_points) = self.fit.into_sorted(dims);
        let sample_size = fit_points.nrows();
        let fitted = fit(fit_points.view(), &self.params)?;
        drop(fit_points);

        let (silhouette_pages, silhouette_vectors) = self.silhouette.into_sorted(dims);
        let rows = pages.len();
        Ok(FittedSampler {
            params: self.params,
            pages,
            fitted,
            sample_size,
            silhouette_pages,
            silhouette_vectors,
            assigned: Assigned {
                labels: vec![UNASSIGNED; rows],
                distances: vec![0.0; rows],
                coordinates: vec![[0.0; 2]; rows],
            },
        })
    }
}

/// Label of a page the second pass has not seen yet.
const UNASSIGNED: u32 = u32::MAX;

/// Second pass: PCA and centroids are fixed; every page is assigned to its nearest centroid.
pub struct FittedSampler {
    params: ClusterParams,
    /// Sorted and unique.
    pages: Vec<PageRef>,
    fitted: Fitted,
    sample_size: usize,
    silhouette_pages: Vec<PageRef>,
    silhouette_vectors: Array2<f32>,
    assigned: Assigned,
}

impl FittedSampler {
    /// Number of clusters fitted (before empty ones are dropped).
    pub fn k(&self) -> usize {
        self.fitted.k
    }

    /// Number of pages the PCA and k-means were fitted on.
    pub fn sample_size(&self) -> usize {
        self.sample_size
    }

    /// Length of the vectors of the first pass, which [`FittedSampler::assign`] requires.
    pub fn dims(&self) -> usize {
        self.fitted.pca.mean.len()
    }

    /// Assigns a block of pages (one vector row each) to their nearest centroids. Pages the
    /// first pass did not see are ignored, and their count is returned: they arrived between
    /// the passes and belong to the next summary.
    ///
    /// # Panics
    ///
    /// When `pages` and the rows of `vectors` differ in number, or the vectors' length differs
    /// from the first pass's.
    pub fn assign(&mut self, pages: &[PageRef], vectors: ArrayView2<'_, f32>) -> usize {
        assert_eq!(pages.len(), vectors.nrows(), "one page per vector row");
        assert_eq!(vectors.ncols(), self.fitted.pca.mean.len(), "vectors of the first pass's length");
        let block = project_and_assign(vectors, &self.fitted.pca, &self.fitted.centroids);
        let mut unknown = 0;
        for (index, page) in pages.iter().enumerate() {
            let Ok(row) = self.pages.binary_search(page) else {
                unknown += 1;
                continue;
            };
            self.assigned.labels[row] = block.labels[index];
            self.assigned.distances[row] = block.distances[index];
            self.assigned.coordinates[row] = block.coordinates[index];
        }
        unknown
    }

    /// Builds the summary. Pages that the second pass did not see (deleted between the
    /// passes) are left out of it. Returns the pages in the order of the run's `labels` and
    /// `map_points`, which is sorted by document and page.
    pub fn finish(self, ids: &SummaryIds) -> Result<(Vec<PageRef>, ClusterRun), ClusterError> {
        let Self { params, pages, fitted, sample_size, silhouette_pages, silhouette_vectors, assigned } = self;

        // Drop unassigned pages, keeping the sort order.
        let mut kept_pages = Vec::with_capacity(pages.len());
        let mut remaining = Assigned { labels: Vec::new(), distances: Vec::new(), coordinates: Vec::new() };
        for (row, page) in pages.into_iter().enumerate() {
            if assigned.labels[row] != UNASSIGNED {
                kept_pages.push(page);
                remaining.labels.push(assigned.labels[row]);
                remaining.distances.push(assigned.distances[row]);
                remaining.coordinates.push(assigned.coordinates[row]);
            }
        }
        if kept_pages.len() < 2 {
            return Err(ClusterError::TooFewPages { pages: kept_pages.len() });
        }

        let mut silhouette_rows = Vec::with_capacity(silhouette_pages.len());
        let mut silhouette_indices = Vec::with_capacity(silhouette_pages.len());
        for (index, page) in silhouette_pages.iter().enumerate() {
            if let Ok(row) = kept_pages.binary_search(page) {
                silhouette_rows.push(row);
                silhouette_indices.push(index);
            }
        }
        let silhouette_vectors = silhouette_vectors.select(ndarray::Axis(0), &silhouette_indices);

        let reason = "the vectors were read in two passes and not held in memory".to_owned();
        let run = complete(
            &kept_pages,
            fitted,
            remaining,
            Silhouette { rows: silhouette_rows, vectors: silhouette_vectors },
            NearDuplicateInput::Skipped(reason),
            sample_size.min(kept_pages.len()),
            &params,
            ids,
        );
        Ok((kept_pages, run))
    }
}

/// The `limit` pages with the smallest hashes seen so far, and their vectors.
struct BottomK {
    limit: usize,
    seed: u64,
    /// Largest entry on top, so it is the one replaced. A slot is the entry's row in `values`.
    heap: BinaryHeap<Entry>,
    values: Vec<f32>,
}

struct Entry {
    hash: u64,
    page: PageRef,
    slot: usize,
}

impl Entry {
    fn key(&self) -> (u64, &PageRef) {
        (self.hash, &self.page)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl BottomK {
    fn new(limit: usize, seed: u64) -> Self {
        Self { limit, seed, heap: BinaryHeap::new(), values: Vec::new() }
    }

    fn offer(&mut self, page: &PageRef, vector: &[f32]) {
        if self.limit == 0 {
            return;
        }
        let hash = page_hash(self.seed, page);
        let dims = vector.len();
        if self.heap.len() < self.limit {
            let slot = self.heap.len();
            self.values.extend_from_slice(vector);
            self.heap.push(Entry { hash, page: page.clone(), slot });
            return;
        }
        let top = self.heap.peek().expect("the heap is full");
        if (hash, page) >= top.key() {
            return;
        }
        let slot = self.heap.pop().expect("the heap is full").slot;
        self.values[slot * dims..(slot + 1) * dims].copy_from_slice(vector);
        self.heap.push(Entry { hash, page: page.clone(), slot });
    }

    /// Returns the sampled pages sorted by document and page, each once, with their vectors
    /// as rows.
    fn into_sorted(self, dims: usize) -> (Vec<PageRef>, Array2<f32>) {
        let mut entries = self.heap.into_vec();
        entries.sort_by(|a, b| a.page.cmp(&b.page));
        entries.dedup_by(|later, earlier| later.page == earlier.page);
        let mut rows = Array2::<f32>::zeros((entries.len(), dims));
        for (row, entry) in entries.iter().enumerate() {
            rows.row_mut(row)
                .as_slice_mut()
                .expect("a new array is in standard layout")
                .copy_from_slice(&self.values[entry.slot * dims..(entry.slot + 1) * dims]);
        }
        (entries.into_iter().map(|entry| entry.page).collect(), rows)
    }
}

/// A hash of the seed, document key and page number that is the same on every platform and
/// Rust version: FNV-1a over the bytes, then the SplitMix64 finaliser to spread the bits.
fn page_hash(seed: u64, page: &PageRef) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = FNV_OFFSET ^ seed;
    for byte in page.document.bytes().chain([0xff]).chain(page.page.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bottom_k_ignores_offer_order() {
        let pages: Vec<PageRef> = (0..500).map(|n| PageRef::new(format!("doc-{}", n / 3), n % 3 + 1)).collect();
        let mut forward = BottomK::new(40, 7);
        let mut backward = BottomK::new(40, 7);
        for (n, page) in pages.iter().enumerate() {
            forward.offer(page, &[n as f32]);
        }
        for (n, page) in pages.iter().enumerate().rev() {
            backward.offer(page, &[n as f32]);
        }
        let (forward_pages, forward_rows) = forward.into_sorted(1);
        let (backward_pages, backward_rows) = backward.into_sorted(1);
        assert_eq!(forward_pages.len(), 40);
        assert_eq!(forward_pages, backward_pages);
        assert_eq!(forward_rows, backward_rows);
    }

    #[test]
    fn page_hash_separates_document_and_page() {
        // "a" page 11 and "a1" page 1 must not collide through concatenation.
        assert_ne!(page_hash(0, &PageRef::new("a", 11)), page_hash(0, &PageRef::new("a1", 1)));
        assert_ne!(page_hash(0, &PageRef::new("a", 1)), page_hash(1, &PageRef::new("a", 1)));
    }
}
