//! Converts the tiny BiT fixture checkpoint and checks the ONNX graph in
//! tract against the PyTorch reference outputs and the PyTorch ONNX export.
//!
//! The fixtures live in the data folder beside the workspace (`../shared`
//! from the workspace root); every test skips with a message when it is
//! absent.

use std::collections::BTreeMap;
use std::path::PathBuf;

use folio_bit_convert::npy::{self, Array};
use folio_bit_convert::{
    Checkpoint, ConvertError, ConvertOptions, Geometry, GroupNormStyle, to_onnx,
};
use tract_onnx::prelude::*;

const MAX_ABS_FEATURE_ERROR: f32 = 1e-4;
const MIN_EMBEDDING_COSINE: f64 = 0.99999;

/// Returns the BiT fixture folder, or `None` (after printing why) when the
/// shared data folder is absent.
fn fixtures() -> Option<PathBuf> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let folder = workspace.join("../shared/fixtures/bit");
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

/// Runs an ONNX graph in tract on an NCHW batch and returns `[batch, F]`.
fn run_tract(onnx: &[u8], inputs: &Array) -> Array {
    let [batch, channels, height, width] = inputs.shape[..] else {
        panic!("inputs must be NCHW, got {:?}", inputs.shape);
    };
    let model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(onnx))
        .unwrap()
        .with_input_fact(0, f32::fact([batch, channels, height, width]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&inputs.shape, &inputs.data).unwrap();
    let outputs = model.run(tvec!(input.into_tvalue())).unwrap();
    let features = outputs[0].to_plain_array_view::<f32>().unwrap();
    Array::new(
        features.shape().to_vec(),
        features.iter().copied().collect(),
    )
    .unwrap()
}

fn max_abs_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm_a: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let norm_b: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm_a * norm_b)
}

fn tiny_checkpoint(folder: &std::path::Path) -> Checkpoint {
    Checkpoint::read_npz(&folder.join("bit-tiny.npz")).unwrap()
}

fn check_against_golden(folder: &std::path::Path, style: GroupNormStyle) {
    let checkpoint = tiny_checkpoint(folder);
    let options = ConvertOptions {
        group_norm: style,
        ..Default::default()
    };
    let onnx = to_onnx(&checkpoint, &options);
    let inputs = read_npy(folder.join("golden/inputs.npy"));
    let golden = read_npy(folder.join("golden/features.npy"));
    let embeddings = read_npy(folder.join("golden/embeddings.npy"));

    let features = run_tract(&onnx, &inputs);
    assert_eq!(features.shape, golden.shape);

    let difference = max_abs_difference(&features.data, &golden.data);
    println!("{style:?}: max abs feature difference {difference:e}");
    assert!(
        difference <= MAX_ABS_FEATURE_ERROR,
        "max abs difference {difference} > {MAX_ABS_FEATURE_ERROR}"
    );

    let width = golden.shape[1];
    for (row, (ours, theirs)) in features
        .data
        .chunks(width)
        .zip(embeddings.data.chunks(width))
        .enumerate()
    {
        let similarity = cosine(ours, theirs);
        assert!(
            similarity >= MIN_EMBEDDING_COSINE,
            "row {row}: cosine {similarity} < {MIN_EMBEDDING_COSINE}"
        );
    }
}

#[test]
fn tiny_checkpoint_geometry() {
    let Some(folder) = fixtures() else { return };
    let checkpoint = tiny_checkpoint(&folder);
    let geometry = checkpoint.geometry();
    assert_eq!(geometry.units, vec![1, 1, 1, 1]);
    assert_eq!(geometry.root_channels, 32);
    assert_eq!(geometry.num_classes, Some(10));
    assert_eq!(geometry.feature_dimensions(), 1024);
    assert_eq!(checkpoint.arrays().len(), 45);
    assert_eq!(checkpoint.parameter_count(true), 2_017_578);
    assert_eq!(checkpoint.parameter_count(false), 2_007_328);
}

#[test]
fn tiny_instance_norm_graph_matches_golden() {
    let Some(folder) = fixtures() else { return };
    check_against_golden(&folder, GroupNormStyle::InstanceNorm);
}

#[test]
fn tiny_primitive_graph_matches_golden() {
    let Some(folder) = fixtures() else { return };
    check_against_golden(&folder, GroupNormStyle::Primitive);
}

#[test]
fn tiny_graph_matches_pytorch_export() {
    let Some(folder) = fixtures() else { return };
    let ours = to_onnx(&tiny_checkpoint(&folder), &ConvertOptions::default());
    let reference = std::fs::read(folder.join("bit-tiny-pytorch-export.onnx")).unwrap();
    let inputs = read_npy(folder.join("golden/inputs.npy"));

    let ours = run_tract(&ours, &inputs);
    let reference = run_tract(&reference, &inputs);
    assert_eq!(ours.shape, reference.shape);
    let difference = max_abs_difference(&ours.data, &reference.data);
    println!("max abs difference against the PyTorch export: {difference:e}");
    assert!(
        difference <= MAX_ABS_FEATURE_ERROR,
        "max abs difference {difference}"
    );
}

/// Loads the tiny checkpoint's arrays, lets `edit` change them and returns
/// the validation error of the edited checkpoint after an `.npz` round trip.
/// `case` names the temporary file, because tests run in parallel.
fn error_after_edit(
    folder: &std::path::Path,
    case: &str,
    edit: impl FnOnce(&mut BTreeMap<String, Array>),
) -> String {
    let mut arrays = npy::read_npz(&folder.join("bit-tiny.npz")).unwrap();
    edit(&mut arrays);
    let path = std::env::temp_dir().join(format!(
        "folio-bit-convert-{case}-{}.npz",
        std::process::id()
    ));
    npy::write_npz_file(&path, &arrays).unwrap();
    let result = Checkpoint::read_npz(&path);
    std::fs::remove_file(&path).unwrap();
    match result {
        Ok(_) => panic!("the edited checkpoint was accepted"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn checkpoint_missing_key_is_rejected() {
    let Some(folder) = fixtures() else { return };
    let key = "resnet/block3/unit01/b/standardized_conv2d/kernel";
    let message = error_after_edit(&folder, "missing", |arrays| {
        arrays.remove(key);
    });
    println!("{message}");
    assert!(message.contains("missing"), "{message}");
    assert!(message.contains(key), "{message}");
    assert!(message.contains("[3, 3, 128, 128]"), "{message}");
}

#[test]
fn checkpoint_extra_key_is_rejected() {
    let Some(folder) = fixtures() else { return };
    let key = "resnet/block2/unit01/d/group_norm/gamma";
    let message = error_after_edit(&folder, "extra-key", |arrays| {
        arrays.insert(key.into(), Array::new(vec![7], vec![1.0; 7]).unwrap());
    });
    println!("{message}");
    assert!(message.contains("unexpected"), "{message}");
    assert!(message.contains(key), "{message}");
    assert!(message.contains("[7]"), "{message}");
}

#[test]
fn checkpoint_misshaped_array_is_rejected() {
    let Some(folder) = fixtures() else { return };
    let key = "resnet/block4/unit01/c/group_norm/beta";
    let message = error_after_edit(&folder, "misshaped", |arrays| {
        arrays.insert(key.into(), Array::new(vec![255], vec![0.0; 255]).unwrap());
    });
    println!("{message}");
    assert!(message.contains(key), "{message}");
    assert!(message.contains("[255]"), "actual shape missing: {message}");
    assert!(
        message.contains("[256]"),
        "expected shape missing: {message}"
    );
}

#[test]
fn checkpoint_extra_unit_is_rejected() {
    // A unit02 with only one array makes the geometry expect a full unit,
    // so the first of its other arrays is reported missing.
    let Some(folder) = fixtures() else { return };
    let message = error_after_edit(&folder, "extra-unit", |arrays| {
        arrays.insert(
            "resnet/block1/unit02/a/group_norm/gamma".into(),
            Array::new(vec![128], vec![1.0; 128]).unwrap(),
        );
    });
    println!("{message}");
    assert!(
        message.contains("resnet/block1/unit02/a/group_norm/beta"),
        "{message}"
    );
}

#[test]
fn random_r50x1_runs_in_tract() {
    let geometry = Geometry::resnet_v2(&[3, 4, 6, 3], 1.0).unwrap();
    let checkpoint = Checkpoint::random(&geometry, 0);
    assert_eq!(checkpoint.parameter_count(false), 23_500_352);

    let onnx = to_onnx(&checkpoint, &ConvertOptions::default());
    let input = Array::new(
        vec![1, 3, 128, 128],
        (0..3 * 128 * 128)
            .map(|i| ((i % 255) as f32 / 127.5) - 1.0)
            .collect(),
    )
    .unwrap();
    let features = run_tract(&onnx, &input);
    assert_eq!(features.shape, vec![1, 2048]);
    assert!(
        features.data.iter().all(|v| v.is_finite()),
        "non-finite feature"
    );
    assert!(
        features.data.iter().any(|v| *v > 0.0),
        "all features are zero"
    );
}

#[test]
fn convert_error_names_zip_problem() {
    let error = Checkpoint::from_npz_bytes(b"not a zip file").unwrap_err();
    assert!(matches!(error, ConvertError::Zip(_)), "{error}");
}
