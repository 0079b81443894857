//! The BiT feature extractor linked into the binary, with its identity.
//!
//! The build script links `models/BiT-M-R50x1.onnx` (written by
//! `infra/fetch-model.sh`) or the file named by `FOLIO_MODEL_ONNX`. When
//! neither exists it generates a random-weight BiT-R50x1 from seed 0, so
//! offline builds have the real geometry and speed but meaningless
//! vectors; [`identity`] then ends in `(untrained)`. Depending on this
//! crate adds about 94 MB to a binary, so only binaries that embed pages
//! should.
//!
//! ```no_run
//! let embedder = folio_model::embedder()?;
//! let page = image::open("page.png").expect("a readable page");
//! let vector = &embedder.embed(&[&page])?[0];
//! assert_eq!(vector.len(), folio_model::FEATURE_DIMENSIONS);
//! println!("{} vector from {}", vector.len(), folio_model::identity());
//! # Ok::<(), folio_model::EmbedError>(())
//! ```

pub use folio_embed::{EmbedError, Embedder, ModelIdentity};

include!(concat!(env!("OUT_DIR"), "/linked_model.rs"));

/// Returns the identity of the linked model.
pub fn identity() -> ModelIdentity {
    ModelIdentity {
        name: MODEL_NAME.to_string(),
        sha256: MODEL_SHA256.to_string(),
        trained: MODEL_TRAINED,
        dimensions: FEATURE_DIMENSIONS,
        input_size: INPUT_SIZE,
    }
}

/// Returns the linked ONNX bytes.
pub fn onnx_bytes() -> &'static [u8] {
    ONNX_BYTES
}

/// Parses and optimises the linked model. This takes about a second, so
/// build one embedder per process and share it.
pub fn embedder() -> Result<Embedder, EmbedError> {
    Embedder::from_onnx(ONNX_BYTES, identity())
}
