//! Checks the linked model: its identity matches its bytes, an untrained
//! model is marked as such, and tract runs it end to end.

use folio_model::{FEATURE_DIMENSIONS, MODEL_SHA256, MODEL_TRAINED, ONNX_BYTES};
use sha2::{Digest, Sha256};

#[test]
fn identity_hash_matches_linked_bytes() {
    assert_eq!(hex::encode(Sha256::digest(ONNX_BYTES)), MODEL_SHA256);
    assert_eq!(folio_model::identity().sha256, MODEL_SHA256);
}

#[test]
fn identity_marks_untrained_model() {
    let text = folio_model::identity().to_string();
    println!("linked model: {text}");
    if MODEL_TRAINED {
        assert!(!text.contains("untrained"), "{text}");
    } else {
        assert!(text.ends_with("(untrained)"), "{text}");
        assert!(text.contains("random"), "{text}");
    }
}

#[test]
fn linked_embedder_embeds_one_page() {
    let embedder = folio_model::embedder().unwrap();
    assert_eq!(embedder.dimensions(), FEATURE_DIMENSIONS);

    // A synthetic page: white background, dark text-like bars.
    let page = image::GrayImage::from_fn(850, 1100, |x, y| {
        let in_line = (y / 20) % 2 == 1 && x > 80 && x < 770 && (x / 37) % 5 != 0;
        image::Luma([if in_line { 20 } else { 245 }])
    });
    let page = image::DynamicImage::ImageLuma8(page);

    let vectors = embedder.embed(&[&page]).unwrap();
    assert_eq!(vectors.len(), 1);
    assert_eq!(vectors[0].len(), FEATURE_DIMENSIONS);
    assert!(vectors[0].iter().all(|v| v.is_finite()), "non-finite value");
    let norm: f64 = vectors[0]
        .iter()
        .map(|v| (*v as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
}
