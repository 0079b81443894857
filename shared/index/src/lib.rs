//! Page-vector index for Folio: usearch HNSW parts, exact search and recall.
//!
//! The index snapshot is a set of usearch HNSW indexes ("parts") over the
//! L2-normalised page embeddings, compared by cosine similarity. Splitting
//! into parts keeps each one under a size limit, so a snapshot larger than
//! one function's memory can still be served: the query side searches every
//! part and merges the hits.
//!
//! - [`build_parts`] builds parts from `(key, vector)` pairs under the limits
//!   in [`IndexOptions`].
//! - [`IndexPart`] serialises to bytes or a file and opens again by copying
//!   ([`IndexPart::load`]) or memory-mapping ([`IndexPart::view`]).
//! - [`Searcher`] searches all parts; [`ExactIndex`] searches vectors newer
//!   than the snapshot exactly; [`merge_hits`] combines both.
//! - [`recall_at_k`] measures the HNSW parts against exact search.
//!
//! This crate reads and writes only the buffers and files it is handed.
//!
//! # Example
//!
//! ```
//! use folio_index::{build_parts, merge_hits, ExactIndex, IndexOptions, IndexPart, Searcher};
//!
//! let dims = 4;
//! let vectors: Vec<(u64, Vec<f32>)> = vec![
//!     (1, vec![1.0, 0.0, 0.0, 0.0]),
//!     (2, vec![0.0, 1.0, 0.0, 0.0]),
//!     (3, vec![0.7, 0.7, 0.0, 0.0]),
//! ];
//! let options = IndexOptions { max_part_vectors: Some(2), ..IndexOptions::default() };
//! let parts = build_parts(dims, &options, vectors.iter().map(|(key, v)| (*key, v.as_slice())))?;
//! assert_eq!(parts.len(), 2);
//!
//! // Parts travel as bytes (or files) between the build job and the query side.
//! let bytes: Vec<Vec<u8>> = parts.iter().map(IndexPart::to_bytes).collect::<Result<_, _>>()?;
//! let loaded = bytes.iter().map(|b| IndexPart::load(b)).collect::<Result<Vec<_>, _>>()?;
//! let searcher = Searcher::new(dims, loaded, options.expansion_search)?;
//!
//! let query = [1.0, 0.1, 0.0, 0.0];
//! let snapshot_hits = searcher.search(&query, 2)?;
//! assert_eq!(snapshot_hits[0].key, 1);
//!
//! // A page embedded after the snapshot was built.
//! let newer = ExactIndex::from_vectors(dims, [(4_u64, &[1.0_f32, 0.05, 0.0, 0.0][..])])?;
//! let hits = merge_hits([snapshot_hits, newer.search(&query, 2)?], 2);
//! assert_eq!(hits[0].key, 4);
//! # Ok::<(), folio_index::IndexError>(())
//! ```

mod error;
mod exact;
mod options;
mod part;
mod recall;
mod search;
mod vector;

pub use error::IndexError;
pub use exact::ExactIndex;
pub use options::{
    DEFAULT_CONNECTIVITY, DEFAULT_EXPANSION_ADD, DEFAULT_EXPANSION_SEARCH, IndexOptions,
    Quantisation,
};
pub use part::{IndexPart, build_parts};
pub use recall::{count_recalled, recall_at_k};
pub use search::{Hit, Searcher, merge_hits};
