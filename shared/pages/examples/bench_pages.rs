//! Measures page decode throughput over folders of scans.
//!
//! Usage: `bench_pages [--rounds N] [--inline] PATH...`. Decodes every TIFF, PNG,
//! JPEG and PDF file under each folder (or each file given) with the default limits,
//! `rounds` times. Prints each error on stderr, then the pages decoded and the mean
//! milliseconds per page of the fastest round. `--inline` sets `max_page_decode` to
//! `Duration::MAX`, which decodes on the calling thread instead of a time-limited
//! worker thread.

use std::path::{Path, PathBuf};
use std::time::Instant;

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    if dir.is_file() {
        files.push(dir.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, files);
        } else if folio_pages::detect_format(&std::fs::read(&path).unwrap_or_default()).is_some() {
            files.push(path);
        }
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut rounds = 3;
    if args.first().map(String::as_str) == Some("--rounds") {
        rounds = args[1].parse().expect("--rounds takes a whole number");
        args.drain(..2);
    }
    let mut limits = folio_pages::Limits::default();
    if args.first().map(String::as_str) == Some("--inline") {
        limits.max_page_decode = std::time::Duration::MAX;
        args.remove(0);
    }
    let mut files = Vec::new();
    for dir in &args {
        collect_files(Path::new(dir), &mut files);
    }
    files.sort();
    let objects: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|path| (path.display().to_string(), std::fs::read(path).expect("read file")))
        .collect();

    let mut best_seconds = f64::INFINITY;
    let (mut pages, mut errors) = (0, 0);
    for _ in 0..rounds {
        (pages, errors) = (0, 0);
        let started = Instant::now();
        for (name, bytes) in &objects {
            let object_pages = match folio_pages::open(name, bytes.clone(), &limits) {
                Ok(object_pages) => object_pages,
                Err(error) => {
                    eprintln!("{error}");
                    errors += 1;
                    continue;
                }
            };
            for page in object_pages {
                match page {
                    Ok(_) => pages += 1,
                    Err(error) => {
                        eprintln!("{error}");
                        errors += 1;
                    }
                }
            }
        }
        best_seconds = best_seconds.min(started.elapsed().as_secs_f64());
    }
    println!(
        "{} files, {pages} pages, {errors} errors; fastest of {rounds} rounds {best_seconds:.3} s, {:.2} ms per page",
        objects.len(),
        best_seconds * 1000.0 / f64::from(pages.max(1))
    );
}
