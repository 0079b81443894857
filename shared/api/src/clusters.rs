//! `GET /clusters` and `GET /clusters/{id}`: the latest cluster summary
//! written by the index build.
//!
//! The build stores the summary at `<clusters prefix><snapshot id>/summary.json`
//! and then the pointer `<clusters prefix>latest.json`
//! (`{"snapshot_id": "...", "summary": "<key>"}`).

use std::sync::Arc;

use folio_clusters::{ClusterInfo, ClusterSummary, PageRef};
use folio_store::StoreError;

use crate::error::ApiError;
use crate::state::CachedSummary;
use crate::{ApiResponse, ApiState};

/// The pointer to the latest summary.
#[derive(serde::Deserialize)]
struct LatestSummary {
    snapshot_id: String,
    summary: String,
}

/// `GET /clusters/{id}`: one cluster and a page of its members.
#[derive(serde::Serialize)]
struct ClusterPage<'a> {
    snapshot_id: &'a str,
    model_id: &'a str,
    /// The cluster without its member list.
    cluster: serde_json::Value,
    /// Members `offset..offset + limit`, nearest to the centroid first.
    members: &'a [PageRef],
    offset: usize,
    limit: usize,
    total_members: usize,
}

/// Reads the latest summary, from the cache while the pointer names the same key.
async fn latest_summary(state: &ApiState) -> Result<Arc<ClusterSummary>, ApiError> {
    let pointer_key = format!("{}latest.json", state.layout.clusters);
    let pointer_bytes = match state.store.get(&pointer_key).await {
        Ok(bytes) => bytes,
        Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::NoClusterSummary {
                prefix: state.layout.clusters.clone(),
            });
        }
        Err(error) => return Err(error.into()),
    };
    let pointer: LatestSummary = serde_json::from_slice(&pointer_bytes)
        .map_err(|error| ApiError::Internal(format!("{pointer_key}: invalid cluster summary pointer: {error}")))?;

    if let Some(cached) = state.summary.read().unwrap_or_else(|poisoned| poisoned.into_inner()).as_ref()
        && cached.key == pointer.summary
    {
        return Ok(cached.summary.clone());
    }

    let summary_bytes = state.store.get(&pointer.summary).await.map_err(|error| match error {
        StoreError::NotFound { .. } => ApiError::Internal(format!(
            "{pointer_key} names summary {} of snapshot {}, which does not exist",
            pointer.summary, pointer.snapshot_id
        )),
        other => other.into(),
    })?;
    let summary: ClusterSummary = serde_json::from_slice(&summary_bytes)
        .map_err(|error| ApiError::Internal(format!("{}: invalid cluster summary: {error}", pointer.summary)))?;
    let summary = Arc::new(summary);
    *state.summary.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(CachedSummary {
        key: pointer.summary,
        summary: summary.clone(),
    });
    Ok(summary)
}

/// Serialises a cluster without its member list, which can contain every page of the collection.
fn without_members(cluster: &ClusterInfo) -> Result<serde_json::Value, ApiError> {
    let mut value = serde_json::to_value(cluster)
        .map_err(|error| ApiError::Internal(format!("failed to serialise cluster {}: {error}", cluster.id)))?;
    if let Some(object) = value.as_object_mut() {
        object.remove("members");
    }
    Ok(value)
}

/// `GET /clusters`.
pub(crate) async fn overview(state: &ApiState) -> Result<ApiResponse, ApiError> {
    let summary = latest_summary(state).await?;
    let mut value = serde_json::to_value(summary.as_ref())
        .map_err(|error| ApiError::Internal(format!("failed to serialise the cluster summary: {error}")))?;
    let clusters: Vec<serde_json::Value> = summary.clusters.iter().map(without_members).collect::<Result<_, _>>()?;
    value["clusters"] = serde_json::Value::Array(clusters);
    Ok(ApiResponse::json(200, &value))
}

/// `GET /clusters/{id}?offset=&limit=`.
pub(crate) async fn cluster(state: &ApiState, id: &str, offset: usize, limit: usize) -> Result<ApiResponse, ApiError> {
    let number: u32 = id.parse().map_err(|_| ApiError::InvalidPath {
        reason: format!("cluster id {id:?} is not a non-negative integer; use /clusters/0, /clusters/1, ..."),
    })?;
    let summary = latest_summary(state).await?;
    let Some(cluster) = summary.clusters.iter().find(|cluster| cluster.id == number) else {
        return Err(ApiError::UnknownCluster {
            id: id.to_owned(),
            last: summary.clusters.len().saturating_sub(1),
        });
    };
    let page = ClusterPage {
        snapshot_id: &summary.snapshot_id,
        model_id: &summary.model_id,
        cluster: without_members(cluster)?,
        members: cluster.members_page(offset, limit),
        offset,
        limit,
        total_members: cluster.members.len(),
    };
    Ok(ApiResponse::json(200, &page))
}
