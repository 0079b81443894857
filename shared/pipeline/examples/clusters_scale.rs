//! Time and peak memory of a whole cluster summary (`build_clusters`, as the indexer runs it)
//! on a store filled with synthetic page vectors, to check the 10 GB / 15 minute budget of one
//! Lambda at 1 000 000 pages.
//!
//! - `clusters_scale fill STORE VECTORS.npy PAGES_PER_DOCUMENT` writes the rows of a `.npy`
//!   file made by `bench_clusters generate` (folio-clusters' example) into STORE as shards,
//!   one document of PAGES_PER_DOCUMENT pages per shard, reading the file a row at a time.
//! - `clusters_scale summarise STORE` runs `build_clusters` with the default parameters and
//!   no thumbnails, and prints one JSON line with the time, the peak memory (VmHWM) and what
//!   the summary records about sampling.
//!
//! Build with `cargo build --release -p folio-pipeline --example clusters_scale`.

use std::io::{BufReader, Read};
use std::time::Instant;

use folio_clusters::ClusterParams;
use folio_pipeline::clusters::{ScanSource, build_clusters};
use folio_pipeline::ingest::{self, EmbeddedObject};
use folio_pipeline::{DocumentVersion, Layout};
use folio_shard::{PageRow, ShardMeta};
use folio_store::Store;

const MODEL: &str = "synthetic-2048 (untrained)";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("fill") if args.len() == 5 => {
            let pages_per_document: usize = args[4].parse().expect("PAGES_PER_DOCUMENT must be a positive integer");
            fill(&args[2], &args[3], pages_per_document).await;
        }
        Some("summarise") if args.len() == 3 => summarise(&args[2]).await,
        _ => {
            eprintln!("usage: clusters_scale fill STORE VECTORS.npy PAGES_PER_DOCUMENT | summarise STORE");
            std::process::exit(2);
        }
    }
}

async fn fill(store: &str, npy: &str, pages_per_document: usize) {
    let store = Store::open(store).await.unwrap_or_else(|error| panic!("cannot open {store}: {error}"));
    let file = std::fs::File::open(npy).unwrap_or_else(|error| panic!("cannot open {npy}: {error}"));
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let (rows, dims) = read_npy_header(&mut reader, npy);
    let meta = ShardMeta::new(MODEL, dims, "none");
    let start = Instant::now();
    let mut row_bytes = vec![0_u8; 4 * dims];
    for (document_number, first_row) in (0..rows).step_by(pages_per_document).enumerate() {
        let document = format!("bench/2026/12/document-{document_number:08}.tif");
        let version = DocumentVersion {
            document: document.clone(),
            version: "v1".to_owned(),
            sequencer: "0A".to_owned(),
        };
        let mut page_rows = Vec::with_capacity(pages_per_document);
        for page in 0..pages_per_document.min(rows - first_row) {
            reader.read_exact(&mut row_bytes).expect("read a row");
            let vector = row_bytes.chunks_exact(4).map(|chunk| f32::from_le_bytes(chunk.try_into().unwrap())).collect();
            page_rows.push(PageRow::embedded(&document, "v1", "0A", page as u32 + 1, (850, 1100), None, vector));
        }
        let embedded = EmbeddedObject {
            pages_embedded: page_rows.len() as u32,
            rows: page_rows,
            ..Default::default()
        };
        ingest::store_object(&store, &Layout::default(), &meta, &version, &embedded)
            .await
            .unwrap_or_else(|error| panic!("cannot store {document}: {error}"));
    }
    println!("wrote {rows} pages of {dims} values in {:.1} s", start.elapsed().as_secs_f64());
}

async fn summarise(store: &str) {
    let store = Store::open(store).await.unwrap_or_else(|error| panic!("cannot open {store}: {error}"));
    let start = Instant::now();
    let (summary, _) = build_clusters(&store, &Layout::default(), MODEL, &ClusterParams::default(), &ScanSource::None)
        .await
        .unwrap_or_else(|error| panic!("build_clusters failed: {error}"));
    println!(
        "{{\"pages\": {}, \"documents\": {}, \"seconds\": {:.1}, \"peak_mib\": {:.0}, \"sampled\": {}, \"sample_size\": {}, \"k\": {}, \"pca_dims\": {}, \"silhouette\": {:.4}, \"near_duplicates\": {:?}}}",
        summary.page_count,
        summary.document_count,
        start.elapsed().as_secs_f64(),
        peak_memory_mib(),
        summary.sampled,
        summary.sample_size,
        summary.parameters.k,
        summary.parameters.pca_dims,
        summary.silhouette.overall,
        summary.near_duplicates.scope,
    );
}

/// Reads the header of a little-endian f32, C-order, 2-D `.npy` file; returns (rows, columns).
fn read_npy_header(reader: &mut impl Read, path: &str) -> (usize, usize) {
    let mut preamble = [0_u8; 10];
    reader.read_exact(&mut preamble).unwrap();
    assert_eq!(&preamble[..6], b"\x93NUMPY", "{path} is not a .npy file");
    let mut header = vec![0_u8; u16::from_le_bytes([preamble[8], preamble[9]]) as usize];
    reader.read_exact(&mut header).unwrap();
    let header = String::from_utf8(header).unwrap();
    assert!(header.contains("'<f4'"), "{path}: expected f32 values, got {header}");
    assert!(header.contains("'fortran_order': False"), "{path}: expected C order, got {header}");
    let shape = &header[header.find("'shape': (").unwrap() + 10..];
    let shape: Vec<usize> = shape[..shape.find(')').unwrap()]
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| part.trim().parse().unwrap())
        .collect();
    (shape[0], shape[1])
}

/// Peak resident memory of this process (VmHWM of /proc/self/status), in MiB.
fn peak_memory_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}
