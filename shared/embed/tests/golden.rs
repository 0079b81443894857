//! Checks preprocessing and the embedder against the BiT reference outputs,
//! using the tiny fixture checkpoint converted on the fly.
//!
//! The fixtures live in the data folder beside the workspace (`../shared`
//! from the workspace root); every test skips with a message when it is
//! absent.

use std::path::{Path, PathBuf};

use folio_bit_convert::npy::{self, Array};
use folio_bit_convert::{Checkpoint, ConvertOptions, to_onnx};
use folio_embed::{EmbedError, Embedder, ModelIdentity, PREPROCESSED_LEN, preprocess};

/// The reference tolerance is 2/255 after scaling to [-1, 1], which is one
/// 8-bit step of the resized image: Pillow's fixed-point resize and
/// fast_image_resize may round a pixel to neighbouring values. The 1e-6
/// absorbs the float32 rounding of the scaled values, so a difference of
/// exactly one step passes.
const MAX_PREPROCESSING_ERROR: f32 = 2.0 / 255.0 + 1e-6;
const MAX_ABS_FEATURE_ERROR: f32 = 1e-4;
const MIN_EMBEDDING_COSINE: f64 = 0.99999;
const TINY_FEATURES: usize = 1024;

fn fixtures() -> Option<PathBuf> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/bit");
    if folder.join("bit-tiny.npz").is_file() {
        Some(folder)
    } else {
        eprintln!(
            "SKIPPED: BiT fixtures not found at {}; place the shared data folder beside the workspace to run this test",
            folder.display()
        );
        None
    }
}

fn read_npy(path: PathBuf) -> Array {
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    npy::parse_npy(&path.display().to_string(), &bytes).unwrap()
}

fn tiny_onnx(folder: &Path) -> Vec<u8> {
    let checkpoint = Checkpoint::read_npz(&folder.join("bit-tiny.npz")).unwrap();
    to_onnx(&checkpoint, &ConvertOptions::default())
}

fn tiny_embedder(folder: &Path, batch_size: usize) -> Embedder {
    let onnx = tiny_onnx(folder);
    let identity = ModelIdentity::for_onnx("bit-tiny", false, TINY_FEATURES, &onnx);
    Embedder::from_onnx_with_batch_size(&onnx, identity, batch_size).unwrap()
}

fn pages(folder: &Path) -> Vec<image::DynamicImage> {
    (1..=4)
        .map(|page| image::open(folder.join(format!("golden/pages/page{page}.png"))).unwrap())
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm_a: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let norm_b: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm_a * norm_b)
}

fn max_abs_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn preprocess_pages_match_pillow_reference() {
    let Some(folder) = fixtures() else { return };
    let golden = read_npy(folder.join("golden/preprocessed.npy"));
    assert_eq!(golden.shape, vec![4, 3, 128, 128]);

    for (index, page) in pages(&folder).iter().enumerate() {
        assert_eq!(
            page.color(),
            image::ColorType::L8,
            "page{} is expected to be 8-bit gray",
            index + 1
        );
        let ours = preprocess(page).unwrap();
        let reference = &golden.data[index * PREPROCESSED_LEN..(index + 1) * PREPROCESSED_LEN];
        let difference = max_abs_difference(&ours, reference);
        println!(
            "page{}: max abs difference {difference:.6} ({:.2} / 255)",
            index + 1,
            difference * 255.0
        );
        assert!(
            difference <= MAX_PREPROCESSING_ERROR,
            "page{}: max abs difference {difference} > 2/255",
            index + 1
        );
    }
}

#[test]
fn preprocess_rgb_page_matches_pillow_reference() {
    // The same page as RGB goes through the 3-channel resize path.
    let Some(folder) = fixtures() else { return };
    let golden = read_npy(folder.join("golden/preprocessed.npy"));
    let page = image::DynamicImage::ImageRgb8(pages(&folder)[3].to_rgb8());
    let ours = preprocess(&page).unwrap();
    let difference = max_abs_difference(
        &ours,
        &golden.data[3 * PREPROCESSED_LEN..4 * PREPROCESSED_LEN],
    );
    println!("page4 as RGB: max abs difference {difference:.6}");
    assert!(
        difference <= MAX_PREPROCESSING_ERROR,
        "max abs difference {difference}"
    );
}

#[test]
fn embedder_features_match_golden() {
    let Some(folder) = fixtures() else { return };
    let inputs = read_npy(folder.join("golden/inputs.npy"));
    let golden = read_npy(folder.join("golden/features.npy"));
    let embeddings = read_npy(folder.join("golden/embeddings.npy"));

    for batch_size in [1, 4, 6] {
        let embedder = tiny_embedder(&folder, batch_size);
        let features = embedder.features_preprocessed(&inputs.data).unwrap();
        assert_eq!(features.len(), 6);

        for (row, vector) in features.iter().enumerate() {
            let reference = &golden.data[row * TINY_FEATURES..(row + 1) * TINY_FEATURES];
            let difference = max_abs_difference(vector, reference);
            assert!(
                difference <= MAX_ABS_FEATURE_ERROR,
                "batch size {batch_size}, row {row}: max abs difference {difference}"
            );

            let mut normalized = vector.clone();
            folio_embed::l2_normalize(&mut normalized);
            let reference = &embeddings.data[row * TINY_FEATURES..(row + 1) * TINY_FEATURES];
            let similarity = cosine(&normalized, reference);
            assert!(
                similarity >= MIN_EMBEDDING_COSINE,
                "batch size {batch_size}, row {row}: cosine {similarity}"
            );
        }
    }
}

#[test]
fn embedder_embeds_pages_like_reference() {
    // Rows 2-5 of the golden inputs are the reference preprocessing of the
    // four pages, so embedding the PNGs end to end must land on the same
    // vectors up to the preprocessing tolerance.
    let Some(folder) = fixtures() else { return };
    let embeddings = read_npy(folder.join("golden/embeddings.npy"));
    let embedder = tiny_embedder(&folder, 2);
    let pages = pages(&folder);
    let page_refs: Vec<&image::DynamicImage> = pages.iter().collect();

    let vectors = embedder.embed(&page_refs).unwrap();
    assert_eq!(vectors.len(), 4);
    for (index, vector) in vectors.iter().enumerate() {
        let norm: f64 = vector
            .iter()
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "page{}: norm {norm}", index + 1);
        let row = index + 2;
        let similarity = cosine(
            vector,
            &embeddings.data[row * TINY_FEATURES..(row + 1) * TINY_FEATURES],
        );
        println!(
            "page{}: cosine with the reference embedding {similarity:.7}",
            index + 1
        );
        assert!(
            similarity >= 0.999,
            "page{}: cosine {similarity}",
            index + 1
        );
    }
}

#[test]
fn embedder_rejects_wrong_dimensions() {
    let Some(folder) = fixtures() else { return };
    let onnx = tiny_onnx(&folder);
    let identity = ModelIdentity::for_onnx("bit-tiny", false, 2048, &onnx);
    match Embedder::from_onnx(&onnx, identity) {
        Err(EmbedError::DimensionMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, 2048);
            assert_eq!(actual, TINY_FEATURES);
        }
        other => panic!("expected a dimension mismatch, got {other:?}"),
    }
}

#[test]
fn embedder_rejects_zero_batch_size() {
    let Some(folder) = fixtures() else { return };
    let onnx = tiny_onnx(&folder);
    let identity = ModelIdentity::for_onnx("bit-tiny", false, TINY_FEATURES, &onnx);
    let error = Embedder::from_onnx_with_batch_size(&onnx, identity, 0).unwrap_err();
    assert!(matches!(error, EmbedError::InvalidBatchSize(0)), "{error}");
}

#[test]
fn embedder_rejects_invalid_onnx() {
    let identity = ModelIdentity::for_onnx("garbage", false, 4, b"not onnx");
    let error = Embedder::from_onnx(b"not onnx", identity).unwrap_err();
    assert!(matches!(error, EmbedError::Load { .. }), "{error}");
}

#[test]
fn embedder_rejects_partial_input() {
    let Some(folder) = fixtures() else { return };
    let embedder = tiny_embedder(&folder, 1);
    let error = embedder
        .features_preprocessed(&vec![0.0; PREPROCESSED_LEN + 5])
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&(PREPROCESSED_LEN + 5).to_string()),
        "{error}"
    );
}

#[test]
fn embedder_shared_across_threads() {
    let Some(folder) = fixtures() else { return };
    let embedder = tiny_embedder(&folder, 1);
    let inputs = read_npy(folder.join("golden/inputs.npy"));
    let single = embedder
        .features_preprocessed(&inputs.data[..PREPROCESSED_LEN])
        .unwrap();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    embedder
                        .features_preprocessed(&inputs.data[..PREPROCESSED_LEN])
                        .unwrap()
                })
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), single);
        }
    });
}
