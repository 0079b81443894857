//! Links the BiT model into `folio-model`.
//!
//! Source, in order of preference:
//! 1. the file named by the environment variable `FOLIO_MODEL_ONNX`
//!    (absolute, or relative to the workspace root);
//! 2. `models/BiT-M-R50x1.onnx` at the workspace root, which
//!    `infra/fetch-model.sh` writes;
//! 3. otherwise a random-weight BiT-R50x1 generated here from seed 0. Offline
//!    builds then have the real geometry (2048 features) but vectors
//!    without meaning, and the identity ends in "(untrained)".
//!
//! The script writes `linked_model.rs` into OUT_DIR with the identity
//! constants and an `include_bytes!` of the chosen file.

use std::path::{Path, PathBuf};

use folio_bit_convert::graph::{METADATA_NAME, METADATA_TRAINED};
use folio_bit_convert::onnx::ModelProto;
use folio_bit_convert::{Checkpoint, ConvertOptions, Geometry, random_model_name, to_onnx};
use prost::Message;
use sha2::{Digest, Sha256};

const ENV_MODEL: &str = "FOLIO_MODEL_ONNX";
const FETCHED_MODEL: &str = "models/BiT-M-R50x1.onnx";
const RANDOM_SEED: u64 = 0;
/// BiT-R50: bottleneck units per block.
const R50_UNITS: [usize; 4] = [3, 4, 6, 3];

struct LinkedModel {
    path: PathBuf,
    name: String,
    trained: bool,
    dimensions: usize,
    input_size: usize,
    sha256: String,
}

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest.join("../..");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={ENV_MODEL}");
    // Watching the folder rather than the file: cargo reruns a build
    // script on every build while a watched file is missing, and the
    // fetched model is usually missing.
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("models").display()
    );

    let fetched = workspace.join(FETCHED_MODEL);
    let model = match std::env::var_os(ENV_MODEL) {
        Some(path) => {
            // Cargo runs build scripts in the package folder, so a relative
            // path is resolved against the workspace root instead.
            let path = workspace.join(PathBuf::from(path));
            println!("cargo:rerun-if-changed={}", path.display());
            describe_file(&path)
        }
        None if fetched.is_file() => describe_file(&fetched),
        None => generate_random(&out_dir),
    };

    if !model.trained {
        println!(
            "cargo:warning=folio-model links {} with random weights (untrained); run infra/fetch-model.sh for the real BiT-M-R50x1",
            model.name
        );
    }
    write_constants(&out_dir.join("linked_model.rs"), &model);
}

/// Reads an ONNX file's identity: name and training state from the
/// converter's metadata, feature count from the output shape.
fn describe_file(path: &Path) -> LinkedModel {
    let bytes = std::fs::read(path).unwrap_or_else(|error| {
        panic!(
            "failed to read the model {}: {error}; set {ENV_MODEL} to an existing ONNX file",
            path.display()
        )
    });
    let proto = ModelProto::decode(bytes.as_slice())
        .unwrap_or_else(|error| panic!("{} is not a valid ONNX model: {error}", path.display()));
    let dims = proto.output_dims().unwrap_or_else(|| {
        panic!(
            "{} declares no output shape; convert it with bit-convert",
            path.display()
        )
    });
    let dimensions = match dims.last() {
        Some(Some(value)) if *value > 0 => *value as usize,
        _ => panic!(
            "{} has output dims {dims:?}; expected [batch, features]",
            path.display()
        ),
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = proto
        .metadata(METADATA_NAME)
        .map(str::to_string)
        .unwrap_or(stem);
    // NOTE: a file without the converter's metadata is assumed trained,
    // because only converted Google checkpoints are expected here.
    let trained = proto.metadata(METADATA_TRAINED) != Some("false");
    LinkedModel {
        path: path.canonicalize().expect("the model file exists"),
        name,
        trained,
        dimensions,
        input_size: input_size(&proto).unwrap_or(128),
        sha256: hex::encode(Sha256::digest(&bytes)),
    }
}

fn input_size(proto: &ModelProto) -> Option<usize> {
    use folio_bit_convert::onnx::DimensionValue;
    let input = proto.graph.as_ref()?.input.first()?;
    let shape = input
        .r#type
        .as_ref()?
        .tensor_type
        .as_ref()?
        .shape
        .as_ref()?;
    match shape.dim.get(2)?.value {
        Some(DimensionValue::DimValue(size)) => Some(size as usize),
        _ => None,
    }
}

fn generate_random(out_dir: &Path) -> LinkedModel {
    let geometry = Geometry::resnet_v2(&R50_UNITS, 1.0).expect("R50x1 is a valid geometry");
    let name = random_model_name(&geometry, RANDOM_SEED);
    let checkpoint = Checkpoint::random(&geometry, RANDOM_SEED);
    let options = ConvertOptions {
        model_name: name.clone(),
        trained: false,
        ..ConvertOptions::default()
    };
    let bytes = to_onnx(&checkpoint, &options);
    let path = out_dir.join(format!("{name}.onnx"));
    std::fs::write(&path, &bytes)
        .unwrap_or_else(|error| panic!("failed to write {}: {error}", path.display()));
    LinkedModel {
        path,
        name,
        trained: false,
        dimensions: geometry.feature_dimensions(),
        input_size: options.image_size,
        sha256: hex::encode(Sha256::digest(&bytes)),
    }
}

fn write_constants(target: &Path, model: &LinkedModel) {
    let source = format!(
        "/// Model name from the ONNX metadata or the file name.\n\
         pub const MODEL_NAME: &str = {name:?};\n\
         /// Lowercase hex SHA-256 of [`ONNX_BYTES`].\n\
         pub const MODEL_SHA256: &str = {sha:?};\n\
         /// False when the linked model has random weights.\n\
         pub const MODEL_TRAINED: bool = {trained};\n\
         /// Length of a feature vector.\n\
         pub const FEATURE_DIMENSIONS: usize = {dimensions};\n\
         /// Input height and width in pixels.\n\
         pub const INPUT_SIZE: u32 = {input_size};\n\
         /// The linked ONNX graph.\n\
         pub static ONNX_BYTES: &[u8] = include_bytes!({path:?});\n",
        name = model.name,
        sha = model.sha256,
        trained = model.trained,
        dimensions = model.dimensions,
        input_size = model.input_size,
        path = model.path.display().to_string(),
    );
    std::fs::write(target, source)
        .unwrap_or_else(|error| panic!("failed to write {}: {error}", target.display()));
}
