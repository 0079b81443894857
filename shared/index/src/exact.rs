//! Flat, exact cosine search for vectors not yet in an index snapshot.

use std::collections::HashSet;

use numkong::Dot;

use crate::search::compare_best_first;
use crate::vector::{check_dims, check_query, check_vector};
use crate::{Hit, IndexError};

/// Exact (brute-force) cosine search over f32 vectors held in memory.
///
/// It serves shards written after the last snapshot, and is the reference
/// that [`crate::recall_at_k`] measures HNSW parts against. Each search reads
/// every stored vector, so time grows linearly with `len()`.
#[derive(Debug, Clone)]
pub struct ExactIndex {
    dims: usize,
    keys: Vec<u64>,
    key_set: HashSet<u64>,
    /// Unit-norm copies of the added vectors, stored row after row, so a dot
    /// product with a unit-norm query is the cosine similarity.
    unit_vectors: Vec<f32>,
}

impl ExactIndex {
    pub fn new(dims: usize) -> Result<Self, IndexError> {
        check_dims(dims)?;
        Ok(Self {
            dims,
            keys: Vec::new(),
            key_set: HashSet::new(),
            unit_vectors: Vec::new(),
        })
    }

    /// Creates an exact index holding `vectors`, with the same checks as
    /// [`ExactIndex::add`].
    pub fn from_vectors<'a>(
        dims: usize,
        vectors: impl IntoIterator<Item = (u64, &'a [f32])>,
    ) -> Result<Self, IndexError> {
        let mut index = Self::new(dims)?;
        for (key, vector) in vectors {
            index.add(key, vector)?;
        }
        Ok(index)
    }

    /// Adds a vector under `key`.
    ///
    /// The vector must have `dims` finite components and a non-zero norm, and
    /// `key` must be new to this index and below `u64::MAX` (the same rule as
    /// for HNSW parts, so keys can move between the two).
    pub fn add(&mut self, key: u64, vector: &[f32]) -> Result<(), IndexError> {
        let norm = check_vector(key, self.dims, vector)?;
        if !self.key_set.insert(key) {
            return Err(IndexError::DuplicateKey { key });
        }
        self.keys.push(key);
        self.unit_vectors.extend(vector.iter().map(|&x| x / norm));
        Ok(())
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn contains(&self, key: u64) -> bool {
        self.key_set.contains(&key)
    }

    /// Returns the `k` stored vectors closest to `query` by cosine
    /// similarity, best first, with the same query checks as
    /// [`crate::Searcher::search`].
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, IndexError> {
        self.search_keeping(query, k, |_| true)
    }

    /// Returns the `k` closest vectors whose key passes `keep`, best first.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Result<Vec<Hit>, IndexError> {
        self.search_keeping(query, k, keep)
    }

    fn search_keeping(
        &self,
        query: &[f32],
        k: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Result<Vec<Hit>, IndexError> {
        let norm = check_query(self.dims, query)?;
        if k == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        let unit_query: Vec<f32> = query.iter().map(|&x| x / norm).collect();

        let mut hits: Vec<Hit> = self
            .keys
            .iter()
            .zip(self.unit_vectors.chunks_exact(self.dims))
            .filter(|(key, _)| keep(**key))
            .map(|(&key, vector)| Hit {
                key,
                score: dot(&unit_query, vector),
            })
            .collect();

        // Select the best k in linear time, then sort only those.
        if hits.len() > k {
            hits.select_nth_unstable_by(k - 1, compare_best_first);
            hits.truncate(k);
        }
        hits.sort_by(compare_best_first);
        Ok(hits)
    }
}

/// Computes a dot product with NumKong's SIMD kernels, which accumulate f32
/// inputs in f64.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Both slices have `dims` components, so the length check cannot fail.
    f32::dot(a, b).expect("dot product of equal-length vectors") as f32
}
