//! Drift between two summaries: clusters matched by shared member pages.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::summary::{ClusterSummary, PageRef};

/// Minimum share of the smaller cluster's pages that two clusters must share to be matched.
pub const MIN_MEMBER_OVERLAP: f64 = 0.5;

/// Changes from a previous summary to the current one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub previous_snapshot_id: String,
    /// Matching rule, stated for readers of the JSON.
    pub matching: String,
    pub grew: Vec<MatchedCluster>,
    pub shrank: Vec<MatchedCluster>,
    pub unchanged: Vec<MatchedCluster>,
    /// Current clusters with no previous match.
    pub appeared: Vec<UnmatchedCluster>,
    /// Previous clusters with no current match.
    pub disappeared: Vec<UnmatchedCluster>,
}

/// A previous cluster and the current cluster matched to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchedCluster {
    pub previous_id: u32,
    pub current_id: u32,
    pub previous_pages: usize,
    pub current_pages: usize,
    /// Pages that are members of both.
    pub shared_pages: usize,
}

/// A cluster present in only one of the two summaries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnmatchedCluster {
    pub id: u32,
    pub pages: usize,
}

/// Compares two summaries by member pages.
///
/// Pairs are matched one to one, greedily by the number of shared pages (ties by previous id,
/// then current id), and only when the shared pages are at least [`MIN_MEMBER_OVERLAP`] of
/// the smaller cluster. Cluster ids alone are not compared, because ids are ranks by size and
/// change between runs. Centroids are not compared either, because each run has its own PCA
/// space.
pub fn compare(previous: &ClusterSummary, current: &ClusterSummary) -> Drift {
    let mut previous_cluster_of: HashMap<&PageRef, u32> = HashMap::new();
    for cluster in &previous.clusters {
        for page in &cluster.members {
            previous_cluster_of.insert(page, cluster.id);
        }
    }

    let mut shared: HashMap<(u32, u32), usize> = HashMap::new();
    for cluster in &current.clusters {
        for page in &cluster.members {
            if let Some(&previous_id) = previous_cluster_of.get(page) {
                *shared.entry((previous_id, cluster.id)).or_default() += 1;
            }
        }
    }

    let previous_sizes: HashMap<u32, usize> =
        previous.clusters.iter().map(|cluster| (cluster.id, cluster.page_count)).collect();
    let current_sizes: HashMap<u32, usize> =
        current.clusters.iter().map(|cluster| (cluster.id, cluster.page_count)).collect();

    let mut candidates: Vec<((u32, u32), usize)> = shared.into_iter().collect();
    candidates.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    let mut matched_previous = std::collections::HashSet::new();
    let mut matched_current = std::collections::HashSet::new();
    let mut drift = Drift {
        previous_snapshot_id: previous.snapshot_id.clone(),
        matching: format!(
            "one-to-one by shared member pages, at least {MIN_MEMBER_OVERLAP} of the smaller cluster"
        ),
        grew: Vec::new(),
        shrank: Vec::new(),
        unchanged: Vec::new(),
        appeared: Vec::new(),
        disappeared: Vec::new(),
    };

    for ((previous_id, current_id), shared_pages) in candidates {
        if matched_previous.contains(&previous_id) || matched_current.contains(&current_id) {
            continue;
        }
        let previous_pages = previous_sizes[&previous_id];
        let current_pages = current_sizes[&current_id];
        let smaller = previous_pages.min(current_pages).max(1);
        if (shared_pages as f64) < MIN_MEMBER_OVERLAP * smaller as f64 {
            continue;
        }
        matched_previous.insert(previous_id);
        matched_current.insert(current_id);
        let pair = MatchedCluster { previous_id, current_id, previous_pages, current_pages, shared_pages };
        match current_pages.cmp(&previous_pages) {
            std::cmp::Ordering::Greater => drift.grew.push(pair),
            std::cmp::Ordering::Less => drift.shrank.push(pair),
            std::cmp::Ordering::Equal => drift.unchanged.push(pair),
        }
    }

    for cluster in &current.clusters {
        if !matched_current.contains(&cluster.id) {
            drift.appeared.push(UnmatchedCluster { id: cluster.id, pages: cluster.page_count });
        }
    }
    for cluster in &previous.clusters {
        if !matched_previous.contains(&cluster.id) {
            drift.disappeared.push(UnmatchedCluster { id: cluster.id, pages: cluster.page_count });
        }
    }
    for list in [&mut drift.grew, &mut drift.shrank, &mut drift.unchanged] {
        list.sort_by_key(|pair| pair.current_id);
    }
    drift
}

impl ClusterSummary {
    /// Compares with `previous` and stores the result in `drift`.
    pub fn attach_drift(&mut self, previous: &ClusterSummary) {
        self.drift = Some(compare(previous, self));
    }
}
