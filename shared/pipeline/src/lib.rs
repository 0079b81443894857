//! Folio's pipeline, shared by the Lambda functions and the `folio` command:
//! object -> pages -> embeddings -> shards -> index snapshot -> answers.
//!
//! Every step reads and writes through [`folio_store::Store`], so the same
//! functions run against an S3 bucket and against a local folder laid out
//! like one (see [`Layout`]).
//!
//! - [`ingest`]: decode and embed one object, store its shard, record deletions.
//! - [`live`]: the current shard of each document (latest sequencer wins).
//! - [`snapshot`]: build the usearch index snapshot and switch to it atomically.
//! - [`search`]: answer queries from the snapshot plus newer shards.
//!
//! # Example
//!
//! ```no_run
//! # async fn run(embedder: &dyn folio_pipeline::PageEmbedder) -> Result<(), Box<dyn std::error::Error>> {
//! use folio_pipeline::{DocumentVersion, Layout, ingest};
//!
//! let store = folio_store::Store::open("folio-store").await?;
//! let layout = Layout::default();
//! let document = DocumentVersion { document: "memo.tif".into(), version: "etag".into(), sequencer: "01".into() };
//! let bytes = std::fs::read("memo.tif")?;
//! let embedded = ingest::embed_object(embedder, &Default::default(), &document, bytes.into(), 4, &mut |_| {});
//! ingest::store_object(&store, &layout, &folio_pipeline::shard_meta(embedder), &document, &embedded).await?;
//! # Ok(()) }
//! ```

mod embedder;
pub mod clusters;
pub mod ingest;
pub mod layout;
pub mod live;
pub mod search;
pub mod snapshot;
pub mod status;

pub use embedder::{PREPROCESSING, PageEmbedder, is_untrained, shard_meta};
pub use layout::{DocumentVersion, Layout};
