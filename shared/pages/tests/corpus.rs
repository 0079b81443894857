//! Decodes every file of the shared scan corpus, checks page counts against its
//! manifest and compares CCITT TIFF pages with libtiff's output pixel for pixel.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use folio_pages::Options;

struct ManifestRow {
    path: String,
    compression: String,
    pages: u32,
}

fn read_manifest(corpus: &Path) -> Vec<ManifestRow> {
    let text = std::fs::read_to_string(corpus.join("manifest.tsv")).expect("manifest.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("manifest header").split('\t').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("manifest column {name} missing"));
    let (path, compression, pages) = (column("path"), column("compression"), column("pages"));
    lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            ManifestRow {
                path: fields[path].to_owned(),
                compression: fields[compression].to_owned(),
                pages: fields[pages].parse().expect("pages column is a number"),
            }
        })
        .collect()
}

#[test]
fn corpus_page_counts_match_manifest() {
    let Some(corpus) = common::shared_dir("corpus") else { return };
    let rows = read_manifest(&corpus);
    let mut failures = Vec::new();
    let mut total_pages = 0u32;
    let started = Instant::now();

    for row in &rows {
        let path = corpus.join(&row.path);
        let results = match common::decode_file(&path, &Options::default()) {
            Ok(results) => results,
            Err(error) => {
                failures.push(format!("{error}"));
                continue;
            }
        };
        let decoded = results.iter().filter(|page| page.is_ok()).count() as u32;
        for error in results.iter().filter_map(|page| page.as_ref().err()) {
            failures.push(format!("{error}"));
        }
        if results.len() as u32 != row.pages {
            failures.push(format!("{}: {} pages, manifest says {}", row.path, results.len(), row.pages));
        }
        total_pages += decoded;
    }

    let seconds = started.elapsed().as_secs_f64();
    println!(
        "corpus: {} files, {total_pages} pages decoded in {seconds:.2} s ({:.1} pages/s, dev profile with optimised dependencies)",
        rows.len(),
        f64::from(total_pages) / seconds
    );
    for failure in &failures {
        println!("FAIL {failure}");
    }
    assert!(failures.is_empty(), "{} corpus failures, listed above", failures.len());
}

#[test]
fn corpus_ccitt_pages_match_libtiff() {
    let Some(corpus) = common::shared_dir("corpus") else { return };
    if Command::new("tiffcp").arg("-h").output().is_err() {
        println!("SKIP: tiffcp not found; install libtiff-tools to compare with libtiff");
        return;
    }
    let scratch = std::env::temp_dir().join(format!("folio-pages-libtiff-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let raw = Options { square_pixels: false, apply_orientation: false };

    let (mut matched, mut compared) = (0, 0);
    let mut mismatches = Vec::new();
    for row in read_manifest(&corpus).iter().filter(|row| row.compression.starts_with("CCITT")) {
        let path = corpus.join(&row.path);
        let reference = scratch.join("reference.tif");
        let status = Command::new("tiffcp")
            .args(["-c", "none", "-f", "msb2lsb"])
            .arg(&path)
            .arg(&reference)
            .output()
            .expect("run tiffcp");
        if !status.status.success() {
            // libtiff cannot read every file (its own bug-54 test file among them).
            println!("SKIP {}: libtiff failed: {}", row.path, String::from_utf8_lossy(&status.stderr).trim());
            continue;
        }

        let expected = common::read_reference_pages(&reference);
        let ours = common::decode_file(&path, &raw).expect("open");
        for (index, (page, (width, height, pixels))) in ours.iter().zip(expected.iter()).enumerate() {
            compared += 1;
            let Ok(page) = page else {
                mismatches.push(format!("{} page {}: {}", row.path, index + 1, page.as_ref().unwrap_err()));
                continue;
            };
            let gray = page.image.to_luma8();
            if (gray.width(), gray.height()) != (*width, *height) {
                mismatches.push(format!("{} page {}: size {}x{}, libtiff {width}x{height}", row.path, index + 1, gray.width(), gray.height()));
                continue;
            }
            let differing = gray.as_raw().iter().zip(pixels.iter()).filter(|(a, b)| a != b).count();
            if differing == 0 {
                matched += 1;
            } else {
                mismatches.push(format!("{} page {}: {differing} pixels differ", row.path, index + 1));
            }
        }
        if ours.len() != expected.len() {
            mismatches.push(format!("{}: {} pages, libtiff {}", row.path, ours.len(), expected.len()));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);

    println!("libtiff comparison: {matched} of {compared} CCITT pages identical");
    for mismatch in &mismatches {
        println!("MISMATCH {mismatch}");
    }
    assert!(mismatches.is_empty(), "{} CCITT pages differ from libtiff, listed above", mismatches.len());
}
