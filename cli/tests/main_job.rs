//! The main job end to end through the `folio` binary: ingest the sample
//! scans into a fresh local store, build the index, search, cluster, and
//! run everything again to check that nothing is duplicated.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

/// Runs `folio --store STORE ARGS...`, asserts success and returns stdout.
fn folio(store: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .expect("the folio binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "folio {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("invalid JSON ({error}):\n{text}"))
}

fn count_files(dir: &Path) -> usize {
    walk(dir).len()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Pages in the sample scans, by the sources' own page counts.
const SAMPLE_PAGES: u64 = 26;

#[test]
fn main_job_on_sample_scans() {
    let store_dir = tempfile::tempdir().unwrap();
    let store = store_dir.path();
    let samples = samples();
    let samples_arg = samples.to_str().unwrap();

    let summary = folio(store, &["ingest", "--quiet", samples_arg]);
    assert!(summary.contains("pages embedded"), "{summary}");

    // Every page of every sample has a vector.
    let status = json(&folio(store, &["status", "--json"]));
    assert_eq!(status["pages"], SAMPLE_PAGES, "{status}");
    assert_eq!(status["failed_pages"], 0, "{status}");
    assert_eq!(status["object_errors"], 0, "{status}");
    let errors = json(&folio(store, &["errors", "--json"]));
    assert_eq!(errors.as_array().map(Vec::len), Some(0), "{errors}");

    folio(store, &["index"]);
    let status = json(&folio(store, &["status", "--json"]));
    assert!(status["snapshot_id"].is_string(), "{status}");
    assert_eq!(status["shards_not_in_snapshot"], 0, "{status}");

    // A page searched by its own image returns its document first.
    for document in ["fax-tiff/libtiff/testfax4.tiff", "misc-scans/tesseract-test/eurotext.tif", "scanned-pdf/ocrmypdf/c02-22.pdf"] {
        let query = samples.join(document);
        let results = json(&folio(store, &["search", "--json", "-k", "3", query.to_str().unwrap()]));
        assert_eq!(results["documents"][0]["document"], document, "{results}");
        let score = results["documents"][0]["score"].as_f64().unwrap();
        assert!(score > 0.999, "{document}: own page scored {score}");
        assert!(results["model_id"].as_str().is_some_and(|id| !id.is_empty()));
    }

    // A stored document finds others and never itself.
    let results = json(&folio(store, &["search", "--json", "--document", "fax-tiff/pillow/g4-multi.tiff"]));
    let found: Vec<&str> = results["documents"].as_array().unwrap().iter().map(|d| d["document"].as_str().unwrap()).collect();
    assert!(!found.is_empty());
    assert!(!found.contains(&"fax-tiff/pillow/g4-multi.tiff"), "{found:?}");

    // Re-running ingest adds nothing.
    let files_before = count_files(store);
    let again = folio(store, &["ingest", "--quiet", samples_arg]);
    assert!(again.contains("ingested 0 documents"), "{again}");
    assert_eq!(count_files(store), files_before);
    let status = json(&folio(store, &["status", "--json"]));
    assert_eq!(status["pages"], SAMPLE_PAGES, "{status}");

    // Cluster sizes sum to the page count; the report and its pictures exist.
    let summary = json(&folio(store, &["clusters", "--json", "--k", "3"]));
    let clusters = summary["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 3);
    let sizes: u64 = clusters.iter().map(|cluster| cluster["page_count"].as_u64().unwrap()).sum();
    assert_eq!(sizes, SAMPLE_PAGES);
    let reports: Vec<PathBuf> = walk(store).into_iter().filter(|path| path.ends_with("report.html")).collect();
    assert_eq!(reports.len(), 1);
    let html = std::fs::read_to_string(&reports[0]).unwrap();
    let folder = reports[0].parent().unwrap();
    for picture in html.split("src=\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]) {
        assert!(folder.join(picture).is_file(), "the report links {picture}, which is missing");
    }

    // Deleting a document removes it from search before the next snapshot.
    folio(store, &["delete", "fax-tiff/libtiff/testfax4.tiff"]);
    let query = samples.join("fax-tiff/libtiff/testfax4.tiff");
    let results = json(&folio(store, &["search", "--json", "-k", "30", query.to_str().unwrap()]));
    let found: Vec<&str> = results["documents"].as_array().unwrap().iter().map(|d| d["document"].as_str().unwrap()).collect();
    assert!(!found.contains(&"fax-tiff/libtiff/testfax4.tiff"), "{found:?}");
}
