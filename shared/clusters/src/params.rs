//! Parameters of a clustering run and their defaults.

use serde::{Deserialize, Serialize};

use crate::error::ClusterError;

/// Method that sets the number of clusters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum KChoice {
    /// Use exactly this k.
    Given { k: usize },
    /// Try every k in `min..=max` (capped at half the fitted points) and keep the one with
    /// the highest silhouette score.
    Silhouette { min: usize, max: usize },
}

/// Settings of [`crate::summarise`]. `Default` gives the values documented on each field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterParams {
    /// Number of clusters, or the range searched by silhouette score. Default: silhouette
    /// over 2..=20.
    pub k: KChoice,
    /// Share of the total variance that the PCA keeps, in (0, 1]. Default 0.98, the value
    /// used for clustering BiT embeddings of document images.
    pub variance_share: f64,
    /// Number of k-means++ restarts; the run with the lowest inertia wins. Default 10.
    pub n_init: usize,
    /// Maximum Lloyd iterations per restart. Default 300.
    pub max_iterations: u64,
    /// Seed for every random choice (samples, k-means++ seeding).
    pub seed: u64,
    /// Above this many pages, PCA and k-means are fitted on a seeded sample of this size and
    /// every page is then assigned to its nearest centroid. Default 50 000, which keeps a
    /// 2048-dimensional f32 sample at 400 MB.
    pub sample_size_limit: usize,
    /// Maximum number of pages whose silhouette is computed (the cost is quadratic).
    /// Default 10 000.
    pub silhouette_sample_size: usize,
    /// Number of documents listed per cluster as nearest to its centroid. Default 10.
    pub nearest_documents: usize,
    /// Cosine similarity at or above which two pages count as near-duplicates. Default 0.95.
    ///
    /// Measured with `bench/clusters/near_duplicate_threshold.sh` on 212 public test pages,
    /// one brochure page among them stored as PNG, CCITT, JBIG2, skewed and turned PDFs. The
    /// lossless copies scored at least 0.9999 and the JBIG2 copy 0.972. Unrelated pages scored
    /// at most 0.922 and two pages of one document at most 0.926, apart from three nearly
    /// blank fax pages (0.994). 0.95 sits between 0.926 and 0.972. A copy both turned and
    /// skewed scored 0.893, like unrelated pages, so no threshold links it.
    // NOTE: measured with the untrained stand-in model, whose cosines between unrelated pages
    // are all above 0.84. Re-run the script with the real BiT weights and set the default
    // from its output.
    pub near_duplicate_threshold: f32,
    /// Near-duplicate search is skipped above this many pages, because the exact search
    /// compares every pair inside each cluster. Default 100 000. Callers that read pages from
    /// storage (`folio_pipeline::clusters`) also hold every vector in memory only up to this
    /// count, and use [`crate::PageSampler`] above it.
    pub near_duplicate_max_pages: usize,
}

impl Default for ClusterParams {
    fn default() -> Self {
        Self {
            k: KChoice::Silhouette { min: 2, max: 20 },
            variance_share: 0.98,
            n_init: 10,
            max_iterations: 300,
            seed: 0,
            sample_size_limit: 50_000,
            silhouette_sample_size: 10_000,
            nearest_documents: 10,
            near_duplicate_threshold: 0.95,
            near_duplicate_max_pages: 100_000,
        }
    }
}

impl ClusterParams {
    /// Checks every field and returns the first invalid one.
    pub fn validate(&self) -> Result<(), ClusterError> {
        let invalid = |name, value: String, expected| ClusterError::InvalidParameter { name, value, expected };
        match self.k {
            KChoice::Given { k } if k == 0 => {
                return Err(invalid("k", k.to_string(), "k must be at least 1"));
            }
            KChoice::Silhouette { min, max } if min < 2 || max < min => {
                return Err(invalid(
                    "k",
                    format!("{min}..={max}"),
                    "the silhouette range needs 2 <= min <= max",
                ));
            }
            _ => {}
        }
        if !(self.variance_share > 0.0 && self.variance_share <= 1.0) {
            return Err(invalid("variance_share", self.variance_share.to_string(), "must be in (0, 1]"));
        }
        if self.n_init == 0 {
            return Err(invalid("n_init", "0".into(), "must be at least 1"));
        }
        if self.max_iterations == 0 {
            return Err(invalid("max_iterations", "0".into(), "must be at least 1"));
        }
        if self.sample_size_limit < 2 {
            return Err(invalid("sample_size_limit", self.sample_size_limit.to_string(), "must be at least 2"));
        }
        if self.silhouette_sample_size < 2 {
            return Err(invalid(
                "silhouette_sample_size",
                self.silhouette_sample_size.to_string(),
                "must be at least 2",
            ));
        }
        if !(self.near_duplicate_threshold > 0.0 && self.near_duplicate_threshold <= 1.0) {
            return Err(invalid(
                "near_duplicate_threshold",
                self.near_duplicate_threshold.to_string(),
                "must be a cosine similarity in (0, 1]",
            ));
        }
        Ok(())
    }
}
