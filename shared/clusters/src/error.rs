//! Errors returned by clustering, drift comparison and drawing.

/// Failure of a clustering or drawing call. Each variant carries the offending value.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("page count {pages} does not match vector row count {rows}: pass one page per vector row")]
    PageCountMismatch { pages: usize, rows: usize },

    #[error("too few pages: {pages} given, clustering needs at least 2")]
    TooFewPages { pages: usize },

    #[error("vectors have 0 dimensions: pass at least one column")]
    ZeroDimensions,

    #[error("vector row {row} ({document} page {page}) contains a non-finite value: drop or re-embed that page")]
    NonFiniteVector { row: usize, document: String, page: u32 },

    #[error("{document} page {page} has a vector of {found} values, but earlier pages have {expected}: embed every page with one model")]
    DimensionMismatch { document: String, page: u32, expected: usize, found: usize },

    #[error("page number 0 for {document}: page numbers are 1-based")]
    InvalidPageNumber { document: String },

    #[error("invalid parameter {name} = {value}: {expected}")]
    InvalidParameter { name: &'static str, value: String, expected: &'static str },

    #[error("k = {k} is larger than the {points} points it is fitted on: lower k or raise sample_size_limit")]
    KTooLarge { k: usize, points: usize },

    #[error("PCA eigendecomposition of the {dims}x{dims} covariance matrix failed to converge")]
    PcaFailed { dims: usize },

    #[error("{points} map points given but the summary has {pages} pages: pass the points returned with this summary")]
    MapPointCountMismatch { points: usize, pages: usize },

    #[error("map point {index} refers to cluster {cluster}, which the summary does not contain")]
    UnknownCluster { index: usize, cluster: u32 },

    #[error("PNG encoding failed: {0}")]
    PngEncoding(#[from] image::ImageError),
}
