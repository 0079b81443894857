//! Converts Google BiT (Big Transfer, ResNetV2) checkpoints in their `.npz`
//! layout into ONNX graphs of the feature extractor.
//!
//! The graph takes `input` `[batch, 3, 128, 128]` float32 NCHW with values
//! in [-1, 1] and returns `features` `[batch, F]`: the spatial mean of the
//! final GroupNorm + ReLU (F = 2048 for width 1). Weight standardisation is
//! folded into the stored convolution weights, and the classifier head is
//! left out. The geometry (blocks, units, width) is read from the
//! checkpoint's keys and shapes, so R50/R101/R152 at any width convert.
//!
//! The ONNX protobuf is written with `prost` and a hand-written subset of
//! `onnx.proto`, so this crate stays light enough to be a build dependency.
//!
//! ```no_run
//! use folio_bit_convert::{Checkpoint, ConvertOptions, Geometry, to_onnx};
//!
//! // A real checkpoint:
//! let checkpoint = Checkpoint::read_npz("BiT-M-R50x1.npz".as_ref())?;
//! let onnx = to_onnx(&checkpoint, &ConvertOptions::default());
//! std::fs::write("BiT-M-R50x1.onnx", onnx)?;
//!
//! // Random weights in the R50x1 geometry, the same bytes for the same seed:
//! let geometry = Geometry::resnet_v2(&[3, 4, 6, 3], 1.0)?;
//! let random = Checkpoint::random(&geometry, 0);
//! assert_eq!(random.parameter_count(false), 23_500_352);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod checkpoint;
pub mod graph;
pub mod npy;
pub mod onnx;

use std::path::PathBuf;

pub use checkpoint::{Checkpoint, Geometry};
pub use graph::{ConvertOptions, GroupNormStyle, build_model, to_onnx};
pub use npy::Array;

/// Errors from reading, validating and converting checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("failed to read or write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid .npz archive (expected an uncompressed or deflated zip of .npy files): {0}")]
    Zip(#[from] zip::result::ZipError),

    #[error("invalid array {key:?}: {reason}")]
    InvalidArray { key: String, reason: String },

    #[error("checkpoint is missing key {key:?} (expected shape {expected})")]
    MissingKey { key: String, expected: String },

    #[error("checkpoint key {key:?} has shape {actual}, expected {expected}")]
    ShapeMismatch {
        key: String,
        expected: String,
        actual: String,
    },

    #[error(
        "checkpoint has unexpected key {key:?} with shape {actual}, which is not part of the inferred BiT-{geometry} geometry"
    )]
    UnexpectedKey {
        key: String,
        actual: String,
        geometry: String,
    },

    #[error("invalid geometry: {0}")]
    InvalidGeometry(String),
}

/// Returns the model name of a random-weight checkpoint, for example
/// `bit-r50x1-random-seed0`.
pub fn random_model_name(geometry: &Geometry, seed: u64) -> String {
    format!("bit-{}-random-seed{seed}", geometry.short_name())
}
