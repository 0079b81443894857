use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::IndexError;

/// Scalar type that usearch stores each vector component as.
///
/// Queries and inputs stay f32; usearch converts them when it adds or
/// searches. Sizes at 100k x 2048 measured with usearch 2.26.6: f32 834 MB,
/// f16 424 MB, i8 220 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Quantisation {
    /// IEEE 754 half precision: half the size of f32 at a small cost in recall.
    #[default]
    F16,
    /// IEEE 754 single precision: no quantisation error.
    F32,
    /// Signed 8-bit integers. usearch scales each vector to unit norm, multiplies
    /// by 127 and truncates toward zero, so small components lose most precision.
    I8,
}

impl Quantisation {
    /// Returns the lowercase name that `FromStr` parses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::F32 => "f32",
            Self::I8 => "i8",
        }
    }

    /// Returns the stored size of one vector component in bytes.
    pub fn bytes_per_component(self) -> usize {
        match self {
            Self::F16 => 2,
            Self::F32 => 4,
            Self::I8 => 1,
        }
    }

    pub(crate) fn to_scalar_kind(self) -> usearch::ScalarKind {
        match self {
            Self::F16 => usearch::ScalarKind::F16,
            Self::F32 => usearch::ScalarKind::F32,
            Self::I8 => usearch::ScalarKind::I8,
        }
    }

    pub(crate) fn from_scalar_kind(kind: usearch::ScalarKind) -> Result<Self, IndexError> {
        match kind {
            usearch::ScalarKind::F16 => Ok(Self::F16),
            usearch::ScalarKind::F32 => Ok(Self::F32),
            usearch::ScalarKind::I8 => Ok(Self::I8),
            other => Err(IndexError::UnsupportedScalar {
                scalar: format!("{other:?}"),
            }),
        }
    }
}

impl fmt::Display for Quantisation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Quantisation {
    type Err = IndexError;

    /// Parses "f16", "f32" or "i8", ignoring ASCII case.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "f16" => Ok(Self::F16),
            "f32" => Ok(Self::F32),
            "i8" => Ok(Self::I8),
            _ => Err(IndexError::InvalidQuantisation {
                value: value.to_owned(),
            }),
        }
    }
}

impl TryFrom<String> for Quantisation {
    type Error = IndexError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Quantisation> for String {
    fn from(quantisation: Quantisation) -> Self {
        quantisation.as_str().to_owned()
    }
}

/// HNSW connectivity (M): graph edges per node on the upper levels, twice that
/// on the base level. 16 is the usearch 2.26.6 default.
pub const DEFAULT_CONNECTIVITY: usize = 16;

/// Candidate list size while inserting (efConstruction). 128 is the usearch
/// 2.26.6 default.
pub const DEFAULT_EXPANSION_ADD: usize = 128;

/// Candidate list size while searching (ef).
///
/// usearch's own default is 64. On synthetic 2048-dim clusters
/// (`examples/bench_index.rs`), tight clusters reached recall@10 0.998 at 64,
/// but diffuse ones reached 0.949 at 64 and 0.959 at 128, for about 1 ms per
/// query at 10k vectors. On the 212 corpus pages embedded by the untrained
/// stand-in model, f16 found every exact hit except tied ones from 64 on
/// (`folio-pipeline`'s `examples/recall.rs`).
// NOTE: not yet measured on vectors of a trained model.
pub const DEFAULT_EXPANSION_SEARCH: usize = 128;

/// Build and search settings for the page-vector index.
///
/// The metric is always cosine: page vectors are compared by angle, and a
/// [`crate::Hit`] score is cosine similarity. Parts are split by
/// `max_part_vectors` and `max_part_bytes`, whichever is reached first; with
/// neither set, the build produces a single part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexOptions {
    /// Scalar type of the stored vectors.
    pub quantisation: Quantisation,
    /// HNSW connectivity (M).
    pub connectivity: usize,
    /// Candidate list size while inserting (efConstruction).
    pub expansion_add: usize,
    /// Candidate list size while searching (ef). Not stored in the index
    /// file, so [`crate::Searcher::new`] applies it again after loading.
    pub expansion_search: usize,
    /// Maximum number of vectors in one part.
    pub max_part_vectors: Option<usize>,
    /// Maximum serialised size of one part in bytes, which is also about the
    /// memory the part needs once loaded or viewed.
    pub max_part_bytes: Option<u64>,
}

impl Default for IndexOptions {
    fn default() -> Self {
        Self {
            quantisation: Quantisation::default(),
            connectivity: DEFAULT_CONNECTIVITY,
            expansion_add: DEFAULT_EXPANSION_ADD,
            expansion_search: DEFAULT_EXPANSION_SEARCH,
            max_part_vectors: None,
            max_part_bytes: None,
        }
    }
}

impl IndexOptions {
    /// Checks that every count is positive and connectivity is at least 2.
    pub fn validate(&self) -> Result<(), IndexError> {
        if self.connectivity < 2 {
            return Err(IndexError::InvalidOption {
                field: "connectivity",
                value: self.connectivity.to_string(),
                reason: "HNSW needs at least 2 edges per node; 16 is typical",
            });
        }
        if self.expansion_add == 0 {
            return Err(IndexError::InvalidOption {
                field: "expansion_add",
                value: "0".to_owned(),
                reason: "must be positive; 128 is typical",
            });
        }
        if self.expansion_search == 0 {
            return Err(IndexError::InvalidOption {
                field: "expansion_search",
                value: "0".to_owned(),
                reason: "must be positive; 128 is typical",
            });
        }
        if self.max_part_vectors == Some(0) {
            return Err(IndexError::InvalidOption {
                field: "max_part_vectors",
                value: "0".to_owned(),
                reason: "must be positive, or absent for no limit",
            });
        }
        if self.max_part_bytes == Some(0) {
            return Err(IndexError::InvalidOption {
                field: "max_part_bytes",
                value: "0".to_owned(),
                reason: "must be positive, or absent for no limit",
            });
        }
        Ok(())
    }

    pub(crate) fn to_usearch(&self, dims: usize) -> usearch::IndexOptions {
        usearch::IndexOptions {
            dimensions: dims,
            metric: usearch::MetricKind::Cos,
            quantization: self.quantisation.to_scalar_kind(),
            connectivity: self.connectivity,
            expansion_add: self.expansion_add,
            expansion_search: self.expansion_search,
            multi: false,
        }
    }
}
