//! Runs `infra/fetch-model.sh --from-file` with the tiny fixture checkpoint
//! standing in for the download: hash recording, hash verification,
//! wrong-hash rejection, conversion and placement.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use folio_bit_convert::graph::{METADATA_NAME, METADATA_TRAINED};
use folio_bit_convert::onnx::ModelProto;
use prost::Message;

const TINY_SHA256: &str = "079a85e1ca25bf392daed1aca2fb3e9130f7baa04098d80a3856b6e14f6bba70";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tiny_checkpoint() -> Option<PathBuf> {
    let path = workspace().join("../shared/fixtures/bit/bit-tiny.npz");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} not found; place the shared data folder beside the workspace",
            path.display()
        );
        None
    }
}

fn temp_models_dir(case: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("folio-fetch-{case}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_script(checkpoint: &Path, models_dir: &Path, extra: &[&str]) -> Output {
    let output = Command::new("bash")
        .arg(workspace().join("infra/fetch-model.sh"))
        .arg("--from-file")
        .arg(checkpoint)
        .arg("--models-dir")
        .arg(models_dir)
        .args(extra)
        .env("BIT_CONVERT", env!("CARGO_BIN_EXE_bit-convert"))
        .output()
        .unwrap();
    println!("stdout: {}", String::from_utf8_lossy(&output.stdout));
    println!("stderr: {}", String::from_utf8_lossy(&output.stderr));
    output
}

#[test]
fn fetch_script_records_hash_and_places_onnx() {
    let Some(checkpoint) = tiny_checkpoint() else {
        return;
    };
    let models = temp_models_dir("record");

    let first = run_script(&checkpoint, &models, &[]);
    assert!(first.status.success(), "first run failed");
    let recorded = std::fs::read_to_string(models.join("BiT-M-R50x1.sha256")).unwrap();
    assert!(
        recorded.starts_with(TINY_SHA256),
        "recorded hash: {recorded}"
    );

    let onnx = std::fs::read(models.join("BiT-M-R50x1.onnx")).unwrap();
    let model = ModelProto::decode(onnx.as_slice()).unwrap();
    assert_eq!(model.metadata(METADATA_NAME), Some("BiT-M-R50x1"));
    assert_eq!(model.metadata(METADATA_TRAINED), Some("true"));
    assert_eq!(model.output_dims(), Some(vec![None, Some(1024)]));

    // The second run verifies against the recorded hash.
    let second = run_script(&checkpoint, &models, &[]);
    assert!(second.status.success(), "second run failed");
    assert!(String::from_utf8_lossy(&second.stdout).contains("sha256 verified"));

    std::fs::remove_dir_all(&models).unwrap();
}

#[test]
fn fetch_script_rejects_wrong_hash() {
    let Some(checkpoint) = tiny_checkpoint() else {
        return;
    };
    let models = temp_models_dir("reject");
    let wrong = "0".repeat(64);
    std::fs::write(
        models.join("BiT-M-R50x1.sha256"),
        format!("{wrong}  BiT-M-R50x1.npz\n"),
    )
    .unwrap();

    let output = run_script(&checkpoint, &models, &[]);
    assert!(!output.status.success(), "a wrong hash was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sha256 mismatch"), "{stderr}");
    assert!(stderr.contains(TINY_SHA256), "{stderr}");
    assert!(
        !models.join("BiT-M-R50x1.onnx").exists(),
        "ONNX placed despite the wrong hash"
    );
    assert!(
        !models.join("BiT-M-R50x1.npz").exists(),
        "checkpoint kept despite the wrong hash"
    );

    let explicit = run_script(&checkpoint, &models, &["--sha256", &"f".repeat(64)]);
    assert!(!explicit.status.success(), "a wrong --sha256 was accepted");

    std::fs::remove_dir_all(&models).unwrap();
}
