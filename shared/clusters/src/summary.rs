//! The serialised cluster summary (`ClusterSummary`) and its parts.

use serde::{Deserialize, Serialize};

use crate::drift::Drift;
use crate::params::KChoice;

/// Version of the JSON layout; raise it on any incompatible change and update
/// `schema/cluster-summary.schema.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// One page of one document.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PageRef {
    /// Document key, for example `letters/2024/a.tif`.
    pub document: String,
    /// 1-based page number.
    pub page: u32,
}

impl PageRef {
    pub fn new(document: impl Into<String>, page: u32) -> Self {
        Self { document: document.into(), page }
    }
}

/// Cluster summary of one snapshot of page vectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    pub schema_version: u32,
    /// Embedding model id, copied verbatim from the caller.
    pub model_id: String,
    /// Snapshot id, copied verbatim from the caller.
    pub snapshot_id: String,
    pub parameters: SummaryParameters,
    pub page_count: usize,
    pub document_count: usize,
    /// Whether PCA and k-means were fitted on a sample rather than on every page.
    pub sampled: bool,
    /// Number of pages PCA and k-means were fitted on (equal to `page_count` unless sampled).
    pub sample_size: usize,
    pub silhouette: SilhouetteReport,
    /// Clusters ordered by size, largest first; `id` is the position in this list.
    pub clusters: Vec<ClusterInfo>,
    pub near_duplicates: NearDuplicates,
    /// Changes since a previous summary, when one was compared.
    pub drift: Option<Drift>,
}

/// Parameters the summary was computed with, including the ones derived from the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryParameters {
    pub k: usize,
    /// Method that set k: given, or chosen by silhouette score.
    pub k_choice: KChoice,
    /// Silhouette score of each k tried; empty when k was given.
    pub k_candidates: Vec<KCandidate>,
    /// Variance share requested.
    pub variance_share: f64,
    /// Variance share the kept components actually carry.
    pub variance_kept: f64,
    pub input_dims: usize,
    pub pca_dims: usize,
    pub seed: u64,
    pub n_init: usize,
    pub max_iterations: u64,
    pub sample_size_limit: usize,
}

/// Silhouette score of one candidate k.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KCandidate {
    pub k: usize,
    pub silhouette: f32,
}

/// Overall silhouette score, in the PCA space, and the pages it was computed on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SilhouetteReport {
    /// Mean silhouette over the pages below, in [-1, 1].
    pub overall: f32,
    /// Whether the silhouette was computed on a seeded sample of pages.
    pub sampled: bool,
    pub sample_size: usize,
}

/// One cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub id: u32,
    pub page_count: usize,
    pub document_count: usize,
    /// Page with the smallest mean distance to the other members. When the silhouette is
    /// sampled, the mean runs over the sampled members; a cluster without sampled members
    /// takes the page nearest its centroid.
    pub medoid: PageRef,
    /// Documents whose nearest page is closest to the centroid, nearest first.
    pub nearest_documents: Vec<DocumentDistance>,
    /// Mean silhouette of the members (of the sampled members when sampled); `None` when no
    /// member was in the silhouette sample.
    pub cohesion: Option<f32>,
    /// Other cluster with the nearest centroid; `None` when k = 1.
    pub nearest_cluster: Option<NearestCluster>,
    /// Every member, nearest to the centroid first, so that an API can page through it with
    /// an offset and a limit and show the most typical pages first.
    pub members: Vec<PageRef>,
}

impl ClusterInfo {
    /// Returns members `offset..offset + limit`, clamped to the member list.
    pub fn members_page(&self, offset: usize, limit: usize) -> &[PageRef] {
        let start = offset.min(self.members.len());
        let end = start.saturating_add(limit).min(self.members.len());
        &self.members[start..end]
    }
}

/// A document and the Euclidean distance, in PCA space, from its nearest page to a centroid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentDistance {
    pub document: String,
    pub distance: f32,
}

/// The cluster whose centroid is nearest, with the Euclidean distance between centroids in
/// PCA space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NearestCluster {
    pub id: u32,
    pub distance: f32,
}

/// Groups of near-duplicate pages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NearDuplicates {
    /// Cosine similarity at or above which two pages are linked. Groups are the connected
    /// components of those links, so two pages of one group may be less similar.
    pub threshold: f32,
    /// Whether the search ran; it is skipped above `near_duplicate_max_pages`.
    pub computed: bool,
    /// Only pages of the same k-means cluster are compared.
    pub scope: String,
    /// Groups of at least two pages, largest first.
    pub groups: Vec<Vec<PageRef>>,
}
