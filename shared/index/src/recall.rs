//! Recall of the quantised HNSW parts against exact search.

use std::collections::HashSet;

use crate::{ExactIndex, Hit, IndexError, Searcher};

/// Measures recall@k: the fraction of each query's exact top `k` that the
/// HNSW search also returns, pooled over all queries.
///
/// `exact` must hold the same vectors as `searcher`. Use queries that are not
/// themselves in the index, because a stored vector finds itself easily and
/// inflates recall.
pub fn recall_at_k<'a>(
    searcher: &Searcher,
    exact: &ExactIndex,
    queries: impl IntoIterator<Item = &'a [f32]>,
    k: usize,
) -> Result<f64, IndexError> {
    let mut found = 0;
    let mut expected = 0;
    for query in queries {
        let approximate_hits = searcher.search(query, k)?;
        let exact_hits = exact.search(query, k)?;
        let (query_found, query_expected) = count_recalled(&approximate_hits, &exact_hits, k);
        found += query_found;
        expected += query_expected;
    }
    if expected == 0 {
        return Err(IndexError::InvalidOption {
            field: "queries",
            value: "no queries, or an empty exact index".to_owned(),
            reason: "recall needs at least one query and one stored vector",
        });
    }
    Ok(found as f64 / expected as f64)
}

/// Counts how many of the first `k` exact hits appear among the first `k`
/// approximate hits; returns `(found, expected)`.
///
/// Use it to score several indexes against exact hits computed once.
pub fn count_recalled(approximate: &[Hit], exact: &[Hit], k: usize) -> (usize, usize) {
    let approximate_keys: HashSet<u64> = approximate.iter().take(k).map(|hit| hit.key).collect();
    let exact_top = &exact[..exact.len().min(k)];
    let found = exact_top
        .iter()
        .filter(|hit| approximate_keys.contains(&hit.key))
        .count();
    (found, exact_top.len())
}
