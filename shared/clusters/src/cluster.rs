//! The clustering run: sample, PCA, k-means (k given or chosen by silhouette), assignment
//! of every page, silhouette, medoids and near-duplicates.

use std::collections::{BTreeSet, HashSet};

use ndarray::{Array2, ArrayView2, Axis, s};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use crate::duplicates::near_duplicate_groups;
use crate::error::ClusterError;
use crate::kmeans::{assign, fit_centroids};
use crate::linalg::ROW_BLOCK;
use crate::params::{ClusterParams, KChoice};
use crate::pca::{Pca, gather_rows};
use crate::silhouette::silhouettes;
use crate::summary::{
    ClusterInfo, ClusterSummary, DocumentDistance, KCandidate, NearDuplicates, NearestCluster, PageRef,
    SCHEMA_VERSION, SilhouetteReport, SummaryParameters,
};

/// Mixed into the seed for the silhouette sample, so that it differs from the fit sample.
pub(crate) const SILHOUETTE_SEED: u64 = 0x5111_4077;

/// Ids copied verbatim into the summary.
#[derive(Clone, Debug, Default)]
pub struct SummaryIds {
    pub model_id: String,
    pub snapshot_id: String,
}

/// A page's position on the 2-D map (its first two principal components) and its cluster.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapPoint {
    pub x: f32,
    pub y: f32,
    pub cluster: u32,
}

/// Result of [`summarise`]: the summary, and per-page data that does not belong in it.
#[derive(Clone, Debug)]
pub struct ClusterRun {
    pub summary: ClusterSummary,
    /// Cluster id of each input row, in input order.
    pub labels: Vec<u32>,
    /// Map position of each input row, in input order, for [`crate::map_png`].
    pub map_points: Vec<MapPoint>,
}

/// Clusters page vectors and builds their summary.
///
/// `vectors` has one row per entry of `pages` and any number of columns; the rows should be
/// L2-normalised embeddings. The same input, parameters and seed give the same summary.
pub fn summarise(
    pages: &[PageRef],
    vectors: ArrayView2<'_, f32>,
    params: &ClusterParams,
    ids: &SummaryIds,
) -> Result<ClusterRun, ClusterError> {
    params.validate()?;
    validate_input(pages, &vectors)?;
    let vectors = vectors.as_standard_layout();
    let vectors = vectors.view();
    let page_count = pages.len();

    // Fit on a seeded sample when the input is large; sorted rows keep the input order.
    let fit_rows = seeded_sample(page_count, params.sample_size_limit, params.seed);
    let fit_points: Array2<f32> = match &fit_rows {
        Some(rows) => gather_rows(vectors, rows),
        None => vectors.to_owned(),
    };
    let fitted = fit(fit_points.view(), params)?;
    let sample_size = fit_points.nrows();
    drop(fit_points);

    // Assign every page block by block, keeping only labels, distances and the first two
    // coordinates: the projection of 1M pages would not fit next to the input in memory.
    let assigned = project_and_assign(vectors, &fitted.pca, &fitted.centroids);

    let silhouette_rows = seeded_sample(page_count, params.silhouette_sample_size, params.seed ^ SILHOUETTE_SEED)
        .unwrap_or_else(|| (0..page_count).collect());
    let silhouette_vectors = gather_rows(vectors, &silhouette_rows);
    Ok(complete(
        pages,
        fitted,
        assigned,
        Silhouette { rows: silhouette_rows, vectors: silhouette_vectors },
        NearDuplicateInput::Vectors(vectors),
        sample_size,
        params,
        ids,
    ))
}

/// PCA and centroids fitted on a sample, and the k they were fitted with.
pub(crate) struct Fitted {
    pub pca: Pca,
    pub k: usize,
    pub candidates: Vec<KCandidate>,
    /// `k x pca_dims`, in k-means order (not yet ranked by size).
    pub centroids: Array2<f32>,
}

/// Fits PCA on `points`, then k-means on their projection, with k given or chosen.
pub(crate) fn fit(points: ArrayView2<'_, f32>, params: &ClusterParams) -> Result<Fitted, ClusterError> {
    let pca = Pca::fit(points, params.variance_share)?;
    let projected = pca.project(points);
    let (k, candidates, centroids) = choose_k(&projected.view(), params)?;
    Ok(Fitted { pca, k, candidates, centroids })
}

/// Nearest centroid, distance to it and map coordinates of each page, in page order.
pub(crate) struct Assigned {
    pub labels: Vec<u32>,
    pub distances: Vec<f32>,
    pub coordinates: Vec<[f32; 2]>,
}

/// Pages whose silhouette is computed: their rows in the page list, ascending, and their
/// vectors before projection, one row each.
pub(crate) struct Silhouette {
    pub rows: Vec<usize>,
    pub vectors: Array2<f32>,
}

/// Input of the near-duplicate search.
pub(crate) enum NearDuplicateInput<'a> {
    /// Every page's vector, one row per page.
    Vectors(ArrayView2<'a, f32>),
    /// The vectors were not kept; the reason goes into the summary.
    Skipped(String),
}

/// Builds the summary once every page has a cluster: ranks clusters by size, computes
/// silhouettes, medoids and near-duplicates.
#[allow(clippy::too_many_arguments)]
pub(crate) fn complete(
    pages: &[PageRef],
    fitted: Fitted,
    assigned: Assigned,
    silhouette_input: Silhouette,
    near_duplicate_input: NearDuplicateInput<'_>,
    sample_size: usize,
    params: &ClusterParams,
    ids: &SummaryIds,
) -> ClusterRun {
    let page_count = pages.len();
    let Fitted { pca, k, candidates, centroids } = fitted;

    // Rank clusters by size (largest first, then by old label) so ids are stable and readable.
    let mut sizes = vec![0_usize; k];
    for &label in &assigned.labels {
        sizes[label as usize] += 1;
    }
    // k-means can leave a centroid without pages once every page is assigned. Such clusters
    // are dropped, so `clusters` may be shorter than `parameters.k`.
    let mut order: Vec<usize> = (0..k).filter(|&cluster| sizes[cluster] > 0).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let fitted_k = k;
    let k = order.len();
    let mut new_id = vec![0_u32; fitted_k];
    for (rank, &old) in order.iter().enumerate() {
        new_id[old] = rank as u32;
    }
    let labels: Vec<u32> = assigned.labels.iter().map(|&label| new_id[label as usize]).collect();
    let centroids = centroids.select(Axis(0), &order);

    let map_points = assigned
        .coordinates
        .iter()
        .zip(&labels)
        .map(|(&[x, y], &cluster)| MapPoint { x, y, cluster })
        .collect();

    // Silhouette, cohesion and medoid candidates on a seeded sample of all pages.
    let silhouette_rows = silhouette_input.rows;
    let silhouette_points = pca.project(silhouette_input.vectors.view());
    let silhouette_labels: Vec<u32> = silhouette_rows.iter().map(|&row| labels[row]).collect();
    let silhouette = silhouettes(silhouette_points.view(), &silhouette_labels, k);

    let mut cohesion_sums = vec![(0.0_f64, 0_usize); k];
    let mut medoid_rows: Vec<Option<(f64, usize)>> = vec![None; k];
    for (index, &row) in silhouette_rows.iter().enumerate() {
        let cluster = labels[row] as usize;
        cohesion_sums[cluster].0 += f64::from(silhouette.values[index]);
        cohesion_sums[cluster].1 += 1;
        let intra = silhouette.intra_sums[index];
        if medoid_rows[cluster].is_none_or(|(best, _)| intra < best) {
            medoid_rows[cluster] = Some((intra, row));
        }
    }

    let mut clusters = build_clusters(pages, &labels, &assigned.distances, &centroids.view(), params);
    for (cluster, info) in clusters.iter_mut().enumerate() {
        let (sum, count) = cohesion_sums[cluster];
        info.cohesion = (count > 0).then(|| (sum / count as f64) as f32);
        if let Some((_, row)) = medoid_rows[cluster] {
            info.medoid = pages[row].clone();
        }
    }

    let near_duplicates = match near_duplicate_input {
        NearDuplicateInput::Vectors(vectors) if page_count <= params.near_duplicate_max_pages => {
            let groups = near_duplicate_groups(vectors, &labels, k, params.near_duplicate_threshold);
            NearDuplicates {
                threshold: params.near_duplicate_threshold,
                computed: true,
                scope: "pairs within each cluster".into(),
                groups: groups
                    .into_iter()
                    .map(|group| group.into_iter().map(|row| pages[row].clone()).collect())
                    .collect(),
            }
        }
        // NOTE: above the limit an approximate search (the usearch index) should find the
        // pairs; this crate does not do that yet.
        NearDuplicateInput::Vectors(_) => NearDuplicates {
            threshold: params.near_duplicate_threshold,
            computed: false,
            scope: format!("skipped: more than {} pages", params.near_duplicate_max_pages),
            groups: Vec::new(),
        },
        NearDuplicateInput::Skipped(reason) => NearDuplicates {
            threshold: params.near_duplicate_threshold,
            computed: false,
            scope: format!("skipped: {reason}"),
            groups: Vec::new(),
        },
    };

    let document_count = pages.iter().map(|page| page.document.as_str()).collect::<BTreeSet<_>>().len();
    let summary = ClusterSummary {
        schema_version: SCHEMA_VERSION,
        model_id: ids.model_id.clone(),
        snapshot_id: ids.snapshot_id.clone(),
        parameters: SummaryParameters {
            k: fitted_k,
            k_choice: params.k.clone(),
            k_candidates: candidates,
            variance_share: params.variance_share,
            variance_kept: pca.variance_kept,
            input_dims: pca.mean.len(),
            pca_dims: pca.kept_dims(),
            seed: params.seed,
            n_init: params.n_init,
            max_iterations: params.max_iterations,
            sample_size_limit: params.sample_size_limit,
        },
        page_count,
        document_count,
        sampled: sample_size < page_count,
        sample_size,
        silhouette: SilhouetteReport {
            overall: silhouette.mean(),
            sampled: silhouette_rows.len() < page_count,
            sample_size: silhouette_rows.len(),
        },
        clusters,
        near_duplicates,
        drift: None,
    };
    ClusterRun { summary, labels, map_points }
}

pub(crate) fn validate_input(pages: &[PageRef], vectors: &ArrayView2<'_, f32>) -> Result<(), ClusterError> {
    if pages.len() != vectors.nrows() {
        return Err(ClusterError::PageCountMismatch { pages: pages.len(), rows: vectors.nrows() });
    }
    if pages.len() < 2 {
        return Err(ClusterError::TooFewPages { pages: pages.len() });
    }
    if vectors.ncols() == 0 {
        return Err(ClusterError::ZeroDimensions);
    }
    for (row, (page, vector)) in pages.iter().zip(vectors.rows()).enumerate() {
        if page.page == 0 {
            return Err(ClusterError::InvalidPageNumber { document: page.document.clone() });
        }
        if !vector.iter().all(|value| value.is_finite()) {
            return Err(ClusterError::NonFiniteVector { row, document: page.document.clone(), page: page.page });
        }
    }
    Ok(())
}

/// Projects `vectors` block by block and assigns each row to its nearest centroid, with the
/// first two PCA coordinates of each row (the second is 0 when the PCA kept one dimension).
pub(crate) fn project_and_assign(vectors: ArrayView2<'_, f32>, pca: &Pca, centroids: &Array2<f32>) -> Assigned {
    let rows = vectors.nrows();
    let mut assigned = Assigned {
        labels: Vec::with_capacity(rows),
        distances: Vec::with_capacity(rows),
        coordinates: Vec::with_capacity(rows),
    };
    for start in (0..rows).step_by(ROW_BLOCK) {
        let end = (start + ROW_BLOCK).min(rows);
        let projected = pca.project(vectors.slice(s![start..end, ..]));
        let block = assign(projected.view(), centroids.view());
        assigned.labels.extend(block.labels);
        assigned.distances.extend(block.distances);
        assigned
            .coordinates
            .extend(projected.rows().into_iter().map(|row| [row[0], if row.len() > 1 { row[1] } else { 0.0 }]));
    }
    assigned
}

/// Returns sorted row indices of a seeded sample of `limit` rows, or `None` when all
/// `count` rows fit under the limit.
fn seeded_sample(count: usize, limit: usize, seed: u64) -> Option<Vec<usize>> {
    if count <= limit {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows = sample(&mut rng, count, limit).into_vec();
    rows.sort_unstable();
    Some(rows)
}

/// Fits the final centroids, trying every k of the silhouette range when k is not given.
/// Ties in silhouette go to the smaller k.
fn choose_k(
    points: &ArrayView2<'_, f32>,
    params: &ClusterParams,
) -> Result<(usize, Vec<KCandidate>, Array2<f32>), ClusterError> {
    let fit = |k| fit_centroids(*points, k, params.n_init, params.max_iterations, params.seed);
    let (min, max) = match params.k {
        KChoice::Given { k } => return Ok((k, Vec::new(), fit(k)?)),
        KChoice::Silhouette { min, max } => (min, max.min(points.nrows() / 2)),
    };
    if max < min {
        return Err(ClusterError::InvalidParameter {
            name: "k",
            value: format!("{min}..={max}"),
            expected: "the silhouette range needs at least 2 * min points to fit on; give k instead",
        });
    }

    // Candidates are fitted and scored on at most `silhouette_sample_size` points, because
    // fitting every k on the whole sample would multiply the k-means time by the range size.
    let selection_rows = seeded_sample(points.nrows(), params.silhouette_sample_size, params.seed ^ SILHOUETTE_SEED);
    let selection_points = match &selection_rows {
        Some(rows) => gather_rows(*points, rows),
        None => points.to_owned(),
    };

    let mut candidates = Vec::new();
    let mut best: Option<(f32, usize, Array2<f32>)> = None;
    for k in min..=max {
        let centroids =
            fit_centroids(selection_points.view(), k, params.n_init, params.max_iterations, params.seed)?;
        let labels = assign(selection_points.view(), centroids.view()).labels;
        let score = silhouettes(selection_points.view(), &labels, k).mean();
        candidates.push(KCandidate { k, silhouette: score });
        if best.as_ref().is_none_or(|(best_score, _, _)| score > *best_score) {
            best = Some((score, k, centroids));
        }
    }
    let (_, k, centroids) = best.expect("the silhouette range contains at least one k");

    // With a selection subsample, the best k is refitted on all points, so its silhouette on
    // those points can differ from the candidate score.
    let centroids = if selection_rows.is_some() { fit(k)? } else { centroids };
    Ok((k, candidates, centroids))
}

/// Builds the per-cluster records that need only labels, distances and centroids.
fn build_clusters(
    pages: &[PageRef],
    labels: &[u32],
    distances: &[f32],
    centroids: &ArrayView2<'_, f32>,
    params: &ClusterParams,
) -> Vec<ClusterInfo> {
    let k = centroids.nrows();
    let mut rows_by_cluster: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (row, &label) in labels.iter().enumerate() {
        rows_by_cluster[label as usize].push(row);
    }

    rows_by_cluster
        .into_iter()
        .enumerate()
        .map(|(cluster, mut rows)| {
            rows.sort_by(|&a, &b| distances[a].total_cmp(&distances[b]).then(a.cmp(&b)));

            let mut nearest_documents: Vec<DocumentDistance> = Vec::new();
            let mut seen: HashSet<&str> = HashSet::new();
            for &row in &rows {
                let first_page_of_document = seen.insert(pages[row].document.as_str());
                if first_page_of_document && nearest_documents.len() < params.nearest_documents {
                    nearest_documents.push(DocumentDistance {
                        document: pages[row].document.clone(),
                        distance: distances[row],
                    });
                }
            }

            ClusterInfo {
                id: cluster as u32,
                page_count: rows.len(),
                document_count: seen.len(),
                // Replaced by the silhouette-based medoid when the cluster has sampled members.
                // Every cluster here has at least one page, because empty ones were dropped.
                medoid: pages[rows[0]].clone(),
                nearest_documents,
                cohesion: None,
                nearest_cluster: nearest_cluster(centroids, cluster),
                members: rows.iter().map(|&row| pages[row].clone()).collect(),
            }
        })
        .collect()
}

fn nearest_cluster(centroids: &ArrayView2<'_, f32>, cluster: usize) -> Option<NearestCluster> {
    let own = centroids.row(cluster);
    (0..centroids.nrows())
        .filter(|&other| other != cluster)
        .map(|other| {
            let difference = &centroids.row(other) - &own;
            (other, difference.dot(&difference).sqrt())
        })
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
        .map(|(other, distance)| NearestCluster { id: other as u32, distance })
}
