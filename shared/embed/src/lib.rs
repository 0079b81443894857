//! Page embeddings with a BiT (Big Transfer) ResNetV2 ONNX model run by
//! tract.
//!
//! An [`Embedder`] parses the ONNX graph once, fixes the input to
//! `[batch size, 3, 128, 128]`, optimises it and keeps the runnable plan,
//! so every call reuses it. It is `Send + Sync` and can
//! be shared across threads. [`preprocess`] reproduces the BiT reference
//! preprocessing (Pillow's antialiased bilinear resize to 128x128, then
//! scaling to [-1, 1]). [`Embedder::embed`] returns L2-normalised vectors,
//! [`Embedder::features`] the raw pooled features.
//!
//! ```no_run
//! use folio_embed::{Embedder, ModelIdentity};
//!
//! let onnx = std::fs::read("models/BiT-M-R50x1.onnx")?;
//! let identity = ModelIdentity::for_onnx("BiT-M-R50x1", true, 2048, &onnx);
//! let embedder = Embedder::from_onnx(&onnx, identity)?;
//!
//! let page = image::open("page.png")?;
//! let vectors = embedder.embed(&[&page])?;
//! assert_eq!(vectors[0].len(), embedder.dimensions());
//! println!("embedded with {}", embedder.identity());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod preprocess;

use std::fmt;
use std::sync::Arc;

use image::DynamicImage;
use sha2::{Digest, Sha256};
use tract_onnx::prelude::*;

pub use preprocess::{CHANNELS, IMAGE_SIZE, PREPROCESSED_LEN, preprocess};

/// Images per model run for [`Embedder::from_onnx`].
///
/// NOTE: tract 0.23.9 was measured slower per image at batch 8 than at
/// batch 1 on BiT-R50x1 (`bench/model/run.sh`). Re-measure before raising
/// the default.
pub const DEFAULT_BATCH_SIZE: usize = 1;

/// Errors from loading a model or embedding images.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("failed to load ONNX model {model}: {reason}")]
    Load { model: String, reason: String },

    #[error(
        "model {model} returns {actual} features per image but its identity declares {expected}; rebuild the identity from the ONNX file"
    )]
    DimensionMismatch {
        model: String,
        expected: usize,
        actual: usize,
    },

    #[error("model {model} failed to run on a batch of {batch}: {reason}")]
    Run {
        model: String,
        batch: usize,
        reason: String,
    },

    #[error(
        "preprocessed input has {len} values, which is not a multiple of {PREPROCESSED_LEN} (3 x {IMAGE_SIZE} x {IMAGE_SIZE} per image)"
    )]
    InvalidInputLength { len: usize },

    #[error("cannot preprocess an empty image of {width}x{height} pixels")]
    EmptyImage { width: u32, height: u32 },

    #[error("failed to resize a {width}x{height} image to {IMAGE_SIZE}x{IMAGE_SIZE}: {reason}")]
    Resize {
        width: u32,
        height: u32,
        reason: String,
    },

    #[error("batch size must be at least 1, got {0}")]
    InvalidBatchSize(usize),

    #[error("matrix-product thread count must be at least 1, got {0}")]
    InvalidThreadCount(usize),
}

/// Identity of the model that produced a vector. Every output that stores
/// vectors records its [`Display`](fmt::Display) form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelIdentity {
    /// Model name, for example `BiT-M-R50x1` or `bit-r50x1-random-seed0`.
    pub name: String,
    /// Lowercase hex SHA-256 of the ONNX bytes.
    pub sha256: String,
    /// False for random-weight stand-ins, whose vectors carry no meaning.
    pub trained: bool,
    /// Length of a feature vector.
    pub dimensions: usize,
    /// Input height and width in pixels.
    pub input_size: u32,
}

impl ModelIdentity {
    /// Builds the identity of an ONNX model held in memory, hashing its bytes.
    pub fn for_onnx(name: &str, trained: bool, dimensions: usize, onnx: &[u8]) -> ModelIdentity {
        ModelIdentity {
            name: name.to_string(),
            sha256: hex::encode(Sha256::digest(onnx)),
            trained,
            dimensions,
            input_size: IMAGE_SIZE,
        }
    }
}

impl fmt::Display for ModelIdentity {
    /// Formats as `name sha256:<first 16 hex digits>`, followed by
    /// ` (untrained)` for random weights.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short_hash = &self.sha256[..self.sha256.len().min(16)];
        write!(f, "{} sha256:{short_hash}", self.name)?;
        if !self.trained {
            write!(f, " (untrained)")?;
        }
        Ok(())
    }
}

/// A loaded BiT feature extractor with its optimised tract plan.
#[derive(Clone)]
pub struct Embedder {
    plan: Arc<TypedRunnableModel>,
    identity: ModelIdentity,
    batch_size: usize,
}

impl fmt::Debug for Embedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Embedder")
            .field("identity", &self.identity)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Parses and optimises an ONNX feature extractor with input
    /// `[batch, 3, 128, 128]` and output `[batch, F]`, for runs of
    /// [`DEFAULT_BATCH_SIZE`] images.
    ///
    /// Fails when F differs from `identity.dimensions`.
    pub fn from_onnx(onnx: &[u8], identity: ModelIdentity) -> Result<Embedder, EmbedError> {
        Embedder::from_onnx_with_batch_size(onnx, identity, DEFAULT_BATCH_SIZE)
    }

    /// Parses and optimises an ONNX feature extractor for runs of
    /// `batch_size` images.
    ///
    /// The batch, height and width are all fixed at load time. tract does
    /// not finish optimising BiT with a symbolic height and width. With a
    /// symbolic batch it leaves ReLU, residual additions, im2col and
    /// transposes as separate operators, which made BiT-R50x1 about 1.45
    /// times slower in a release build (tract 0.23.9, `profile_ops
    /// --symbolic-batch`). A final run with fewer images is padded with
    /// zero images, whose outputs are dropped. Fails when F differs from
    /// `identity.dimensions`.
    pub fn from_onnx_with_batch_size(
        onnx: &[u8],
        identity: ModelIdentity,
        batch_size: usize,
    ) -> Result<Embedder, EmbedError> {
        if batch_size == 0 {
            return Err(EmbedError::InvalidBatchSize(batch_size));
        }
        let load_error = |error: TractError| EmbedError::Load {
            model: identity.to_string(),
            reason: format!("{error:#}"),
        };

        let mut model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(onnx))
            .map_err(load_error)?;
        let size = identity.input_size as usize;
        let input_fact = f32::fact([batch_size, CHANNELS, size, size]);
        model
            .set_input_fact(0, input_fact.into())
            .map_err(load_error)?;
        // The file may declare a symbolic batch on its output, which would
        // not unify with the concrete input batch, so tract infers the output.
        model
            .set_output_fact(0, InferenceFact::default())
            .map_err(load_error)?;
        let model = model.into_optimized().map_err(load_error)?;

        let output_fact = model.output_fact(0).map_err(load_error)?;
        let actual = output_fact
            .shape
            .as_concrete()
            .and_then(|dims| dims.last().copied())
            .unwrap_or(0);
        if actual != identity.dimensions {
            return Err(EmbedError::DimensionMismatch {
                model: identity.to_string(),
                expected: identity.dimensions,
                actual,
            });
        }

        let plan = model.into_runnable().map_err(load_error)?;
        Ok(Embedder {
            plan,
            identity,
            batch_size,
        })
    }

    /// Returns the identity of the loaded model.
    pub fn identity(&self) -> &ModelIdentity {
        &self.identity
    }

    /// Returns the feature vector length.
    pub fn dimensions(&self) -> usize {
        self.identity.dimensions
    }

    /// Returns the number of images per model run.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Preprocesses and embeds images, returning one L2-normalised vector
    /// per image. A zero feature vector stays zero.
    pub fn embed(&self, images: &[&DynamicImage]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = self.features(images)?;
        for vector in &mut vectors {
            l2_normalize(vector);
        }
        Ok(vectors)
    }

    /// Preprocesses images and returns their raw pooled features.
    pub fn features(&self, images: &[&DynamicImage]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut features = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.batch_size) {
            let mut batch = Vec::with_capacity(chunk.len() * PREPROCESSED_LEN);
            for image in chunk {
                batch.extend_from_slice(&preprocess(image)?);
            }
            features.extend(self.run_batch(&batch, chunk.len())?);
        }
        Ok(features)
    }

    /// Returns the raw pooled features of already-preprocessed images,
    /// given as one NCHW float32 buffer of `n x 3 x 128 x 128` values.
    pub fn features_preprocessed(&self, nchw: &[f32]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if !nchw.len().is_multiple_of(PREPROCESSED_LEN) {
            return Err(EmbedError::InvalidInputLength { len: nchw.len() });
        }
        let mut features = Vec::with_capacity(nchw.len() / PREPROCESSED_LEN);
        for chunk in nchw.chunks(self.batch_size * PREPROCESSED_LEN) {
            features.extend(self.run_batch(chunk, chunk.len() / PREPROCESSED_LEN)?);
        }
        Ok(features)
    }

    fn run_batch(&self, nchw: &[f32], batch: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let run_error = |error: TractError| EmbedError::Run {
            model: self.identity.to_string(),
            batch,
            reason: format!("{error:#}"),
        };
        let size = self.identity.input_size as usize;
        // The plan only accepts full batches, so a short one gets zero images.
        let mut padded;
        let mut nchw = nchw;
        if batch < self.batch_size {
            padded = nchw.to_vec();
            padded.resize(self.batch_size * PREPROCESSED_LEN, 0.0);
            nchw = &padded;
        }
        let input = Tensor::from_shape(&[self.batch_size, CHANNELS, size, size], nchw)
            .map_err(run_error)?;
        let outputs = self
            .plan
            .run(tvec!(input.into_tvalue()))
            .map_err(run_error)?;
        let output = outputs[0].to_plain_array_view::<f32>().map_err(run_error)?;
        let flat = output.as_slice().ok_or_else(|| EmbedError::Run {
            model: self.identity.to_string(),
            batch,
            reason: format!("output of shape {:?} is not contiguous", output.shape()),
        })?;
        if flat.len() != self.batch_size * self.dimensions() {
            return Err(EmbedError::Run {
                model: self.identity.to_string(),
                batch,
                reason: format!(
                    "output has shape {:?}, expected [{}, {}]",
                    output.shape(),
                    self.batch_size,
                    self.dimensions()
                ),
            });
        }
        Ok(flat
            .chunks(self.dimensions())
            .take(batch)
            .map(<[f32]>::to_vec)
            .collect())
    }
}

/// Sets how many threads tract's matrix products use in this process, for
/// every [`Embedder`] and every calling thread that has no scoped executor.
///
/// One thread is tract's default. With `threads > 1` each matrix product
/// is split across a rayon pool of that size; the other operators still run
/// on the calling thread.
#[cfg(feature = "multithread-mm")]
pub fn set_matmul_threads(threads: usize) -> Result<(), EmbedError> {
    use tract_onnx::tract_core::tract_linalg::multithread::{Executor, set_default_executor};

    let executor = match threads {
        0 => return Err(EmbedError::InvalidThreadCount(threads)),
        1 => Executor::SingleThread,
        _ => Executor::multithread(threads),
    };
    set_default_executor(executor);
    Ok(())
}

/// Scales a vector to unit L2 norm in place; a zero vector is left as is.
pub fn l2_normalize(vector: &mut [f32]) {
    let norm = vector
        .iter()
        .map(|v| (*v as f64) * (*v as f64))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        for value in vector.iter_mut() {
            *value = (*value as f64 / norm) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn embedder_is_send_and_sync() {
        assert_send_sync::<Embedder>();
    }

    #[test]
    fn identity_display_marks_untrained() {
        let identity = ModelIdentity::for_onnx("bit-r50x1-random-seed0", false, 2048, b"bytes");
        let text = identity.to_string();
        assert!(text.starts_with("bit-r50x1-random-seed0 sha256:"), "{text}");
        assert!(text.ends_with(" (untrained)"), "{text}");
        let trained = ModelIdentity {
            trained: true,
            ..identity
        };
        assert!(!trained.to_string().contains("untrained"));
    }

    #[test]
    fn l2_normalize_gives_unit_norm() {
        let mut vector = vec![3.0, 4.0];
        l2_normalize(&mut vector);
        assert_eq!(vector, vec![0.6, 0.8]);
        let mut zero = vec![0.0; 3];
        l2_normalize(&mut zero);
        assert_eq!(zero, vec![0.0; 3]);
    }
}
