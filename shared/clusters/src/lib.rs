//! Cluster summaries of page embeddings, with pictures, for exploring a document collection.
//!
//! [`summarise`] reduces the page vectors with PCA, keeping a share of the variance (0.98 by
//! default). It clusters them with k-means (Lloyd's algorithm, k-means++ seeding, `n_init`
//! restarts), with k given or chosen by silhouette score. It returns a [`ClusterSummary`]
//! that serialises to JSON, with the schema in `schema/cluster-summary.schema.json`. Above
//! `sample_size_limit` pages, PCA and k-means are fitted on a seeded sample and every page
//! is then assigned to its nearest centroid. [`PageSampler`] does the same in two passes over
//! the pages without holding all their vectors, for collections larger than memory. The
//! summary also lists near-duplicate groups and, through [`ClusterSummary::attach_drift`],
//! the changes since a previous summary.
//!
//! [`contact_sheet`], [`map_png`] and [`report_html`] draw the pictures and the HTML page.
//! This crate does no I/O: the caller stores the bytes it returns.
//!
//! ```
//! use folio_clusters::{ClusterParams, KChoice, PageRef, SummaryIds, summarise, map_png};
//! use ndarray::Array2;
//!
//! // Two tight groups of pages in 3 dimensions.
//! let pages: Vec<PageRef> = (1..=6).map(|page| PageRef::new("memo.tif", page)).collect();
//! let vectors = Array2::from_shape_vec((6, 3), vec![
//!     1.0, 0.0, 0.0,   0.99, 0.1, 0.0,   0.99, 0.0, 0.1,
//!     0.0, 1.0, 0.0,   0.1, 0.99, 0.0,   0.0, 0.99, 0.1,
//! ]).unwrap();
//! let params = ClusterParams { k: KChoice::Given { k: 2 }, ..ClusterParams::default() };
//! let ids = SummaryIds { model_id: "bit-m-r50x1".into(), snapshot_id: "2026-12-04".into() };
//!
//! let run = summarise(&pages, vectors.view(), &params, &ids).unwrap();
//! assert_eq!(run.summary.clusters.len(), 2);
//! assert_eq!(run.summary.clusters[0].page_count, 3);
//!
//! let json = serde_json::to_string(&run.summary).unwrap();
//! let png = map_png(&run.summary, &run.map_points).unwrap();
//! assert!(json.contains("\"schema_version\":1"));
//! assert!(png.starts_with(b"\x89PNG"));
//! ```

#[doc(hidden)]
pub mod benchmark;
mod cluster;
mod draw;
mod drift;
mod duplicates;
mod error;
mod kmeans;
mod linalg;
mod map;
mod params;
mod pca;
mod report;
mod silhouette;
mod stream;
mod summary;

pub use cluster::{ClusterRun, MapPoint, SummaryIds, summarise};
pub use draw::{SheetLayout, contact_sheet, contact_sheet_size, contact_sheet_with};
pub use drift::{Drift, MIN_MEMBER_OVERLAP, MatchedCluster, UnmatchedCluster, compare};
pub use error::ClusterError;
pub use map::{DotStyle, MapLayout, cluster_colour, dot_style, map_plot_origin, map_png, map_png_with, map_size};
pub use params::{ClusterParams, KChoice};
pub use report::{ReportPictures, report_html};
pub use stream::{FittedSampler, PageSampler};
pub use summary::{
    ClusterInfo, ClusterSummary, DocumentDistance, KCandidate, NearDuplicates, NearestCluster, PageRef,
    SCHEMA_VERSION, SilhouetteReport, SummaryParameters,
};
