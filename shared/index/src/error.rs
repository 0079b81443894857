use std::path::PathBuf;

/// Errors from building, loading and searching index parts.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("invalid quantisation {value:?}: expected one of \"f16\", \"f32\" or \"i8\"")]
    InvalidQuantisation { value: String },

    #[error("invalid index option {field} = {value}: {reason}")]
    InvalidOption {
        field: &'static str,
        value: String,
        reason: &'static str,
    },

    #[error("vector for key {key} has {actual} dimensions, expected {expected}")]
    DimensionMismatch {
        key: u64,
        expected: usize,
        actual: usize,
    },

    #[error(
        "vector for key {key} has non-finite value {value} at dimension {dimension}; \
         re-embed the page or leave it out of the index"
    )]
    NonFiniteValue { key: u64, dimension: usize, value: f32 },

    #[error(
        "vector for key {key} has zero norm, so its cosine similarity is undefined; \
         re-embed the page or leave it out of the index"
    )]
    ZeroVector { key: u64 },

    #[error("duplicate key {key}: every vector in one build needs its own key")]
    DuplicateKey { key: u64 },

    #[error("key {key} is reserved by usearch as its free-slot marker; use a smaller key")]
    ReservedKey { key: u64 },

    #[error("query has {actual} dimensions, expected {expected}")]
    QueryDimensionMismatch { expected: usize, actual: usize },

    #[error("query has non-finite value {value} at dimension {dimension}")]
    QueryNonFinite { dimension: usize, value: f32 },

    #[error("query has zero norm, so its cosine similarity is undefined")]
    QueryZeroVector,

    #[error(
        "index part {part} has {actual} dimensions, expected {expected}; \
         all parts of one searcher must come from the same build"
    )]
    PartDimensionMismatch {
        part: usize,
        expected: usize,
        actual: usize,
    },

    #[error(
        "max_part_bytes {limit} is too small: one part holding a single vector \
         serialises to {required} bytes; raise max_part_bytes"
    )]
    PartLimitTooSmall { limit: u64, required: u64 },

    #[error(
        "index data uses metric {metric}, expected cosine; \
         rebuild the index with this crate"
    )]
    UnsupportedMetric { metric: String },

    #[error(
        "index data uses quantisation {scalar}, expected f16, f32 or i8; \
         rebuild the index with this crate"
    )]
    UnsupportedScalar { scalar: String },

    #[error("index data allows several vectors per key; rebuild the index with this crate")]
    UnsupportedMultiKey,

    #[error("index path {path:?} is not valid UTF-8, which usearch requires")]
    NonUtf8Path { path: PathBuf },

    #[error("usearch failed to {operation}: {message}")]
    Usearch {
        operation: &'static str,
        message: String,
    },

    #[error("usearch failed to add the vector for key {key}: {message}")]
    UsearchAdd { key: u64, message: String },

    #[error("usearch failed to {operation} index file {path:?}: {message}")]
    UsearchFile {
        operation: &'static str,
        path: PathBuf,
        message: String,
    },
}

impl IndexError {
    pub(crate) fn usearch(operation: &'static str, exception: impl std::fmt::Display) -> Self {
        Self::Usearch {
            operation,
            message: exception.to_string(),
        }
    }
}
