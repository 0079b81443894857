//! Searching all parts of an index snapshot and merging hit lists.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::vector::{check_dims, check_query};
use crate::{IndexError, IndexPart};

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// Page key that the vector was added under.
    pub key: u64,
    /// Cosine similarity to the query, from -1 to 1; higher is closer. HNSW
    /// parts compute it on the quantised vectors, so f16 and i8 scores are
    /// approximate.
    pub score: f32,
}

/// Approximate nearest-neighbour search over every part of an index
/// snapshot.
///
/// Each part is searched for `k` hits and the lists are merged, so the result
/// is as good as searching one index holding all vectors, up to HNSW's own
/// approximation in each part. Cost grows linearly with the number of parts.
#[derive(Debug)]
pub struct Searcher {
    dims: usize,
    parts: Vec<IndexPart>,
}

impl Searcher {
    /// Creates a searcher over `parts`, which must all have `dims`
    /// dimensions, and sets each part's search expansion (ef), because
    /// usearch does not store it in the index file.
    ///
    /// An empty `parts` is allowed and returns no hits.
    pub fn new(
        dims: usize,
        parts: Vec<IndexPart>,
        expansion_search: usize,
    ) -> Result<Self, IndexError> {
        check_dims(dims)?;
        if expansion_search == 0 {
            return Err(IndexError::InvalidOption {
                field: "expansion_search",
                value: "0".to_owned(),
                reason: "must be positive; 128 is typical",
            });
        }
        for (position, part) in parts.iter().enumerate() {
            if part.dims() != dims {
                return Err(IndexError::PartDimensionMismatch {
                    part: position,
                    expected: dims,
                    actual: part.dims(),
                });
            }
            part.set_expansion_search(expansion_search);
        }
        Ok(Self { dims, parts })
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn parts(&self) -> &[IndexPart] {
        &self.parts
    }

    /// Returns the total number of vectors over all parts.
    pub fn len(&self) -> usize {
        self.parts.iter().map(IndexPart::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the stored vector of `key` from the part that contains it
    /// (see [`IndexPart::vector`] for its precision), or `None`.
    pub fn vector(&self, key: u64) -> Result<Option<Vec<f32>>, IndexError> {
        for part in &self.parts {
            if let Some(vector) = part.vector(key)? {
                return Ok(Some(vector));
            }
        }
        Ok(None)
    }

    /// Returns up to `k` hits for `query`, best first.
    ///
    /// The query must have `dims` finite components and a non-zero norm; it
    /// need not be normalised.
    // NOTE: usearch reserves one search slot per core; more concurrent
    // searches on one searcher than that fail with a usearch error.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, IndexError> {
        self.search_parts(query, k, None)
    }

    /// Returns up to `k` hits for `query` whose key passes `keep`, best
    /// first; use it to hide deleted documents until the next rebuild.
    ///
    /// The filter runs inside usearch's graph walk, so excluded keys do not
    /// use up the `k` slots. When `keep` rejects most keys, the walk may end
    /// with fewer than `k` hits.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Result<Vec<Hit>, IndexError> {
        self.search_parts(query, k, Some(&keep))
    }

    fn search_parts(
        &self,
        query: &[f32],
        k: usize,
        keep: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<Vec<Hit>, IndexError> {
        check_query(self.dims, query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut hit_lists = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            hit_lists.push(part.search(query, k, keep)?);
        }
        Ok(merge_hits(hit_lists, k))
    }
}

/// Merges hit lists into the best `k`, best first.
///
/// A key found in several lists (for example in the snapshot and in the
/// exact index of newer shards) appears once, with its highest score. Equal
/// scores are ordered by key, so the result does not depend on list order.
pub fn merge_hits<L>(hit_lists: impl IntoIterator<Item = L>, k: usize) -> Vec<Hit>
where
    L: IntoIterator<Item = Hit>,
{
    let mut best_scores: HashMap<u64, f32> = HashMap::new();
    for hit in hit_lists.into_iter().flatten() {
        best_scores
            .entry(hit.key)
            .and_modify(|score| *score = score.max(hit.score))
            .or_insert(hit.score);
    }

    let mut hits: Vec<Hit> = best_scores
        .into_iter()
        .map(|(key, score)| Hit { key, score })
        .collect();
    hits.sort_by(compare_best_first);
    hits.truncate(k);
    hits
}

/// Orders hits by descending score, then ascending key.
pub(crate) fn compare_best_first(a: &Hit, b: &Hit) -> std::cmp::Ordering {
    b.score.total_cmp(&a.score).then(a.key.cmp(&b.key))
}
