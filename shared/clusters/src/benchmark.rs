//! Timed PCA + k-means for the benchmark binary in `examples/`. Not part of the stable API.

use std::time::Instant;

use ndarray::ArrayView2;

use crate::error::ClusterError;
use crate::kmeans::{assign, fit_centroids};
use crate::pca::Pca;

/// Wall-clock seconds of each stage and the quality measures that scikit-learn also reports.
#[derive(Clone, Debug)]
pub struct StageTimings {
    pub pca_dims: usize,
    pub variance_kept: f64,
    /// PCA fit plus projection of every row.
    pub pca_seconds: f64,
    /// k-means fit plus the final assignment.
    pub kmeans_seconds: f64,
    /// Sum of squared distances to the nearest centroid, in PCA space (scikit-learn's
    /// `inertia_`).
    pub inertia: f64,
}

/// Runs the PCA and k-means of [`crate::summarise`] on every row, without sampling.
pub fn time_pca_then_kmeans(
    vectors: ArrayView2<'_, f32>,
    variance_share: f64,
    k: usize,
    n_init: usize,
    seed: u64,
) -> Result<StageTimings, ClusterError> {
    let vectors = vectors.as_standard_layout();
    let start = Instant::now();
    let pca = Pca::fit(vectors.view(), variance_share)?;
    let projected = pca.project(vectors.view());
    let pca_seconds = start.elapsed().as_secs_f64();

    let start = Instant::now();
    let centroids = fit_centroids(projected.view(), k, n_init, 300, seed)?;
    let assignment = assign(projected.view(), centroids.view());
    let kmeans_seconds = start.elapsed().as_secs_f64();

    let inertia = assignment.distances.iter().map(|&d| f64::from(d) * f64::from(d)).sum();
    Ok(StageTimings { pca_dims: pca.kept_dims(), variance_kept: pca.variance_kept, pca_seconds, kmeans_seconds, inertia })
}
