//! The `folio` binary rejects arguments that cannot mean what the user
//! intended, with a non-zero exit and a message that names the value.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sample(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples").join(relative)
}

fn folio(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("the folio binary runs")
}

/// Asserts that the command failed and that its stderr contains `expected`.
fn assert_fails_with(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected a failure, got success; stderr:\n{stderr}");
    assert!(stderr.contains(expected), "stderr lacks {expected:?}:\n{stderr}");
}

#[test]
fn delete_unknown_document_fails() {
    let store = tempfile::tempdir().unwrap();
    let output = folio(store.path(), &["delete", "no/such/scan.tif"]);
    assert_fails_with(&output, "no/such/scan.tif: not found in the store");
}

#[test]
fn search_page_out_of_range() {
    let store = tempfile::tempdir().unwrap();
    let scan = sample("fax-tiff/pillow/g4-multi.tiff");
    let output = folio(store.path(), &["search", scan.to_str().unwrap(), "--page", "99"]);
    assert_fails_with(&output, "has 3 pages, so --page 99 does not exist");
}

#[test]
fn ingest_max_pages_zero_rejected() {
    let store = tempfile::tempdir().unwrap();
    let scan = sample("fax-tiff/pillow/g4-multi.tiff");
    let output = folio(store.path(), &["ingest", "--max-pages", "0", scan.to_str().unwrap()]);
    assert_fails_with(&output, "--max-pages");
    assert!(!store.path().join("vectors").exists(), "a rejected ingest must write nothing");
}

#[test]
fn clusters_min_k_above_max_k_rejected() {
    let store = tempfile::tempdir().unwrap();
    let output = folio(store.path(), &["clusters", "--min-k", "5", "--max-k", "3"]);
    assert_fails_with(&output, "--min-k 5 is larger than --max-k 3");
}
